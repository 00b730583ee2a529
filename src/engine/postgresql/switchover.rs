//! switchover: a planned role swap that loses no transaction. The primary is stopped
//! cleanly (its last record a shutdown checkpoint that its WAL senders send before they
//! exit), the chosen standby must have replayed past that checkpoint within a bound, and is
//! promoted; the old primary then starts as its standby (it holds `standby.signal`, and its
//! WAL ends where the new timeline begins, so no rewind is needed), and every other standby
//! follows. Until the promotion, any failure starts the old primary again and reopens its
//! writes; the error says so. At every point at most one node takes writes.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::client;
use super::layout::{self, Cluster};
use super::observe;
use super::position::Lsn;
use super::primary::{reopen_sql, slots};
use super::service;
use super::standby::{FENCE_AGAIN_SQL, configure};
use crate::error::Exit;
use crate::host::{Cmd, HostExt, quote};
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Input, Step, Verdict};
use crate::topology::LinkState;

/// How long the standby may take to replay the primary's last record while the primary is
/// down: the application's writes fail that long at most.
const CATCH_UP: Duration = Duration::from_secs(30);

pub struct Switch;

impl Step for Switch {
    fn name(&self) -> &'static str {
        "switch"
    }

    fn purpose(&self) -> &'static str {
        "stop the primary cleanly, let the standby replay its last record, promote the standby"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let new = cx.roles.source.clone();
        let old = cx
            .roles
            .old
            .clone()
            .expect("a switchover has a primary to leave");
        let topology = cx.topology();
        let (to, from) = (topology.get(&new), topology.get(&old));
        if to.writable_primary() && !from.writable_primary() {
            return Ok(Verdict::Done(format!("{new} is the primary already")));
        }
        if !from.writable_primary() {
            return Err(Exit::refused(format!(
                "{old} is not a writable primary ({}): switchover swaps a healthy primary and standby; after a loss use `ha-setup recover promote`",
                from.describe()
            ))
            .into());
        }
        let up = to.upstream().filter(|up| up.node.as_ref() == Some(&old));
        if up.is_none_or(|up| up.receiving != LinkState::Running) {
            return Err(Exit::refused(format!(
                "{new} does not stream from {old} ({}): fix the link first (`ha-setup status`)",
                to.describe()
            ))
            .into());
        }
        let old_cluster = layout::cluster(cx, &old)?;
        let new_cluster = layout::cluster(cx, &new)?;
        let (o, n) = (old.clone(), new.clone());
        Ok(Verdict::Todo(vec![Action::Call {
            on: vec![old.clone(), new.clone()],
            why: format!(
                "stop {old} cleanly (the application's writes fail until {new} is promoted), wait up to {}s for {new} to replay {old}'s last record, promote {new}; on any failure before the promotion {old} starts again and takes writes",
                CATCH_UP.as_secs()
            ),
            call: Call::new(move |cx| switch(cx, &o, &n, &old_cluster, &new_cluster)),
        }]))
    }
}

fn switch(
    cx: &mut Ctx<'_>,
    old: &NodeName,
    new: &NodeName,
    old_cluster: &Cluster,
    new_cluster: &Cluster,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    cx.host(old)
        .run_ok(&service::stop(old_cluster))
        .with_context(|| format!("stopping PostgreSQL on {old}"))?;
    let last = match last_checkpoint(cx, old, old_cluster) {
        Ok(lsn) => lsn,
        Err(err) => return undo(cx, old, old_cluster, err),
    };
    lines.push(format!(
        "{old} stopped; its last record, the shutdown checkpoint, is at {last}"
    ));
    let caught_up = wait_replayed(cx, new, new_cluster, last);
    let replayed = match caught_up {
        Ok(lsn) => lsn,
        Err(err) => return undo(cx, old, old_cluster, err),
    };
    lines.push(format!(
        "{new} replayed up to {replayed}: it holds everything {old} wrote"
    ));
    let promoted = client::execute(
        cx.host(new),
        &new_cluster.id(),
        &Input::Text(format!("{}\n{FENCE_AGAIN_SQL}\n", service::PROMOTE_SQL)),
    );
    if let Err(err) = promoted {
        return undo(cx, old, old_cluster, err);
    }
    lines.push(format!("{new} takes writes"));
    Ok(lines)
}

/// Before the promotion: the old primary starts again (fenced, as every node) and takes
/// writes again; the error says what happened and that nothing changed hands.
fn undo(
    cx: &mut Ctx<'_>,
    old: &NodeName,
    cluster: &Cluster,
    err: anyhow::Error,
) -> anyhow::Result<Vec<String>> {
    let mut cmd = service::start(cluster);
    cmd.script.push_str(&format!(
        "\ncd / && exec runuser -u postgres -- psql --cluster {} -X -q -A -t -v ON_ERROR_STOP=1",
        quote(&cluster.id())
    ));
    let back = cx.host(old).run_with_input(&cmd, reopen_sql().as_bytes());
    match back {
        Ok(output) if output.success() => Err(err.context(format!(
            "the switchover stopped before the promotion: {old} runs again and takes writes; nothing changed hands"
        ))),
        Ok(output) => Err(err.context(format!(
            "the switchover stopped before the promotion, and {old} did not take writes again ({}): no node takes writes now; start it and run `ha-setup recover unfence`",
            output.stderr.trim()
        ))),
        Err(again) => Err(err.context(format!(
            "the switchover stopped before the promotion, and {old} could not be started again ({again}): no node takes writes now; start it and run `ha-setup recover unfence`"
        ))),
    }
}

/// The stopped primary's last checkpoint (its shutdown checkpoint), from its control file.
fn last_checkpoint(cx: &mut Ctx<'_>, on: &NodeName, cluster: &Cluster) -> anyhow::Result<Lsn> {
    let text = cx.host(on).run_ok(
        &Cmd::new(format!(
            "LC_ALL=C /usr/lib/postgresql/{}/bin/pg_controldata {}",
            cluster.version,
            quote(&cluster.datadir)
        ))
        .as_root(),
    )?;
    let state = field(&text, "Database cluster state").unwrap_or_default();
    if state != "shut down" {
        bail!("{on} did not shut down cleanly (its control file says {state:?})");
    }
    field(&text, "Latest checkpoint location")
        .context("pg_controldata names no latest checkpoint")?
        .parse()
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim_start().strip_prefix(':'))
        .map(str::trim)
}

/// Waits until the standby has replayed past `last` (the record that starts there is then
/// whole on it).
fn wait_replayed(
    cx: &mut Ctx<'_>,
    on: &NodeName,
    cluster: &Cluster,
    last: Lsn,
) -> anyhow::Result<Lsn> {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let replayed: Option<String> = client::json(
            cx.host(on),
            &cluster.id(),
            "SELECT to_json(pg_last_wal_replay_lsn()::text)",
        )?;
        let replayed: Option<Lsn> = replayed.and_then(|r| r.parse().ok());
        if let Some(replayed) = replayed
            && replayed > last
        {
            return Ok(replayed);
        }
        if Instant::now() >= deadline {
            bail!(
                "{on} did not replay the primary's last record ({last}) within {}s (it is at {})",
                CATCH_UP.as_secs(),
                replayed.map_or_else(|| "no position".to_owned(), |r| r.to_string())
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// follow: the old primary starts as the new one's standby; the other standbys stream from
/// the new primary, each through a slot of its own there.
pub struct Follow;

impl Step for Follow {
    fn name(&self) -> &'static str {
        "follow"
    }

    fn purpose(&self) -> &'static str {
        "the old primary and the other standbys stream from the new primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let new = cx.roles.source.clone();
        let mut followers: Vec<NodeName> = cx.roles.old.iter().cloned().collect();
        followers.extend(cx.roles.targets.iter().cloned());
        if cx.predicting() {
            return Ok(Verdict::Todo(vec![Action::Call {
                on: followers.clone(),
                why: format!(
                    "{} stream from {new} (slots there, settings, the old primary started as a standby)",
                    crate::topology::and_list(&followers)
                ),
                call: Call::new(|_| Ok(Vec::new())),
            }]));
        }
        let new_cluster = layout::cluster(cx, &new)?;
        let seen = cx.observe(&new);
        let server = observe::server(&seen)
            .cloned()
            .with_context(|| format!("PostgreSQL on {new} does not answer"))?;
        let mut actions = slots(cx, &new, &new_cluster, &server, &followers)?;
        let port = cx.node(&new).db_port.unwrap_or(new_cluster.port);
        let (secret, _) = crate::password::password(cx)?;
        for follower in followers {
            actions.extend(configure(cx, &new, &follower, port, &secret)?);
            if !cx.observe(&follower).answers() {
                let cluster = layout::cluster(cx, &follower)?;
                actions.push(Action::Run {
                    on: follower.clone(),
                    why: format!("start PostgreSQL {} as {new}'s standby", cluster.id()),
                    cmd: service::start(&cluster),
                    input: Input::None,
                });
            }
        }
        Ok(if actions.is_empty() {
            Verdict::Done(format!("every other node streams from {new}"))
        } else {
            Verdict::Todo(actions)
        })
    }
}
