//! `status` for a cluster whose members all take writes (Galera): the engine judges how the
//! cluster stands (`Engine::membership`); this reports it like any status (text, JSON,
//! nagios) and proves it end to end with a canary written on one member and read on every
//! other.

use std::time::Duration;

use jiff::Timestamp;

use super::status::{NodeReport, Report, node_report, recent_events};
use crate::config::Config;
use crate::engine::{Canary, Engine, Membership};
use crate::node::{Hosts, NodeName};
use crate::topology::{Role, Topology};

const CANARY_TIMEOUT: Duration = Duration::from_secs(10);

pub fn gather(
    config: &Config,
    engine: &dyn Engine,
    topology: &Topology,
    hosts: &mut Hosts,
    membership: Membership,
    canary: bool,
) -> Report {
    let Membership {
        link,
        mut problems,
        size,
        nodes: facts,
        canary: route,
    } = membership;
    let mut nodes: Vec<NodeReport> = topology
        .nodes
        .iter()
        .map(|observed| {
            let arbitrator = config.node(&observed.name).is_arbitrator();
            let role = match observed.role() {
                Role::Unreachable => Role::Unreachable,
                _ if arbitrator => Role::Arbitrator,
                role => role,
            };
            let mut report = node_report(engine, config, observed, role);
            report.cluster = facts
                .iter()
                .find(|(name, _)| *name == observed.name)
                .map(|(_, value)| value.clone());
            report
        })
        .collect();
    let mut link = link;
    let mut canary_ms = None;
    if let (true, Some((writer, readers))) = (canary, route)
        && !readers.is_empty()
    {
        let seen = std::iter::once(&writer)
            .chain(&readers)
            .map(|n| topology.get(n))
            .collect();
        let (source, others) = hosts.one_and_many(&writer, &readers);
        match engine.canary(source, others, seen, CANARY_TIMEOUT) {
            Ok(Canary::Arrived(results)) => {
                for (name, result) in readers.iter().zip(results) {
                    match result {
                        Ok(took) => {
                            let ms = took.as_millis() as u64;
                            canary_ms = Some(canary_ms.map_or(ms, |c: u64| c.max(ms)));
                            if let Some(node) = find(&mut nodes, name) {
                                node.canary_ms = Some(ms);
                            }
                        }
                        Err(why) => {
                            problems.push(format!("canary written on {writer}: {why}"));
                            link = worse(link, "broken");
                        }
                    }
                }
            }
            Ok(Canary::Skipped(why)) => {
                problems.push(format!("canary not written on {writer}: {why}"))
            }
            Err(err) => {
                problems.push(format!("canary on {writer}: {err:#}"));
                link = worse(link, "broken");
            }
        }
    }
    let (files, file_problems) = crate::sync::report(config, topology, hosts);
    problems.extend(file_problems);
    Report {
        engine: config.engine.name().to_owned(),
        topology: config.topology.name().to_owned(),
        checked_at: Timestamp::now(),
        link: link.to_owned(),
        lag_seconds: None,
        canary_ms,
        nodes,
        files,
        cluster_size: size,
        problems,
        recent_events: recent_events(config),
    }
}

fn find<'a>(nodes: &'a mut [NodeReport], name: &NodeName) -> Option<&'a mut NodeReport> {
    nodes.iter_mut().find(|n| n.name == name.as_str())
}

/// The worse of two link words.
fn worse(a: &'static str, b: &'static str) -> &'static str {
    let rank = |w: &str| match w {
        "alive" => 0,
        "lagging" => 1,
        "broken" => 2,
        _ => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// The link and one line per member: its state, its component, the size it counts, how
/// long flow control paused it, its last committed seqno.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "link: {}{}{}\n",
        report.link,
        report
            .cluster_size
            .map_or(String::new(), |s| format!(" ({s} members")),
        match (report.cluster_size, report.canary_ms) {
            (Some(_), Some(ms)) => format!(", canary {ms} ms)"),
            (Some(_), None) => ")".to_owned(),
            (None, Some(ms)) => format!(" (canary {ms} ms)"),
            (None, None) => String::new(),
        }
    );
    out.push_str(&format!(
        "\n{:<10} {:<28} {:<11} {:<9} {:<15} {:<12} {:<5} {:<9} {}\n",
        "node",
        "host",
        "role",
        "version",
        "state",
        "component",
        "size",
        "fc paused",
        "last committed"
    ));
    for node in &report.nodes {
        let fact = |key: &str| -> String {
            node.cluster
                .as_ref()
                .and_then(|c| c.get(key))
                .map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "-".to_owned(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| "-".to_owned())
        };
        let arbitrator = node.role == Role::Arbitrator;
        let state = if arbitrator {
            match node.cluster.as_ref().and_then(|c| c.get("garbd_running")) {
                Some(serde_json::Value::Bool(true)) => "garbd runs".to_owned(),
                Some(serde_json::Value::Bool(false)) => "garbd stopped".to_owned(),
                _ => "-".to_owned(),
            }
        } else if node.running {
            fact("wsrep_local_state_comment")
        } else if !node.reachable {
            "unreachable".to_owned()
        } else {
            "down".to_owned()
        };
        let paused = node
            .cluster
            .as_ref()
            .and_then(|c| c.get("flow_control_paused"))
            .and_then(serde_json::Value::as_f64)
            .map_or("-".to_owned(), |f| format!("{:.0}%", f * 100.0));
        let committed = if node.running {
            fact("last_committed")
        } else {
            match fact("grastate_seqno").as_str() {
                // Not saved: a crash; `recover bootstrap` reads it from InnoDB.
                "-" | "-1" => "-".to_owned(),
                seqno => format!("{seqno} (saved)"),
            }
        };
        out.push_str(&format!(
            "{:<10} {:<28} {:<11} {:<9} {:<15} {:<12} {:<5} {:<9} {}\n",
            node.name,
            node.host,
            node.role.as_str(),
            node.version.as_deref().unwrap_or("-"),
            state,
            fact("cluster_status"),
            fact("cluster_size"),
            paused,
            committed,
        ));
    }
    out
}
