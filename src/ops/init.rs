//! `ha-setup init` and `ha-setup plan init`: connect to both nodes, then run (or show) the
//! init plan of the config's engine.

use std::path::Path;

use crate::config::Config;
use crate::engine;
use crate::error::{Exit, ExitCode};
use crate::journal::{Store, state_dir};
use crate::node::Hosts;
use crate::plan::{Ctx, Roles};
use crate::prompt::{NoPrompt, Prompter, QuestionsGuard, Terminal};
use crate::runner::{Outcome, Runner};
use crate::ui::Ui;
use crate::wizard::{self, Given};

use super::resolve;

/// What init was asked to do, free of clap.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub yes: bool,
    pub dry_run: bool,
    /// Without a config file, ask for one (the wizard); `plan` never does.
    pub wizard: bool,
    /// Answers given as flags, for a run without a config file.
    pub given: Given,
}

pub fn init(config_path: &Path, options: InitOptions, ui: &Ui) -> anyhow::Result<ExitCode> {
    // Precedence (STYLE.md 4): flags and the config file first, then --yes's defaults,
    // then a question; without a terminal nothing is asked.
    let asking = !options.yes && ui.is_interactive();
    let prompter: &dyn Prompter = if asking { &Terminal } else { &NoPrompt };
    let questions = asking.then(QuestionsGuard::new);
    let config = if options.wizard && !config_path.exists() {
        let answers = wizard::ask(&options.given, prompter, asking, ui)?;
        ui.note(&format!(
            "\nThe config:\n\n  {}\n",
            answers.text.trim_end().replace('\n', "\n  ")
        ));
        if options.dry_run {
            ui.note(&format!(
                "(--dry-run: {} is not written)",
                config_path.display()
            ));
        } else if wizard::write(config_path, &answers.text, prompter)? {
            ui.note(&format!(
                "Wrote {} (0600). {}",
                config_path.display(),
                wizard::config_path_note(config_path)
            ));
        } else {
            ui.note(&format!(
                "Kept {}; nothing was written or run.",
                config_path.display()
            ));
            return Ok(ExitCode::Ok);
        }
        answers.config
    } else {
        if options.given.primary.is_some() || options.given.secondary.is_some() {
            return Err(Exit::usage(format!(
                "--primary and --secondary make a new config, and {} exists already: edit it, or name a new file with -c FILE",
                config_path.display()
            ))
            .into());
        }
        super::load_config(config_path)?
    };
    let engine = engine::for_config(&config)?;
    let mut hosts = Hosts::connect(&config, prompter).require_all("preflight")?;
    let store = Store::open(state_dir(&config));
    let mut plan = engine.init_plan();
    crate::sync::add_to_init(&mut plan);
    let runner = Runner { store: &store };
    // On a terminal, the plan is shown and confirmed before anything changes.
    let confirm = asking && !options.dry_run;
    if options.dry_run || confirm {
        let topology = crate::topology::observe(engine, &config, &mut hosts);
        let (roles, notes) = roles(engine, &config, &topology)?;
        for note in &notes {
            ui.note(note);
        }
        let mut cx = Ctx::new(&config, engine, &mut hosts, roles, ui, true);
        let code = dry_run(&runner, &plan, &mut cx, ui)?;
        if !confirm || code != ExitCode::Ok {
            return Ok(code);
        }
        let go = prompter
            .confirm("Run this plan now?", true)
            .map_err(|_| Exit {
                code: ExitCode::Failed,
                message: format!(
                    "interrupted: nothing on the hosts changed; the config is in {}",
                    config_path.display()
                ),
            })?;
        if go != Some(true) {
            ui.note(&format!(
                "Nothing was run. When ready: `ha-setup init -c {}`.",
                config_path.display()
            ));
            return Ok(ExitCode::Ok);
        }
    }
    drop(questions);
    let held = super::lock(&mut hosts, plan.operation, false, ui)?;
    let mut run = || -> anyhow::Result<(Outcome, Roles)> {
        // Read again under the lock: the run acts on what the servers show now.
        let topology = crate::topology::observe(engine, &config, &mut hosts);
        let (roles, notes) = roles(engine, &config, &topology)?;
        if !confirm {
            for note in &notes {
                ui.note(note);
            }
        }
        let mut cx = Ctx::new(&config, engine, &mut hosts, roles.clone(), ui, false);
        Ok((runner.run(&plan, &mut cx)?, roles))
    };
    let result = run();
    super::unlock(&mut hosts, held);
    let (outcome, roles) = result?;
    finished(&outcome, &config, &roles, ui)
}

/// Who is who: the engine's own resolution where it has one (Galera), else the primary's.
fn roles(
    engine: &dyn engine::Engine,
    config: &Config,
    topology: &crate::topology::Topology,
) -> anyhow::Result<(Roles, Vec<String>)> {
    engine
        .roles("init", config, topology, None, None, false)
        .unwrap_or_else(|| resolve::init(config, topology))
}

/// Steps that only prove the cluster works, and change nothing.
fn proof_only(step: &str) -> bool {
    matches!(step, "verify-link" | "verify-cluster")
}

/// The plan, as `ha-setup plan` prints it: every check for real, every action per host.
fn dry_run(
    runner: &Runner<'_>,
    plan: &crate::plan::Plan,
    cx: &mut Ctx<'_>,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    ui.out(&format!(
        "Plan for init of {} → {} ({}); nothing is changed.",
        cx.roles.source,
        crate::topology::and_list(&cx.roles.targets),
        cx.config.engine.name()
    ))?;
    let outcome = runner.run(plan, cx)?;
    let summary = if outcome.failed_checks > 0 {
        format!(
            "{} check(s) failed: init would stop at preflight; fix them first.",
            outcome.failed_checks
        )
    } else if outcome.changed.iter().all(|step| proof_only(step)) {
        "Nothing to change: the cluster is set up; init would only verify the links.".to_owned()
    } else {
        format!(
            "{} step(s) would run: {}.",
            outcome.changed.len(),
            outcome.changed.join(", ")
        )
    };
    ui.out(&summary)?;
    Ok(if outcome.failed_checks > 0 {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    })
}

fn finished(
    outcome: &Outcome,
    config: &Config,
    roles: &Roles,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    let changed: Vec<&str> = outcome
        .changed
        .iter()
        .copied()
        .filter(|step| !proof_only(step))
        .collect();
    let pair = std::iter::once(&roles.source)
        .chain(&roles.targets)
        .map(|name| format!("{name} ({})", config.node(name).host))
        .collect::<Vec<_>>();
    if config.topology == crate::config::Topology::Galera {
        let all = config
            .nodes
            .iter()
            .map(|(name, node)| format!("{name} ({})", node.host))
            .collect::<Vec<_>>()
            .join(", ");
        ui.out(&if changed.is_empty() {
            format!("init: nothing to change: {all} form the Galera cluster, every node Synced, and a canary went from one node to every other.")
        } else {
            format!(
                "init: done: {all} form the Galera cluster, every node Synced, and a canary went from one node to every other. \
                 Check any time with `ha-setup status`."
            )
        })?;
        return Ok(ExitCode::Ok);
    }
    let links = if pair.len() > 2 {
        "the links are alive"
    } else {
        "the link is alive"
    };
    if config.topology == crate::config::Topology::PrimaryPrimary {
        let both = pair.join(" and ");
        ui.out(&if changed.is_empty() {
            format!("init: nothing to change: {both} were already set up; both take writes, and both links are alive.")
        } else {
            format!(
                "init: done: {both} replicate from each other, both take writes, and both links are alive. \
                 Check any time with `ha-setup status`."
            )
        })?;
        return Ok(ExitCode::Ok);
    }
    let pair = format!("{} → {}", pair[0], pair[1..].join(", "));
    if changed.is_empty() {
        ui.out(&format!(
            "init: nothing to change: {pair} was already set up, and {links}."
        ))?;
    } else {
        ui.out(&format!(
            "init: done: {pair} replicate{}, and {links}. Check any time with `ha-setup status`.",
            if roles.targets.len() == 1 { "s" } else { "" }
        ))?;
    }
    Ok(ExitCode::Ok)
}
