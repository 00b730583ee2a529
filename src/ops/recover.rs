//! `ha-setup recover promote | unfence | rejoin`: plans like init's, run on whatever
//! nodes can be reached (an unreachable one is a fact the steps work with, not an error).

use std::path::Path;
use std::time::Instant;

use crate::engine;
use crate::error::ExitCode;
use crate::journal::{Store, state_dir};
use crate::nodes;
use crate::plan::Ctx;
use crate::prompt::NoPrompt;
use crate::runner::{Runner, seconds};
use crate::ui::Ui;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    Promote,
    Unfence,
    Rejoin,
    Rebuild,
    /// A bundle file onto `target` (the config's node name), which becomes a primary.
    Restore {
        bundle: std::path::PathBuf,
        target: crate::plan::NodeName,
    },
    /// Not a recovery but the same kind of run: `ha-setup switchover`.
    Switchover,
}

#[derive(Debug, Clone, Copy)]
pub struct RecoverOptions {
    pub force: bool,
    pub dry_run: bool,
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
    // Recovery runs unattended at 3 a.m. as often as not: it never prompts.
    let (mut primary, mut secondary) = nodes::connect_both_or_stand_in(&config, &NoPrompt);
    let plan = match &recovery {
        Recovery::Promote => engine.promote_plan(options.force),
        Recovery::Unfence => engine.unfence_plan(options.force),
        Recovery::Rejoin => engine.rejoin_plan(),
        Recovery::Rebuild => engine.rebuild_plan(),
        Recovery::Restore { bundle, .. } => {
            if !bundle.is_file() {
                return Err(crate::error::Exit::usage(format!(
                    "no bundle file at {}: make one with `ha-setup bundle create --out FILE`",
                    bundle.display()
                ))
                .into());
            }
            engine.restore_plan(bundle, options.force)
        }
        Recovery::Switchover => engine.switchover_plan(),
    };
    let store = Store::open(state_dir(&config));
    // rebuild reuses init's steps, which copy from `[primary]` to `[secondary]`: after a
    // promotion those names are the other way round, so the nodes are swapped for it.
    let swapped;
    let (config_for_plan, first, second) = if recovery == Recovery::Rebuild
        && secondary_is_primary(&config, &mut primary, &mut secondary, ui)
        || matches!(
            recovery,
            Recovery::Restore {
                target: crate::plan::NodeName::Primary,
                ..
            }
        ) {
        if recovery == Recovery::Rebuild {
            ui.note(
                "The [secondary] node is the primary now: rebuilding the [primary] node from it.",
            );
        }
        swapped = config.swapped();
        (&swapped, &mut secondary, &mut primary)
    } else {
        (&config, &mut primary, &mut secondary)
    };
    let mut cx = Ctx::new(
        config_for_plan,
        first.as_mut(),
        second.as_mut(),
        ui,
        options.dry_run,
    );
    if options.dry_run {
        ui.out(&format!("Plan for {}; nothing is changed.", plan.operation))?;
    }
    let outcome = Runner {
        engine,
        store: &store,
    }
    .run(&plan, &mut cx)?;
    let took = seconds(started.elapsed());
    let message = match (recovery, options.dry_run) {
        (_, true) => format!("{} step(s) would run.", outcome.changed.len()),
        (Recovery::Promote, false) => format!(
            "recover promote: done in {took}: the new primary takes writes. Point the application at it; \
             when the old primary is back, make it a replica with `ha-setup recover rejoin`."
        ),
        (Recovery::Unfence, false) => {
            format!("recover unfence: done in {took}: the primary takes writes.")
        }
        (Recovery::Switchover, false) => format!(
            "switchover: done in {took}: the roles are swapped, no transaction lost, and the link is alive. \
             Point the application at the new primary."
        ),
        (Recovery::Restore { bundle, .. }, false) => format!(
            "recover restore: done in {took}: the target runs as a primary on the data of {}, and takes writes. \
             Give it a secondary with `ha-setup recover rebuild` once the other node is ready.",
            bundle.display()
        ),
        (Recovery::Rebuild, false) => format!(
            "recover rebuild: done in {took}: the secondary holds a fresh copy and replicates; its previous data was moved aside."
        ),
        (Recovery::Rejoin, false) => format!(
            "recover rejoin: done in {took}: the old primary replicates from the new one, and the link is alive."
        ),
    };
    ui.out(&message)?;
    Ok(ExitCode::Ok)
}

/// Whether the config's `[secondary]` takes writes while its `[primary]` does not.
fn secondary_is_primary(
    config: &crate::config::Config,
    primary: &mut Box<dyn crate::host::Host>,
    secondary: &mut Box<dyn crate::host::Host>,
    ui: &Ui,
) -> bool {
    use crate::engine::mariadb::roles;
    use crate::plan::NodeName;
    let mut cx = Ctx::new(config, primary.as_mut(), secondary.as_mut(), ui, true);
    let first = roles::see(&mut cx, NodeName::Primary);
    let second = roles::see(&mut cx, NodeName::Secondary);
    second.writable_primary() && !first.writable_primary()
}
