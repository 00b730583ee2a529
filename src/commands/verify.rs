//! `ha-setup verify`.

use std::path::Path;

use crate::cli::{Format, VerifyArgs};
use crate::error::ExitCode;
use crate::ops::verify::{VerifyFormat, verify};
use crate::ui::Ui;

pub fn run(config_path: &Path, args: &VerifyArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        Format::Text => VerifyFormat::Text,
        Format::Json => VerifyFormat::Json,
    };
    verify(config_path, format, ui)
}
