//! Where ha-setup puts things on a MariaDB host, and the settings each node should run
//! with: computed from the config and what the servers report, before anything changes.

use std::net::IpAddr;

use anyhow::Context;
use serde::Serialize;

use super::facts::{Server, Version};
use crate::config::{Config, Node};
use crate::plan::NodeName;

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
/// What the secondary received: the bundle's manifest summary and where its old data went.
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

/// Where the secondary receives the bundle: beside its datadir, so that putting the data
/// in place is a rename on one filesystem.
pub fn incoming_dir(datadir: &str) -> String {
    format!("{datadir}.ha-setup-incoming")
}

/// Where the secondary's previous datadir is moved: never deleted.
pub fn moved_aside_dir(datadir: &str, stamp: &str) -> String {
    format!("{datadir}.ha-setup-old-{stamp}")
}

/// The server ids of the pair: the config's, else the primary keeps a non-zero id it
/// already has and the secondary takes the next one.
pub fn server_ids(config: &Config, primary: Option<&Server>) -> (u32, u32) {
    let primary_id = config
        .primary
        .server_id
        .or(primary.map(|s| s.server_id).filter(|id| *id != 0))
        .unwrap_or(1);
    let secondary_id = config
        .secondary
        .server_id
        .unwrap_or(if primary_id == u32::MAX {
            1
        } else {
            primary_id + 1
        });
    (primary_id, secondary_id)
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
    pub role: &'static str,
    pub server_id: u32,
    pub log_bin: String,
    pub bind_address: String,
    pub replica: bool,
    pub relay_log: String,
    pub tls: bool,
}

impl NodeSettings {
    pub fn new(
        config: &Config,
        name: NodeName,
        server_id: u32,
        server: Option<&Server>,
    ) -> NodeSettings {
        let node = match name {
            NodeName::Primary => &config.primary,
            NodeName::Secondary => &config.secondary,
        };
        let replica = name == NodeName::Secondary;
        NodeSettings {
            role: if replica { "secondary" } else { "primary" },
            server_id,
            // A binary log the primary already writes keeps its name, so nothing reading
            // it (backups, other replicas) loses track.
            log_bin: server
                .filter(|s| s.log_bin && !replica)
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
            replica,
            relay_log: "mariadb-relay-bin".to_owned(),
            // Both serve TLS, each with its own CA, so either can be the primary.
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
                primary => &config.primary.host,
                secondary => &config.secondary.host,
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
    fn server_ids_default_to_one_and_two() {
        let config = config();
        assert_eq!(server_ids(&config, None), (1, 2));
    }

    #[test]
    fn listens_on_loopback_and_the_replication_address() {
        let config = config();
        assert_eq!(
            bind_address(&config.primary, Some(Version(10, 11, 6))),
            "127.0.0.1,198.51.100.11"
        );
        assert_eq!(
            bind_address(&config.primary, Some(Version(10, 6, 1))),
            "0.0.0.0"
        );
    }

    #[test]
    fn primary_and_secondary_snippets() {
        let config = config();
        let primary = NodeSettings::new(&config, NodeName::Primary, 1, None);
        let text = primary.render(&config).unwrap();
        insta::assert_snapshot!("primary_cnf", text);
        let secondary = NodeSettings::new(&config, NodeName::Secondary, 2, None);
        insta::assert_snapshot!("secondary_cnf", secondary.render(&config).unwrap());
    }
}
