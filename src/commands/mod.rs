//! One file per command; this match is the only dispatch.

mod bundle;
mod completions;
mod config;
mod history;
mod init;
mod recover;
mod status;
mod switchover;

use std::path::PathBuf;

use crate::cli::{BundleCommand, Cli, Command, ConfigCommand};
use crate::error::ExitCode;
use crate::ui::Ui;

pub fn run(cli: Cli, ui: &Ui) -> anyhow::Result<ExitCode> {
    let config_path = cli
        .global
        .config
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH));
    match cli.command {
        Command::Init(args) => init::run(&config_path, &args, ui),
        Command::Plan { operation } => init::plan(&config_path, operation, ui),
        Command::Recover(command) => recover::run(&config_path, &command, ui),
        Command::Switchover(args) => switchover::run(&config_path, &args, ui),
        Command::Status(args) => status::run(&config_path, &args, ui),
        Command::History { format } => history::run(&config_path, format, ui),
        Command::Bundle(BundleCommand::Create { out }) => bundle::create(&config_path, &out, ui),
        Command::Bundle(command) => bundle::run(command, ui),
        Command::Config(ConfigCommand::Check { format }) => config::check(&config_path, format, ui),
        Command::Config(ConfigCommand::Example) => config::example(ui),
        Command::Completions { shell } => completions::print(shell, ui),
        Command::Man => completions::man(ui),
    }
}
