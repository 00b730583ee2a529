//! One file per command; this match is the only dispatch.

mod bundle;
mod completions;
mod config;
mod history;
mod init;
mod recover;
mod status;
mod switchover;
mod sync;
mod verify;

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
        Command::Plan {
            operation: crate::cli::Operation::Sync,
        } => sync::plan(&config_path, ui),
        Command::Plan { operation } => match recovery(operation) {
            None => init::plan(&config_path, ui),
            Some(recovery) => crate::ops::recover::recover(
                &config_path,
                recovery,
                crate::ops::recover::RecoverOptions {
                    force: false,
                    dry_run: true,
                    yes: true,
                },
                ui,
            ),
        },
        Command::Recover(command) => recover::run(&config_path, &command, ui),
        Command::Switchover(args) => switchover::run(&config_path, &args, ui),
        Command::Status(args) => status::run(&config_path, &args, ui),
        Command::Sync(args) => sync::run(&config_path, &args, ui),
        Command::Verify(args) => verify::run(&config_path, &args, ui),
        Command::History { format } => history::run(&config_path, format, ui),
        Command::Bundle(BundleCommand::Create { out }) => bundle::create(&config_path, &out, ui),
        Command::Bundle(command) => bundle::run(command, ui),
        Command::Config(ConfigCommand::Check { format }) => config::check(&config_path, format, ui),
        Command::Config(ConfigCommand::Example) => config::example(ui),
        Command::Completions { shell } => completions::print(shell, ui),
        Command::Man => completions::man(ui),
    }
}

/// The operations `plan` shows through the recovery runner (init has its own).
fn recovery(operation: crate::cli::Operation) -> Option<crate::ops::recover::Recovery> {
    use crate::cli::Operation;
    use crate::ops::recover::Recovery;
    match operation {
        Operation::Init | Operation::Sync => None,
        Operation::Switchover => Some(Recovery::Switchover { to: None }),
        Operation::Promote => Some(Recovery::Promote),
        Operation::Unfence => Some(Recovery::Unfence),
        Operation::Rejoin => Some(Recovery::Rejoin { rewind: false }),
        Operation::Rebuild => Some(Recovery::Rebuild {
            node: None,
            from: None,
        }),
    }
}
