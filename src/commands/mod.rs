//! One file per command; this match is the only dispatch.

mod completions;
mod config;

use std::path::PathBuf;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::error::ExitCode;
use crate::ui::Ui;

pub fn run(cli: Cli, ui: &Ui) -> anyhow::Result<ExitCode> {
    let config_path = cli
        .global
        .config
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH));
    match cli.command {
        Command::Config(ConfigCommand::Check { format }) => config::check(&config_path, format, ui),
        Command::Config(ConfigCommand::Example) => config::example(ui),
        Command::Completions { shell } => completions::print(shell, ui),
    }
}
