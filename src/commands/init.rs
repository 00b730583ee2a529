//! `ha-setup init` and `ha-setup plan`.

use std::path::Path;

use crate::cli::{InitArgs, Operation};
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

/// `plan` is a dry run: the same checks and the same actions, printed.
pub fn plan(config_path: &Path, operation: Operation, ui: &Ui) -> anyhow::Result<ExitCode> {
    match operation {
        Operation::Init => init(
            config_path,
            InitOptions {
                yes: true,
                dry_run: true,
                ..InitOptions::default()
            },
            ui,
        ),
    }
}
