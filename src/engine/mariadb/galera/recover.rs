//! `recover rejoin` and `recover rebuild NODE` for a Galera cluster. A node that left
//! rejoins as Galera decides (what it missed, IST, when a donor's gcache still holds it;
//! else a full state transfer); a rebuild forces a full state transfer into a node whose
//! data is moved aside first, from a donor other than the node the application writes to
//! when there is one. Both need the cluster to run (a primary component); a cluster whose
//! every node stopped is `recover bootstrap`'s.

use jiff::Timestamp;

use super::init::{self, JOIN_SECS};
use super::resolve;
use super::settings;
use crate::config::Config;
use crate::error::Exit;
use crate::node::NodeName;
use crate::plan::{Ctx, Roles, Step, Verdict};
use crate::topology::{Topology, and_list};

fn refused(message: String, topology: &Topology) -> anyhow::Error {
    Exit::refused(format!("{message}{}", topology.table())).into()
}

/// The member the others join: the write node when it is Synced, else the first Synced.
fn running_source(
    config: &Config,
    topology: &Topology,
    operation: &str,
) -> anyhow::Result<NodeName> {
    let running = resolve::synced(config, topology);
    let Some(first) = running.first() else {
        return Err(refused(
            format!(
                "refusing to {operation}: no node runs in a primary component of the cluster {}, so there is nothing to join. \
                 If every node stopped, start the cluster again from the node with the most: ha-setup recover bootstrap",
                settings::cluster_name(config)
            ),
            topology,
        ));
    };
    let write = resolve::write_node(config, topology, first);
    Ok(if running.contains(&write) {
        write
    } else {
        first.clone()
    })
}

/// rejoin: every data node that is not Synced, and that ha-setup set up.
pub fn rejoin_roles(config: &Config, topology: &Topology) -> anyhow::Result<(Roles, Vec<String>)> {
    let source = running_source(config, topology, "rejoin")?;
    let running = resolve::synced(config, topology);
    let away: Vec<NodeName> = settings::data_nodes(config)
        .into_iter()
        .filter(|n| !running.contains(n))
        .collect();
    let strangers: Vec<NodeName> = away
        .iter()
        .filter(|n| {
            let seen = topology.get(n);
            seen.unreachable.is_none() && !seen.member
        })
        .cloned()
        .collect();
    if !strangers.is_empty() {
        return Err(refused(
            format!(
                "refusing to rejoin {}: never set up as a node of this cluster (no settings of ha-setup's there). \
                 Set it up with `ha-setup init`, which checks it first",
                and_list(&strangers)
            ),
            topology,
        ));
    }
    let mut notes = Vec::new();
    if away.is_empty() {
        notes.push("Every data node is Synced already.".to_owned());
    }
    Ok((Roles::new(source, away), notes))
}

/// rebuild NODE: a data node other than the cluster's only Synced one, copied from `from`
/// when the operator names it, else from a Synced node other than the write node when there
/// is one. The source is the state transfer's only donor (see [`Rebuild`]).
pub fn rebuild_roles(
    config: &Config,
    topology: &Topology,
    node: Option<&NodeName>,
    from: Option<&NodeName>,
) -> anyhow::Result<(Roles, Vec<String>)> {
    let Some(node) = node else {
        return Err(Exit::usage(format!(
            "name the node to rebuild: ha-setup recover rebuild NODE (one of {})",
            settings::data_nodes(config)
                .iter()
                .map(NodeName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    };
    if config.node(node).is_arbitrator() {
        return Err(Exit::usage(format!(
            "{node} is the arbitrator: it holds no data to rebuild (`ha-setup init` restarts its garbd)"
        ))
        .into());
    }
    let running = resolve::synced(config, topology);
    if running.len() == 1 && running[0] == *node {
        return Err(refused(
            format!(
                "refusing to rebuild {node}: it is the only Synced node, so it holds the cluster's only running copy. \
                 Bring the others back first (ha-setup recover rejoin)"
            ),
            topology,
        ));
    }
    if let Some(why) = &topology.get(node).unreachable {
        return Err(refused(
            format!("refusing to rebuild {node}: it cannot be reached from here ({why})"),
            topology,
        ));
    }
    let others: Vec<NodeName> = running.iter().filter(|n| *n != node).cloned().collect();
    let Some(first) = others.first() else {
        return Err(refused(
            format!(
                "refusing to rebuild {node}: no other node runs in a primary component to copy from. \
                 If every node stopped: ha-setup recover bootstrap"
            ),
            topology,
        ));
    };
    let write = resolve::write_node(config, topology, first);
    if let Some(from) = from {
        return named_donor(config, topology, node, from, &write, &others);
    }
    let donors: Vec<NodeName> = others.iter().filter(|n| **n != write).cloned().collect();
    let note = if donors.is_empty() {
        format!(
            "{node} gets its copy from {write}, the only other Synced node (the one the application writes to: its commits pause briefly)."
        )
    } else {
        format!(
            "{node} gets its copy from {} (not from {write}, which the application writes to).",
            and_list(&donors)
        )
    };
    let source = donors.first().cloned().unwrap_or(write);
    Ok((Roles::new(source, vec![node.clone()]), vec![note]))
}

/// `--from`: a data node other than NODE that is Synced now.
fn named_donor(
    config: &Config,
    topology: &Topology,
    node: &NodeName,
    from: &NodeName,
    write: &NodeName,
    synced: &[NodeName],
) -> anyhow::Result<(Roles, Vec<String>)> {
    if from == node {
        return Err(Exit::usage(format!(
            "--from {from} names the node being rebuilt; name another data node to copy from"
        ))
        .into());
    }
    if config.node(from).is_arbitrator() {
        return Err(Exit::usage(format!(
            "--from {from}: {from} is the arbitrator and holds no data; name a data node to copy from"
        ))
        .into());
    }
    if !synced.contains(from) {
        return Err(refused(
            format!(
                "refusing to rebuild {node} from {from}: {from} is not Synced in the cluster's primary component, so \
                 it cannot give a state transfer{}. Name a Synced node, or leave out --from",
                if synced.is_empty() {
                    String::new()
                } else {
                    format!(" (Synced: {})", and_list(synced))
                }
            ),
            topology,
        ));
    }
    let note = if from == write {
        format!(
            "{node} gets its copy from {from}, as asked (the node the application writes to: its commits pause briefly)."
        )
    } else {
        format!("{node} gets its copy from {from}, as asked.")
    };
    Ok((Roles::new(from.clone(), vec![node.clone()]), vec![note]))
}

pub struct Rebuild;

impl Step for Rebuild {
    fn name(&self) -> &'static str {
        "rebuild"
    }

    fn purpose(&self) -> &'static str {
        "the node stopped, its data moved aside (kept), and started: a full state transfer from a donor"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let mut actions = Vec::new();
        let donor = cx.roles.source.clone();
        let write = init::write_node(cx);
        for target in cx.roles.targets.clone() {
            let paths = super::super::layout::paths(cx, &target);
            let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
            let aside = super::super::layout::moved_aside_dir(&paths.datadir.value, &stamp);
            // The donor the plan names comes first for this transfer; the usual list comes
            // back once the node is Synced.
            let usual = init::settings_for(cx, &target, &write);
            let mut pinned = usual.clone();
            pinned.donors = donor.to_string();
            let (pinned, usual_donors) = (pinned.render(cx.config)?, usual.donors.clone());
            let usual = usual.render(cx.config)?;
            actions.push(init::write_pending(cx, &target, pinned.clone()));
            actions.push(init::start_action(
                cx,
                &target,
                "join",
                Some(&aside),
                JOIN_SECS,
                format!(
                    "stop MariaDB on {target}, move its data aside to {aside} (kept), and start it: it gets a full copy \
                     of the cluster's data by a state transfer from {donor} (from another Synced node only if {donor} \
                     cannot serve), and waits until Synced"
                ),
            ));
            let (runtime, _) = settings::changes(&pinned, &usual);
            let why = format!(
                "ha-setup's Galera settings on {target} back to its usual donors ({})",
                if usual_donors.is_empty() {
                    "any Synced node".to_owned()
                } else {
                    usual_donors.replace(',', ", ") + ", then any"
                }
            );
            let cnf = super::super::layout::cnf_path(cx, &target);
            actions.extend(init::without_restart(&target, cnf, usual, &runtime, why));
        }
        Ok(Verdict::Todo(actions))
    }
}
