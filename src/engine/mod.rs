//! The database engines behind one trait: how a node is read, what each operation's steps
//! do and how positions compare differ per engine; the topology, plans, runner, hosts and
//! output do not. Nothing outside an engine's folder names its concepts.

pub mod mariadb;
pub mod postgresql;

use std::cmp::Ordering;
use std::os::unix::fs::DirBuilderExt;
use std::time::Duration;

use anyhow::Context;

use crate::config::{self, Config};
use crate::error::Exit;
use crate::host::Host;
use crate::node::NodeName;
use crate::plan::Plan;
use crate::topology::{Observed, Topology};

/// What an end-to-end canary found.
#[derive(Debug)]
pub enum Canary {
    /// Nothing was written: the source does not take writes (fenced, or not the primary),
    /// and a write there would be a transaction its replicas never asked for.
    Skipped(String),
    /// Per replica, in the order given: how long the canary took to arrive, or why it did not.
    Arrived(Vec<Result<Duration, String>>),
}

/// The watch for a canary on a replica, as root: `query` (a client command printing the
/// canary's delay once its row is there, nothing before) run every 10 ms for at most
/// `timeout`; exit 3 when nothing came.
pub fn canary_watch(timeout: Duration, query: &[&str]) -> crate::host::Cmd {
    let secs = timeout.as_secs().max(1).to_string();
    let mut args = vec![secs.as_str()];
    args.extend_from_slice(query);
    crate::host::Cmd::script(include_str!("../scripts/watch.sh"), &args).as_root()
}

pub trait Engine: Sync {
    /// The name the config and the bundle manifest use (`engine = "mariadb"`).
    fn name(&self) -> &'static str;

    /// The replication start position a backup directory records, as the bundle manifest
    /// keeps it (run on a host by `bundle pack --engine NAME`).
    fn backup_position(&self, dir: &std::path::Path) -> anyhow::Result<crate::bundle::Position>;

    /// Runs on the source host (the hidden `bundle stream`): a hot backup of the server there,
    /// written to `out` as a bundle while the backup tool produces it, its start position in
    /// the manifest. `work` is an empty directory for the tool's own temporary files.
    fn stream_backup(
        &self,
        source: crate::bundle::Source,
        work: &std::path::Path,
        out: &mut dyn std::io::Write,
        compress: crate::bundle::Compress,
        progress: &mut dyn FnMut(u64),
    ) -> anyhow::Result<crate::bundle::Manifest>;

    /// Reads one node in one round trip; a node that cannot be read is described, not an
    /// error.
    fn observe(&self, host: &mut dyn Host, name: &NodeName, config: &Config) -> Observed;

    /// Orders two nodes by how much of the cluster's history they hold: `Greater` when `a`
    /// has all that `b` has and more; None when each has something the other lacks.
    fn compare(&self, a: &Observed, b: &Observed) -> Option<Ordering>;

    /// Engine facts for status's JSON, beside the typed ones (a GTID state, a server id).
    fn details(&self, node: &Observed) -> Vec<(&'static str, String)>;

    /// What to do about `error` on `node`'s replication link, in the engine's terms.
    fn link_hint(&self, node: &Observed, error: &str) -> String;

    /// This engine's variant for two writable nodes that replicate from each other
    /// (`topology = "primary-primary"`), if it has one.
    fn two_writers(&self) -> Option<&'static dyn Engine> {
        None
    }

    /// This engine's variant for a cluster of nodes that all take writes and agree among
    /// themselves (`topology = "galera"`), if it has one.
    fn galera(&self) -> Option<&'static dyn Engine> {
        None
    }

    /// `recover bootstrap`: a cluster whose every node stopped is started again from the
    /// node that holds the most. `force`: go ahead though a node that cannot be read might
    /// hold more.
    fn bootstrap_plan(&self, _force: bool) -> Plan {
        Plan::refused(
            "recover-bootstrap",
            "recover bootstrap is for topology = \"galera\": a primary and its replicas never need one \
             (after losing the primary, `ha-setup recover promote`)"
                .into(),
        )
    }

    /// Who is who for `operation` (`init`, `recover-bootstrap`, …) when the engine decides
    /// it from what the nodes showed (Galera: none is a primary); None: the primary and
    /// replicas of ops/resolve.rs. `node`: the node a command names; `from`: the node it
    /// names to copy from (`recover rebuild --from`).
    fn roles(
        &self,
        _operation: &str,
        _config: &Config,
        _topology: &Topology,
        _node: Option<&NodeName>,
        _from: Option<&NodeName>,
        _force: bool,
    ) -> Option<anyhow::Result<(crate::plan::Roles, Vec<String>)>> {
        None
    }

    /// For a cluster whose members all take writes (Galera): how it stands, judged by the
    /// engine from what each node showed. None: the engine keeps one primary and replicas.
    fn membership(&self, _config: &Config, _topology: &Topology) -> Option<Membership> {
        None
    }

    /// The steps of `init`: the source (the primary now) seeds and links every target.
    fn init_plan(&self) -> Plan;

    /// `recover promote`: the most advanced replica becomes the primary, the others follow it.
    fn promote_plan(&self) -> Plan;

    /// `recover unfence`: reopen writes on the primary once no other node is primary.
    fn unfence_plan(&self) -> Plan;

    /// `recover rebuild`: re-seeds the targets from the source with a fresh bundle.
    fn rebuild_plan(&self) -> Plan;

    /// `recover restore`: the source (a fresh install) becomes a primary from a bundle file.
    fn restore_plan(&self, bundle: &std::path::Path, force: bool) -> Plan;

    /// `recover rejoin`: old primaries replicate from the primary now. `rewind`: the
    /// operator consents to discarding what an old primary holds that the primary never
    /// got, where the engine can rewind (PostgreSQL); an engine that cannot refuses it.
    fn rejoin_plan(&self, rewind: bool) -> Plan;

    /// `switchover`: the roles of the primary and one replica swap, losing nothing.
    fn switchover_plan(&self) -> Plan;

    /// `bundle create`: a snapshot of `host` (the primary now) streamed as a bundle into
    /// `out`; nothing of it is left on the host.
    fn bundle_to(
        &self,
        host: &mut dyn Host,
        name: &NodeName,
        node: &crate::config::Node,
        out: &mut (dyn std::io::Write + Send),
        compress: crate::bundle::Compress,
        ui: &crate::ui::Ui,
    ) -> anyhow::Result<()>;

    /// Writes a canary on `source` (only while it takes writes) and waits for it on each
    /// replica, watching all at once. `seen` is what was read of the source, then of each
    /// replica, in the same order.
    fn canary(
        &self,
        source: &mut dyn Host,
        replicas: Vec<&mut dyn Host>,
        seen: Vec<&Observed>,
        timeout: Duration,
    ) -> anyhow::Result<Canary>;

    /// `verify`: compares the application's tables on `primary` with each of `others`
    /// (`seen`: what was read of the primary, then of each other node, in that order). The
    /// engine opens what it needs on the hosts, hands `drive` its checker (the core's walk
    /// through the tables, src/verify/), and closes everything once `drive` returns.
    fn verify(
        &self,
        primary: &mut dyn Host,
        others: Vec<&mut dyn Host>,
        seen: Vec<&Observed>,
        drive: &mut dyn FnMut(&mut dyn crate::verify::Checker) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;
}

/// How a cluster whose members all take writes stands (`status`).
#[derive(Debug, Clone)]
pub struct Membership {
    /// `alive` (every member in, the cluster the size it should be), `lagging` (a member
    /// serves a state transfer or is desynced: a warning), `broken` (a member outside the
    /// primary component, the wrong size, two histories: critical) or `down` (a member is
    /// not running or not reachable: critical).
    pub link: &'static str,
    /// What is wrong, each with what to do.
    pub problems: Vec<String>,
    /// The members the cluster counts now, as its primary component reports it.
    pub size: Option<u64>,
    /// Per node, the engine's facts for `status --format json` (`null` for a node with none).
    pub nodes: Vec<(NodeName, serde_json::Value)>,
    /// Where the canary is written, and where it is read.
    pub canary: Option<(NodeName, Vec<NodeName>)>,
}

/// Every engine this build has: the one place an engine is listed.
const ENGINES: &[&dyn Engine] = &[&mariadb::MariaDb, &postgresql::PostgreSql];

/// The engine of that name, if this build has it.
pub fn named(name: &str) -> Option<&'static dyn Engine> {
    ENGINES.iter().copied().find(|engine| engine.name() == name)
}

/// The replication start position a backup directory records (`bundle pack --engine NAME`
/// on a host); an engine this build lacks records none.
pub fn backup_position(
    engine: &str,
    dir: &std::path::Path,
) -> anyhow::Result<crate::bundle::Position> {
    match named(engine) {
        Some(engine) => engine.backup_position(dir),
        None => Ok(crate::bundle::Position::default()),
    }
}

/// `bundle stream` on a host: `work` is made empty (a killed run may have left it) and
/// removed again, whatever happens.
pub fn stream_backup(
    source: crate::bundle::Source,
    work: &std::path::Path,
    out: &mut dyn std::io::Write,
    compress: crate::bundle::Compress,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<crate::bundle::Manifest> {
    let Some(engine) = named(&source.engine) else {
        anyhow::bail!(
            "this ha-setup cannot make a backup of engine `{}`",
            source.engine
        );
    };
    clear(work)?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(work)
        .with_context(|| format!("cannot create {}", work.display()))?;
    let streamed = engine.stream_backup(source, work, out, compress, progress);
    let cleared = clear(work);
    let manifest = streamed?;
    cleared?;
    Ok(manifest)
}

fn clear(dir: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("cannot remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// The engine the config names, for the topology it names.
pub fn for_config(config: &Config) -> anyhow::Result<&'static dyn Engine> {
    let Some(engine) = named(config.engine.name()) else {
        return Err(Exit::usage(format!(
            "engine = \"{}\" is not supported by this version of ha-setup yet; it supports {}",
            config.engine.name(),
            ENGINES
                .iter()
                .map(|e| format!("\"{}\"", e.name()))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    };
    match config.topology {
        config::Topology::PrimaryReplica => Ok(engine),
        config::Topology::PrimaryPrimary => engine.two_writers().ok_or_else(|| {
            Exit::usage(format!(
                "topology = \"primary-primary\" needs engine = \"mariadb\": engine = \"{}\" has no built-in \
                 replication between two writable servers",
                engine.name()
            ))
            .into()
        }),
        config::Topology::Galera => engine.galera().ok_or_else(|| {
            Exit::usage(format!(
                "topology = \"galera\" needs engine = \"mariadb\": engine = \"{}\" has no Galera",
                engine.name()
            ))
            .into()
        }),
    }
}
