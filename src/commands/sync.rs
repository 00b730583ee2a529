//! `ha-setup sync`.

use std::path::Path;

use crate::cli::SyncArgs;
use crate::error::ExitCode;
use crate::ops::sync::{SyncOptions, sync};
use crate::ui::Ui;

pub fn run(config_path: &Path, args: &SyncArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    sync(
        config_path,
        SyncOptions {
            yes: args.yes,
            dry_run: args.dry_run,
        },
        ui,
    )
}

/// `plan sync` is a dry run of sync.
pub fn plan(config_path: &Path, ui: &Ui) -> anyhow::Result<ExitCode> {
    sync(
        config_path,
        SyncOptions {
            yes: true,
            dry_run: true,
        },
        ui,
    )
}
