//! The config file (SPEC.md, "Configuration file"): types, defaults, and loading with
//! errors that name the file, line, column and key.

mod error;
mod locate;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Problem};

/// Where the config file is looked for when neither `-c` nor `HA_SETUP_CONFIG` names one.
pub const DEFAULT_PATH: &str = "ha-setup.toml";

/// The commented example printed by `ha-setup config example`.
pub const EXAMPLE: &str = include_str!("../../templates/ha-setup.example.toml");

/// The `host` value that means "this machine, without SSH".
pub const LOCAL_HOST: &str = "local";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub engine: Engine,
    pub primary: Node,
    pub secondary: Node,
    #[serde(default)]
    pub ssh: Ssh,
    #[serde(default)]
    pub replication: Replication,
    #[serde(default)]
    pub sync_files: Vec<SyncFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Mariadb,
    Postgresql,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Mariadb => "mariadb",
            Engine::Postgresql => "postgresql",
        }
    }

    pub fn default_db_port(self) -> u16 {
        match self {
            Engine::Mariadb => 3306,
            Engine::Postgresql => 5432,
        }
    }
}

/// One database host. Settings left out here are discovered on the host, or taken from
/// `~/.ssh/config`, at run time.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Where SSH reaches it; `local` means this machine, without SSH.
    pub host: String,
    pub ssh_user: Option<String>,
    pub ssh_port: Option<u16>,
    pub identity_file: Option<PathBuf>,
    /// Name of the environment variable that holds the identity file's passphrase.
    pub identity_passphrase_env: Option<String>,
    /// Name of the environment variable that holds the SSH password, for password login.
    pub ssh_password_env: Option<String>,
    /// Address the other node's database uses for this one.
    pub replication_host: Option<String>,
    pub db_port: Option<u16>,
    pub server_id: Option<u32>,
    pub datadir: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    pub service: Option<String>,
}

impl Node {
    pub fn is_local(&self) -> bool {
        self.host == LOCAL_HOST
    }

    /// The address the other node's database connects to.
    pub fn replication_address(&self) -> &str {
        self.replication_host.as_deref().unwrap_or(&self.host)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ssh {
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    pub connect_timeout_secs: u64,
    /// How often a keepalive goes out on an idle connection.
    pub keepalive_secs: u64,
    /// How long a host may stay silent (keepalives unanswered) before it counts as cut off.
    pub io_timeout_secs: u64,
    /// The OpenSSH client config whose Host aliases, HostName, User, Port and IdentityFile apply.
    pub config_file: PathBuf,
    /// Bulk streams (the bundle, files) go through OpenSSH's own `ssh` when it is installed
    /// here and logs in without asking; libssh2 encrypts far slower (docs/BENCHMARKS.md).
    pub bulk_via_openssh: bool,
}

impl Default for Ssh {
    fn default() -> Self {
        Ssh {
            known_hosts: PathBuf::from("~/.ssh/known_hosts"),
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout_secs: 10,
            keepalive_secs: 5,
            io_timeout_secs: 30,
            config_file: PathBuf::from("~/.ssh/config"),
            bulk_via_openssh: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// An unknown or changed host key is refused.
    Strict,
    /// An unknown host key is recorded; a changed one is refused.
    AcceptNew,
}

impl HostKeyPolicy {
    pub fn name(self) -> &'static str {
        match self {
            HostKeyPolicy::Strict => "strict",
            HostKeyPolicy::AcceptNew => "accept-new",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Replication {
    pub user: String,
    /// Name of the environment variable that holds the replication password; unset means
    /// a strong password is generated and kept on the hosts, 0600.
    pub password_env: Option<String>,
    pub tls: bool,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            user: "ha_repl".to_owned(),
            password_env: None,
            tls: true,
        }
    }
}

/// An application file that must be identical on both nodes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncFile {
    pub path: PathBuf,
}

impl Config {
    /// Reads and validates a config file.
    /// The same pair with `[primary]` and `[secondary]` exchanged, for operations that
    /// copy from whichever node is primary now.
    pub fn swapped(&self) -> Config {
        let mut config = self.clone();
        std::mem::swap(&mut config.primary, &mut config.secondary);
        config
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|err| ConfigError::unreadable(path, err))?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `origin` only names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|err| ConfigError::from_toml(origin, text, &err))?;
        let problems = validate::problems(&config);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::from_problems(origin, text, problems))
        }
    }
}

/// Expands a leading `~/` to the current user's home directory.
pub fn expand_home(path: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest),
            None => path.to_path_buf(),
        },
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests;
