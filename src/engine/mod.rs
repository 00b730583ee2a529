//! The database engines behind one trait: what `init` does and what `status` reads differ
//! per engine; the plan, runner, hosts and output do not.

pub mod mariadb;

use std::time::Duration;

use serde::Serialize;

use crate::config::{self, Config};
use crate::error::Exit;
use crate::host::Host;
use crate::plan::{Ctx, NodeName, Plan};

/// One node as `status` reports it (SPEC.md, `status --format json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeReport {
    /// `primary` / `secondary`, as in the config.
    pub name: String,
    pub host: String,
    /// `primary`, `replica`, `unreachable` or `unknown`.
    pub role: String,
    pub reachable: bool,
    /// Whether the database answers.
    pub running: bool,
    pub version: Option<String>,
    pub read_only: Option<bool>,
    pub io_running: Option<bool>,
    pub sql_running: Option<bool>,
    pub last_error: Option<String>,
    pub lag_seconds: Option<u64>,
    /// GTID state: what the node has applied (MariaDB gtid_current_pos).
    pub position: Option<String>,
    /// Where a replica replicates from.
    pub source: Option<String>,
    /// Why the node could not be read, when it could not.
    pub problem: Option<String>,
}

pub trait Engine: Sync {
    /// The steps of `init`.
    fn init_plan(&self) -> Plan;

    /// `recover promote`: the replica becomes the primary; refused while the primary still
    /// takes writes, unless `force`.
    fn promote_plan(&self, force: bool) -> Plan;

    /// `recover unfence`: reopen writes on the primary once no other node is primary.
    fn unfence_plan(&self, force: bool) -> Plan;

    /// `recover rebuild`: re-seeds the secondary from the primary with a fresh bundle; run
    /// with the nodes oriented so that `[primary]` is the primary now.
    fn rebuild_plan(&self) -> Plan;

    /// `recover restore`: a fresh install becomes a primary from a bundle file; the target
    /// is the context's `[secondary]`.
    fn restore_plan(&self, bundle: &std::path::Path, force: bool) -> Plan;

    /// `recover rejoin`: the old primary replicates from the new one.
    fn rejoin_plan(&self) -> Plan;

    /// `switchover`: the plan of a planned role swap.
    fn switchover_plan(&self) -> Plan;

    /// Swaps the roles of `primary` and the other node (see [`crate::plan::Action::Switchover`]);
    /// returns lines for the operator.
    fn switch_roles(
        &self,
        cx: &mut Ctx<'_>,
        primary: NodeName,
        timeout: Duration,
    ) -> anyhow::Result<Vec<String>>;

    /// Waits for the replica's threads, writes a canary on the source and waits for it on
    /// the replica; returns how long it took to arrive.
    fn canary(
        &self,
        source: &mut dyn Host,
        replica: &mut dyn Host,
        timeout: Duration,
    ) -> anyhow::Result<Duration>;

    /// Reads one node for `status`; a node that cannot be read is reported, not an error.
    fn node_report(&self, name: &str, host: &mut dyn Host) -> NodeReport;
}

/// The engine the config names.
pub fn for_config(config: &Config) -> anyhow::Result<&'static dyn Engine> {
    match config.engine {
        config::Engine::Mariadb => Ok(&mariadb::MariaDb),
        config::Engine::Postgresql => Err(Exit::usage(
            "engine = \"postgresql\" is not supported by this version of ha-setup yet; only \"mariadb\" is",
        )
        .into()),
    }
}
