//! configure-replicas and start: each replica's own settings snippet (its server_id,
//! relay log, read_only=ON, log_slave_updates), its certificate, every other node's CA
//! (so it can check whichever node is primary later), and the replication password; then
//! every server running with those settings.

use super::facts;
use super::layout::{self, NodeSettings};
use super::primary::{certificates, password, read_optional, settings_file};
use super::seed::start_and_wait;
use crate::host::FileMode;
use crate::node::NodeName;
use crate::plan::{Action, Ctx, Input, SECRET_MARK, Step, Verdict};
use crate::service::Verb;

pub struct ConfigureReplicas;

/// A replica's settings, with the server_id the whole cluster agrees on.
fn replica_settings(cx: &mut Ctx<'_>, target: &NodeName) -> anyhow::Result<NodeSettings> {
    let topology = cx.topology();
    let id = layout::server_ids(cx.config, &topology, &cx.roles.source)[target];
    let server = facts::server(cx.host(target)).ok();
    Ok(NodeSettings::new(cx.config, target, id, server.as_ref()))
}

impl Step for ConfigureReplicas {
    fn name(&self) -> &'static str {
        "configure-replicas"
    }

    fn purpose(&self) -> &'static str {
        "each replica's settings: its own server_id, relay log, read_only=ON, TLS"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let mut actions = Vec::new();
        let mut done = Vec::new();
        let (secret, _) = password(cx)?;
        let tls = cx.config.replication.tls;
        for target in cx.roles.targets.clone() {
            let settings = replica_settings(cx, &target)?;
            let node = cx.node(&target).clone();
            actions.extend(settings_file(cx, &target, &settings)?);
            let host = cx.hosts.host(&target);
            if tls {
                actions.extend(certificates(host, &target, node.replication_address())?);
            }
            let kept = read_optional(host, layout::PASSWORD_FILE)?;
            if kept.as_deref() != Some(secret.expose().as_bytes()) {
                actions.push(Action::Write {
                    on: target.clone(),
                    why: "keep the replication password (root only)".into(),
                    path: layout::PASSWORD_FILE.into(),
                    contents: Input::WithSecret(SECRET_MARK.into(), secret.clone()),
                    mode: FileMode::private(),
                });
            }
            done.push(format!(
                "{target}: server_id {}, read_only=ON",
                settings.server_id
            ));
        }
        let members = members(cx);
        if tls && (!actions.is_empty() || !crate::tls::cas_shared(cx, &members, layout::TLS_DIR)?) {
            actions.push(crate::tls::share_cas(members, layout::TLS_DIR));
        }
        Ok(if actions.is_empty() {
            Verdict::Done(done.join("; "))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// The nodes that take part: the source and the targets.
fn members(cx: &Ctx<'_>) -> Vec<NodeName> {
    let mut nodes = vec![cx.roles.source.clone()];
    nodes.extend(cx.roles.targets.iter().cloned());
    nodes
}

pub struct Start;

impl Step for Start {
    fn name(&self) -> &'static str {
        "start"
    }

    fn purpose(&self) -> &'static str {
        "every database running with these settings"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let mut actions = Vec::new();
        let source = cx.roles.source.clone();
        let installed = facts::survey(cx.host(&source))?;
        if !installed.running {
            actions.push(Action::Run {
                on: source.clone(),
                why: "start MariaDB".into(),
                cmd: start_and_wait(
                    &layout::service(cx, &source),
                    installed.systemd,
                    Verb::Start,
                ),
                input: Input::None,
            });
        }
        for target in cx.roles.targets.clone() {
            let installed = facts::survey(cx.host(&target))?;
            let service = layout::service(cx, &target);
            if cx.predicting() || !installed.running {
                actions.push(Action::Run {
                    on: target.clone(),
                    why: "start MariaDB on the copy".into(),
                    cmd: start_and_wait(&service, installed.systemd, Verb::Start),
                    input: Input::None,
                });
                continue;
            }
            let settings = replica_settings(cx, &target)?;
            let server = facts::server(cx.host(&target))?;
            let restart = settings.needs_restart(&server);
            // With two writers a writable node is what init makes, not a replica to fence.
            if !server.read_only && restart.is_empty() && settings.pair.is_none() {
                actions.push(Action::Run {
                    on: target.clone(),
                    why: "make the replica read-only now (its config says so too)".into(),
                    cmd: super::client::command(),
                    input: Input::Text(super::client::bounded(
                        "SET GLOBAL read_only = ON;\n",
                        cx.config.replication.fence_timeout_secs,
                    )),
                });
            }
            if !restart.is_empty() {
                actions.push(Action::Run {
                    on: target.clone(),
                    why: format!("restart MariaDB, because {}", restart.join(", ")),
                    cmd: start_and_wait(&service, installed.systemd, Verb::Restart),
                    input: Input::None,
                });
            }
        }
        Ok(if actions.is_empty() {
            Verdict::Done("MariaDB runs on every node, with the tool's settings".into())
        } else {
            Verdict::Todo(actions)
        })
    }
}
