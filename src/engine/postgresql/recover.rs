//! After losing the primary: promote the most advanced standby (refused while the primary
//! is alive, decided before the plan runs), fence the old primary if it still answers,
//! point the other standbys at the new one, and prove the first write; reopen writes after
//! a restart (unfence).
//!
//! The fence: PostgreSQL has no run-time-only read-only switch that clients cannot undo
//! (`default_transaction_read_only` is one `SET` away for any session). ha-setup keeps
//! `standby.signal` in every node's data directory instead, the primary's too. A running
//! primary ignores it; a server that starts with it comes up in recovery, refusing every
//! write whatever the client sets, until ha-setup promotes it (`recover unfence`, or
//! init's own restart). So an old primary that comes back after a promote, whether its
//! host rebooted or only PostgreSQL restarted, is a read-only standby of nobody, and
//! status shows it fenced. Each promotion starts a new timeline; the standbys follow it
//! (`recovery_target_timeline = latest`, PostgreSQL's default).

use anyhow::bail;

use super::client;
use super::layout::{self, Settings};
use super::link;
use super::observe;
use super::primary::{settings_file, slots};
use super::service;
use super::standby::{FENCE_AGAIN_SQL, configure};
use crate::engine::Canary;
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Input, Step, Verdict};

pub use crate::promote::CheckPrimary;

pub struct Fence;

impl Step for Fence {
    fn name(&self) -> &'static str {
        "fence"
    }

    fn purpose(&self) -> &'static str {
        "restart the old primary fenced (in recovery, read-only), if it still answers"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let Some(old) = cx.roles.old.clone() else {
            return Ok(Verdict::Done("no old primary to fence".into()));
        };
        let seen = cx.observe(&old);
        let signal = observe::reading(&seen).map(|r| r.signal);
        match &seen.db {
            None => Ok(Verdict::Done(match signal {
                Some(true) => format!(
                    "{old} does not answer; its data directory holds standby.signal, so it comes back read-only"
                ),
                _ => format!(
                    "{old} does not answer; if it comes back without ha-setup's standby.signal it may take writes: stop it, or run `ha-setup recover rejoin` as soon as it is reachable"
                ),
            })),
            Some(db) if !db.writable => {
                Ok(Verdict::Done(format!("{old} is in recovery (read-only)")))
            }
            Some(_) => {
                let cluster = layout::cluster(cx, &old)?;
                let mut actions = Vec::new();
                if signal != Some(true) {
                    actions.push(super::primary::fence_file_action(&old, &cluster));
                }
                actions.push(Action::Run {
                    on: old.clone(),
                    why: format!(
                        "fence: restart PostgreSQL {} (sessions ended, nothing committed lost); it comes back in recovery and takes no writes",
                        cluster.id()
                    ),
                    cmd: service::restart(&cluster),
                    input: Input::None,
                });
                Ok(Verdict::Todo(actions))
            }
        }
    }
}

pub struct Promote;

impl Step for Promote {
    fn name(&self) -> &'static str {
        "promote"
    }

    fn purpose(&self) -> &'static str {
        "the standby replays what it received and becomes the primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        let seen = cx.observe(&target);
        let cluster = layout::cluster(cx, &target)?;
        let Some(server) = observe::server(&seen).cloned() else {
            bail!(
                "PostgreSQL on {target} does not answer: {}",
                seen.describe()
            );
        };
        let mut actions = Vec::new();
        if server.in_recovery {
            let window = format!(
                "received up to {}, replayed up to {}",
                server.receive_lsn.as_deref().unwrap_or("nothing"),
                server.replay_lsn.as_deref().unwrap_or("nothing")
            );
            let id = cluster.id();
            let on = target.clone();
            actions.push(Action::Call {
                on: vec![target.clone()],
                why: format!(
                    "promote {target} (pg_promote: it replays all it received first; {window}); a new timeline begins"
                ),
                call: Call::new(move |cx| {
                    let host = cx.host(&on);
                    client::execute(
                        host,
                        &id,
                        &Input::Text(format!("{}\n{FENCE_AGAIN_SQL}\n", service::PROMOTE_SQL)),
                    )?;
                    Ok(vec![
                        format!("{on}: {window} from the old primary; anything the old primary wrote after that is not here"),
                        format!("{on} takes writes"),
                    ])
                }),
            });
        }
        // Its settings no longer name a primary to stream from.
        let settings = Settings::new(cx.config, &target, &server, None);
        if let Some(write) = settings_file(cx, &target, &cluster, &settings)? {
            actions.push(write);
            actions.push(Action::Run {
                on: target.clone(),
                why: "reload PostgreSQL's settings".into(),
                cmd: client::command(&cluster.id()),
                input: Input::Text("SELECT pg_reload_conf();\n".into()),
            });
        }
        Ok(if actions.is_empty() {
            Verdict::Done(format!("{target} is the primary"))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// repoint: the other standbys stream from the new primary, each through a slot of its own
/// there.
pub struct Repoint;

impl Step for Repoint {
    fn name(&self) -> &'static str {
        "repoint"
    }

    fn purpose(&self) -> &'static str {
        "the other standbys stream from the new primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let primary = cx.roles.source.clone();
        let followers: Vec<NodeName> = cx
            .roles
            .targets
            .iter()
            .filter(|n| cx.config.nodes.contains_key(*n))
            .cloned()
            .collect();
        if followers.is_empty() {
            return Ok(Verdict::Done("no other standby".into()));
        }
        let cluster = layout::cluster(cx, &primary)?;
        let seen = cx.observe(&primary);
        let mut actions = Vec::new();
        if let Some(server) = observe::server(&seen).cloned() {
            actions.extend(slots(cx, &primary, &cluster, &server, &followers)?);
        }
        let port = cx.node(&primary).db_port.unwrap_or(cluster.port);
        let (secret, _) = crate::password::password(cx)?;
        let mut done = Vec::new();
        for other in followers {
            let seen = cx.observe(&other);
            if !seen.answers() {
                done.push(format!(
                    "{other} does not answer ({}); when it is back: `ha-setup init` points it at {primary}",
                    seen.describe()
                ));
                continue;
            }
            actions.extend(configure(cx, &primary, &other, port, &secret)?);
        }
        Ok(if actions.is_empty() {
            Verdict::Done(done.join("; "))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// The first write on the new primary, proven: the canary, written where it now lands.
pub struct FirstWrite;

impl Step for FirstWrite {
    fn name(&self) -> &'static str {
        "first-write"
    }

    fn purpose(&self) -> &'static str {
        "a write on the new primary succeeds"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let primary = cx.roles.source.clone();
        Ok(Verdict::Todo(vec![Action::Call {
            on: vec![primary.clone()],
            why: format!("write a canary row on {primary}"),
            call: Call::new(move |cx| {
                let seen = cx.observe_fresh(&primary);
                let host = cx.host(&primary);
                match link::canary(
                    host,
                    Vec::new(),
                    vec![&seen],
                    std::time::Duration::from_secs(10),
                )? {
                    Canary::Arrived(_) => Ok(vec![format!("{primary} took a write")]),
                    Canary::Skipped(why) => bail!("{primary} did not take the write: {why}"),
                }
            }),
        }]))
    }
}

/// unfence: a fenced primary (in recovery, streaming from nobody) is promoted, once
/// resolve found no other node that is primary.
pub struct Unfence;

impl Step for Unfence {
    fn name(&self) -> &'static str {
        "unfence"
    }

    fn purpose(&self) -> &'static str {
        "the fenced primary takes writes again"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        let seen = cx.observe(&target);
        if seen.writable_primary() {
            return Ok(Verdict::Done(format!("{target} takes writes already")));
        }
        let cluster = layout::cluster(cx, &target)?;
        Ok(Verdict::Todo(vec![super::primary::promote_back(
            &target, &cluster,
        )]))
    }
}

/// rebuild, before the copy: a standby that streams through its slot now would move the
/// slot on while its new copy is taken, past WAL the copy needs once it starts. It streams
/// without the slot until the copy is in place (configure-standbys gives it back), and the
/// slot is made again, keeping WAL from before the copy.
pub struct Detach;

impl Step for Detach {
    fn name(&self) -> &'static str {
        "detach-slot"
    }

    fn purpose(&self) -> &'static str {
        "the standby streams without its slot until its new copy is in place; the slot is made again"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let primary = cx.roles.source.clone();
        let primary_cluster = layout::cluster(cx, &primary)?;
        let mut actions = Vec::new();
        for target in cx.roles.targets.clone() {
            if cx.predicting() {
                continue;
            }
            // A copy already placed, or on its way: the slot was made before it.
            if super::seed::has_copy(cx, &target)?.is_some() || super::seed::arrived(cx, &target)? {
                continue;
            }
            let seen = cx.observe(&target);
            let slot = layout::slot_name(&target);
            if let Some(server) = observe::server(&seen).cloned()
                && server.primary_slot_name == slot
            {
                let cluster = layout::cluster(cx, &target)?;
                let port = cx.node(&primary).db_port.unwrap_or(primary_cluster.port);
                let mut upstream = layout::Upstream::new(cx.config, &primary, &target, port);
                upstream.slot.clear();
                let settings = Settings::new(cx.config, &target, &server, Some(upstream));
                actions.extend(settings_file(cx, &target, &cluster, &settings)?);
                actions.push(Action::Run {
                    on: target.clone(),
                    why: "reload: stream without the slot for now".into(),
                    cmd: client::command(&cluster.id()),
                    input: Input::Text("SELECT pg_reload_conf();\n".into()),
                });
            }
            let id = primary_cluster.id();
            let on = primary.clone();
            actions.push(Action::Call {
                on: vec![primary.clone()],
                why: format!(
                    "make the slot {slot} again on {primary}, keeping WAL from now, before the copy is taken"
                ),
                call: Call::new(move |cx| {
                    remake_slot(cx.host(&on), &id, &slot)?;
                    Ok(vec![format!("{on}: slot {slot} made again")])
                }),
            });
        }
        Ok(if actions.is_empty() {
            Verdict::Done("no standby streams through its slot".into())
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// Drops `slot` once nothing streams through it (bounded), and makes it again with WAL
/// reserved from now.
fn remake_slot(host: &mut dyn crate::host::Host, cluster: &str, slot: &str) -> anyhow::Result<()> {
    let name = client::literal(slot);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let active: bool = client::json(
            host,
            cluster,
            &format!(
                "SELECT to_json(EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = {name} AND active))"
            ),
        )?;
        if !active {
            break;
        }
        if std::time::Instant::now() >= deadline {
            bail!(
                "the slot {slot} on {} is still in use 30 s after its standby was told to stream without it",
                host.label()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    client::execute(
        host,
        cluster,
        &Input::Text(format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = {name};\n\
             SELECT pg_create_physical_replication_slot({name}, true);\n"
        )),
    )?;
    Ok(())
}
