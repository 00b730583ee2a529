//! `ha-setup recover …`.

use std::path::Path;

use crate::cli::RecoverCommand;
use crate::error::ExitCode;
use crate::ops::recover::{RecoverOptions, Recovery, recover};
use crate::ui::Ui;

pub fn run(config_path: &Path, command: &RecoverCommand, ui: &Ui) -> anyhow::Result<ExitCode> {
    let (recovery, force, dry_run) = match command {
        RecoverCommand::Restore(args) => (
            Recovery::Restore {
                bundle: args.bundle.clone(),
                target: args.target.clone(),
            },
            args.force,
            args.dry_run,
        ),
        RecoverCommand::Rebuild(args) => (
            Recovery::Rebuild {
                node: args.node.clone(),
                from: args.from.clone(),
            },
            args.common.force,
            args.common.dry_run,
        ),
        RecoverCommand::Promote(args) => (Recovery::Promote, args.force, args.dry_run),
        RecoverCommand::Unfence(args) => (Recovery::Unfence, args.force, args.dry_run),
        RecoverCommand::Rejoin(args) => (Recovery::Rejoin, args.force, args.dry_run),
    };
    recover(config_path, recovery, RecoverOptions { force, dry_run }, ui)
}
