//! `recover restore --bundle FILE --target NODE`: a fresh PostgreSQL cluster becomes a
//! primary from a bundle file (a base backup with its WAL). The target is the operation's
//! source (it is to be the primary) and its one target (it receives the copy), so the
//! unpacking is init's own; it starts in recovery (standby.signal), replays the bundle's
//! WAL to a consistent point, and is promoted.

use std::path::PathBuf;

use anyhow::bail;

use super::client;
use super::layout::{self, Settings};
use super::observe;
use super::position;
use super::preflight::MARGIN_BYTES;
use super::primary::{certificates, hba, reopen_sql, settings_file};
use super::seed::SeedRecord;
use super::service;
use crate::bundle::{self, Manifest};
use crate::error::Exit;
use crate::host::{Cmd, HostExt, quote};
use crate::password::read_optional;
use crate::plan::{Action, Ctx, Input, Step, Verdict};
use crate::runner::human_bytes;
use crate::tool::tool_on;

/// Whether the target's seed record says it holds this bundle's data already.
fn holds(cx: &mut Ctx<'_>, manifest: &Manifest) -> anyhow::Result<bool> {
    let target = cx.roles.source.clone();
    Ok(read_optional(cx.host(&target), layout::SEED_RECORD)?
        .and_then(|r| serde_json::from_slice::<SeedRecord>(&r).ok())
        .is_some_and(|r| r.created_at == manifest.created_at))
}

pub struct CheckTarget {
    pub force: bool,
    pub bundle: PathBuf,
}

impl Step for CheckTarget {
    fn name(&self) -> &'static str {
        "check-target"
    }

    fn purpose(&self) -> &'static str {
        "the bundle is PostgreSQL's of the target's major version, and the target holds no databases of its own"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let manifest = bundle::read_manifest_file(&self.bundle)?;
        let target = cx.roles.source.clone();
        if manifest.engine != "postgresql" {
            return Err(Exit::usage(format!(
                "{} is a bundle of {}, not of PostgreSQL",
                self.bundle.display(),
                manifest.engine
            ))
            .into());
        }
        let cluster = layout::cluster(cx, &target)?;
        let major = manifest
            .server_version
            .split(['.', ' '])
            .next()
            .unwrap_or_default()
            .to_owned();
        if major != cluster.version {
            return Err(Exit::refused(format!(
                "the bundle is of PostgreSQL {major} ({}), and {target}'s cluster is {}: install PostgreSQL {major} there and make its cluster the one on the config's db_port",
                manifest.server_version,
                cluster.id()
            ))
            .into());
        }
        let done = Verdict::Done(format!("{target}: cluster {}", cluster.id()));
        if self.force || holds(cx, &manifest)? {
            return Ok(done);
        }
        // A fresh cluster has only postgres, template0 and template1.
        let seen = cx.observe(&target);
        let databases: Vec<String> = if observe::server(&seen).is_some() {
            client::json(
                cx.host(&target),
                &cluster.id(),
                "SELECT coalesce(json_agg(datname ORDER BY datname), '[]') FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')",
            )?
        } else {
            // Stopped: its base/ holds a directory per database (1, 4 and 5 are the three).
            let text = cx.host(&target).run_ok(
                &Cmd::new(format!(
                    "if [ -d {dir}/base ]; then find {dir}/base -mindepth 1 -maxdepth 1 -type d -printf '%f\\n'; fi",
                    dir = quote(&cluster.datadir)
                ))
                .as_root(),
            )?;
            text.lines()
                .filter(|n| !["1", "4", "5"].contains(n))
                .map(|n| format!("database OID {n}"))
                .collect()
        };
        if !databases.is_empty() {
            return Err(Exit::refused(format!(
                "{target} holds databases of its own ({}): restoring would replace them. Its data would be moved aside into {}, not lost; if that is what you want, run again with --force",
                databases.join(", "),
                cluster.moved_aside_dir("<time>")
            ))
            .into());
        }
        Ok(done)
    }
}

pub struct Receive {
    pub bundle: PathBuf,
}

impl Step for Receive {
    fn name(&self) -> &'static str {
        "receive"
    }

    fn purpose(&self) -> &'static str {
        "stream the bundle file to the target, every file checked on arrival"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let manifest = bundle::read_manifest_file(&self.bundle)?;
        let target = cx.roles.source.clone();
        let node = cx.node(&target).clone();
        let cluster = layout::cluster(cx, &target)?;
        let incoming = cluster.incoming_dir();
        if !cx.predicting() {
            if holds(cx, &manifest)? {
                return Ok(Verdict::Done(
                    "the target holds this bundle's data already".into(),
                ));
            }
            let arrived = read_optional(
                cx.host(&target),
                &format!("{incoming}/{}", bundle::UNPACKED_MANIFEST),
            )?;
            if arrived.is_some_and(|text| {
                Manifest::from_toml(&String::from_utf8_lossy(&text))
                    .is_ok_and(|m| m.created_at == manifest.created_at)
            }) {
                return Ok(Verdict::Done(
                    "the bundle is on the target already, checked".into(),
                ));
            }
            let room = crate::host::room::room(cx.host(&target), &incoming)?;
            let needed = manifest.total_bytes() + manifest.total_bytes() / 10 + MARGIN_BYTES;
            let free = room.free + room.used;
            if free < needed {
                bail!(
                    "{target} has {} free at {incoming} (filesystem {} mounted at {}), and the bundle's data needs {} \
                     (with 10% and {} of margin). Nothing was changed: free at least {} there, then run this again",
                    human_bytes(free),
                    room.device,
                    room.mount,
                    human_bytes(needed),
                    human_bytes(MARGIN_BYTES),
                    human_bytes(needed - free),
                );
            }
        }
        let mut actions = Vec::new();
        let (tool, place) = tool_on(cx.host(&target), &node, &target)?;
        actions.extend(place);
        actions.push(super::seed::staging(&target, &incoming));
        let record = quote(layout::SEED_RECORD);
        actions.push(Action::Run {
            on: target.clone(),
            why: "set an older seed record aside".into(),
            cmd: Cmd::new(format!(
                "if [ -e {record} ]; then mv -- {record} {record}.replaced; fi"
            ))
            .as_root(),
            input: Input::None,
        });
        actions.push(Action::Send {
            why: format!(
                "stream the bundle of {} ({}; start {} on timeline {}) into {incoming}, each file checked",
                manifest.source_host,
                manifest.created_at,
                manifest
                    .position
                    .get(position::START_LSN)
                    .map_or("?", String::as_str),
                manifest
                    .position
                    .get(position::TIMELINE)
                    .map_or("?", String::as_str),
            ),
            local: self.bundle.clone(),
            to: target.clone(),
            receive: Cmd::new(format!(
                "exec {} bundle unpack --into {}",
                quote(&tool),
                quote(&incoming)
            ))
            .as_root()
            .bulk(),
        });
        Ok(Verdict::Todo(actions))
    }
}

pub struct ConfigureRestored;

impl Step for ConfigureRestored {
    fn name(&self) -> &'static str {
        "configure"
    }

    fn purpose(&self) -> &'static str {
        "the target's settings and access as a primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        let cluster = layout::cluster(cx, &target)?;
        let seen = cx.observe(&target);
        let mut actions = Vec::new();
        // The settings follow the running server where there is one; a stopped cluster
        // gets PostgreSQL's defaults raised to what replication needs.
        let server = observe::server(&seen)
            .cloned()
            .unwrap_or_else(|| defaults(&cluster));
        let settings = Settings::new(cx.config, &target, &server, None);
        actions.extend(settings_file(cx, &target, &cluster, &settings)?);
        actions.extend(hba(cx, &target, &cluster)?);
        if cx.config.replication.tls {
            let address = cx.node(&target).replication_address().to_owned();
            actions.extend(certificates(cx.host(&target), &target, &address, &cluster)?);
        }
        Ok(if actions.is_empty() {
            Verdict::Done("settings in place".into())
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// What a stopped cluster runs with when started with no settings of its own.
fn defaults(cluster: &layout::Cluster) -> observe::Server {
    observe::Server {
        version_num: 0,
        version: cluster.version.clone(),
        in_recovery: true,
        replay_paused: false,
        datadir: cluster.datadir.clone(),
        port: cluster.port,
        listen_addresses: "localhost".into(),
        wal_level: "replica".into(),
        max_wal_senders: 10,
        max_replication_slots: 10,
        wal_log_hints: false,
        data_checksums: false,
        ssl: false,
        max_connections: 100,
        max_worker_processes: 8,
        max_prepared_transactions: 0,
        max_locks_per_transaction: 64,
        system_identifier: String::new(),
        timeline: 0,
        current_lsn: None,
        receive_lsn: None,
        replay_lsn: None,
        replay_age: None,
        primary_conninfo: String::new(),
        primary_slot_name: String::new(),
        pending_restart: Vec::new(),
        receiving: false,
        receiver: None,
        replicas: Vec::new(),
        slots: Vec::new(),
    }
}

pub struct StartAsPrimary;

impl Step for StartAsPrimary {
    fn name(&self) -> &'static str {
        "start"
    }

    fn purpose(&self) -> &'static str {
        "PostgreSQL running on the restored data, promoted, taking writes"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        let cluster = layout::cluster(cx, &target)?;
        let seen = cx.observe(&target);
        if !cx.predicting() && seen.writable_primary() {
            return Ok(Verdict::Done(
                "PostgreSQL runs on the restored data and takes writes".into(),
            ));
        }
        let mut cmd = service::start(&cluster);
        cmd.script.push_str(&format!(
            "\ncd / && exec runuser -u postgres -- psql --cluster {} -X -q -A -t -v ON_ERROR_STOP=1",
            quote(&cluster.id())
        ));
        Ok(Verdict::Todo(vec![Action::Run {
            on: target.clone(),
            why: format!(
                "start PostgreSQL {} (it replays the bundle's WAL to a consistent point, in recovery) and promote it",
                cluster.id()
            ),
            cmd,
            input: Input::Text(reopen_sql()),
        }]))
    }
}
