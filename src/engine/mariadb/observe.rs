//! Reading a MariaDB node for the topology, in one round trip: its settings file and seed
//! record (is it set up by ha-setup? does it hold a placed copy?) and the server's state.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::facts::{self, NodeState, Replica};
use super::layout;
use crate::config::Config;
use crate::host::{Cmd, Host, HostExt};
use crate::node::NodeName;
use crate::topology::{DbState, LinkState, Observed, Upstream};

const SCRIPT: &str = include_str!("scripts/observe.sh");

pub fn observe(host: &mut dyn Host, name: &NodeName, config: &Config) -> Observed {
    let label = host.label().to_owned();
    let cmd = Cmd::script(
        SCRIPT,
        &[
            &layout::cnf_path(config.node(name)),
            layout::SEED_RECORD,
            &facts::state_sql(),
        ],
    )
    .as_root();
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
    match rest {
        Ok(text) => match facts::parse_state(text) {
            Ok((server, replica)) => {
                observed.db = Some(DbState {
                    version: server.version.to_string(),
                    writable: !server.read_only,
                    position: server.gtid_current_pos.clone(),
                    upstream: replica.as_ref().map(upstream),
                });
                observed.detail = Some(Arc::new(NodeState { server, replica }));
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
    observed
}

fn upstream(replica: &Replica) -> Upstream {
    Upstream {
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

/// The MariaDB reading behind an observation.
pub fn state(observed: &Observed) -> Option<&NodeState> {
    observed.detail::<NodeState>()
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
        let output = "member=yes\nseeded=no\n--- answered\n\
            @@version\t@@server_id\t@@log_bin\t@@log_bin_basename\t@@binlog_format\t@@log_slave_updates\t@@read_only\t@@datadir\t@@port\tIFNULL(@@bind_address, '')\t@@gtid_binlog_pos\t@@gtid_slave_pos\t@@gtid_current_pos\t@@have_ssl\n\
            10.11.6-MariaDB-0+deb12u1-log\t2\t1\t/var/lib/mysql/mysql-bin\tROW\t1\t1\t/var/lib/mysql/\t3306\t127.0.0.1\t\t0-1-7\t0-1-7\tYES\n\
            Slave_IO_Running\tSlave_SQL_Running\tMaster_Host\tMaster_Port\tGtid_IO_Pos\n\
            Connecting\tYes\t198.51.100.11\t3306\t0-1-9\n";
        let seen = parse(&name, "db2 (h)", output);
        assert!(seen.member && !seen.seeded);
        let db = seen.db.as_ref().expect("answered");
        assert!(!db.writable);
        let up = db.upstream.as_ref().expect("a replica");
        assert_eq!(up.receiving, LinkState::Connecting);
        assert_eq!(up.applying, LinkState::Running);
        // Received 0-1-9 counts, though only 0-1-7 is applied.
        assert_eq!(holdings(&seen)[&0], 9);
        let down = parse(
            &name,
            "db2 (h)",
            "member=no\nseeded=no\n--- failed\nERROR 2002 (HY000): Can't connect to local server through socket\n",
        );
        assert!(!down.answers());
        assert_eq!(down.problem.as_deref(), Some("MariaDB is not running"));
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
