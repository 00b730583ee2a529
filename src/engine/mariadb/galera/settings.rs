//! A Galera node's settings: ha-setup's cnf file from templates/mariadb-galera.cnf, the
//! same on every node where Galera needs it (cluster name, the nodes' addresses, the
//! library, the state transfer's method, login and TLS) and the node's own name, address
//! and preferred donors; and which differences between two files need a restart.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::Context;
use serde::Serialize;

use super::super::layout;
use crate::config::Config;
use crate::node::NodeName;

/// Every node's CA certificate, its own included: what a node checks the other nodes'
/// certificates against (Galera's replication, and the state transfer, whose script also
/// checks the node's own certificate against it).
pub const CLUSTER_CA: &str = "cluster-ca.pem";
/// garbd's TLS files on the arbitrator: its own CA, certificate and key (readable by
/// nobody, the user garbd runs as) and every node's CA.
pub const GARBD_TLS_DIR: &str = "/etc/ha-setup-garbd-tls";
/// Galera's replication port.
pub const GCOMM_PORT: u16 = 4567;
/// The incremental state transfer's port (IST) and the full state transfer's (SST).
pub const IST_PORT: u16 = 4568;
pub const SST_PORT: u16 = 4444;
/// The Galera library on Debian, when the host's could not be found.
pub const DEFAULT_PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

/// The SST script's default list of what stays in a joiner's datadir, and ha-setup's own.
const CPAT: &str = r".*\.pem$\|.*galera\.cache$\|.*sst_in_progress$\|.*\.sst$\|.*gvwstate\.dat$\|.*grastate\.dat$\|.*\.err$\|.*\.log$\|.*RPM_UPGRADE_MARKER$\|.*RPM_UPGRADE_HISTORY$";

/// The cluster's name: the config's `cluster`, else ha-setup's.
pub fn cluster_name(config: &Config) -> String {
    config
        .cluster
        .clone()
        .unwrap_or_else(|| "ha-setup".to_owned())
}

/// The nodes that hold data, in config order.
pub fn data_nodes(config: &Config) -> Vec<NodeName> {
    config
        .nodes
        .iter()
        .filter(|(_, node)| !node.is_arbitrator())
        .map(|(name, _)| name.clone())
        .collect()
}

/// The arbitrator, if the config names one.
pub fn arbitrator(config: &Config) -> Option<NodeName> {
    config
        .nodes
        .iter()
        .find(|(_, node)| node.is_arbitrator())
        .map(|(name, _)| name.clone())
}

/// An address as Galera's URLs take it (IPv6 in brackets).
pub fn url_host(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => address.to_owned(),
    }
}

/// Every member's address (data nodes and the arbitrator), for `gcomm://`: a restarting
/// node finds the cluster through any of them.
pub fn addresses(config: &Config) -> Vec<String> {
    config
        .nodes
        .values()
        .map(|node| url_host(node.replication_address()))
        .collect()
}

/// One data node's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    pub node_name: String,
    pub node_address: String,
    pub bind_address: String,
    pub cluster_name: String,
    pub addresses: String,
    pub provider: String,
    /// The other data nodes a state transfer comes from first (never the write node).
    pub donors: String,
    pub write_node: String,
    pub tls: bool,
}

impl Settings {
    pub fn new(
        config: &Config,
        name: &NodeName,
        write_node: &NodeName,
        provider: Option<&str>,
        version: Option<super::super::facts::Version>,
    ) -> Settings {
        let node = config.node(name);
        Settings {
            node_name: name.to_string(),
            node_address: node.replication_address().to_owned(),
            bind_address: layout::bind_address(node, version),
            cluster_name: cluster_name(config),
            addresses: addresses(config).join(","),
            provider: provider.unwrap_or(DEFAULT_PROVIDER).to_owned(),
            donors: data_nodes(config)
                .iter()
                .filter(|n| *n != name && *n != write_node)
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(","),
            write_node: write_node.to_string(),
            tls: config.replication.tls,
        }
    }

    pub fn render(&self, config: &Config) -> anyhow::Result<String> {
        let mut env = minijinja::Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()?,
        );
        env.add_template(
            "galera.cnf",
            include_str!("../../../../templates/mariadb-galera.cnf"),
        )?;
        env.get_template("galera.cnf")?
            .render(minijinja::context! {
                tool_version => env!("CARGO_PKG_VERSION"),
                nodes => config.nodes.keys().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
                tls_dir => layout::TLS_DIR,
                cluster_ca => CLUSTER_CA,
                ignored_dirs => [layout::INCOMING_NAME, layout::MOVED_ASIDE_NAME, "lost+found"],
                cpat => format!(
                    r"{CPAT}\|.*/{}$\|.*/{}$\|.*/lost.found$",
                    layout::MOVED_ASIDE_NAME.replace('.', r"\."),
                    layout::INCOMING_NAME.replace('.', r"\."),
                ),
                ..minijinja::Value::from(minijinja::value::Serde(self))
            })
            .context("cannot render the Galera settings template")
    }
}

/// The `key = value` lines of a cnf file, by section and key (comments left out).
pub fn values(text: &str) -> BTreeMap<(String, String), String> {
    let mut section = String::new();
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        values
            .entry((section.clone(), key.trim().replace('-', "_")))
            .and_modify(|v: &mut String| {
                v.push('\n');
                v.push_str(value.trim());
            })
            .or_insert_with(|| value.trim().to_owned());
    }
    values
}

/// What differs between the file a running node was started with and the one it should
/// have, in two parts: what the server takes at run time (`SET GLOBAL` statements), and
/// what only a restart applies (in words). The address list is read only when a node
/// starts, so a new one waits for the node's next restart and needs none of its own. The
/// `[sst]` section is read by each state transfer as it begins.
pub fn changes(old: &str, new: &str) -> (Vec<String>, Vec<String>) {
    let (old, new) = (values(old), values(new));
    let mut runtime = Vec::new();
    let mut restart = Vec::new();
    let keys: std::collections::BTreeSet<&(String, String)> =
        old.keys().chain(new.keys()).collect();
    for key in keys {
        let (section, name) = key;
        if old.get(key) == new.get(key) || section == "sst" {
            continue;
        }
        match name.as_str() {
            "wsrep_cluster_address" => {}
            "wsrep_sst_donor" => runtime.push(format!(
                "SET GLOBAL wsrep_sst_donor = '{}'",
                new.get(key).map_or("", String::as_str)
            )),
            _ => restart.push(format!(
                "{name} {}",
                match (old.get(key), new.get(key)) {
                    (Some(a), Some(b)) => format!("changes from {a} to {b}"),
                    (None, Some(b)) => format!("is set to {b}"),
                    (Some(_), None) => "is no longer set".to_owned(),
                    (None, None) => unreachable!("a key of either file"),
                }
            )),
        }
    }
    (runtime, restart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(
            &format!(
                "engine = \"mariadb\"\ntopology = \"galera\"\n{extra}\
                 [nodes.db1]\nhost = \"198.51.100.11\"\n\
                 [nodes.db2]\nhost = \"198.51.100.12\"\n\
                 [nodes.db3]\nhost = \"198.51.100.13\"\n"
            ),
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn a_node_file() {
        let config = config("");
        let db2 = Settings::new(
            &config,
            &NodeName::new("db2"),
            &NodeName::new("db1"),
            Some("/usr/lib/galera/libgalera_smm.so"),
            None,
        );
        // The other nodes but the write node give state transfers first.
        assert_eq!(db2.donors, "db3");
        insta::assert_snapshot!("galera_cnf", db2.render(&config).unwrap());
        // The write node's own donors: every other node.
        let db1 = Settings::new(
            &config,
            &NodeName::new("db1"),
            &NodeName::new("db1"),
            None,
            None,
        );
        assert_eq!(db1.donors, "db2,db3");
    }

    #[test]
    fn the_settings_galera_needs_the_same_are_the_same_on_every_node() {
        let config = config("cluster = \"payments\"\n");
        let texts: Vec<BTreeMap<(String, String), String>> = ["db1", "db2", "db3"]
            .iter()
            .map(|n| {
                values(
                    &Settings::new(
                        &config,
                        &NodeName::new(*n),
                        &NodeName::new("db1"),
                        None,
                        None,
                    )
                    .render(&config)
                    .unwrap(),
                )
            })
            .collect();
        let own = [
            "wsrep_node_name",
            "wsrep_node_address",
            "wsrep_sst_donor",
            "bind_address",
        ];
        for (key, value) in &texts[0] {
            if own.contains(&key.1.as_str()) {
                continue;
            }
            for other in &texts[1..] {
                assert_eq!(other.get(key), Some(value), "{key:?}");
            }
        }
        assert_eq!(
            texts[0][&("mariadb".to_owned(), "wsrep_cluster_name".to_owned())],
            "payments"
        );
    }

    #[test]
    fn what_a_restart_is_needed_for() {
        let config = config("");
        let write = NodeName::new("db1");
        let before = Settings::new(&config, &NodeName::new("db2"), &write, None, None)
            .render(&config)
            .unwrap();
        let mut grown = config.clone();
        grown
            .nodes
            .insert(NodeName::new("db4"), config.nodes["db3"].clone());
        grown.nodes["db4"].host = "198.51.100.14".into();
        let after = Settings::new(&grown, &NodeName::new("db2"), &write, None, None)
            .render(&grown)
            .unwrap();
        let (runtime, restart) = changes(&before, &after);
        assert_eq!(runtime, ["SET GLOBAL wsrep_sst_donor = 'db3,db4,'"]);
        assert!(restart.is_empty(), "{restart:?}");
        let mut untls = config.clone();
        untls.replication.tls = false;
        let plain = Settings::new(&untls, &NodeName::new("db2"), &write, None, None)
            .render(&untls)
            .unwrap();
        let (_, restart) = changes(&before, &plain);
        assert!(
            restart
                .iter()
                .any(|r| r.starts_with("wsrep_provider_options is no longer set")),
            "{restart:?}"
        );
    }
}
