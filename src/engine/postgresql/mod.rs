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
pub mod scram;
pub mod seed;
pub mod service;
pub mod standby;
pub mod stream;

use std::cmp::Ordering;
use std::time::Duration;

use super::{Canary, Engine};
use crate::config::Config;
use crate::error::Exit;
use crate::host::Host;
use crate::node::NodeName;
use crate::plan::{Ctx, Plan, Step, Verdict};
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
        for slot in &server.slots {
            details.push((
                "slot",
                format!(
                    "{} active={} wal_status={} retained_bytes={}",
                    slot.slot_name,
                    slot.active,
                    slot.wal_status.as_deref().unwrap_or("-"),
                    slot.retained_bytes
                        .map_or_else(|| "-".to_owned(), |b| b.to_string())
                ),
            ));
        }
        details
    }

    fn link_hint(&self, error: &str) -> String {
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
        not_yet("recover-rebuild")
    }

    fn restore_plan(&self, _bundle: &std::path::Path, _force: bool) -> Plan {
        not_yet("recover-restore")
    }

    fn rejoin_plan(&self) -> Plan {
        not_yet("recover-rejoin")
    }

    fn switchover_plan(&self) -> Plan {
        not_yet("switchover")
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
}

/// An operation this version does not do for PostgreSQL yet: refused before anything is
/// read or changed, saying so, rather than half-done.
fn not_yet(operation: &'static str) -> Plan {
    Plan {
        operation,
        steps: vec![Box::new(NotYet(operation))],
    }
}

struct NotYet(&'static str);

impl Step for NotYet {
    fn name(&self) -> &'static str {
        "refuse"
    }

    fn purpose(&self) -> &'static str {
        "an operation this version cannot do for PostgreSQL"
    }

    fn check(&self, _cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        Err(Exit::usage(format!(
            "`{}` is not available for engine = \"postgresql\" in this version of ha-setup; \
             init, status, recover promote and recover unfence are. To re-seed a standby by \
             hand: stop it, move its data directory aside, and run `ha-setup init` again",
            self.0.replace('-', " ")
        ))
        .into())
    }
}
