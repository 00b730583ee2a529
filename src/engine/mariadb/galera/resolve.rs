//! Who is who in a Galera cluster, from what each node showed, before any host is touched:
//! the node the cluster starts from (or a member it runs on), the other data nodes, and
//! the node the application writes to. A choice the facts do not prove is refused (exit 3)
//! with what each node answered.

use super::observe::{self, Reading};
use super::settings;
use crate::config::{Config, NodeRole};
use crate::error::Exit;
use crate::node::NodeName;
use crate::plan::Roles;
use crate::topology::{Topology, and_list};

fn refused(message: String, topology: &Topology) -> anyhow::Error {
    Exit::refused(format!("{message}{}", topology.table())).into()
}

/// The data nodes Synced in a primary component of this cluster (its name).
pub fn synced(config: &Config, topology: &Topology) -> Vec<NodeName> {
    let name = settings::cluster_name(config);
    settings::data_nodes(config)
        .into_iter()
        .filter(|n| {
            observe::wsrep(topology.get(n)).is_some_and(|w| w.synced() && w.cluster_name == name)
        })
        .collect()
}

/// The node the application writes to: the config's `role = "primary"`, else ha-setup's
/// record on the nodes, else `first` (the node the cluster starts from).
pub fn write_node(config: &Config, topology: &Topology, first: &NodeName) -> NodeName {
    let data = settings::data_nodes(config);
    if let Some(marked) = data
        .iter()
        .find(|n| config.node(n).role == Some(NodeRole::Primary))
    {
        return marked.clone();
    }
    topology
        .nodes
        .iter()
        .filter_map(|o| observe::reading(o)?.record.as_ref())
        .map(|r| r.write_node.clone())
        .find(|n| data.contains(n))
        .unwrap_or_else(|| first.clone())
}

/// verify: every other data node is compared with the write node while it is Synced, else
/// with another Synced member (every Synced member of a primary component holds the same
/// history), said in a note; with none Synced there is nothing to compare with.
pub fn verify(config: &Config, topology: &Topology) -> anyhow::Result<(Roles, Vec<String>)> {
    let running = synced(config, topology);
    let Some(first) = running.first() else {
        anyhow::bail!(
            "cannot verify: no data node is Synced in a primary component of the Galera cluster {}, so none holds \
             data the others can be compared with. `ha-setup status` says why and what to do{}",
            settings::cluster_name(config),
            topology.table()
        );
    };
    let write = write_node(config, topology, first);
    let mut notes = Vec::new();
    let source = if running.contains(&write) {
        write
    } else {
        notes.push(format!(
            "{write}, the node the application writes to, is not Synced in a primary component: \
             the other nodes are compared with {first}"
        ));
        first.clone()
    };
    let targets = settings::data_nodes(config)
        .into_iter()
        .filter(|n| *n != source)
        .collect();
    Ok((Roles::new(source, targets), notes))
}

/// A node that was a member of this cluster: its saved state names the history the
/// running members have (`uuid`), or, with none running, any Galera history at all under
/// ha-setup's settings.
pub fn former_member(reading: &Reading, uuid: Option<&str>) -> bool {
    match (&reading.grastate, uuid) {
        (Some(state), Some(uuid)) => state.uuid == uuid,
        (Some(state), None) => !state.uuid.is_empty() && !state.uuid.starts_with("00000000-"),
        (None, _) => false,
    }
}

/// init: with the cluster running, a Synced member (the write node when it is) is where
/// the others join; before the first init, the node the config marks, else the only node
/// holding application databases, else the first data node.
pub fn init(config: &Config, topology: &Topology) -> anyhow::Result<(Roles, Vec<String>)> {
    let data = settings::data_nodes(config);
    let running = synced(config, topology);
    let mut notes = Vec::new();
    let source = if let Some(first) = running.first() {
        let write = write_node(config, topology, first);
        if running.contains(&write) {
            write
        } else {
            first.clone()
        }
    } else {
        let stopped: Vec<NodeName> = data
            .iter()
            .filter(|n| {
                let seen = topology.get(n);
                seen.member && observe::reading(seen).is_some_and(|r| former_member(r, None))
            })
            .cloned()
            .collect();
        if !stopped.is_empty() {
            return Err(refused(
                format!(
                    "refusing to init: {} of the Galera cluster {} and none runs it now (no node is Synced). \
                     Starting one of them as a new cluster could lose what another holds: run `ha-setup recover bootstrap`, \
                     which starts the cluster from the node with the most",
                    match &stopped[..] {
                        [one] => format!("{one} was a member"),
                        many => format!("{} were members", and_list(many)),
                    },
                    settings::cluster_name(config)
                ),
                topology,
            ));
        }
        first_node(config, topology, &data)?
    };
    if running.is_empty() {
        let seen = topology.get(&source);
        let databases = observe::reading(seen)
            .map(|r| r.app_databases.clone())
            .unwrap_or_default();
        notes.push(if databases.is_empty() {
            format!(
                "The cluster starts from {source}'s data (it holds no application database yet)."
            )
        } else {
            format!(
                "The cluster starts from {source}'s data ({}); every other node gets a copy of it.",
                databases.join(", ")
            )
        });
    }
    let targets = data.into_iter().filter(|n| *n != source).collect();
    Ok((Roles::new(source, targets), notes))
}

/// The node a new cluster starts from.
fn first_node(config: &Config, topology: &Topology, data: &[NodeName]) -> anyhow::Result<NodeName> {
    if let Some(marked) = data
        .iter()
        .find(|n| config.node(n).role == Some(NodeRole::Primary))
    {
        return Ok(marked.clone());
    }
    let holding: Vec<(NodeName, Vec<String>)> = data
        .iter()
        .filter_map(|n| {
            let databases = observe::reading(topology.get(n))?.app_databases.clone();
            (!databases.is_empty()).then(|| (n.clone(), databases))
        })
        .collect();
    match &holding[..] {
        [] => Ok(settings::data_nodes(config)
            .first()
            .cloned()
            .unwrap_or_else(|| config.starting_primary().clone())),
        [(one, _)] => Ok(one.clone()),
        many => Err(refused(
            format!(
                "refusing to init: more than one node holds application databases ({}). A Galera cluster starts \
                 from one node's data, and the others' would be replaced. Mark the node to start from with \
                 role = \"primary\" in its [nodes.NAME] table, and move the databases off the others first",
                many.iter()
                    .map(|(n, d)| format!("{n}: {}", d.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            topology,
        )),
    }
}
