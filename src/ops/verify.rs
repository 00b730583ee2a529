//! `ha-setup verify`: every node's data compared with the primary's (src/verify/ walks the
//! tables, the engine compares each chunk at one consistent point); in a cluster whose
//! nodes all take writes (Galera), with the node the engine names, the one the
//! application writes to. It changes none of the application's data, but it writes in
//! ha-setup's own schema (MariaDB's checksums travel through replication) and holds table
//! locks for a moment at a time (PostgreSQL), so it takes the cluster lock: a switchover or
//! a promotion never runs under it.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use crate::config::{self, Config};
use crate::engine::{self, Engine};
use crate::error::ExitCode;
use crate::journal::{Event, Store, state_dir};
use crate::node::{Hosts, NodeName};
use crate::prompt::NoPrompt;
use crate::topology::{LinkState, Topology};
use crate::ui::Ui;
use crate::verify::report::{self, Header, Other, Outcome, Report, TableResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyFormat {
    Text,
    Json,
}

pub fn verify(config_path: &Path, format: VerifyFormat, ui: &Ui) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let config = super::load_config(config_path)?;
    let engine = engine::for_config(&config)?;
    let mut hosts = Hosts::connect(&config, &NoPrompt);
    let held = super::lock(&mut hosts, "verify", false, ui)?;
    let result = compare(&config, engine, &mut hosts, ui, started);
    super::unlock(&mut hosts, held);
    let report = result?;
    record(&config, &report, ui);
    match format {
        VerifyFormat::Json => ui.json(&report)?,
        VerifyFormat::Text => ui.out(&report.text())?,
    }
    Ok(report.exit_code())
}

/// One line in the event history, so that `history` and `status` show when the nodes were
/// last compared and what was found.
fn record(config: &Config, report: &Report, ui: &Ui) {
    let differing: Vec<String> = report
        .nodes
        .iter()
        .flat_map(|node| {
            node.tables
                .iter()
                .filter(|t| t.result == TableResult::Differs)
                .map(move |t| format!("{}: {}", node.name, t.table))
        })
        .collect();
    let event = Event {
        at: jiff::Timestamp::now(),
        operation: "verify".into(),
        step: "compare".into(),
        host: report
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        result: match report.result {
            Outcome::Identical => "identical",
            Outcome::Differs => "differs",
            Outcome::Incomplete => "incomplete",
        }
        .into(),
        detail: differing.join("; "),
    };
    if let Err(err) = Store::open(state_dir(config)).record(&event) {
        ui.warn(&format!(
            "could not add verify's result to the history: {err:#}"
        ));
    }
}

fn compare(
    config: &Config,
    engine: &dyn Engine,
    hosts: &mut Hosts,
    ui: &Ui,
    started: Instant,
) -> anyhow::Result<Report> {
    let topology = crate::topology::observe(engine, config, hosts);
    // An engine whose nodes all take writes (Galera) says itself which node the others are
    // compared with, and which nodes hold data; it checks their state in its own terms.
    let (primary, candidates, judged) =
        match engine.roles("verify", config, &topology, None, None, false) {
            Some(resolved) => {
                let (roles, notes) = resolved?;
                for note in &notes {
                    ui.note(note);
                }
                (roles.source, roles.targets, true)
            }
            None => {
                let primary = primary(config, &topology)?;
                let others = topology
                    .nodes
                    .iter()
                    .map(|o| o.name.clone())
                    .filter(|n| *n != primary)
                    .collect();
                (primary, others, false)
            }
        };
    let mut others = Vec::new();
    let mut compared: Vec<NodeName> = Vec::new();
    for name in &candidates {
        let observed = topology.get(name);
        let why = if judged {
            unanswered(observed)
        } else {
            // With two writers, the other node's own writes must reach the primary too:
            // its chunks are compared again once they have (src/engine/mariadb/verify.rs).
            let back = (config.topology == config::Topology::PrimaryPrimary)
                .then(|| why_not(engine, &topology, &observed.name, &primary))
                .flatten()
                .map(|why| format!("on {primary}, which its own writes must reach: {why}"));
            why_not(engine, &topology, &primary, &observed.name).or(back)
        };
        let seen = match why {
            Some(why) => Err(why),
            None => {
                compared.push(observed.name.clone());
                Ok(compared.len() - 1)
            }
        };
        others.push(Other {
            name: observed.name.to_string(),
            host: config.node(&observed.name).host.clone(),
            seen,
        });
    }
    let walk = if compared.is_empty() {
        None
    } else {
        let seen = std::iter::once(&primary)
            .chain(&compared)
            .map(|n| topology.get(n))
            .collect();
        let (primary_host, other_hosts) = hosts.one_and_many(&primary, &compared);
        let mut walked = None;
        engine
            .verify(primary_host, other_hosts, seen, &mut |checker| {
                walked = Some(crate::verify::walk(checker, &compared, ui)?);
                Ok(())
            })
            .with_context(|| format!("could not compare the nodes with {primary}"))?;
        walked
    };
    Ok(report::build(
        Header {
            engine: config.engine.name().to_owned(),
            topology: config.topology.name().to_owned(),
            primary: primary.to_string(),
            seconds: started.elapsed().as_secs_f64(),
        },
        &others,
        walk.as_ref(),
    ))
}

/// The node every other node is compared with: the one that takes writes; with two
/// writable nodes (primary-primary), the one the config marks as the primary.
fn primary(config: &Config, topology: &Topology) -> anyhow::Result<NodeName> {
    if config.topology == config::Topology::PrimaryPrimary {
        let primary = config.starting_primary().clone();
        let seen = topology.get(&primary);
        if seen.db.as_ref().is_some_and(|db| db.writable) {
            return Ok(primary);
        }
        anyhow::bail!(
            "cannot verify: {primary}, the config's primary, whose data the other node is compared with, {}{}",
            if seen.answers() {
                "takes no writes"
            } else {
                "does not answer"
            },
            topology.table()
        );
    }
    let problems = topology.problems();
    if !problems.is_empty() {
        anyhow::bail!(
            "cannot verify: the cluster is in none of the shapes ha-setup knows, so it is not clear whose data is right:\n  - {}{}",
            problems.join("\n  - "),
            topology.table()
        );
    }
    match topology.primary() {
        Some(primary) => Ok(primary),
        None => anyhow::bail!(
            "cannot verify: no node takes writes, so none is the primary whose data the others are compared with. \
             `ha-setup status` says why and what to do{}",
            topology.table()
        ),
    }
}

/// Why `name` cannot be compared with the primary, when it cannot: what is compared must
/// reach it through replication from the primary, applied as it arrives.
fn why_not(
    engine: &dyn Engine,
    topology: &Topology,
    primary: &NodeName,
    name: &NodeName,
) -> Option<String> {
    let observed = topology.get(name);
    if let Some(why) = unanswered(observed) {
        return Some(why);
    }
    let Some(up) = observed.upstream() else {
        return Some(format!(
            "does not replicate from {primary} (it replicates from nowhere): set it up with `ha-setup init`, or `ha-setup recover rejoin`"
        ));
    };
    if up.node.as_ref() != Some(primary) {
        return Some(format!(
            "replicates from {}, not from {primary}",
            up.node
                .as_ref()
                .map_or_else(|| format!("{}:{}", up.address, up.port), |n| n.to_string())
        ));
    }
    if up.receiving != LinkState::Running || up.applying != LinkState::Running {
        let error = up.error.clone().unwrap_or_default();
        return Some(format!(
            "replication is not running (receiving: {}, applying: {}){}. Next: {}",
            up.receiving.as_str(),
            up.applying.as_str(),
            if error.is_empty() {
                String::new()
            } else {
                format!(": {error}")
            },
            engine.link_hint(observed, &error)
        ));
    }
    None
}

/// Why a node cannot be asked anything, when it cannot.
fn unanswered(observed: &crate::topology::Observed) -> Option<String> {
    if let Some(why) = &observed.unreachable {
        return Some(format!("cannot be reached from here: {why}"));
    }
    if !observed.answers() {
        return Some(
            observed
                .problem
                .clone()
                .unwrap_or_else(|| "the database does not answer".into()),
        );
    }
    None
}
