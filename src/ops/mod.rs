//! One file per operation: each loads what it needs, builds its plan, and runs it.

pub mod bundle;
pub mod init;
pub mod recover;
pub mod status;

use std::path::Path;

use crate::config::Config;
use crate::error::Exit;

/// Loads the config an operation runs on; a missing file says how to make one.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    if !path.exists() {
        return Err(Exit::usage(format!(
            "no config file at {}: write one with `ha-setup config example > {}` and edit it, \
             or name another with -c FILE (or HA_SETUP_CONFIG)",
            path.display(),
            path.display()
        ))
        .into());
    }
    Ok(Config::load(path)?)
}
