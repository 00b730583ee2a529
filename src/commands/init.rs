//! `ha-setup init` and `ha-setup plan`.

use std::path::Path;

use crate::cli::InitArgs;
use crate::error::ExitCode;
use crate::ops::init::{InitOptions, init};
use crate::ui::Ui;
use crate::wizard::Given;

pub fn run(config_path: &Path, args: &InitArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    init(
        config_path,
        InitOptions {
            yes: args.yes,
            dry_run: args.dry_run,
            wizard: true,
            given: Given {
                primary: args.primary.clone(),
                secondary: args.secondary.clone(),
            },
        },
        ui,
    )
}

/// `plan init` is a dry run of init: the same checks and the same actions, printed.
pub fn plan(config_path: &Path, ui: &Ui) -> anyhow::Result<ExitCode> {
    init(
        config_path,
        InitOptions {
            yes: true,
            dry_run: true,
            ..InitOptions::default()
        },
        ui,
    )
}
