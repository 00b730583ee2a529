//! `recover restore --bundle FILE --target NODE`: a fresh MariaDB install becomes a
//! primary from a bundle file. The target is the operation's source (it is to be the
//! primary) and its one target (it receives the copy), so the unpacking is init's own.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::client;
use super::facts;
use super::layout::{self, NodeSettings};
use super::observe;
use super::preflight::MARGIN_BYTES;
use super::primary::{certificates, read_optional, settings_file};
use super::seed::{SeedRecord, staging, start_and_wait, tool_on};
use crate::bundle::{self, Manifest};
use crate::error::Exit;
use crate::host::{Cmd, Host, HostExt, quote};
use crate::plan::{Action, Ctx, Input, Step, Verdict};
use crate::runner::human_bytes;
use crate::service::Verb;

pub struct CheckTarget {
    pub force: bool,
    pub bundle: PathBuf,
}

impl Step for CheckTarget {
    fn name(&self) -> &'static str {
        "check-target"
    }

    fn purpose(&self) -> &'static str {
        "the target has MariaDB installed and holds no databases of its own"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        let paths = layout::paths(cx, &target);
        let seen = cx.observe(&target);
        let host = cx.host(&target);
        let label = host.label().to_owned();
        let installed =
            facts::survey(host).with_context(|| format!("cannot look around on {label}"))?;
        if installed.server.is_none() || installed.backup_tool.is_none() {
            return Err(Exit::refused(format!(
                "{label} needs MariaDB and mariadb-backup installed first: apt-get install mariadb-server mariadb-backup"
            ))
            .into());
        }
        let done = Verdict::Done(format!("{label}: MariaDB {}", installed.server_text));
        if self.force {
            return Ok(done);
        }
        // A re-run of this same restore finds the data it placed itself.
        let created_at = bundle::read_manifest_file(&self.bundle)?.created_at;
        let ours = read_optional(host, layout::SEED_RECORD)?
            .and_then(|r| serde_json::from_slice::<SeedRecord>(&r).ok())
            .is_some_and(|r| r.created_at == created_at);
        if ours {
            return Ok(done);
        }
        // A fresh install has only the system schemas; anything else is someone's data,
        // whether the server takes writes, is fenced, replicates, or is stopped.
        let datadir = &paths.datadir.value;
        let (schemas, how) = match observe::state(&seen) {
            Some(state) if installed.running => {
                let how = match (&state.replica, state.server.read_only) {
                    (Some(replica), _) => format!("replicates from {}", replica.master_host),
                    (None, false) => "runs and takes writes".to_owned(),
                    (None, true) => "runs read-only (fenced)".to_owned(),
                };
                let rows = client::rows(host, &user_schemas_sql())?;
                let names = rows
                    .into_iter()
                    .filter_map(|r| r.into_iter().next().flatten());
                (names.collect::<Vec<_>>(), how)
            }
            _ => (schema_dirs(host, datadir)?, "is stopped".to_owned()),
        };
        if !schemas.is_empty() {
            return Err(Exit::refused(format!(
                "{label} holds databases of its own ({}) and its MariaDB {how}{}: restoring would replace them. \
                 Its data would be moved aside into {}, not lost; if that is what you want, run again with --force",
                schemas.join(", "),
                seen.db
                    .as_ref()
                    .map(|db| db.position.as_str())
                    .filter(|p| !p.is_empty())
                    .map(|p| format!(" (at GTID {p})"))
                    .unwrap_or_default(),
                layout::moved_aside_dir(datadir, "<time>"),
            ))
            .into());
        }
        Ok(done)
    }
}

/// Schemas that are not MariaDB's own nor directories it is told to ignore.
fn user_schemas_sql() -> String {
    let mut ignored: Vec<String> = SYSTEM_SCHEMAS.iter().map(|s| client::literal(s)).collect();
    ignored.push("'information_schema'".into());
    for dir in [
        layout::INCOMING_NAME,
        layout::MOVED_ASIDE_NAME,
        "lost+found",
    ] {
        // A directory name MariaDB cannot map to a schema name shows with this prefix.
        ignored.push(client::literal(&format!("#mysql50#{dir}")));
    }
    format!(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ({}) ORDER BY schema_name",
        ignored.join(", ")
    )
}

/// MariaDB's own schemas, which every datadir has.
const SYSTEM_SCHEMAS: [&str; 3] = ["mysql", "performance_schema", "sys"];

/// The databases in a stopped server's datadir: its directories, less MariaDB's own,
/// ha-setup's and lost+found.
fn schema_dirs(host: &mut dyn Host, datadir: &str) -> anyhow::Result<Vec<String>> {
    let text = host.run_ok(
        &Cmd::new(format!(
            "if [ -d {dir} ]; then find {dir}/ -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\\n'; fi",
            dir = quote(datadir)
        ))
        .as_root(),
    )?;
    let mut names: Vec<String> = text
        .lines()
        .map(str::to_owned)
        .filter(|n| !n.is_empty() && n != "lost+found" && !SYSTEM_SCHEMAS.contains(&n.as_str()))
        .collect();
    names.sort();
    Ok(names)
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
        let datadir = layout::paths(cx, &target).datadir.value;
        let incoming = layout::incoming_dir(&datadir);
        if !cx.predicting() {
            if let Some(record) = read_optional(cx.host(&target), layout::SEED_RECORD)? {
                let record: Option<SeedRecord> = serde_json::from_slice(&record).ok();
                if record.is_some_and(|r| r.created_at == manifest.created_at) {
                    return Ok(Verdict::Done(
                        "the target holds this bundle's data already".into(),
                    ));
                }
            }
            let arrived = read_optional(
                cx.host(&target),
                &format!("{incoming}/{}", bundle::UNPACKED_MANIFEST),
            )?;
            let arrived_same = arrived.is_some_and(|text| {
                Manifest::from_toml(&String::from_utf8_lossy(&text))
                    .is_ok_and(|m| m.created_at == manifest.created_at)
            });
            if arrived_same {
                return Ok(Verdict::Done(
                    "the bundle is on the target already, checked".into(),
                ));
            }
        }
        // The copy and the old data share the datadir's filesystem: the copy must fit
        // there, found out before anything is sent or stopped.
        if !cx.predicting() {
            let room = facts::room(cx.host(&target), &incoming)?;
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
        actions.push(staging(&target, &datadir));
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
                "stream the bundle of {} ({}) into {incoming}, each file checked",
                manifest.source_host, manifest.created_at
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
        "the target's settings as a primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        let node = cx.node(&target).clone();
        let server_id = node.server_id.unwrap_or(1);
        let settings = NodeSettings::new(cx.config, &target, server_id, None);
        let mut actions = Vec::new();
        actions.extend(settings_file(cx, &target, &settings)?);
        if settings.tls {
            actions.extend(certificates(
                cx.host(&target),
                &target,
                node.replication_address(),
            )?);
        }
        Ok(if actions.is_empty() {
            Verdict::Done("settings in place".into())
        } else {
            Verdict::Todo(actions)
        })
    }
}

pub struct StartAsPrimary;

impl Step for StartAsPrimary {
    fn name(&self) -> &'static str {
        "start"
    }

    fn purpose(&self) -> &'static str {
        "MariaDB running on the restored data, taking writes"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        let installed = facts::survey(cx.host(&target))?;
        let service = layout::service(cx, &target);
        let mut actions = Vec::new();
        if cx.predicting() || !installed.running {
            actions.push(Action::Run {
                on: target.clone(),
                why: "start MariaDB".into(),
                cmd: start_and_wait(&service, installed.systemd, Verb::Start),
                input: Input::None,
            });
        }
        let writable = !cx.predicting()
            && installed.running
            && facts::state(cx.host(&target))
                .is_ok_and(|(server, replica)| !server.read_only && replica.is_none());
        if !writable {
            actions.push(Action::Run {
                on: target.clone(),
                why: "forget any replication and open writes (read_only=OFF at run time)".into(),
                cmd: client::command(),
                input: Input::Text(super::recover::promotion(
                    cx.config.replication.fence_timeout_secs,
                )),
            });
        }
        Ok(if actions.is_empty() {
            Verdict::Done("MariaDB runs on the restored data and takes writes".into())
        } else {
            Verdict::Todo(actions)
        })
    }
}
