//! `ha-setup sync` and `plan sync`: every `[[sync_files]]` path made identical on every
//! node from the primary's copy (src/sync/), as one locked, journaled plan. The primary is
//! the one the servers show; a node that cannot be reached is left alone and said so.

use std::path::Path;
use std::time::Instant;

use crate::config::Config;
use crate::engine;
use crate::error::{Exit, ExitCode};
use crate::journal::{Store, state_dir};
use crate::node::{Hosts, NodeName};
use crate::plan::{Ctx, Roles};
use crate::prompt::{NoPrompt, QuestionsGuard};
use crate::runner::{Outcome, Runner, seconds};
use crate::topology::{Topology, and_list};
use crate::ui::Ui;

#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Never ask: a terminal without it is shown the plan and asked before anything runs.
    pub yes: bool,
    pub dry_run: bool,
}

pub fn sync(config_path: &Path, options: SyncOptions, ui: &Ui) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let config = super::load_config(config_path)?;
    let engine = engine::for_config(&config)?;
    if config.sync_files.is_empty() {
        ui.out(&format!(
            "sync: nothing to do: {} lists no [[sync_files]].",
            config_path.display()
        ))?;
        return Ok(ExitCode::Ok);
    }
    let asking = !options.yes && !options.dry_run && ui.is_interactive();
    let mut hosts = Hosts::connect(&config, &NoPrompt);
    let store = Store::open(state_dir(&config));
    let plan = crate::sync::plan();
    let attempt =
        |hosts: &mut Hosts, dry_run: bool| -> anyhow::Result<(Outcome, Roles, Vec<NodeName>)> {
            let topology = crate::topology::observe(engine, &config, hosts);
            let (roles, notes, skipped) = roles(&config, &topology, hosts)?;
            for note in &notes {
                ui.note(note);
            }
            if dry_run {
                ui.out(&format!(
                    "Plan for sync of {} from {}; nothing is changed.",
                    crate::sync::paths(&config).join(", "),
                    roles.source
                ))?;
            }
            let mut cx = Ctx::new(&config, engine, hosts, roles.clone(), ui, dry_run);
            let outcome = Runner { store: &store }.run(&plan, &mut cx)?;
            Ok((outcome, roles, skipped))
        };
    if asking {
        // The plan from the checks, as --dry-run prints it, then one question. The real
        // run locks, reads every node again and decides anew.
        let questions = QuestionsGuard::new();
        let (outcome, _, _) = attempt(&mut hosts, true)?;
        if outcome.failed_checks > 0 {
            return Ok(ExitCode::Failed);
        }
        if outcome.changed.is_empty() {
            ui.out("Nothing to change: every listed path is identical on every node.")?;
            return Ok(ExitCode::Ok);
        }
        if !super::confirm_run(questions, ui)? {
            return Ok(ExitCode::Ok);
        }
    }
    let held = super::lock(&mut hosts, plan.operation, options.dry_run, ui)?;
    let result = attempt(&mut hosts, options.dry_run);
    super::unlock(&mut hosts, held);
    let (outcome, roles, skipped) = result?;
    let source = &roles.source;
    if options.dry_run {
        let (message, code) = if outcome.failed_checks > 0 {
            (
                format!(
                    "{} check(s) failed: sync would copy nothing; fix them first.",
                    outcome.failed_checks
                ),
                ExitCode::Failed,
            )
        } else if outcome.changed.is_empty() {
            (
                "Nothing to change: every listed path is identical on every node.".to_owned(),
                ExitCode::Ok,
            )
        } else {
            (
                "The copies above would be made; nothing was changed.".to_owned(),
                ExitCode::Ok,
            )
        };
        ui.out(&message)?;
        return Ok(code);
    }
    let took = seconds(started.elapsed());
    let nodes = and_list(&roles.targets);
    if outcome.changed.is_empty() {
        ui.out(&format!(
            "sync: nothing to change: every listed path on {nodes} is {source}'s copy already."
        ))?;
    } else {
        ui.out(&format!(
            "sync: done in {took}: every listed path on {nodes} is {source}'s copy now; \
             a copy that differed was kept beside it (PATH{}<time>).",
            crate::sync::KEPT
        ))?;
    }
    if !skipped.is_empty() {
        anyhow::bail!(
            "{} could not be reached, so {} copies were neither checked nor changed: run `ha-setup sync` again once {} back",
            and_list(&skipped),
            if skipped.len() == 1 { "its" } else { "their" },
            if skipped.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        );
    }
    Ok(ExitCode::Ok)
}

/// The source (the primary, refused when nothing tells which node it is or it cannot be
/// reached), the reachable nodes to make identical, notes, and the nodes left out.
fn roles(
    config: &Config,
    topology: &Topology,
    hosts: &Hosts,
) -> anyhow::Result<(Roles, Vec<String>, Vec<NodeName>)> {
    let Some((source, note)) = crate::sync::source(config, topology) else {
        return Err(Exit::refused(format!(
            "refusing to sync: no node is provably the primary, so ha-setup cannot tell whose copies are the right ones. \
             Reopen writes on the rightful primary (`ha-setup recover unfence`), then run sync again{}",
            topology.table()
        ))
        .into());
    };
    if let Some(err) = hosts.unreachable(&source) {
        return Err(Exit::refused(format!(
            "refusing to sync: the primary {source}, whose copies every node gets, cannot be reached from here: {err}"
        ))
        .into());
    }
    let mut notes: Vec<String> = note.into_iter().collect();
    let (mut targets, mut skipped) = (Vec::new(), Vec::new());
    for name in config.nodes.keys().filter(|n| **n != source) {
        if hosts.unreachable(name).is_some() {
            notes.push(format!(
                "{name} cannot be reached from here: its copies are neither checked nor changed"
            ));
            skipped.push(name.clone());
        } else {
            targets.push(name.clone());
        }
    }
    Ok((Roles::new(source, targets), notes, skipped))
}
