//! MariaDB Galera (`topology = "galera"`): three or more MariaDB nodes, or two and an
//! arbitrator (garbd), in one Galera cluster (Debian's galera-4), every node writable.
//! Galera replicates; ha-setup sets the cluster up from one node's data, checks it and
//! recovers it, and builds no replication of its own. The backup, bundle and canary are
//! MariaDB's.

pub mod bootstrap;
pub mod init;
pub mod observe;
pub mod preflight;
pub mod recover;
pub mod resolve;
pub mod settings;
pub mod status;
pub mod verify;

use std::cmp::Ordering;
use std::time::Duration;

use super::MariaDb;
use crate::config::Config;
use crate::engine::{Canary, Engine};
use crate::host::Host;
use crate::node::NodeName;
use crate::plan::Plan;
use crate::topology::Observed;

pub struct MariaDbGalera;

fn not_in_galera(operation: &'static str, what: &str) -> Plan {
    Plan::refused(
        operation,
        format!(
            "{what} does not apply to topology = \"galera\": every node takes writes and Galera keeps them \
             in step, so there is no primary to promote, fence or swap. While a majority of the nodes runs, \
             the cluster serves; a node that stopped comes back with `ha-setup recover rejoin`, and a cluster \
             whose every node stopped with `ha-setup recover bootstrap`."
        ),
    )
}

impl Engine for MariaDbGalera {
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
        observe::observe(host, name, config)
    }

    fn compare(&self, a: &Observed, b: &Observed) -> Option<Ordering> {
        observe::compare(a, b)
    }

    fn details(&self, node: &Observed) -> Vec<(&'static str, String)> {
        let Some(reading) = observe::reading(node) else {
            return Vec::new();
        };
        let mut details = Vec::new();
        if let Some(w) = &reading.wsrep {
            details.push(("wsrep_local_state_comment", w.state.clone()));
            details.push(("wsrep_cluster_status", w.cluster_status.clone()));
            details.push(("wsrep_cluster_size", w.cluster_size.to_string()));
            details.push(("wsrep_last_committed", w.last_committed.to_string()));
            details.push(("wsrep_cluster_state_uuid", w.cluster_uuid.clone()));
        }
        // A running node's grastate.dat says -1 by design: only a stopped node's counts.
        if let Some(state) = reading
            .grastate
            .as_ref()
            .filter(|_| reading.wsrep.is_none())
        {
            details.push(("grastate_seqno", state.seqno.to_string()));
            details.push((
                "safe_to_bootstrap",
                if state.safe_to_bootstrap { "1" } else { "0" }.to_owned(),
            ));
        }
        details
    }

    fn link_hint(&self, node: &Observed, error: &str) -> String {
        MariaDb.link_hint(node, error)
    }

    fn roles(
        &self,
        operation: &str,
        config: &Config,
        topology: &crate::topology::Topology,
        node: Option<&NodeName>,
        from: Option<&NodeName>,
        _force: bool,
    ) -> Option<anyhow::Result<(crate::plan::Roles, Vec<String>)>> {
        match operation {
            "init" => Some(resolve::init(config, topology)),
            "recover-bootstrap" => Some(bootstrap::roles(config, topology)),
            "recover-rejoin" => Some(recover::rejoin_roles(config, topology)),
            "recover-rebuild" => Some(recover::rebuild_roles(config, topology, node, from)),
            "verify" => Some(resolve::verify(config, topology)),
            // Their plans refuse (usage) before any node is judged.
            "recover-promote" | "recover-unfence" | "switchover" | "recover-restore" => {
                let data = settings::data_nodes(config);
                Some(Ok((
                    crate::plan::Roles::new(data[0].clone(), data[1..].to_vec()),
                    Vec::new(),
                )))
            }
            _ => None,
        }
    }

    fn membership(
        &self,
        config: &Config,
        topology: &crate::topology::Topology,
    ) -> Option<crate::engine::Membership> {
        Some(status::membership(config, topology))
    }

    fn init_plan(&self) -> Plan {
        Plan {
            operation: "init",
            steps: vec![
                Box::new(preflight::Preflight),
                Box::new(init::Certificates),
                Box::new(init::SstLogin),
                Box::new(init::StartCluster),
                Box::new(init::Join),
                Box::new(init::Settle),
                Box::new(init::Arbitrator),
                Box::new(init::VerifyCluster {
                    without_unreachable: false,
                }),
            ],
        }
    }

    fn bootstrap_plan(&self, force: bool) -> Plan {
        Plan {
            operation: "recover-bootstrap",
            steps: vec![
                Box::new(bootstrap::Positions { force }),
                Box::new(bootstrap::Bootstrap),
                Box::new(bootstrap::StartOthers),
                Box::new(init::Arbitrator),
                Box::new(init::VerifyCluster {
                    without_unreachable: force,
                }),
            ],
        }
    }

    fn promote_plan(&self) -> Plan {
        not_in_galera("recover-promote", "recover promote")
    }

    fn unfence_plan(&self) -> Plan {
        not_in_galera("recover-unfence", "recover unfence")
    }

    fn rebuild_plan(&self) -> Plan {
        Plan {
            operation: "recover-rebuild",
            steps: vec![
                Box::new(recover::Rebuild),
                Box::new(init::VerifyCluster {
                    without_unreachable: true,
                }),
            ],
        }
    }

    fn restore_plan(&self, _bundle: &std::path::Path, _force: bool) -> Plan {
        Plan::refused(
            "recover-restore",
            "recover restore does not apply to topology = \"galera\" yet: restore the bundle onto one node \
             with a config of topology = \"primary-replica\", then set the cluster up from it with `ha-setup init`"
                .into(),
        )
    }

    fn rejoin_plan(&self, rewind: bool) -> Plan {
        if rewind {
            return Plan::refused(
                "recover-rejoin",
                "--rewind is for PostgreSQL: a Galera node rejoins with what it missed, or a full state transfer".into(),
            );
        }
        Plan {
            operation: "recover-rejoin",
            steps: vec![
                Box::new(bootstrap::StartOthers),
                Box::new(init::Arbitrator),
                Box::new(init::VerifyCluster {
                    without_unreachable: true,
                }),
            ],
        }
    }

    fn switchover_plan(&self) -> Plan {
        not_in_galera("switchover", "switchover")
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

    fn verify(
        &self,
        primary: &mut dyn Host,
        others: Vec<&mut dyn Host>,
        _seen: Vec<&Observed>,
        drive: &mut dyn FnMut(&mut dyn crate::verify::Checker) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        // `primary` is the write node (resolve::verify), `others` the other data nodes;
        // each node's own state is read by the checker itself, at the start.
        verify::verify(primary, others, drive)
    }

    fn canary(
        &self,
        source: &mut dyn Host,
        replicas: Vec<&mut dyn Host>,
        seen: Vec<&Observed>,
        timeout: Duration,
    ) -> anyhow::Result<Canary> {
        MariaDb.canary(source, replicas, seen, timeout)
    }
}
