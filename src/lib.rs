//! ha-setup: primary → secondary database replication over SSH, set up, checked and
//! recovered by one tool. `main.rs` only calls [`run`].

pub mod bundle;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod host;
pub mod journal;
pub mod lock;
pub mod node;
pub mod ops;
pub mod password;
pub mod plan;
pub mod promote;
pub mod prompt;
pub mod reach;
pub mod rebuild;
pub mod route;
pub mod runner;
pub mod secret;
pub mod service;
pub mod sync;
pub mod tls;
pub mod tool;
pub mod topology;
pub mod ui;
pub mod verify;
pub mod wizard;

use clap::Parser;

use crate::error::ExitCode;

/// Parses the command line, runs the command, prints any error once, and returns the
/// process exit code.
pub fn run() -> ExitCode {
    // Before anything can hold a secret: no core dump, no ptrace by other processes.
    secret::protect_process();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version on stdout (exit 0) and usage errors on stderr (exit 2).
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Ok
            };
        }
    };
    let ui = ui::Ui::new(cli.global.quiet, cli.global.verbose);
    ui::init_logging(cli.global.quiet, cli.global.verbose);
    match commands::run(cli, &ui) {
        Ok(code) => code,
        Err(err) if error::is_broken_pipe(&err) => ExitCode::Ok,
        Err(err) => {
            ui::print_error(&err);
            error::exit_code(&err)
        }
    }
}
