//! The config file (SPEC.md, "Configuration file"): types, defaults, and loading with
//! errors that name the file, line, column and key.

mod error;
mod locate;
mod validate;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Problem};

use crate::node::NodeName;

/// Where the config file is looked for when neither `-c` nor `HA_SETUP_CONFIG` names one.
pub const DEFAULT_PATH: &str = "ha-setup.toml";

/// The commented example printed by `ha-setup config example`.
pub const EXAMPLE: &str = include_str!("../../templates/ha-setup.example.toml");

/// The `host` value that means "this machine, without SSH".
pub const LOCAL_HOST: &str = "local";

/// The config as written: either the two-node form (`[primary]`, `[secondary]`) or
/// `[nodes.NAME]` tables; [`Config`] is the one shape the rest of the program sees.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    engine: Engine,
    #[serde(default)]
    topology: Topology,
    cluster: Option<String>,
    primary: Option<Node>,
    secondary: Option<Node>,
    #[serde(default)]
    nodes: IndexMap<NodeName, Node>,
    #[serde(default)]
    ssh: Ssh,
    #[serde(default)]
    replication: Replication,
    #[serde(default)]
    transfer: Transfer,
    #[serde(default)]
    postgresql: Postgresql,
    #[serde(default)]
    sync_files: Vec<SyncFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub engine: Engine,
    pub topology: Topology,
    /// The cluster's name, for the state directory; default: made from the nodes' hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Every node, in the order the file lists them.
    pub nodes: IndexMap<NodeName, Node>,
    /// The file uses `[primary]`/`[secondary]`, so keys in messages are `primary.host`
    /// rather than `nodes.primary.host`.
    #[serde(skip)]
    pub two_node_form: bool,
    pub ssh: Ssh,
    pub replication: Replication,
    pub transfer: Transfer,
    pub postgresql: Postgresql,
    pub sync_files: Vec<SyncFile>,
}

/// How the nodes replicate (SPEC.md, `topology`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// One writable primary, every other node its replica.
    #[default]
    PrimaryReplica,
    /// Two nodes, both writable, each the other's replica.
    PrimaryPrimary,
    /// Three or more nodes in one Galera cluster.
    Galera,
}

impl Topology {
    pub fn name(self) -> &'static str {
        match self {
            Topology::PrimaryReplica => "primary-replica",
            Topology::PrimaryPrimary => "primary-primary",
            Topology::Galera => "galera",
        }
    }
}

/// What `role` may say of a node in `[nodes.NAME]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Where primary-replica starts: the node whose data the others get at the first init.
    Primary,
    Replica,
    /// Galera only: a light host that runs `garbd` (Debian's galera-arbitrator-4) and no
    /// database, so two data nodes keep a majority when one of them is lost.
    Arbitrator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Mariadb,
    Postgresql,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Mariadb => "mariadb",
            Engine::Postgresql => "postgresql",
        }
    }

    pub fn default_db_port(self) -> u16 {
        match self {
            Engine::Mariadb => 3306,
            Engine::Postgresql => 5432,
        }
    }
}

/// One database host. Settings left out here are discovered on the host, or taken from
/// `~/.ssh/config`, at run time.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Where SSH reaches it; `local` means this machine, without SSH.
    pub host: String,
    /// In `[nodes.NAME]`: `"primary"` marks where primary-replica starts (for Galera, the
    /// node whose data the cluster starts from). Only a start: which node is primary later
    /// is read from the servers. `"arbitrator"`: a Galera arbitrator, no database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<NodeRole>,
    pub ssh_user: Option<String>,
    pub ssh_port: Option<u16>,
    pub identity_file: Option<PathBuf>,
    /// Name of the environment variable that holds the identity file's passphrase.
    pub identity_passphrase_env: Option<String>,
    /// Name of the environment variable that holds the SSH password, for password login.
    pub ssh_password_env: Option<String>,
    /// Address the other node's database uses for this one.
    pub replication_host: Option<String>,
    pub db_port: Option<u16>,
    pub server_id: Option<u32>,
    pub datadir: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    pub service: Option<String>,
}

impl Node {
    pub fn is_local(&self) -> bool {
        self.host == LOCAL_HOST
    }

    /// A Galera arbitrator (`role = "arbitrator"`): it runs garbd and holds no data.
    pub fn is_arbitrator(&self) -> bool {
        self.role == Some(NodeRole::Arbitrator)
    }

    /// The address the other node's database connects to.
    pub fn replication_address(&self) -> &str {
        self.replication_host.as_deref().unwrap_or(&self.host)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ssh {
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    pub connect_timeout_secs: u64,
    /// How often a keepalive goes out on an idle connection.
    pub keepalive_secs: u64,
    /// How long a host may stay silent (keepalives unanswered) before it counts as cut off.
    pub io_timeout_secs: u64,
    /// The OpenSSH client config whose Host aliases, HostName, User, Port and IdentityFile apply.
    pub config_file: PathBuf,
    /// Bulk streams (the bundle, files) go through OpenSSH's own `ssh` when it is installed
    /// here and logs in without asking; libssh2 encrypts far slower (docs/BENCHMARKS.md).
    pub bulk_via_openssh: bool,
}

impl Default for Ssh {
    fn default() -> Self {
        Ssh {
            known_hosts: PathBuf::from("~/.ssh/known_hosts"),
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout_secs: 10,
            keepalive_secs: 5,
            io_timeout_secs: 30,
            config_file: PathBuf::from("~/.ssh/config"),
            bulk_via_openssh: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// An unknown or changed host key is refused.
    Strict,
    /// An unknown host key is recorded; a changed one is refused.
    AcceptNew,
}

impl HostKeyPolicy {
    pub fn name(self) -> &'static str {
        match self {
            HostKeyPolicy::Strict => "strict",
            HostKeyPolicy::AcceptNew => "accept-new",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Replication {
    pub user: String,
    /// Name of the environment variable that holds the replication password; unset means
    /// a strong password is generated and kept on the hosts, 0600.
    pub password_env: Option<String>,
    pub tls: bool,
    /// How long a fencing or promoting statement may wait (for the running write
    /// statements `read_only` waits for, for locks) before ha-setup gives up and undoes
    /// what it did; the application's new writes queue behind a fence for at most this long.
    pub fence_timeout_secs: u64,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            user: "ha_repl".to_owned(),
            password_env: None,
            tls: true,
            fence_timeout_secs: 5,
        }
    }
}

/// How a copy of the data (the bundle) travels from the primary to a replica.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Transfer {
    pub route: Route,
    pub compress: crate::bundle::Compress,
}

/// Settings only `engine = "postgresql"` reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Postgresql {
    /// The most WAL a replication slot may keep on the primary (PostgreSQL's
    /// `max_slot_wal_keep_size`, e.g. "8GB"): a standby that stays away longer loses its
    /// slot and needs `recover rebuild`, rather than the primary's disk filling up.
    pub max_slot_wal_keep_size: String,
    /// How many instances of the application connect (MAAS: region controllers), each
    /// using up to `connections_per_instance`: preflight warns when `max_connections` is
    /// too low for them. Unset: not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_instances: Option<u32>,
    pub connections_per_instance: u32,
    /// Let init raise `max_connections` to what the application needs (a restart).
    pub raise_max_connections: bool,
}

impl Default for Postgresql {
    fn default() -> Self {
        Postgresql {
            max_slot_wal_keep_size: "8GB".to_owned(),
            app_instances: None,
            // MAAS: "each region controller uses up to 40 connections".
            connections_per_instance: 40,
            raise_max_connections: false,
        }
    }
}

impl Postgresql {
    /// The connections the application's instances need, with PostgreSQL's reserved ones
    /// for superusers (3, its default) and two for ha-setup and monitoring; None when the
    /// config does not say how many instances connect.
    pub fn connections_needed(&self) -> Option<u32> {
        self.app_instances.map(|n| {
            n.saturating_mul(self.connections_per_instance)
                .saturating_add(5)
        })
    }
}

/// Which way the bundle goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// Straight from the primary to the replica when the primary can log in to it over SSH
    /// (a one-time key), else relayed through this machine, saying why.
    #[default]
    Auto,
    /// Only straight from host to host: an error when the primary cannot log in.
    Direct,
    /// Always through this machine.
    Relay,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Auto => "auto",
            Route::Direct => "direct",
            Route::Relay => "relay",
        }
    }
}

/// An application file that must be identical on both nodes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncFile {
    pub path: PathBuf,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|err| ConfigError::unreadable(path, err))?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `origin` only names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let written: Written =
            toml::from_str(text).map_err(|err| ConfigError::from_toml(origin, text, &err))?;
        let (config, mut problems) = Config::from_written(written);
        // A file whose form is wrong gets that said once, not again as a count of nodes.
        let form_wrong = !problems.is_empty();
        problems.extend(
            validate::problems(&config)
                .into_iter()
                .filter(|p| !(form_wrong && (p.key == "nodes" || p.key == "topology"))),
        );
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::from_problems(origin, text, problems))
        }
    }
}

impl Config {
    fn from_written(written: Written) -> (Config, Vec<Problem>) {
        let mut problems = Vec::new();
        let pair = written.primary.is_some() || written.secondary.is_some();
        let two_node_form = pair && written.nodes.is_empty();
        let nodes = if pair && !written.nodes.is_empty() {
            problems.push(
                Problem::new(
                    "nodes",
                    "[nodes.*] tables and [primary]/[secondary] cannot be mixed: a file uses one form",
                )
                .help("move [primary] and [secondary] into [nodes.primary] (with role = \"primary\") and [nodes.secondary]"),
            );
            // Every node given, so the other checks judge them all.
            let mut nodes = IndexMap::new();
            for (name, node) in [
                ("primary", written.primary),
                ("secondary", written.secondary),
            ] {
                if let Some(node) = node {
                    nodes.insert(NodeName::new(name), node);
                }
            }
            nodes.extend(written.nodes);
            nodes
        } else if pair {
            let mut nodes = IndexMap::new();
            for (name, node) in [
                ("primary", written.primary),
                ("secondary", written.secondary),
            ] {
                match node {
                    Some(node) => {
                        nodes.insert(NodeName::new(name), node);
                    }
                    None => problems.push(
                        Problem::new(name, format!("[{name}] is missing"))
                            .help(format!("add a [{name}] table with at least `host = \"…\"`")),
                    ),
                }
            }
            nodes
        } else {
            if written.nodes.is_empty() {
                problems.push(Problem::new("nodes", "the file names no nodes").help(
                    "add [primary] and [secondary] tables, or one [nodes.NAME] table per node",
                ));
            }
            written.nodes
        };
        let config = Config {
            engine: written.engine,
            topology: written.topology,
            cluster: written.cluster,
            nodes,
            two_node_form,
            ssh: written.ssh,
            replication: written.replication,
            transfer: written.transfer,
            postgresql: written.postgresql,
            sync_files: written.sync_files,
        };
        (config, problems)
    }

    /// The dotted key of a node's field, as the file spells it (`secondary.host`,
    /// `nodes.db2.host`).
    pub fn key(&self, name: &str, field: &str) -> String {
        let table = if self.two_node_form {
            name.to_owned()
        } else {
            format!("nodes.{name}")
        };
        if field.is_empty() {
            table
        } else {
            format!("{table}.{field}")
        }
    }

    /// A node by its name; names come from this config, so a miss is a bug.
    pub fn node(&self, name: &NodeName) -> &Node {
        self.nodes
            .get(name.as_str())
            .unwrap_or_else(|| panic!("no node {name} in the config"))
    }

    /// Where primary-replica starts: the node marked `role = "primary"`, or `[primary]`.
    /// Only the first init uses it; later operations read the roles from the servers.
    pub fn starting_primary(&self) -> &NodeName {
        self.nodes
            .iter()
            .find(|(_, node)| node.role == Some(NodeRole::Primary))
            .map(|(name, _)| name)
            .or_else(|| self.nodes.keys().find(|name| name.as_str() == "primary"))
            .or_else(|| {
                self.nodes
                    .iter()
                    .find(|(_, node)| !node.is_arbitrator())
                    .map(|(name, _)| name)
            })
            .or_else(|| self.nodes.keys().next())
            .expect("a valid config has nodes")
    }

    /// A node named on the command line (`--to NODE`): an unknown name is a usage error
    /// that lists the config's names.
    pub fn named(&self, given: &str, flag: &str) -> Result<NodeName, crate::error::Exit> {
        match self.nodes.get_key_value(given) {
            Some((name, _)) => Ok(name.clone()),
            None => Err(crate::error::Exit::usage(format!(
                "{flag}: no node is named {given:?} in the config; its nodes are {}",
                self.nodes
                    .keys()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// A stable name for the cluster, for the state directory on this machine: the
    /// `cluster` key, else made from every node's SSH address (in name order, so it does
    /// not change when roles do).
    pub fn cluster_id(&self) -> String {
        if let Some(cluster) = &self.cluster {
            return cluster.clone();
        }
        let mut hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|(name, node)| format!("{name}={}:{}", node.host, node.ssh_port.unwrap_or(22)))
            .collect();
        hosts.sort();
        let first = self.node(self.starting_primary()).host.clone();
        use sha2::Digest;
        let digest = sha2::Sha256::digest(hosts.join("\n").as_bytes());
        format!("{first}-{}", &hex::encode(digest)[..12])
    }
}

/// Expands a leading `~/` to the current user's home directory.
pub fn expand_home(path: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest),
            None => path.to_path_buf(),
        },
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests;
