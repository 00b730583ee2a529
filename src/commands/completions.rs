//! `ha-setup completions SHELL`: the same scripts are committed under completions/.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::ExitCode;
use crate::ui::Ui;

pub fn print(shell: Shell, ui: &Ui) -> anyhow::Result<ExitCode> {
    ui.out(&script(shell))?;
    Ok(ExitCode::Ok)
}

/// The completion script for one shell, as committed in completions/.
pub fn script(shell: Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ha-setup", &mut out);
    String::from_utf8(out).expect("clap_complete writes UTF-8")
}
