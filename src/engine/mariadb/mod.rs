//! MariaDB (10.5+; Debian's 10.11 in the lab): replication by GTID, seeded with a
//! mariadb-backup snapshot streamed as a bundle.

pub mod chunks;
pub mod client;
pub mod facts;
pub mod galera;
pub mod layout;
pub mod link;
pub mod observe;
pub mod pair;
pub mod position;
pub mod preflight;
pub mod primary;
pub mod recover;
pub mod replica;
pub mod restore;
pub mod seed;
pub mod stream;
pub mod switchover;
pub mod verify;
pub mod xbstream;

use std::cmp::Ordering;
use std::time::Duration;

use super::{Canary, Engine};
use crate::config::Config;
use crate::host::Host;
use crate::node::NodeName;
use crate::plan::Plan;
use crate::topology::Observed;

pub struct MariaDb;

impl Engine for MariaDb {
    fn name(&self) -> &'static str {
        "mariadb"
    }

    fn backup_position(&self, dir: &std::path::Path) -> anyhow::Result<crate::bundle::Position> {
        position::backup_position(dir)
    }

    fn stream_backup(
        &self,
        source: crate::bundle::Source,
        work: &std::path::Path,
        out: &mut dyn std::io::Write,
        compress: crate::bundle::Compress,
        progress: &mut dyn FnMut(u64),
    ) -> anyhow::Result<crate::bundle::Manifest> {
        stream::stream_backup(source, work, out, compress, progress)
    }

    fn observe(&self, host: &mut dyn Host, name: &NodeName, config: &Config) -> Observed {
        observe::observe(host, name, config)
    }

    fn compare(&self, a: &Observed, b: &Observed) -> Option<Ordering> {
        observe::compare(a, b)
    }

    fn details(&self, node: &Observed) -> Vec<(&'static str, String)> {
        let Some(state) = observe::state(node) else {
            return Vec::new();
        };
        let mut details = vec![
            ("server_id", state.server.server_id.to_string()),
            ("gtid_binlog_pos", state.server.gtid_binlog_pos.clone()),
            ("gtid_slave_pos", state.server.gtid_slave_pos.clone()),
        ];
        if let Some(replica) = &state.replica {
            details.push(("gtid_io_pos", replica.gtid_io_pos.clone()));
        }
        details
    }

    fn link_hint(&self, _node: &Observed, error: &str) -> String {
        link::hint(error).to_owned()
    }

    fn galera(&self) -> Option<&'static dyn Engine> {
        Some(&galera::MariaDbGalera)
    }

    fn two_writers(&self) -> Option<&'static dyn Engine> {
        Some(&pair::MariaDbPair)
    }

    fn init_plan(&self) -> Plan {
        Plan {
            operation: "init",
            steps: vec![
                Box::new(preflight::Preflight),
                Box::new(primary::PreparePrimary),
                Box::new(seed::Transfer),
                Box::new(seed::Unpack),
                Box::new(replica::ConfigureReplicas),
                Box::new(replica::Start),
                Box::new(link::EnableReplication),
                Box::new(link::VerifyLink),
            ],
        }
    }

    fn promote_plan(&self) -> Plan {
        Plan {
            operation: "recover-promote",
            steps: vec![
                Box::new(recover::CheckPrimary),
                Box::new(recover::Fence),
                Box::new(recover::Promote),
                Box::new(recover::Repoint),
                Box::new(recover::FirstWrite),
            ],
        }
    }

    fn unfence_plan(&self) -> Plan {
        Plan {
            operation: "recover-unfence",
            steps: vec![Box::new(recover::Unfence)],
        }
    }

    fn rebuild_plan(&self) -> Plan {
        let mut steps = self.init_plan().steps;
        steps.insert(
            1,
            Box::new(crate::rebuild::DiscardSeed {
                record: layout::SEED_RECORD,
            }),
        );
        Plan {
            operation: "recover-rebuild",
            steps,
        }
    }

    fn restore_plan(&self, bundle: &std::path::Path, force: bool) -> Plan {
        Plan {
            operation: "recover-restore",
            steps: vec![
                Box::new(restore::CheckTarget {
                    force,
                    bundle: bundle.to_owned(),
                }),
                Box::new(restore::Receive {
                    bundle: bundle.to_owned(),
                }),
                Box::new(seed::Unpack),
                Box::new(restore::ConfigureRestored),
                Box::new(restore::StartAsPrimary),
            ],
        }
    }

    fn rejoin_plan(&self, rewind: bool) -> Plan {
        if rewind {
            return Plan::refused(
                "recover-rejoin",
                "--rewind is for PostgreSQL: MariaDB cannot rewind a node. A node with transactions \
                 the primary never got is re-seeded instead: ha-setup recover rebuild NODE"
                    .into(),
            );
        }
        Plan {
            operation: "recover-rejoin",
            steps: vec![Box::new(recover::Rejoin), Box::new(link::VerifyLink)],
        }
    }

    fn switchover_plan(&self) -> Plan {
        Plan {
            operation: "switchover",
            steps: vec![Box::new(switchover::Switch), Box::new(link::VerifyLink)],
        }
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
        seed::bundle_to(host, name, node, out, compress, ui)
    }

    fn canary(
        &self,
        source: &mut dyn Host,
        replicas: Vec<&mut dyn Host>,
        _seen: Vec<&Observed>,
        timeout: Duration,
    ) -> anyhow::Result<Canary> {
        link::canary(source, replicas, timeout)
    }

    fn verify(
        &self,
        primary: &mut dyn Host,
        others: Vec<&mut dyn Host>,
        seen: Vec<&Observed>,
        drive: &mut dyn FnMut(&mut dyn crate::verify::Checker) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        verify::verify(primary, others, seen, drive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_the_named_steps_in_order() {
        let plan = MariaDb.init_plan();
        let names: Vec<&str> = plan.steps.iter().map(|step| step.name()).collect();
        assert_eq!(
            names,
            [
                "preflight",
                "prepare-primary",
                "transfer",
                "unpack",
                "configure-replicas",
                "start",
                "enable-replication",
                "verify-link"
            ]
        );
        assert_eq!(plan.operation, "init");
    }
}
