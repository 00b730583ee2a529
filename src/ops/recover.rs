//! `ha-setup recover promote | unfence | rejoin | rebuild | restore` and `switchover`:
//! every node that can be reached is read, the roles are resolved from what the servers
//! show (an unreachable node is a fact the resolution works with, not an error), the
//! cluster is locked, and the engine's plan runs. On a terminal without `--yes`, the plan
//! is shown and confirmed first.

use std::path::Path;
use std::time::Instant;

use crate::engine;
use crate::error::{Exit, ExitCode};
use crate::journal::{Store, state_dir};
use crate::node::{Hosts, NodeName};
use crate::plan::Ctx;
use crate::prompt::{NoPrompt, QuestionsGuard};
use crate::runner::{Runner, seconds};
use crate::ui::Ui;

use super::resolve;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    Promote,
    Unfence,
    /// `rewind`: PostgreSQL may discard an old primary's transactions the new one never got.
    Rejoin {
        rewind: bool,
    },
    /// Re-seed `node` (or the only node that is not the primary) from `from` (or the
    /// primary now).
    Rebuild {
        node: Option<String>,
        from: Option<String>,
    },
    /// A bundle file onto `target` (a node of the config), which becomes a primary.
    Restore {
        bundle: std::path::PathBuf,
        target: String,
    },
    /// Not a recovery but the same kind of run: `ha-setup switchover [--to NODE]`.
    Switchover {
        to: Option<String>,
    },
    /// A cluster whose every node stopped starts again from the node that holds the most
    /// (Galera).
    Bootstrap,
}

/// The operation's name in plans, the journal and the lock.
fn operation_name(recovery: &Recovery) -> &'static str {
    match recovery {
        Recovery::Promote => "recover-promote",
        Recovery::Unfence => "recover-unfence",
        Recovery::Rejoin { .. } => "recover-rejoin",
        Recovery::Rebuild { .. } => "recover-rebuild",
        Recovery::Restore { .. } => "recover-restore",
        Recovery::Switchover { .. } => "switchover",
        Recovery::Bootstrap => "recover-bootstrap",
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RecoverOptions {
    pub force: bool,
    pub dry_run: bool,
    /// Never ask: a terminal without it is shown the plan and asked before anything runs.
    pub yes: bool,
}

pub fn recover(
    config_path: &Path,
    recovery: Recovery,
    options: RecoverOptions,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let config = super::load_config(config_path)?;
    let engine = engine::for_config(&config)?;
    let operation = operation_name(&recovery);
    let pair = config.topology == crate::config::Topology::PrimaryPrimary;
    if let Some(why) = crate::topology::two_writers_refusal(operation).filter(|_| pair) {
        return Err(Exit::usage(why).into());
    }
    // Names given as flags are checked before any host is tried.
    let named = |given: &Option<String>, flag: &str| -> anyhow::Result<Option<NodeName>> {
        given
            .as_deref()
            .map(|name| config.named(name, flag))
            .transpose()
            .map_err(Into::into)
    };
    let (to, rebuild_node, rebuild_from, restore_target) = match &recovery {
        Recovery::Switchover { to } => (named(to, "--to")?, None, None, None),
        Recovery::Rebuild { node, from } => (
            None,
            named(node, "recover rebuild NODE")?,
            named(from, "--from")?,
            None,
        ),
        Recovery::Restore { bundle, target } => {
            if !bundle.is_file() {
                return Err(Exit::usage(format!(
                    "no bundle file at {}: make one with `ha-setup bundle create --out FILE`",
                    bundle.display()
                ))
                .into());
            }
            (None, None, None, Some(config.named(target, "--target")?))
        }
        _ => (None, None, None, None),
    };
    // Recovery runs unattended at 3 a.m. as often as not: it asks nothing of SSH, and
    // asks "run this plan?" only of a person at a terminal who did not say --yes.
    let asking = !options.yes && !options.dry_run && ui.is_interactive();
    let mut hosts = Hosts::connect(&config, &NoPrompt);
    let store = Store::open(state_dir(&config));
    let attempt = |hosts: &mut Hosts,
                   dry_run: bool|
     -> anyhow::Result<(crate::runner::Outcome, crate::plan::Roles)> {
        let topology = crate::topology::observe(engine, &config, hosts);
        let plan = match &recovery {
            Recovery::Promote => engine.promote_plan(),
            Recovery::Unfence => engine.unfence_plan(),
            Recovery::Rejoin { rewind } => engine.rejoin_plan(*rewind),
            Recovery::Rebuild { .. } => engine.rebuild_plan(),
            Recovery::Restore { bundle, .. } => engine.restore_plan(bundle, options.force),
            Recovery::Switchover { .. } => engine.switchover_plan(),
            Recovery::Bootstrap => engine.bootstrap_plan(options.force),
        };
        // An engine that decides roles itself (Galera) does; else the primary's.
        let named_node = rebuild_node.as_ref().or(restore_target.as_ref());
        let roles = match engine.roles(
            operation,
            &config,
            &topology,
            named_node,
            rebuild_from.as_ref(),
            options.force,
        ) {
            Some(resolved) => {
                let (roles, notes) = resolved?;
                for note in &notes {
                    ui.note(note);
                }
                roles
            }
            None => match &recovery {
                Recovery::Promote => resolve::promote(engine, &topology, options.force)?,
                Recovery::Unfence => resolve::unfence(&topology, options.force)?,
                Recovery::Rejoin { .. } => resolve::rejoin(&topology)?,
                Recovery::Rebuild { .. } => resolve::rebuild(
                    &config,
                    &topology,
                    rebuild_node.clone(),
                    rebuild_from.clone(),
                )?,
                Recovery::Restore { .. } => {
                    let target = restore_target.clone().expect("resolved above");
                    if hosts.unreachable(&target).is_some() {
                        return Err(Exit::refused(format!(
                            "cannot restore onto {target}: it cannot be reached{}",
                            topology.table()
                        ))
                        .into());
                    }
                    crate::plan::Roles::new(target.clone(), vec![target])
                }
                Recovery::Switchover { .. } => resolve::switchover(&topology, to.clone())?,
                // Only an engine with a cluster of writers has a bootstrap; its plan says so.
                Recovery::Bootstrap => {
                    crate::plan::Roles::new(config.starting_primary().clone(), Vec::new())
                }
            },
        };
        if dry_run {
            ui.out(&format!("Plan for {}; nothing is changed.", plan.operation))?;
        }
        let mut cx = Ctx::new(&config, engine, hosts, roles, ui, dry_run);
        let outcome = Runner { store: &store }.run(&plan, &mut cx)?;
        // A step may settle who is who only once it has read the nodes (bootstrap's
        // positions): the message names the roles as the run ended.
        Ok((outcome, cx.roles))
    };
    if asking {
        // The plan from the checks, as --dry-run prints it, then one question. Nothing is
        // locked meanwhile: the real run locks, reads the servers again and decides anew.
        let questions = QuestionsGuard::new();
        attempt(&mut hosts, true)?;
        if !super::confirm_run(questions, ui)? {
            return Ok(ExitCode::Ok);
        }
    }
    // The lock comes before the servers are read, so what this run decides from is not
    // changed under it by another run.
    let held = super::lock(&mut hosts, operation, options.dry_run, ui)?;
    let result = attempt(&mut hosts, options.dry_run);
    super::unlock(&mut hosts, held);
    let (outcome, roles) = result?;
    let took = seconds(started.elapsed());
    let source = &roles.source;
    let both = crate::topology::and_list(
        &std::iter::once(source.clone())
            .chain(roles.targets.iter().cloned())
            .collect::<Vec<_>>(),
    );
    let galera = config.topology == crate::config::Topology::Galera;
    let message = match (recovery, options.dry_run) {
        (_, true) => format!("{} step(s) would run.", outcome.changed.len()),
        (Recovery::Bootstrap, false) => format!(
            "recover bootstrap: done in {took}: the cluster runs again from {source}'s data (the highest position), \
             and every node is Synced. Check with `ha-setup status`."
        ),
        (Recovery::Rejoin { .. }, false) if galera => {
            format!("recover rejoin: done in {took}: every node is back in the cluster and Synced.")
        }
        (Recovery::Rebuild { .. }, false) if galera => format!(
            "recover rebuild: done in {took}: {} got a fresh copy of the cluster's data by a state transfer from {source} \
             (its previous data was moved aside) and is Synced.",
            crate::topology::and_list(&roles.targets)
        ),
        (Recovery::Unfence, false) if pair => format!(
            "recover unfence: done in {took}: {both} take{} writes.",
            if roles.targets.is_empty() { "s" } else { "" }
        ),
        (Recovery::Rejoin { .. }, false) if pair => format!(
            "recover rejoin: done in {took}: {both} replicate from each other, both take writes, and both links are alive."
        ),
        (Recovery::Rebuild { .. }, false) if pair => format!(
            "recover rebuild: done in {took}: {} holds a fresh copy of {source}'s data (its previous data was moved aside); \
             {both} replicate from each other and both take writes.",
            crate::topology::and_list(&roles.targets)
        ),
        (Recovery::Promote, false) => format!(
            "recover promote: done in {took}: {source} is the primary and takes writes. Point the application at it; \
             when the old primary is back, make it a replica with `ha-setup recover rejoin`."
        ),
        (Recovery::Unfence, false) => {
            format!("recover unfence: done in {took}: {source} takes writes.")
        }
        (Recovery::Switchover { .. }, false) => format!(
            "switchover: done in {took}: {source} is the primary, no transaction lost, and the links are alive. \
             Point the application at it."
        ),
        (Recovery::Restore { bundle, .. }, false) => format!(
            "recover restore: done in {took}: {source} runs as a primary on the data of {}, and takes writes. \
             Give it replicas with `ha-setup recover rebuild NODE` once the other nodes are ready.",
            bundle.display()
        ),
        (Recovery::Rebuild { .. }, false) => format!(
            "recover rebuild: done in {took}: {} holds a fresh copy of {source}'s data and replicates from it; its previous data was moved aside.",
            crate::topology::and_list(&roles.targets)
        ),
        (Recovery::Rejoin { .. }, false) => format!(
            "recover rejoin: done in {took}: every other node replicates from {source}, and the links are alive."
        ),
    };
    ui.out(&message)?;
    Ok(ExitCode::Ok)
}
