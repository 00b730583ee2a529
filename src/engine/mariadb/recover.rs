//! After losing the primary: promote the most advanced replica (refused while the primary
//! still takes writes), fence the old primary, point the other replicas at the new one;
//! reopen writes after a planned restart (unfence); turn old primaries into replicas
//! (rejoin), refusing when their history diverged; and set a replica's seed aside so that
//! rebuild re-seeds it. Who is who was resolved from the observed topology before the
//! plan ran (`Ctx::roles`); each step checks the node it acts on again.

use std::time::Duration;

use anyhow::{Context, bail};

use super::client::{self, literal};
use super::facts;
use super::layout;
use super::link::{change_master, source_port};
use super::observe::{self, holdings};
use super::primary::password;
use crate::error::Exit;
use crate::host::{Cmd, Host, HostExt, quote};
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Input, Step, Verdict};
use crate::secret::Secret;

/// How long a replica may take to apply what it received before it is promoted or
/// pointed elsewhere.
const APPLY_WAIT: Duration = Duration::from_secs(60);

pub struct CheckPrimary;

impl Step for CheckPrimary {
    fn name(&self) -> &'static str {
        "check-primary"
    }

    fn purpose(&self) -> &'static str {
        "what the old primary and the replicas show; the most advanced replica is promoted"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        let seen = cx.observe(&target);
        let mut lines = vec![format!("{target} is promoted: {}", seen.describe())];
        if let Some(old) = cx.roles.old.clone() {
            lines.push(format!(
                "the old primary {old}: {}",
                cx.observe(&old).describe()
            ));
        }
        for other in cx.roles.targets.clone() {
            lines.push(format!(
                "{other} follows {target}: {}",
                cx.observe(&other).describe()
            ));
        }
        Ok(Verdict::Done(lines.join("\n      ")))
    }
}

pub struct Fence;

impl Step for Fence {
    fn name(&self) -> &'static str {
        "fence"
    }

    fn purpose(&self) -> &'static str {
        "make the old primary read-only, if it can be reached"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let Some(old) = cx.roles.old.clone() else {
            return Ok(Verdict::Done("no old primary to fence".into()));
        };
        let seen = cx.observe(&old);
        match &seen.db {
            None => Ok(Verdict::Done(format!(
                "{old} does not answer; when it comes back it is read-only, as its config says"
            ))),
            Some(db) if !db.writable => Ok(Verdict::Done(format!("{old} is read-only"))),
            Some(_) => Ok(Verdict::Todo(vec![Action::Run {
                on: old.clone(),
                why: "fence: read_only=ON, so it takes no more writes".into(),
                cmd: client::command(),
                input: Input::Text("SET GLOBAL read_only = ON;\n".into()),
            }])),
        }
    }
}

pub struct Promote;

impl Step for Promote {
    fn name(&self) -> &'static str {
        "promote"
    }

    fn purpose(&self) -> &'static str {
        "apply what the replica received, stop replicating, open writes"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        if cx.observe(&target).writable_primary() {
            return Ok(Verdict::Done(format!("{target} takes writes")));
        }
        Ok(Verdict::Todo(vec![Action::Call {
            on: vec![target.clone()],
            why: format!(
                "promote: apply the relay log (up to {}s), report the loss window, stop and forget replication, read_only=OFF",
                APPLY_WAIT.as_secs()
            ),
            call: Call::new(move |cx| promote(cx.host(&target))),
        }]))
    }
}

/// Stops receiving, lets the replica apply what it has, and reports it.
fn drain(host: &mut dyn Host) -> anyhow::Result<Vec<String>> {
    let mut report = Vec::new();
    if facts::replica(host)?.is_none() {
        return Ok(report);
    }
    client::execute(host, &Input::Text("STOP SLAVE IO_THREAD;\n".into()))?;
    let replica = facts::replica(host)?.context("the replica connection vanished")?;
    let received = replica.gtid_io_pos.clone();
    if replica.sql_ok() && !received.is_empty() {
        let waited = client::row(
            host,
            &format!(
                "SELECT MASTER_GTID_WAIT({}, {})",
                literal(&received),
                APPLY_WAIT.as_secs()
            ),
        )?;
        if waited.first().cloned().flatten().as_deref() != Some("0") {
            report.push(format!(
                "WARNING: not everything {} received was applied within {} s",
                host.label(),
                APPLY_WAIT.as_secs()
            ));
        }
    }
    let applied = facts::server(host)?.gtid_slave_pos;
    report.push(format!(
        "{}: last transaction received from the old primary: {}; last applied: {}",
        host.label(),
        if received.is_empty() {
            "none"
        } else {
            &received
        },
        if applied.is_empty() { "none" } else { &applied }
    ));
    Ok(report)
}

fn promote(host: &mut dyn Host) -> anyhow::Result<Vec<String>> {
    let mut report = drain(host)?;
    client::execute(
        host,
        &Input::Text("STOP SLAVE;\nRESET SLAVE ALL;\nSET GLOBAL read_only = OFF;\n".into()),
    )?;
    report.push(format!("{} takes writes", host.label()));
    Ok(report)
}

/// repoint: every other replica follows the new primary, once it has applied what it
/// received from the old one and holds nothing the new primary lacks.
pub struct Repoint;

impl Step for Repoint {
    fn name(&self) -> &'static str {
        "repoint"
    }

    fn purpose(&self) -> &'static str {
        "the other replicas replicate from the new primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let primary = cx.roles.source.clone();
        let mut actions = Vec::new();
        let mut done = Vec::new();
        for other in cx.roles.targets.clone() {
            let seen = cx.observe(&other);
            if seen.upstream().and_then(|up| up.node.as_ref()) == Some(&primary) {
                done.push(format!("{other} replicates from {primary}"));
                continue;
            }
            if !seen.answers() {
                done.push(format!(
                    "{other} does not answer ({}); when it is back: `ha-setup init` points it at {primary}",
                    seen.describe()
                ));
                continue;
            }
            let primary = primary.clone();
            actions.push(Action::Call {
                on: vec![other.clone(), primary.clone()],
                why: format!(
                    "{other}: apply what it received (up to {}s), check it holds nothing {primary} lacks, replicate from {primary}",
                    APPLY_WAIT.as_secs()
                ),
                call: Call::new(move |cx| repoint(cx, &other, &primary)),
            });
        }
        Ok(if actions.is_empty() {
            Verdict::Done(if done.is_empty() {
                "no other replica".into()
            } else {
                done.join("; ")
            })
        } else {
            Verdict::Todo(actions)
        })
    }
}

fn repoint(cx: &mut Ctx<'_>, node: &NodeName, primary: &NodeName) -> anyhow::Result<Vec<String>> {
    let secret = Secret::new(client::escape(password(cx)?.0.expose()));
    let port = source_port(cx, primary)?;
    let mut report = drain(cx.host(node))?;
    let mine = holdings(&cx.observe_fresh(node));
    let theirs = holdings(&cx.observe_fresh(primary));
    if observe::order(&theirs, &mine).is_none_or(|o| o == std::cmp::Ordering::Less) {
        bail!(
            "{node} holds transactions {primary} never got ({} against {}); it was left stopped, not pointed at {primary}. \
             Look at them, then re-seed it: ha-setup recover rebuild {node}",
            cx.observe(node).db.map(|d| d.position).unwrap_or_default(),
            cx.observe(primary)
                .db
                .map(|d| d.position)
                .unwrap_or_default()
        );
    }
    let sql = format!(
        "STOP SLAVE;\n{}\nSTART SLAVE;\n",
        change_master(cx.config, primary, port)
    );
    client::execute(cx.host(node), &Input::WithSecret(sql, secret))?;
    report.push(format!("{node} replicates from {primary}"));
    Ok(report)
}

pub struct FirstWrite;

impl Step for FirstWrite {
    fn name(&self) -> &'static str {
        "first-write"
    }

    fn purpose(&self) -> &'static str {
        "a write accepted on the new primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        let schema = layout::SCHEMA;
        Ok(Verdict::Todo(vec![Action::Run {
            on: target,
            why: "write a canary row: the new primary takes writes".into(),
            cmd: client::command(),
            input: Input::Text(format!(
                "CREATE DATABASE IF NOT EXISTS {schema};\n\
                 CREATE TABLE IF NOT EXISTS {schema}.canary (id TINYINT UNSIGNED PRIMARY KEY, token CHAR(32) NOT NULL, written_at DATETIME(6) NOT NULL) ENGINE=InnoDB;\n\
                 REPLACE INTO {schema}.canary VALUES (1, 'promoted', NOW(6));\n"
            )),
        }]))
    }
}

pub struct Unfence;

impl Step for Unfence {
    fn name(&self) -> &'static str {
        "unfence"
    }

    fn purpose(&self) -> &'static str {
        "reopen writes on the primary once no other node is primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        if cx.observe(&target).writable_primary() {
            return Ok(Verdict::Done(format!("{target} takes writes already")));
        }
        Ok(Verdict::Todo(vec![super::primary::open_writes(&target)]))
    }
}

/// A GTID position as (domain, server, sequence) triples.
pub fn parse_gtids(list: &str) -> Vec<(u32, u32, u64)> {
    list.split(',')
        .filter_map(|gtid| {
            let mut parts = gtid.trim().split('-');
            Some((
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// Transactions the old primary wrote that the new primary never applied: for each
/// domain, the old primary's own binlog position beyond what the new one applied from it.
pub fn errant(
    old_binlog: &str,
    old_server_id: u32,
    new_applied: &str,
) -> Vec<(u32, u32, u64, u64)> {
    let applied = parse_gtids(new_applied);
    parse_gtids(old_binlog)
        .into_iter()
        .filter(|(_, server, _)| *server == old_server_id)
        .filter_map(|(domain, server, last)| {
            let have = applied
                .iter()
                .find(|(d, _, _)| *d == domain)
                .map_or(0, |(_, _, seq)| *seq);
            (last > have).then_some((domain, server, have + 1, last))
        })
        .collect()
}

pub struct Rejoin;

impl Step for Rejoin {
    fn name(&self) -> &'static str {
        "rejoin"
    }

    fn purpose(&self) -> &'static str {
        "old primaries replicate from the primary now, unless their history diverged"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let new = cx.roles.source.clone();
        let mut actions = Vec::new();
        let mut done = Vec::new();
        for old in cx.roles.targets.clone() {
            let old_seen = cx.observe(&old);
            let Some(old_state) = observe::state(&old_seen) else {
                bail!(
                    "{old} ({}) does not answer: start its MariaDB (it comes back read-only), then run rejoin again",
                    old_seen.label
                );
            };
            if old_state.replica.is_some() {
                done.push(format!("{old} replicates already"));
                continue;
            }
            let new_seen = cx.observe(&new);
            let new_state = observe::state(&new_seen).context("the primary answers")?;
            let old_server = &old_state.server;
            let diverged = errant(
                &old_server.gtid_binlog_pos,
                old_server.server_id,
                &new_state.server.gtid_slave_pos,
            );
            if !diverged.is_empty() {
                let list: Vec<String> = diverged
                    .iter()
                    .map(|(d, s, first, last)| {
                        if first == last {
                            format!("{d}-{s}-{first}")
                        } else {
                            format!(
                                "{d}-{s}-{first} … {d}-{s}-{last} ({} transactions)",
                                last - first + 1
                            )
                        }
                    })
                    .collect();
                let applied = &new_state.server.gtid_slave_pos;
                return Err(Exit::refused(format!(
                    "refusing to rejoin {old}: it has transactions {new} never received (errant): {}.\n\
                     They were written after the last one {new} applied ({}), probably just before the old primary was lost. \
                     Rejoining would silently drop them. Look at them on {old} (mariadb-binlog over its binary logs, SHOW BINARY LOGS), \
                     save what matters, then re-seed {old} from {new}: ha-setup recover rebuild {old}",
                    list.join(", "),
                    if applied.is_empty() { "none" } else { applied }
                ))
                .into());
            }
            let port = source_port(cx, &new)?;
            let (secret, _) = password(cx)?;
            let secret = Secret::new(client::escape(secret.expose()));
            let sql = format!(
                "SET GLOBAL read_only = ON;\n\
                 STOP SLAVE;\n\
                 RESET SLAVE ALL;\n\
                 SET GLOBAL gtid_slave_pos = {gtid};\n\
                 {change}\n\
                 START SLAVE;\n",
                gtid = literal(&old_server.gtid_binlog_pos),
                change = change_master(cx.config, &new, port),
            );
            actions.push(Action::Run {
                on: old.clone(),
                why: format!(
                    "replicate from {new} by GTID, from where this node's own history ends"
                ),
                cmd: client::command(),
                input: Input::WithSecret(sql, secret),
            });
        }
        Ok(if actions.is_empty() {
            Verdict::Done(done.join("; "))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// rebuild's first step: set the target's seed record aside, so package, transfer and
/// unpack seed it afresh (its datadir is moved aside by unpack, as in init).
pub struct DiscardSeed;

impl Step for DiscardSeed {
    fn name(&self) -> &'static str {
        "discard-seed"
    }

    fn purpose(&self) -> &'static str {
        "the replica's copy is to be replaced: set its seed record aside"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let mut actions = Vec::new();
        for target in cx.roles.targets.clone() {
            if cx.observe(&target).writable_primary() {
                return Err(Exit::refused(format!(
                    "refusing to rebuild {target}: it takes writes (it is a primary).{}",
                    cx.topology().table()
                ))
                .into());
            }
            let record = layout::SEED_RECORD;
            let present = cx
                .host(&target)
                .run(&Cmd::new(format!("test -e {}", quote(record))).as_root())?
                .success();
            if !present {
                continue;
            }
            let stamp = jiff::Timestamp::now()
                .strftime("%Y%m%dT%H%M%SZ")
                .to_string();
            actions.push(Action::Run {
                on: target.clone(),
                why: format!("set the seed record aside ({record}.replaced-{stamp})"),
                cmd: Cmd::new(format!("mv -- {r} {r}.replaced-{stamp}", r = quote(record)))
                    .as_root(),
                input: Input::None,
            });
        }
        Ok(if actions.is_empty() {
            Verdict::Done("no seed record: the next steps seed it".into())
        } else {
            Verdict::Todo(actions)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_lists() {
        assert_eq!(parse_gtids("0-1-100,1-2-7"), vec![(0, 1, 100), (1, 2, 7)]);
        assert!(parse_gtids("").is_empty());
    }

    #[test]
    fn errant_transactions_are_those_never_applied() {
        // The new primary applied up to 0-1-98 from the old one; the old wrote 99 and 100.
        assert_eq!(errant("0-1-100", 1, "0-1-98"), vec![(0, 1, 99, 100)]);
        assert!(errant("0-1-98", 1, "0-1-98").is_empty());
        // Positions the old primary only replicated (another server's) are not its own.
        assert!(errant("0-2-120", 1, "0-1-98").is_empty());
        assert_eq!(errant("0-1-3", 1, ""), vec![(0, 1, 1, 3)]);
    }
}
