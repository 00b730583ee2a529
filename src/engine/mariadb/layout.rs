//! Where ha-setup puts things on a MariaDB host, and the settings each node should run
//! with: computed from the config and what the servers report, before anything changes.

use std::net::IpAddr;

use anyhow::Context;
use serde::Serialize;

use std::collections::BTreeMap;

use super::facts::{Server, Version};
use super::observe;
use crate::config::{Config, Node};
use crate::node::NodeName;
use crate::topology::Topology;

/// The tool's own directory on a host: its binary, the bundle work directory, the seed record.
pub const TOOL_DIR: &str = "/var/lib/ha-setup";
/// The replication password, 0600 root, on both nodes.
pub const PASSWORD_FILE: &str = "/etc/ha-setup/replication-password";
/// TLS material for the replication channel: the node's own CA, certificate and key,
/// and the other node's CA as `peer-ca.pem`.
pub const TLS_DIR: &str = "/etc/mysql/ha-setup-tls";
pub const PEER_CA: &str = "/etc/mysql/ha-setup-tls/peer-ca.pem";
/// The primary's bundle work directory (removed once the bundle has been sent).
pub const WORK_DIR: &str = "/var/lib/ha-setup/backup";
/// What a replica received: the bundle's manifest summary and where its old data went.
pub const SEED_RECORD: &str = "/var/lib/ha-setup/seed.json";
pub const CNF_NAME: &str = "90-ha-setup.cnf";
pub const DEFAULT_CONFIG_DIR: &str = "/etc/mysql/mariadb.conf.d";
pub const DEFAULT_DATADIR: &str = "/var/lib/mysql";
pub const DEFAULT_SERVICE: &str = "mariadb";
/// The binary log's name when ha-setup turns it on (in the datadir).
pub const DEFAULT_LOG_BIN: &str = "mariadb-bin";
/// The tool's small schema, for the canary.
pub const SCHEMA: &str = "ha_setup";

/// The path of this version of ha-setup on a host.
pub fn tool_path() -> String {
    format!("{TOOL_DIR}/bin/ha-setup-{}", env!("CARGO_PKG_VERSION"))
}

pub fn cnf_path(node: &Node) -> String {
    let dir = node
        .config_dir
        .as_ref()
        .map(|d| d.to_string_lossy().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| DEFAULT_CONFIG_DIR.to_owned());
    format!("{dir}/{CNF_NAME}")
}

pub fn service(node: &Node) -> &str {
    node.service.as_deref().unwrap_or(DEFAULT_SERVICE)
}

/// The datadir: the config's, else what the server reports, else Debian's.
pub fn datadir(node: &Node, server: Option<&Server>) -> String {
    node.datadir
        .as_ref()
        .map(|d| d.to_string_lossy().trim_end_matches('/').to_owned())
        .or_else(|| server.map(|s| s.datadir.clone()))
        .unwrap_or_else(|| DEFAULT_DATADIR.to_owned())
}

/// Where a replica receives the bundle: beside its datadir, so that putting the data
/// in place is a rename on one filesystem.
pub fn incoming_dir(datadir: &str) -> String {
    format!("{datadir}.ha-setup-incoming")
}

/// Where a replica's previous datadir is moved: never deleted.
pub fn moved_aside_dir(datadir: &str, stamp: &str) -> String {
    format!("{datadir}.ha-setup-old-{stamp}")
}

/// Every node's server_id: the config's; else the one it runs with, when ha-setup set it
/// up or it is the source (whose id its binary log already carries); else the smallest id
/// no other node has. Read from one topology, so every step of a run agrees.
pub fn server_ids(
    config: &Config,
    topology: &Topology,
    source: &NodeName,
) -> BTreeMap<NodeName, u32> {
    let mut ids: BTreeMap<NodeName, u32> = BTreeMap::new();
    for (name, node) in &config.nodes {
        let running = topology
            .nodes
            .iter()
            .find(|o| &o.name == name)
            .filter(|o| o.member || &o.name == source)
            .and_then(observe::state)
            .map(|s| s.server.server_id)
            .filter(|id| *id != 0);
        if let Some(id) = node.server_id.or(running) {
            ids.insert(name.clone(), id);
        }
    }
    let mut next = 1u32;
    for name in config.nodes.keys() {
        if ids.contains_key(name) {
            continue;
        }
        while ids.values().any(|id| *id == next) {
            next = next.wrapping_add(1).max(1);
        }
        ids.insert(name.clone(), next);
    }
    ids
}

/// Addresses a node's server listens on: loopback (local clients and tools) plus the
/// replication address. MariaDB before 10.11 takes only one address, so it listens on all.
pub fn bind_address(node: &Node, version: Option<Version>) -> String {
    let lists = version.is_none_or(|v| v >= Version(10, 11, 0));
    match node.replication_address().parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if lists => format!("127.0.0.1,{ip}"),
        Ok(IpAddr::V6(ip)) if lists => format!("::1,{ip}"),
        _ => "0.0.0.0".to_owned(),
    }
}

/// The settings of the tool's cnf snippet for one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSettings {
    pub server_id: u32,
    pub log_bin: String,
    pub bind_address: String,
    pub relay_log: String,
    pub tls: bool,
}

impl NodeSettings {
    /// The same settings whatever the node's role, so that a role change (promote,
    /// switchover) never rewrites the file or needs a restart.
    pub fn new(
        config: &Config,
        name: &NodeName,
        server_id: u32,
        server: Option<&Server>,
    ) -> NodeSettings {
        let node = config.node(name);
        NodeSettings {
            server_id,
            // A binary log the node already writes keeps its name, so nothing reading it
            // (backups, other replicas) loses track.
            log_bin: server
                .filter(|s| s.log_bin)
                .and_then(|s| s.log_bin_basename.clone())
                .filter(|base| {
                    *base
                        != format!(
                            "{}/{DEFAULT_LOG_BIN}",
                            server.map_or("", |s| s.datadir.as_str())
                        )
                })
                .unwrap_or_else(|| DEFAULT_LOG_BIN.to_owned()),
            bind_address: bind_address(node, server.map(|s| s.version)),
            relay_log: "mariadb-relay-bin".to_owned(),
            // Every node serves TLS with its own CA, so any can be the primary.
            tls: config.replication.tls,
        }
    }

    /// The cnf snippet's text.
    pub fn render(&self, config: &Config) -> anyhow::Result<String> {
        let mut env = minijinja::Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()?,
        );
        env.add_template(
            "node.cnf",
            include_str!("../../../templates/mariadb-node.cnf"),
        )?;
        let text = env
            .get_template("node.cnf")?
            .render(minijinja::context! {
                tool_version => env!("CARGO_PKG_VERSION"),
                nodes => config.nodes.keys().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
                tls_dir => TLS_DIR,
                ..minijinja::Value::from(minijinja::value::Serde(self))
            })
            .context("cannot render the MariaDB settings template")?;
        Ok(text)
    }

    /// Settings the running server lacks that only a restart applies, in words.
    pub fn needs_restart(&self, server: &Server) -> Vec<String> {
        let mut reasons = Vec::new();
        if !server.log_bin {
            reasons.push("the binary log is off".to_owned());
        }
        if !server.log_slave_updates {
            reasons.push("log_slave_updates is off".to_owned());
        }
        if normalize(&server.bind_address) != normalize(&self.bind_address) {
            reasons.push(format!(
                "it listens on {} and must listen on {}",
                if server.bind_address.is_empty() {
                    "*"
                } else {
                    &server.bind_address
                },
                self.bind_address
            ));
        }
        if self.tls && !server.have_ssl {
            reasons.push("TLS is off".to_owned());
        }
        reasons
    }
}

fn normalize(addresses: &str) -> Vec<String> {
    let mut list: Vec<String> = addresses
        .split(',')
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    list.sort();
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            "engine = \"mariadb\"\n[primary]\nhost = \"198.51.100.11\"\n[secondary]\nhost = \"198.51.100.12\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn server_ids_keep_the_sources_and_number_the_rest() {
        let config = config();
        let none = Topology { nodes: vec![] };
        let ids = server_ids(&config, &none, &NodeName::new("primary"));
        assert_eq!(ids.values().copied().collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn listens_on_loopback_and_the_replication_address() {
        let config = config();
        let primary = config.node(&NodeName::new("primary"));
        assert_eq!(
            bind_address(primary, Some(Version(10, 11, 6))),
            "127.0.0.1,198.51.100.11"
        );
        assert_eq!(bind_address(primary, Some(Version(10, 6, 1))), "0.0.0.0");
    }

    #[test]
    fn primary_and_secondary_snippets() {
        let config = config();
        let primary = NodeSettings::new(&config, &NodeName::new("primary"), 1, None);
        let text = primary.render(&config).unwrap();
        insta::assert_snapshot!("primary_cnf", text);
        let secondary = NodeSettings::new(&config, &NodeName::new("secondary"), 2, None);
        insta::assert_snapshot!("secondary_cnf", secondary.render(&config).unwrap());
    }
}
