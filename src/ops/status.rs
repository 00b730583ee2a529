//! `ha-setup status`: every node read, each replica's link judged, and an end-to-end
//! canary from the primary; as text for people, JSON for scripts (SPEC.md), or one line in
//! the monitoring-plugin format. It takes no lock and writes nothing but the canary.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use std::collections::BTreeMap;

use crate::config::Config;
use crate::engine::{self, Canary, Engine};
use crate::error::{ExitCode, PluginState};
use crate::journal::{Event, Store, state_dir};
use crate::node::{Hosts, NodeName};
use crate::prompt::NoPrompt;
use crate::topology::{LinkState, Observed, Role};
use crate::ui::Ui;

/// Lag beyond which the link is `lagging` (a warning), and beyond which it is critical.
pub const LAG_WARN_SECS: u64 = 60;
pub const LAG_CRIT_SECS: u64 = 300;
pub const CANARY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Text,
    Json,
    Nagios,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub engine: String,
    pub topology: String,
    pub checked_at: Timestamp,
    /// `alive`, `lagging`, `broken`, `down` or `unknown`: the worst of every replica's link.
    pub link: String,
    /// The largest lag of any replica.
    pub lag_seconds: Option<u64>,
    /// The slowest canary of any replica.
    pub canary_ms: Option<u64>,
    pub nodes: Vec<NodeReport>,
    /// Each `[[sync_files]]` path: the same on every node, or where it differs (a
    /// difference is a problem: degraded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::sync::FileReport>,
    /// In a cluster whose members all take writes (Galera): how many members it counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_size: Option<u64>,
    /// What is wrong, each with what to do.
    pub problems: Vec<String>,
    /// The latest events of the history.
    pub recent_events: Vec<Event>,
}

/// One node as `status` reports it (SPEC.md, `status --format json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeReport {
    /// The config's name for the node.
    pub name: String,
    pub host: String,
    pub role: Role,
    pub reachable: bool,
    /// Whether the database answers.
    pub running: bool,
    /// Set up by ha-setup.
    pub member: bool,
    pub version: Option<String>,
    pub read_only: Option<bool>,
    /// Replica only: receiving from its source (MariaDB's IO thread).
    pub io_running: Option<bool>,
    /// Replica only: applying what it received (MariaDB's SQL thread).
    pub sql_running: Option<bool>,
    pub receiving: Option<LinkState>,
    pub applying: Option<LinkState>,
    pub last_error: Option<String>,
    pub lag_seconds: Option<u64>,
    /// Replica only: how long this status's canary took to arrive here.
    pub canary_ms: Option<u64>,
    /// The node's position in the engine's terms (MariaDB: its GTID state).
    pub position: Option<String>,
    /// Where a replica replicates from: a node's name, or the address when it is none.
    pub source: Option<String>,
    /// Why the node could not be read, when it could not.
    pub problem: Option<String>,
    /// Engine facts beside the typed ones.
    pub details: BTreeMap<String, String>,
    /// In a cluster whose members all take writes (Galera): the node's place in it, as
    /// the engine reports it (its state, component, the size it counts, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<serde_json::Value>,
}

pub struct StatusOptions {
    pub format: StatusFormat,
    pub watch: Option<u64>,
    /// Frequent monitoring: read the nodes, write nothing.
    pub canary: bool,
}

pub fn status(config_path: &Path, options: StatusOptions, ui: &Ui) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let engine = engine::for_config(&config)?;
    loop {
        let report = gather(&config, engine, options.canary);
        let code = print(&report, options.format, options.watch.is_some(), ui)?;
        match options.watch {
            None => return Ok(code),
            Some(secs) => std::thread::sleep(Duration::from_secs(secs.max(1))),
        }
    }
}

pub(super) fn node_report(
    engine: &dyn Engine,
    config: &Config,
    observed: &Observed,
    role: Role,
) -> NodeReport {
    let db = observed.db.as_ref();
    let up = observed.upstream();
    NodeReport {
        name: observed.name.to_string(),
        host: config.node(&observed.name).host.clone(),
        role,
        reachable: observed.unreachable.is_none(),
        running: db.is_some(),
        member: observed.member,
        version: db.map(|d| d.version.clone()),
        read_only: db.map(|d| !d.writable),
        io_running: up.map(|u| u.receiving == LinkState::Running),
        sql_running: up.map(|u| u.applying == LinkState::Running),
        receiving: up.map(|u| u.receiving),
        applying: up.map(|u| u.applying),
        last_error: up.and_then(|u| u.error.clone()),
        lag_seconds: up.and_then(|u| u.lag_seconds),
        canary_ms: None,
        position: db.map(|d| d.position.clone()),
        source: up.map(|u| {
            u.node
                .as_ref()
                .map_or_else(|| format!("{}:{}", u.address, u.port), |n| n.to_string())
        }),
        problem: observed.unreachable.clone().or(observed.problem.clone()),
        details: engine
            .details(observed)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        cluster: None,
    }
}

/// Reads every node; never fails: what cannot be read is reported as such. Writes nothing
/// but the canary, and that only on a node that takes writes (the engine checks in the
/// same statement).
pub fn gather(config: &Config, engine: &dyn Engine, canary: bool) -> Report {
    let mut hosts = Hosts::connect(config, &NoPrompt);
    let topology = crate::topology::observe(engine, config, &mut hosts);
    if let Some(membership) = engine.membership(config, &topology) {
        return super::status_members::gather(
            config, engine, &topology, &mut hosts, membership, canary,
        );
    }
    let mut nodes: Vec<NodeReport> = topology
        .nodes
        .iter()
        .map(|o| node_report(engine, config, o, topology.role(&o.name)))
        .collect();
    let mut problems = Vec::new();
    for observed in &topology.nodes {
        if let Some(why) = &observed.unreachable {
            problems.push(format!(
                "{}: cannot be reached from here: {why}",
                observed.name
            ));
        } else if observed.db.is_none() {
            problems.push(format!(
                "{}: {}",
                observed.name,
                observed
                    .problem
                    .clone()
                    .unwrap_or_else(|| "the database is down".into())
            ));
        }
    }
    problems.extend(topology.problems());
    let (files, file_problems) = crate::sync::report(config, &topology, &mut hosts);
    problems.extend(file_problems);
    // Two writers: no primary to find; their own fences and links (status_pp.rs).
    let pair = topology.two_writers();
    let primary = if pair { None } else { topology.primary() };
    if pair {
        problems.extend(super::status_pp::fenced(&topology));
    }
    for observed in &topology.nodes {
        if pair || !observed.fenced() || !observed.member {
            continue;
        }
        let name = &observed.name;
        let followed = !topology.replicas_of(name).is_empty();
        problems.push(match &primary {
            Some(primary) if primary != name => format!(
                "{name}: fenced (read-only) and replicates from nowhere while {primary} takes writes: it was the primary before a promotion or a switchover that did not finish. \
                 Make it {primary}'s replica: ha-setup recover rejoin"
            ),
            _ if followed || topology.provable_primary().as_ref() == Some(name) => format!(
                "{name}: the primary is read-only (fenced, as every node is after a restart), so the application cannot write. \
                 If it is the rightful primary, reopen writes: ha-setup recover unfence"
            ),
            _ => format!(
                "{name}: read-only and replicates from nowhere, and no node is provably the primary. \
                 Reopen writes on the node whose data is right (ha-setup recover unfence), then make the others its replicas (ha-setup recover rejoin)"
            ),
        });
    }

    let replicas: Vec<NodeName> = topology.replicas();
    let mut lag_seconds = None;
    let mut canary_ms: Option<u64> = None;
    let mut states = Vec::new();
    let mut running = Vec::new();
    if pair {
        super::status_pp::missing_links(&topology, &mut problems, &mut states);
    }
    for name in &replicas {
        let up = topology.get(name).upstream().expect("a replica");
        lag_seconds = lag_seconds.max(up.lag_seconds);
        if up.receiving == LinkState::Running && up.applying == LinkState::Running {
            if up.lag_seconds.is_some_and(|lag| lag > LAG_WARN_SECS) {
                problems.push(format!(
                    "{name}: {} s behind {}",
                    up.lag_seconds.unwrap_or_default(),
                    if pair {
                        "the other node"
                    } else {
                        "its primary"
                    }
                ));
                states.push("lagging");
            } else {
                states.push("alive");
            }
            running.push(name.clone());
        } else {
            let error = up.error.clone().unwrap_or_default();
            problems.push(format!(
                "{name}: replication is stopped (receiving: {}, applying: {}): {}. Next: {}",
                up.receiving.as_str(),
                up.applying.as_str(),
                if error.is_empty() {
                    "no error reported"
                } else {
                    &error
                },
                engine.link_hint(topology.get(name), &error)
            ));
            states.push("broken");
        }
    }
    // The canary runs only from the one node that takes writes, to its running replicas.
    if let (true, Some(source)) = (canary, &primary) {
        let targets: Vec<NodeName> = running
            .iter()
            .filter(|n| topology.source_of(n) == Some(source))
            .cloned()
            .collect();
        if !targets.is_empty() {
            let seen = std::iter::once(source)
                .chain(&targets)
                .map(|n| topology.get(n))
                .collect();
            let (source_host, replica_hosts) = hosts.one_and_many(source, &targets);
            match engine.canary(source_host, replica_hosts, seen, CANARY_TIMEOUT) {
                Ok(Canary::Arrived(results)) => {
                    for (name, result) in targets.iter().zip(results) {
                        match result {
                            Ok(took) => {
                                let ms = took.as_millis() as u64;
                                canary_ms = Some(canary_ms.map_or(ms, |c| c.max(ms)));
                                if let Some(node) =
                                    nodes.iter_mut().find(|n| n.name == name.as_str())
                                {
                                    node.canary_ms = Some(ms);
                                }
                            }
                            Err(why) => {
                                problems.push(format!("canary: {why}"));
                                states.push("broken");
                            }
                        }
                    }
                }
                Ok(Canary::Skipped(why)) => problems.push(format!("canary not written: {why}")),
                Err(err) => {
                    problems.push(format!("canary: {err:#}"));
                    states.push("broken");
                }
            }
        }
    }
    if canary && pair {
        let mut found = super::status_pp::canaries(engine, &topology, &mut hosts, &running);
        for (name, ms) in found.arrived.drain(..) {
            canary_ms = Some(canary_ms.map_or(ms, |c| c.max(ms)));
            if let Some(node) = nodes.iter_mut().find(|n| n.name == name.as_str()) {
                node.canary_ms = Some(ms);
            }
        }
        problems.extend(found.problems);
        states.extend(found.states);
    }
    let link = if topology
        .nodes
        .iter()
        .any(|n| n.unreachable.is_some() || n.db.is_none())
    {
        "down"
    } else if replicas.is_empty() {
        if problems.is_empty() {
            problems.push(
                "no node replicates from another: set the cluster up with `ha-setup init`".into(),
            );
        }
        "unknown"
    } else if states.contains(&"broken") {
        "broken"
    } else if states.contains(&"lagging") {
        "lagging"
    } else {
        "alive"
    };
    let recent_events = recent_events(config);
    Report {
        engine: config.engine.name().to_owned(),
        topology: config.topology.name().to_owned(),
        checked_at: Timestamp::now(),
        link: link.to_owned(),
        lag_seconds,
        canary_ms,
        nodes,
        files,
        cluster_size: None,
        problems,
        recent_events,
    }
}

/// The last five events of the history.
pub(super) fn recent_events(config: &Config) -> Vec<Event> {
    Store::open(state_dir(config))
        .events()
        .map(|events| {
            let skip = events.len().saturating_sub(5);
            events.into_iter().skip(skip).collect()
        })
        .unwrap_or_default()
}

/// Prints the report and returns the exit code its format calls for.
pub fn print(
    report: &Report,
    format: StatusFormat,
    watching: bool,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    match format {
        StatusFormat::Json => {
            if watching {
                ui.out(&serde_json::to_string(report)?)?;
            } else {
                ui.json(report)?;
            }
        }
        StatusFormat::Text => ui.out(&text(report))?,
        StatusFormat::Nagios => {
            let (code, line) = nagios(report);
            ui.out(&line)?;
            return Ok(code);
        }
    }
    Ok(if report.link == "alive" && report.problems.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Degraded
    })
}

pub fn text(report: &Report) -> String {
    let mut out =
        if report.cluster_size.is_some() || report.nodes.iter().any(|n| n.cluster.is_some()) {
            super::status_members::table(report)
        } else {
            table(report)
        };
    out.push_str(&rest_text(report));
    out
}

/// The link and one line per node, for a primary and its replicas.
fn table(report: &Report) -> String {
    let mut out = format!(
        "link: {}{}\n",
        report.link,
        match (report.lag_seconds, report.canary_ms) {
            (Some(lag), Some(ms)) => format!(" (lag {lag} s, canary {ms} ms)"),
            (Some(lag), None) => format!(" (lag {lag} s)"),
            (None, Some(ms)) => format!(" (canary {ms} ms)"),
            (None, None) => String::new(),
        }
    );
    out.push_str(&format!(
        "\n{:<10} {:<28} {:<12} {:<9} {:<9} {:<7} {:<7} {}\n",
        "node", "host", "role", "version", "read-only", "io", "sql", "lag"
    ));
    let flag = |v: Option<bool>| match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    for node in &report.nodes {
        out.push_str(&format!(
            "{:<10} {:<28} {:<12} {:<9} {:<9} {:<7} {:<7} {}\n",
            node.name,
            node.host,
            node.role.as_str(),
            node.version.as_deref().unwrap_or("-"),
            flag(node.read_only),
            flag(node.io_running),
            flag(node.sql_running),
            node.lag_seconds.map_or("-".into(), |l| format!("{l} s")),
        ));
    }
    out
}

/// What follows the nodes: the files, the problems, the latest events.
fn rest_text(report: &Report) -> String {
    let mut out = String::new();
    if let Some(first) = report.files.first() {
        out.push_str(&format!("\nfiles (compared with {}):\n", first.source));
        let width = report.files.iter().map(|f| f.path.len()).max().unwrap_or(0);
        for file in &report.files {
            let verdict = if let Some(problem) = &file.problem {
                problem.clone()
            } else if !file.differs_on.is_empty() {
                format!("differs on {}", crate::sync::shown(&file.differences))
            } else if file.same {
                "same on every node".to_owned()
            } else {
                format!("not checked on {}", file.unchecked.join(", "))
            };
            out.push_str(&format!("  {:<width$}  {verdict}\n", file.path));
        }
    }
    if !report.problems.is_empty() {
        out.push_str("\nproblems:\n");
        for problem in &report.problems {
            out.push_str(&format!("  - {problem}\n"));
        }
    }
    if !report.recent_events.is_empty() {
        out.push_str("\nrecent events:\n");
        for event in &report.recent_events {
            out.push_str(&format!(
                "  {} {} {} {}{}\n",
                event.at.strftime("%Y-%m-%d %H:%M:%S"),
                event.operation,
                event.step,
                event.result,
                if event.host.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", event.host)
                }
            ));
        }
    }
    out
}

/// The monitoring-plugin line: `HA-SETUP OK - … | lag=…`, and its exit code (0 OK,
/// 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
pub fn nagios(report: &Report) -> (ExitCode, String) {
    let lag = report.lag_seconds;
    let (state, word) = match report.link.as_str() {
        "alive" if report.problems.is_empty() => (PluginState::Ok, "OK"),
        "alive" => (PluginState::Warning, "WARNING"),
        "lagging" if lag.is_some_and(|l| l > LAG_CRIT_SECS) => (PluginState::Critical, "CRITICAL"),
        "lagging" => (PluginState::Warning, "WARNING"),
        "broken" | "down" => (PluginState::Critical, "CRITICAL"),
        _ => (PluginState::Unknown, "UNKNOWN"),
    };
    let mut summary = format!("link {}", report.link);
    if let Some(lag) = lag {
        summary.push_str(&format!(", lag {lag}s"));
    }
    if let Some(ms) = report.canary_ms {
        summary.push_str(&format!(", canary {ms}ms"));
    }
    if let Some(size) = report.cluster_size {
        summary.push_str(&format!(", {size} members"));
    }
    if let Some(problem) = report.problems.first() {
        summary.push_str(&format!(": {}", problem.lines().next().unwrap_or("")));
    }
    let mut perf = Vec::new();
    if let Some(lag) = lag {
        perf.push(format!("lag={lag}s;{LAG_WARN_SECS};{LAG_CRIT_SECS};0"));
    }
    if let Some(ms) = report.canary_ms {
        perf.push(format!("canary={:.3}s;;;0", ms as f64 / 1000.0));
    }
    if let Some(size) = report.cluster_size {
        perf.push(format!("size={size};;;0"));
    }
    let line = if perf.is_empty() {
        format!("HA-SETUP {word} - {summary}")
    } else {
        format!("HA-SETUP {word} - {summary} | {}", perf.join(" "))
    };
    (ExitCode::Plugin(state), line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(link: &str, lag: Option<u64>, canary: Option<u64>) -> Report {
        Report {
            engine: "mariadb".into(),
            topology: "primary-replica".into(),
            checked_at: Timestamp::UNIX_EPOCH,
            link: link.into(),
            lag_seconds: lag,
            canary_ms: canary,
            nodes: vec![],
            files: vec![],
            cluster_size: None,
            problems: if link == "alive" {
                vec![]
            } else {
                vec!["secondary: replication is stopped".into()]
            },
            recent_events: vec![],
        }
    }

    #[test]
    fn a_file_that_differs_on_a_healthy_link_is_a_warning() {
        let mut report = report("alive", Some(0), Some(5));
        report.problems.push(
            "files: /etc/pi/enckey differs on secondary (mode 0644, not 0600): make it identical with `ha-setup sync`"
                .into(),
        );
        let (code, line) = nagios(&report);
        assert_eq!(code.code(), 1);
        assert!(
            line.starts_with(
                "HA-SETUP WARNING - link alive, lag 0s, canary 5ms: files: /etc/pi/enckey differs on secondary"
            ),
            "{line}"
        );
    }

    #[test]
    fn nagios_lines_and_codes() {
        let (code, line) = nagios(&report("alive", Some(0), Some(12)));
        assert_eq!(code.code(), 0);
        assert_eq!(
            line,
            "HA-SETUP OK - link alive, lag 0s, canary 12ms | lag=0s;60;300;0 canary=0.012s;;;0"
        );
        let (code, line) = nagios(&report("lagging", Some(90), Some(40)));
        assert_eq!(
            (code.code(), line.starts_with("HA-SETUP WARNING")),
            (1, true)
        );
        assert_eq!(nagios(&report("lagging", Some(900), None)).0.code(), 2);
        let (code, line) = nagios(&report("broken", None, None));
        assert_eq!(code.code(), 2);
        assert_eq!(
            line,
            "HA-SETUP CRITICAL - link broken: secondary: replication is stopped"
        );
        assert_eq!(nagios(&report("unknown", None, None)).0.code(), 3);
    }
}
