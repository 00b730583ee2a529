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
    clap_complete::generate(
        shell,
        &mut without_hidden(&Cli::command()),
        "ha-setup",
        &mut out,
    );
    String::from_utf8(out).expect("clap_complete writes UTF-8")
}

/// The command tree without its hidden subcommands (`bundle pack`/`unpack`, run by
/// ha-setup on the hosts): some shells' generators list them anyway, and clap has no way
/// to remove a subcommand, so the tree is rebuilt from what completions use.
fn without_hidden(command: &clap::Command) -> clap::Command {
    let mut copy = clap::Command::new(command.get_name().to_owned())
        .args(command.get_arguments().cloned())
        .subcommands(
            command
                .get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .map(without_hidden),
        )
        .subcommand_required(command.is_subcommand_required_set())
        .arg_required_else_help(command.is_arg_required_else_help_set())
        .propagate_version(command.is_propagate_version_set());
    if let Some(about) = command.get_about() {
        copy = copy.about(about.clone());
    }
    if let Some(version) = command.get_version() {
        copy = copy.version(version.to_owned());
    }
    copy
}

/// `ha-setup man`: the manual page, from the same clap definitions as `--help`.
pub fn man(ui: &Ui) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|err| anyhow::anyhow!("cannot render the manual page: {err}"))?;
    ui.out(&String::from_utf8_lossy(&out))?;
    Ok(ExitCode::Ok)
}
