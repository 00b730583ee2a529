//! Two writable MariaDB nodes, each replicating from the other (`topology =
//! "primary-primary"`). The same engine as primary-replica for reading nodes, backups and
//! seeding; its own plans for what differs: a link in each direction, both nodes opened for
//! writes once each has caught up with the other, the histories checked before links are
//! remade, and no role to promote or swap.
//!
//! Why it is safe to write on both (see templates/mariadb-node.cnf): each node writes its
//! own GTID domain (its server_id), so each domain is an ordered stream with one writer
//! and a node's position is exact per domain; AUTO_INCREMENT keys come from disjoint
//! sequences (increment 2, offsets 1 and 2); a node's own transactions that come back from
//! the other are skipped by server_id. What it cannot prevent is the application writing
//! the same row on both nodes: that stops a link with a conflict, which status names.

pub mod conflict;
pub mod links;
pub mod merge;
pub mod writes;

use std::cmp::Ordering;
use std::time::Duration;

use super::MariaDb;
use crate::config::Config;
use crate::engine::{Canary, Engine};
use crate::host::Host;
use crate::node::NodeName;
use crate::plan::{Ctx, Plan};
use crate::topology::Observed;

pub struct MariaDbPair;

/// The two nodes an operation works on: the source and its target (init, rebuild), or
/// the node to open and the other one (unfence; alone when the other cannot be checked
/// and the operator said --force).
pub fn members(cx: &Ctx<'_>) -> Vec<NodeName> {
    let mut nodes = vec![cx.roles.source.clone()];
    nodes.extend(cx.roles.targets.iter().cloned());
    nodes
}

/// The other node of the pair, as the config names them.
pub fn other(config: &Config, name: &NodeName) -> NodeName {
    config
        .nodes
        .keys()
        .find(|n| *n != name)
        .cloned()
        .unwrap_or_else(|| name.clone())
}

/// An operation that does not apply to two writers (topology.rs says why).
fn refused(operation: &'static str) -> Plan {
    let why = crate::topology::two_writers_refusal(operation).unwrap_or_default();
    Plan::refused(operation, why.to_owned())
}

impl Engine for MariaDbPair {
    fn name(&self) -> &'static str {
        "mariadb"
    }

    fn backup_position(&self, dir: &std::path::Path) -> anyhow::Result<crate::bundle::Position> {
        MariaDb.backup_position(dir)
    }

    fn stream_backup(
        &self,
        source: crate::bundle::Source,
        work: &std::path::Path,
        out: &mut dyn std::io::Write,
        compress: crate::bundle::Compress,
        progress: &mut dyn FnMut(u64),
    ) -> anyhow::Result<crate::bundle::Manifest> {
        MariaDb.stream_backup(source, work, out, compress, progress)
    }

    fn observe(&self, host: &mut dyn Host, name: &NodeName, config: &Config) -> Observed {
        MariaDb.observe(host, name, config)
    }

    fn compare(&self, a: &Observed, b: &Observed) -> Option<Ordering> {
        MariaDb.compare(a, b)
    }

    fn details(&self, node: &Observed) -> Vec<(&'static str, String)> {
        let mut details = MariaDb.details(node);
        if let Some(state) = super::observe::state(node) {
            let server = &state.server;
            details.push(("gtid_domain_id", server.gtid_domain_id.to_string()));
            details.push((
                "auto_increment",
                format!(
                    "{} + n * {}",
                    server.auto_increment_offset, server.auto_increment_increment
                ),
            ));
        }
        details
    }

    fn link_hint(&self, node: &Observed, error: &str) -> String {
        conflict::hint(node, error)
    }

    fn verify(
        &self,
        primary: &mut dyn Host,
        others: Vec<&mut dyn Host>,
        seen: Vec<&Observed>,
        drive: &mut dyn FnMut(&mut dyn crate::verify::Checker) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        // The checksums travel through the link from the compared-against node to the
        // other, as for a replica; that node's own writes, which can make a chunk differ
        // for a moment, are told apart by its GTID domain (src/engine/mariadb/verify.rs).
        super::verify::verify_writers(primary, others, seen, drive)
    }

    fn init_plan(&self) -> Plan {
        let mut steps = MariaDb.init_plan().steps;
        // The primary-replica verify-link checks one direction; both are checked at the end.
        steps.retain(|step| step.name() != "verify-link");
        steps.push(Box::new(links::Links { both: false }));
        steps.push(Box::new(writes::OpenWrites));
        steps.push(Box::new(links::VerifyLinks));
        Plan {
            operation: "init",
            steps,
        }
    }

    fn promote_plan(&self) -> Plan {
        refused("recover-promote")
    }

    fn unfence_plan(&self) -> Plan {
        Plan {
            operation: "recover-unfence",
            steps: vec![Box::new(writes::OpenWrites)],
        }
    }

    fn rebuild_plan(&self) -> Plan {
        // After preflight, before anything of the copy: the node to re-seed takes no more
        // writes, and the source applies no more of its old stream (whose transactions the
        // copy will not hold, and whose numbers the re-seeded node's new writes reuse).
        let mut steps = MariaDb.rebuild_plan().steps;
        steps.insert(1, Box::new(links::StopLinkBack));
        steps.insert(1, Box::new(writes::FenceTarget));
        steps.retain(|step| step.name() != "verify-link");
        steps.push(Box::new(links::Links { both: false }));
        steps.push(Box::new(writes::OpenWrites));
        steps.push(Box::new(links::VerifyLinks));
        Plan {
            operation: "recover-rebuild",
            steps,
        }
    }

    fn restore_plan(&self, bundle: &std::path::Path, force: bool) -> Plan {
        MariaDb.restore_plan(bundle, force)
    }

    fn rejoin_plan(&self, rewind: bool) -> Plan {
        if rewind {
            return MariaDb.rejoin_plan(true);
        }
        Plan {
            operation: "recover-rejoin",
            steps: vec![
                Box::new(merge::CheckMerge),
                Box::new(links::Links { both: true }),
                Box::new(writes::OpenWrites),
                Box::new(links::VerifyLinks),
            ],
        }
    }

    fn switchover_plan(&self) -> Plan {
        refused("switchover")
    }

    fn bundle_to(
        &self,
        host: &mut dyn Host,
        name: &NodeName,
        node: &crate::config::Node,
        out: &mut (dyn std::io::Write + Send),
        compress: crate::bundle::Compress,
        ui: &crate::ui::Ui,
    ) -> anyhow::Result<()> {
        MariaDb.bundle_to(host, name, node, out, compress, ui)
    }

    fn canary(
        &self,
        source: &mut dyn Host,
        replicas: Vec<&mut dyn Host>,
        _seen: Vec<&Observed>,
        timeout: Duration,
    ) -> anyhow::Result<Canary> {
        // Each canary is a row of its own (link.rs): the two writers' never collide.
        super::link::canary(source, replicas, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_of_two_writers() {
        let names = |plan: Plan| -> Vec<&'static str> {
            plan.steps.iter().map(|step| step.name()).collect()
        };
        assert_eq!(
            names(MariaDbPair.init_plan()),
            [
                "preflight",
                "prepare-primary",
                "transfer",
                "unpack",
                "configure-replicas",
                "start",
                "enable-replication",
                "link-back",
                "open-writes",
                "verify-link"
            ]
        );
        assert_eq!(
            names(MariaDbPair.rebuild_plan())[..4],
            ["preflight", "fence", "stop-link-back", "discard-seed"]
        );
        assert_eq!(
            names(MariaDbPair.rejoin_plan(false)),
            ["check-merge", "links", "open-writes", "verify-link"]
        );
        assert_eq!(names(MariaDbPair.switchover_plan()), ["refuse"]);
    }
}
