//! transfer, unpack: each standby that needs it gets a consistent copy of the primary's
//! data. transfer streams a `pg_basebackup` hot backup as a bundle while it is taken
//! (ha-setup's own `bundle stream` on the primary, `bundle unpack` on the standby), with
//! no copy on the primary's disk, into a staging directory on the standby's data
//! filesystem; unpack stops the standby's server, moves its data aside and puts the copy in
//! its place, undoing all of it if anything fails once the server is stopped.

use anyhow::{Context, bail};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::layout::{self, Cluster};
use super::observe;
use super::position;
use super::service;
use crate::bundle::{self, Manifest};
use crate::host::{Cmd, Host, quote};
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Input, Step, Verdict};
use crate::tool::tool_on;

/// What a standby holds after unpack, kept at [`layout::SEED_RECORD`] on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRecord {
    pub source_host: String,
    pub server_version: String,
    pub created_at: Timestamp,
    pub start_lsn: String,
    pub timeline: String,
    pub system_identifier: String,
    pub datadir: String,
    /// Where the node's previous data directory went (never deleted).
    pub moved_aside: Option<String>,
    pub unpacked_at: Timestamp,
}

pub fn seeded(host: &mut dyn Host) -> anyhow::Result<Option<SeedRecord>> {
    let Some(text) = crate::password::read_optional(host, layout::SEED_RECORD)? else {
        return Ok(None);
    };
    let record: SeedRecord = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} on {} is damaged; move it aside and run init again",
            layout::SEED_RECORD,
            host.label()
        )
    })?;
    Ok(Some(record))
}

/// Why a target needs no new copy, if it needs none: it holds a copy of the source's
/// cluster placed by ha-setup, or it streams from the source already (not for rebuild).
pub fn has_copy(cx: &mut Ctx<'_>, target: &NodeName) -> anyhow::Result<Option<String>> {
    let source = cx.roles.source.clone();
    let source_system = observe::server(&cx.observe(&source)).map(|s| s.system_identifier.clone());
    if let Some(record) = seeded(cx.host(target))?
        && Some(&record.system_identifier) == source_system.as_ref()
    {
        return Ok(Some(format!(
            "{target} holds the base backup of {} taken at {}",
            record.source_host, record.created_at
        )));
    }
    // rebuild wants a new copy where the target streams already (its seed record was set
    // aside by its first step, so a copy placed by this rebuild still counts, above).
    let seen = cx.observe(target);
    if !cx.roles.fresh_copy
        && seen.upstream().and_then(|up| up.node.as_ref()) == Some(&source)
        && observe::server(&seen).map(|s| &s.system_identifier) == source_system.as_ref()
    {
        return Ok(Some(format!("{target} streams from {source} already")));
    }
    Ok(None)
}

/// Whether a complete copy waits in the target's staging directory.
pub fn arrived(cx: &mut Ctx<'_>, target: &NodeName) -> anyhow::Result<bool> {
    let cluster = layout::cluster(cx, target)?;
    Ok(incoming(cx.host(target), &cluster)?.is_some())
}

fn needing_copy(cx: &mut Ctx<'_>) -> anyhow::Result<Vec<NodeName>> {
    let mut needing = Vec::new();
    for target in cx.roles.targets.clone() {
        if cx.predicting() || has_copy(cx, &target)?.is_none() {
            needing.push(target);
        }
    }
    Ok(needing)
}

/// The manifest of a complete, verified bundle in a node's staging directory.
fn incoming(host: &mut dyn Host, cluster: &Cluster) -> anyhow::Result<Option<Manifest>> {
    let path = format!("{}/{}", cluster.incoming_dir(), bundle::UNPACKED_MANIFEST);
    let Some(text) = crate::password::read_optional(host, &path)? else {
        return Ok(None);
    };
    Manifest::from_toml(&String::from_utf8_lossy(&text))
        .map(Some)
        .with_context(|| format!("{path} on {} is damaged", host.label()))
}

/// The command that streams a base backup of the cluster as a bundle on its stdout.
fn stream_command(
    tool: &str,
    version: &str,
    source_host: &str,
    cluster: &Cluster,
    compress: bundle::Compress,
) -> Cmd {
    Cmd::new(format!(
        "exec env PGCLUSTER={} PGPORT={} {} bundle stream --engine postgresql --server-version {} --source-host {} --work {} --compress {}",
        quote(&cluster.id()),
        cluster.port,
        quote(tool),
        quote(version),
        quote(source_host),
        quote(crate::tool::STREAM_DIR),
        compress.name()
    ))
    .as_root()
    .bulk()
}

/// `bundle create`: a base backup streamed by ha-setup on the host into `out`.
pub fn bundle_to(
    host: &mut dyn Host,
    name: &NodeName,
    node: &crate::config::Node,
    out: &mut (dyn std::io::Write + Send),
    compress: bundle::Compress,
    ui: &crate::ui::Ui,
) -> anyhow::Result<()> {
    let seen = observe::observe_at(host, name, node.db_port);
    let (Some(cluster), Some(server)) = (observe::cluster(&seen), observe::server(&seen)) else {
        bail!(
            "PostgreSQL on {name} does not answer: {}",
            seen.problem.as_deref().unwrap_or("unknown")
        );
    };
    let (tool, place) = tool_on(host, node, name)?;
    if let Some(Action::PlaceTool { local, remote, .. }) = place {
        ui.note(&format!("placing ha-setup on {name} at {remote}"));
        crate::runner::place_tool(host, &local, &remote)?;
    }
    ui.note(&format!(
        "streaming a base backup of {name} with pg_basebackup"
    ));
    let finished = host.exec(
        &stream_command(&tool, &server.version, &node.host, cluster, compress),
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
        "stream a base backup of the primary into each standby that needs it, every file checked"
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
            let cluster = layout::cluster(cx, &target)?;
            match incoming(cx.host(&target), &cluster)? {
                Some(manifest) if !cx.predicting() => arrived.push(format!(
                    "the bundle ({} files, {} bytes) is on {target} already, checked",
                    manifest.files.len(),
                    manifest.total_bytes()
                )),
                _ => sending.push((target, cluster)),
            }
        }
        if sending.is_empty() && !leftovers.is_empty() {
            return Ok(Verdict::Todo(leftovers));
        }
        if sending.is_empty() {
            return Ok(Verdict::Done(if arrived.is_empty() {
                "every standby holds its copy of the data".into()
            } else {
                arrived.join("; ")
            }));
        }
        let source = cx.roles.source.clone();
        let mut actions = leftovers;
        let source_node = cx.node(&source).clone();
        let (source_tool, place) = tool_on(cx.host(&source), &source_node, &source)?;
        actions.extend(place);
        let source_cluster = layout::cluster(cx, &source)?;
        let seen = cx.observe(&source);
        let version = observe::server(&seen)
            .map(|s| s.version.clone())
            .unwrap_or_else(|| source_cluster.version.clone());
        let bytes = if cx.predicting() {
            0
        } else {
            crate::host::room::room(cx.host(&source), &source_cluster.datadir)?.used
        };
        for (target, cluster) in sending {
            let node = cx.node(&target).clone();
            let (target_tool, place) = tool_on(cx.host(&target), &node, &target)?;
            actions.extend(place);
            let incoming = cluster.incoming_dir();
            actions.push(staging(&target, &incoming));
            actions.push(Action::Relay {
                why: format!(
                    "stream a base backup (pg_basebackup) into {incoming}, each file checked as it ends"
                ),
                from: source.clone(),
                send: stream_command(
                    &source_tool,
                    &version,
                    &source_node.host,
                    &source_cluster,
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

/// An empty staging directory only root may enter, so the server never sees the copy early.
pub fn staging(on: &NodeName, incoming: &str) -> Action {
    Action::Run {
        on: on.clone(),
        why: format!("make an empty staging directory {incoming}"),
        cmd: Cmd::new(format!(
            "set -e\nrm -rf -- {dir}\nmkdir -p -- \"$(dirname -- {dir})\"\nmkdir -m 0700 -- {dir}",
            dir = quote(incoming)
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
        "put the copy in place of the standby's data (old data moved aside)"
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
            actions.push(unpack(cx, &target)?);
        }
        Ok(if actions.is_empty() {
            Verdict::Done(done.join("; "))
        } else {
            Verdict::Todo(actions)
        })
    }
}

const PUT_IN_PLACE: &str = include_str!("scripts/put-in-place.sh");

fn unpack(cx: &mut Ctx<'_>, target: &NodeName) -> anyhow::Result<Action> {
    let cluster = layout::cluster(cx, target)?;
    let manifest = if cx.predicting() {
        None
    } else {
        match incoming(cx.host(target), &cluster)? {
            Some(manifest) => Some(manifest),
            None if cx.dry_run => None,
            None => bail!(
                "the bundle is not in {} on {target}; run the operation again to resend it",
                cluster.incoming_dir()
            ),
        }
    };
    let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let aside = cluster.moved_aside_dir(&stamp);
    let record = match manifest {
        Some(m) => {
            let get = |key: &str| m.position.get(key).cloned().unwrap_or_default();
            serde_json::to_string_pretty(&SeedRecord {
                source_host: m.source_host.clone(),
                server_version: m.server_version.clone(),
                created_at: m.created_at,
                start_lsn: get(position::START_LSN),
                timeline: get(position::TIMELINE),
                system_identifier: get(position::SYSTEM_IDENTIFIER),
                datadir: cluster.datadir.clone(),
                moved_aside: Some(aside.clone()),
                unpacked_at: Timestamp::now(),
            })?
        }
        None => "{ the bundle's source, time and start position }".into(),
    };
    let cmd = Cmd::script(
        PUT_IN_PLACE,
        &[
            &cluster.datadir,
            &cluster.incoming_dir(),
            &aside,
            crate::tool::TOOL_DIR,
            bundle::UNPACKED_MANIFEST,
            layout::SEED_RECORD,
            &record,
            &service::stop(&cluster).script,
            &service::start(&cluster).script,
            if cluster.datadir_mount { "yes" } else { "no" },
        ],
    )
    .as_root();
    let on = target.clone();
    Ok(Action::Call {
        on: vec![target.clone()],
        why: format!(
            "stop PostgreSQL {}, move its data to {aside} (kept, not deleted), put the copy in \
             {} and record what the node holds; if anything fails once it is stopped, the old \
             data goes back and PostgreSQL starts again",
            cluster.id(),
            cluster.datadir
        ),
        call: Call::script(on, cmd),
    })
}
