//! Reading a MariaDB node for the topology, in one round trip: where MariaDB lives on the
//! host (settings directory, service, and the datadir when the server is down), its
//! settings file and seed record (is it set up by ha-setup? does it hold a placed copy?)
//! and the server's state.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::facts::{self, HostFacts, NodeState, Replica};
use super::layout;
use crate::config::Config;
use crate::host::{Cmd, Host, HostExt};
use crate::node::NodeName;
use crate::topology::{DbState, LinkState, Observed, Upstream};

const SCRIPT: &str = include_str!("scripts/observe.sh");

/// The look-around as root: `script` (observe.sh, or a topology's script that starts with
/// it) with the node's configured paths and service, `sql` for the server, and the
/// topology's own arguments after those.
pub fn look_around(script: &str, node: &crate::config::Node, sql: &str, extra: &[&str]) -> Cmd {
    let config_dir = node
        .config_dir
        .as_ref()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut args = vec![
        config_dir.as_str(),
        node.service.as_deref().unwrap_or(""),
        layout::CNF_NAME,
        layout::SEED_RECORD,
        sql,
    ];
    args.extend_from_slice(extra);
    Cmd::script(script, &args).as_root()
}

pub fn observe(host: &mut dyn Host, name: &NodeName, config: &Config) -> Observed {
    let label = host.label().to_owned();
    let cmd = look_around(SCRIPT, config.node(name), &facts::state_sql(), &[]);
    let output = match host.run(&cmd) {
        Ok(output) if output.success() => output.stdout_text(),
        Ok(output) => {
            return Observed {
                problem: Some(format!(
                    "cannot look around as root: {}",
                    output.stderr.trim()
                )),
                ..Observed::reached(name, &label)
            };
        }
        Err(err) => return Observed::unreachable(name, &label, &err.to_string()),
    };
    parse(name, &label, &output)
}

pub fn parse(name: &NodeName, label: &str, output: &str) -> Observed {
    let mut observed = Observed::reached(name, label);
    let (head, rest) = match output.split_once("--- answered\n") {
        Some((head, rest)) => (head, Ok(rest)),
        None => match output.split_once("--- failed\n") {
            Some((head, rest)) => (head, Err(rest)),
            None => (output, Err("no answer from the node's shell")),
        },
    };
    observed.member = head.lines().any(|l| l == "member=yes");
    observed.seeded = head.lines().any(|l| l == "seeded=yes");
    let mut reading = Reading {
        host: HostFacts::parse(head),
        state: None,
        stuck: Stuck::parse(head),
    };
    match rest {
        Ok(text) => match facts::parse_state(text) {
            Ok((server, replica)) => {
                observed.db = Some(DbState {
                    version: server.version.to_string(),
                    writable: !server.read_only,
                    position: server.gtid_current_pos.clone(),
                    upstream: replica.as_ref().map(|r| upstream(r, head)),
                });
                reading.state = Some(NodeState { server, replica });
            }
            Err(err) => observed.problem = Some(format!("unexpected answer from MariaDB: {err:#}")),
        },
        Err(text) => {
            observed.problem = Some(if text.contains("Can't connect to local server") {
                "MariaDB is not running".to_owned()
            } else {
                text.trim().chars().take(300).collect()
            })
        }
    }
    observed.detail = Some(Arc::new(reading));
    observed
}

/// The engine's reading of a node: where MariaDB lives on the host, and the server's state
/// when it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub host: HostFacts,
    pub state: Option<NodeState>,
    /// Where the replica's applier stopped on a row that differs, when it did.
    pub stuck: Option<Stuck>,
}

/// The transaction and row a replica's applier stopped at, read from its relay log
/// (observe.sh's `stuck_*` lines): only the row's primary key, never the rest of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stuck {
    pub gtid: Option<String>,
    /// `INSERT INTO`, `UPDATE` or `DELETE FROM`.
    pub change: Option<String>,
    pub table: Option<String>,
    /// `id=5`, or `a=1, b=2`: the primary key's columns and the row's values in them.
    pub key: Option<String>,
}

impl Stuck {
    fn parse(head: &str) -> Option<Stuck> {
        let value = |key: &str| {
            head.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let stuck = Stuck {
            gtid: value("stuck_gtid"),
            change: value("stuck_change"),
            table: value("stuck_table"),
            key: value("stuck_key"),
        };
        (stuck != Stuck::default()).then_some(stuck)
    }
}

/// Where a node's replica applier stopped on a row that differs, when it did.
pub fn stuck(observed: &Observed) -> Option<&Stuck> {
    reading(observed)?.stuck.as_ref()
}

/// The replica connection, with the witness lines of observe.sh's head (`heartbeat=5.000`,
/// `received_ago=12`).
fn upstream(replica: &Replica, head: &str) -> Upstream {
    let value = |key: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    Upstream {
        received_secs_ago: value("received_ago")
            .and_then(|v| v.parse::<i64>().ok())
            .map(|v| v.max(0) as u64),
        heartbeat_secs: value("heartbeat")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|p| *p > 0.0)
            .map(|p| p.ceil() as u64),
        address: replica.master_host.clone(),
        port: replica.master_port,
        node: None,
        receiving: match replica.io_running.as_str() {
            "Yes" => LinkState::Running,
            "Connecting" => LinkState::Connecting,
            _ => LinkState::Stopped,
        },
        applying: if replica.sql_ok() {
            LinkState::Running
        } else {
            LinkState::Stopped
        },
        error: replica.last_error(),
        lag_seconds: replica.seconds_behind,
    }
}

/// The MariaDB reading of a node, also inside a Galera node's.
fn reading(observed: &Observed) -> Option<&Reading> {
    observed
        .detail::<Reading>()
        .or_else(|| super::galera::observe::reading(observed).map(|g| &g.base))
}

/// The server's state behind an observation, when it answered.
pub fn state(observed: &Observed) -> Option<&NodeState> {
    reading(observed)?.state.as_ref()
}

/// Where MariaDB lives on the node, when the node was reached.
pub fn host_facts(observed: &Observed) -> Option<&HostFacts> {
    reading(observed).map(|r| &r.host)
}

/// Per GTID domain, the highest sequence number a node holds: applied, or (on a replica)
/// received and waiting in its relay log, which promotion applies first.
pub fn holdings(observed: &Observed) -> BTreeMap<u32, u64> {
    let mut have = BTreeMap::new();
    let Some(state) = state(observed) else {
        return have;
    };
    let received = state
        .replica
        .as_ref()
        .map_or("", |r| r.gtid_io_pos.as_str());
    for list in [state.server.gtid_current_pos.as_str(), received] {
        for (domain, _, seq) in super::recover::parse_gtids(list) {
            let entry = have.entry(domain).or_insert(0);
            *entry = (*entry).max(seq);
        }
    }
    have
}

/// Compares what two nodes hold, domain by domain.
pub fn compare(a: &Observed, b: &Observed) -> Option<Ordering> {
    order(&holdings(a), &holdings(b))
}

pub fn order(a: &BTreeMap<u32, u64>, b: &BTreeMap<u32, u64>) -> Option<Ordering> {
    let mut result = Ordering::Equal;
    let domains: std::collections::BTreeSet<&u32> = a.keys().chain(b.keys()).collect();
    for domain in domains {
        let here = a.get(domain).copied().unwrap_or(0);
        let there = b.get(domain).copied().unwrap_or(0);
        match (result, here.cmp(&there)) {
            (_, Ordering::Equal) => {}
            (Ordering::Equal, other) => result = other,
            (current, other) if current != other => return None,
            _ => {}
        }
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_read_in_one_round_trip() {
        let name = NodeName::new("db2");
        let output = "config_dir=/etc/mysql/mariadb.conf.d\nconfig_dir_from=/etc/mysql/my.cnf\n\
            service=mariadb\nservice_from=/etc/init.d/mariadb\nsystemd=no\n\
            member=yes\nseeded=no\nheartbeat=5.000\nreceived_ago=12\n--- answered\n\
            @@version\t@@server_id\t@@log_bin\t@@log_bin_basename\t@@binlog_format\t@@log_slave_updates\t@@read_only\t@@datadir\t@@port\tIFNULL(@@bind_address, '')\t@@gtid_binlog_pos\t@@gtid_slave_pos\t@@gtid_current_pos\t@@have_ssl\n\
            10.11.6-MariaDB-0+deb12u1-log\t2\t1\t/var/lib/mysql/mysql-bin\tROW\t1\t1\t/var/lib/mysql/\t3306\t127.0.0.1\t\t0-1-7\t0-1-7\tYES\n\
            Slave_IO_Running\tSlave_SQL_Running\tMaster_Host\tMaster_Port\tGtid_IO_Pos\n\
            Connecting\tYes\t198.51.100.11\t3306\t0-1-9\n";
        let seen = parse(&name, "db2 (h)", output);
        assert!(seen.member && !seen.seeded);
        assert_eq!(
            host_facts(&seen).map(|h| h.config_dir.as_str()),
            Some("/etc/mysql/mariadb.conf.d")
        );
        assert_eq!(
            state(&seen).map(|s| s.server.datadir.as_str()),
            Some("/var/lib/mysql")
        );
        let db = seen.db.as_ref().expect("answered");
        assert!(!db.writable);
        let up = db.upstream.as_ref().expect("a replica");
        assert_eq!(up.receiving, LinkState::Connecting);
        assert_eq!(up.applying, LinkState::Running);
        assert_eq!(
            (up.received_secs_ago, up.heartbeat_secs),
            (Some(12), Some(5))
        );
        // Received 0-1-9 counts, though only 0-1-7 is applied.
        assert_eq!(holdings(&seen)[&0], 9);
        let down = parse(
            &name,
            "db2 (h)",
            "member=no\nseeded=no\ndatadir_configured=/srv/mysql/\n--- failed\nERROR 2002 (HY000): Can't connect to local server through socket\n",
        );
        assert!(!down.answers());
        assert_eq!(down.problem.as_deref(), Some("MariaDB is not running"));
        assert!(state(&down).is_none());
        assert_eq!(
            host_facts(&down).map(|h| h.datadir_configured.as_str()),
            Some("/srv/mysql")
        );
    }

    #[test]
    fn the_row_a_replica_stopped_at() {
        let output = "member=yes\nseeded=yes\nstuck_gtid=1-1-5\nstuck_change=UPDATE\nstuck_table=app.t\nstuck_key=id=1\n--- failed\nx\n";
        let seen = parse(&NodeName::new("db2"), "db2 (h)", output);
        let stuck = stuck(&seen).expect("stuck");
        assert_eq!(stuck.gtid.as_deref(), Some("1-1-5"));
        assert_eq!(stuck.key.as_deref(), Some("id=1"));
        let fine = parse(
            &NodeName::new("db2"),
            "db2 (h)",
            "member=yes\n--- failed\nx\n",
        );
        assert!(super::stuck(&fine).is_none());
    }

    #[test]
    fn positions_order_by_domain() {
        let map = |pairs: &[(u32, u64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
        assert_eq!(
            order(&map(&[(0, 9)]), &map(&[(0, 7)])),
            Some(Ordering::Greater)
        );
        assert_eq!(
            order(&map(&[(0, 7)]), &map(&[(0, 7)])),
            Some(Ordering::Equal)
        );
        assert_eq!(
            order(&map(&[(0, 7), (1, 2)]), &map(&[(0, 7)])),
            Some(Ordering::Greater)
        );
        assert_eq!(
            order(&map(&[(0, 8), (1, 1)]), &map(&[(0, 7), (1, 2)])),
            None
        );
    }
}
