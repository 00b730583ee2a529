//! `verify` on MariaDB: chunk checksums that travel through replication, so that the
//! primary and each replica compute a chunk's checksum at the same logical point.
//!
//! In one session on the primary, with `binlog_format = STATEMENT` for that session only,
//! each chunk is one transaction: `INSERT INTO ha_setup.verify … SELECT COUNT(*),
//! SUM(row hash) FROM t WHERE <key range>`. Run as a statement, it reads the range with
//! shared locks (InnoDB locks what an INSERT … SELECT reads when the statement is what the
//! binary log keeps), so no write to those rows lands between the read and the statement's
//! place in the binary log; each replica runs the same statement at that place in its own
//! history, over its own rows, and stores its own count and sum. The primary's values then
//! go into the same row by a second statement (through user variables, which the binary
//! log carries), so each replica holds both side by side. At the end every replica is
//! waited for (MASTER_GTID_WAIT, bounded) and asked for the rows where the two differ.
//!
//! With two writable nodes (primary-primary) the other node's own writes (its GTID domain)
//! are not ordered with the checksum statements: one it made just before applying a
//! chunk's statement, not yet on the primary when the primary ran it, makes that chunk
//! differ for a moment. Each chunk therefore also carries the other node's domain as the
//! primary had applied it before reading the chunk, and as the other node had written it
//! after reading it: when the two are the same, no write of its own can have come between
//! and the verdict stands. When they are not and the chunk differs, it is compared again
//! (once the other node's writes up to then have reached the primary: MASTER_GTID_WAIT),
//! a bounded number of times; what differs with nothing in between is a difference, what
//! never settles is not compared, and the report names every chunk compared again.
//!
//! `CHECKSUM TABLE` cannot do this: it reads the whole table in one go (blocking writers of
//! a MyISAM/Aria table, and on InnoDB reading as of no point the replica can share), it is
//! not replicated, so each node computes it at a different moment while the application
//! writes, and it says only that a table differs, not where.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::chunks::{
    Kind, TableInfo, after_sql, differs_on, ident, key_select, kind, list_tables, literal,
    row_hash, up_to_sql,
};
use super::{client, facts, layout};
use crate::host::{Cmd, Host};
use crate::topology::Observed;
use crate::verify::session::{Ended, Session};
use crate::verify::{Checker, Chunk, Finding, Found, Key, Table, Verdict};

/// Where the checksums are kept, in ha-setup's own schema (replicated like the canary).
const TABLE: &str = "verify";
/// How long a replica may take to apply what the primary wrote, before it counts as lost.
const CATCH_UP: Duration = Duration::from_secs(60);
/// How often during a run the replicas are waited for, so none falls far behind.
const SYNC_EVERY: Duration = Duration::from_secs(10);
/// Tries of a chunk whose rows stay locked by the application's transactions.
const TRIES: u32 = 3;
/// How long a chunk waits for a row lock (each try).
const LOCK_WAIT_SECS: u64 = 5;
/// The most a single question to the primary may take (a whole table without a key).
pub(super) const QUESTION: Duration = Duration::from_secs(3600);
/// How many times a chunk the other writer was writing is compared again.
pub(super) const RECHECKS: u32 = 10;
/// How long the primary may take to apply the other writer's writes before a re-check.
const REACH: Duration = Duration::from_secs(60);

/// The session every chunk runs in: statements are logged as statements (the point of it,
/// see above), in REPEATABLE READ (InnoDB logs statements only then), with times in UTC
/// (a TIMESTAMP reads the same on every node; the binary log carries the session's zone to
/// the replicas), and bounded waits for row and metadata locks.
const SETUP: &str = "SET SESSION binlog_format = 'STATEMENT';\n\
SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;\n\
SET SESSION time_zone = '+00:00';\n\
SET SESSION sql_log_bin = 1;\n\
SET SESSION innodb_lock_wait_timeout = 5, lock_wait_timeout = 10;";

pub(super) fn marker(mark: &str) -> String {
    format!("SELECT '{mark}';")
}

pub(super) fn session_cmd() -> Cmd {
    let mut cmd = client::command();
    // Each answer as soon as it is made, not when the client's buffer fills.
    cmd.script.push_str(" --unbuffered");
    cmd
}

struct Replica<'r> {
    host: &'r mut dyn Host,
    lost: Option<String>,
}

struct MariaChecker<'scope, 'env, 'r> {
    session: Session<'scope, 'env>,
    /// The GTID domains the other nodes write in themselves (primary-primary); empty when
    /// only the primary writes.
    domains: Vec<u32>,
    /// Each chunk's statements by (table id, chunk number), to compare it again; kept only
    /// when `domains` is not empty.
    batches: HashMap<(usize, u64), String>,
    replicas: Vec<Replica<'r>>,
    infos: Vec<TableInfo>,
    tables: Vec<Table>,
    run: String,
    /// The GTID of the last chunk written: what the replicas must have applied.
    last_gtid: Option<String>,
    /// Chunks whose checksums were written, which each replica must hold at the end.
    written: u64,
    synced_at: Instant,
}

pub fn verify(
    primary: &mut dyn Host,
    replicas: Vec<&mut dyn Host>,
    _seen: Vec<&Observed>,
    drive: &mut dyn FnMut(&mut dyn Checker) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    run(primary, replicas, Vec::new(), drive)
}

/// `verify` where the other nodes take writes too (primary-primary): `seen` is the
/// primary's observation, then each other node's, whose GTID domains tell their own writes.
pub fn verify_writers(
    primary: &mut dyn Host,
    others: Vec<&mut dyn Host>,
    seen: Vec<&Observed>,
    drive: &mut dyn FnMut(&mut dyn Checker) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let domain = |o: &Observed| {
        super::observe::state(o)
            .map(|s| s.server.gtid_domain_id)
            .with_context(|| format!("cannot tell the GTID domain of {}", o.name))
    };
    let own = domain(seen.first().context("no observation of the primary")?)?;
    let mut domains = Vec::new();
    for other in seen.iter().skip(1) {
        let theirs = domain(other)?;
        if theirs == own {
            bail!(
                "{} writes in the same GTID domain ({own}) as {}, so its own writes cannot be told apart: run `ha-setup init`",
                other.name,
                seen[0].name
            );
        }
        domains.push(theirs);
    }
    run(primary, others, domains, drive)
}

fn run(
    primary: &mut dyn Host,
    replicas: Vec<&mut dyn Host>,
    domains: Vec<u32>,
    drive: &mut dyn FnMut(&mut dyn Checker) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut replicas = replicas;
    let Listed {
        infos,
        tables,
        unlisted,
    } = tables_on(primary, &mut replicas)?;
    let replicas: Vec<Replica> = replicas
        .into_iter()
        .zip(unlisted)
        .map(|(host, lost)| Replica { host, lost })
        .collect();
    let run = format!("{:016x}", rand::random::<u64>());
    std::thread::scope(|scope| {
        let mut setup = SETUP.to_owned();
        if !domains.is_empty() {
            // The other writer's position is read in a replicated statement, which MariaDB
            // notes as unsafe for statement logging (on purpose here): not once per chunk
            // in the error log.
            setup.push_str("\nSET SESSION log_warnings = 0;");
        }
        let session = Session::open(scope, primary, session_cmd(), setup, marker);
        let mut checker = MariaChecker {
            session,
            domains,
            batches: HashMap::new(),
            replicas,
            infos,
            tables,
            run,
            last_gtid: None,
            written: 0,
            synced_at: Instant::now(),
        };
        checker.prepare()?;
        drive(&mut checker)
    })
}

impl MariaChecker<'_, '_, '_> {
    /// The checksum table, made on the primary so that it replicates, and this run's rows
    /// only: what an earlier run left is removed.
    fn prepare(&mut self) -> anyhow::Result<()> {
        let schema = layout::SCHEMA;
        let answer = self.ask(&format!(
            "SELECT 'state', @@log_bin, @@global.read_only, @@SESSION.binlog_format;\n\
             CREATE DATABASE IF NOT EXISTS {schema};\n\
             CREATE TABLE IF NOT EXISTS {schema}.{TABLE} (\
             run CHAR(16) NOT NULL, db VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL, chunk BIGINT UNSIGNED NOT NULL, \
             rows_here BIGINT UNSIGNED NOT NULL, sum_here DECIMAL(65,0) NOT NULL, \
             rows_primary BIGINT UNSIGNED NULL, sum_primary DECIMAL(65,0) NULL, \
             at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \
             PRIMARY KEY (run, db, tbl, chunk)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\
             ALTER TABLE {schema}.{TABLE} ADD COLUMN IF NOT EXISTS pos_primary VARCHAR(4096) NULL, \
             ADD COLUMN IF NOT EXISTS pos_here VARCHAR(4096) NULL;\n\
             DELETE FROM {schema}.{TABLE} WHERE run <> {run};\n\
             SELECT 'gtid', @@last_gtid;",
            run = client::literal(&self.run)
        ))?;
        let state = tagged(&answer, "state").context("no answer to the state query")?;
        if state.first().map(String::as_str) != Some("1") {
            bail!(
                "the binary log is off on {}, so no checksum can travel to the replicas; \
                 ha-setup sets log_bin in its settings file: restart MariaDB there, or run `ha-setup init`",
                self.session.label()
            );
        }
        if state.get(2).map(String::as_str) != Some("STATEMENT") {
            bail!(
                "{} did not take binlog_format = STATEMENT for verify's session",
                self.session.label()
            );
        }
        self.last_gtid = tagged(&answer, "gtid")
            .and_then(|g| g.into_iter().next())
            .filter(|g| !g.is_empty());
        Ok(())
    }

    fn ask(&mut self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        Ok(fields(&self.session.ask(sql, QUESTION)?))
    }

    fn verdicts(&self, active: Verdict) -> Vec<Verdict> {
        self.replicas
            .iter()
            .map(|r| match &r.lost {
                Some(why) => Verdict::Lost(why.clone()),
                None => active.clone(),
            })
            .collect()
    }

    /// Waits (bounded) for every replica still in the run to apply the last chunk written;
    /// one that cannot is out of the run, with the reason.
    fn sync(&mut self, bound: Duration) {
        self.synced_at = Instant::now();
        let Some(gtid) = self.last_gtid.clone() else {
            return;
        };
        std::thread::scope(|scope| {
            for replica in self.replicas.iter_mut().filter(|r| r.lost.is_none()) {
                let gtid = &gtid;
                scope.spawn(move || {
                    if let Err(why) = catch_up(replica.host, gtid, bound) {
                        replica.lost = Some(why);
                    }
                });
            }
        });
    }
}

impl MariaChecker<'_, '_, '_> {
    /// Runs one chunk's statements on the primary, again while the application holds its
    /// rows locked past the bound; the rows it held there, or why it could not be compared.
    fn run_chunk(&mut self, batch: &str) -> anyhow::Result<Result<u64, String>> {
        let mut tries = 0;
        let answer = loop {
            tries += 1;
            match self.ask(batch) {
                Ok(answer) => break answer,
                Err(err) if lock_conflict(&err) && tries < TRIES => continue,
                Err(err) if lock_conflict(&err) => {
                    return Ok(Err(format!(
                        "its rows stayed locked by other transactions ({TRIES} tries of {LOCK_WAIT_SECS} s each)"
                    )));
                }
                Err(err) => return Err(err),
            }
        };
        let fields = tagged(&answer, "chunk").context("no answer for the chunk")?;
        let rows_here: u64 = fields
            .first()
            .and_then(|r| r.parse().ok())
            .context("no row count for the chunk")?;
        self.last_gtid = fields.get(1).cloned().filter(|g| !g.is_empty());
        Ok(Ok(rows_here))
    }

    /// The chunks of replica `n` that differ while its own writes may have come between
    /// (`unsettled`), compared again until each is the same, differs with nothing in
    /// between, or [`RECHECKS`] rounds have passed. Err: the replica was lost meanwhile.
    fn recheck(
        &mut self,
        n: usize,
        unsettled: Vec<(usize, u64)>,
        found: &mut Found,
    ) -> Result<(), String> {
        found.rechecked.extend(unsettled.iter().copied());
        let primary = self.session.label().to_owned();
        let mut pending = unsettled;
        for _ in 0..RECHECKS {
            if pending.is_empty() {
                return Ok(());
            }
            // The other node's own writes up to now reach the primary first, so that the
            // primary's checksum holds every one the other node's can.
            let theirs = client::row(self.replicas[n].host, "SELECT @@global.gtid_binlog_pos")
                .map_err(|err| format!("cannot read its GTID position: {err:#}"))?;
            let theirs = in_domains(
                &theirs.first().cloned().flatten().unwrap_or_default(),
                &self.domains,
            )
            .join(",");
            if !theirs.is_empty() {
                let waited = self
                    .ask(&format!(
                        "SELECT 'waited', MASTER_GTID_WAIT({}, {});",
                        client::literal(&theirs),
                        REACH.as_secs()
                    ))
                    .map_err(|err| format!("cannot wait on {primary} for its writes: {err:#}"))?;
                if tagged(&waited, "waited").and_then(|f| f.first().cloned()) != Some("0".into()) {
                    let why = format!(
                        "its own writes (GTID {theirs}) did not reach {primary} within {} s, so this chunk could not be compared again",
                        REACH.as_secs()
                    );
                    found
                        .not_compared
                        .extend(pending.iter().map(|(t, c)| (*t, *c, why.clone())));
                    return Ok(());
                }
            }
            let mut asked = Vec::new();
            for key in &pending {
                let batch = self.batches.get(key).cloned().unwrap_or_default();
                match self.run_chunk(&batch) {
                    Ok(Ok(_)) => asked.push(*key),
                    Ok(Err(why)) => found.not_compared.push((key.0, key.1, why)),
                    Err(err) => found.not_compared.push((
                        key.0,
                        key.1,
                        format!("could not be compared again: {err:#}"),
                    )),
                }
            }
            self.sync(CATCH_UP);
            if let Some(why) = &self.replicas[n].lost {
                return Err(why.clone());
            }
            let mut next = Vec::new();
            for (key, verdict) in self.rechecked(n, &asked)? {
                match verdict {
                    Recheck::Same => {}
                    Recheck::Differs => found.differing.push(key),
                    Recheck::Unsettled => next.push(key),
                }
            }
            pending = next;
        }
        found.not_compared.extend(pending.into_iter().map(|(t, c)| {
            (
                t,
                c,
                format!(
                    "it differed each of {RECHECKS} times it was compared again, while the node's own writes kept changing it; run verify again when it writes less there"
                ),
            )
        }));
        Ok(())
    }

    /// What replica `n` holds now for the chunks `keys`.
    fn rechecked(
        &mut self,
        n: usize,
        keys: &[(usize, u64)],
    ) -> Result<Vec<(ChunkId, Recheck)>, String> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<String> = keys
            .iter()
            .map(|(t, c)| {
                let info = &self.infos[*t];
                format!(
                    "({}, {}, {c})",
                    client::literal(&info.schema),
                    client::literal(&info.name)
                )
            })
            .collect();
        let sql = format!(
            "SELECT 'chunk', db, tbl, chunk, {SAME}, IFNULL(pos_primary, ''), IFNULL(pos_here, '') \
             FROM {schema}.{TABLE} WHERE run = {run} AND (db, tbl, chunk) IN ({wanted});",
            schema = layout::SCHEMA,
            run = client::literal(&self.run),
            wanted = wanted.join(", ")
        );
        let rows = client::rows(self.replicas[n].host, &sql)
            .map_err(|err| format!("cannot read its checksums: {err:#}"))?;
        let mut out = Vec::new();
        for row in rows {
            let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let Some(id) = self
                .infos
                .iter()
                .position(|t| t.schema == field(1) && t.name == field(2))
            else {
                continue;
            };
            let Ok(chunk) = field(3).parse::<u64>() else {
                continue;
            };
            out.push(((id, chunk), self.judge(&field(4), &field(5), &field(6))));
        }
        Ok(out)
    }

    /// A chunk's verdict from its row: the same, a difference, or a difference the other
    /// node's own writes may have made.
    fn judge(&self, same: &str, before: &str, here: &str) -> Recheck {
        if same == "1" {
            Recheck::Same
        } else if in_domains(before, &self.domains) == in_domains(here, &self.domains) {
            Recheck::Differs
        } else {
            Recheck::Unsettled
        }
    }
}

/// Whether a chunk's checksums are equal on a replica, as SQL.
const SAME: &str = "(rows_here <=> rows_primary AND sum_here <=> sum_primary)";

/// A chunk by (table id, chunk number).
type ChunkId = (usize, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recheck {
    Same,
    Differs,
    Unsettled,
}

/// The GTIDs of a GTID position (`1-1-40,2-2-17`) that belong to `domains`, sorted.
fn in_domains(position: &str, domains: &[u32]) -> Vec<String> {
    let mut gtids: Vec<String> = position
        .split(',')
        .map(str::trim)
        .filter(|gtid| {
            gtid.split('-')
                .next()
                .and_then(|d| d.parse::<u32>().ok())
                .is_some_and(|d| domains.contains(&d))
        })
        .map(str::to_owned)
        .collect();
    gtids.sort();
    gtids
}

/// A session's answer as rows of fields, NULL read as empty.
pub(super) fn fields(lines: &[String]) -> Vec<Vec<String>> {
    client::parse_rows(&lines.join("\n"))
        .into_iter()
        .map(|row| row.into_iter().map(Option::unwrap_or_default).collect())
        .collect()
}

/// The fields of the answer's line tagged `tag` (its first field).
pub(super) fn tagged(rows: &[Vec<String>], tag: &str) -> Option<Vec<String>> {
    rows.iter()
        .find(|row| row.first().map(String::as_str) == Some(tag))
        .map(|row| row[1..].to_vec())
}

/// Waits until `host` has applied `gtid`, at most `bound`; says why when it does not.
fn catch_up(host: &mut dyn Host, gtid: &str, bound: Duration) -> Result<(), String> {
    let deadline = Instant::now() + bound;
    loop {
        let waited = client::row(
            host,
            &format!("SELECT MASTER_GTID_WAIT({}, 2)", client::literal(gtid)),
        )
        .map_err(|err| format!("cannot ask whether it applied the checksums: {err:#}"))?;
        if waited.first().cloned().flatten().as_deref() == Some("0") {
            return Ok(());
        }
        match facts::replica(host) {
            Ok(Some(replica)) if !replica.sql_ok() || !replica.io_ok() => {
                return Err(format!(
                    "stopped applying the primary's changes during the run: {}",
                    super::link::broken_link_message(&replica)
                ));
            }
            Ok(None) => return Err("no longer replicates".into()),
            Err(err) => return Err(format!("cannot read its replication state: {err:#}")),
            Ok(Some(replica)) if Instant::now() >= deadline => {
                return Err(format!(
                    "did not apply the checksums (GTID {gtid}) within {} s; it is {} behind its primary",
                    bound.as_secs(),
                    replica
                        .seconds_behind
                        .map_or("an unknown time".into(), |s| format!("{s} s"))
                ));
            }
            Ok(Some(_)) => {}
        }
    }
}

/// A session ended by a row lock the application held past the bound (or a deadlock with
/// it): the chunk can be tried again.
fn lock_conflict(err: &anyhow::Error) -> bool {
    err.downcast_ref::<Ended>().is_some_and(|ended| {
        ended.stderr.contains("ERROR 1205") || ended.stderr.contains("ERROR 1213")
    })
}

impl Checker for MariaChecker<'_, '_, '_> {
    fn tables(&mut self) -> anyhow::Result<Vec<Table>> {
        Ok(self.tables.clone())
    }

    fn chunk(
        &mut self,
        table: &Table,
        number: u64,
        after: Option<&Key>,
        rows: Option<u64>,
    ) -> anyhow::Result<Chunk> {
        let info = self.infos[table.id].clone();
        let (conditions, upper) = range(&info, after, rows, &mut |sql| self.ask(sql))?;
        let names = format!(
            "run = {} AND db = {} AND tbl = {} AND chunk = {number}",
            client::literal(&self.run),
            client::literal(&info.schema),
            client::literal(&info.name)
        );
        let schema = layout::SCHEMA;
        // With other writers: their domains as the primary has them before the chunk is
        // read, and as each of them has them once it read the chunk (module comment).
        let (before, positions) = if self.domains.is_empty() {
            ("", "")
        } else {
            (
                "SELECT @@global.gtid_binlog_pos INTO @ha_setup_before;\n",
                ", pos_primary = @ha_setup_before, pos_here = @@global.gtid_binlog_pos",
            )
        };
        let batch = format!(
            "{before}START TRANSACTION;\n\
             DELETE FROM {schema}.{TABLE} WHERE {names};\n\
             INSERT INTO {schema}.{TABLE} (run, db, tbl, chunk, rows_here, sum_here) \
             SELECT {run}, {db}, {tbl}, {number}, {checksum};\n\
             SELECT rows_here, sum_here INTO @ha_setup_rows, @ha_setup_sum FROM {schema}.{TABLE} WHERE {names};\n\
             UPDATE {schema}.{TABLE} SET rows_primary = @ha_setup_rows, sum_primary = @ha_setup_sum{positions} WHERE {names};\n\
             COMMIT;\n\
             SELECT 'chunk', @ha_setup_rows, @@last_gtid;",
            run = client::literal(&self.run),
            db = client::literal(&info.schema),
            tbl = client::literal(&info.name),
            checksum = checksum_sql(&info, rows.is_some(), &conditions),
        );
        let rows_here = match self.run_chunk(&batch)? {
            Ok(rows_here) => rows_here,
            Err(why) => {
                return Ok(Chunk {
                    upper,
                    rows: 0,
                    work: None,
                    verdicts: self.verdicts(Verdict::NotCompared(why)),
                });
            }
        };
        if !self.domains.is_empty() {
            self.batches.insert((table.id, number), batch);
        }
        self.written += 1;
        if self.synced_at.elapsed() >= SYNC_EVERY {
            self.sync(CATCH_UP);
        }
        Ok(Chunk {
            upper,
            rows: rows_here,
            work: None,
            verdicts: self.verdicts(Verdict::Later),
        })
    }

    fn finish(&mut self) -> anyhow::Result<Vec<Finding>> {
        self.sync(CATCH_UP);
        let names: HashMap<(String, String), usize> = self
            .infos
            .iter()
            .enumerate()
            .map(|(id, t)| ((t.schema.clone(), t.name.clone()), id))
            .collect();
        let schema = layout::SCHEMA;
        let run = client::literal(&self.run);
        let sql = format!(
            "SELECT 'count', COUNT(*) FROM {schema}.{TABLE} WHERE run = {run};\n\
             SELECT 'differs', db, tbl, chunk, IFNULL(pos_primary, ''), IFNULL(pos_here, '') \
             FROM {schema}.{TABLE} WHERE run = {run} AND NOT {SAME} ORDER BY db, tbl, chunk;"
        );
        let written = self.written;
        let mut findings = Vec::new();
        for n in 0..self.replicas.len() {
            if let Some(why) = &self.replicas[n].lost {
                findings.push(Err(why.clone()));
                continue;
            }
            let rows = match client::rows(self.replicas[n].host, &sql) {
                Ok(rows) => rows,
                Err(err) => {
                    findings.push(Err(format!("cannot read its checksums: {err:#}")));
                    continue;
                }
            };
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .map(|row| row.into_iter().map(Option::unwrap_or_default).collect())
                .collect();
            let held: u64 = tagged(&rows, "count")
                .and_then(|f| f.first().and_then(|n| n.parse().ok()))
                .unwrap_or(0);
            if held != written {
                findings.push(Err(format!(
                    "it holds {held} of the {written} checksums the primary wrote: something kept them from replicating there"
                )));
                continue;
            }
            let mut found = Found::default();
            let mut unsettled = Vec::new();
            for row in rows
                .iter()
                .filter(|row| row.first().map(String::as_str) == Some("differs"))
            {
                let field = |i: usize| row.get(i).map(String::as_str).unwrap_or_default();
                let Some(id) = names.get(&(field(1).to_owned(), field(2).to_owned())) else {
                    continue;
                };
                let Ok(chunk) = field(3).parse::<u64>() else {
                    continue;
                };
                match self.judge("0", field(4), field(5)) {
                    Recheck::Differs => found.differing.push((*id, chunk)),
                    Recheck::Unsettled => unsettled.push((*id, chunk)),
                    Recheck::Same => {}
                }
            }
            if !unsettled.is_empty()
                && let Err(why) = self.recheck(n, unsettled, &mut found)
            {
                findings.push(Err(why));
                continue;
            }
            found.differing.sort_unstable();
            findings.push(Ok(found));
        }
        self.session.close();
        Ok(findings)
    }
}

fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

/// A chunk's key range in `info`: the conditions that hold its rows (after `after`), and
/// its last key, the `rows`-th from there, as `ask` (a session on the node whose keys
/// count) finds it; None when the chunk reaches the table's end. `rows` None: the whole
/// table, no conditions.
pub(super) fn range(
    info: &TableInfo,
    after: Option<&Key>,
    rows: Option<u64>,
    ask: &mut dyn FnMut(&str) -> anyhow::Result<Vec<Vec<String>>>,
) -> anyhow::Result<(Vec<String>, Option<Key>)> {
    let key = info.key();
    let kinds: Vec<Kind> = if rows.is_some() {
        key.iter()
            .map(|c| kind(c).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()?
    } else {
        Vec::new()
    };
    let columns: Vec<String> = key.iter().map(|c| ident(&c.name)).collect();
    let values = |k: &Key| -> anyhow::Result<Vec<String>> {
        kinds
            .iter()
            .zip(&k.exact)
            .map(|(kind, exact)| literal(kind, exact))
            .collect()
    };
    let mut conditions = Vec::new();
    if let Some(after) = after {
        conditions.push(after_sql(&columns, &values(after)?));
    }
    let mut upper = None;
    if let Some(rows) = rows {
        let (shown, exact): (Vec<String>, Vec<String>) = key
            .iter()
            .zip(&kinds)
            .map(|(c, kind)| key_select(c, kind))
            .unzip();
        let answer = ask(&format!(
            "SELECT 'key', {}, {} FROM {} FORCE INDEX (PRIMARY){} ORDER BY {} LIMIT {}, 1;",
            shown.join(", "),
            exact.join(", "),
            info.from(),
            where_clause(&conditions),
            columns.join(", "),
            rows.saturating_sub(1)
        ))?;
        if let Some(fields) = tagged(&answer, "key") {
            let n = key.len();
            let found = Key {
                shown: fields[..n].to_vec(),
                exact: fields[n..].to_vec(),
            };
            conditions.push(up_to_sql(&columns, &values(&found)?));
            upper = Some(found);
        }
    }
    Ok((conditions, upper))
}

/// What a chunk's checksum reads: `COUNT(*), IFNULL(SUM(hash), 0) FROM t … WHERE …`, along
/// the primary key when the chunk is a key range (`keyed`).
pub(super) fn checksum_sql(info: &TableInfo, keyed: bool, conditions: &[String]) -> String {
    format!(
        "COUNT(*), IFNULL(SUM({}), 0) FROM {}{}{}",
        row_hash(&info.columns),
        info.from(),
        if keyed { " FORCE INDEX (PRIMARY)" } else { "" },
        where_clause(conditions)
    )
}

/// The application's tables, read before a run.
pub(super) struct Listed {
    /// As the primary lists them.
    pub(super) infos: Vec<TableInfo>,
    /// As the core sees them (with how each differs in itself on the other nodes).
    pub(super) tables: Vec<Table>,
    /// Per other node: why its tables could not be listed, when they could not (it is out
    /// of the run).
    pub(super) unlisted: Vec<Option<String>>,
}

/// The application's tables on `primary` and on each of `others`.
pub(super) fn tables_on(
    primary: &mut dyn Host,
    others: &mut [&mut dyn Host],
) -> anyhow::Result<Listed> {
    let label = primary.label().to_owned();
    let infos =
        list_tables(primary).with_context(|| format!("cannot list the tables on {label}"))?;
    let mut theirs = Vec::new();
    let mut unlisted = Vec::new();
    for host in others.iter_mut() {
        let label = host.label().to_owned();
        match list_tables(&mut **host).with_context(|| format!("cannot list the tables on {label}"))
        {
            Ok(listed) => {
                theirs.push(Some(listed));
                unlisted.push(None);
            }
            Err(err) => {
                theirs.push(None);
                unlisted.push(Some(format!("{err:#}")));
            }
        }
    }
    let tables = core_tables(&infos, &theirs);
    Ok(Listed {
        infos,
        tables,
        unlisted,
    })
}

/// The tables as the core sees them: the key if it can be walked, why the table is
/// compared whole otherwise, and how it differs in itself on each replica.
fn core_tables(infos: &[TableInfo], theirs: &[Option<Vec<TableInfo>>]) -> Vec<Table> {
    infos
        .iter()
        .enumerate()
        .map(|(id, info)| {
            let key = info.key();
            let whole = if key.is_empty() {
                Some("no primary key".to_owned())
            } else if let Some(c) = key.iter().find(|c| c.prefix) {
                Some(format!(
                    "its primary key holds only a prefix of column {}",
                    c.name
                ))
            } else {
                key.iter().find_map(|c| kind(c).err())
            };
            Table {
                id,
                name: format!("{}.{}", info.schema, info.name),
                key: key.iter().map(|c| c.name.clone()).collect(),
                whole,
                skipped: None,
                estimated_rows: info.rows,
                differs_on: theirs
                    .iter()
                    .map(|t| t.as_ref().and_then(|t| differs_on(info, t)))
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::mariadb::chunks::parse_tables;

    #[test]
    fn only_the_other_writers_domains_are_compared() {
        let domains = [2];
        assert_eq!(in_domains("1-1-40,2-2-17", &domains), ["2-2-17"]);
        assert_eq!(
            in_domains("2-2-17, 1-1-41", &domains),
            in_domains("1-1-40,2-2-17", &domains)
        );
        assert_ne!(
            in_domains("1-1-40,2-2-17", &domains),
            in_domains("1-1-40,2-2-18", &domains)
        );
        // Nothing written in that domain yet on one side: not the same point.
        assert_ne!(
            in_domains("1-1-40", &domains),
            in_domains("2-2-1", &domains)
        );
        // One writer: nothing to tell apart.
        assert!(in_domains("0-1-9", &[]).is_empty());
    }

    #[test]
    fn tables_missing_or_shaped_otherwise_on_a_replica_are_named() {
        let rows: Vec<Vec<Option<String>>> = [
            "table\tapp\titems\t3",
            "table\tapp\tlog\t9",
            "column\tapp\titems\tid\tint(11)\tint\t\t\t1\t0",
            "column\tapp\titems\tname\tvarchar(40)\tvarchar\tutf8mb4\tutf8mb4_general_ci\t0\t0",
            "column\tapp\tlog\tline\ttext\ttext\tutf8mb4\tutf8mb4_general_ci\t0\t0",
        ]
        .iter()
        .map(|l| l.split('\t').map(|f| Some(f.to_owned())).collect())
        .collect();
        let mine = parse_tables(&rows).unwrap();
        assert_eq!(mine[0].key().len(), 1);
        let mut theirs = mine.clone();
        theirs[0].columns[1].column_type = "varchar(80)".into();
        theirs.remove(1);
        let tables = core_tables(&mine, &[Some(theirs)]);
        assert!(
            tables[0].differs_on[0]
                .as_deref()
                .unwrap()
                .contains("columns differ")
        );
        assert_eq!(
            tables[1].differs_on[0].as_deref(),
            Some("the table is missing there")
        );
        assert_eq!(tables[1].whole.as_deref(), Some("no primary key"));
    }
}
