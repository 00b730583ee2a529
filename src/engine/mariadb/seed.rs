//! transfer, unpack: each replica that needs it gets a consistent copy of the primary's
//! data. transfer streams a mariadb-backup hot backup as a bundle while it is taken
//! (ha-setup's own `bundle stream` on the primary, `bundle unpack` on the replica, this
//! machine relaying), with no copy on the primary's disk, into a staging directory inside
//! each replica's datadir (on the data's own filesystem: see layout.rs), every file checked
//! as it ends; unpack prepares the copy, moves the old data aside and puts the copy in its
//! place, undoing all of it if anything fails once MariaDB is stopped. Each step is
//! recognisable on the hosts afterwards, so an interrupted run resumes at the right one: a
//! complete copy in the staging directory is kept, a partial one is streamed again.

use anyhow::{Context, bail};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{facts, layout};
use crate::bundle::Compress;
use crate::bundle::{self, Manifest};
use crate::config::Node;
use crate::host::{Cmd, Host, HostExt, quote};
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Input, Step, Verdict};
use crate::service::{self, Verb};
pub use crate::tool::tool_on;

/// What a replica holds after unpack, kept at [`layout::SEED_RECORD`] on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRecord {
    pub source_host: String,
    pub server_version: String,
    pub created_at: Timestamp,
    /// The primary's GTID position at the snapshot: replication starts after it.
    pub gtid: String,
    pub datadir: String,
    /// Where the node's previous datadir went (never deleted).
    pub moved_aside: Option<String>,
    pub unpacked_at: Timestamp,
}

/// The seed record of a node, when its datadir holds a copy placed by ha-setup.
pub fn seeded(host: &mut dyn Host) -> anyhow::Result<Option<SeedRecord>> {
    let output = host
        .run(&Cmd::new(format!("cat -- {} 2>/dev/null", quote(layout::SEED_RECORD))).as_root())?;
    if !output.success() {
        return Ok(None);
    }
    let record: SeedRecord = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "{} on {} is damaged; move it aside and run init again",
            layout::SEED_RECORD,
            host.label()
        )
    })?;
    let present = host.run(&Cmd::new(format!("test -d {}", quote(&record.datadir))).as_root())?;
    Ok(present.success().then_some(record))
}

/// Why a target needs no new copy of the source's data, if it needs none: it holds the
/// copy ha-setup placed, or it replicates from the source already (an init after a
/// switchover repairs such a replica; it never re-seeds it). `rebuild` asks for a fresh
/// copy whatever the target holds.
pub fn has_copy(cx: &mut Ctx<'_>, target: &NodeName) -> anyhow::Result<Option<String>> {
    if let Some(record) = seeded(cx.host(target))? {
        return Ok(Some(format!(
            "{target} holds the snapshot of {} taken at {}",
            record.source_host, record.created_at
        )));
    }
    let source = cx.roles.source.clone();
    if !cx.roles.fresh_copy
        && cx
            .observe(target)
            .upstream()
            .and_then(|up| up.node.as_ref())
            == Some(&source)
    {
        return Ok(Some(format!("{target} replicates from {source} already")));
    }
    Ok(None)
}

/// The targets that need a copy of the source's data.
fn needing_copy(cx: &mut Ctx<'_>) -> anyhow::Result<Vec<NodeName>> {
    let mut needing = Vec::new();
    for target in cx.roles.targets.clone() {
        // In a dry run after a pending step (rebuild setting a seed aside), what the
        // target holds now says nothing of what it will hold.
        if cx.predicting() || has_copy(cx, &target)?.is_none() {
            needing.push(target);
        }
    }
    Ok(needing)
}

/// The manifest of a complete, verified bundle in a node's staging directory.
fn incoming(host: &mut dyn Host, datadir: &str) -> anyhow::Result<Option<Manifest>> {
    let path = format!(
        "{}/{}",
        layout::incoming_dir(datadir),
        bundle::UNPACKED_MANIFEST
    );
    let output = host.run(&Cmd::new(format!("cat -- {} 2>/dev/null", quote(&path))).as_root())?;
    if !output.success() {
        return Ok(None);
    }
    Manifest::from_toml(&output.stdout_text())
        .map(Some)
        .with_context(|| format!("{path} on {} is damaged", host.label()))
}

fn target_datadir(cx: &mut Ctx<'_>, target: &NodeName) -> String {
    layout::paths(cx, target).datadir.value
}

/// The command that streams a hot backup of `node`'s server as a bundle on its stdout.
fn stream_command(tool: &str, version: &str, node: &Node, compress: Compress) -> Cmd {
    Cmd::new(format!(
        "exec {} bundle stream --engine mariadb --server-version {} --source-host {} --work {} --compress {}",
        quote(tool),
        quote(version),
        quote(&node.host),
        quote(layout::STREAM_DIR),
        compress.name()
    ))
    .as_root()
    .bulk()
}

/// `bundle create`: a hot backup streamed by ha-setup on the host into `out`.
pub fn bundle_to(
    host: &mut dyn Host,
    name: &NodeName,
    node: &Node,
    out: &mut (dyn std::io::Write + Send),
    compress: Compress,
    ui: &crate::ui::Ui,
) -> anyhow::Result<()> {
    let server = facts::server(host)?;
    let (tool, place) = tool_on(host, node, name)?;
    if let Some(Action::PlaceTool { local, remote, .. }) = place {
        ui.note(&format!("placing ha-setup on {name} at {remote}"));
        crate::runner::place_tool(host, &local, &remote)?;
    }
    ui.note(&format!(
        "streaming a hot backup of {name} with mariadb-backup"
    ));
    let finished = host.exec(
        &stream_command(&tool, &server.version_text, node, compress),
        &mut std::io::empty(),
        out,
    )?;
    if !finished.success() {
        bail!("the backup on {name} failed: {}", finished.stderr.trim());
    }
    Ok(())
}

pub struct Transfer;

impl Step for Transfer {
    fn name(&self) -> &'static str {
        "transfer"
    }

    fn purpose(&self) -> &'static str {
        "stream a hot backup of the primary into each replica that needs it, every file checked"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let mut everyone = vec![cx.roles.source.clone()];
        everyone.extend(cx.roles.targets.iter().cloned());
        let leftovers = if cx.predicting() {
            Vec::new()
        } else {
            crate::route::leftovers(cx, &everyone)?
        };
        let mut sending = Vec::new();
        let mut arrived = Vec::new();
        for target in needing_copy(cx)? {
            let datadir = target_datadir(cx, &target);
            match incoming(cx.host(&target), &datadir)? {
                Some(manifest) if !cx.predicting() => arrived.push(format!(
                    "the bundle ({} files, {} bytes) is on {target} already, checked",
                    manifest.files.len(),
                    manifest.total_bytes()
                )),
                _ => sending.push((target, datadir)),
            }
        }
        if sending.is_empty() && !leftovers.is_empty() {
            return Ok(Verdict::Todo(leftovers));
        }
        if sending.is_empty() {
            return Ok(Verdict::Done(if arrived.is_empty() {
                "every replica holds its copy of the data".into()
            } else {
                arrived.join("; ")
            }));
        }
        let source = cx.roles.source.clone();
        let mut actions = leftovers;
        let source_node = cx.node(&source).clone();
        let (source_tool, place) = tool_on(cx.host(&source), &source_node, &source)?;
        actions.extend(place);
        let server = facts::server(cx.host(&source))?;
        let old = quote(layout::OLD_SNAPSHOT_DIR);
        let old_snapshot = cx
            .host(&source)
            .run(&Cmd::new(format!("test -e {old} || test -e {old}.complete")).as_root())?
            .success();
        if old_snapshot {
            actions.push(Action::Run {
                on: source.clone(),
                why: format!(
                    "remove the full snapshot an earlier ha-setup left in {}",
                    layout::OLD_SNAPSHOT_DIR
                ),
                cmd: Cmd::new(format!("rm -rf -- {old} {old}.complete")).as_root(),
                input: Input::None,
            });
        }
        // For the progress bar: the backup is about as large as the data.
        let bytes = if cx.predicting() {
            0
        } else {
            facts::backup_bytes(cx.host(&source), &server)?
        };
        // One backup per replica, one after the other: each starts from its own position,
        // which its manifest records.
        for (target, datadir) in sending {
            let node = cx.node(&target).clone();
            let (target_tool, place) = tool_on(cx.host(&target), &node, &target)?;
            actions.extend(place);
            let incoming = layout::incoming_dir(&datadir);
            actions.push(staging(&target, &datadir));
            actions.push(Action::Relay {
                why: format!(
                    "stream a hot backup (mariadb-backup) into {incoming}, each file checked as it ends"
                ),
                from: source.clone(),
                send: stream_command(
                    &source_tool,
                    &server.version_text,
                    &source_node,
                    cx.config.transfer.compress,
                ),
                to: target.clone(),
                receive: Cmd::new(format!(
                    "exec {} bundle unpack --into {}",
                    quote(&target_tool),
                    quote(&incoming)
                ))
                .as_root()
                .bulk(),
                bytes,
            });
        }
        Ok(Verdict::Todo(actions))
    }
}

/// Makes an empty staging directory in a node's datadir (the datadir too, if a fresh
/// install has none yet): only root may enter it, so the server never sees the copy early.
pub fn staging(on: &NodeName, datadir: &str) -> Action {
    let incoming = layout::incoming_dir(datadir);
    Action::Run {
        on: on.clone(),
        why: format!("make an empty staging directory {incoming}"),
        cmd: Cmd::new(format!(
            "set -e\nmkdir -p -- {datadir}\nrm -rf -- {dir}\nmkdir -m 0700 -- {dir}",
            datadir = quote(datadir),
            dir = quote(&incoming)
        ))
        .as_root(),
        input: Input::None,
    }
}

pub struct Unpack;

impl Step for Unpack {
    fn name(&self) -> &'static str {
        "unpack"
    }

    fn purpose(&self) -> &'static str {
        "prepare the copy and put it in place of the replica's data (old data moved aside)"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let mut actions = Vec::new();
        let mut done = Vec::new();
        for target in cx.roles.targets.clone() {
            if !cx.predicting()
                && let Some(why) = has_copy(cx, &target)?
            {
                done.push(why);
                continue;
            }
            actions.extend(unpack(cx, &target)?);
        }
        Ok(if actions.is_empty() {
            Verdict::Done(done.join("; "))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// The script that stops MariaDB, swaps the old data for the copy inside the datadir and
/// writes the seed record, or undoes it all and starts MariaDB again.
const PUT_IN_PLACE: &str = include_str!("scripts/put-in-place.sh");

/// Puts the copy in place on one node: prepared, the old data moved aside (never deleted),
/// the copy owned by mysql, and a record of what the node now holds. All in one action on
/// the host, so that a failure once MariaDB is stopped is undone there, connection or not.
fn unpack(cx: &mut Ctx<'_>, target: &NodeName) -> anyhow::Result<Vec<Action>> {
    let paths = layout::paths(cx, target);
    let datadir = paths.datadir.value.clone();
    let manifest = if cx.predicting() {
        None
    } else {
        match incoming(cx.host(target), &datadir)? {
            Some(manifest) => Some(manifest),
            None if cx.dry_run => None,
            None => bail!(
                "the bundle is not in {} on {target}; run the operation again to resend it",
                layout::incoming_dir(&datadir)
            ),
        }
    };
    let incoming = layout::incoming_dir(&datadir);
    let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let aside = layout::moved_aside_dir(&datadir, &stamp);
    let service = paths.service.value.clone();
    let installed = facts::survey(cx.host(target))?;
    let q_incoming = quote(&incoming);
    let mut actions = vec![Action::Run {
        on: target.clone(),
        why: "prepare the copy (mariadb-backup --prepare applies the redo log)".into(),
        cmd: Cmd::new(format!(
            "set -e\n\
             grep -q 'full-prepared' {q_incoming}/xtrabackup_checkpoints 2>/dev/null || \
             mariadb-backup --prepare --target-dir={q_incoming}"
        ))
        .as_root(),
        input: Input::None,
    }];
    let record = manifest.map(|m| SeedRecord {
        source_host: m.source_host.clone(),
        server_version: m.server_version.clone(),
        created_at: m.created_at,
        gtid: m
            .position
            .get(super::position::GTID)
            .cloned()
            .unwrap_or_default(),
        datadir: datadir.clone(),
        moved_aside: Some(aside.clone()),
        unpacked_at: Timestamp::now(),
    });
    let record = match record {
        Some(record) => serde_json::to_string_pretty(&record)?,
        None => "{ the bundle's source, time and GTID position }".into(),
    };
    let stop = stop_and_wait(&service, installed.systemd);
    let start = start_and_wait(&service, installed.systemd, Verb::Start);
    let cmd = Cmd::script(
        PUT_IN_PLACE,
        &[
            &datadir,
            &incoming,
            &aside,
            layout::TOOL_DIR,
            bundle::UNPACKED_MANIFEST,
            layout::SEED_RECORD,
            &record,
            "mysql:mysql",
            &stop.script,
            &start.script,
        ],
    )
    .as_root();
    let on = target.clone();
    // A call rather than a plain command, so that where the old data went is printed.
    actions.push(Action::Call {
        on: vec![target.clone()],
        why: format!(
            "stop MariaDB, move its data into {aside} (kept, not deleted), put the copy in \
             {datadir} and record what the node holds; if anything fails once it is stopped, \
             the old data goes back and MariaDB starts again"
        ),
        call: Call::script(on, cmd),
    });
    Ok(actions)
}

/// Stops MariaDB if it answers, and waits until it no longer does. Signals go through the
/// service manager only, never `killall` (other instances may share the machine).
pub fn stop_and_wait(service: &str, systemd: bool) -> Cmd {
    let stop = service::control(service, Verb::Stop, systemd).script;
    Cmd::new(format!(
        "if mariadb-admin --connect-timeout=5 ping >/dev/null 2>&1; then {stop}; fi\n\
         for i in $(seq 60); do\n\
         \tmariadb-admin --connect-timeout=2 ping >/dev/null 2>&1 || exit 0\n\
         \tsleep 1\n\
         done\n\
         echo 'MariaDB still answers 60 seconds after stop' >&2\nexit 1"
    ))
    .as_root()
}

/// Starts (or restarts) MariaDB and waits until it answers.
pub fn start_and_wait(service: &str, systemd: bool, verb: Verb) -> Cmd {
    let start = service::control(service, verb, systemd).script;
    Cmd::new(format!(
        "{start}\n\
         end=$(($(date +%s) + 90))\n\
         while [ \"$(date +%s)\" -lt \"$end\" ]; do\n\
         \tmariadb-admin --connect-timeout=2 ping >/dev/null 2>&1 && exit 0\n\
         \tsleep 0.2\n\
         done\n\
         echo 'MariaDB did not answer within 90 seconds of starting; see its error log (journalctl -u mariadb, or /var/log/mysql/error.log)' >&2\nexit 1"
    ))
    .as_root()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::process::Command;

    use super::PUT_IN_PLACE;

    /// A datadir with old data, an earlier moved-aside copy and a lost+found, and a
    /// complete copy in its staging directory.
    fn host(root: &Path) {
        let datadir = root.join("data");
        fs::create_dir_all(datadir.join("olddb")).unwrap();
        fs::create_dir_all(datadir.join("lost+found")).unwrap();
        fs::create_dir_all(datadir.join(".ha-setup-old/20200101T000000Z")).unwrap();
        fs::write(datadir.join("ibdata1"), "old").unwrap();
        fs::write(datadir.join("olddb/t.frm"), "old").unwrap();
        let incoming = datadir.join(".ha-setup-incoming");
        fs::create_dir_all(incoming.join("app")).unwrap();
        fs::write(incoming.join("ibdata1"), "new").unwrap();
        fs::write(incoming.join("app/t.frm"), "new").unwrap();
        fs::write(incoming.join("ha-setup-manifest.toml"), "manifest").unwrap();
        // `mariadb-admin ping` answers: the server runs.
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("bin/mariadb-admin"), "#!/bin/sh\nexit 0\n").unwrap();
        Command::new("chmod")
            .arg("755")
            .arg(root.join("bin/mariadb-admin"))
            .status()
            .unwrap();
    }

    fn put_in_place(root: &Path, owner: &str) -> std::process::Output {
        let r = root.to_str().unwrap();
        let args = [
            format!("{r}/data"),
            format!("{r}/data/.ha-setup-incoming"),
            format!("{r}/data/.ha-setup-old/20260101T000000Z"),
            format!("{r}/tool"),
            "ha-setup-manifest.toml".to_owned(),
            format!("{r}/tool/seed.json"),
            "{\"gtid\": \"0-1-7\"}".to_owned(),
            owner.to_owned(),
            format!("echo stopped >> {r}/log"),
            format!("echo started >> {r}/log"),
        ];
        Command::new("sh")
            .arg("-c")
            .arg(PUT_IN_PLACE)
            .arg("put-in-place.sh")
            .args(&args)
            .env(
                "PATH",
                format!("{r}/bin:{}", std::env::var("PATH").unwrap_or_default()),
            )
            .output()
            .unwrap()
    }

    fn read(path: impl AsRef<Path>) -> String {
        fs::read_to_string(path).unwrap_or_default()
    }

    fn me() -> String {
        let id = |flag| {
            let out = Command::new("id").arg(flag).output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        format!("{}:{}", id("-u"), id("-g"))
    }

    #[test]
    fn the_copy_goes_in_and_the_old_data_stays_inside_the_datadir() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        host(root);
        let out = put_in_place(root, &me());
        assert!(out.status.success(), "{out:?}");
        let data = root.join("data");
        assert_eq!(read(data.join("ibdata1")), "new");
        assert_eq!(read(data.join("app/t.frm")), "new");
        assert!(!data.join("olddb").exists());
        assert!(data.join("lost+found").is_dir());
        assert!(!data.join(".ha-setup-incoming").exists());
        let aside = data.join(".ha-setup-old/20260101T000000Z");
        assert_eq!(read(aside.join("ibdata1")), "old");
        assert_eq!(read(aside.join("olddb/t.frm")), "old");
        assert!(!aside.join("lost+found").exists());
        assert!(data.join(".ha-setup-old/20200101T000000Z").is_dir());
        assert_eq!(read(root.join("tool/seed-manifest.toml")), "manifest");
        assert_eq!(read(root.join("tool/seed.json")), "{\"gtid\": \"0-1-7\"}\n");
        // Stopped, and left stopped for the next steps to start with their settings.
        assert_eq!(read(root.join("log")), "stopped\n");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(".ha-setup-old/20260101T000000Z (kept, not deleted)"));
    }

    #[test]
    fn a_failure_after_the_stop_puts_everything_back_and_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        host(root);
        // chown fails: the last step before the record.
        let out = put_in_place(root, "no-such-user-ha-setup:no-such-group-ha-setup");
        assert!(!out.status.success(), "{out:?}");
        let data = root.join("data");
        assert_eq!(read(data.join("ibdata1")), "old");
        assert_eq!(read(data.join("olddb/t.frm")), "old");
        assert!(!data.join("app").exists());
        let incoming = data.join(".ha-setup-incoming");
        assert_eq!(read(incoming.join("ibdata1")), "new");
        assert_eq!(read(incoming.join("app/t.frm")), "new");
        assert_eq!(read(incoming.join("ha-setup-manifest.toml")), "manifest");
        assert!(!data.join(".ha-setup-old/20260101T000000Z").exists());
        assert!(data.join(".ha-setup-old/20200101T000000Z").is_dir());
        assert!(!root.join("tool/seed.json").exists());
        assert_eq!(read(root.join("log")), "stopped\nstarted\n");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("giving the copy to"), "{said}");
        assert!(
            said.contains("MariaDB runs on it again, as before"),
            "{said}"
        );
    }

    #[test]
    fn an_incomplete_copy_is_refused_before_anything_stops() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        host(root);
        fs::remove_file(root.join("data/.ha-setup-incoming/ha-setup-manifest.toml")).unwrap();
        let out = put_in_place(root, &me());
        assert!(!out.status.success(), "{out:?}");
        assert_eq!(read(root.join("log")), "");
        assert_eq!(read(root.join("data/ibdata1")), "old");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("MariaDB was not stopped"), "{said}");
    }
}
