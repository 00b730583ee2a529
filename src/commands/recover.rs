//! `ha-setup recover …`.

use std::path::Path;

use crate::cli::{RecoverArgs, RecoverCommand};
use crate::error::ExitCode;
use crate::ops::recover::{RecoverOptions, Recovery, recover};
use crate::ui::Ui;

pub fn run(config_path: &Path, command: &RecoverCommand, ui: &Ui) -> anyhow::Result<ExitCode> {
    let options = |args: &RecoverArgs| RecoverOptions {
        force: args.force,
        dry_run: args.dry_run,
        yes: args.yes,
    };
    let (recovery, options) = match command {
        RecoverCommand::Restore(args) => (
            Recovery::Restore {
                bundle: args.bundle.clone(),
                target: args.target.clone(),
            },
            RecoverOptions {
                force: args.force,
                dry_run: args.dry_run,
                yes: args.yes,
            },
        ),
        RecoverCommand::Rebuild(args) => (
            Recovery::Rebuild {
                node: args.node.clone(),
                from: args.from.clone(),
            },
            options(&args.common),
        ),
        RecoverCommand::Promote(args) => (Recovery::Promote, options(args)),
        RecoverCommand::Unfence(args) => (Recovery::Unfence, options(args)),
        RecoverCommand::Bootstrap(args) => (Recovery::Bootstrap, options(args)),
        RecoverCommand::Rejoin(args) => (
            Recovery::Rejoin {
                rewind: args.rewind,
            },
            options(&args.common),
        ),
    };
    recover(config_path, recovery, options, ui)
}
