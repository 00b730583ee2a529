//! What ha-setup remembers between runs, on the machine it runs on: the journal of the
//! current operation (which steps finished, so a re-run says where it resumes) and the
//! event history (every step of every run: when, on which host, how it ended).
//!
//! Both live in a state directory per pair of hosts: `$HA_SETUP_STATE_DIR`, else
//! `$XDG_STATE_HOME/ha-setup/<primary>_<secondary>`, else `~/.local/state/ha-setup/…`.
//! Facts the hosts themselves must agree on (the seed position, the password) are kept on
//! the hosts, not here: the journal may be lost without losing the cluster.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The state directory of the cluster this config describes: keyed by its identity
/// (`Config::cluster_id`), not by which node is primary. A directory an older version
/// kept under the two hosts' names is moved to the new name the first time.
pub fn state_dir(config: &Config) -> PathBuf {
    if let Some(dir) = std::env::var_os("HA_SETUP_STATE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"));
    let dir = base.join("ha-setup").join(file_safe(&config.cluster_id()));
    if config.two_node_form && !dir.exists() {
        let hosts: Vec<String> = config.nodes.values().map(|n| file_safe(&n.host)).collect();
        let old = base.join("ha-setup").join(hosts.join("_"));
        if old.is_dir() {
            // Best effort: a failure leaves the old history where it was, nothing lost.
            let _ = std::fs::rename(&old, &dir);
        }
    }
    dir
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// One line of the event history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub operation: String,
    pub step: String,
    /// The node(s) the step worked on: `primary`, `secondary`, `primary,secondary`.
    pub host: String,
    /// `done`, `already done`, `failed`, `started`, …
    pub result: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The journal of one operation: the steps that finished in its latest run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub operation: String,
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub finished: Vec<String>,
    /// The step that failed last, if the latest run failed.
    #[serde(default)]
    pub failed: Option<String>,
    /// Whether the latest run got to the end.
    #[serde(default)]
    pub complete: bool,
}

/// The state directory, opened.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn open(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn journal_path(&self, operation: &str) -> PathBuf {
        self.dir.join(format!("{operation}.journal.json"))
    }

    fn events_path(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    pub fn journal(&self, operation: &str) -> anyhow::Result<Option<Journal>> {
        let path = self.journal_path(operation);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).with_context(|| {
                format!(
                    "the journal {} is damaged; move it aside and re-run",
                    path.display()
                )
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Saves the journal atomically and durably: a temporary file, fsynced, renamed over
    /// the journal, then the directory fsynced. A kill or a power cut leaves the old
    /// journal or the new one, never half of one or an empty file.
    pub fn save_journal(&self, journal: &Journal) -> anyhow::Result<()> {
        self.ensure_dir()?;
        let path = self.journal_path(&journal.operation);
        let temp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(journal)?;
        write_durably(&temp, &path, text.as_bytes())
            .with_context(|| format!("cannot write the journal {}", path.display()))
    }

    pub fn record(&self, event: &Event) -> anyhow::Result<()> {
        self.ensure_dir()?;
        let path = self.events_path();
        let mut line = serde_json::to_string(event)?;
        line.push('\n');
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()))
            .with_context(|| format!("cannot append to the event history {}", path.display()))
    }

    /// Every event, oldest first; a damaged line is skipped rather than hiding the rest.
    pub fn events(&self) -> anyhow::Result<Vec<Event>> {
        let path = self.events_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }

    fn ensure_dir(&self) -> anyhow::Result<()> {
        fs::create_dir_all(&self.dir).with_context(|| {
            format!(
                "cannot create the state directory {} (set HA_SETUP_STATE_DIR to put it elsewhere)",
                self.dir.display()
            )
        })
    }
}

/// Writes `contents` to `temp`, fsyncs it, renames it to `path`, and fsyncs the directory
/// so the rename itself survives a crash.
fn write_durably(temp: &Path, path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(temp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::rename(temp, path)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_and_events_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("pair"));
        assert_eq!(store.journal("init").unwrap(), None);
        assert!(store.events().unwrap().is_empty());
        let journal = Journal {
            operation: "init".into(),
            started_at: Some(Timestamp::UNIX_EPOCH),
            finished: vec!["preflight".into()],
            failed: Some("transfer".into()),
            complete: false,
        };
        store.save_journal(&journal).unwrap();
        assert_eq!(store.journal("init").unwrap(), Some(journal));
        let event = Event {
            at: Timestamp::UNIX_EPOCH,
            operation: "init".into(),
            step: "transfer".into(),
            host: "primary,secondary".into(),
            result: "failed".into(),
            detail: "cut off".into(),
        };
        store.record(&event).unwrap();
        store.record(&event).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("pair/events.jsonl"))
            .unwrap()
            .write_all(b"{not json\n")
            .unwrap();
        assert_eq!(store.events().unwrap(), vec![event.clone(), event]);
    }

    #[test]
    fn the_journal_is_fsynced_before_its_rename_and_the_directory_after() {
        // Observed from outside: strace lists the calls in order. Skipped where strace is
        // missing or not allowed to trace.
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace");
        let store_dir = dir.path().join("state");
        let ran = std::process::Command::new("strace")
            .args([
                "-f",
                "-y",
                "-e",
                "trace=fsync,rename,renameat,renameat2",
                "-o",
            ])
            .arg(&trace)
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "journal::tests::saves_a_journal_for_the_durability_test",
                "--nocapture",
                "--include-ignored",
            ])
            .env("HA_TEST_JOURNAL_DIR", &store_dir)
            .output();
        let Ok(ran) = ran else { return };
        if !ran.status.success() || !trace.exists() {
            return;
        }
        let text = std::fs::read_to_string(&trace).unwrap();
        let journal = store_dir.join("init.journal.json");
        let at = |call: &str, needle: &str| {
            text.lines()
                .position(|line| line.contains(call) && line.contains(needle))
                .unwrap_or_else(|| panic!("no {call} … {needle} in:\n{text}"))
        };
        let file_synced = at("fsync(", &format!("<{}.tmp>)", journal.display()));
        let renamed = at("rename", &format!("\"{}\"", journal.display()));
        let dir_synced = at("fsync(", &format!("<{}>)", store_dir.display()));
        assert!(file_synced < renamed && renamed < dir_synced, "{text}");
    }

    /// Run by the test above in a process of its own, under strace.
    #[test]
    #[ignore = "run by the_journal_is_fsynced_before_its_rename_and_the_directory_after"]
    fn saves_a_journal_for_the_durability_test() {
        let Some(dir) = std::env::var_os("HA_TEST_JOURNAL_DIR") else {
            return;
        };
        let store = Store::open(PathBuf::from(dir));
        store
            .save_journal(&Journal {
                operation: "init".into(),
                ..Journal::default()
            })
            .unwrap();
    }

    #[test]
    fn pair_names_are_file_safe() {
        assert_eq!(file_safe("db1.example.com"), "db1.example.com");
        assert_eq!(file_safe("a/b:c"), "a-b-c");
    }
}
