//! package, transfer, unpack: each replica that needs it gets a consistent copy of the
//! primary's data. package takes one mariadb-backup snapshot into a work directory on the
//! primary; transfer streams it as a bundle (ha-setup's own `bundle pack` there, `bundle
//! unpack` on the replica, this machine relaying) into a staging directory beside each
//! replica's datadir, every file checked against the manifest; unpack prepares the copy, moves the
//! old datadir aside and puts the copy in its place. Each step is recognisable on the hosts
//! afterwards, so an interrupted run resumes at the right one.

use std::io::Read;
use std::sync::OnceLock;

use anyhow::{Context, bail};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{facts, layout};
use crate::bundle::{self, Manifest};
use crate::config::Node;
use crate::host::{Cmd, FileMode, Host, HostExt, quote};
use crate::node::NodeName;
use crate::plan::{Action, Ctx, Input, Step, Verdict};
use crate::service::{self, Verb};

/// Beside a work directory, marks its snapshot finished (outside it, so it is not packed).
fn snapshot_marker(dir: &str) -> String {
    format!("{dir}.complete")
}

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

fn snapshot_ready(cx: &mut Ctx<'_>) -> anyhow::Result<bool> {
    let marker = snapshot_marker(layout::WORK_DIR);
    Ok(cx
        .source()
        .run(&Cmd::new(format!("test -f {}", quote(&marker))).as_root())?
        .success())
}

fn target_datadir(cx: &Ctx<'_>, target: &NodeName) -> String {
    layout::datadir(cx.node(target), None)
}

/// This program's SHA-256, to tell whether a host already has the same binary.
fn own_sha256() -> anyhow::Result<&'static str> {
    static SHA: OnceLock<String> = OnceLock::new();
    if let Some(sha) = SHA.get() {
        return Ok(sha);
    }
    let path = std::env::current_exe().context("cannot find this program's binary")?;
    let mut file = std::fs::File::open(&path)
        .with_context(|| format!("cannot read this program's binary {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(SHA.get_or_init(|| hex::encode(hasher.finalize())))
}

/// The action that places this binary on `on`, unless the same bytes are there already.
/// On this machine (`host = "local"`) the running binary itself is used.
pub fn tool_on(
    host: &mut dyn Host,
    node: &Node,
    on: &NodeName,
) -> anyhow::Result<(String, Option<Action>)> {
    let local = std::env::current_exe().context("cannot find this program's binary")?;
    if node.is_local() {
        return Ok((local.to_string_lossy().into_owned(), None));
    }
    let remote = layout::tool_path();
    let there =
        host.run(&Cmd::new(format!("sha256sum -- {} 2>/dev/null", quote(&remote))).as_root())?;
    let same = there.stdout_text().split_whitespace().next() == Some(own_sha256()?);
    let action = (!same).then(|| Action::PlaceTool {
        on: on.clone(),
        local,
        remote: remote.clone(),
    });
    Ok((remote, action))
}

pub struct Package;

impl Step for Package {
    fn name(&self) -> &'static str {
        "package"
    }

    fn purpose(&self) -> &'static str {
        "take a consistent hot snapshot of the primary with mariadb-backup"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        // One snapshot serves every replica that needs a copy: one backup's load on the
        // primary, and one position they all start from.
        if !cx.predicting() {
            let mut waiting = Vec::new();
            for target in needing_copy(cx)? {
                let datadir = target_datadir(cx, &target);
                if incoming(cx.host(&target), &datadir)?.is_none() {
                    waiting.push(target);
                }
            }
            if waiting.is_empty() {
                return Ok(Verdict::Done(
                    "every replica holds its copy of the data, or its bundle".into(),
                ));
            }
            if snapshot_ready(cx)? {
                return Ok(Verdict::Done(format!(
                    "a finished snapshot is waiting in {} on {}",
                    layout::WORK_DIR,
                    cx.roles.source
                )));
            }
        }
        Ok(Verdict::Todo(vec![Action::Run {
            on: cx.roles.source.clone(),
            why: format!(
                "snapshot the data with mariadb-backup into {}",
                layout::WORK_DIR
            ),
            cmd: snapshot(layout::WORK_DIR),
            input: Input::None,
        }]))
    }
}

/// Takes a mariadb-backup snapshot into `dir`, ha-setup's own work directory: one left
/// unfinished by an interrupted run is cleared first. `--user=root` logs in through the
/// socket, like the client.
pub fn snapshot(dir: &str) -> Cmd {
    let work = quote(dir);
    let done = quote(&snapshot_marker(dir));
    Cmd::new(format!(
        "set -e\n\
         rm -rf -- {work} {done}\n\
         mkdir -p -m 0700 -- {work}\n\
         mariadb-backup --backup --user=root --target-dir={work}\n\
         touch -- {done}"
    ))
    .as_root()
}

/// Where `bundle create` takes its snapshot on the primary (removed afterwards).
const CREATE_DIR: &str = "/var/lib/ha-setup/bundle-create";

/// `bundle create`: a snapshot in a work directory of its own, packed by ha-setup on the
/// host into `out`; the directory is removed whatever happens.
pub fn bundle_to(
    host: &mut dyn Host,
    name: &NodeName,
    node: &Node,
    out: &mut (dyn std::io::Write + Send),
    ui: &crate::ui::Ui,
) -> anyhow::Result<()> {
    let server = facts::server(host)?;
    let (tool, place) = tool_on(host, node, name)?;
    if let Some(Action::PlaceTool { local, remote, .. }) = place {
        ui.note(&format!("placing ha-setup on {name} at {remote}"));
        crate::runner::place_tool(host, &local, &remote)?;
    }
    ui.note(&format!(
        "taking a snapshot with mariadb-backup in {CREATE_DIR} on {name}"
    ));
    let result = (|| -> anyhow::Result<()> {
        host.run_ok(&snapshot(CREATE_DIR))?;
        let pack = Cmd::new(format!(
            "exec {} bundle pack --dir {} --engine mariadb --server-version {} --source-host {}",
            quote(&tool),
            quote(CREATE_DIR),
            quote(&server.version_text),
            quote(&node.host)
        ))
        .as_root()
        .bulk();
        let finished = host.exec(&pack, &mut std::io::empty(), out)?;
        if !finished.success() {
            bail!("packing on {name} failed: {}", finished.stderr.trim());
        }
        Ok(())
    })();
    let cleanup = host.run_ok(
        &Cmd::new(format!(
            "rm -rf -- {} {}",
            quote(CREATE_DIR),
            quote(&snapshot_marker(CREATE_DIR))
        ))
        .as_root(),
    );
    if let Err(err) = cleanup {
        ui.warn(&format!("could not remove {CREATE_DIR} on {name}: {err}"));
    }
    result
}

pub struct Transfer;

impl Step for Transfer {
    fn name(&self) -> &'static str {
        "transfer"
    }

    fn purpose(&self) -> &'static str {
        "stream the bundle from the primary to each replica that needs it, every file checked"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
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
        if sending.is_empty() {
            return Ok(Verdict::Done(if arrived.is_empty() {
                "every replica holds its copy of the data".into()
            } else {
                arrived.join("; ")
            }));
        }
        let source = cx.roles.source.clone();
        let mut actions = Vec::new();
        let source_node = cx.node(&source).clone();
        let (source_tool, place) = tool_on(cx.host(&source), &source_node, &source)?;
        actions.extend(place);
        let server = facts::server(cx.host(&source))?;
        let bytes = if cx.predicting() {
            0
        } else {
            facts::used_bytes(cx.host(&source), layout::WORK_DIR)?
        };
        for (target, datadir) in sending {
            let node = cx.node(&target).clone();
            let (target_tool, place) = tool_on(cx.host(&target), &node, &target)?;
            actions.extend(place);
            let incoming = layout::incoming_dir(&datadir);
            actions.push(Action::Run {
                on: target.clone(),
                why: format!("make an empty staging directory {incoming}"),
                cmd: Cmd::new(format!(
                    "set -e\nrm -rf -- {dir}\nmkdir -m 0700 -- {dir}",
                    dir = quote(&incoming)
                ))
                .as_root(),
                input: Input::None,
            });
            actions.push(Action::Relay {
                why: format!(
                    "stream the bundle into {incoming}, each file checked against the manifest"
                ),
                from: source.clone(),
                send: Cmd::new(format!(
                    "exec {} bundle pack --dir {} --engine mariadb --server-version {} --source-host {}",
                    quote(&source_tool),
                    quote(layout::WORK_DIR),
                    quote(&server.version_text),
                    quote(&source_node.host)
                ))
                .as_root()
                .bulk(),
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
        actions.push(Action::Run {
            on: source.clone(),
            why: format!(
                "remove the snapshot {} (every replica that needed it has it now)",
                layout::WORK_DIR
            ),
            cmd: Cmd::new(format!(
                "rm -rf -- {} {}",
                quote(layout::WORK_DIR),
                quote(&snapshot_marker(layout::WORK_DIR))
            ))
            .as_root(),
            input: Input::None,
        });
        Ok(Verdict::Todo(actions))
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

/// Puts the copy in place on one node: prepared, the old datadir moved aside (never
/// deleted), the copy owned by mysql, and a record of what the node now holds.
fn unpack(cx: &mut Ctx<'_>, target: &NodeName) -> anyhow::Result<Vec<Action>> {
    let datadir = target_datadir(cx, target);
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
    let service = layout::service(cx.node(target)).to_owned();
    let installed = facts::survey(cx.host(target))?;
    let (q_incoming, q_datadir, q_aside) = (quote(&incoming), quote(&datadir), quote(&aside));
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
    actions.push(Action::Run {
        on: target.clone(),
        why: "stop MariaDB".into(),
        cmd: stop_and_wait(&service, installed.systemd),
        input: Input::None,
    });
    actions.push(Action::Run {
        on: target.clone(),
        why: format!(
            "move the old data aside to {aside} (kept, not deleted) and put the copy in {datadir}"
        ),
        cmd: Cmd::new(format!(
            "set -e\n\
             if [ -e {q_datadir} ]; then mv -- {q_datadir} {q_aside}; fi\n\
             mv -- {q_incoming} {q_datadir}\n\
             mkdir -p -- {tool_dir}\n\
             mv -f -- {q_datadir}/{manifest} {tool_dir}/seed-manifest.toml\n\
             chown -R mysql:mysql -- {q_datadir}",
            manifest = bundle::UNPACKED_MANIFEST,
            tool_dir = quote(layout::TOOL_DIR),
        ))
        .as_root(),
        input: Input::None,
    });
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
    let contents = match record {
        Some(record) => serde_json::to_string_pretty(&record)?,
        None => "{ the bundle's source, time and GTID position }".into(),
    };
    actions.push(Action::Write {
        on: target.clone(),
        why: "record what the node now holds".into(),
        path: layout::SEED_RECORD.into(),
        contents: Input::Text(contents),
        mode: FileMode::new(0o644),
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
         for i in $(seq 90); do\n\
         \tmariadb-admin --connect-timeout=2 ping >/dev/null 2>&1 && exit 0\n\
         \tsleep 1\n\
         done\n\
         echo 'MariaDB did not answer within 90 seconds of starting; see its error log (journalctl -u mariadb, or /var/log/mysql/error.log)' >&2\nexit 1"
    ))
    .as_root()
}
