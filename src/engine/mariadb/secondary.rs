//! configure-secondary and start: the secondary's own settings snippet (its server_id,
//! relay log, read_only=ON, log_slave_updates), the primary's CA certificate and the
//! replication password beside it; then both servers running with those settings.

use super::facts;
use super::layout::{self, NodeSettings};
use super::primary::{certificates, password, read_optional};
use super::seed::start_and_wait;
use crate::host::FileMode;
use crate::plan::{Action, Ctx, Input, NodeName, SECRET_MARK, Step, Verdict};
use crate::service::Verb;

pub struct ConfigureSecondary;

fn secondary_settings(cx: &mut Ctx<'_>) -> anyhow::Result<NodeSettings> {
    let primary = facts::server(cx.primary)?;
    let (_, secondary_id) = layout::server_ids(cx.config, Some(&primary));
    let server = facts::server(cx.secondary).ok();
    Ok(NodeSettings::new(
        cx.config,
        NodeName::Secondary,
        secondary_id,
        server.as_ref(),
    ))
}

impl Step for ConfigureSecondary {
    fn name(&self) -> &'static str {
        "configure-secondary"
    }

    fn purpose(&self) -> &'static str {
        "the secondary's settings: its own server_id, relay log, read_only=ON"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let settings = secondary_settings(cx)?;
        let mut actions = Vec::new();
        let path = layout::cnf_path(&cx.config.secondary);
        let wanted = settings.render(cx.config)?;
        if read_optional(cx.secondary, &path)?.as_deref() != Some(wanted.as_bytes()) {
            actions.push(Action::Write {
                on: NodeName::Secondary,
                why: "the tool's MariaDB settings".into(),
                path,
                contents: Input::Text(wanted),
                mode: FileMode::new(0o644),
            });
        }
        if cx.config.replication.tls {
            let address = cx.config.secondary.replication_address().to_owned();
            actions.extend(certificates(cx.secondary, NodeName::Secondary, &address)?);
            actions.extend(peer_ca(cx, NodeName::Primary, NodeName::Secondary)?);
            actions.extend(peer_ca(cx, NodeName::Secondary, NodeName::Primary)?);
        }
        let (secret, _) = password(cx)?;
        let kept = read_optional(cx.secondary, layout::PASSWORD_FILE)?;
        if kept.as_deref() != Some(secret.expose().as_bytes()) {
            actions.push(Action::Write {
                on: NodeName::Secondary,
                why: "keep the replication password (root only)".into(),
                path: layout::PASSWORD_FILE.into(),
                contents: Input::WithSecret(SECRET_MARK.into(), secret),
                mode: FileMode::private(),
            });
        }
        Ok(if actions.is_empty() {
            Verdict::Done(format!(
                "server_id {}, read_only=ON, relay log {}",
                settings.server_id, settings.relay_log
            ))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// The CA of `from` as the peer CA of `to`, so `to` can check `from` when replicating
/// from it. Only certificates travel; keys stay where they were made.
fn peer_ca(cx: &mut Ctx<'_>, from: NodeName, to: NodeName) -> anyhow::Result<Option<Action>> {
    let ca = format!("{}/ca.pem", layout::TLS_DIR);
    let source = read_optional(cx.host(from), &ca)?;
    let there = read_optional(cx.host(to), layout::PEER_CA)?;
    if source.is_some() && there == source {
        return Ok(None);
    }
    Ok(Some(Action::Copy {
        why: format!("the {from}'s CA certificate, to check the {from} when replicating from it"),
        from,
        path: ca,
        to,
        to_path: layout::PEER_CA.into(),
        mode: FileMode::new(0o644),
    }))
}

pub struct Start;

impl Step for Start {
    fn name(&self) -> &'static str {
        "start"
    }

    fn purpose(&self) -> &'static str {
        "both databases running with these settings"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let mut actions = Vec::new();
        let installed = facts::survey(cx.primary)?;
        if !installed.running {
            actions.push(Action::Run {
                on: NodeName::Primary,
                why: "start MariaDB".into(),
                cmd: start_and_wait(
                    layout::service(&cx.config.primary),
                    installed.systemd,
                    Verb::Start,
                ),
                input: Input::None,
            });
        }
        let installed = facts::survey(cx.secondary)?;
        let service = layout::service(&cx.config.secondary).to_owned();
        if cx.predicting() || !installed.running {
            actions.push(Action::Run {
                on: NodeName::Secondary,
                why: "start MariaDB on the copy".into(),
                cmd: start_and_wait(&service, installed.systemd, Verb::Start),
                input: Input::None,
            });
        } else {
            let settings = secondary_settings(cx)?;
            let server = facts::server(cx.secondary)?;
            let restart = settings.needs_restart(&server);
            if !server.read_only && restart.is_empty() {
                actions.push(Action::Run {
                    on: NodeName::Secondary,
                    why: "make the secondary read-only now (its config says so too)".into(),
                    cmd: super::client::command(),
                    input: Input::Text("SET GLOBAL read_only = ON;\n".into()),
                });
            }
            if !restart.is_empty() {
                actions.push(Action::Run {
                    on: NodeName::Secondary,
                    why: format!("restart MariaDB, because {}", restart.join(", ")),
                    cmd: start_and_wait(&service, installed.systemd, Verb::Restart),
                    input: Input::None,
                });
            }
        }
        Ok(if actions.is_empty() {
            Verdict::Done("MariaDB runs on both, with the tool's settings".into())
        } else {
            Verdict::Todo(actions)
        })
    }
}
