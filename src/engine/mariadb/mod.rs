//! MariaDB (10.5+; Debian's 10.11 in the lab): replication by GTID, seeded with a
//! mariadb-backup snapshot streamed as a bundle.

pub mod client;
pub mod facts;
pub mod layout;
pub mod link;
pub mod preflight;
pub mod primary;
pub mod recover;
pub mod restore;
pub mod roles;
pub mod secondary;
pub mod seed;
pub mod switchover;

use std::time::Duration;

use super::{Engine, NodeReport};
use crate::host::Host;
use crate::plan::{Ctx, NodeName, Plan};

pub struct MariaDb;

impl Engine for MariaDb {
    fn init_plan(&self) -> Plan {
        Plan {
            operation: "init",
            steps: vec![
                Box::new(preflight::Preflight),
                Box::new(primary::PreparePrimary),
                Box::new(seed::Package),
                Box::new(seed::Transfer),
                Box::new(seed::Unpack),
                Box::new(secondary::ConfigureSecondary),
                Box::new(secondary::Start),
                Box::new(link::EnableReplication),
                Box::new(link::VerifyLink),
            ],
        }
    }

    fn promote_plan(&self, force: bool) -> Plan {
        Plan {
            operation: "recover-promote",
            steps: vec![
                Box::new(recover::CheckPrimary { force }),
                Box::new(recover::Fence),
                Box::new(recover::Promote),
                Box::new(recover::FirstWrite),
            ],
        }
    }

    fn unfence_plan(&self, force: bool) -> Plan {
        Plan {
            operation: "recover-unfence",
            steps: vec![Box::new(recover::Unfence { force })],
        }
    }

    fn rebuild_plan(&self) -> Plan {
        let mut steps = self.init_plan().steps;
        steps.insert(1, Box::new(recover::DiscardSeed));
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

    fn rejoin_plan(&self) -> Plan {
        Plan {
            operation: "recover-rejoin",
            steps: vec![Box::new(recover::Rejoin)],
        }
    }

    fn switchover_plan(&self) -> Plan {
        Plan {
            operation: "switchover",
            steps: vec![
                Box::new(switchover::Switch),
                Box::new(switchover::VerifySwapped),
            ],
        }
    }

    fn switch_roles(
        &self,
        cx: &mut Ctx<'_>,
        primary: NodeName,
        timeout: Duration,
    ) -> anyhow::Result<Vec<String>> {
        let secret = switchover::secret(cx)?;
        let config = cx.config;
        let (primary_host, replica_host) = cx.pair(primary);
        switchover::switch(
            config,
            primary,
            primary_host,
            replica_host,
            timeout,
            &secret,
        )
    }

    fn canary(
        &self,
        source: &mut dyn Host,
        replica: &mut dyn Host,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        link::wait_for_threads(replica, timeout)?;
        link::canary(source, replica, timeout)
    }

    fn node_report(&self, name: &str, host: &mut dyn Host) -> NodeReport {
        let mut report = NodeReport {
            name: name.to_owned(),
            host: host.label().to_owned(),
            role: "unknown".into(),
            reachable: true,
            ..NodeReport::default()
        };
        let (server, replica) = match facts::state(host) {
            Ok(state) => state,
            Err(err) => {
                report.problem = Some(format!("MariaDB does not answer: {err:#}"));
                return report;
            }
        };
        report.running = true;
        report.version = Some(server.version.to_string());
        report.read_only = Some(server.read_only);
        report.position = Some(server.gtid_current_pos.clone());
        match replica {
            Some(replica) => {
                report.role = "replica".into();
                report.io_running = Some(replica.io_ok());
                report.sql_running = Some(replica.sql_ok());
                report.last_error = replica.last_error();
                report.lag_seconds = replica.seconds_behind;
                report.source = Some(format!("{}:{}", replica.master_host, replica.master_port));
            }
            None => report.role = "primary".into(),
        }
        report
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
                "package",
                "transfer",
                "unpack",
                "configure-secondary",
                "start",
                "enable-replication",
                "verify-link"
            ]
        );
        assert_eq!(plan.operation, "init");
    }
}
