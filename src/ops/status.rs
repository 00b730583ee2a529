//! `ha-setup status`: both nodes read, the link judged, and an end-to-end canary; as text
//! for people, JSON for scripts (SPEC.md), or one line in the monitoring-plugin format.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::engine::{self, Engine, NodeReport};
use crate::error::{ExitCode, PluginState};
use crate::host::Host;
use crate::journal::{Event, Store, state_dir};
use crate::nodes;
use crate::prompt::NoPrompt;
use crate::ui::Ui;

/// Lag beyond which the link is `lagging` (a warning), and beyond which it is critical.
pub const LAG_WARN_SECS: u64 = 60;
pub const LAG_CRIT_SECS: u64 = 300;
const CANARY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Text,
    Json,
    Nagios,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub engine: String,
    pub checked_at: Timestamp,
    /// `alive`, `lagging`, `broken`, `down` or `unknown`.
    pub link: String,
    pub lag_seconds: Option<u64>,
    pub canary_ms: Option<u64>,
    pub nodes: Vec<NodeReport>,
    /// What is wrong, each with what to do.
    pub problems: Vec<String>,
    /// The latest events of the history.
    pub recent_events: Vec<Event>,
}

pub fn status(
    config_path: &Path,
    format: StatusFormat,
    watch: Option<u64>,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let engine = engine::for_config(&config)?;
    loop {
        let report = gather(&config, engine);
        let code = print(&report, format, watch.is_some(), ui)?;
        match watch {
            None => return Ok(code),
            Some(secs) => std::thread::sleep(Duration::from_secs(secs.max(1))),
        }
    }
}

/// Reads both nodes; never fails: what cannot be read is reported as such.
pub fn gather(config: &crate::config::Config, engine: &dyn Engine) -> Report {
    let (primary, secondary) = nodes::connect_both(config, &NoPrompt);
    let mut problems = Vec::new();
    let mut read = |name: &str, host: &str, connected: Result<Box<dyn Host>, _>| match connected {
        Ok(mut handle) => {
            let report = engine.node_report(name, handle.as_mut());
            (Some(handle), report)
        }
        Err(err) => {
            let err: crate::host::HostError = err;
            problems.push(format!("{name}: {err}"));
            (
                None,
                NodeReport {
                    name: name.to_owned(),
                    host: host.to_owned(),
                    role: "unreachable".into(),
                    problem: Some(err.to_string()),
                    ..NodeReport::default()
                },
            )
        }
    };
    let (mut primary_host, primary_report) = read("primary", &config.primary.host, primary);
    let (mut secondary_host, secondary_report) =
        read("secondary", &config.secondary.host, secondary);
    let mut nodes = vec![primary_report, secondary_report];
    for node in &nodes {
        if node.reachable && !node.running {
            problems.push(format!(
                "{}: {}",
                node.name,
                node.problem
                    .clone()
                    .unwrap_or_else(|| "the database is down".into())
            ));
        }
    }

    let writable: Vec<String> = nodes
        .iter()
        .filter(|n| n.role == "primary" && n.read_only == Some(false))
        .map(|n| n.name.clone())
        .collect();
    for node in &nodes {
        if node.role == "primary" && node.read_only == Some(true) {
            problems.push(match writable.first() {
                Some(other) => format!(
                    "{}: fenced (read-only) while the {other} takes writes: it was the primary before a promotion. \
                     Make it the {other}'s replica: ha-setup recover rejoin",
                    node.name
                ),
                None => format!(
                    "{}: the primary is read-only (fenced, as every node is after a restart), so the application cannot write. \
                     If it is the rightful primary, reopen writes: ha-setup recover unfence",
                    node.name
                ),
            });
        }
    }
    if writable.len() > 1 {
        problems.push(
            "both nodes take writes (split brain): fence one now (SET GLOBAL read_only = ON), then rebuild it".into(),
        );
    }
    let replica_index = nodes.iter().position(|n| n.role == "replica");
    let mut lag_seconds = None;
    let mut canary_ms = None;
    let link = if nodes.iter().any(|n| !n.reachable || !n.running) {
        "down"
    } else if let Some(index) = replica_index {
        let replica = &nodes[index];
        lag_seconds = replica.lag_seconds;
        if replica.io_running == Some(true) && replica.sql_running == Some(true) {
            let (source, target) = if index == 1 {
                (&mut primary_host, &mut secondary_host)
            } else {
                (&mut secondary_host, &mut primary_host)
            };
            let (Some(source), Some(target)) = (source.as_mut(), target.as_mut()) else {
                unreachable!("both nodes answered")
            };
            match engine.canary(source.as_mut(), target.as_mut(), CANARY_TIMEOUT) {
                Ok(took) => {
                    canary_ms = Some(took.as_millis() as u64);
                    if lag_seconds.is_some_and(|lag| lag > LAG_WARN_SECS) {
                        problems.push(format!(
                            "{}: {} s behind its primary",
                            replica.name,
                            lag_seconds.unwrap_or_default()
                        ));
                        "lagging"
                    } else {
                        "alive"
                    }
                }
                Err(err) => {
                    problems.push(format!("canary: {err:#}"));
                    "broken"
                }
            }
        } else {
            let error = replica
                .last_error
                .clone()
                .unwrap_or_else(|| "no error reported".into());
            problems.push(format!(
                "{}: replication is stopped (IO thread {}, SQL thread {}): {error}. Next: `ha-setup init` restarts it if its settings are right; otherwise see `ha-setup status --format json` and the MariaDB error log",
                replica.name,
                yes_no(replica.io_running),
                yes_no(replica.sql_running)
            ));
            "broken"
        }
    } else {
        if problems.is_empty() {
            problems.push(
                "neither node replicates from the other: set the pair up with `ha-setup init`"
                    .into(),
            );
        }
        "unknown"
    };
    for node in &mut nodes {
        if node.role == "unknown" && node.reachable && node.running {
            node.role = "unknown".into();
        }
    }
    let recent_events = Store::open(state_dir(config))
        .events()
        .map(|events| {
            let skip = events.len().saturating_sub(5);
            events.into_iter().skip(skip).collect()
        })
        .unwrap_or_default();
    Report {
        engine: config.engine.name().to_owned(),
        checked_at: Timestamp::now(),
        link: link.to_owned(),
        lag_seconds,
        canary_ms,
        nodes,
        problems,
        recent_events,
    }
}

fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "running",
        Some(false) => "stopped",
        None => "unknown",
    }
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
            node.role,
            node.version.as_deref().unwrap_or("-"),
            flag(node.read_only),
            flag(node.io_running),
            flag(node.sql_running),
            node.lag_seconds.map_or("-".into(), |l| format!("{l} s")),
        ));
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
            checked_at: Timestamp::UNIX_EPOCH,
            link: link.into(),
            lag_seconds: lag,
            canary_ms: canary,
            nodes: vec![],
            problems: if link == "alive" {
                vec![]
            } else {
                vec!["secondary: replication is stopped".into()]
            },
            recent_events: vec![],
        }
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
