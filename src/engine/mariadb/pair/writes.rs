//! Writes on two writers. open-writes: a node that is read-only (every node starts so, the
//! fence of a restart) takes writes again only once it has applied everything the other
//! node wrote, read from the other node when it opens; so it never takes writes while it
//! lacks the other's. fence (rebuild): the node to re-seed takes no more writes.

use std::time::Duration;

use anyhow::bail;

use super::{members, other};
use crate::engine::mariadb::client::{self, literal};
use crate::engine::mariadb::primary::open_writes;
use crate::engine::mariadb::recover::{Fenced, fence, parse_gtids};
use crate::error::Exit;
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Step, Verdict};
use crate::topology::LinkState;

/// How long a node may take to apply what the other wrote before it opens.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(60);

pub struct OpenWrites;

impl Step for OpenWrites {
    fn name(&self) -> &'static str {
        "open-writes"
    }

    fn purpose(&self) -> &'static str {
        "each read-only node takes writes once it has applied everything the other node wrote"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let nodes = members(cx);
        let mut actions = Vec::new();
        let mut done = Vec::new();
        for node in &nodes {
            // The other node to catch up with; none when the operator opens this one with
            // --force because the other cannot be checked.
            let peer = (nodes.len() == 2).then(|| other(cx.config, node));
            if cx.predicting() {
                actions.push(open_action(node, peer));
                continue;
            }
            let seen = cx.observe(node);
            let Some(db) = &seen.db else {
                bail!(
                    "{node} ({}) does not answer, so its writes cannot be opened: {}",
                    seen.label,
                    seen.describe()
                );
            };
            if db.writable {
                done.push(format!("{node} takes writes"));
                continue;
            }
            if let Some(peer) = &peer {
                let up = seen.upstream();
                let healthy = up.is_some_and(|up| {
                    up.node.as_ref() == Some(peer)
                        && up.receiving == LinkState::Running
                        && up.applying == LinkState::Running
                });
                if !healthy {
                    let state = match up {
                        None => "it does not replicate from anywhere".to_owned(),
                        Some(up) => format!(
                            "receiving: {}, applying: {}{}",
                            up.receiving.as_str(),
                            up.applying.as_str(),
                            up.error
                                .as_deref()
                                .map_or(String::new(), |e| format!(", error: {e}"))
                        ),
                    };
                    return Err(Exit::refused(format!(
                        "{node} stays read-only: its link from {peer} is not running ({state}), so it cannot be shown to hold \
                         everything {peer} wrote. Repair the link first: ha-setup recover rejoin (it says when a re-seed is needed)"
                    ))
                    .into());
                }
            }
            actions.push(open_action(node, peer));
        }
        Ok(if actions.is_empty() {
            Verdict::Done(done.join("; "))
        } else {
            Verdict::Todo(actions)
        })
    }
}

fn open_action(node: &NodeName, peer: Option<NodeName>) -> Action {
    match peer {
        None => {
            let mut action = open_writes(node);
            if let Action::Run { why, .. } = &mut action {
                *why = format!(
                    "open writes on {node} without checking that it holds what the other node wrote (the other node cannot be checked; --force)"
                );
            }
            action
        }
        Some(peer) => {
            let node = node.clone();
            Action::Call {
                on: vec![peer.clone(), node.clone()],
                why: format!(
                    "if {node} is read-only: read the last transaction {peer} wrote, wait up to {}s until {node} has applied it, then read_only=OFF on {node}",
                    CATCH_UP_WAIT.as_secs()
                ),
                call: Call::new(move |cx| catch_up_and_open(cx, &node, &peer)),
            }
        }
    }
}

/// The last transaction `peer` wrote itself (in its own GTID domain), if any.
fn last_own(cx: &mut Ctx<'_>, peer: &NodeName) -> anyhow::Result<Option<String>> {
    let row = client::row(
        cx.host(peer),
        "SELECT @@global.gtid_domain_id, @@global.gtid_binlog_pos",
    )?;
    let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let domain: u32 = field(0).parse().unwrap_or(0);
    Ok(parse_gtids(&field(1))
        .into_iter()
        .find(|(d, _, _)| *d == domain)
        .map(|(d, s, n)| format!("{d}-{s}-{n}")))
}

fn catch_up_and_open(
    cx: &mut Ctx<'_>,
    node: &NodeName,
    peer: &NodeName,
) -> anyhow::Result<Vec<String>> {
    let state = client::row(cx.host(node), "SELECT @@global.read_only")?;
    if state.first().cloned().flatten().as_deref() == Some("0") {
        return Ok(vec![format!("{node} takes writes already")]);
    }
    let mut lines = Vec::new();
    match last_own(cx, peer)? {
        None => lines.push(format!("{peer} has written nothing of its own yet")),
        Some(gtid) => {
            let waited = client::row(
                cx.host(node),
                &format!(
                    "SELECT MASTER_GTID_WAIT({}, {})",
                    literal(&gtid),
                    CATCH_UP_WAIT.as_secs()
                ),
            )?;
            if waited.first().cloned().flatten().as_deref() != Some("0") {
                return Err(Exit::refused(format!(
                    "{node} has not applied {peer}'s transaction {gtid} within {}s, so it stays read-only \
                     (it would take writes while lacking some of {peer}'s). See `ha-setup status` for its link; run again once it has caught up",
                    CATCH_UP_WAIT.as_secs()
                ))
                .into());
            }
            lines.push(format!(
                "{node} has applied everything {peer} wrote (up to {gtid})"
            ));
        }
    }
    client::execute(
        cx.host(node),
        &crate::plan::Input::Text("SET GLOBAL read_only = OFF;\n".into()),
    )?;
    lines.push(format!("{node} takes writes"));
    Ok(lines)
}

/// rebuild: the node to re-seed takes no more writes (they would be lost with its old
/// data); waits at most fence_timeout_secs for running writes.
pub struct FenceTarget;

impl Step for FenceTarget {
    fn name(&self) -> &'static str {
        "fence"
    }

    fn purpose(&self) -> &'static str {
        "the node to re-seed takes no more writes"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let mut actions = Vec::new();
        let mut done = Vec::new();
        for target in cx.roles.targets.clone() {
            let seen = cx.observe(&target);
            match &seen.db {
                None => done.push(format!(
                    "{target} does not answer; it comes back read-only, as its config says"
                )),
                Some(db) if !db.writable && !cx.predicting() => {
                    done.push(format!("{target} is read-only"))
                }
                Some(_) => {
                    let secs = cx.config.replication.fence_timeout_secs;
                    actions.push(Action::Call {
                        on: vec![target.clone()],
                        why: format!(
                            "fence: read_only=ON (waiting at most {secs}s for running writes); what it wrote that the other node lacks stays with its old data"
                        ),
                        call: Call::new(move |cx| match fence(cx.host(&target), secs)? {
                            Fenced::Yes => Ok(vec![format!("{target} is read-only")]),
                            Fenced::TimedOut(why) => {
                                bail!("{why}\nNothing was re-seeded: {target} takes writes as before.")
                            }
                        }),
                    });
                }
            }
        }
        Ok(if actions.is_empty() {
            Verdict::Done(done.join("; "))
        } else {
            Verdict::Todo(actions)
        })
    }
}
