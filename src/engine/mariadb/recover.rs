//! After losing the primary: promote the replica (refused while the primary still takes
//! writes), fence the old primary, reopen writes after a planned restart (unfence), and
//! turn the old primary into the new replica (rejoin), refusing when its history diverged.
//! Every step finds the roles on the live servers (roles.rs), so a re-run completes.

use std::time::Duration;

use anyhow::bail;

use super::client::{self, literal};
use super::facts;
use super::link::change_master;
use super::primary::password;
use super::roles::{self, Seen, other};
use crate::error::Exit;
use crate::host::{Cmd, HostExt};
use crate::plan::{Action, Ctx, Input, NodeName, Step, Verdict};
use crate::secret::Secret;

fn both(cx: &mut Ctx<'_>) -> (Seen, Seen) {
    (
        roles::see(cx, NodeName::Primary),
        roles::see(cx, NodeName::Secondary),
    )
}

fn seen(a: &Seen, b: &Seen, name: NodeName) -> Seen {
    if a.name == name { a.clone() } else { b.clone() }
}

fn table(a: &Seen, b: &Seen) -> String {
    format!(
        "\n  {:<28} {}\n  {:<28} {}",
        a.label,
        a.describe(),
        b.label,
        b.describe()
    )
}

/// The node to promote: the one that replicates; after a finished promotion, the one
/// that takes writes while the other does not.
fn promotion_target(a: &Seen, b: &Seen) -> anyhow::Result<NodeName> {
    if let Some(name) = roles::replica(a, b) {
        return Ok(name);
    }
    match (a.writable_primary(), b.writable_primary()) {
        (true, false) => Ok(a.name),
        (false, true) => Ok(b.name),
        (true, true) => Err(Exit::refused(format!(
            "both nodes take writes (split brain): ha-setup will not choose between them.{}\n\
             Decide which data is right, fence the other (SET GLOBAL read_only = ON there), then rebuild it.",
            table(a, b)
        ))
        .into()),
        (false, false) => Err(Exit::refused(format!(
            "no node replicates from the other, so there is nothing to promote:{}",
            table(a, b)
        ))
        .into()),
    }
}

pub struct CheckPrimary {
    pub force: bool,
}

impl Step for CheckPrimary {
    fn name(&self) -> &'static str {
        "check-primary"
    }

    fn purpose(&self) -> &'static str {
        "refuse while the primary still takes writes (split brain)"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let (a, b) = both(cx);
        let target = promotion_target(&a, &b)?;
        let old = seen(&a, &b, other(target));
        let candidate = seen(&a, &b, target);
        if candidate.replica.is_none() {
            return Ok(Verdict::Done(format!("the {target} is primary already")));
        }
        if !candidate.answers() {
            bail!(
                "the {target} ({}) does not answer, so it cannot be promoted",
                candidate.label
            );
        }
        if old.writable_primary() {
            if !self.force {
                return Err(Exit::refused(format!(
                    "refusing to promote the {target}: the {} still answers as a writable primary, and two primaries would split the data.{}\n\
                     If it is really lost (its clients cannot reach it and it will not come back), run again with --force: \
                     ha-setup then fences it (read-only) before anything else.",
                    old.name,
                    table(&a, &b)
                ))
                .into());
            }
            return Ok(Verdict::Done(format!(
                "the {} still takes writes, but --force was given: it is fenced first",
                old.name
            )));
        }
        Ok(Verdict::Done(format!(
            "the {}: {}",
            old.name,
            old.describe()
        )))
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
        let (a, b) = both(cx);
        let target = promotion_target(&a, &b)?;
        let old = seen(&a, &b, other(target));
        match &old.server {
            None => Ok(Verdict::Done(format!(
                "the {} does not answer; when it comes back it is read-only, as its config says",
                old.name
            ))),
            Some(server) if server.read_only => {
                Ok(Verdict::Done(format!("the {} is read-only", old.name)))
            }
            Some(_) => Ok(Verdict::Todo(vec![Action::Run {
                on: old.name,
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
        let (a, b) = both(cx);
        let target = promotion_target(&a, &b)?;
        let candidate = seen(&a, &b, target);
        if candidate.writable_primary() {
            return Ok(Verdict::Done(format!("the {target} takes writes")));
        }
        // Lines starting `report:` reach the operator: the loss window.
        let script = "set -e\n\
            q() { mariadb -N -B -e \"$1\"; }\n\
            status() { mariadb -e 'SHOW SLAVE STATUS\\G' | sed -n \"s/^ *$1: //p\"; }\n\
            if [ -n \"$(status Master_Host)\" ]; then\n\
            \tq 'STOP SLAVE IO_THREAD'\n\
            \treceived=$(status Gtid_IO_Pos)\n\
            \tif [ \"$(status Slave_SQL_Running)\" = Yes ] && [ -n \"$received\" ]; then\n\
            \t\t[ \"$(q \"SELECT MASTER_GTID_WAIT('$received', 60)\")\" = 0 ] || echo 'report: WARNING: not everything received was applied within 60 s'\n\
            \tfi\n\
            \techo \"report: last transaction received from the old primary: ${received:-none}\"\n\
            \techo \"report: last transaction applied here: $(q 'SELECT @@gtid_slave_pos')\"\n\
            fi\n\
            q 'STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF'";
        Ok(Verdict::Todo(vec![Action::Run {
            on: target,
            why: "promote: apply the relay log, stop and forget replication, read_only=OFF".into(),
            cmd: Cmd::new(script).as_root(),
            input: Input::None,
        }]))
    }
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
        let (a, b) = both(cx);
        let target = promotion_target(&a, &b)?;
        Ok(Verdict::Todo(vec![write_canary(target)]))
    }
}

fn write_canary(on: NodeName) -> Action {
    let schema = super::layout::SCHEMA;
    Action::Run {
        on,
        why: "write a canary row: the new primary takes writes".into(),
        cmd: client::command(),
        input: Input::Text(format!(
            "CREATE DATABASE IF NOT EXISTS {schema};\n\
             CREATE TABLE IF NOT EXISTS {schema}.canary (id TINYINT UNSIGNED PRIMARY KEY, token CHAR(32) NOT NULL, written_at DATETIME(6) NOT NULL) ENGINE=InnoDB;\n\
             REPLACE INTO {schema}.canary VALUES (1, 'promoted', NOW(6));\n"
        )),
    }
}

pub struct Unfence {
    pub force: bool,
}

impl Step for Unfence {
    fn name(&self) -> &'static str {
        "unfence"
    }

    fn purpose(&self) -> &'static str {
        "reopen writes on the primary once no other node is primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let (a, b) = both(cx);
        let target = match (a.primary_like(), b.primary_like()) {
            (true, false) => a.name,
            (false, true) => b.name,
            (true, true) if a.writable_primary() != b.writable_primary() => {
                return Err(Exit::refused(format!(
                    "the {} takes writes already and the {} replicates from nowhere: opening writes there too would split the data.{}",
                    if a.writable_primary() { a.name } else { b.name },
                    if a.writable_primary() { b.name } else { a.name },
                    table(&a, &b)
                ))
                .into());
            }
            _ => {
                return Err(Exit::refused(format!(
                    "cannot tell which node is the primary:{}\nA primary replicates from nowhere; its replica replicates from it.",
                    table(&a, &b)
                ))
                .into());
            }
        };
        let primary = seen(&a, &b, target);
        let peer = seen(&a, &b, other(target));
        if primary.writable_primary() {
            return Ok(Verdict::Done(format!("the {target} takes writes already")));
        }
        if !peer.answers() && !self.force {
            return Err(Exit::refused(format!(
                "the {} cannot be checked, so ha-setup cannot tell that it is not primary.{}\n\
                 If you know it is down or a replica, run again with --force.",
                peer.name,
                table(&a, &b)
            ))
            .into());
        }
        Ok(Verdict::Todo(vec![super::primary::open_writes(target)]))
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

/// The new primary (takes writes) and the old one (must answer) for rejoin.
fn rejoin_roles(a: &Seen, b: &Seen) -> anyhow::Result<(NodeName, NodeName)> {
    let new = match (a.writable_primary(), b.writable_primary()) {
        (true, false) => a.name,
        (false, true) => b.name,
        _ => match roles::replica(a, b) {
            // Rejoined already: the replica's source is the primary.
            Some(replica) => other(replica),
            None => {
                return Err(Exit::refused(format!(
                    "rejoin needs exactly one writable primary:{}",
                    table(a, b)
                ))
                .into());
            }
        },
    };
    Ok((new, other(new)))
}

impl Step for Rejoin {
    fn name(&self) -> &'static str {
        "rejoin"
    }

    fn purpose(&self) -> &'static str {
        "the old primary replicates from the new one, unless its history diverged"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let (a, b) = both(cx);
        let (new, old) = rejoin_roles(&a, &b)?;
        let old_seen = seen(&a, &b, old);
        let new_seen = seen(&a, &b, new);
        let Some(old_server) = &old_seen.server else {
            bail!(
                "the {old} ({}) does not answer: start its MariaDB (it comes back read-only), then run rejoin again",
                old_seen.label
            );
        };
        if old_seen.replica.is_some() {
            return Ok(Verdict::Done(format!("the {old} replicates already")));
        }
        let new_server = new_seen.server.clone().expect("a writable primary answers");
        let diverged = errant(
            &old_server.gtid_binlog_pos,
            old_server.server_id,
            &new_server.gtid_slave_pos,
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
            return Err(Exit::refused(format!(
                "refusing to rejoin the {old}: it has transactions the {new} never received (errant): {}.\n\
                 They were written after the last one the {new} applied ({}), probably just before the old primary was lost. \
                 Rejoining would silently drop them. Look at them on the {old} (mariadb-binlog over its binary logs, SHOW BINARY LOGS), \
                 save what matters, then re-seed the {old} from the {new}: ha-setup recover rebuild.",
                list.join(", "),
                if new_server.gtid_slave_pos.is_empty() { "none" } else { &new_server.gtid_slave_pos }
            ))
            .into());
        }
        let port = match cx.node(new).db_port {
            Some(port) => port,
            None => facts::server(cx.host(new))?.port,
        };
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
            change = change_master(cx.config, new, port),
        );
        Ok(Verdict::Todo(vec![
            Action::Run {
                on: old,
                why: format!(
                    "replicate from the {new} by GTID, from where this node's own history ends"
                ),
                cmd: client::command(),
                input: Input::WithSecret(sql, secret),
            },
            Action::Canary {
                from: new,
                to: old,
                timeout: Duration::from_secs(60),
            },
        ]))
    }
}

/// rebuild's first step: forget the replica's seed record, so package, transfer and unpack
/// seed it afresh (its datadir is moved aside by unpack, as in init).
pub struct DiscardSeed;

impl Step for DiscardSeed {
    fn name(&self) -> &'static str {
        "discard-seed"
    }

    fn purpose(&self) -> &'static str {
        "the secondary's copy is to be replaced: forget its seed record"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let (a, b) = both(cx);
        let secondary = seen(&a, &b, NodeName::Secondary);
        if secondary.writable_primary() {
            return Err(Exit::refused(format!(
                "refusing to rebuild the {}: it takes writes (it is a primary).{}",
                secondary.label,
                table(&a, &b)
            ))
            .into());
        }
        let record = super::layout::SEED_RECORD;
        let present = cx
            .secondary
            .run(&Cmd::new(format!("test -e {}", crate::host::quote(record))).as_root())?
            .success();
        if !present {
            return Ok(Verdict::Done(
                "no seed record: the next steps seed it".into(),
            ));
        }
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        Ok(Verdict::Todo(vec![Action::Run {
            on: NodeName::Secondary,
            why: format!("set the seed record aside ({record}.replaced-{stamp})"),
            cmd: Cmd::new(format!(
                "mv -- {r} {r}.replaced-{stamp}",
                r = crate::host::quote(record)
            ))
            .as_root(),
            input: Input::None,
        }]))
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
