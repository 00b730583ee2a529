//! What `status` adds for two writable nodes that replicate from each other: a node
//! read-only after a restart, a node that does not replicate from the other, and a canary
//! in each direction (from each node that takes writes to the other).

use crate::engine::{Canary, Engine};
use crate::node::{Hosts, NodeName};
use crate::topology::Topology;

/// A node that answers read-only: it takes none of the application's writes until it is
/// unfenced.
pub fn fenced(topology: &Topology) -> Vec<String> {
    topology
        .nodes
        .iter()
        .filter(|n| n.member && n.db.as_ref().is_some_and(|db| !db.writable))
        .map(|n| {
            let peer = topology
                .peer(&n.name)
                .map_or("the other node".into(), |p| p.to_string());
            format!(
                "{}: read-only (fenced, as a node is after a restart): it takes no writes. \
                 Once its link from {peer} has caught up, reopen writes: ha-setup recover unfence",
                n.name
            )
        })
        .collect()
}

/// A node that answers and replicates from nowhere misses the other's writes.
pub fn missing_links(
    topology: &Topology,
    problems: &mut Vec<String>,
    states: &mut Vec<&'static str>,
) {
    for observed in &topology.nodes {
        if !observed.answers() || observed.upstream().is_some() {
            continue;
        }
        let peer = topology
            .peer(&observed.name)
            .map_or("the other node".into(), |p| p.to_string());
        problems.push(format!(
            "{}: does not replicate from {peer}, so {peer}'s writes do not reach it. \
             Reconnect the pair (it checks that the histories merge first): ha-setup recover rejoin",
            observed.name
        ));
        states.push("broken");
    }
}

/// What the canaries found.
#[derive(Default)]
pub struct Canaries {
    /// Per node, how long the other's canary took to arrive there.
    pub arrived: Vec<(NodeName, u64)>,
    pub problems: Vec<String>,
    pub states: Vec<&'static str>,
}

/// A canary from each node that takes writes to the other, where the other's link from it
/// runs (`running`): each writer in a row of its own.
pub fn canaries(
    engine: &dyn Engine,
    topology: &Topology,
    hosts: &mut Hosts,
    running: &[NodeName],
) -> Canaries {
    let mut found = Canaries::default();
    for reader in running {
        let Some(writer) = topology.source_of(reader).cloned() else {
            continue;
        };
        if !topology
            .get(&writer)
            .db
            .as_ref()
            .is_some_and(|db| db.writable)
        {
            continue;
        }
        let seen = vec![topology.get(&writer), topology.get(reader)];
        let (writer_host, reader_hosts) = hosts.one_and_many(&writer, std::slice::from_ref(reader));
        match engine.canary(
            writer_host,
            reader_hosts,
            seen,
            super::status::CANARY_TIMEOUT,
        ) {
            Ok(Canary::Arrived(results)) => {
                for result in results {
                    match result {
                        Ok(took) => found
                            .arrived
                            .push((reader.clone(), took.as_millis() as u64)),
                        Err(why) => {
                            found
                                .problems
                                .push(format!("canary {writer} → {reader}: {why}"));
                            found.states.push("broken");
                        }
                    }
                }
            }
            Ok(Canary::Skipped(why)) => found
                .problems
                .push(format!("canary {writer} → {reader} not written: {why}")),
            Err(err) => {
                found
                    .problems
                    .push(format!("canary {writer} → {reader}: {err:#}"));
                found.states.push("broken");
            }
        }
    }
    found
}
