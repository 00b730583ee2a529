//! The command line, as clap types only: what each command does lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

/// Sets up primary → secondary database replication over SSH, keeps it checked,
/// and gets the operator through losing the primary.
#[derive(Debug, Parser)]
#[command(name = "ha-setup", version, about, propagate_version = true)]
#[command(after_help = "Examples:\n  \
    ha-setup config example > ha-setup.toml\n  \
    ha-setup config check -c ha-setup.toml\n  \
    ha-setup completions bash > /etc/bash_completion.d/ha-setup")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file [default: ./ha-setup.toml]
    #[arg(
        short,
        long,
        global = true,
        value_name = "FILE",
        env = "HA_SETUP_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// Say more: -v shows what runs on which host, -vv adds debug detail
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Say only what is asked for and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config file, or print a commented example
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  ha-setup completions bash > /etc/bash_completion.d/ha-setup"
    )]
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file and report every problem with its line and column
    #[command(after_help = "Example:\n  ha-setup config check -c /etc/ha-setup/ha-setup.toml")]
    Check {
        /// Print the checked config as JSON (with defaults filled in)
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },

    /// Print a commented example config that passes `config check`
    #[command(after_help = "Example:\n  ha-setup config example > ha-setup.toml")]
    Example,
}

/// How data is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}
