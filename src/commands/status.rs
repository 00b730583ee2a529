//! `ha-setup status`.

use std::path::Path;

use crate::cli::{StatusArgs, StatusFormat as CliFormat};
use crate::error::ExitCode;
use crate::ops::status::{StatusFormat, StatusOptions, status};
use crate::ui::Ui;

pub fn run(config_path: &Path, args: &StatusArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        CliFormat::Text => StatusFormat::Text,
        CliFormat::Json => StatusFormat::Json,
        CliFormat::Nagios => StatusFormat::Nagios,
    };
    status(
        config_path,
        StatusOptions {
            format,
            watch: args.watch,
            canary: !args.no_canary,
        },
        ui,
    )
}
