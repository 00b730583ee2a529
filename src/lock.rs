//! The cluster lock (SPEC.md: only one operation that changes anything runs against a
//! cluster at a time). It lives on the database hosts themselves, as [`LOCK_PATH`] on
//! each, so two operators' machines exclude each other: the first to create the file on a
//! host holds it there, and a second run is refused (exit 3) naming the holder.
//!
//! A lock whose holder is provably gone (same machine as us, and its process no longer
//! runs) is taken over; anything else is left to the operator, with the command to clear
//! it. The file operations are `lock.sh`, run on the host with its values as arguments.

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::error::Exit;
use crate::host::{Cmd, Host, HostExt, quote};

/// Where the lock lives on every database host.
pub const LOCK_PATH: &str = "/var/lib/ha-setup/lock.json";

/// The file operations on a host: `take`, `replace` (compare-and-swap) and `release`.
const SCRIPT: &str = include_str!("lock.sh");

/// Who holds the lock: written as JSON into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `user@machine`.
    pub owner: String,
    /// The host name of the machine ha-setup runs on.
    pub machine: String,
    /// `/etc/machine-id` of that machine, or its host name when there is none.
    pub machine_id: String,
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (start time in clock ticks after boot): tells the
    /// process from a later one that got the same pid.
    pub pid_start: u64,
    pub started_at: jiff::Timestamp,
    /// The command, such as `recover-promote`.
    pub operation: String,
    /// Random: tells our own lock file from anyone else's.
    pub token: String,
}

impl Holder {
    /// This process, about to run `operation`.
    pub fn me(operation: &str) -> Holder {
        let machine = host_name();
        let machine_id = std::fs::read_to_string("/etc/machine-id")
            .ok()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| machine.clone());
        let pid = std::process::id();
        let now = jiff::Timestamp::now();
        Holder {
            owner: format!("{}@{machine}", user_name()),
            machine,
            machine_id,
            pid,
            pid_start: process_start(pid).unwrap_or(0),
            started_at: jiff::Timestamp::from_second(now.as_second()).unwrap_or(now),
            operation: operation.to_owned(),
            token: format!("{:032x}", rand::random::<u128>()),
        }
    }

    /// `root@opbox (pid 4242, recover-promote since 2026-11-28 17:40:01 UTC)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (pid {}, {} since {})",
            self.owner,
            self.pid,
            self.operation,
            self.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        )
    }

    /// The file's content: one line of JSON.
    fn to_file(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec(self).expect("a holder always serialises");
        json.push(b'\n');
        json
    }
}

/// The lock, held on `nodes`.
#[derive(Debug, Clone)]
pub struct Held {
    pub holder: Holder,
    /// The nodes where we hold it, in the order taken.
    pub nodes: Vec<String>,
    /// Stale locks we took over, one line each, to tell the operator.
    pub took_over: Vec<String>,
}

/// Takes the lock on every given host, in the order given (the caller sorts by node name
/// so two runs contend on the same first host). Hosts given as (node name, host).
///
/// Refused (exit 3) when another run holds it anywhere; an error reaching a host is an
/// error. Either way, what this call took is released first.
pub fn take(hosts: &mut [(&str, &mut dyn Host)], operation: &str) -> anyhow::Result<Held> {
    take_with(hosts, &Site::real(), Holder::me(operation), &process_start)
}

/// Releases it where we hold it (only if the file there still has our token); errors are
/// warnings, never fatal.
pub fn release(hosts: &mut [(&str, &mut dyn Host)], held: &Held) {
    release_with(hosts, &Site::real(), &held.holder, &held.nodes);
}

/// Where the lock file is on a node, and whether reaching it needs root: fixed in
/// production, a temporary directory in tests.
struct Site<'a> {
    path: &'a dyn Fn(&str) -> String,
    as_root: bool,
}

impl Site<'_> {
    fn real() -> Site<'static> {
        fn fixed(_node: &str) -> String {
            LOCK_PATH.to_owned()
        }
        Site {
            path: &fixed,
            as_root: true,
        }
    }

    /// `lock.sh ACTION PATH ARG…`, the values as arguments of `sh -c`.
    fn cmd(&self, action: &str, node: &str, args: &[&str]) -> Cmd {
        let mut script = format!(
            "sh -c {} sh {} {}",
            quote(SCRIPT),
            quote(action),
            quote(&(self.path)(node))
        );
        for arg in args {
            script.push(' ');
            script.push_str(&quote(arg));
        }
        // The summary (logs, errors) shows this instead of the script's first line.
        let script = format!("# ha-setup lock: {action}\n{script}");
        let cmd = Cmd::new(script);
        if self.as_root { cmd.as_root() } else { cmd }
    }
}

/// What `lock.sh take` found.
enum Found {
    Taken,
    /// The file's content, and the sha256 of its bytes (for the compare-and-swap).
    Held {
        content: String,
        sha256: String,
    },
    Damaged(String),
}

fn take_with(
    hosts: &mut [(&str, &mut dyn Host)],
    site: &Site<'_>,
    me: Holder,
    alive: &dyn Fn(u32) -> Option<u64>,
) -> anyhow::Result<Held> {
    let all: Vec<String> = hosts.iter().map(|(node, _)| (*node).to_owned()).collect();
    let mut held = Held {
        holder: me,
        nodes: Vec::new(),
        took_over: Vec::new(),
    };
    for index in 0..hosts.len() {
        let (node, host) = &mut hosts[index];
        let node = *node;
        match take_one(&mut **host, node, &all, site, &held.holder, alive) {
            Ok(took_over) => {
                held.nodes.push(node.to_owned());
                held.took_over.extend(took_over);
            }
            Err(err) => {
                release_with(&mut hosts[..index], site, &held.holder, &held.nodes);
                return Err(err);
            }
        }
    }
    Ok(held)
}

/// Takes the lock on one node; returns the take-over line, if it was a take-over.
fn take_one(
    host: &mut dyn Host,
    node: &str,
    all: &[String],
    site: &Site<'_>,
    me: &Holder,
    alive: &dyn Fn(u32) -> Option<u64>,
) -> anyhow::Result<Option<String>> {
    let path = (site.path)(node);
    let content = me.to_file();
    // A release or take-over between our steps changes what we find: look again.
    for _ in 0..5 {
        let found = run_take(host, node, site, &content)
            .with_context(|| format!("could not take the lock ({path}) on {node}"))?;
        let (stale, stale_sha256) = match found {
            Found::Taken => return Ok(None),
            Found::Damaged(why) => return Err(damaged(node, &path, &why).into()),
            Found::Held { content, sha256 } => (content, sha256),
        };
        let holder: Holder = match serde_json::from_str(&stale) {
            Ok(holder) => holder,
            Err(err) => return Err(damaged(node, &path, &err.to_string()).into()),
        };
        if holder.token == me.token {
            return Ok(None);
        }
        if !gone(&holder, me, alive) {
            return Err(refused(node, all, &path, &holder, me, alive).into());
        }
        let answer = host
            .run_ok_with_input(&site.cmd("replace", node, &[&stale_sha256]), &content)
            .with_context(|| format!("could not take over the lock ({path}) on {node}"))?;
        match answer.lines().next() {
            Some("replaced") => {
                let why = match alive(holder.pid) {
                    Some(_) => "that process is gone (its pid now belongs to another one)",
                    None => "that process is gone",
                };
                return Ok(Some(format!(
                    "took over the lock on {node} from {}: {why}",
                    holder.describe()
                )));
            }
            Some("changed") => continue,
            _ => anyhow::bail!(
                "could not take over the lock ({path}) on {node}: unexpected answer {answer:?}"
            ),
        }
    }
    anyhow::bail!(
        "could not take the lock ({path}) on {node}: it kept changing under us. Another ha-setup run is starting at the same time; run again in a moment."
    )
}

fn run_take(
    host: &mut dyn Host,
    node: &str,
    site: &Site<'_>,
    content: &[u8],
) -> anyhow::Result<Found> {
    let out = host.run_ok_with_input(&site.cmd("take", node, &[]), content)?;
    let (answer, rest) = out.split_once('\n').unwrap_or((&out, ""));
    match answer.split_once(' ') {
        _ if answer == "taken" => Ok(Found::Taken),
        _ if answer == "damaged" => Ok(Found::Damaged(rest.trim().to_owned())),
        Some(("held", sha256)) if sha256.len() == 64 => Ok(Found::Held {
            content: rest.to_owned(),
            sha256: sha256.to_owned(),
        }),
        _ => anyhow::bail!("unexpected answer {out:?}"),
    }
}

fn release_with(
    hosts: &mut [(&str, &mut dyn Host)],
    site: &Site<'_>,
    me: &Holder,
    nodes: &[String],
) {
    for (node, host) in hosts.iter_mut().rev() {
        let node = *node;
        if !nodes.iter().any(|held| held == node) {
            continue;
        }
        let path = (site.path)(node);
        match host.run_ok(&site.cmd("release", node, &[&me.token])) {
            Ok(answer) => match answer.lines().next() {
                Some("released") => tracing::debug!("released the lock on {node}"),
                Some("absent") => {
                    tracing::warn!("the lock on {node} ({path}) was already gone when released")
                }
                Some("not-ours") => tracing::warn!(
                    "the lock on {node} ({path}) no longer names this run, so it was left as is"
                ),
                _ => tracing::warn!(
                    "releasing the lock on {node} ({path}): unexpected answer {answer:?}"
                ),
            },
            Err(err) => tracing::warn!(
                "could not release the lock on {node}: {err}. Remove {path} there once this run has ended (`sudo rm {}`).",
                quote(&path)
            ),
        }
    }
}

/// Whether the holder is provably gone: it ran on this very machine and its process no
/// longer runs (or its pid now belongs to a later process). `alive` gives a running pid's
/// start time. A holder on another machine is never judged from here.
fn gone(holder: &Holder, me: &Holder, alive: impl Fn(u32) -> Option<u64>) -> bool {
    if !same_machine(holder, me) {
        return false;
    }
    match alive(holder.pid) {
        None => true,
        Some(start) => start != holder.pid_start,
    }
}

/// Whether the holder ran on this machine. The host name too: containers may share a
/// machine-id but not their pids.
fn same_machine(holder: &Holder, me: &Holder) -> bool {
    !holder.machine_id.is_empty()
        && holder.machine_id == me.machine_id
        && holder.machine == me.machine
}

fn refused(
    node: &str,
    all: &[String],
    path: &str,
    holder: &Holder,
    me: &Holder,
    alive: &dyn Fn(u32) -> Option<u64>,
) -> Exit {
    let what = if same_machine(holder, me) && alive(holder.pid).is_some() {
        format!(
            "That run is still going on this machine (pid {}): wait for it to end, then run again.",
            holder.pid
        )
    } else {
        let path = quote(path);
        format!(
            "Wait for that run to end, then run again. If you know it is dead ({} is down, or the run was killed), remove its lock where it is left, on {}: `sudo cat {path}` there shows who holds it, and `sudo rm {path}` removes it. Then run again.",
            holder.machine,
            all.join(", ")
        )
    };
    Exit::refused(format!(
        "another operation holds the cluster lock: {}, found in {path} on {node}. Only one operation that changes anything runs at a time. {what}",
        holder.describe()
    ))
}

fn damaged(node: &str, path: &str, why: &str) -> Exit {
    Exit::refused(format!(
        "the lock file {path} on {node} is damaged ({why}), so it is not known who holds the lock; it was left as is. Look at it with `sudo cat {quoted}` on {node}; if no other ha-setup run is going on, remove it with `sudo rm {quoted}` and run again.",
        quoted = quote(path)
    ))
}

/// Field 22 of `/proc/<pid>/stat`, the process's start time; None when no such process
/// runs (a zombie has ended too).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // fields[0] is field 3 (the state).
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
    // or we cut at its end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() {
        "unknown-host".to_owned()
    } else {
        name
    }
}

/// The effective user's name, as the password database has it.
fn user_name() -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value to be overwritten.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, the buffer for its length.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        let name = name.to_string_lossy();
        if !name.is_empty() {
            return name.into_owned();
        }
    }
    std::env::var("USER").unwrap_or_else(|_| format!("uid{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ExitCode, exit_code};
    use crate::host::LocalHost;
    use sha2::{Digest, Sha256};

    fn holder() -> Holder {
        Holder {
            owner: "root@opbox".into(),
            machine: "opbox".into(),
            machine_id: "0123456789abcdef0123456789abcdef".into(),
            pid: 4242,
            pid_start: 987_654,
            started_at: "2026-11-28T17:40:01Z".parse().unwrap(),
            operation: "recover-promote".into(),
            token: "00112233445566778899aabbccddeeff".into(),
        }
    }

    #[test]
    fn holder_json_round_trips() {
        let holder = holder();
        let file = holder.to_file();
        assert_eq!(file.last(), Some(&b'\n'));
        assert_eq!(file.iter().filter(|&&b| b == b'\n').count(), 1);
        let text = String::from_utf8(file.clone()).unwrap();
        // release (lock.sh) finds the token in exactly this form.
        assert!(
            text.contains(r#""token":"00112233445566778899aabbccddeeff""#),
            "{text}"
        );
        assert!(
            text.contains(r#""started_at":"2026-11-28T17:40:01Z""#),
            "{text}"
        );
        let back: Holder = serde_json::from_slice(&file).unwrap();
        assert_eq!(back, holder);
    }

    #[test]
    fn describe_names_owner_pid_operation_and_time() {
        assert_eq!(
            holder().describe(),
            "root@opbox (pid 4242, recover-promote since 2026-11-28 17:40:01 UTC)"
        );
    }

    #[test]
    fn me_is_this_process() {
        let me = Holder::me("init");
        assert_eq!(me.pid, std::process::id());
        assert_eq!(Some(me.pid_start), process_start(me.pid));
        assert!(me.pid_start > 0);
        assert!(
            me.owner.ends_with(&format!("@{}", me.machine)),
            "{}",
            me.owner
        );
        assert!(!me.machine_id.is_empty());
        assert_eq!(me.token.len(), 32);
        assert_ne!(me.token, Holder::me("init").token);
        assert_eq!(me.operation, "init");
    }

    #[test]
    fn gone_only_when_provably_gone_here() {
        let me = Holder {
            pid: 1,
            token: "ff".into(),
            ..holder()
        };
        let other = holder();
        // Same machine, the process is no longer there.
        assert!(gone(&other, &me, |_| None));
        // Same machine, the pid now belongs to a later process.
        assert!(gone(&other, &me, |_| Some(other.pid_start + 1)));
        // Same machine, the very process still runs.
        assert!(!gone(&other, &me, |_| Some(other.pid_start)));
        // Another machine: never judged from here, whatever our pids say.
        let elsewhere = Holder {
            machine_id: "fedcba9876543210fedcba9876543210".into(),
            machine: "otherbox".into(),
            ..holder()
        };
        assert!(!gone(&elsewhere, &me, |_| None));
        // Same machine-id but another host name (a container): not judged either.
        let container = Holder {
            machine: "container".into(),
            ..holder()
        };
        assert!(!gone(&container, &me, |_| None));
        // An empty machine-id proves nothing.
        let blank = Holder {
            machine_id: String::new(),
            ..holder()
        };
        let blank_me = Holder {
            machine_id: String::new(),
            ..me.clone()
        };
        assert!(!gone(&blank, &blank_me, |_| None));
    }

    #[test]
    fn process_start_reads_field_22() {
        assert!(process_start(std::process::id()).is_some());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(process_start(pid), None);
    }

    /// A lock directory of its own, reached as the test's user on this machine.
    struct Lab {
        dir: tempfile::TempDir,
    }

    impl Lab {
        fn new() -> Lab {
            Lab {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        /// Each node's lock in its own directory ("it's" for the quoting), as if on its
        /// own host.
        fn path(&self, node: &str) -> String {
            self.dir
                .path()
                .join(format!("it's {node}"))
                .join("lock.json")
                .to_str()
                .unwrap()
                .to_owned()
        }

        fn take(&self, nodes: &[&str], me: Holder) -> anyhow::Result<Held> {
            let path = |node: &str| self.path(node);
            let site = Site {
                path: &path,
                as_root: false,
            };
            let mut locals: Vec<LocalHost> = nodes.iter().map(|n| LocalHost::new(n)).collect();
            let mut hosts: Vec<(&str, &mut dyn Host)> = nodes
                .iter()
                .copied()
                .zip(locals.iter_mut().map(|h| h as &mut dyn Host))
                .collect();
            take_with(&mut hosts, &site, me, &process_start)
        }

        fn release(&self, held: &Held) {
            let path = |node: &str| self.path(node);
            let site = Site {
                path: &path,
                as_root: false,
            };
            let nodes: Vec<&str> = held.nodes.iter().map(String::as_str).collect();
            let mut locals: Vec<LocalHost> = nodes.iter().map(|n| LocalHost::new(n)).collect();
            let mut hosts: Vec<(&str, &mut dyn Host)> = nodes
                .iter()
                .copied()
                .zip(locals.iter_mut().map(|h| h as &mut dyn Host))
                .collect();
            release_with(&mut hosts, &site, &held.holder, &held.nodes);
        }

        fn read(&self, node: &str) -> Option<Holder> {
            let bytes = std::fs::read(self.path(node)).ok()?;
            Some(serde_json::from_slice(&bytes).unwrap())
        }

        /// Only the lock file is left in the node's directory: no scratch files.
        fn entries(&self, node: &str) -> Vec<String> {
            let dir = std::path::Path::new(&self.path(node))
                .parent()
                .unwrap()
                .to_owned();
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
        }
    }

    fn other_machine(operation: &str) -> Holder {
        Holder {
            owner: "alice@otherbox".into(),
            machine: "otherbox".into(),
            machine_id: "fedcba9876543210fedcba9876543210".into(),
            ..Holder::me(operation)
        }
    }

    #[test]
    fn take_refuse_release_on_real_files() {
        let lab = Lab::new();
        let held = lab.take(&["db1", "db2"], Holder::me("init")).unwrap();
        assert_eq!(held.nodes, ["db1", "db2"]);
        assert!(held.took_over.is_empty());
        assert_eq!(lab.read("db1").unwrap(), held.holder);
        assert_eq!(lab.read("db2").unwrap(), held.holder);
        assert_eq!(lab.entries("db1"), ["lock.json"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&lab.path("db1")), 0o600);
        let dir = std::path::Path::new(&lab.path("db1"))
            .parent()
            .unwrap()
            .to_owned();
        assert_eq!(mode(dir.to_str().unwrap()), 0o700);

        // Taking it again in the same run is a no-op.
        lab.take(&["db1"], held.holder.clone()).unwrap();

        // A run from another machine is refused, exit 3, naming who and what to do.
        let err = lab
            .take(&["db1", "db2"], other_machine("sync"))
            .unwrap_err();
        assert_eq!(exit_code(&err), ExitCode::Refused);
        let text = err.to_string();
        assert!(text.contains(&held.holder.describe()), "{text}");
        assert!(text.contains("on db1."), "{text}");
        let rm = format!("`sudo rm {}`", quote(&lab.path("db1")));
        assert!(text.contains(&rm), "{text}");
        assert!(text.contains("on db1, db2:"), "{text}");
        assert_eq!(lab.read("db1").unwrap(), held.holder);

        // Release removes it where it is ours.
        lab.release(&held);
        assert!(lab.read("db1").is_none());
        assert!(lab.read("db2").is_none());
        assert!(lab.entries("db1").is_empty());

        // Now the other machine takes it; our release no longer touches its file.
        let theirs = lab.take(&["db1", "db2"], other_machine("sync")).unwrap();
        lab.release(&held);
        assert_eq!(lab.read("db1").unwrap(), theirs.holder);
        lab.release(&theirs);
        assert!(lab.read("db1").is_none());
    }

    #[test]
    fn a_refusal_on_a_later_node_releases_the_earlier_ones() {
        let lab = Lab::new();
        let theirs = lab.take(&["db2"], other_machine("sync")).unwrap();
        let err = lab.take(&["db1", "db2"], Holder::me("init")).unwrap_err();
        assert_eq!(exit_code(&err), ExitCode::Refused);
        assert!(err.to_string().contains("on db2"), "{err}");
        assert!(lab.read("db1").is_none(), "db1 was left locked");
        assert_eq!(lab.read("db2").unwrap(), theirs.holder);
    }

    #[test]
    fn a_live_run_on_this_machine_is_refused() {
        let lab = Lab::new();
        let first = lab.take(&["db1"], Holder::me("init")).unwrap();
        // Another run here: same machine, and the holder (this test process) runs.
        let err = lab.take(&["db1"], Holder::me("sync")).unwrap_err();
        assert_eq!(exit_code(&err), ExitCode::Refused);
        assert!(
            err.to_string().contains("still going on this machine"),
            "{err}"
        );
        assert_eq!(lab.read("db1").unwrap(), first.holder);
    }

    #[test]
    fn a_dead_run_on_this_machine_is_taken_over() {
        let lab = Lab::new();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = Holder {
            pid: dead_pid,
            pid_start: 12345,
            operation: "init".into(),
            ..Holder::me("init")
        };
        lab.take(&["db1"], dead.clone()).unwrap();
        // And one whose pid now belongs to another process (this one).
        let reused = Holder {
            pid_start: Holder::me("x").pid_start + 1,
            ..Holder::me("sync")
        };
        lab.take(&["db2"], reused.clone()).unwrap();

        let held = lab
            .take(&["db1", "db2"], Holder::me("recover-promote"))
            .unwrap();
        assert_eq!(held.nodes, ["db1", "db2"]);
        assert_eq!(held.took_over.len(), 2, "{:?}", held.took_over);
        assert_eq!(
            held.took_over[0],
            format!(
                "took over the lock on db1 from {}: that process is gone",
                dead.describe()
            )
        );
        assert!(held.took_over[1].contains("on db2"), "{:?}", held.took_over);
        assert!(
            held.took_over[1].contains("another one"),
            "{:?}",
            held.took_over
        );
        assert_eq!(lab.read("db1").unwrap(), held.holder);
        assert_eq!(lab.read("db2").unwrap(), held.holder);
        assert_eq!(lab.entries("db1"), ["lock.json"]);
        lab.release(&held);
        assert!(lab.read("db1").is_none());
    }

    #[test]
    fn a_damaged_lock_file_is_refused_and_kept() {
        let lab = Lab::new();
        let path = lab.path("db1");
        std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(&path, b"{\"owner\": tru").unwrap();
        let err = lab.take(&["db1"], Holder::me("init")).unwrap_err();
        assert_eq!(exit_code(&err), ExitCode::Refused);
        let text = err.to_string();
        assert!(text.contains("damaged"), "{text}");
        assert!(text.contains(&path), "{text}");
        assert!(text.contains("sudo cat"), "{text}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"owner\": tru");

        // A directory in its place is damaged too, not a place to link into.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let err = lab.take(&["db1"], Holder::me("init")).unwrap_err();
        assert_eq!(exit_code(&err), ExitCode::Refused);
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
    }

    #[test]
    fn the_swap_happens_only_on_the_content_seen() {
        let lab = Lab::new();
        let path = |node: &str| lab.path(node);
        let site = Site {
            path: &path,
            as_root: false,
        };
        let first = lab.take(&["db1"], other_machine("sync")).unwrap();
        let new = Holder::me("init").to_file();
        let mut host = LocalHost::new("db1");
        let stale_hash = hex::encode(Sha256::digest(b"something else"));
        let answer = host
            .run_ok_with_input(&site.cmd("replace", "db1", &[&stale_hash]), &new)
            .unwrap();
        assert_eq!(answer.trim(), "changed");
        assert_eq!(lab.read("db1").unwrap(), first.holder);
        let seen = hex::encode(Sha256::digest(first.holder.to_file()));
        let answer = host
            .run_ok_with_input(&site.cmd("replace", "db1", &[&seen]), &new)
            .unwrap();
        assert_eq!(answer.trim(), "replaced");
        assert_eq!(std::fs::read(lab.path("db1")).unwrap(), new);
    }

    #[test]
    fn concurrent_takers_only_one_wins() {
        let lab = Lab::new();
        let results: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let lab = &lab;
                    scope.spawn(move || {
                        let me = Holder {
                            machine_id: format!("{i:032x}"),
                            ..Holder::me("init")
                        };
                        lab.take(&["db1"], me).is_ok()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|&&won| won).count(), 1, "{results:?}");
    }

    #[test]
    fn an_unreachable_lock_dir_is_an_error_not_a_refusal() {
        let lab = Lab::new();
        let blocker = lab.dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let path = |_: &str| blocker.join("lock.json").to_str().unwrap().to_owned();
        let site = Site {
            path: &path,
            as_root: false,
        };
        let mut host = LocalHost::new("db1");
        let mut hosts: Vec<(&str, &mut dyn Host)> = vec![("db1", &mut host)];
        let err = take_with(&mut hosts, &site, Holder::me("init"), &process_start).unwrap_err();
        assert_eq!(exit_code(&err), ExitCode::Failed);
        let text = format!("{err:#}");
        assert!(text.contains("could not take the lock"), "{text}");
        assert!(text.contains("cannot create"), "{text}");
    }
}
