//! `verify` (SPEC.md): the application's tables on every node compared with the
//! primary's, chunk by chunk along each table's primary key, while the application keeps
//! writing. This core is the same for every engine: it asks the engine's [`Checker`] for
//! the tables, walks each one in chunks sized so that no chunk holds anything for long,
//! keeps every chunk's key range, shows progress, and turns what each node showed into
//! the report (report.rs). How a chunk is compared at one consistent point on both sides
//! is the engine's (src/engine/<name>/verify.rs).

pub mod report;
pub mod session;

use std::time::{Duration, Instant};

use crate::node::NodeName;
use crate::ui::{StepProgress, Ui};

/// One table of the application, as the engine found it on the primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The checker's own index for it.
    pub id: usize,
    /// How people name it: `app.items`; PostgreSQL adds the schema, `app.public.items`.
    pub name: String,
    /// The primary key's columns, in key order; empty when it has none.
    pub key: Vec<String>,
    /// Why it is compared whole rather than by key ranges, when it is.
    pub whole: Option<String>,
    /// Why it is not compared at all, when it is not (a PostgreSQL unlogged table).
    pub skipped: Option<String>,
    /// The engine's estimate of its rows on the primary.
    pub estimated_rows: u64,
    /// Per other node, in the order the engine was given them: how the table itself
    /// differs there (missing, other columns), when it does. Such a table is not compared
    /// chunk by chunk on any node.
    pub differs_on: Vec<Option<String>>,
}

/// A primary-key value: where one chunk ends and the next begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Each column's value as people read it.
    pub shown: Vec<String>,
    /// The engine's exact form of each value, to continue from; opaque here.
    pub exact: Vec<String>,
}

/// What one chunk showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The last key it holds; None when it reached the table's end.
    pub upper: Option<Key>,
    /// How many rows it held on the primary.
    pub rows: u64,
    /// How long reading its rows took, where the engine tells that from waits that do not
    /// grow with a chunk (a standby catching up); None: the whole chunk's time.
    pub work: Option<std::time::Duration>,
    /// What each other node showed for it, in order.
    pub verdicts: Vec<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Same,
    Differs,
    /// Known only at the end ([`Checker::finish`]): the checksums travel through
    /// replication.
    Later,
    /// This chunk could not be compared on that node, and why; the node stays in the run.
    NotCompared(String),
    /// The node cannot be compared any more (its replication stopped, it fell too far
    /// behind), and why. The checker asks it nothing more.
    Lost(String),
}

/// What [`Checker::finish`] found on one node; or why that node could not be compared
/// after all.
pub type Finding = Result<Found, String>;

/// Chunks of one node by (table id, chunk number): `differing` and `not_compared` among
/// those whose verdict was [`Verdict::Later`]; `rechecked` among any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The chunks that differ.
    pub differing: Vec<(usize, u64)>,
    /// The chunks compared a second time (or more) because the first comparison could not
    /// tell a difference from a write in flight (two writable nodes, Galera); each also
    /// differs, is not compared (here or by the chunk's own verdict), or neither (the same
    /// after all).
    pub rechecked: Vec<(usize, u64)>,
    /// The chunks that could not be compared after all, and why.
    pub not_compared: Vec<(usize, u64, String)>,
}

/// An engine's way of comparing chunks, over sessions it holds open on the primary and
/// the other nodes.
pub trait Checker {
    /// Every table of the application on the primary, in the order to compare them,
    /// with how each differs in itself on the other nodes.
    fn tables(&mut self) -> anyhow::Result<Vec<Table>>;

    /// Compares the chunk of `table` that starts after `after` (None: at the table's
    /// start) and holds at most `rows` rows (None: the whole table). `number` counts the
    /// table's chunks from 0. An error leaves the rest of this table not compared.
    fn chunk(
        &mut self,
        table: &Table,
        number: u64,
        after: Option<&Key>,
        rows: Option<u64>,
    ) -> anyhow::Result<Chunk>;

    /// After the last chunk: per other node, in order, the chunks that differ there among
    /// those whose verdict was [`Verdict::Later`].
    fn finish(&mut self) -> anyhow::Result<Vec<Finding>>;
}

/// Chunk sizes: the first chunk of a table is [`Sizer::FIRST`] rows; each next one is
/// sized by how long the last took, so that a chunk takes about [`Sizer::TARGET`].
#[derive(Debug, Clone, Copy)]
pub struct Sizer {
    rows: u64,
}

impl Sizer {
    pub const FIRST: u64 = 1000;
    pub const MIN: u64 = 100;
    pub const MAX: u64 = 10_000;
    pub const TARGET: Duration = Duration::from_millis(250);

    pub fn new() -> Self {
        Sizer { rows: Self::FIRST }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// A chunk of `rows` rows took `took`: the next one aims at the target, changing by
    /// at most half or double at a time.
    pub fn took(&mut self, rows: u64, took: Duration) {
        if rows < self.rows / 2 {
            // The table's last, short chunk says nothing of the rate.
            return;
        }
        let rate = rows as f64 / took.as_secs_f64().max(0.001);
        let want = (rate * Self::TARGET.as_secs_f64()) as u64;
        self.rows = want
            .clamp(self.rows / 2, self.rows.saturating_mul(2))
            .clamp(Self::MIN, Self::MAX);
    }
}

impl Default for Sizer {
    fn default() -> Self {
        Self::new()
    }
}

/// What the walk through every table found, for the report.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    pub tables: Vec<Table>,
    /// Per table (by position in `tables`): every chunk's range, (after, upper].
    pub ranges: Vec<Vec<(Option<Key>, Option<Key>)>>,
    /// Per other node, per table: what it showed.
    pub nodes: Vec<Vec<TableSeen>>,
    /// Per other node: why it could not be compared (from some point on), if so.
    pub lost: Vec<Option<String>>,
    /// Rows compared on the primary.
    pub rows: u64,
    pub chunks: u64,
}

/// One table on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSeen {
    pub compared: u64,
    /// Of those, how many wait for [`Checker::finish`].
    pub later: u64,
    /// Chunk numbers that differ.
    pub differing: Vec<u64>,
    /// Chunk numbers compared again before a verdict (see [`Found::rechecked`]).
    pub rechecked: Vec<u64>,
    /// Chunk numbers not compared, and why.
    pub not_compared: Vec<(u64, String)>,
    /// The rest of the table from this chunk on was not compared, and why (an error, the
    /// node lost).
    pub rest_not_compared: Option<(u64, String)>,
    /// How the table itself differs there.
    pub differs_whole: Option<String>,
    /// Why it was not compared there when it was not compared at all.
    pub not_compared_whole: Option<String>,
}

/// Walks every table through `checker`, comparing the primary with `others` (the names of
/// the nodes the checker compares, in its order), with progress.
pub fn walk(checker: &mut dyn Checker, others: &[NodeName], ui: &Ui) -> anyhow::Result<Walk> {
    let tables = checker.tables()?;
    let estimated: u64 = tables
        .iter()
        .filter(|t| t.skipped.is_none())
        .map(|t| t.estimated_rows)
        .sum();
    let step = ui.step(&format!(
        "comparing {} table{} (about {} rows) with {}",
        tables.len(),
        if tables.len() == 1 { "" } else { "s" },
        thousands(estimated),
        crate::topology::and_list(others)
    ));
    let mut walk = Walk {
        ranges: vec![Vec::new(); tables.len()],
        nodes: vec![vec![TableSeen::default(); tables.len()]; others.len()],
        lost: vec![None; others.len()],
        ..Walk::default()
    };
    let mut progress = Progress::new(&step, estimated, ui.live_progress());
    for (index, table) in tables.iter().enumerate() {
        if let Some(why) = &table.skipped {
            for node in &mut walk.nodes {
                node[index].not_compared_whole = Some(why.clone());
            }
            continue;
        }
        if table.differs_on.iter().any(Option::is_some) {
            let differing: Vec<NodeName> = others
                .iter()
                .zip(&table.differs_on)
                .filter(|(_, why)| why.is_some())
                .map(|(n, _)| n.clone())
                .collect();
            for (n, node) in walk.nodes.iter_mut().enumerate() {
                match &table.differs_on.get(n).cloned().flatten() {
                    Some(why) => node[index].differs_whole = Some(why.clone()),
                    None => {
                        node[index].not_compared_whole = Some(format!(
                            "not compared: the table itself differs on {}",
                            crate::topology::and_list(&differing)
                        ))
                    }
                }
            }
            continue;
        }
        walk_table(checker, table, index, &mut walk, &mut progress);
    }
    let findings = checker.finish()?;
    for (n, finding) in findings.into_iter().enumerate() {
        match finding {
            Ok(found) => {
                for (id, number) in found.differing {
                    if let Some(index) = walk.tables_index(&tables, id) {
                        let seen = &mut walk.nodes[n][index];
                        if !seen.differing.contains(&number) {
                            seen.differing.push(number);
                            seen.differing.sort_unstable();
                        }
                    }
                }
                for (id, number) in found.rechecked {
                    if let Some(index) = walk.tables_index(&tables, id) {
                        let seen = &mut walk.nodes[n][index];
                        seen.rechecked.push(number);
                        seen.rechecked.sort_unstable();
                    }
                }
                for (id, number, why) in found.not_compared {
                    if let Some(index) = walk.tables_index(&tables, id) {
                        let seen = &mut walk.nodes[n][index];
                        seen.compared = seen.compared.saturating_sub(1);
                        seen.not_compared.push((number, why));
                        seen.not_compared.sort_by_key(|(c, _)| *c);
                    }
                }
            }
            Err(why) => {
                // What waited for the end is not known after all.
                for seen in &mut walk.nodes[n] {
                    if seen.later > 0 {
                        seen.compared -= seen.later;
                        seen.later = 0;
                        seen.not_compared_whole = Some(why.clone());
                    }
                }
                if walk.lost[n].is_none() {
                    walk.lost[n] = Some(why);
                }
            }
        }
    }
    step.finish(&format!(
        "{} rows in {} chunks of {} tables",
        thousands(walk.rows),
        thousands(walk.chunks),
        tables.len()
    ));
    walk.tables = tables;
    Ok(walk)
}

impl Walk {
    fn tables_index(&self, tables: &[Table], id: usize) -> Option<usize> {
        tables.iter().position(|t| t.id == id)
    }
}

fn walk_table(
    checker: &mut dyn Checker,
    table: &Table,
    index: usize,
    walk: &mut Walk,
    progress: &mut Progress<'_>,
) {
    let mut sizer = Sizer::new();
    let mut after: Option<Key> = None;
    let whole = table.key.is_empty() || table.whole.is_some();
    for number in 0u64.. {
        let rows = if whole { None } else { Some(sizer.rows()) };
        let started = Instant::now();
        let chunk = match checker.chunk(table, number, after.as_ref(), rows) {
            Ok(chunk) => chunk,
            Err(err) => {
                let why = format!("{err:#}");
                walk.ranges[index].push((after.clone(), None));
                for node in &mut walk.nodes {
                    node[index].rest_not_compared = Some((number, why.clone()));
                }
                return;
            }
        };
        sizer.took(chunk.rows, chunk.work.unwrap_or_else(|| started.elapsed()));
        walk.ranges[index].push((after.clone(), chunk.upper.clone()));
        walk.rows += chunk.rows;
        walk.chunks += 1;
        for (n, verdict) in chunk.verdicts.iter().enumerate() {
            let seen = &mut walk.nodes[n][index];
            match verdict {
                Verdict::Same => seen.compared += 1,
                Verdict::Later => {
                    seen.compared += 1;
                    seen.later += 1;
                }
                Verdict::Differs => {
                    seen.compared += 1;
                    seen.differing.push(number);
                }
                Verdict::NotCompared(why) => seen.not_compared.push((number, why.clone())),
                Verdict::Lost(why) => {
                    if walk.lost[n].is_none() {
                        walk.lost[n] = Some(why.clone());
                    }
                    if seen.rest_not_compared.is_none() {
                        seen.rest_not_compared = Some((number, why.clone()));
                    }
                }
            }
        }
        progress.add(&table.name, chunk.rows);
        match chunk.upper {
            Some(upper) if !whole => after = Some(upper),
            _ => return,
        }
    }
}

/// Rows done of the estimate: on the spinner on a terminal, a line every ten seconds
/// otherwise.
struct Progress<'a> {
    step: &'a StepProgress,
    estimated: u64,
    done: u64,
    live: bool,
    last_line: Instant,
}

impl<'a> Progress<'a> {
    fn new(step: &'a StepProgress, estimated: u64, live: bool) -> Self {
        Progress {
            step,
            estimated,
            done: 0,
            live,
            last_line: Instant::now(),
        }
    }

    fn add(&mut self, table: &str, rows: u64) {
        self.done += rows;
        // The estimate is the engine's statistics: never more than 99% before the end.
        let percent = (self.done * 100 / self.estimated.max(1)).min(99);
        let text = format!(
            "{table}: {} of about {} rows ({percent}%)",
            thousands(self.done),
            thousands(self.estimated)
        );
        if self.live {
            self.step.status(&text);
        } else if self.last_line.elapsed() >= Duration::from_secs(10) {
            self.last_line = Instant::now();
            self.step.line(&text);
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_grow_and_shrink_toward_the_target_within_bounds() {
        let mut sizer = Sizer::new();
        assert_eq!(sizer.rows(), 1000);
        // Fast: doubles at most.
        sizer.took(1000, Duration::from_millis(10));
        assert_eq!(sizer.rows(), 2000);
        for _ in 0..10 {
            sizer.took(sizer.rows(), Duration::from_millis(1));
        }
        assert_eq!(sizer.rows(), Sizer::MAX);
        // Slow: halves at most, never under the minimum.
        sizer.took(Sizer::MAX, Duration::from_secs(10));
        assert_eq!(sizer.rows(), Sizer::MAX / 2);
        for _ in 0..20 {
            sizer.took(sizer.rows(), Duration::from_secs(10));
        }
        assert_eq!(sizer.rows(), Sizer::MIN);
        // A short last chunk changes nothing.
        let before = sizer.rows();
        sizer.took(1, Duration::from_secs(10));
        assert_eq!(sizer.rows(), before);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    /// A checker over two in-memory tables: the second node differs in one row of `a`,
    /// and `b` has no key.
    struct Fake {
        a: Vec<(u64, u64)>,
        a_other: Vec<(u64, u64)>,
    }

    impl Checker for Fake {
        fn tables(&mut self) -> anyhow::Result<Vec<Table>> {
            Ok(vec![
                Table {
                    id: 7,
                    name: "app.a".into(),
                    key: vec!["id".into()],
                    whole: None,
                    skipped: None,
                    estimated_rows: 2500,
                    differs_on: vec![None],
                },
                Table {
                    id: 8,
                    name: "app.b".into(),
                    key: vec![],
                    whole: Some("no primary key".into()),
                    skipped: None,
                    estimated_rows: 3,
                    differs_on: vec![None],
                },
                Table {
                    id: 9,
                    name: "app.c".into(),
                    key: vec!["id".into()],
                    whole: None,
                    skipped: None,
                    estimated_rows: 3,
                    differs_on: vec![Some("missing".into())],
                },
            ])
        }

        fn chunk(
            &mut self,
            table: &Table,
            _number: u64,
            after: Option<&Key>,
            rows: Option<u64>,
        ) -> anyhow::Result<Chunk> {
            if table.id == 8 {
                assert_eq!(rows, None);
                return Ok(Chunk {
                    upper: None,
                    rows: 3,
                    work: None,
                    verdicts: vec![Verdict::Same],
                });
            }
            let from: u64 = after.map_or(0, |k| k.exact[0].parse().unwrap());
            let rows = rows.unwrap() as usize;
            let mine: Vec<_> = self
                .a
                .iter()
                .filter(|(k, _)| *k > from)
                .take(rows)
                .collect();
            let last = mine.last().map(|(k, _)| *k).unwrap_or(from);
            let theirs: Vec<_> = self
                .a_other
                .iter()
                .filter(|(k, _)| *k > from && *k <= last)
                .collect();
            let upper = (mine.len() == rows).then(|| Key {
                shown: vec![last.to_string()],
                exact: vec![last.to_string()],
            });
            Ok(Chunk {
                upper,
                rows: mine.len() as u64,
                work: None,
                verdicts: vec![if mine == theirs {
                    Verdict::Same
                } else {
                    Verdict::Differs
                }],
            })
        }

        fn finish(&mut self) -> anyhow::Result<Vec<Finding>> {
            Ok(vec![Ok(Found::default())])
        }
    }

    #[test]
    fn every_chunk_is_walked_and_differences_land_in_their_range() {
        let a: Vec<(u64, u64)> = (1..=2500).map(|k| (k, k * 7)).collect();
        let mut a_other = a.clone();
        a_other[1499].1 = 0; // key 1500
        let mut fake = Fake { a, a_other };
        let walk = walk(&mut fake, &[NodeName::new("secondary")], &Ui::new(true, 0)).unwrap();
        assert_eq!(walk.rows, 2503);
        let seen = &walk.nodes[0];
        assert_eq!(seen[0].differing.len(), 1);
        let number = seen[0].differing[0] as usize;
        let (after, upper) = &walk.ranges[0][number];
        let lower: u64 = after.as_ref().map_or(0, |k| k.exact[0].parse().unwrap());
        let upper: u64 = upper
            .as_ref()
            .map_or(u64::MAX, |k| k.exact[0].parse().unwrap());
        assert!(lower < 1500 && 1500 <= upper, "{lower}..{upper}");
        assert_eq!(seen[1].compared, 1);
        assert!(seen[1].differing.is_empty());
        assert_eq!(seen[2].differs_whole.as_deref(), Some("missing"));
        // The ranges tile the key space: each starts where the last ended.
        for pair in walk.ranges[0].windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
        assert_eq!(walk.ranges[0].last().unwrap().1, None);
    }
}
