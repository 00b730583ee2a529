//! The questions of `ha-setup init` without a config file. Every answer is checked when it
//! is given: a host is reached over SSH at its question (an unknown host key is shown and
//! trusted only on a yes) and its database surveyed, so a typo is caught there, not ten
//! minutes into the run. The result is a config that `config check` accepts.
//!
//! Precedence (STYLE.md 4): a value given by a flag is never asked; when nothing may be
//! asked (`--yes`, no terminal) every question takes its default, and a value without one
//! is a usage error naming the key and how to set it.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{Config, Engine, Node, Replication, Ssh, expand_home};
use crate::engine::mariadb::facts::{self, Installed};
use crate::error::{Exit, ExitCode};
use crate::host::{Host, LocalHost, SshHost, SshTarget};
use crate::prompt::{Interrupted, Prompter};
use crate::ui::Ui;

/// The environment variable a replication password is read from, unless named otherwise.
const PASSWORD_ENV: &str = "HA_SETUP_REPL_PASSWORD";

/// Answers given before the wizard starts (flags): never asked again.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub primary: Option<String>,
    pub secondary: Option<String>,
}

/// The wizard's result: the config, and its text as it is written.
#[derive(Debug, Clone)]
pub struct Answers {
    pub config: Config,
    pub text: String,
}

/// Asks every question (or takes its default when `asking` is false) and returns the
/// checked config.
pub fn ask(
    given: &Given,
    prompter: &dyn Prompter,
    asking: bool,
    ui: &Ui,
) -> anyhow::Result<Answers> {
    ask_with(given, prompter, asking, ui, true)
}

/// [`ask`], where `reach` false skips trying the hosts (unit tests of the questions).
fn ask_with(
    given: &Given,
    prompter: &dyn Prompter,
    asking: bool,
    ui: &Ui,
    reach: bool,
) -> anyhow::Result<Answers> {
    let wizard = Wizard {
        prompter,
        asking,
        ui,
        ssh: Ssh::default(),
        reach,
    };
    // Resolve first, then act (STYLE.md 3): a value nothing can supply is an error before
    // any host is tried.
    if !asking {
        for (name, host) in [
            (Slot::Primary, &given.primary),
            (Slot::Secondary, &given.secondary),
        ] {
            if host.is_none() {
                return Err(missing(&format!("{name}.host"), &host_how(name)));
            }
        }
    }
    if asking {
        ui.note(
            "No config file yet: a few questions make one. Enter takes the [default]; Ctrl-C stops \
             without changing anything.",
        );
    }
    let engine = wizard.engine()?;
    let mut primary = wizard.node(Slot::Primary, given.primary.as_deref(), None)?;
    let secondary = wizard.node(Slot::Secondary, given.secondary.as_deref(), Some(&primary))?;
    let third = wizard.third(&primary)?;
    let topology = match (&third, engine) {
        (Some(_), Engine::Mariadb) => wizard.topology()?,
        _ => crate::config::Topology::PrimaryReplica,
    };
    let galera = topology == crate::config::Topology::Galera;
    let replication = wizard.replication(galera)?;
    let mut nodes = indexmap::IndexMap::new();
    let names: [&str; 3] = if galera {
        ["db1", "db2", "db3"]
    } else {
        ["primary", "secondary", "tertiary"]
    };
    if third.is_some() {
        // [nodes.NAME] tables: the first marked as the node whose data the others get.
        primary.role = Some(crate::config::NodeRole::Primary);
    }
    let two_node_form = third.is_none();
    for (name, node) in names.iter().zip([Some(primary), Some(secondary), third]) {
        if let Some(node) = node {
            nodes.insert(crate::node::NodeName::new(*name), node);
        }
    }
    let config = Config {
        engine,
        topology,
        cluster: None,
        nodes,
        two_node_form,
        ssh: Ssh::default(),
        replication,
        transfer: crate::config::Transfer::default(),
        postgresql: crate::config::Postgresql::default(),
        sync_files: Vec::new(),
    };
    let text = render(&config);
    // The same checks as `config check`: what the wizard writes must load.
    let config = Config::parse(&text, Path::new("the wizard's answers"))
        .context("the answers do not make a valid config")?;
    Ok(Answers { config, text })
}

/// Writes the config, 0600 (it names where secrets are, and who logs in where), asking
/// before replacing a file. False when the person kept the existing file.
pub fn write(path: &Path, text: &str, prompter: &dyn Prompter) -> anyhow::Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        let question = format!("{} exists. Replace it?", path.display());
        match prompter.confirm(&question, false).map_err(stopped)? {
            Some(true) => {}
            Some(false) => return Ok(false),
            None => {
                return Err(Exit::usage(format!(
                    "{} exists, and nothing may be asked to replace it: remove it, or name another file with -c FILE",
                    path.display()
                ))
                .into());
            }
        }
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map_or("ha-setup.toml".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(err).with_context(|| {
            format!(
                "cannot write the config to {}: check that the directory is writable, or name another file with -c FILE",
                path.display()
            )
        });
    }
    Ok(true)
}

/// Ctrl-C at a question: a one-line error, exit 130 (as between questions), nothing changed.
pub fn stopped(_: Interrupted) -> anyhow::Error {
    Exit {
        code: ExitCode::Interrupted,
        message: "interrupted: nothing was written, and nothing on the hosts changed".to_owned(),
    }
    .into()
}

struct Wizard<'a> {
    prompter: &'a dyn Prompter,
    asking: bool,
    ui: &'a Ui,
    ssh: Ssh,
    reach: bool,
}

impl Wizard<'_> {
    /// A line of text; `key` names the config key when there is no default to take.
    fn text(
        &self,
        question: &str,
        default: Option<&str>,
        key: &str,
        how: &str,
    ) -> anyhow::Result<String> {
        loop {
            match self.prompter.input(question, default).map_err(stopped)? {
                Some(answer) if !answer.is_empty() => return Ok(answer),
                Some(_) => match default {
                    Some(default) => return Ok(default.to_owned()),
                    None => self.prompter.say("an answer is needed here"),
                },
                None => {
                    return default.map(str::to_owned).ok_or_else(|| missing(key, how));
                }
            }
        }
    }

    fn say(&self, text: &str) {
        if self.asking {
            self.prompter.say(text);
        } else {
            self.ui.note(text);
        }
    }

    /// A third node, asked for on a terminal only (flags give two): with it, MariaDB may
    /// form a Galera cluster instead of a primary and two replicas.
    fn third(&self, primary: &Node) -> anyhow::Result<Option<Node>> {
        let answer = self
            .prompter
            .input(
                "Third host, for a cluster of three (a Galera cluster, or a second replica); Enter: just the two",
                None,
            )
            .map_err(stopped)?;
        match answer.filter(|host| !host.trim().is_empty()) {
            Some(host) => Ok(Some(self.node(
                Slot::Third,
                Some(host.trim()),
                Some(primary),
            )?)),
            None => Ok(None),
        }
    }

    /// With three MariaDB hosts: every node writable in a Galera cluster, or a primary and
    /// two replicas.
    fn topology(&self) -> anyhow::Result<crate::config::Topology> {
        let items = vec![
            "galera: a MariaDB Galera cluster, every node takes writes (galera-4, socat, mariadb-backup on each)".to_owned(),
            "primary-replica: one primary, the other two its replicas".to_owned(),
        ];
        match self
            .prompter
            .select("Topology", &items, 0)
            .map_err(stopped)?
        {
            None | Some(0) => Ok(crate::config::Topology::Galera),
            Some(_) => Ok(crate::config::Topology::PrimaryReplica),
        }
    }

    fn engine(&self) -> anyhow::Result<Engine> {
        let items = vec![
            "mariadb (MariaDB 10.5+)".to_owned(),
            "postgresql (PostgreSQL 13+, Debian's clusters)".to_owned(),
        ];
        match self
            .prompter
            .select("Database engine", &items, 0)
            .map_err(stopped)?
        {
            None | Some(0) => Ok(Engine::Mariadb),
            Some(_) => Ok(Engine::Postgresql),
        }
    }

    fn node(&self, name: Slot, given: Option<&str>, like: Option<&Node>) -> anyhow::Result<Node> {
        let key = format!("{name}.host");
        let how = host_how(name);
        let mut given = given.map(str::to_owned);
        let mut previous: Option<String> = None;
        loop {
            let host = match given.take() {
                Some(host) => host,
                None => self.text(
                    &format!(
                        "{} host: its SSH address (or \"local\" for this machine)",
                        title(name)
                    ),
                    previous.as_deref(),
                    &key,
                    &how,
                )?,
            };
            previous = Some(host.clone());
            if host.chars().any(char::is_whitespace) || host.contains('@') {
                self.refuse(&format!(
                    "{host:?} is not a host name or address (a user goes in the next question)"
                ))?;
                continue;
            }
            let mut node = empty_node(host.clone());
            if !node.is_local() {
                self.ssh_login(name, &mut node, like)?;
            }
            if self.reach && !self.try_host(name, &node)? {
                continue;
            }
            let other = other(name);
            let question = format!(
                "Address the {other}'s database uses to reach the {name}'s{}",
                if node.is_local() {
                    ""
                } else {
                    " (Enter: the same as the SSH address)"
                }
            );
            let default = (!node.is_local()).then_some(host.as_str());
            let address = self.text(
                &question,
                default,
                &format!("{name}.replication_host"),
                &format!("write `[{name}] replication_host = \"…\"` in the config: \"local\" is no address for the {other}"),
            )?;
            if address != host {
                node.replication_host = Some(address);
            }
            return Ok(node);
        }
    }

    /// An answer that cannot be used: said, and asked again; an error when nothing may be asked.
    fn refuse(&self, why: &str) -> anyhow::Result<()> {
        if self.asking {
            self.prompter.say(&format!("✗ {why}"));
            Ok(())
        } else {
            Err(Exit::usage(why.to_owned()).into())
        }
    }

    fn ssh_login(&self, name: Slot, node: &mut Node, like: Option<&Node>) -> anyhow::Result<()> {
        let resolved = SshTarget::resolve(name.as_str(), node, &self.ssh);
        let user_default = like
            .and_then(|n| n.ssh_user.clone())
            .unwrap_or(resolved.user);
        let user = loop {
            let user = self.text(
                &format!("SSH user on the {name} (root, or one with passwordless sudo)"),
                Some(&user_default),
                &format!("{name}.ssh_user"),
                "",
            )?;
            if user.chars().any(|c| c.is_whitespace() || c == '@') {
                self.refuse(&format!("{user:?} is not a user name"))?;
                continue;
            }
            break user;
        };
        node.ssh_user = Some(user);
        let port_default = like
            .and_then(|n| n.ssh_port)
            .unwrap_or(resolved.port)
            .to_string();
        let port = loop {
            let port = self.text(
                &format!("SSH port on the {name}"),
                Some(&port_default),
                &format!("{name}.ssh_port"),
                "",
            )?;
            match port.parse::<u16>() {
                Ok(port) if port > 0 => break port,
                _ => self.refuse(&format!("{port:?} is not a port number (1 to 65535)"))?,
            }
        };
        node.ssh_port = (port != 22).then_some(port);
        node.identity_file = self.identity(name, like.map(|n| n.identity_file.clone()))?;
        Ok(())
    }

    /// The SSH key: one found in ~/.ssh, the agent (with the usual key files), or a path.
    fn identity(
        &self,
        name: Slot,
        like: Option<Option<PathBuf>>,
    ) -> anyhow::Result<Option<PathBuf>> {
        let mut found = found_keys();
        // The primary's key, when it is not in ~/.ssh, is still the secondary's default.
        if let Some(Some(path)) = &like
            && !found.contains(path)
        {
            found.insert(0, path.clone());
        }
        let mut items = vec!["ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa".to_owned()];
        items.extend(found.iter().map(|p| p.display().to_string()));
        items.push("another key file…".to_owned());
        let default = match &like {
            Some(None) => 0,
            Some(Some(path)) => found.iter().position(|p| p == path).map_or(0, |i| i + 1),
            None if std::env::var_os("SSH_AUTH_SOCK").is_some() || found.is_empty() => 0,
            None => 1,
        };
        let question = format!("SSH key for the {name}");
        let choice = self
            .prompter
            .select(&question, &items, default)
            .map_err(stopped)?;
        let choice = choice.unwrap_or(default);
        if choice == 0 {
            return Ok(None);
        }
        if let Some(path) = found.get(choice - 1) {
            return Ok(Some(path.clone()));
        }
        loop {
            let path =
                PathBuf::from(self.text("Key file", None, &format!("{name}.identity_file"), "")?);
            if expand_home(&path).is_file() {
                return Ok(Some(path));
            }
            self.refuse(&format!("{} is not a file", path.display()))?;
        }
    }

    /// Logs in to the host and surveys its database. False when the person should answer
    /// the host question again.
    fn try_host(&self, name: Slot, node: &Node) -> anyhow::Result<bool> {
        let mut host: Box<dyn Host> = if node.is_local() {
            Box::new(LocalHost::new(name.as_str()))
        } else {
            self.say(&format!("connecting to {} …", node.host));
            match self.login(name, node)? {
                Some(host) => host,
                None => return Ok(false),
            }
        };
        let installed = facts::survey(host.as_mut());
        let problem = match &installed {
            Ok(Installed {
                server: Some(version),
                running,
                backup_tool,
                ..
            }) => {
                self.say(&format!(
                    "✓ {}: MariaDB {version}, {}; mariadb-backup {}",
                    host.label(),
                    if *running { "running" } else { "not running" },
                    backup_tool.as_deref().map_or(
                        "not installed (init's preflight will ask for it)".to_owned(),
                        |p| format!("at {p}")
                    )
                ));
                return Ok(true);
            }
            Ok(_) => format!("{}: MariaDB is not installed there", host.label()),
            Err(err) => format!("{}: cannot tell what is installed: {err:#}", host.label()),
        };
        if !self.asking {
            self.ui
                .warn(&format!("{problem}; init's preflight will stop on it"));
            return Ok(true);
        }
        self.prompter.say(&format!("✗ {problem}"));
        let keep = self
            .prompter
            .confirm(
                "Use this host anyway? (init's preflight stops until it is fixed)",
                false,
            )
            .map_err(stopped)?;
        Ok(keep == Some(true))
    }

    fn login(&self, name: Slot, node: &Node) -> anyhow::Result<Option<Box<dyn Host>>> {
        loop {
            let target = SshTarget::resolve(name.as_str(), node, &self.ssh);
            let known_hosts = target.known_hosts.clone();
            let err = match SshHost::connect(target, self.prompter) {
                Ok(host) => return Ok(Some(Box::new(host))),
                Err(err) => err,
            };
            let Some(key) = err.unknown_host_key().map(str::to_owned) else {
                if !self.asking {
                    return Err(err.into());
                }
                self.prompter.say(&format!("✗ {err}"));
                return Ok(None);
            };
            if !self.asking {
                return Err(err.into());
            }
            self.prompter.say(&format!(
                "{} offers the host key {key}, which {} does not list. Compare it with `ssh-keygen -lf` of the key in /etc/ssh/ on the host itself.",
                node.host,
                known_hosts.display()
            ));
            match self
                .prompter
                .confirm("Trust this host key?", false)
                .map_err(stopped)?
            {
                Some(true) => {
                    err.accept_unknown_host_key().with_context(|| {
                        format!("cannot record the host key in {}", known_hosts.display())
                    })?;
                    self.prompter
                        .say(&format!("recorded in {}", known_hosts.display()));
                }
                _ => {
                    self.prompter
                        .say("not trusted: nothing was recorded, nothing was run there.");
                    return Ok(None);
                }
            }
        }
    }

    /// The replication user and password (not for Galera, which needs neither: its state
    /// transfer logs in by unix_socket), and TLS.
    fn replication(&self, galera: bool) -> anyhow::Result<Replication> {
        let defaults = Replication::default();
        if galera {
            let tls = self
                .prompter
                .confirm(
                    "Encrypt replication and state transfers with TLS? (a private CA and certificate are made on each node)",
                    defaults.tls,
                )
                .map_err(stopped)?
                .unwrap_or(defaults.tls);
            return Ok(Replication { tls, ..defaults });
        }
        let user = loop {
            let user = self.text(
                "Replication user (made on the primary, only REPLICATION SLAVE)",
                Some(&defaults.user),
                "replication.user",
                "",
            )?;
            if !user.is_empty()
                && user.len() <= 32
                && user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                break user;
            }
            self.refuse(&format!(
                "{user:?} is not usable: 1 to 32 letters, digits or underscores"
            ))?;
        };
        let items = vec![
            "generate a strong one, kept on the hosts (0600, root)".to_owned(),
            "read it from an environment variable".to_owned(),
        ];
        let password_env = match self
            .prompter
            .select("Replication password", &items, 0)
            .map_err(stopped)?
        {
            Some(1) => loop {
                let name = self.text(
                    "Environment variable that holds it",
                    Some(PASSWORD_ENV),
                    "replication.password_env",
                    "",
                )?;
                if name.is_empty()
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || name.starts_with(|c: char| c.is_ascii_digit())
                {
                    self.refuse(&format!("{name:?} is not an environment variable name"))?;
                    continue;
                }
                if std::env::var_os(&name).is_none() {
                    self.say(&format!(
                        "note: {name} is not set here; set it before init runs (this run and later ones)"
                    ));
                }
                break Some(name);
            },
            _ => None,
        };
        let tls = self
            .prompter
            .confirm(
                "Encrypt replication with TLS? (a private CA and certificate are made on the primary)",
                defaults.tls,
            )
            .map_err(stopped)?
            .unwrap_or(defaults.tls);
        Ok(Replication {
            user,
            password_env,
            tls,
            fence_timeout_secs: defaults.fence_timeout_secs,
        })
    }
}

/// The wizard sets up the two-node form: these are its two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Primary,
    Secondary,
    Third,
}

impl Slot {
    fn as_str(self) -> &'static str {
        match self {
            Slot::Primary => "primary",
            Slot::Secondary => "secondary",
            Slot::Third => "third node",
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn title(name: Slot) -> &'static str {
    match name {
        Slot::Primary => "Primary",
        Slot::Secondary => "Secondary",
        Slot::Third => "Third",
    }
}

/// A value without a default, when nothing may be asked: exit 2, naming the key.
fn missing(key: &str, how: &str) -> anyhow::Error {
    Exit::usage(format!(
        "{key} is not set, and nothing may be asked (--yes, or no terminal): {how}"
    ))
    .into()
}

fn host_how(name: Slot) -> String {
    format!(
        "pass --{name} HOST, or write a config (`ha-setup config example > ha-setup.toml`, then `[{name}] host = \"…\"`), or run `ha-setup init` on a terminal to be asked"
    )
}

fn other(name: Slot) -> Slot {
    match name {
        Slot::Primary => Slot::Secondary,
        Slot::Secondary | Slot::Third => Slot::Primary,
    }
}

fn empty_node(host: String) -> Node {
    Node {
        host,
        role: None,
        ssh_user: None,
        ssh_port: None,
        identity_file: None,
        identity_passphrase_env: None,
        ssh_password_env: None,
        replication_host: None,
        db_port: None,
        server_id: None,
        datadir: None,
        config_dir: None,
        service: None,
    }
}

/// Private keys in ~/.ssh (`id_*` without `.pub`), as `~/.ssh/…` so the config stays
/// valid for the same user wherever HOME is.
fn found_keys() -> Vec<PathBuf> {
    let dir = expand_home(Path::new("~/.ssh"));
    let mut keys: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with("id_") && !name.ends_with(".pub"))
        .map(|name| Path::new("~/.ssh").join(name))
        .collect();
    keys.sort();
    keys
}

/// The config as the wizard writes it: only what was answered, and a pointer to the rest.
pub fn render(config: &Config) -> String {
    let mut text = format!(
        "# Written by `ha-setup init`. `ha-setup config example` documents every key.\n\
         engine = {}\n",
        quoted(config.engine.name())
    );
    if config.topology != crate::config::Topology::PrimaryReplica {
        text.push_str(&format!("topology = {}\n", quoted(config.topology.name())));
    }
    for (name, node) in &config.nodes {
        if config.two_node_form {
            text.push_str(&format!("\n[{name}]\nhost = {}\n", quoted(&node.host)));
        } else {
            text.push_str(&format!(
                "\n[nodes.{name}]\nhost = {}\n",
                quoted(&node.host)
            ));
        }
        if node.role == Some(crate::config::NodeRole::Primary) && !config.two_node_form {
            text.push_str("role = \"primary\"\n");
        }
        if let Some(user) = &node.ssh_user {
            text.push_str(&format!("ssh_user = {}\n", quoted(user)));
        }
        if let Some(port) = node.ssh_port {
            text.push_str(&format!("ssh_port = {port}\n"));
        }
        if let Some(key) = &node.identity_file {
            text.push_str(&format!(
                "identity_file = {}\n",
                quoted(&key.to_string_lossy())
            ));
        }
        if let Some(address) = &node.replication_host {
            text.push_str(&format!("replication_host = {}\n", quoted(address)));
        }
    }
    if config.topology == crate::config::Topology::Galera {
        text.push_str(&format!(
            "\n[replication]\n# Galera needs no replication user: state transfers log in by unix_socket\ntls = {}\n",
            config.replication.tls
        ));
    } else {
        text.push_str(&format!(
            "\n[replication]\nuser = {}\n",
            quoted(&config.replication.user)
        ));
        match &config.replication.password_env {
            Some(name) => text.push_str(&format!("password_env = {}\n", quoted(name))),
            None => text.push_str(
                "# no password_env: a strong password is generated and kept on the hosts (0600)\n",
            ),
        }
        text.push_str(&format!("tls = {}\n", config.replication.tls));
    }
    if config.ssh.known_hosts != Ssh::default().known_hosts {
        text.push_str(&format!(
            "\n[ssh]\nknown_hosts = {}\n",
            quoted(&config.ssh.known_hosts.to_string_lossy())
        ));
    }
    text
}

/// A TOML basic string: JSON's escapes are TOML's.
fn quoted(value: &str) -> String {
    serde_json::to_string(value).expect("a string serialises")
}

/// Where the wizard's config goes: the path init was given (or the default).
pub fn config_path_note(path: &Path) -> String {
    format!(
        "Next time: `ha-setup init -c {}` (add --yes in scripts), `ha-setup status`.",
        path.display()
    )
}

#[cfg(test)]
mod tests;
