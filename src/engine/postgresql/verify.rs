//! `verify` on PostgreSQL: a hot standby cannot be written, so nothing can travel to it as
//! a statement; each standby is read instead at a point where it holds exactly what the
//! primary holds of the chunk's table.
//!
//! Per chunk, a session on the primary takes `LOCK TABLE … IN SHARE MODE` (bounded by
//! `lock_timeout`): writers of that table wait, readers go on, and every transaction that
//! wrote the table has ended, so the primary's checksum of the chunk is the table's state
//! for as long as the lock is held. It then reads `pg_current_wal_insert_lsn()`: every
//! commit that touched the table is before it. Each standby waits (bounded) until it has
//! replayed that far and reads the same chunk, with a snapshot taken after; only then does
//! the primary's transaction end and release the lock. Unlogged tables are not replicated
//! and cannot be read on a standby: they are skipped, and the report says so.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;

use super::client::{self, ident};
use super::layout;
use super::observe;
use super::position::Lsn;
use crate::host::{Cmd, Host, HostExt, quote};
use crate::topology::Observed;
use crate::verify::session::{Ended, Session};
use crate::verify::{Checker, Chunk, Finding, Key, Table, Verdict};

/// How long the primary waits for its share lock on a chunk's table (each try).
const LOCK_TIMEOUT: &str = "3s";
const TRIES: u32 = 3;
/// How long a standby may take to replay the primary's WAL up to a chunk's point.
const REPLAY_WAIT_SECS: u64 = 30;
/// The most a single question may take (a whole table without a key).
const QUESTION: Duration = Duration::from_secs(3600);

/// Every session reads and prints values the same way, whatever each server's settings
/// say (a value crosses from the primary to a standby as text).
const SETUP: &str = "SET standard_conforming_strings = on;\n\
SET TimeZone = 'UTC';\n\
SET DateStyle = 'ISO, YMD';\n\
SET IntervalStyle = 'postgres';\n\
SET extra_float_digits = 1;\n\
SET bytea_output = 'hex';\n\
SET lc_monetary = 'C';\n\
SET statement_timeout = 0;\n\
SET application_name = 'ha-setup verify';";

/// A run that is gone (the operator's machine lost) never leaves a table locked for long;
/// a chunk's commit flushes the WAL here without waiting for any synchronous standby.
const PRIMARY_SETUP: &str = "SET idle_in_transaction_session_timeout = '60s';\n\
SET synchronous_commit = 'local';";

fn marker(mark: &str) -> String {
    format!("\\echo {mark}")
}

/// psql on `cluster`, in database `db` (given as a connection string, so no name is
/// taken for anything else).
fn psql(cluster: &str, db: &str) -> Cmd {
    let mut cmd = client::command(cluster);
    let conninfo = format!("dbname='{}'", db.replace('\\', "\\\\").replace('\'', "\\'"));
    cmd.script.push_str(&format!(" -d {}", quote(&conninfo)));
    cmd
}

/// One query's single JSON answer, in `db`.
fn json_in<T: for<'de> Deserialize<'de>>(
    host: &mut dyn Host,
    cluster: &str,
    db: &str,
    sql: &str,
) -> anyhow::Result<T> {
    let input = format!("{SETUP}\n{sql}\n");
    let output = host.run_with_input(&psql(cluster, db), input.as_bytes())?;
    if !output.success() {
        bail!(
            "PostgreSQL on {} refused a query in database {db}: {}",
            host.label(),
            client::server_message(&output.stderr)
        );
    }
    let text = output.stdout_text();
    serde_json::from_str(text.trim()).with_context(|| {
        format!(
            "unexpected answer from PostgreSQL on {}: {:?}",
            host.label(),
            text.trim()
        )
    })
}

const DATABASES_SQL: &str = "SELECT coalesce(json_agg(datname ORDER BY datname), '[]') \
FROM pg_database WHERE datallowconn AND NOT datistemplate";

/// The application's tables of one database: ordinary tables (partitions included, their
/// parents hold no rows), not PostgreSQL's own nor ha-setup's.
fn tables_sql() -> String {
    format!(
        "SELECT coalesce(json_agg(json_build_object(\
         'schema', n.nspname, 'name', c.relname, 'persistence', c.relpersistence, \
         'rows', greatest(c.reltuples, 0)::bigint, \
         'key', (SELECT coalesce(json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, NULL)) \
                 ORDER BY array_position(i.indkey::int2[], a.attnum)), '[]') \
                 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                 WHERE i.indrelid = c.oid AND i.indisprimary)) \
         ORDER BY n.nspname, c.relname), '[]') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND c.relpersistence <> 't' \
         AND n.nspname NOT IN ('pg_catalog', 'information_schema', {schema}) \
         AND n.nspname !~ '^pg_(toast|temp_)'",
        schema = client::literal(layout::SCHEMA)
    )
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
struct KeyColumn {
    name: String,
    /// As `format_type` names it, to cast a value's text back to it.
    #[serde(rename = "type")]
    type_name: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
struct Listed {
    schema: String,
    name: String,
    /// `p` permanent, `u` unlogged.
    persistence: String,
    rows: u64,
    key: Vec<KeyColumn>,
}

#[derive(Debug, Clone)]
struct TableInfo {
    db: String,
    listed: Listed,
}

impl TableInfo {
    fn from(&self) -> String {
        format!(
            "{}.{} AS ha_setup_row",
            ident(&self.listed.schema),
            ident(&self.listed.name)
        )
    }

    fn columns(&self) -> Vec<String> {
        self.listed
            .key
            .iter()
            .map(|k| format!("ha_setup_row.{}", ident(&k.name)))
            .collect()
    }

    /// `('v1'::type1, 'v2'::type2)`: a key's text cast back to its columns' types.
    fn row(&self, key: &Key) -> String {
        let values: Vec<String> = self
            .listed
            .key
            .iter()
            .zip(&key.exact)
            .map(|(k, v)| format!("{}::{}", client::literal(v), k.type_name))
            .collect();
        format!("({})", values.join(", "))
    }
}

/// A row's 64-bit hash: the first 16 hex digits of the MD5 of the whole row's text (where
/// NULL and an empty string differ), summed as a numeric so that no order matters and no
/// two equal rows cancel out.
const CHECKSUM: &str = "json_build_array(count(*), \
coalesce(sum(('x' || left(md5(ha_setup_row::text), 16))::bit(64)::bigint), 0)::text)::text";

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
struct Sum(u64, String);

struct Standby<'scope, 'env> {
    session: Session<'scope, 'env>,
    cluster: String,
    lost: Option<String>,
}

struct PgChecker<'scope, 'env> {
    primary: Session<'scope, 'env>,
    cluster: String,
    standbys: Vec<Standby<'scope, 'env>>,
    infos: Vec<TableInfo>,
    tables: Vec<Table>,
    /// The database the sessions are in now.
    db: Option<String>,
    /// `wal_block_size` and `wal_segment_size`: where WAL pages begin.
    geometry: (u64, u64),
}

pub fn verify(
    primary: &mut dyn Host,
    standbys: Vec<&mut dyn Host>,
    seen: Vec<&Observed>,
    drive: &mut dyn FnMut(&mut dyn Checker) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let clusters: Vec<String> = seen
        .iter()
        .map(|s| observe::cluster(s).map(|c| c.id()).unwrap_or_default())
        .collect();
    if let Some(at) = clusters.iter().position(String::is_empty) {
        bail!("no PostgreSQL cluster was read on {}", seen[at].label);
    }
    let cluster = clusters[0].clone();
    let databases: Vec<String> = json_in(primary, &cluster, "postgres", DATABASES_SQL)
        .with_context(|| format!("cannot list the databases on {}", primary.label()))?;
    let mut infos = Vec::new();
    for db in &databases {
        let listed: Vec<Listed> = json_in(primary, &cluster, db, &tables_sql())
            .with_context(|| format!("cannot list the tables of {db} on {}", primary.label()))?;
        infos.extend(listed.into_iter().map(|listed| TableInfo {
            db: db.clone(),
            listed,
        }));
    }
    let geometry: (String, String) = json_in(
        primary,
        &cluster,
        "postgres",
        "SELECT json_build_array(current_setting('wal_block_size'), \
         (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'))",
    )?;
    let geometry = (
        geometry.0.parse().context("wal_block_size")?,
        geometry.1.parse().context("wal_segment_size")?,
    );
    let n = standbys.len();
    let tables = infos
        .iter()
        .enumerate()
        .map(|(id, info)| Table {
            id,
            name: format!("{}.{}.{}", info.db, info.listed.schema, info.listed.name),
            key: info.listed.key.iter().map(|k| k.name.clone()).collect(),
            whole: info
                .listed
                .key
                .is_empty()
                .then(|| "no primary key".to_owned()),
            skipped: (info.listed.persistence == "u").then(|| {
                "an unlogged table: its rows are not replicated, and a standby cannot read it"
                    .to_owned()
            }),
            estimated_rows: info.listed.rows,
            differs_on: vec![None; n],
        })
        .collect();
    std::thread::scope(|scope| {
        let setup = format!("{SETUP}\n{PRIMARY_SETUP}");
        let primary = Session::open(scope, primary, psql(&cluster, "postgres"), setup, marker);
        let standbys = standbys
            .into_iter()
            .zip(&clusters[1..])
            .map(|(host, cluster)| Standby {
                session: Session::open(
                    scope,
                    host,
                    psql(cluster, "postgres"),
                    SETUP.to_owned(),
                    marker,
                ),
                cluster: cluster.clone(),
                lost: None,
            })
            .collect();
        let mut checker = PgChecker {
            primary,
            cluster,
            standbys,
            infos,
            tables,
            db: None,
            geometry,
        };
        drive(&mut checker)
    })
}

/// The LSN a standby must have replayed to hold every record inserted before `lsn`. At a
/// page's start the insert position is past the page header, which no replayed record
/// ends after: the target is then the page boundary itself.
fn replay_target(lsn: Lsn, (block, segment): (u64, u64)) -> Lsn {
    const SHORT_HEADER: u64 = 24;
    const LONG_HEADER: u64 = 40;
    if segment > 0 && lsn.0 % segment == LONG_HEADER {
        Lsn(lsn.0 - LONG_HEADER)
    } else if block > 0 && lsn.0 % block == SHORT_HEADER {
        Lsn(lsn.0 - SHORT_HEADER)
    } else {
        lsn
    }
}

/// The line of `lines` tagged `tag ` (without the tag).
fn tagged<'a>(lines: &'a [String], tag: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|line| line.strip_prefix(tag)?.strip_prefix(' '))
}

/// The chunk's last key, from the answer to its end query; None past the table's end.
fn chunk_end(lines: &[String]) -> anyhow::Result<Option<Key>> {
    let Some(text) = tagged(lines, "key") else {
        return Ok(None);
    };
    let values: Vec<String> = serde_json::from_str(text)
        .with_context(|| format!("unexpected key from the primary: {text}"))?;
    Ok(Some(Key {
        shown: values.clone(),
        exact: values,
    }))
}

fn ended_with(err: &anyhow::Error, words: &str) -> bool {
    err.downcast_ref::<Ended>()
        .is_some_and(|ended| ended.stderr.contains(words))
}

impl PgChecker<'_, '_> {
    /// Every session into `db`.
    fn enter(&mut self, db: &str) {
        if self.db.as_deref() == Some(db) {
            return;
        }
        self.primary.switch(psql(&self.cluster, db));
        for standby in &mut self.standbys {
            standby.session.switch(psql(&standby.cluster, db));
        }
        self.db = Some(db.to_owned());
    }

    fn verdicts_lost(&self, active: &dyn Fn(usize) -> Verdict) -> Vec<Verdict> {
        self.standbys
            .iter()
            .enumerate()
            .map(|(i, s)| match &s.lost {
                Some(why) => Verdict::Lost(why.clone()),
                None => active(i),
            })
            .collect()
    }

    /// Takes the table's share lock on the primary (the chunk's end found first, from
    /// `after`, when it has `rows`), and reads the WAL insert position once the lock is
    /// held: every commit that touched the table is before it. None when the lock could
    /// not be had in [`TRIES`] tries. The transaction stays open.
    ///
    /// A standby can replay only WAL that was flushed, and unflushed WAL waits for the WAL
    /// writer (`wal_writer_delay`, 200 ms by default, up to three times that). Just before
    /// the lock, a transaction that writes one WAL record (an empty logical message; a
    /// transaction id alone commits without a flush) commits, flushing what was written
    /// so far: the end query's hint bits and any other session's records. The standbys
    /// then rarely wait at all.
    fn lock(
        &mut self,
        info: &TableInfo,
        end: Option<String>,
    ) -> anyhow::Result<Option<(Vec<String>, Lsn)>> {
        let batch = format!(
            "{}\n\
             BEGIN;\n\
             SELECT 'flushed ' || pg_logical_emit_message(true, 'ha-setup-verify', '')::text;\n\
             COMMIT;\n\
             BEGIN;\n\
             SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';\n\
             LOCK TABLE {}.{} IN SHARE MODE;\n\
             SELECT 'lsn ' || pg_current_wal_insert_lsn()::text;",
            end.unwrap_or_default(),
            ident(&info.listed.schema),
            ident(&info.listed.name),
        );
        for _ in 0..TRIES {
            match self.primary.ask(&batch, QUESTION) {
                Ok(lines) => {
                    let lsn: Lsn = tagged(&lines, "lsn")
                        .context("no WAL position from the primary")?
                        .parse()?;
                    return Ok(Some((lines, lsn)));
                }
                // The session ended with the error, and its transaction with it.
                Err(err) if ended_with(&err, "lock timeout") => continue,
                Err(err) => return Err(err),
            }
        }
        Ok(None)
    }

    /// Each standby still in the run, once it has replayed `target`: its checksum of the
    /// chunk, or why it has none.
    fn standby_sums(
        &mut self,
        range_sql: &str,
        from: &str,
        target: Lsn,
    ) -> Vec<Option<Result<Sum, String>>> {
        let batch = format!(
            "DO $$ DECLARE stop timestamptz := clock_timestamp() + interval '{REPLAY_WAIT_SECS} seconds'; BEGIN \
             WHILE pg_is_in_recovery() AND pg_last_wal_replay_lsn() < '{target}'::pg_lsn \
             AND NOT pg_is_wal_replay_paused() AND clock_timestamp() < stop LOOP \
             PERFORM pg_sleep(0.001); END LOOP; END $$;\n\
             SELECT coalesce(pg_last_wal_replay_lsn() >= '{target}'::pg_lsn, false)::int AS ha_setup_reached \\gset\n\
             SELECT 'lsn ' || json_build_array(pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, \
             CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END)::text;\n\
             \\if :ha_setup_reached\n\
             SELECT 'sum ' || {CHECKSUM} FROM {from}{range_sql};\n\
             \\endif"
        );
        let bound = QUESTION;
        let mut results: Vec<Option<Result<Sum, String>>> = Vec::new();
        let mut posted = Vec::new();
        for standby in &mut self.standbys {
            if standby.lost.is_some() {
                posted.push(None);
                continue;
            }
            posted.push(Some(standby.session.post(&batch)));
        }
        for (standby, posted) in self.standbys.iter_mut().zip(posted) {
            let Some(posted) = posted else {
                results.push(None);
                continue;
            };
            let mut answer = posted.and_then(|p| standby.session.answer(p, bound));
            // A query cancelled by a conflict with recovery (the primary cleaned up rows
            // the standby's snapshot could still see) is asked once more.
            if let Err(err) = &answer
                && ended_with(err, "conflict with recovery")
            {
                answer = standby.session.ask(&batch, bound);
            }
            results.push(Some(match answer {
                Ok(lines) => read_standby(&lines, target),
                Err(err) => Err(format!("{err:#}")),
            }));
        }
        results
    }
}

/// What a standby's answer says: its checksum, or why it has none (it stopped or paused
/// replaying, it was promoted, it fell behind).
fn read_standby(lines: &[String], target: Lsn) -> Result<Sum, String> {
    let state: (bool, Option<String>, bool) = tagged(lines, "lsn")
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| format!("unexpected answer: {lines:?}"))?;
    if let Some(sum) = tagged(lines, "sum") {
        return serde_json::from_str(sum).map_err(|err| format!("unexpected checksum: {err}"));
    }
    let (in_recovery, replayed, paused) = state;
    let replayed = replayed.unwrap_or_else(|| "nothing".into());
    Err(if !in_recovery {
        "it is no longer a standby (it was promoted)".into()
    } else if paused {
        format!(
            "WAL replay is paused there (at {replayed}); resume it with `SELECT pg_wal_replay_resume()`"
        )
    } else {
        format!(
            "it did not replay the primary's WAL up to {target} within {REPLAY_WAIT_SECS} s (replayed: {replayed}); `ha-setup status` shows its link"
        )
    })
}

impl Checker for PgChecker<'_, '_> {
    fn tables(&mut self) -> anyhow::Result<Vec<Table>> {
        Ok(self.tables.clone())
    }

    fn chunk(
        &mut self,
        table: &Table,
        _number: u64,
        after: Option<&Key>,
        rows: Option<u64>,
    ) -> anyhow::Result<Chunk> {
        let info = self.infos[table.id].clone();
        self.enter(&info.db);
        let columns = format!("({})", info.columns().join(", "));
        let mut conditions = Vec::new();
        if let Some(after) = after {
            conditions.push(format!("{columns} > {}", info.row(after)));
        }
        let end = rows.map(|rows| {
            let texts: Vec<String> = info
                .columns()
                .iter()
                .map(|c| format!("{c}::text"))
                .collect();
            format!(
                "SELECT 'key ' || json_build_array({})::text FROM {}{} ORDER BY {} OFFSET {} LIMIT 1;",
                texts.join(", "),
                info.from(),
                where_clause(&conditions),
                info.columns().join(", "),
                rows.saturating_sub(1)
            )
        });
        let started = Instant::now();
        let Some((lines, lsn)) = self.lock(&info, end.clone())? else {
            let why = format!(
                "its table stayed locked by other transactions ({TRIES} tries of {LOCK_TIMEOUT} each)"
            );
            // The walk goes on from this chunk's end, found without the lock.
            let upper = match end {
                Some(end) => chunk_end(&self.primary.ask(&end, QUESTION)?)?,
                None => None,
            };
            return Ok(Chunk {
                upper,
                rows: 0,
                work: None,
                verdicts: self.verdicts_lost(&|_| Verdict::NotCompared(why.clone())),
            });
        };
        let upper = chunk_end(&lines)?;
        if let Some(key) = &upper {
            conditions.push(format!("{columns} <= {}", info.row(key)));
        }
        let range = where_clause(&conditions);
        let locked = started.elapsed();
        let lines = self.primary.ask(
            &format!("SELECT 'sum ' || {CHECKSUM} FROM {}{range};", info.from()),
            QUESTION,
        )?;
        let mine: Sum =
            serde_json::from_str(tagged(&lines, "sum").context("no checksum from the primary")?)?;
        let summed = started.elapsed();
        let target = replay_target(lsn, self.geometry);
        let results = self.standby_sums(&range, &info.from(), target);
        let read = started.elapsed();
        // The lock goes only once every standby has read the chunk.
        let committed = self.primary.ask("COMMIT;", QUESTION);
        let mut verdicts = Vec::new();
        for (standby, result) in self.standbys.iter_mut().zip(results) {
            verdicts.push(match (result, &standby.lost) {
                (_, Some(why)) => Verdict::Lost(why.clone()),
                (None, None) => Verdict::NotCompared("not asked".into()),
                (Some(Ok(theirs)), None) if theirs == mine => Verdict::Same,
                (Some(Ok(_)), None) => Verdict::Differs,
                (Some(Err(why)), None) => {
                    standby.lost = Some(why.clone());
                    Verdict::Lost(why)
                }
            });
        }
        tracing::debug!(
            "{}: chunk of {} rows: locked after {:?}, primary read {:?}, standbys {:?}, lock held {:?}",
            table.name,
            mine.0,
            locked,
            summed - locked,
            read - summed,
            started.elapsed() - locked
        );
        committed.context("could not end the chunk's transaction on the primary")?;
        Ok(Chunk {
            upper,
            rows: mine.0,
            // Each standby reads the chunk as the primary did.
            work: Some((summed - locked) * 2),
            verdicts,
        })
    }

    fn finish(&mut self) -> anyhow::Result<Vec<Finding>> {
        self.primary.close();
        for standby in &mut self.standbys {
            standby.session.close();
        }
        // Every verdict was given chunk by chunk.
        Ok(self
            .standbys
            .iter()
            .map(|s| match &s.lost {
                Some(why) => Err(why.clone()),
                None => Ok(crate::verify::Found::default()),
            })
            .collect())
    }
}

fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_at_a_pages_start_is_the_page_boundary() {
        let geometry = (8192, 16 * 1024 * 1024);
        assert_eq!(replay_target(Lsn(8192 * 5 + 24), geometry), Lsn(8192 * 5));
        assert_eq!(
            replay_target(Lsn(16 * 1024 * 1024 * 3 + 40), geometry),
            Lsn(16 * 1024 * 1024 * 3)
        );
        assert_eq!(
            replay_target(Lsn(8192 * 5 + 100), geometry),
            Lsn(8192 * 5 + 100)
        );
    }

    #[test]
    fn keys_go_back_to_their_types() {
        let info = TableInfo {
            db: "app".into(),
            listed: Listed {
                schema: "public".into(),
                name: "t".into(),
                persistence: "p".into(),
                rows: 0,
                key: vec![
                    KeyColumn {
                        name: "a".into(),
                        type_name: "text".into(),
                    },
                    KeyColumn {
                        name: "b".into(),
                        type_name: "timestamp with time zone".into(),
                    },
                ],
            },
        };
        let key = Key {
            shown: vec![],
            exact: vec!["it's".into(), "2026-11-29 02:00:00+00".into()],
        };
        assert_eq!(
            info.row(&key),
            "('it''s'::text, '2026-11-29 02:00:00+00'::timestamp with time zone)"
        );
        assert_eq!(info.columns(), ["ha_setup_row.\"a\"", "ha_setup_row.\"b\""]);
    }

    #[test]
    fn a_standby_that_has_no_checksum_says_why() {
        let lines = |lsn: &str| vec![format!("lsn {lsn}")];
        let target = Lsn(0x3000148);
        assert!(
            read_standby(&lines(r#"[true, "0/3000000", true]"#), target)
                .unwrap_err()
                .contains("paused")
        );
        assert!(
            read_standby(&lines(r#"[false, null, false]"#), target)
                .unwrap_err()
                .contains("promoted")
        );
        assert!(
            read_standby(&lines(r#"[true, "0/3000000", false]"#), target)
                .unwrap_err()
                .contains("within 30 s")
        );
        let sum = vec![
            r#"lsn [true, "0/3000148", false]"#.to_owned(),
            r#"sum [3, "123"]"#.to_owned(),
        ];
        assert_eq!(read_standby(&sum, target), Ok(Sum(3, "123".into())));
    }
}
