//! The command line, as clap types only: what each command does lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

use crate::bundle::Compress;

/// The engines a bundle may come from (the hidden `bundle pack`/`stream`).
const ENGINE_NAMES: [&str; 2] = ["mariadb", "postgresql"];

/// Sets up database replication between hosts over SSH (a primary and its replicas),
/// keeps it checked, and gets the operator through losing the primary.
#[derive(Debug, Parser)]
#[command(name = "ha-setup", version, about, propagate_version = true)]
#[command(after_help = "Examples:\n  \
    ha-setup init                      # on a terminal: the wizard asks for everything\n  \
    ha-setup config example > ha-setup.toml\n  \
    ha-setup config check -c ha-setup.toml\n  \
    ha-setup plan -c ha-setup.toml\n  \
    ha-setup init -c ha-setup.toml --yes\n  \
    ha-setup status -c ha-setup.toml\n  \
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
    /// Set up replication from the primary to every replica: preflight, bundle, replication, link check
    #[command(
        long_about = "Set up replication from the primary to every replica: preflight, bundle, replication, link check.\n\n\
        Without a config file, on a terminal, a wizard asks for the hosts (trying each over SSH \
        at its question), writes the config (0600), shows the plan and asks before running it. \
        With a config file, nothing is asked but the final confirmation; with --yes or without \
        a terminal, nothing at all, and a missing value is an error naming its key.",
        after_help = "Examples:\n  \
        ha-setup init                                   # the wizard, on a terminal\n  \
        ha-setup init -c ha-setup.toml --yes\n  \
        ha-setup init -c ha-setup.toml --dry-run\n  \
        ha-setup init --yes --primary db1 --secondary db2   # defaults for the rest"
    )]
    Init(InitArgs),

    /// Print the steps an operation would take on which host, touching nothing
    #[command(after_help = "Example:\n  ha-setup plan -c ha-setup.toml init")]
    Plan {
        /// The operation to plan
        #[arg(value_enum, default_value_t = Operation::Init)]
        operation: Operation,
    },

    /// Show roles, replication threads, lag and an end-to-end canary
    #[command(after_help = "Examples:\n  \
        ha-setup status\n  \
        ha-setup status --format json\n  \
        ha-setup status --format nagios   # for Icinga/Nagios: exit 0/1/2/3 and perfdata\n  \
        ha-setup status --watch 5")]
    Status(StatusArgs),

    /// Compare every node's data with the primary's, chunk by chunk, while the application writes
    #[command(
        long_about = "Compare every node's data with the primary's, chunk by chunk, while the application writes.\n\n\
        Every table of the application's databases is walked along its primary key in chunks \
        of at most 10,000 rows; each chunk's checksum is computed on the primary and on \
        every other node at one consistent point (MariaDB: the checksum statement travels \
        through replication; PostgreSQL: the standby is read once it has replayed the \
        primary's WAL, while the chunk's table is share-locked on the primary). A table \
        without a primary key is compared whole, and the report says so. Nothing of the \
        application's data changes (MariaDB keeps its checksums in ha-setup's own schema).\n\n\
        Exit status: 0 every node holds the same data, 4 a difference was found (every \
        differing table and key range is listed), 1 something could not be compared.",
        after_help = "Examples:\n  \
        ha-setup verify -c ha-setup.toml\n  \
        ha-setup verify -c ha-setup.toml --format json   # for scripts: the differing key ranges\n  \
        ha-setup verify -q && echo identical"
    )]
    Verify(VerifyArgs),

    /// Show the event history: what ran, when, on which host, and how it ended
    #[command(after_help = "Example:\n  ha-setup history --format json")]
    History {
        /// Text, or JSON lines for scripts
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },

    /// Swap the roles of primary and replica, losing no transaction
    #[command(after_help = "Examples:\n  \
        ha-setup switchover -c ha-setup.toml --dry-run\n  \
        ha-setup switchover -c ha-setup.toml --yes\n  \
        ha-setup switchover --to db3 --yes          # more than one replica: name the new primary")]
    Switchover(SwitchoverArgs),

    /// Make the [[sync_files]] identical on every node: bytes, mode, owner, from the primary
    #[command(
        long_about = "Make every [[sync_files]] path identical on all nodes (bytes, mode, owner), from the primary's copy.\n\n\
        Each node's copy is described (type, mode, owner and group by name, size and SHA-256 of \
        every entry; never the contents) and compared with the primary's. A differing copy is \
        replaced: the primary's goes node to node as a tar stream into a staging directory beside \
        the path, is checked by digest there, and is renamed into place; what the node held is \
        kept beside it as PATH.ha-setup-old-<time>. Identical copies are not touched. A path \
        missing on the primary, a symbolic link, an owner missing on a node or a node without \
        room stops the run before anything is copied.",
        after_help = "Examples:\n  \
        ha-setup sync -c ha-setup.toml --dry-run      # what differs where, changing nothing\n  \
        ha-setup sync -c ha-setup.toml --yes\n\n\
        The config lists the paths, files or directories:\n  \
        [[sync_files]]\n  \
        path = \"/etc/privacyidea/enckey\""
    )]
    Sync(SyncArgs),

    /// After losing the primary: promote the replica, reopen writes, rejoin the old primary
    #[command(subcommand)]
    Recover(RecoverCommand),

    /// The replication bundle as a file: create, inspect, verify
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        ha-setup bundle create -c ha-setup.toml --out /backup/db1.bundle\n  \
        ha-setup bundle verify /backup/db1.bundle"
    )]
    Bundle(BundleCommand),

    /// Validate a config file, or print a commented example
    #[command(
        subcommand,
        after_help = "Examples:\n  \
        ha-setup config example > ha-setup.toml\n  \
        ha-setup config check -c ha-setup.toml"
    )]
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

    /// Print the manual page (roff), made from the same definitions as --help
    #[command(after_help = "Example:\n  ha-setup man | man -l -")]
    Man,
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

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Answer yes to every question; never prompt
    #[arg(short, long)]
    pub yes: bool,

    /// Run the read-only checks and print what each step would run, changing nothing
    #[arg(long)]
    pub dry_run: bool,

    /// The primary's SSH address, for a run without a config file (never asked then)
    #[arg(long, value_name = "HOST")]
    pub primary: Option<String>,

    /// The secondary's SSH address, for a run without a config file (never asked then)
    #[arg(long, value_name = "HOST")]
    pub secondary: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RecoverCommand {
    /// Promote the replica; refused while the primary still takes writes (unless --force)
    #[command(after_help = "Examples:\n  \
        ha-setup recover promote -c ha-setup.toml --dry-run\n  \
        ha-setup recover promote -c ha-setup.toml --yes")]
    Promote(RecoverArgs),

    /// Reopen writes on the primary after a planned restart (it comes back read-only)
    #[command(after_help = "Example:\n  ha-setup recover unfence -c ha-setup.toml --yes")]
    Unfence(RecoverArgs),

    /// Make the old primary a replica of the new one; refused if its history diverged
    #[command(after_help = "Examples:\n  \
        ha-setup recover rejoin -c ha-setup.toml --yes\n  \
        ha-setup recover rejoin -c ha-setup.toml --rewind --yes   # PostgreSQL: discard what the new primary never got")]
    Rejoin(RejoinArgs),

    /// Re-seed a replica from the primary with a fresh bundle (old data moved aside)
    #[command(after_help = "Examples:\n  \
        ha-setup recover rebuild -c ha-setup.toml --yes          # two nodes: the one that is not the primary\n  \
        ha-setup recover rebuild db3 -c ha-setup.toml --yes\n  \
        ha-setup recover rebuild db1 --from db2 --yes           # when no node is provably the primary")]
    Rebuild(RebuildArgs),

    /// Galera, after every node stopped or crashed: start the cluster again from the node
    /// with the most (each node's recovered position); refused while a node still runs in
    /// a primary component
    #[command(after_help = "Examples:\n  \
        ha-setup recover bootstrap -c ha-setup.toml --dry-run   # the positions seen and the choice\n  \
        ha-setup recover bootstrap -c ha-setup.toml --yes\n  \
        ha-setup recover bootstrap -c ha-setup.toml --force --yes   # a node cannot be read: go ahead without it")]
    Bootstrap(RecoverArgs),

    /// Make a fresh database install a primary from a bundle file (disaster recovery)
    #[command(after_help = "Example:\n  \
        ha-setup recover restore -c ha-setup.toml --bundle /backup/db1.bundle --target secondary --yes")]
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The node to re-seed, as the config names it (with two nodes: the one that is not
    /// the primary)
    #[arg(value_name = "NODE")]
    pub node: Option<String>,

    /// The node to copy from, when no node is provably the primary [default: the primary now]
    #[arg(long, value_name = "NODE")]
    pub from: Option<String>,

    #[command(flatten)]
    pub common: RecoverArgs,
}

#[derive(Debug, Args)]
pub struct RejoinArgs {
    /// PostgreSQL: rewind an old primary whose WAL holds transactions the new primary never
    /// got (pg_rewind). They are discarded from the database; its WAL is kept aside first
    #[arg(long)]
    pub rewind: bool,

    #[command(flatten)]
    pub common: RecoverArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The bundle file (from `ha-setup bundle create`)
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,

    /// The node to restore onto, as the config names it
    #[arg(long, value_name = "NODE")]
    pub target: String,

    /// Answer yes to every question; never prompt
    #[arg(short, long)]
    pub yes: bool,

    /// Restore even onto a node that runs a writable database (its data is moved aside)
    #[arg(long)]
    pub force: bool,

    /// Run the read-only checks and print what each step would run, changing nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Answer yes to every question; never prompt
    #[arg(short, long)]
    pub yes: bool,

    /// Read every node and print what would be copied where, changing nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    /// The replica to become the primary, as the config names it [default: the only replica]
    #[arg(long, value_name = "NODE")]
    pub to: Option<String>,

    /// Answer yes to every question; never prompt
    #[arg(short, long)]
    pub yes: bool,

    /// Run the read-only checks and print what each step would run, changing nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Answer yes to every question; never prompt
    #[arg(short, long)]
    pub yes: bool,

    /// Go on although a safety check refused (the precondition table says what it saw)
    #[arg(long)]
    pub force: bool,

    /// Run the read-only checks and print what each step would run, changing nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Text for people, JSON for scripts, nagios for monitoring plugins
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,

    /// Repeat every SECS seconds until interrupted
    #[arg(long, value_name = "SECS")]
    pub watch: Option<u64>,

    /// Read the nodes only; write no canary (for frequent monitoring)
    #[arg(long)]
    pub no_canary: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Text for people, JSON for scripts
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// An operation that `plan` can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Operation {
    Init,
    Switchover,
    Promote,
    Unfence,
    Rejoin,
    Rebuild,
    Sync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
    Nagios,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Take a consistent snapshot of the primary and write it as a bundle file
    #[command(
        after_help = "Example:\n  ha-setup bundle create -c ha-setup.toml --out /backup/db1.bundle"
    )]
    Create {
        /// Where to write the bundle (a new file)
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },

    /// Print a bundle's manifest: engine, version, source host, position, files (read
    /// from its end; the data is checked by `verify`)
    #[command(after_help = "Example:\n  ha-setup bundle inspect /backup/db1.bundle")]
    Inspect {
        /// The bundle file
        path: PathBuf,

        /// Text, or the manifest as JSON
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },

    /// Check every file of a bundle against its manifest (size and SHA-256)
    #[command(after_help = "Example:\n  ha-setup bundle verify /backup/db1.bundle")]
    Verify {
        /// The bundle file
        path: PathBuf,
    },

    /// Write a directory as a bundle stream on stdout (run by ha-setup on the primary)
    #[command(hide = true)]
    Pack {
        /// The directory to stream
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,

        /// The engine that made the backup
        #[arg(long, value_parser = ENGINE_NAMES)]
        engine: String,

        /// The server version, as the server reports it
        #[arg(long, value_name = "VERSION")]
        server_version: String,

        /// The primary's name, for the manifest
        #[arg(long, value_name = "HOST")]
        source_host: String,

        /// Compress chunks with zstd: never, always, or while the output is the bottleneck
        #[arg(long, value_enum, default_value_t = Compress::None)]
        compress: Compress,
    },

    /// Stream a hot backup of the server on this host as a bundle on stdout, as the backup
    /// tool produces it (run by ha-setup on the primary)
    #[command(hide = true)]
    Stream {
        /// The engine of the server
        #[arg(long, value_parser = ENGINE_NAMES)]
        engine: String,

        /// The server version, as the server reports it
        #[arg(long, value_name = "VERSION")]
        server_version: String,

        /// The primary's name, for the manifest
        #[arg(long, value_name = "HOST")]
        source_host: String,

        /// A directory for the backup tool's own temporary files: emptied first, removed
        /// afterwards
        #[arg(long, value_name = "DIR")]
        work: PathBuf,

        /// Compress chunks with zstd: never, always, or while the output is the bottleneck
        #[arg(long, value_enum, default_value_t = Compress::None)]
        compress: Compress,
    },

    /// Read a bundle stream on stdin into a new directory, checking every file (run by
    /// ha-setup on the secondary); prints the manifest as one line of JSON
    #[command(hide = true)]
    Unpack {
        /// Where to unpack: created if missing, must be empty if it exists
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
    },
}

/// How data is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}
