//! Where ha-setup puts things on a MariaDB host, and the settings each node should run
//! with: computed from the config and what the servers report, before anything changes.

use std::net::IpAddr;

use anyhow::Context;
use serde::Serialize;

use std::collections::BTreeMap;

use super::facts::{HostFacts, Server, Version};
use super::observe;
use crate::config::{Config, Node};
use crate::node::NodeName;
use crate::plan::Ctx;
use crate::topology::Topology;

pub use crate::password::PASSWORD_FILE;
pub use crate::tool::{STREAM_DIR, TOOL_DIR};
/// TLS material for the replication channel: the node's own CA, certificate and key,
/// and the other node's CA as `peer-ca.pem`.
pub const TLS_DIR: &str = "/etc/mysql/ha-setup-tls";
pub const PEER_CA: &str = "/etc/mysql/ha-setup-tls/peer-ca.pem";
/// Where ha-setup before bundle format 3 kept a full snapshot on the primary (and its
/// `.complete` marker); removed where a run finds it.
pub const OLD_SNAPSHOT_DIR: &str = "/var/lib/ha-setup/backup";
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

/// Where a value of [`Paths`] came from, for people: preflight prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The node's table in the config file.
    Config,
    /// The running server (`@@datadir`).
    Server,
    /// The server's option files: the file named, or the server's reading of them.
    Options(String),
    /// What the host has: a systemd unit, an init script.
    Host(String),
    /// Nothing was found: the usual place on Debian, unconfirmed.
    Assumed,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Config => f.write_str("set in the config"),
            Origin::Server => f.write_str("from the running server"),
            Origin::Options(what) => write!(f, "from {what}"),
            Origin::Host(what) => write!(f, "{what}"),
            Origin::Assumed => f.write_str("nothing found on the host: assumed"),
        }
    }
}

/// One value of [`Paths`], with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub value: String,
    pub origin: Origin,
}

impl Found {
    fn new(value: impl Into<String>, origin: Origin) -> Found {
        Found {
            value: value.into(),
            origin,
        }
    }
}

/// Where MariaDB lives on one node: found on the host (the running server, its option
/// files, its service manager), the config's keys overriding. Never assumed from the
/// config's silence: a copy put where the server does not look would be replaced by the
/// old data at the next start, and then replicate from the wrong position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub datadir: Found,
    /// The directory for ha-setup's settings file.
    pub config_dir: Found,
    pub service: Found,
}

impl Paths {
    /// The config's keys first; then the running server; then what the host's files say.
    pub fn resolve(node: &Node, host: Option<&HostFacts>, server: Option<&Server>) -> Paths {
        let key = |path: &Option<std::path::PathBuf>| {
            path.as_ref()
                .map(|d| Found::new(trim_dir(&d.to_string_lossy()), Origin::Config))
        };
        let datadir = key(&node.datadir)
            .or_else(|| server.map(|s| Found::new(s.datadir.clone(), Origin::Server)))
            .or_else(|| {
                host.filter(|h| !h.datadir_configured.is_empty()).map(|h| {
                    Found::new(
                        h.datadir_configured.clone(),
                        Origin::Options("the server's settings (mariadbd --verbose --help)".into()),
                    )
                })
            })
            .unwrap_or_else(|| Found::new(DEFAULT_DATADIR, Origin::Assumed));
        let config_dir = key(&node.config_dir)
            .or_else(|| {
                host.filter(|h| !h.config_dir.is_empty()).map(|h| {
                    Found::new(
                        h.config_dir.clone(),
                        Origin::Options(format!("the last !includedir of {}", h.config_dir_from)),
                    )
                })
            })
            .unwrap_or_else(|| Found::new(DEFAULT_CONFIG_DIR, Origin::Assumed));
        let service = node
            .service
            .as_ref()
            .map(|s| Found::new(s.clone(), Origin::Config))
            .or_else(|| {
                host.filter(|h| !h.service.is_empty())
                    .map(|h| Found::new(h.service.clone(), Origin::Host(h.service_from.clone())))
            })
            .unwrap_or_else(|| Found::new(DEFAULT_SERVICE, Origin::Assumed));
        Paths {
            datadir,
            config_dir,
            service,
        }
    }

    /// ha-setup's settings file.
    pub fn cnf_path(&self) -> String {
        format!("{}/{CNF_NAME}", self.config_dir.value)
    }

    /// Where the copy is received, on the data's own filesystem.
    pub fn incoming_dir(&self) -> String {
        incoming_dir(&self.datadir.value)
    }
}

fn trim_dir(path: &str) -> String {
    match path.trim_end_matches('/') {
        "" => "/".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

/// Where MariaDB lives on a node, from what the run observed of it.
pub fn paths(cx: &mut Ctx<'_>, name: &NodeName) -> Paths {
    let seen = cx.observe(name);
    Paths::resolve(
        cx.node(name),
        observe::host_facts(&seen),
        observe::state(&seen).map(|s| &s.server),
    )
}

/// ha-setup's settings file on a node.
pub fn cnf_path(cx: &mut Ctx<'_>, name: &NodeName) -> String {
    paths(cx, name).cnf_path()
}

/// The service that runs MariaDB on a node.
pub fn service(cx: &mut Ctx<'_>, name: &NodeName) -> String {
    paths(cx, name).service.value
}

// The layout of a replaced datadir, and why: the incoming copy and the old data stay on the
// datadir's own filesystem, so putting the copy in place is renames (no copying, no room
// beyond the copy itself) and the datadir may be a mount point of its own (a dedicated
// disk or volume, where the datadir itself cannot be renamed: EBUSY). On a mount point the
// only place on that filesystem is inside the datadir, so both go there, in directories
// MariaDB is told to ignore (`ignore_db_dirs` in templates/mariadb-node.cnf: every
// directory in a datadir is otherwise a database, and mariadb-upgrade would rename these).
// The same layout serves a plain directory, so there is one way, tested on both.

/// The staging directory's name inside the datadir.
pub const INCOMING_NAME: &str = ".ha-setup-incoming";
/// The directory inside the datadir that keeps replaced data, one subdirectory per time.
pub const MOVED_ASIDE_NAME: &str = ".ha-setup-old";

/// Where a replica receives the bundle: inside its datadir, on the data's own filesystem,
/// so that putting the data in place is renames there.
pub fn incoming_dir(datadir: &str) -> String {
    format!("{}/{INCOMING_NAME}", datadir.trim_end_matches('/'))
}

/// Where a replica's previous data is moved: never deleted.
pub fn moved_aside_dir(datadir: &str, stamp: &str) -> String {
    format!(
        "{}/{MOVED_ASIDE_NAME}/{stamp}",
        datadir.trim_end_matches('/')
    )
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
    /// With two writable nodes (`topology = "primary-primary"`): what keeps their writes
    /// apart.
    pub pair: Option<PairSettings>,
}

/// What each of two writable nodes needs so that their writes never collide by
/// construction and never loop: its own GTID domain (each node's transactions form one
/// ordered stream that only it writes), and AUTO_INCREMENT values from disjoint sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PairSettings {
    /// The node's server_id: one number per node to know, and GTIDs read `D-S-N` with
    /// D = S for every transaction a node wrote itself.
    pub gtid_domain_id: u32,
    pub auto_increment_increment: u32,
    /// 1 for the config's first node, 2 for the second.
    pub auto_increment_offset: u32,
}

impl PairSettings {
    pub fn new(config: &Config, name: &NodeName, server_id: u32) -> Option<PairSettings> {
        if config.topology != crate::config::Topology::PrimaryPrimary {
            return None;
        }
        let index = config.nodes.get_index_of(name).unwrap_or(0) as u32;
        Some(PairSettings {
            gtid_domain_id: server_id,
            auto_increment_increment: 2,
            auto_increment_offset: index + 1,
        })
    }
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
            pair: PairSettings::new(config, name, server_id),
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
                net_timeout => super::link::NET_TIMEOUT_SECS,
                ignored_dirs => [INCOMING_NAME, MOVED_ASIDE_NAME, "lost+found"],
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
        // A session keeps the gtid_domain_id and auto_increment values it connected with:
        // SET GLOBAL would leave the application's open connections writing into the old
        // domain and the old sequence, colliding with the other node's keys. A restart
        // makes every session take them.
        if let Some(pair) = &self.pair {
            let wanted = [
                ("gtid_domain_id", server.gtid_domain_id, pair.gtid_domain_id),
                (
                    "auto_increment_increment",
                    server.auto_increment_increment,
                    pair.auto_increment_increment,
                ),
                (
                    "auto_increment_offset",
                    server.auto_increment_offset,
                    pair.auto_increment_offset,
                ),
            ];
            for (name, now, want) in wanted {
                if now != want {
                    reasons.push(format!("{name} is {now} and must be {want}"));
                }
            }
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
        let none = Topology::new(vec![], &config);
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
    fn paths_come_from_the_host_and_the_config_overrides() {
        let config = config();
        let node = config.node(&NodeName::new("secondary"));
        let host = HostFacts {
            config_dir: "/etc/my.cnf.d".into(),
            config_dir_from: "/etc/my.cnf".into(),
            service: "mysql".into(),
            service_from: "/etc/init.d/mysql".into(),
            systemd: false,
            datadir_configured: "/srv/mysql".into(),
        };
        // Stopped: the datadir its settings name.
        let paths = Paths::resolve(node, Some(&host), None);
        assert_eq!(paths.datadir.value, "/srv/mysql");
        assert!(matches!(paths.datadir.origin, Origin::Options(_)));
        assert_eq!(paths.cnf_path(), "/etc/my.cnf.d/90-ha-setup.cnf");
        assert_eq!(paths.service.value, "mysql");
        assert_eq!(paths.incoming_dir(), "/srv/mysql/.ha-setup-incoming");
        // Running: the server's own word.
        let server = super::super::facts::parse_server(
            &[
                "10.11.6-MariaDB",
                "2",
                "1",
                "",
                "ROW",
                "1",
                "1",
                "/data/db/",
                "3306",
                "",
                "",
                "",
                "",
                "YES",
            ]
            .map(|v| Some(v.to_owned())),
        )
        .unwrap();
        assert_eq!(
            Paths::resolve(node, Some(&host), Some(&server)).datadir,
            Found::new("/data/db", Origin::Server)
        );
        // The config's keys win.
        let mut overridden = node.clone();
        overridden.datadir = Some("/var/lib/mysql/".into());
        overridden.service = Some("mariadb".into());
        let paths = Paths::resolve(&overridden, Some(&host), Some(&server));
        assert_eq!(paths.datadir, Found::new("/var/lib/mysql", Origin::Config));
        assert_eq!(paths.service, Found::new("mariadb", Origin::Config));
        // Nothing found: said so, never silently Debian's.
        let nothing = Paths::resolve(node, Some(&HostFacts::default()), None);
        assert_eq!(nothing.config_dir.origin, Origin::Assumed);
        assert_eq!(nothing.service.origin, Origin::Assumed);
        assert_eq!(nothing.datadir.origin, Origin::Assumed);
    }

    #[test]
    fn the_copy_and_the_old_data_stay_inside_the_datadir() {
        assert_eq!(
            incoming_dir("/var/lib/mysql/"),
            "/var/lib/mysql/.ha-setup-incoming"
        );
        assert_eq!(
            moved_aside_dir("/var/lib/mysql", "20260101T000000Z"),
            "/var/lib/mysql/.ha-setup-old/20260101T000000Z"
        );
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

    #[test]
    fn two_writers_get_their_own_domain_and_sequence() {
        let config = Config::parse(
            "engine = \"mariadb\"\ntopology = \"primary-primary\"\n[primary]\nhost = \"198.51.100.11\"\n[secondary]\nhost = \"198.51.100.12\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let first = NodeSettings::new(&config, &NodeName::new("primary"), 1, None);
        let second = NodeSettings::new(&config, &NodeName::new("secondary"), 7, None);
        assert_eq!(
            second.pair,
            Some(PairSettings {
                gtid_domain_id: 7,
                auto_increment_increment: 2,
                auto_increment_offset: 2
            })
        );
        insta::assert_snapshot!("pair_first_cnf", first.render(&config).unwrap());
        // A running server with the old domain and sequence is restarted, not SET GLOBAL.
        let mut server = super::super::facts::parse_server(
            &[
                "10.11.6-MariaDB",
                "1",
                "1",
                "",
                "ROW",
                "1",
                "1",
                "/var/lib/mysql/",
                "3306",
                "127.0.0.1,198.51.100.11",
                "",
                "",
                "",
                "YES",
                "0",
                "1",
                "1",
                "0",
                "0",
            ]
            .map(|v| Some(v.to_owned())),
        )
        .unwrap();
        let reasons = first.needs_restart(&server);
        assert_eq!(
            reasons,
            [
                "gtid_domain_id is 0 and must be 1",
                "auto_increment_increment is 1 and must be 2"
            ]
        );
        server.gtid_domain_id = 1;
        server.auto_increment_increment = 2;
        assert!(first.needs_restart(&server).is_empty());
    }
}
