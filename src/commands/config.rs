//! `ha-setup config check` and `ha-setup config example`.

use std::path::Path;

use crate::cli::Format;
use crate::config::{self, Config, Node};
use crate::error::ExitCode;
use crate::ui::Ui;

pub fn check(path: &Path, format: Format, ui: &Ui) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    match format {
        Format::Json => ui.json(&config)?,
        Format::Text => ui.out(&summary(path, &config))?,
    }
    Ok(ExitCode::Ok)
}

pub fn example(ui: &Ui) -> anyhow::Result<ExitCode> {
    ui.out(config::EXAMPLE)?;
    Ok(ExitCode::Ok)
}

fn summary(path: &Path, config: &Config) -> String {
    let db_port = config.engine.default_db_port();
    let node = |node: &Node| {
        let ssh = if node.is_local() {
            "this machine, no SSH".to_owned()
        } else {
            let user = node
                .ssh_user
                .as_deref()
                .map(|u| format!("{u}@"))
                .unwrap_or_default();
            let port = node.ssh_port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("ssh {user}{}{port}", node.host)
        };
        format!(
            "{ssh}; database at {}:{}",
            node.replication_address(),
            node.db_port.unwrap_or(db_port)
        )
    };
    let width = config
        .nodes
        .keys()
        .map(|n| n.as_str().len())
        .max()
        .unwrap_or(0)
        .max(9);
    let mut text = format!(
        "{} is valid\n  {:<width$}  {}\n  {:<width$}  {}",
        path.display(),
        "engine",
        config.engine.name(),
        "topology",
        config.topology.name()
    );
    for (name, spec) in &config.nodes {
        let start = if name == config.starting_primary() && !config.two_node_form {
            " (role = \"primary\": init starts from it)"
        } else {
            ""
        };
        text.push_str(&format!(
            "\n  {:<width$}  {}{start}",
            name.as_str(),
            node(spec)
        ));
    }
    text.push_str(&format!(
        "\n  {:<width$}  {} ({})",
        "host keys",
        config.ssh.known_hosts.display(),
        config.ssh.host_key_policy.name(),
    ));
    text
}
