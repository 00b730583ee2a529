//! PostgreSQL (13+; Debian's 15 in the lab): a hot standby streaming through a physical
//! slot, seeded with a `pg_basebackup` streamed as a bundle, fenced across restarts by
//! `standby.signal` (recover.rs).

pub mod client;
pub mod layout;
pub mod link;
pub mod observe;
pub mod position;
pub mod preflight;
pub mod primary;
pub mod recover;
pub mod rejoin;
pub mod restore;
pub mod scram;
pub mod seed;
pub mod service;
pub mod standby;
pub mod stream;
pub mod switchover;
pub mod verify;

use std::cmp::Ordering;
use std::time::Duration;

use super::{Canary, Engine};
use crate::config::Config;
use crate::host::Host;
use crate::node::NodeName;
use crate::plan::Plan;
use crate::topology::Observed;

pub struct PostgreSql;

impl Engine for PostgreSql {
    fn name(&self) -> &'static str {
        "postgresql"
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
        let Some(server) = observe::server(node) else {
            return Vec::new();
        };
        let mut details = vec![
            ("system_identifier", server.system_identifier.clone()),
            ("timeline", server.timeline.to_string()),
        ];
        if let Some(lsn) = server.holds() {
            details.push(("lsn", lsn.to_string()));
        }
        if let Some(receiver) = &server.receiver {
            details.push(("wal_receiver", receiver.status.clone()));
        }
        // Several of each: one value, a list, so no entry hides another.
        let slots: Vec<String> = server
            .slots
            .iter()
            .map(|slot| {
                format!(
                    "{} active={} wal_status={} retained_bytes={}",
                    slot.slot_name,
                    slot.active,
                    slot.wal_status.as_deref().unwrap_or("-"),
                    slot.retained_bytes
                        .map_or_else(|| "-".to_owned(), |b| b.to_string())
                )
            })
            .collect();
        if !slots.is_empty() {
            details.push(("slots", slots.join("; ")));
        }
        let standbys: Vec<String> = server
            .replicas
            .iter()
            .map(|r| {
                format!(
                    "{} {} lag_bytes={} replay_lag={}",
                    r.application_name,
                    r.state.as_deref().unwrap_or("-"),
                    r.lag_bytes
                        .map_or_else(|| "-".to_owned(), |b| b.to_string()),
                    r.replay_lag
                        .map_or_else(|| "-".to_owned(), |s| format!("{s:.3}s"))
                )
            })
            .collect();
        if !standbys.is_empty() {
            details.push(("standbys", standbys.join("; ")));
        }
        details
    }

    fn link_hint(&self, _node: &Observed, error: &str) -> String {
        link::hint(error)
    }

    fn init_plan(&self) -> Plan {
        Plan {
            operation: "init",
            steps: vec![
                Box::new(preflight::Preflight),
                Box::new(primary::PreparePrimary),
                Box::new(seed::Transfer),
                Box::new(seed::Unpack),
                Box::new(standby::ConfigureStandbys),
                Box::new(standby::Start),
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
        steps.insert(2, Box::new(recover::Detach));
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
        Plan {
            operation: "recover-rejoin",
            steps: vec![
                Box::new(rejoin::Rejoin { rewind }),
                Box::new(link::VerifyLink),
            ],
        }
    }

    fn switchover_plan(&self) -> Plan {
        Plan {
            operation: "switchover",
            steps: vec![
                Box::new(switchover::Switch),
                Box::new(recover::Promote),
                Box::new(switchover::Follow),
                Box::new(link::VerifyLink),
            ],
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
        seen: Vec<&Observed>,
        timeout: Duration,
    ) -> anyhow::Result<Canary> {
        link::canary(source, replicas, seen, timeout)
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
