//! `ha-setup recover …`.

use std::path::Path;

use crate::cli::RecoverCommand;
use crate::error::ExitCode;
use crate::ops::recover::{RecoverOptions, Recovery, recover};
use crate::ui::Ui;

pub fn run(config_path: &Path, command: &RecoverCommand, ui: &Ui) -> anyhow::Result<ExitCode> {
    if let RecoverCommand::Restore(args) = command {
        let target = match args.target {
            crate::cli::NodeArg::Primary => crate::plan::NodeName::Primary,
            crate::cli::NodeArg::Secondary => crate::plan::NodeName::Secondary,
        };
        return recover(
            config_path,
            Recovery::Restore {
                bundle: args.bundle.clone(),
                target,
            },
            RecoverOptions {
                force: args.force,
                dry_run: args.dry_run,
            },
            ui,
        );
    }
    let (recovery, args) = match command {
        RecoverCommand::Promote(args) => (Recovery::Promote, args),
        RecoverCommand::Unfence(args) => (Recovery::Unfence, args),
        RecoverCommand::Rejoin(args) => (Recovery::Rejoin, args),
        RecoverCommand::Rebuild(args) => (Recovery::Rebuild, args),
        RecoverCommand::Restore(_) => unreachable!("handled above"),
    };
    recover(
        config_path,
        recovery,
        RecoverOptions {
            force: args.force,
            dry_run: args.dry_run,
        },
        ui,
    )
}
