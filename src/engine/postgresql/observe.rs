//! Reading a PostgreSQL node for the topology, in one round trip: which cluster, where it
//! lives, whether ha-setup set it up, and the server's state as one row of JSON.
//!
//! Roles as status shows them: a server out of recovery is the primary and takes writes;
//! one in recovery with a `primary_conninfo` is a standby of that primary; one in recovery
//! with none is a fenced primary (ha-setup keeps `standby.signal` in every node's data
//! directory, so a primary that restarts comes back that way: see recover.rs).

use std::cmp::Ordering;
use std::sync::Arc;

use serde::Deserialize;

use super::layout::{self, Cluster};
use super::position::Lsn;
use crate::config::Config;
use crate::host::{Cmd, Host, HostExt};
use crate::node::NodeName;
use crate::topology::{DbState, LinkState, Observed, Upstream};

const SCRIPT: &str = include_str!("scripts/observe.sh");

/// One row that says everything status, the topology and the steps read of a server.
pub const STATE_SQL: &str = "SELECT json_build_object(\
 'version_num', current_setting('server_version_num')::int,\
 'version', current_setting('server_version'),\
 'in_recovery', pg_is_in_recovery(),\
 'replay_paused', CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,\
 'datadir', current_setting('data_directory'),\
 'port', current_setting('port')::int,\
 'listen_addresses', current_setting('listen_addresses'),\
 'wal_level', current_setting('wal_level'),\
 'max_wal_senders', current_setting('max_wal_senders')::int,\
 'max_replication_slots', current_setting('max_replication_slots')::int,\
 'wal_log_hints', current_setting('wal_log_hints') = 'on',\
 'data_checksums', current_setting('data_checksums') = 'on',\
 'ssl', current_setting('ssl') = 'on',\
 'max_connections', current_setting('max_connections')::int,\
 'max_worker_processes', current_setting('max_worker_processes')::int,\
 'max_prepared_transactions', current_setting('max_prepared_transactions')::int,\
 'max_locks_per_transaction', current_setting('max_locks_per_transaction')::int,\
 'system_identifier', (SELECT system_identifier::text FROM pg_control_system()),\
 'timeline', (SELECT timeline_id FROM pg_control_checkpoint()),\
 'current_lsn', CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,\
 'receive_lsn', pg_last_wal_receive_lsn()::text,\
 'replay_lsn', pg_last_wal_replay_lsn()::text,\
 'replay_age', extract(epoch FROM now() - pg_last_xact_replay_timestamp()),\
 'primary_conninfo', current_setting('primary_conninfo'),\
 'primary_slot_name', current_setting('primary_slot_name'),\
 'pending_restart', (SELECT coalesce(json_agg(name), '[]') FROM pg_settings WHERE pending_restart),\
 'receiving', EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),\
 'receiver', (SELECT row_to_json(r) FROM (SELECT status, received_tli, flushed_lsn::text AS flushed_lsn, sender_host, sender_port, extract(epoch FROM now() - last_msg_receipt_time)::float8 AS receipt_age FROM pg_stat_wal_receiver) r),\
 'replicas', (SELECT coalesce(json_agg(r), '[]') FROM (SELECT application_name, client_addr::text AS client_addr, state, sent_lsn::text AS sent_lsn, replay_lsn::text AS replay_lsn, extract(epoch FROM replay_lag)::float8 AS replay_lag, CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint END AS lag_bytes FROM pg_stat_replication) r),\
 'slots', (SELECT coalesce(json_agg(s), '[]') FROM (SELECT slot_name, slot_type, temporary, active, wal_status, restart_lsn::text AS restart_lsn, CASE WHEN pg_is_in_recovery() OR restart_lsn IS NULL THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint END AS retained_bytes FROM pg_replication_slots) s)\
)";

/// What the server said of itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Server {
    pub version_num: u32,
    pub version: String,
    pub in_recovery: bool,
    pub replay_paused: bool,
    pub datadir: String,
    pub port: u16,
    pub listen_addresses: String,
    pub wal_level: String,
    pub max_wal_senders: u32,
    pub max_replication_slots: u32,
    pub wal_log_hints: bool,
    pub data_checksums: bool,
    pub ssl: bool,
    pub max_connections: u32,
    /// With max_connections, what a hot standby must run with at least as much of as its
    /// primary, or it does not start.
    #[serde(default)]
    pub max_worker_processes: u32,
    #[serde(default)]
    pub max_prepared_transactions: u32,
    #[serde(default)]
    pub max_locks_per_transaction: u32,
    pub system_identifier: String,
    pub timeline: u32,
    pub current_lsn: Option<String>,
    pub receive_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    pub replay_age: Option<f64>,
    pub primary_conninfo: String,
    pub primary_slot_name: String,
    pub pending_restart: Vec<String>,
    pub receiving: bool,
    pub receiver: Option<Receiver>,
    pub replicas: Vec<Replica>,
    pub slots: Vec<Slot>,
}

/// `pg_stat_wal_receiver`: the standby's view of its primary.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Receiver {
    pub status: String,
    pub received_tli: Option<u32>,
    pub flushed_lsn: Option<String>,
    pub sender_host: Option<String>,
    pub sender_port: Option<u16>,
    pub receipt_age: Option<f64>,
}

/// `pg_stat_replication`: a standby as its primary sees it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Replica {
    pub application_name: String,
    pub client_addr: Option<String>,
    pub state: Option<String>,
    pub sent_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    pub replay_lag: Option<f64>,
    /// WAL the primary wrote that the standby has not replayed yet.
    #[serde(default)]
    pub lag_bytes: Option<i64>,
}

/// `pg_replication_slots`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Slot {
    pub slot_name: String,
    pub slot_type: String,
    pub temporary: bool,
    pub active: bool,
    pub wal_status: Option<String>,
    pub restart_lsn: Option<String>,
    pub retained_bytes: Option<i64>,
}

impl Server {
    /// The newest WAL the node holds: written (a primary), or received or replayed (a
    /// standby; promotion replays what it received first).
    pub fn holds(&self) -> Option<Lsn> {
        [&self.current_lsn, &self.receive_lsn, &self.replay_lsn]
            .into_iter()
            .filter_map(|l| l.as_deref().and_then(|l| l.parse().ok()))
            .max()
    }

    /// Where a standby streams from, by its settings (the receiver may be down).
    pub fn upstream_address(&self) -> Option<(String, u16)> {
        if let Some(r) = &self.receiver
            && let (Some(host), Some(port)) = (&r.sender_host, r.sender_port)
            && r.status == "streaming"
        {
            return Some((host.clone(), port));
        }
        let mut host = None;
        let mut port = 5432;
        for (key, value) in conninfo_pairs(&self.primary_conninfo) {
            match key.as_str() {
                "host" | "hostaddr" if host.is_none() => host = Some(value),
                "port" => port = value.parse().unwrap_or(5432),
                _ => {}
            }
        }
        host.map(|h| (h, port))
    }

    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.slot_name == name)
    }
}

/// The key=value pairs of a libpq connection string (values may be single-quoted).
pub fn conninfo_pairs(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())));
        }
        out.push((key, value));
    }
    out
}

/// The engine's reading of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub cluster: Option<Cluster>,
    /// Every cluster on the host, `15/main:5432`, for messages.
    pub clusters: String,
    /// The data directory holds `standby.signal`.
    pub signal: bool,
    pub server: Option<Server>,
    /// The server log's last word on the WAL receiver, when it is not streaming.
    pub receiver_error: Option<String>,
}

pub fn observe(host: &mut dyn Host, name: &NodeName, config: &Config) -> Observed {
    observe_at(host, name, config.node(name).db_port)
}

/// Reads the node's cluster on `port`, or the one cluster there is (else the one on 5432).
pub fn observe_at(host: &mut dyn Host, name: &NodeName, port: Option<u16>) -> Observed {
    let label = host.label().to_owned();
    let port = port.map(|p| p.to_string()).unwrap_or_default();
    let cmd = Cmd::script(
        SCRIPT,
        &[&port, layout::CONF_NAME, layout::SEED_RECORD, STATE_SQL],
    )
    .as_root();
    match host.run(&cmd) {
        Ok(output) if output.success() => parse(name, &label, &output.stdout_text()),
        Ok(output) => Observed {
            problem: Some(format!(
                "cannot look around as root: {}",
                output.stderr.trim()
            )),
            ..Observed::reached(name, &label)
        },
        Err(err) => Observed::unreachable(name, &label, &err.to_string()),
    }
}

pub fn parse(name: &NodeName, label: &str, output: &str) -> Observed {
    let mut observed = Observed::reached(name, label);
    let (head, rest) = match output.split_once("--- answered\n") {
        Some((head, rest)) => (head, Ok(rest)),
        None => match output.split_once("--- failed\n") {
            Some((head, rest)) => (head, Err(rest.trim())),
            None => (output, Err("no answer from the node's shell")),
        },
    };
    let value = |key: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    let flag = |key: &str| value(key) == Some("yes");
    observed.member = flag("member");
    observed.seeded = flag("seeded");
    let cluster = value("datadir").map(|datadir| Cluster {
        version: value("version").unwrap_or_default().to_owned(),
        name: value("name").unwrap_or_default().to_owned(),
        port: value("port").and_then(|p| p.parse().ok()).unwrap_or(5432),
        datadir: datadir.to_owned(),
        confdir: value("confdir").unwrap_or_default().to_owned(),
        log: value("log").unwrap_or_default().to_owned(),
        include_dir: flag("include_dir"),
        datadir_mount: flag("datadir_mount"),
        systemd: flag("systemd"),
    });
    let mut reading = Reading {
        cluster,
        clusters: value("clusters").unwrap_or_default().to_owned(),
        signal: flag("signal"),
        server: None,
        receiver_error: value("receiver_error")
            .map(|e| e.to_owned())
            .filter(|e| !e.is_empty()),
    };
    match rest {
        Ok(text) => {
            // One value, over several lines: json_agg puts each element on its own.
            match serde_json::from_str::<Server>(text.trim()) {
                Ok(server) => {
                    observed.db = Some(db_state(&server, &reading));
                    reading.server = Some(server);
                }
                Err(err) => {
                    observed.problem = Some(format!("unexpected answer from PostgreSQL: {err}"))
                }
            }
        }
        Err(text) => {
            observed.problem = Some(match text {
                "down" => format!(
                    "PostgreSQL {} is not running",
                    reading.cluster.as_ref().map(|c| c.id()).unwrap_or_default()
                ),
                "no-cluster" if reading.clusters.is_empty() => {
                    "no PostgreSQL cluster on the host (pg_lsclusters lists none)".to_owned()
                }
                "no-cluster" => format!(
                    "none of the host's clusters ({}) is the one: set db_port in the config to the cluster's port",
                    reading.clusters
                ),
                other => other.chars().take(300).collect(),
            });
        }
    }
    observed.detail = Some(Arc::new(reading));
    observed
}

fn db_state(server: &Server, reading: &Reading) -> DbState {
    let upstream = if server.in_recovery {
        server.upstream_address().map(|(address, port)| {
            let receiver = server.receiver.as_ref();
            Upstream {
                address,
                port,
                node: None,
                receiving: if server.receiving {
                    LinkState::Running
                } else {
                    LinkState::Connecting
                },
                applying: if server.replay_paused {
                    LinkState::Stopped
                } else {
                    LinkState::Running
                },
                error: if server.receiving {
                    None
                } else {
                    reading.receiver_error.clone()
                },
                lag_seconds: lag_seconds(server),
                received_secs_ago: receiver
                    .and_then(|r| r.receipt_age)
                    .map(|a| a.max(0.0) as u64),
                heartbeat_secs: None,
            }
        })
    } else {
        None
    };
    DbState {
        // "15.18 (Debian 15.18-0+deb12u1)": the number is what people compare.
        version: server
            .version
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
        writable: !server.in_recovery,
        position: match server.holds() {
            Some(lsn) => format!("{lsn} (timeline {})", server.timeline),
            None => String::new(),
        },
        upstream,
    }
}

/// How far behind a standby applies: nothing when it replayed all it received, else the
/// age of the last transaction it replayed.
fn lag_seconds(server: &Server) -> Option<u64> {
    let received: Option<Lsn> = server.receive_lsn.as_deref().and_then(|l| l.parse().ok());
    let replayed: Option<Lsn> = server.replay_lsn.as_deref().and_then(|l| l.parse().ok());
    match (received, replayed) {
        (Some(r), Some(p)) if p >= r => Some(0),
        _ => server.replay_age.map(|a| a.max(0.0) as u64),
    }
}

pub fn reading(observed: &Observed) -> Option<&Reading> {
    observed.detail::<Reading>()
}

pub fn server(observed: &Observed) -> Option<&Server> {
    reading(observed)?.server.as_ref()
}

pub fn cluster(observed: &Observed) -> Option<&Cluster> {
    reading(observed)?.cluster.as_ref()
}

/// Orders two nodes by the WAL they hold; None when they are not copies of one cluster
/// (system identifiers differ).
pub fn compare(a: &Observed, b: &Observed) -> Option<Ordering> {
    let (a, b) = (server(a)?, server(b)?);
    if a.system_identifier != b.system_identifier {
        return None;
    }
    Some(a.holds()?.cmp(&b.holds()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDBY: &str = r#"{"version_num": 150018, "version": "15.18 (Debian 15.18-0+deb12u1)", "in_recovery": true, "replay_paused": false, "datadir": "/var/lib/postgresql/15/main", "port": 5432, "listen_addresses": "localhost,198.51.100.12", "wal_level": "replica", "max_wal_senders": 10, "max_replication_slots": 10, "wal_log_hints": true, "data_checksums": false, "ssl": true, "max_connections": 100, "system_identifier": "7312", "timeline": 1, "current_lsn": null, "receive_lsn": "0/3000148", "replay_lsn": "0/3000148", "replay_age": 12.5, "primary_conninfo": "host=198.51.100.11 port=5432 user=ha_repl passfile=/etc/postgresql/ha-setup/pgpass", "primary_slot_name": "ha_setup_secondary", "pending_restart": [], "receiving": false, "receiver": null, "replicas": [], "slots": [{"slot_name":"a","slot_type":"physical","temporary":false,"active":false,"wal_status":null,"restart_lsn":null,"retained_bytes":null}, 
 {"slot_name":"b","slot_type":"physical","temporary":false,"active":true,"wal_status":"reserved","restart_lsn":"0/3000000","retained_bytes":0}]}"#;

    #[test]
    fn a_standby_read_in_one_round_trip() {
        let output = format!(
            "systemd=no\nclusters=15/main:5432\nversion=15\nname=main\nport=5432\nstatus=online,recovery\n\
             datadir=/var/lib/postgresql/15/main\nconfdir=/etc/postgresql/15/main\nlog=/var/log/postgresql/postgresql-15-main.log\n\
             include_dir=yes\nmember=yes\nseeded=yes\nsignal=yes\ndatadir_mount=no\n\
             receiver_error=FATAL:  could not connect to the primary server: connection refused\n--- answered\n{STANDBY}\n"
        );
        let seen = parse(&NodeName::new("secondary"), "secondary (h)", &output);
        assert!(seen.member && seen.seeded);
        let db = seen.db.as_ref().expect("answered");
        assert!(!db.writable);
        assert_eq!(db.position, "0/3000148 (timeline 1)");
        let up = db.upstream.as_ref().expect("a standby");
        assert_eq!((up.address.as_str(), up.port), ("198.51.100.11", 5432));
        assert_eq!(up.receiving, LinkState::Connecting);
        assert_eq!(up.lag_seconds, Some(0));
        assert!(up.error.as_deref().unwrap().contains("connection refused"));
        let cluster = cluster(&seen).unwrap();
        assert_eq!(cluster.id(), "15/main");
        assert!(cluster.include_dir && !cluster.datadir_mount);
    }

    #[test]
    fn a_fenced_primary_replicates_from_nowhere_and_takes_no_writes() {
        let text = STANDBY.replace(
            r#""primary_conninfo": "host=198.51.100.11 port=5432 user=ha_repl passfile=/etc/postgresql/ha-setup/pgpass""#,
            r#""primary_conninfo": """#,
        );
        let seen = parse(
            &NodeName::new("primary"),
            "primary (h)",
            &format!("datadir=/d\n--- answered\n{text}\n"),
        );
        assert!(seen.fenced(), "{seen:?}");
    }

    #[test]
    fn a_cluster_that_is_down_or_missing_is_described() {
        let down = parse(
            &NodeName::new("secondary"),
            "s",
            "clusters=15/main:5432\nversion=15\nname=main\ndatadir=/d\n--- failed\ndown\n",
        );
        assert_eq!(
            down.problem.as_deref(),
            Some("PostgreSQL 15/main is not running")
        );
        let none = parse(
            &NodeName::new("secondary"),
            "s",
            "clusters=15/main:5432,15/other:5433\n--- failed\nno-cluster\n",
        );
        assert!(none.problem.as_deref().unwrap().contains("set db_port"));
    }

    #[test]
    fn connection_strings() {
        let pairs = conninfo_pairs("host=10.0.0.1 port = 5433 user='ha repl' password='it\\'s'");
        assert_eq!(pairs[0], ("host".into(), "10.0.0.1".into()));
        assert_eq!(pairs[1], ("port".into(), "5433".into()));
        assert_eq!(pairs[2], ("user".into(), "ha repl".into()));
        assert_eq!(pairs[3], ("password".into(), "it's".into()));
    }
}
