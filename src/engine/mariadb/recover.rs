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
use crate::host::Host;
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Input, Step, Verdict};
use crate::secret::Secret;

/// How long a replica may take to apply what it received before it is promoted or
/// pointed elsewhere.
const APPLY_WAIT: Duration = Duration::from_secs(60);

pub use crate::promote::CheckPrimary;

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
            Some(_) => {
                let secs = cx.config.replication.fence_timeout_secs;
                Ok(Verdict::Todo(vec![Action::Call {
                    on: vec![old.clone()],
                    why: format!(
                        "fence: read_only=ON (waiting at most {secs}s for running writes), so it takes no more writes"
                    ),
                    call: Call::new(move |cx| match fence(cx.host(&old), secs)? {
                        Fenced::Yes => Ok(vec![format!("{old} is read-only")]),
                        Fenced::TimedOut(why) => {
                            bail!("{why}\nNothing was promoted: {old} takes writes as before.")
                        }
                    }),
                }]))
            }
        }
    }
}

/// How a bounded fence ended.
pub enum Fenced {
    Yes,
    /// The bound ran out and nothing changed: why, with the statements in the way.
    TimedOut(String),
}

/// Fences a primary (`read_only = ON`), waiting at most `secs` for what that waits for:
/// every running write statement (and, behind the fence meanwhile, the application's new
/// writes). When the bound runs out nothing changed, and the answer names the statements
/// that were running. Any other failure is an error: whether the fence took is unknown.
pub fn fence(host: &mut dyn Host, secs: u64) -> anyhow::Result<Fenced> {
    let sql = client::bounded("SET GLOBAL read_only = ON;\n", secs);
    let Err(err) = client::execute(host, &Input::Text(sql)) else {
        return Ok(Fenced::Yes);
    };
    if !client::timed_out(&err) {
        return Err(err.context(format!(
            "fencing {} (SET GLOBAL read_only = ON)",
            host.label()
        )));
    }
    let running = match running_statements(host) {
        Ok(running) if running.is_empty() => {
            "none is running now (they ended after the fence gave up)".to_owned()
        }
        Ok(running) => format!("these were running:\n    {}", running.join("\n    ")),
        Err(list) => format!("and listing them failed: {list:#}"),
    };
    Ok(Fenced::TimedOut(format!(
        "{} could not be fenced within {secs}s ([replication] fence_timeout_secs): \
         SET GLOBAL read_only = ON waits for every running write statement, and {running}\n\
         Let them finish, or end them (KILL ID), or raise fence_timeout_secs; then run again.",
        host.label()
    )))
}

/// The statements running on a server, longest first: what a fence waits for.
fn running_statements(host: &mut dyn Host) -> anyhow::Result<Vec<String>> {
    let rows = client::rows(
        host,
        "SELECT ID, USER, HOST, TIME, LEFT(INFO, 200) FROM information_schema.PROCESSLIST \
         WHERE ID <> CONNECTION_ID() AND COMMAND IN ('Query', 'Execute') AND INFO IS NOT NULL \
         AND IFNULL(STATE, '') NOT LIKE 'Waiting for backup lock%' \
         ORDER BY TIME DESC, ID LIMIT 10",
    )?;
    Ok(rows.iter().map(|row| describe_statement(row)).collect())
}

/// `id 12, app@localhost, running 8 s: UPDATE app.t SET …`, on one line.
fn describe_statement(row: &[Option<String>]) -> String {
    let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let query: String = field(4).split_whitespace().collect::<Vec<_>>().join(" ");
    let query = if query.chars().count() > 100 {
        format!("{}…", query.chars().take(100).collect::<String>())
    } else {
        query
    };
    format!(
        "id {}, {}@{}, running {} s: {query}",
        field(0),
        field(1),
        field(2),
        field(3)
    )
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
            call: Call::new(move |cx| {
                let secs = cx.config.replication.fence_timeout_secs;
                promote(cx.host(&target), secs)
            }),
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

/// What makes a drained replica the primary, each statement bounded.
pub fn promotion(secs: u64) -> String {
    client::bounded(
        "STOP SLAVE;\nRESET SLAVE ALL;\nSET GLOBAL read_only = OFF;\n",
        secs,
    )
}

fn promote(host: &mut dyn Host, secs: u64) -> anyhow::Result<Vec<String>> {
    let mut report = drain(host)?;
    client::execute(host, &Input::Text(promotion(secs)))?;
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
                "SET SESSION lock_wait_timeout = {secs}, max_statement_time = {secs};\n\
                 SET GLOBAL read_only = ON;\n\
                 SET SESSION max_statement_time = 0;\n\
                 STOP SLAVE;\n\
                 RESET SLAVE ALL;\n\
                 SET GLOBAL gtid_slave_pos = {gtid};\n\
                 {change}\n\
                 START SLAVE;\n",
                secs = cx.config.replication.fence_timeout_secs,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_in_the_way_on_one_line() {
        let row: Vec<Option<String>> = ["42", "app", "localhost", "12"]
            .into_iter()
            .map(|f| Some(f.to_owned()))
            .chain([Some(format!(
                "UPDATE app.t\n  SET v = 1 WHERE {}",
                "x".repeat(200)
            ))])
            .collect();
        let line = describe_statement(&row);
        assert!(
            line.starts_with("id 42, app@localhost, running 12 s: UPDATE app.t SET v = 1 WHERE xx"),
            "{line}"
        );
        assert!(line.ends_with('…') && !line.contains('\n'), "{line}");
    }

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
