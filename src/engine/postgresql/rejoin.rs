//! rejoin: an old primary (back, fenced, in recovery) becomes a standby of the primary
//! now. Where its WAL ends decides how:
//! - at or before the point where the new primary's timeline forked from its own: it only
//!   needs to follow, and streams the new timeline from its slot;
//! - past it, with no transaction in what lies past it (a checkpoint written at a
//!   restart): pg_rewind, without asking;
//! - past it with transactions the new primary never got: refused, naming the WAL range
//!   and the transactions, unless the operator consents with `--rewind` (not `--yes`),
//!   and then the WAL as it was is kept aside first;
//! - on a history the primary does not share: refused, offering `recover rebuild`.

use anyhow::{Context, bail};
use jiff::Timestamp;
use serde::Deserialize;

use super::client;
use super::layout::{self, Cluster};
use super::observe::{self, Server};
use super::position::Lsn;
use super::primary::slots;
use super::service;
use super::standby::configure;
use crate::error::Exit;
use crate::host::{Cmd, HostExt};
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Step, Verdict};

pub struct Rejoin {
    /// The operator consents to discarding an old primary's transactions the primary never got.
    pub rewind: bool,
}

/// How an old primary's history stands against the primary's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Divergence {
    /// Its WAL ends at or before the fork: following is enough.
    None,
    /// Its WAL goes on past the fork, from `from` to `to` on `timeline`.
    Past { timeline: u32, from: Lsn, to: Lsn },
    /// The primary's history does not contain its timeline.
    Unrelated(String),
}

impl Step for Rejoin {
    fn name(&self) -> &'static str {
        "rejoin"
    }

    fn purpose(&self) -> &'static str {
        "old primaries stream from the primary now: followed, or rewound when their WAL went on past the fork"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let new = cx.roles.source.clone();
        let new_seen = cx.observe(&new);
        let new_cluster = layout::cluster(cx, &new)?;
        let new_server = observe::server(&new_seen)
            .cloned()
            .with_context(|| format!("PostgreSQL on {new} does not answer"))?;
        let port = cx.node(&new).db_port.unwrap_or(new_cluster.port);
        let (secret, _) = crate::password::password(cx)?;
        let mut actions = Vec::new();
        let mut done = Vec::new();
        let mut joining = Vec::new();
        for old in cx.roles.targets.clone() {
            let seen = cx.observe(&old);
            let Some(server) = observe::server(&seen).cloned() else {
                bail!(
                    "{old} ({}) does not answer: start its PostgreSQL (pg_ctlcluster VERSION NAME start; it comes back in recovery, read-only), then run rejoin again",
                    seen.label
                );
            };
            if seen.upstream().and_then(|u| u.node.as_ref()) == Some(&new) && server.receiving {
                done.push(format!("{old} streams from {new} already"));
                continue;
            }
            if server.system_identifier != new_server.system_identifier {
                return Err(Exit::refused(format!(
                    "refusing to rejoin {old}: it holds another cluster (system {}) than {new} (system {}); re-seed it: ha-setup recover rebuild {old}",
                    server.system_identifier, new_server.system_identifier
                ))
                .into());
            }
            let cluster = layout::cluster(cx, &old)?;
            let history = history(cx, &new, &new_cluster)?;
            let divergence = divergence(&server, &history);
            joining.push(old.clone());
            match divergence {
                Divergence::None => {
                    actions.extend(configure(cx, &new, &old, port, &secret)?);
                }
                Divergence::Unrelated(why) => {
                    return Err(Exit::refused(format!(
                        "refusing to rejoin {old}: {why}. Neither following nor pg_rewind can bring it onto {new}'s history; re-seed it: ha-setup recover rebuild {old} (its data is moved aside, not deleted)"
                    ))
                    .into());
                }
                Divergence::Past { timeline, from, to } => {
                    let commits = transactions(cx, &old, &cluster, timeline, from, to)?;
                    if !commits.is_empty() && !self.rewind {
                        return Err(Exit::refused(format!(
                            "refusing to rejoin {old}: its WAL goes on past the point where {new} took over: \
                             {from} … {to} on timeline {timeline}, holding {} transaction{} {new} never got:\n  {}\n\
                             Rewinding {old} discards them from its database (its WAL as it is now is kept aside first). \
                             Save what matters from {old} (it answers read-only), then either consent: \
                             ha-setup recover rejoin --rewind; or keep its data and re-seed it: ha-setup recover rebuild {old}",
                            commits.len(),
                            if commits.len() == 1 { "" } else { "s" },
                            commits.join("\n  ")
                        ))
                        .into());
                    }
                    actions.extend(configure(cx, &new, &old, port, &secret)?);
                    actions.push(rewind_action(
                        cx,
                        &new,
                        &old,
                        &cluster,
                        port,
                        timeline,
                        from,
                        to,
                        commits.len(),
                    )?);
                }
            }
        }
        if !joining.is_empty() {
            let mut head = slots(cx, &new, &new_cluster, &new_server, &joining)?;
            head.extend(actions);
            actions = head;
        }
        Ok(if actions.is_empty() {
            Verdict::Done(done.join("; "))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// The primary's timeline now and its history (`0000000N.history`): for each ancestor
/// timeline, where the next one forked from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub timeline: u32,
    /// (parent timeline, the LSN its child began at).
    pub forks: Vec<(u32, Lsn)>,
}

fn history(cx: &mut Ctx<'_>, on: &NodeName, cluster: &Cluster) -> anyhow::Result<History> {
    #[derive(Deserialize)]
    struct Row {
        timeline: String,
        history: Option<String>,
    }
    let row: Row = client::json(
        cx.host(on),
        &cluster.id(),
        "SELECT json_build_object('timeline', substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), \
         'history', (SELECT pg_read_file('pg_wal/' || name) FROM pg_ls_dir('pg_wal') AS name \
         WHERE name = substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) || '.history'))",
    )?;
    let timeline = u32::from_str_radix(&row.timeline, 16)
        .with_context(|| format!("{on}'s timeline {:?} is not a number", row.timeline))?;
    Ok(History {
        timeline,
        forks: parse_history(row.history.as_deref().unwrap_or("")),
    })
}

/// `1\t0/3000148\tno recovery target specified` lines.
pub fn parse_history(text: &str) -> Vec<(u32, Lsn)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let parent = fields.next()?.parse().ok()?;
            let lsn = fields.next()?.parse().ok()?;
            Some((parent, lsn))
        })
        .collect()
}

/// Where the old node's WAL stands against the primary's history.
pub fn divergence(old: &Server, history: &History) -> Divergence {
    let end: Option<Lsn> = old
        .replay_lsn
        .as_deref()
        .or(old.current_lsn.as_deref())
        .and_then(|l| l.parse().ok());
    let Some(end) = end else {
        return Divergence::Unrelated("it reports no WAL position".into());
    };
    if old.timeline == history.timeline {
        return Divergence::None;
    }
    match history
        .forks
        .iter()
        .find(|(parent, _)| *parent == old.timeline)
    {
        Some((_, fork)) if end <= *fork => Divergence::None,
        Some((_, fork)) => Divergence::Past {
            timeline: old.timeline,
            from: *fork,
            to: end,
        },
        None => Divergence::Unrelated(format!(
            "its timeline {} is not in the primary's history (timeline {}, forked from {})",
            old.timeline,
            history.timeline,
            if history.forks.is_empty() {
                "nothing".to_owned()
            } else {
                history
                    .forks
                    .iter()
                    .map(|(t, l)| format!("{t} at {l}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
    }
}

/// The transactions committed in the old node's WAL between `from` and `to`, one line each
/// (pg_waldump's words): what a rewind would discard.
fn transactions(
    cx: &mut Ctx<'_>,
    old: &NodeName,
    cluster: &Cluster,
    timeline: u32,
    from: Lsn,
    to: Lsn,
) -> anyhow::Result<Vec<String>> {
    let cmd = Cmd::new(format!(
        "cd / && runuser -u postgres -- /usr/lib/postgresql/{}/bin/pg_waldump --path={}/pg_wal --timeline={timeline} --start={from} --end={to} 2>&1; true",
        cluster.version,
        crate::host::quote(&cluster.datadir)
    ))
    .as_root();
    let text = cx.host(old).run_ok(&cmd)?;
    Ok(commits(&text))
}

/// pg_waldump's COMMIT and PREPARE records, as `xid 745: COMMIT 2026-11-28 23:50:00 UTC`.
pub fn commits(waldump: &str) -> Vec<String> {
    waldump
        .lines()
        .filter(|l| l.contains("rmgr: Transaction"))
        .filter_map(|l| {
            let desc = l.split("desc: ").nth(1)?.trim();
            if !(desc.starts_with("COMMIT") || desc.starts_with("PREPARE")) {
                return None;
            }
            let xid = l
                .split("tx:")
                .nth(1)
                .and_then(|t| t.split(',').next())
                .map(str::trim)
                .unwrap_or("?");
            let desc: String = desc.chars().take(120).collect();
            Some(format!("xid {xid}: {desc}"))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn rewind_action(
    cx: &mut Ctx<'_>,
    new: &NodeName,
    old: &NodeName,
    cluster: &Cluster,
    port: u16,
    timeline: u32,
    from: Lsn,
    to: Lsn,
    commits: usize,
) -> anyhow::Result<Action> {
    let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let keep = cluster
        .moved_aside_dir(&stamp)
        .replace(layout::MOVED_ASIDE_NAME, ".ha-setup-wal-before-rewind");
    let mut source = layout::Upstream::new(cx.config, new, old, port);
    source.user = layout::REWIND_ROLE.to_owned();
    let conninfo = format!("{} dbname=postgres", source.conninfo());
    let cmd = Cmd::script(
        REWIND,
        &[
            &cluster.datadir,
            &keep,
            &service::stop(cluster).script,
            &service::start(cluster).script,
            &format!("/usr/lib/postgresql/{}/bin/pg_rewind", cluster.version),
            &conninfo,
            &format!("{}/postgresql.conf", cluster.confdir),
        ],
    )
    .as_root();
    let target = old.clone();
    let (source, source_cluster) = (new.clone(), layout::cluster(cx, new)?.id());
    Ok(Action::Call {
        on: vec![old.clone(), new.clone()],
        why: format!(
            "rewind {old} onto {new}'s history with pg_rewind (as {}): its WAL went on past the fork, {from} … {to} on timeline {timeline}{}; its WAL is kept in {keep} first",
            layout::REWIND_ROLE,
            if commits == 0 {
                ", with no transaction in it".to_owned()
            } else {
                format!(", with {commits} transaction(s) the operator chose to discard (--rewind)")
            }
        ),
        // pg_rewind takes the source's timeline from its control file, which a primary
        // promoted a moment ago updates only at its next checkpoint: without one, pg_rewind
        // finds "the same timeline", rewinds nothing, and the old primary cannot start.
        call: Call::new(move |cx| {
            client::execute(
                cx.host(&source),
                &source_cluster,
                &crate::plan::Input::Text("CHECKPOINT;\n".into()),
            )?;
            let host = cx.host(&target);
            let label = host.label().to_owned();
            let output = host.run(&cmd)?;
            match output.status {
                Some(0) => Ok(output
                    .stdout_text()
                    .lines()
                    .map(|line| format!("{target}: {line}"))
                    .collect()),
                // The dry run refused: the node runs as before.
                Some(3) => Err(Exit::refused(format!(
                    "refusing to rejoin {target} ({label}): {}",
                    output.stderr.trim()
                ))
                .into()),
                _ => bail!("on {label}: {}", output.stderr.trim()),
            }
        }),
    })
}

const REWIND: &str = include_str!("scripts/rewind.sh");

#[cfg(test)]
mod tests {
    use super::*;

    fn server(timeline: u32, replay: &str) -> Server {
        let text = format!(
            r#"{{"version_num": 150018, "version": "15.18", "in_recovery": true, "replay_paused": false, "datadir": "/d", "port": 5432, "listen_addresses": "*", "wal_level": "replica", "max_wal_senders": 10, "max_replication_slots": 10, "wal_log_hints": true, "data_checksums": false, "ssl": true, "max_connections": 100, "system_identifier": "1", "timeline": {timeline}, "current_lsn": null, "receive_lsn": null, "replay_lsn": "{replay}", "replay_age": null, "primary_conninfo": "", "primary_slot_name": "", "pending_restart": [], "receiving": false, "receiver": null, "replicas": [], "slots": []}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn where_the_old_wal_ends_against_the_fork() {
        let history = History {
            timeline: 3,
            forks: parse_history(
                "1\t0/3000000\tno recovery target specified\n2\t0/5000148\tno recovery target specified\n",
            ),
        };
        assert_eq!(
            history.forks,
            vec![
                (1, "0/3000000".parse().unwrap()),
                (2, "0/5000148".parse().unwrap())
            ]
        );
        assert_eq!(
            divergence(&server(2, "0/5000148"), &history),
            Divergence::None
        );
        assert_eq!(
            divergence(&server(2, "0/5000000"), &history),
            Divergence::None
        );
        assert_eq!(
            divergence(&server(2, "0/5000200"), &history),
            Divergence::Past {
                timeline: 2,
                from: "0/5000148".parse().unwrap(),
                to: "0/5000200".parse().unwrap()
            }
        );
        assert_eq!(
            divergence(&server(3, "0/6000000"), &history),
            Divergence::None
        );
        assert!(matches!(
            divergence(&server(7, "0/1"), &history),
            Divergence::Unrelated(_)
        ));
    }

    #[test]
    fn commits_in_pg_waldumps_words() {
        let text = "rmgr: Heap        len (rec/tot):     59/    59, tx:        745, lsn: 0/05000148, prev 0/05000110, desc: INSERT off 3 flags 0x00, blkref #0: rel 1663/16384/16385 blk 0\n\
            rmgr: Transaction len (rec/tot):     34/    34, tx:        745, lsn: 0/05000188, prev 0/05000148, desc: COMMIT 2026-11-28 23:50:00.123456 UTC\n\
            rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/050001B0, prev 0/05000188, desc: CHECKPOINT_SHUTDOWN redo 0/50001B0\n\
            pg_waldump: error: error in WAL record at 0/50001B0: invalid record length\n";
        let found = commits(text);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("xid 745: COMMIT 2026-11-28"),
            "{found:?}"
        );
        assert!(commits("rmgr: XLOG len: desc: CHECKPOINT_SHUTDOWN\n").is_empty());
    }
}
