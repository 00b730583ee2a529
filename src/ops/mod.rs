//! One file per operation: each loads what it needs, builds its plan, and runs it.

pub mod bundle;
pub mod init;
pub mod recover;
pub mod resolve;
pub mod resolve_pp;
pub mod status;
pub mod status_members;
pub mod status_pp;
pub mod sync;
pub mod verify;

use std::path::Path;

use crate::config::Config;
use crate::error::Exit;
use crate::lock::Held;
use crate::node::Hosts;
use crate::ui::Ui;

/// Takes the cluster's lock on every reachable node for a run that changes anything (none
/// for a dry run); a run holding it elsewhere refuses this one (exit 3).
pub fn lock(
    hosts: &mut Hosts,
    operation: &str,
    dry_run: bool,
    ui: &Ui,
) -> anyhow::Result<Option<Held>> {
    if dry_run {
        return Ok(None);
    }
    let held = crate::lock::take(&mut hosts.reachable_mut(), operation)?;
    for line in &held.took_over {
        ui.warn(line);
    }
    Ok(Some(held))
}

/// Releases the lock where this run holds it.
pub fn unlock(hosts: &mut Hosts, held: Option<Held>) {
    if let Some(held) = held {
        crate::lock::release(&mut hosts.reachable_mut(), &held);
    }
}

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

/// The one question before a changing operation runs (`questions` was taken before its
/// plan was shown): true to go on. No answer, or no, runs nothing and says how to skip
/// the question.
pub fn confirm_run(questions: crate::prompt::QuestionsGuard, ui: &Ui) -> anyhow::Result<bool> {
    use crate::prompt::{Prompter, Terminal};
    let go = Terminal
        .confirm("Run this plan now?", false)
        .map_err(|_| Exit {
            code: crate::error::ExitCode::Failed,
            message: "interrupted: nothing on the hosts changed".into(),
        })?;
    drop(questions);
    if go != Some(true) {
        ui.note("Nothing was run. Add --yes to run it without this question.");
        return Ok(false);
    }
    Ok(true)
}
