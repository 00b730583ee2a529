//! `recover restore --bundle FILE --target NODE`: a fresh MariaDB install becomes a
//! primary from a bundle file. The target is the operation's source (it is to be the
//! primary) and its one target (it receives the copy), so the unpacking is init's own.

use std::path::PathBuf;

use anyhow::Context;

use super::client;
use super::facts;
use super::layout::{self, NodeSettings};
use super::primary::{certificates, read_optional, settings_file};
use super::seed::{SeedRecord, start_and_wait, tool_on};
use crate::bundle::{self, Manifest};
use crate::error::Exit;
use crate::host::{Cmd, quote};
use crate::plan::{Action, Ctx, Input, Step, Verdict};
use crate::service::Verb;

pub fn read_bundle_manifest(path: &std::path::Path) -> anyhow::Result<Manifest> {
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the bundle {}", path.display()))?;
    bundle::read_manifest(&mut file)
        .with_context(|| format!("{} is not a readable ha-setup bundle", path.display()))
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
        "the target has MariaDB installed and is not a live primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
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
        if installed.running {
            let (server, replica) = facts::state(host)?;
            if !server.read_only && replica.is_none() && !self.force {
                // A fresh install has only the system schemas; anything else is someone's data.
                let schemas = client::row(
                    host,
                    "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name NOT IN \
                     ('mysql', 'information_schema', 'performance_schema', 'sys')",
                )?;
                let user_data = schemas.first().cloned().flatten().is_some_and(|n| n != "0");
                // A re-run of this same restore finds the data it placed itself.
                let created_at = read_bundle_manifest(&self.bundle)?.created_at;
                let ours = read_optional(host, layout::SEED_RECORD)?
                    .and_then(|r| serde_json::from_slice::<SeedRecord>(&r).ok())
                    .is_some_and(|r| r.created_at == created_at);
                if user_data && !ours {
                    return Err(Exit::refused(format!(
                        "{label} runs a writable MariaDB (GTID {}): restoring would replace a live primary's data. \
                         Its data would be moved aside, not lost; if that is what you want, run again with --force",
                        if server.gtid_current_pos.is_empty() { "none" } else { &server.gtid_current_pos }
                    ))
                    .into());
                }
            }
        }
        Ok(Verdict::Done(format!(
            "{label}: MariaDB {}",
            installed.server_text
        )))
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
        let manifest = read_bundle_manifest(&self.bundle)?;
        let target = cx.roles.source.clone();
        let node = cx.node(&target).clone();
        let datadir = layout::datadir(&node, None);
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
        let mut actions = Vec::new();
        let (tool, place) = tool_on(cx.host(&target), &node, &target)?;
        actions.extend(place);
        let record = quote(layout::SEED_RECORD);
        actions.push(Action::Run {
            on: target.clone(),
            why: format!("make an empty staging directory {incoming}; set an older seed record aside"),
            cmd: Cmd::new(format!(
                "set -e\nrm -rf -- {dir}\nmkdir -m 0700 -- {dir}\nif [ -e {record} ]; then mv -- {record} {record}.replaced; fi",
                dir = quote(&incoming)
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
        actions.extend(settings_file(
            cx.config,
            cx.hosts.host(&target),
            &target,
            &settings,
        )?);
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
        let service = layout::service(cx.node(&target)).to_owned();
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
                input: Input::Text(
                    "STOP SLAVE;\nRESET SLAVE ALL;\nSET GLOBAL read_only = OFF;\n".into(),
                ),
            });
        }
        Ok(if actions.is_empty() {
            Verdict::Done("MariaDB runs on the restored data and takes writes".into())
        } else {
            Verdict::Todo(actions)
        })
    }
}
