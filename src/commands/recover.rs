//! `ha-setup recover …`.

use std::path::Path;

use crate::cli::RecoverCommand;
use crate::error::ExitCode;
use crate::ops::recover::{RecoverOptions, Recovery, recover};
use crate::ui::Ui;

pub fn run(config_path: &Path, command: &RecoverCommand, ui: &Ui) -> anyhow::Result<ExitCode> {
    let (recovery, args) = match command {
        RecoverCommand::Promote(args) => (Recovery::Promote, args),
        RecoverCommand::Unfence(args) => (Recovery::Unfence, args),
        RecoverCommand::Rejoin(args) => (Recovery::Rejoin, args),
        RecoverCommand::Rebuild(args) => (Recovery::Rebuild, args),
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
