//! How a Galera cluster stands, from what each node showed (status): each node's state
//! (`wsrep_local_state_comment`), its component (Primary or not), the size it counts, how
//! long flow control paused replication, its last committed seqno, and whether every node
//! is in the same history (cluster state UUID). Critical: a node outside the primary
//! component, the wrong size, two histories, a node down; a warning: a donor or desynced
//! node, a joiner, flow control holding the cluster back.

use serde_json::json;

use super::observe::{self, Wsrep};
use super::resolve;
use super::settings;
use crate::config::Config;
use crate::engine::Membership;
use crate::node::NodeName;
use crate::topology::Topology;

/// Flow control pausing replication more than this fraction of the time holds every
/// writer back: a warning.
pub const FLOW_CONTROL_WARN: f64 = 0.25;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Alive,
    Lagging,
    Broken,
    Down,
}

impl Severity {
    fn word(self) -> &'static str {
        match self {
            Severity::Alive => "alive",
            Severity::Lagging => "lagging",
            Severity::Broken => "broken",
            Severity::Down => "down",
        }
    }
}

fn facts(wsrep: &Wsrep) -> serde_json::Value {
    json!({
        "wsrep_local_state_comment": wsrep.state,
        "cluster_status": wsrep.cluster_status,
        "cluster_size": wsrep.cluster_size,
        "flow_control_paused": wsrep.flow_control_paused,
        "last_committed": wsrep.last_committed,
        "cluster_state_uuid": wsrep.cluster_uuid,
        "cluster_name": wsrep.cluster_name,
    })
}

pub fn membership(config: &Config, topology: &Topology) -> Membership {
    let name = settings::cluster_name(config);
    let arbitrator = settings::arbitrator(config);
    let expected = config.nodes.len() as u32;
    let mut worst = Severity::Alive;
    let mut problems = Vec::new();
    let mut nodes = Vec::new();
    let mut histories: Vec<(NodeName, String)> = Vec::new();
    let mut size: Option<u32> = None;
    for observed in &topology.nodes {
        let node = &observed.name;
        if Some(node) == arbitrator.as_ref() {
            let reading = observe::reading(observed);
            let running = reading.is_some_and(|r| r.garbd_running);
            nodes.push((
                node.clone(),
                json!({ "arbitrator": true, "garbd_running": observed.unreachable.is_none().then_some(running) }),
            ));
            if let Some(why) = &observed.unreachable {
                worst = worst.max(Severity::Down);
                problems.push(format!("{node}: cannot be reached from here: {why}"));
            } else if !running {
                worst = worst.max(Severity::Down);
                problems.push(format!(
                    "{node}: garbd (the arbitrator) is not running, so losing one more node stops the cluster: ha-setup init starts it"
                ));
            }
            continue;
        }
        let reading = observe::reading(observed);
        let Some(wsrep) = reading.and_then(|r| r.wsrep.as_ref()) else {
            worst = worst.max(Severity::Down);
            let saved = reading.and_then(|r| r.grastate.as_ref());
            nodes.push((
                node.clone(),
                match saved {
                    Some(state) => json!({
                        "grastate_seqno": state.seqno,
                        "safe_to_bootstrap": state.safe_to_bootstrap,
                        "cluster_state_uuid": state.uuid,
                    }),
                    None => serde_json::Value::Null,
                },
            ));
            problems.push(match &observed.unreachable {
                Some(why) => format!("{node}: cannot be reached from here: {why}"),
                None => format!(
                    "{node}: {}. When it is back up: ha-setup recover rejoin (if every node is down: ha-setup recover bootstrap)",
                    observed
                        .problem
                        .clone()
                        .unwrap_or_else(|| "MariaDB does not answer".into())
                ),
            });
            continue;
        };
        nodes.push((node.clone(), facts(wsrep)));
        if !wsrep.on {
            worst = worst.max(Severity::Broken);
            problems.push(format!(
                "{node}: Galera is off there (wsrep_on = OFF): it is no member of the cluster; set it up with `ha-setup init`"
            ));
            continue;
        }
        if wsrep.cluster_name != name {
            worst = worst.max(Severity::Broken);
            problems.push(format!(
                "{node}: in the cluster {:?}, not {name:?} (the config's)",
                wsrep.cluster_name
            ));
            continue;
        }
        if wsrep.cluster_status != "Primary" {
            worst = worst.max(Severity::Broken);
            problems.push(format!(
                "{node}: in a {} component (it sees {} of {expected} members): it refuses the application's queries until it \
                 reaches the majority again. If every node is like this, the cluster lost its majority: ha-setup recover bootstrap",
                if wsrep.cluster_status.is_empty() {
                    "disconnected"
                } else {
                    &wsrep.cluster_status
                },
                wsrep.cluster_size
            ));
            continue;
        }
        histories.push((node.clone(), wsrep.cluster_uuid.clone()));
        size = Some(size.map_or(wsrep.cluster_size, |s| s.min(wsrep.cluster_size)));
        match wsrep.state.as_str() {
            "Synced" => {}
            "Donor/Desynced" => {
                worst = worst.max(Severity::Lagging);
                problems.push(format!(
                    "{node}: Donor/Desynced: it serves a state transfer{} (its commits pause meanwhile)",
                    if wsrep.desync { ", or was desynced by hand (wsrep_desync = ON)" } else { "" }
                ));
            }
            state => {
                worst = worst.max(Severity::Lagging);
                problems.push(format!(
                    "{node}: {} (joining the cluster: it takes writes once Synced)",
                    if state.is_empty() {
                        "in no state"
                    } else {
                        state
                    }
                ));
            }
        }
        if wsrep.flow_control_paused > FLOW_CONTROL_WARN {
            worst = worst.max(Severity::Lagging);
            problems.push(format!(
                "{node}: replication was paused {:.0}% of the time by flow control: a node applies too slowly and holds every writer back",
                wsrep.flow_control_paused * 100.0
            ));
        }
    }
    if let Some((first, uuid)) = histories.first() {
        for (other, theirs) in &histories[1..] {
            if theirs != uuid {
                worst = worst.max(Severity::Broken);
                problems.push(format!(
                    "{first} and {other} are in two different clusters (state UUIDs {uuid} and {theirs}): \
                     ha-setup will not choose between them. Decide whose data is right; the others must be rebuilt from it"
                ));
            }
        }
    }
    let answering = settings::data_nodes(config)
        .iter()
        .any(|n| topology.get(n).answers());
    if !answering {
        problems.push(
            "no data node runs: the cluster is stopped. Start it again from the node with the most: ha-setup recover bootstrap"
                .into(),
        );
    }
    match size {
        Some(counted) if counted != expected => {
            worst = worst.max(Severity::Broken);
            problems.push(format!(
                "the cluster counts {counted} members, not the config's {expected}: {}",
                if counted < expected {
                    "a node is missing (see above)"
                } else {
                    "a node the config does not name is in the cluster"
                }
            ));
        }
        None if worst < Severity::Down => {
            worst = worst.max(Severity::Broken);
            problems.push(
                "no node is in a primary component: the cluster does not take writes. ha-setup recover bootstrap".into(),
            );
        }
        _ => {}
    }
    let synced = resolve::synced(config, topology);
    let canary = synced.first().map(|first| {
        let write = resolve::write_node(config, topology, first);
        let writer = if synced.contains(&write) {
            write
        } else {
            first.clone()
        };
        let readers = synced.iter().filter(|n| **n != writer).cloned().collect();
        (writer, readers)
    });
    Membership {
        link: worst.word(),
        problems,
        size: size.map(u64::from),
        nodes,
        canary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Observed;

    fn config() -> Config {
        Config::parse(
            "engine = \"mariadb\"\ntopology = \"galera\"\n\
             [nodes.db1]\nhost = \"198.51.100.11\"\n\
             [nodes.db2]\nhost = \"198.51.100.12\"\n\
             [nodes.db3]\nhost = \"198.51.100.13\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    const SERVER: &str = "@@version\t@@server_id\t@@log_bin\t@@log_bin_basename\t@@binlog_format\t@@log_slave_updates\t@@read_only\t@@datadir\t@@port\tIFNULL(@@bind_address, '')\t@@gtid_binlog_pos\t@@gtid_slave_pos\t@@gtid_current_pos\t@@have_ssl\n\
        10.11.19-MariaDB\t1\t0\tNULL\tROW\t0\t0\t/var/lib/mysql/\t3306\t\t\t\t\tYES\n";

    fn node(name: &str, state: &str, status: &str, size: u32, uuid: &str) -> Observed {
        let output = format!(
            "member=yes\n--- answered\n{SERVER}ha_setup_wsrep\tapp_databases\n\
             wsrep_on=ON|wsrep_cluster_name=ha-setup|wsrep_local_state_comment={state}|wsrep_cluster_status={status}|\
             wsrep_cluster_size={size}|wsrep_flow_control_paused=0|wsrep_last_committed=7|wsrep_cluster_state_uuid={uuid}|\
             wsrep_local_state_uuid={uuid}|wsrep_ready=ON\tNULL\n--- galera\nmariadbd_pid=1\n"
        );
        observe::parse(&NodeName::new(name), name, &output, false)
    }

    fn down(name: &str) -> Observed {
        observe::parse(
            &NodeName::new(name),
            name,
            "member=yes\n--- failed\nCan't connect to local server\n--- galera\ngrastate_uuid=u\ngrastate_seqno=-1\n",
            false,
        )
    }

    fn judge(nodes: Vec<Observed>) -> Membership {
        let config = config();
        membership(&config, &Topology::new(nodes, &config))
    }

    #[test]
    fn three_synced_nodes_are_alive() {
        let m = judge(vec![
            node("db1", "Synced", "Primary", 3, "u"),
            node("db2", "Synced", "Primary", 3, "u"),
            node("db3", "Synced", "Primary", 3, "u"),
        ]);
        assert_eq!((m.link, m.size), ("alive", Some(3)), "{:?}", m.problems);
        assert!(m.problems.is_empty());
        let (writer, readers) = m.canary.unwrap();
        assert_eq!(writer.as_str(), "db1");
        assert_eq!(readers.len(), 2);
        assert_eq!(m.nodes[1].1["wsrep_local_state_comment"], "Synced");
    }

    #[test]
    fn a_lost_node_is_down_and_the_size_wrong() {
        let m = judge(vec![
            node("db1", "Synced", "Primary", 2, "u"),
            down("db2"),
            node("db3", "Synced", "Primary", 2, "u"),
        ]);
        assert_eq!(m.link, "down");
        assert!(
            m.problems
                .iter()
                .any(|p| p.contains("counts 2 members, not the config's 3"))
        );
        assert!(
            m.problems
                .iter()
                .any(|p| p.starts_with("db2:") && p.contains("recover rejoin"))
        );
        assert_eq!(m.nodes[1].1["grastate_seqno"], -1);
    }

    #[test]
    fn a_donor_warns_and_a_non_primary_node_or_two_histories_are_critical() {
        let donor = judge(vec![
            node("db1", "Synced", "Primary", 3, "u"),
            node("db2", "Donor/Desynced", "Primary", 3, "u"),
            node("db3", "Synced", "Primary", 3, "u"),
        ]);
        assert_eq!(donor.link, "lagging");
        assert!(donor.problems[0].contains("Donor/Desynced"));
        let split = judge(vec![
            node("db1", "Synced", "Primary", 3, "u"),
            node("db2", "Synced", "Primary", 3, "u"),
            node("db3", "Initialized", "non-Primary", 1, "u"),
        ]);
        assert_eq!(split.link, "broken");
        assert!(split.problems[0].contains("non-Primary component"));
        let two = judge(vec![
            node("db1", "Synced", "Primary", 3, "u"),
            node("db2", "Synced", "Primary", 3, "u"),
            node("db3", "Synced", "Primary", 3, "v"),
        ]);
        assert_eq!(two.link, "broken");
        assert!(two.problems[0].contains("two different clusters"));
    }
}
