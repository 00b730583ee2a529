//! `verify` on a Galera cluster: every data node (never the arbitrator) compared with the
//! node the application writes to, chunk by chunk, each node reading the chunk in a
//! snapshot of its own, taken after a causal wait and at as nearly the same moment as the
//! nodes allow. Nothing is written on any node.
//!
//! MariaDB's primary-replica method (../verify.rs) does not carry over: it makes each
//! chunk's checksum travel through replication as a statement, so that every replica
//! computes its own at the same place in the history. Galera replicates row images
//! (writesets): a checksum row written on one node would arrive on the others as that
//! node's values, copied, not computed. Nor does ha-setup's Galera template turn on the
//! binary log, so there is no position to read the nodes at.
//!
//! What Galera gives instead is one history, committed in the same order on every node,
//! and causal reads. One client session per data node stays open for the run. Per chunk,
//! the write node picks the chunk's last key (as in primary-replica); then every node at
//! once (the question goes to every node before any answer is read) runs `SET SESSION
//! wsrep_sync_wait = 1` and `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`: the
//! START first waits until the node has applied everything the cluster had committed when
//! it began (bounded by the server: `repl.causal_read_timeout` in wsrep_provider_options,
//! 30 s by default; running out is ER_LOCK_WAIT_TIMEOUT), and the snapshot is taken right
//! after. Then `SELECT COUNT(*), SUM(row hash)` over the key range, and `COMMIT`. A
//! snapshot read takes no locks, so it never conflicts with the application's writes in
//! Galera's certification. Statements inside the transaction wait no more (MariaDB waits
//! only outside one), and the wait is switched off again before the client's end-of-answer
//! marker, which is a SELECT too.
//!
//! The nodes' snapshots are close in time, not one point: a write committed between two of
//! them makes the chunk differ for a moment. A chunk that differs on a node is therefore
//! read again on every node still undecided, up to [`RECHECKS`] times, and [`settle`]
//! decides: the same on the latest try is the same; a difference is real when, on two
//! consecutive tries, the write node and that node each showed the same count and sum as on
//! the try before. Why that holds: the tries follow one another, so the write node's causal
//! wait in a try begins after the other node's snapshot of the try before, and its
//! snapshot holds every transaction the other node's earlier one held; the same the other
//! way round. Each node unchanged from one try to the next means each holds what the other
//! held, so the two hold the same transactions of that range, and what still differs did not
//! come from the cluster's history. A chunk that changes between every two tries until the
//! bound is not compared ("written throughout"), and the report names every chunk that was
//! compared again.
//!
//! The limit: "the same on two consecutive tries" compares values, not histories. A range
//! that is changed and changed back between two tries (A → B → A) looks untouched, so a
//! difference read across such a pair of tries can be taken for a real one. It takes a
//! write and its undo to fall between two reads a fraction of a second apart, on a chunk
//! that differed already; a single differing range is worth a second run of verify.
//!
//! A node that leaves the primary component or stops being Synced (checked at the start and
//! whenever a question fails), whose session ends, or whose causal wait runs out on
//! [`TIMEOUTS`] chunks in a row, is out of the run, with the reason; the others go on (the
//! write node's running out that often ends the run for every node). Tables that are not
//! InnoDB are skipped: Galera replicates InnoDB's writes only, so each node's copy of such
//! a table is its own.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::super::chunks::TableInfo;
use super::super::client;
use super::super::verify::{
    Listed, QUESTION, RECHECKS, checksum_sql, fields, marker, range, session_cmd, tables_on, tagged,
};
use crate::host::Host;
use crate::verify::session::{Ended, Session};
use crate::verify::{Checker, Chunk, Finding, Found, Key, Table, Verdict};

/// Every session's settings: no causal wait but the chunk's own (switched on around it),
/// REPEATABLE READ (the snapshot), times in UTC (a TIMESTAMP hashes the same on every
/// node) and a bounded wait for a table's metadata lock (a schema change holding it).
const SETUP: &str = "SET SESSION wsrep_sync_wait = 0;\n\
SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;\n\
SET SESSION time_zone = '+00:00';\n\
SET SESSION lock_wait_timeout = 10;";

/// A node's place in the cluster, read the way status reads it (dirty reads: a node
/// outside the primary component answers too).
const STATE_SQL: &str = "SET SESSION wsrep_dirty_reads = ON;\n\
SELECT 'state', @@global.wsrep_on, \
(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE_COMMENT'), \
(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATUS'), \
(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATE_UUID');\n\
SET SESSION wsrep_dirty_reads = OFF;";

/// The most a chunk of a keyed table may take on a node: the causal wait (30 s by
/// default) and reading at most 10,000 rows, with room to spare.
const CHUNK: Duration = Duration::from_secs(120);
/// The most reading a node's state may take.
const STATE: Duration = Duration::from_secs(30);
/// Chunks in a row whose causal wait may run out on a node before it is out of the run.
const TIMEOUTS: u32 = 3;

/// A chunk's checksum on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sum {
    rows: u64,
    /// The exact sum of the row hashes (a DECIMAL, as the server prints it).
    sum: String,
}

/// What the tries of a chunk so far say of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Same,
    Differs,
    /// Not known yet: read it again.
    Open,
}

/// The settle rule (module comment): `tries` holds, per try of one chunk, the write node's
/// checksum and the other node's, oldest first.
fn settle(tries: &[(Sum, Sum)]) -> Settled {
    let Some((write, here)) = tries.last() else {
        return Settled::Open;
    };
    if write == here {
        return Settled::Same;
    }
    match tries.len().checked_sub(2).map(|before| &tries[before]) {
        Some((write_before, here_before)) if write_before == write && here_before == here => {
            Settled::Differs
        }
        _ => Settled::Open,
    }
}

/// What one node showed for a chunk in one try.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Read {
    Sum(Sum),
    /// Not this chunk, and why; the node stays in the run.
    Missed(String),
    /// The node is out of the run, and why.
    Lost(String),
}

/// One try of a chunk.
struct Try {
    /// The write node's checksum, or why the chunk cannot be compared anywhere this time.
    write: Result<Sum, String>,
    /// What each other node asked showed, by its place among the others.
    reads: Vec<(usize, Read)>,
}

/// A node's place in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeState {
    on: bool,
    /// `wsrep_local_state_comment`: Synced, Donor/Desynced, Joining…
    state: String,
    /// `wsrep_cluster_status`: Primary, non-Primary, Disconnected.
    status: String,
    uuid: String,
}

impl NodeState {
    fn parse(rows: &[Vec<String>]) -> Option<NodeState> {
        let fields = tagged(rows, "state")?;
        let field = |i: usize| fields.get(i).cloned().unwrap_or_default();
        Some(NodeState {
            on: field(0) == "1",
            state: field(1),
            status: field(2),
            uuid: field(3),
        })
    }

    /// Why the node cannot be compared, when it cannot: only a node Synced in the primary
    /// component has applied the cluster's writes as they come.
    fn problem(&self) -> Option<String> {
        if !self.on {
            Some(
                "Galera is off in its server (wsrep_on = OFF), so it is not part of the cluster"
                    .into(),
            )
        } else if self.status != "Primary" {
            Some(format!(
                "it is outside the primary component (wsrep_cluster_status {}, {}), so it applies none of the \
                 cluster's writes; `ha-setup status` says what to do",
                shown(&self.status),
                shown(&self.state)
            ))
        } else if self.state != "Synced" {
            Some(format!(
                "it is {}, not Synced (wsrep_local_state_comment): a node that serves or receives a state \
                 transfer, or is desynced, lags behind the cluster; run verify again once it is Synced",
                shown(&self.state)
            ))
        } else {
            None
        }
    }
}

fn shown(value: &str) -> &str {
    if value.is_empty() { "unknown" } else { value }
}

/// The causal wait ran out (or a metadata lock wait did): ER_LOCK_WAIT_TIMEOUT.
fn timed_out(err: &anyhow::Error) -> bool {
    err.downcast_ref::<Ended>()
        .is_some_and(|ended| !ended.timed_out && ended.stderr.contains("ERROR 1205"))
}

/// What a failed question says: the server's own words, or the bound that ran out.
fn said(err: &anyhow::Error, bound: Duration) -> String {
    match err.downcast_ref::<Ended>() {
        Some(ended) if ended.timed_out => {
            format!("it did not answer within {} s", bound.as_secs())
        }
        Some(ended) => format!(
            "its database client ended: {}",
            client::server_message(&ended.stderr)
        ),
        None => format!("{err:#}"),
    }
}

fn late(label: &str, err: &anyhow::Error) -> String {
    format!(
        "{label} did not apply the cluster's writes within the causal read timeout (repl.causal_read_timeout \
         in wsrep_provider_options, 30 s by default), or a schema change held the table for 10 s ({})",
        said(err, STATE)
    )
}

/// The checksum of a chunk in a node's answer.
fn sum_of(lines: &[String]) -> Option<Sum> {
    let fields = tagged(&fields(lines), "chunk")?;
    Some(Sum {
        rows: fields.first()?.parse().ok()?,
        sum: fields.get(1)?.clone(),
    })
}

struct Member<'scope, 'env> {
    session: Session<'scope, 'env>,
    lost: Option<String>,
    /// Chunks in a row whose causal wait ran out.
    timeouts: u32,
}

struct GaleraChecker<'scope, 'env> {
    write: Session<'scope, 'env>,
    others: Vec<Member<'scope, 'env>>,
    infos: Vec<TableInfo>,
    tables: Vec<Table>,
    /// Per other node: the chunks compared again, by (table id, chunk number).
    rechecked: Vec<Vec<(usize, u64)>>,
    /// Chunks in a row whose causal wait ran out on the write node.
    timeouts: u32,
}

/// Compares `others` (data nodes) with `write`, the node the application writes to.
pub fn verify(
    write: &mut dyn Host,
    others: Vec<&mut dyn Host>,
    drive: &mut dyn FnMut(&mut dyn Checker) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut others = others;
    let Listed {
        infos,
        mut tables,
        unlisted,
    } = tables_on(write, &mut others)?;
    for (table, info) in tables.iter_mut().zip(&infos) {
        if !info.engine.eq_ignore_ascii_case("InnoDB") {
            table.skipped = Some(format!(
                "not InnoDB ({}): Galera does not replicate it (only InnoDB's writes travel in writesets), \
                 so each node's copy is its own",
                shown(&info.engine)
            ));
        }
    }
    std::thread::scope(|scope| {
        let mut checker = GaleraChecker {
            write: open(scope, write),
            rechecked: vec![Vec::new(); others.len()],
            others: others
                .into_iter()
                .zip(unlisted)
                .map(|(host, lost)| Member {
                    session: open(scope, host),
                    lost,
                    timeouts: 0,
                })
                .collect(),
            infos,
            tables,
            timeouts: 0,
        };
        checker.prepare()?;
        drive(&mut checker)
    })
}

fn open<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    host: &'scope mut dyn Host,
) -> Session<'scope, 'env> {
    Session::open(scope, host, session_cmd(), SETUP.to_owned(), marker)
}

impl GaleraChecker<'_, '_> {
    /// Every node's place in the cluster, read at once: the write node must be Synced in
    /// the primary component (else there is nothing to compare with), and each other node
    /// too, in the same history, or it is out of the run.
    fn prepare(&mut self) -> anyhow::Result<()> {
        let posted = self.write.post(STATE_SQL);
        let theirs: Vec<_> = self
            .others
            .iter_mut()
            .map(|m| m.lost.is_none().then(|| m.session.post(STATE_SQL)))
            .collect();
        let label = self.write.label().to_owned();
        let mine = posted
            .and_then(|p| self.write.answer(p, STATE))
            .map(|lines| NodeState::parse(&fields(&lines)));
        let mut states = Vec::new();
        for (member, posted) in self.others.iter_mut().zip(theirs) {
            let Some(posted) = posted else {
                states.push(None);
                continue;
            };
            states.push(Some(posted.and_then(|p| member.session.answer(p, STATE))));
        }
        let mine = mine
            .with_context(|| format!("cannot read the Galera state of {label}"))?
            .with_context(|| format!("{label} did not say its Galera state"))?;
        if let Some(problem) = mine.problem() {
            bail!("cannot verify: {label}, which the other nodes are compared with: {problem}");
        }
        for (member, state) in self.others.iter_mut().zip(states) {
            let Some(answer) = state else { continue };
            let theirs = match answer {
                Ok(lines) => NodeState::parse(&fields(&lines)),
                Err(err) => {
                    member.lost = Some(format!("cannot read its Galera state: {err:#}"));
                    continue;
                }
            };
            member.lost = match theirs {
                None => Some("it did not say its Galera state".into()),
                Some(state) => state.problem().or_else(|| {
                    (state.uuid != mine.uuid).then(|| {
                        format!(
                            "it holds another history (wsrep_cluster_state_uuid {} there, {} on {label}): \
                             it is not a member of the same cluster",
                            state.uuid, mine.uuid
                        )
                    })
                }),
            };
        }
        Ok(())
    }

    /// What other node `n`'s failed answer means: out of the run, or (its causal wait ran
    /// out, fewer than [`TIMEOUTS`] times in a row) this chunk not compared there.
    fn failed(&mut self, n: usize, err: &anyhow::Error, bound: Duration) -> Read {
        let member = &mut self.others[n];
        let label = member.session.label().to_owned();
        if timed_out(err) {
            member.timeouts += 1;
            if member.timeouts < TIMEOUTS {
                return Read::Missed(late(&label, err));
            }
        }
        // Its state now says more than the error: a node that left the primary component
        // answers every read with ER_UNKNOWN_COM_ERROR ("WSREP has not yet prepared node").
        let now = match member.session.ask(STATE_SQL, STATE) {
            Ok(lines) => NodeState::parse(&fields(&lines)).and_then(|state| state.problem()),
            Err(again) => Some(format!(
                "asked for its Galera state then, {}",
                said(&again, STATE)
            )),
        };
        let what = if timed_out(err) {
            format!("{}, on {TIMEOUTS} chunks in a row", late(&label, err))
        } else {
            said(err, bound)
        };
        let why = match now {
            Some(problem) => format!("{what}; {problem}"),
            None => what,
        };
        member.session.close();
        member.lost = Some(why.clone());
        Read::Lost(why)
    }

    /// One try of a chunk: `batch` sent to the write node and to the other nodes `who`
    /// before any answer is read. Err: the write node's session ended, other than by its
    /// causal wait running out.
    fn try_once(&mut self, batch: &str, bound: Duration, who: &[usize]) -> anyhow::Result<Try> {
        let posted = self.write.post(batch);
        let theirs: Vec<_> = who
            .iter()
            .map(|&n| (n, self.others[n].session.post(batch)))
            .collect();
        let mine = posted.and_then(|p| self.write.answer(p, bound));
        let mut reads = Vec::new();
        for (n, posted) in theirs {
            let session = &mut self.others[n].session;
            let read = match posted.and_then(|p| session.answer(p, bound)) {
                Ok(lines) => match sum_of(&lines) {
                    Some(sum) => {
                        self.others[n].timeouts = 0;
                        Read::Sum(sum)
                    }
                    None => {
                        let why = "its answer held no checksum".to_owned();
                        self.others[n].lost = Some(why.clone());
                        Read::Lost(why)
                    }
                },
                Err(err) => self.failed(n, &err, bound),
            };
            reads.push((n, read));
        }
        let label = self.write.label().to_owned();
        let mine = match mine {
            Ok(lines) => Ok(sum_of(&lines)
                .with_context(|| format!("{label} answered no checksum for the chunk"))?),
            Err(err) if timed_out(&err) => Err(late(&label, &err)),
            Err(err) => bail!(
                "{label}, which the other nodes are compared with: {}",
                said(&err, bound)
            ),
        };
        Ok(Try { write: mine, reads })
    }
}

impl Checker for GaleraChecker<'_, '_> {
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
        let started = Instant::now();
        let info = self.infos[table.id].clone();
        let write = &mut self.write;
        let (conditions, upper) = range(&info, after, rows, &mut |sql| {
            Ok(fields(&write.ask(sql, QUESTION)?))
        })?;
        let batch = format!(
            "SET SESSION wsrep_sync_wait = 1;\n\
             START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY;\n\
             SET SESSION wsrep_sync_wait = 0;\n\
             SELECT 'chunk', {};\n\
             COMMIT;",
            checksum_sql(&info, rows.is_some(), &conditions)
        );
        let bound = if rows.is_some() { CHUNK } else { QUESTION };
        let mut verdicts: Vec<Option<Verdict>> = self
            .others
            .iter()
            .map(|m| m.lost.clone().map(Verdict::Lost))
            .collect();
        let mut tries: Vec<Vec<(Sum, Sum)>> = vec![Vec::new(); self.others.len()];
        let mut held = 0;
        let mut work = None;
        for attempt in 0..=RECHECKS {
            let pending: Vec<usize> = (0..verdicts.len())
                .filter(|&n| verdicts[n].is_none())
                .collect();
            if pending.is_empty() {
                break;
            }
            if attempt == 1 {
                for &n in &pending {
                    self.rechecked[n].push((table.id, number));
                }
            }
            let Try { write: mine, reads } = self.try_once(&batch, bound, &pending)?;
            if attempt == 0 {
                // What the chunk's size is judged by: the first reading, not the re-reads.
                work = Some(started.elapsed());
            }
            let mine = match mine {
                Ok(sum) => {
                    self.timeouts = 0;
                    sum
                }
                Err(why) => {
                    self.timeouts += 1;
                    for &n in &pending {
                        verdicts[n] = Some(if self.timeouts < TIMEOUTS {
                            Verdict::NotCompared(why.clone())
                        } else {
                            // Each further chunk would wait as long: the run ends here.
                            let why = format!("{why}, on {TIMEOUTS} chunks in a row");
                            self.others[n].lost = Some(why.clone());
                            Verdict::Lost(why)
                        });
                    }
                    break;
                }
            };
            if attempt == 0 {
                held = mine.rows;
            }
            for (n, read) in reads {
                verdicts[n] = match read {
                    Read::Sum(sum) => {
                        tries[n].push((mine.clone(), sum));
                        match settle(&tries[n]) {
                            Settled::Same => Some(Verdict::Same),
                            Settled::Differs => Some(Verdict::Differs),
                            Settled::Open => None,
                        }
                    }
                    Read::Missed(why) => Some(Verdict::NotCompared(why)),
                    Read::Lost(why) => Some(Verdict::Lost(why)),
                };
            }
        }
        let verdicts = verdicts
            .into_iter()
            .map(|verdict| {
                verdict.unwrap_or_else(|| {
                    Verdict::NotCompared(format!(
                        "written throughout: it changed between every two of the {} times it was read, so a \
                         difference could not be told from writes in flight; run verify again when the \
                         application writes less there",
                        RECHECKS + 1
                    ))
                })
            })
            .collect();
        Ok(Chunk {
            upper,
            rows: held,
            work,
            verdicts,
        })
    }

    fn finish(&mut self) -> anyhow::Result<Vec<Finding>> {
        self.write.close();
        let mut findings = Vec::new();
        for (member, rechecked) in self.others.iter_mut().zip(&mut self.rechecked) {
            member.session.close();
            findings.push(match &member.lost {
                // Every chunk from its loss on says so already; this covers a run with no
                // chunk at all.
                Some(why) => Err(why.clone()),
                None => Ok(Found {
                    rechecked: std::mem::take(rechecked),
                    ..Found::default()
                }),
            });
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(rows: u64, sum: &str) -> Sum {
        Sum {
            rows,
            sum: sum.into(),
        }
    }

    #[test]
    fn a_chunk_is_the_same_as_soon_as_a_try_shows_it() {
        let a = sum(10, "123");
        assert_eq!(settle(&[(a.clone(), a.clone())]), Settled::Same);
        // Different once (a write in flight), then the same.
        assert_eq!(
            settle(&[(a.clone(), sum(9, "100")), (a.clone(), a.clone())]),
            Settled::Same
        );
        assert_eq!(settle(&[]), Settled::Open);
    }

    #[test]
    fn a_difference_is_real_only_when_neither_node_changed_between_two_tries() {
        let (a, b) = (sum(10, "123"), sum(10, "124"));
        // One try cannot tell a difference from a write in flight.
        assert_eq!(settle(&[(a.clone(), b.clone())]), Settled::Open);
        // Unchanged on both from one try to the next: real.
        assert_eq!(
            settle(&[(a.clone(), b.clone()), (a.clone(), b.clone())]),
            Settled::Differs
        );
        // The write node changed in between: written, not settled.
        let c = sum(11, "130");
        assert_eq!(
            settle(&[(a.clone(), b.clone()), (c.clone(), b.clone())]),
            Settled::Open
        );
        // The other node changed in between.
        assert_eq!(
            settle(&[(a.clone(), b.clone()), (a.clone(), c.clone())]),
            Settled::Open
        );
        // Only the last two tries count: changing at first, then unchanged twice.
        assert_eq!(
            settle(&[
                (c.clone(), b.clone()),
                (a.clone(), b.clone()),
                (a.clone(), b.clone())
            ]),
            Settled::Differs
        );
        // The same count with another sum is a difference too.
        assert_eq!(
            settle(&[(a.clone(), sum(10, "999")), (a.clone(), sum(10, "999"))]),
            Settled::Differs
        );
    }

    #[test]
    fn only_a_synced_member_of_the_primary_component_is_compared() {
        let state = |on: bool, state: &str, status: &str| NodeState {
            on,
            state: state.into(),
            status: status.into(),
            uuid: "u".into(),
        };
        assert_eq!(state(true, "Synced", "Primary").problem(), None);
        assert!(
            state(true, "Donor/Desynced", "Primary")
                .problem()
                .unwrap()
                .contains("Donor/Desynced, not Synced")
        );
        assert!(
            state(true, "Initialized", "non-Primary")
                .problem()
                .unwrap()
                .contains("outside the primary component (wsrep_cluster_status non-Primary")
        );
        assert!(
            state(false, "", "Disconnected")
                .problem()
                .unwrap()
                .contains("wsrep_on = OFF")
        );
        let rows = fields(&["state\t1\tSynced\tPrimary\tabc-1".to_owned()]);
        assert_eq!(
            NodeState::parse(&rows),
            Some(NodeState {
                uuid: "abc-1".into(),
                ..state(true, "Synced", "Primary")
            })
        );
    }

    #[test]
    fn a_causal_wait_that_ran_out_is_told_from_a_lost_session() {
        let ended = |stderr: &str, timed_out: bool| {
            anyhow::Error::new(Ended {
                host: "db2".into(),
                status: Some(1),
                stderr: stderr.into(),
                timed_out,
            })
        };
        assert!(timed_out(&ended(
            "ERROR 1205 (HY000) at line 3: Lock wait timeout exceeded; try restarting transaction",
            false
        )));
        assert!(!timed_out(&ended(
            "ERROR 1047 (08S01) at line 2: WSREP has not yet prepared node for application use",
            false
        )));
        // The client's own bound ran out: the node did not answer at all.
        assert!(!timed_out(&ended("", true)));
        assert_eq!(
            sum_of(&["chunk\t1000\t98765432109876543210".to_owned()]),
            Some(sum(1000, "98765432109876543210"))
        );
        assert_eq!(sum_of(&["other\t1".to_owned()]), None);
    }
}
