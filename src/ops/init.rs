//! `ha-setup init` and `ha-setup plan init`: connect to both nodes, then run (or show) the
//! init plan of the config's engine.

use std::path::Path;

use anyhow::Context;

use crate::engine;
use crate::error::ExitCode;
use crate::journal::{Store, state_dir};
use crate::nodes;
use crate::plan::Ctx;
use crate::prompt::{NoPrompt, Prompter, Terminal};
use crate::runner::Runner;
use crate::ui::Ui;

/// What init was asked to do, free of clap.
#[derive(Debug, Clone, Copy)]
pub struct InitOptions {
    pub yes: bool,
    pub dry_run: bool,
}

pub fn init(config_path: &Path, options: InitOptions, ui: &Ui) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let engine = engine::for_config(&config)?;
    let prompter: &dyn Prompter = if options.yes || !ui.is_interactive() {
        &NoPrompt
    } else {
        &Terminal
    };
    let (primary, secondary) = nodes::connect_both(&config, prompter);
    let mut primary = primary.context("preflight: cannot reach the primary")?;
    let mut secondary = secondary.context("preflight: cannot reach the secondary")?;
    let store = Store::open(state_dir(&config));
    let plan = engine.init_plan();
    let mut cx = Ctx {
        config: &config,
        primary: primary.as_mut(),
        secondary: secondary.as_mut(),
        ui,
        dry_run: options.dry_run,
        after_pending: false,
        findings: Vec::new(),
    };
    let runner = Runner {
        engine,
        store: &store,
    };
    if options.dry_run {
        ui.out(&format!(
            "Plan for init of {} → {} ({}); nothing is changed.",
            config.primary.host,
            config.secondary.host,
            config.engine.name()
        ))?;
    }
    let outcome = runner.run(&plan, &mut cx)?;
    if options.dry_run {
        let summary = if outcome.failed_checks > 0 {
            format!(
                "{} check(s) failed: init would stop at preflight; fix them first.",
                outcome.failed_checks
            )
        } else if outcome.changed.iter().all(|step| *step == "verify-link") {
            "Nothing to change: the pair is set up; init would only verify the link.".to_owned()
        } else {
            format!(
                "{} step(s) would run: {}.",
                outcome.changed.len(),
                outcome.changed.join(", ")
            )
        };
        ui.out(&summary)?;
        return Ok(if outcome.failed_checks > 0 {
            ExitCode::Failed
        } else {
            ExitCode::Ok
        });
    }
    let changed: Vec<&str> = outcome
        .changed
        .iter()
        .copied()
        .filter(|step| *step != "verify-link")
        .collect();
    let pair = format!(
        "{} ({}) → {} ({})",
        "primary", config.primary.host, "secondary", config.secondary.host
    );
    if changed.is_empty() {
        ui.out(&format!(
            "init: nothing to change: {pair} was already set up, and the link is alive."
        ))?;
    } else {
        ui.out(&format!(
            "init: done: {pair} replicates, and the link is alive. Check it any time with `ha-setup status`."
        ))?;
    }
    Ok(ExitCode::Ok)
}
