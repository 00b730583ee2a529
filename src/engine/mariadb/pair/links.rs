//! The links of two writers: each node replicates from the other by GTID over TLS.
//! link-back (init, rebuild) makes the source replicate from the node it seeded; links
//! (rejoin) makes both directions run; stop-link-back (rebuild) stops the source applying
//! the old stream of the node about to be re-seeded; verify-link checks both directions.

use std::time::Duration;

use anyhow::Context;

use super::{conflict, members, other};
use crate::engine::Canary;
use crate::engine::mariadb::client::{self};
use crate::engine::mariadb::facts;
use crate::engine::mariadb::link::{
    NET_TIMEOUT_SECS, UNLOGGED, change_master, is_ours, kept_link, net_timeout, source_port,
    wait_for_threads,
};
use crate::engine::mariadb::primary::password;
use crate::error::Exit;
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Input, SECRET_MARK, Step, Verdict};
use crate::secret::Secret;

/// Each node replicates from the other: `both: false` only the source from its targets
/// (init and rebuild, where the targets' links from the source are enable-replication's),
/// `both: true` every node from the other (rejoin).
pub struct Links {
    pub both: bool,
}

impl Step for Links {
    fn name(&self) -> &'static str {
        if self.both { "links" } else { "link-back" }
    }

    fn purpose(&self) -> &'static str {
        if self.both {
            "each node replicates from the other by GTID, from what it holds of each domain"
        } else {
            "the source replicates from the node it seeded, from what it holds of each domain"
        }
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let source = cx.roles.source.clone();
        let directions: Vec<(NodeName, NodeName)> = if self.both {
            let nodes = members(cx);
            nodes
                .iter()
                .map(|n| (n.clone(), other(cx.config, n)))
                .collect()
        } else {
            cx.roles
                .targets
                .iter()
                .map(|t| (source.clone(), t.clone()))
                .collect()
        };
        let (plain, _) = password(cx)?;
        let secret = Secret::new(client::escape(plain.expose()));
        let mut actions = Vec::new();
        let mut done = Vec::new();
        for (node, from) in directions {
            match link_action(cx, &node, &from, &plain)? {
                Some((why, sql)) => actions.push(Action::Run {
                    on: node.clone(),
                    why,
                    cmd: client::command(),
                    input: Input::WithSecret(sql, secret.clone()),
                }),
                None => done.push(format!("{node} replicates from {from}")),
            }
        }
        Ok(if actions.is_empty() {
            Verdict::Done(done.join("; "))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// What makes `node` replicate from `from`, if anything: the reason and the SQL (with the
/// password as [`SECRET_MARK`]).
fn link_action(
    cx: &mut Ctx<'_>,
    node: &NodeName,
    from: &NodeName,
    plain: &Secret,
) -> anyhow::Result<Option<(String, String)>> {
    let port = source_port(cx, from)?;
    let fresh = cx.roles.fresh_copy && *node == cx.roles.source;
    let replica = if cx.predicting() {
        None
    } else {
        facts::replica(cx.host(node))?
    };
    if let Some(replica) = replica.filter(|r| is_ours(r, cx.config, from, port)) {
        let running = replica.io_ok() && replica.sql_ok();
        // Cut off from the other node, or the other restarted: it reconnects on its own.
        let reconnecting = replica.io_running == "Connecting" && replica.sql_ok();
        // After a re-seed the link is made again from what the node holds now: its relay
        // log may hold the old stream of the re-seeded node.
        if !fresh {
            if !running && !replica.last_sql_error.is_empty() {
                let seen = cx.observe(node);
                return Err(Exit::refused(format!(
                    "{node}'s link from {from} stopped on an error: {}\n{}",
                    replica.last_sql_error,
                    conflict::hint(&seen, &replica.last_sql_error)
                ))
                .into());
            }
            let kept = kept_link(cx.host(node), plain)?;
            if kept.password_differs {
                return Ok(Some((
                    format!(
                        "{node}: the replication password changed: its link from {from} reconnects with the new one"
                    ),
                    format!(
                        "STOP SLAVE;\n{UNLOGGED}{}CHANGE MASTER TO MASTER_PASSWORD = '{SECRET_MARK}';\nSTART SLAVE;\n",
                        net_timeout()
                    ),
                )));
            }
            if (running || reconnecting) && kept.net_timeout == Some(NET_TIMEOUT_SECS) {
                return Ok(None);
            }
            if running || reconnecting {
                return Ok(Some((
                    format!(
                        "{node}: notice a silent {from} within {NET_TIMEOUT_SECS}s: reconnect its link with it"
                    ),
                    format!(
                        "{}STOP SLAVE IO_THREAD;\nSTART SLAVE IO_THREAD;\n",
                        net_timeout()
                    ),
                )));
            }
            return Ok(Some((
                format!("{node}: start its link from {from}"),
                format!("{}START SLAVE;\n", net_timeout()),
            )));
        }
        if running {
            return Ok(None);
        }
    }
    // From what the node holds of every domain (gtid_current_pos: its own writes, what it
    // applied of the other's): the other node sends what follows in each. Its own domain
    // may be ahead of what the other has applied; gtid_ignore_duplicates lets the other
    // accept that, and the node's own transactions that come back are skipped.
    let sql = format!(
        "STOP SLAVE;\n\
         RESET SLAVE ALL;\n\
         SET GLOBAL gtid_slave_pos = @@global.gtid_current_pos;\n\
         {change}\n\
         START SLAVE;\n",
        change = change_master(cx.config, from, port),
    );
    Ok(Some((
        format!(
            "{node} replicates from {from} ({}:{port}) by GTID, from what {node} holds of each domain{}",
            cx.node(from).replication_address(),
            if fresh {
                " (made anew: the old stream of the re-seeded node is discarded)"
            } else {
                ""
            }
        ),
        sql,
    )))
}

/// rebuild: the source stops applying the stream of the node it is about to re-seed. The
/// copy holds what the source applied up to here; the re-seeded node numbers its new
/// writes after that, so the source must apply nothing more of the old ones (they stay
/// with the node's old data, moved aside). link-back makes the link anew afterwards.
pub struct StopLinkBack;

impl Step for StopLinkBack {
    fn name(&self) -> &'static str {
        "stop-link-back"
    }

    fn purpose(&self) -> &'static str {
        "the source stops applying what the node to re-seed wrote"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let source = cx.roles.source.clone();
        let mut actions = Vec::new();
        for target in cx.roles.targets.clone() {
            let replica = facts::replica(cx.host(&source))?;
            let running = replica
                .as_ref()
                .is_some_and(|r| r.io_running != "No" || r.sql_ok());
            if running || cx.predicting() {
                actions.push(Action::Run {
                    on: source.clone(),
                    why: format!(
                        "stop replicating from {target} (what {target} wrote that {source} has not applied stays with {target}'s old data)"
                    ),
                    cmd: client::command(),
                    input: Input::Text("STOP SLAVE;\n".into()),
                });
            }
        }
        Ok(if actions.is_empty() {
            Verdict::Done(format!("{source} applies nothing from the node to re-seed"))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// verify-link: both links run, and a canary written on each node that takes writes
/// arrives on the other.
pub struct VerifyLinks;

const VERIFY_TIMEOUT: Duration = Duration::from_secs(60);

impl Step for VerifyLinks {
    fn name(&self) -> &'static str {
        "verify-link"
    }

    fn purpose(&self) -> &'static str {
        "both links running, no error, and a canary from each writable node arrives on the other"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let nodes: Vec<NodeName> = cx.config.nodes.keys().cloned().collect();
        Ok(Verdict::Todo(vec![Action::Call {
            on: nodes.clone(),
            why: format!(
                "wait for both links, then write a canary on each node that takes writes and wait up to {}s for it on the other",
                VERIFY_TIMEOUT.as_secs()
            ),
            call: Call::new(move |cx| verify(cx, &nodes, VERIFY_TIMEOUT)),
        }]))
    }
}

fn verify(cx: &mut Ctx<'_>, nodes: &[NodeName], timeout: Duration) -> anyhow::Result<Vec<String>> {
    for node in nodes {
        let from = other(cx.config, node);
        wait_for_threads(cx.host(node), timeout)
            .with_context(|| format!("the link {from} → {node}"))?;
    }
    let mut lines = Vec::new();
    for node in nodes {
        let from = other(cx.config, node);
        let (writer_host, reader_host) = cx.pair(&from, node);
        match crate::engine::mariadb::link::canary(writer_host, vec![reader_host], timeout)? {
            Canary::Skipped(why) => {
                lines.push(format!("the link {from} → {node} runs; no canary: {why}"))
            }
            Canary::Arrived(results) => match results.into_iter().next() {
                Some(Ok(took)) => lines.push(format!(
                    "a canary from {from} arrived on {node} in {} ms",
                    took.as_millis()
                )),
                Some(Err(why)) => anyhow::bail!("the link {from} → {node}: {why}"),
                None => {}
            },
        }
        cx.forget(&from);
        cx.forget(node);
    }
    Ok(lines)
}
