//! The database engines behind one trait: what `init` does and what `status` reads differ
//! per engine; the plan, runner, hosts and output do not.

pub mod mariadb;

use std::time::Duration;

use serde::Serialize;

use crate::config::{self, Config};
use crate::error::Exit;
use crate::host::Host;
use crate::plan::{Ctx, Plan};

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

    /// Writes a canary on the primary and waits for it on the secondary.
    fn canary(&self, cx: &mut Ctx<'_>, timeout: Duration) -> anyhow::Result<Duration>;

    /// Reads one node for `status`; a node that cannot be read is reported, not an error.
    fn node_report(&self, name: &str, host: &mut dyn Host) -> NodeReport;

    /// A canary between two nodes, for `status`.
    fn status_canary(
        &self,
        primary: &mut dyn Host,
        secondary: &mut dyn Host,
        timeout: Duration,
    ) -> anyhow::Result<Duration>;
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
