//! What `verify` found, as people read it and as `--format json` gives it (README.md), and
//! the exit code it calls for: 0 every node the same, 4 a difference found, 1 a node or a
//! part of a table that could not be compared (and no difference).

use jiff::Timestamp;
use serde::Serialize;

use super::{Walk, thousands};
use crate::error::ExitCode;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub engine: String,
    pub topology: String,
    /// The node every other node is compared with.
    pub primary: String,
    pub checked_at: Timestamp,
    pub seconds: f64,
    pub result: Outcome,
    /// Tables of the application on the primary.
    pub tables: usize,
    /// Rows compared on the primary, in how many chunks.
    pub rows: u64,
    pub chunks: u64,
    /// Every other node of the config.
    pub nodes: Vec<NodeReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every node holds what the primary holds.
    Identical,
    /// At least one difference was found.
    Differs,
    /// No difference found, but something could not be compared.
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub host: String,
    pub result: NodeResult,
    /// Why the node (or, from some point on, the rest of it) could not be compared.
    pub problem: Option<String>,
    pub tables: Vec<TableReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeResult {
    Same,
    Differs,
    NotCompared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableResult {
    Same,
    Differs,
    NotCompared,
    /// Not comparable by its nature (a PostgreSQL unlogged table); says why.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableReport {
    pub table: String,
    pub result: TableResult,
    /// The primary key's columns; the ranges below are in their terms.
    pub key: Vec<String>,
    /// Compared as one piece rather than by key ranges (no primary key), said in `note`.
    pub whole_table: bool,
    pub note: Option<String>,
    /// Chunks compared on this node.
    pub chunks: u64,
    pub differing: Vec<Range>,
    pub not_compared: Vec<Range>,
    /// Chunks compared again before a verdict: writes in flight could have made them
    /// differ (two writable nodes: the other node's own writes had not all reached the
    /// primary; Galera: a write committed between two nodes' reads).
    pub rechecked: Vec<Range>,
}

/// A key range: the rows after `lower` up to and including `upper`, each a value per key
/// column; null at an end means the table's start or end (both null: the whole table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Range {
    pub lower: Option<Vec<String>>,
    pub upper: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// A node of the config other than the primary.
#[derive(Debug, Clone)]
pub struct Other {
    pub name: String,
    pub host: String,
    /// Why it could not be compared at all, when it could not; otherwise its place in the
    /// walk's nodes.
    pub seen: Result<usize, String>,
}

pub struct Header {
    pub engine: String,
    pub topology: String,
    pub primary: String,
    pub seconds: f64,
}

pub fn build(header: Header, others: &[Other], walk: Option<&Walk>) -> Report {
    let empty = Walk::default();
    let walk = walk.unwrap_or(&empty);
    let nodes: Vec<NodeReport> = others
        .iter()
        .map(|other| match &other.seen {
            Err(why) => NodeReport {
                name: other.name.clone(),
                host: other.host.clone(),
                result: NodeResult::NotCompared,
                problem: Some(why.clone()),
                tables: Vec::new(),
            },
            Ok(n) => node_report(other, walk, *n),
        })
        .collect();
    let result = if nodes.iter().any(|n| n.result == NodeResult::Differs) {
        Outcome::Differs
    } else if nodes.iter().any(|n| n.result == NodeResult::NotCompared) {
        Outcome::Incomplete
    } else {
        Outcome::Identical
    };
    Report {
        engine: header.engine,
        topology: header.topology,
        primary: header.primary,
        checked_at: Timestamp::now(),
        seconds: (header.seconds * 10.0).round() / 10.0,
        result,
        tables: walk.tables.len(),
        rows: walk.rows,
        chunks: walk.chunks,
        nodes,
    }
}

fn node_report(other: &Other, walk: &Walk, n: usize) -> NodeReport {
    let mut tables = Vec::new();
    for (index, table) in walk.tables.iter().enumerate() {
        let seen = &walk.nodes[n][index];
        let ranges = &walk.ranges[index];
        let range = |number: u64, why: Option<String>| {
            let (after, upper) = ranges.get(number as usize).cloned().unwrap_or((None, None));
            Range {
                lower: after.map(|k| k.shown),
                upper: upper.map(|k| k.shown),
                why,
            }
        };
        let differing: Vec<Range> = seen.differing.iter().map(|c| range(*c, None)).collect();
        let rechecked: Vec<Range> = seen.rechecked.iter().map(|c| range(*c, None)).collect();
        let mut not_compared: Vec<Range> = seen
            .not_compared
            .iter()
            .map(|(c, why)| range(*c, Some(why.clone())))
            .collect();
        if let Some((from, why)) = &seen.rest_not_compared {
            let lower = ranges
                .get(*from as usize)
                .and_then(|(after, _)| after.clone());
            not_compared.push(Range {
                lower: lower.map(|k| k.shown),
                upper: None,
                why: Some(why.clone()),
            });
        }
        let whole_table = table.key.is_empty() || table.whole.is_some();
        let (result, note) = if let Some(why) = &table.skipped {
            (TableResult::Skipped, Some(why.clone()))
        } else if let Some(why) = &seen.differs_whole {
            (TableResult::Differs, Some(why.clone()))
        } else if let Some(why) = &seen.not_compared_whole {
            (TableResult::NotCompared, Some(why.clone()))
        } else if !differing.is_empty() {
            (TableResult::Differs, table.whole.clone())
        } else if !not_compared.is_empty() {
            (TableResult::NotCompared, table.whole.clone())
        } else {
            (TableResult::Same, table.whole.clone())
        };
        tables.push(TableReport {
            table: table.name.clone(),
            result,
            key: table.key.clone(),
            whole_table,
            note,
            chunks: seen.compared,
            differing,
            not_compared,
            rechecked,
        });
    }
    let result = if tables.iter().any(|t| t.result == TableResult::Differs) {
        NodeResult::Differs
    } else if walk.lost[n].is_some() || tables.iter().any(|t| t.result == TableResult::NotCompared)
    {
        NodeResult::NotCompared
    } else {
        NodeResult::Same
    };
    NodeReport {
        name: other.name.clone(),
        host: other.host.clone(),
        result,
        problem: walk.lost[n].clone(),
        tables,
    }
}

impl Report {
    pub fn exit_code(&self) -> ExitCode {
        match self.result {
            Outcome::Identical => ExitCode::Ok,
            Outcome::Differs => ExitCode::Degraded,
            Outcome::Incomplete => ExitCode::Failed,
        }
    }

    /// For people: every node's verdict, and under it every table that is not simply the
    /// same, with its differing key ranges.
    pub fn text(&self) -> String {
        let mut out = if self
            .nodes
            .iter()
            .all(|n| n.tables.is_empty() && n.result == NodeResult::NotCompared)
        {
            format!(
                "compared with {}: no other node could be compared, {:.1} s\n",
                self.primary, self.seconds
            )
        } else {
            format!(
                "compared with {}: {} table{}, {} rows in {} chunks, {:.1} s\n",
                self.primary,
                self.tables,
                if self.tables == 1 { "" } else { "s" },
                thousands(self.rows),
                thousands(self.chunks),
                self.seconds
            )
        };
        for node in &self.nodes {
            out.push('\n');
            let verdict = match node.result {
                NodeResult::Same => "the same".to_owned(),
                NodeResult::Differs => {
                    let n = node
                        .tables
                        .iter()
                        .filter(|t| t.result == TableResult::Differs)
                        .count();
                    format!("DIFFERS in {n} table{}", if n == 1 { "" } else { "s" })
                }
                NodeResult::NotCompared => "NOT COMPARED".to_owned(),
            };
            out.push_str(&format!("{} ({}): {verdict}\n", node.name, node.host));
            if let Some(problem) = &node.problem {
                out.push_str(&format!("  {problem}\n"));
            }
            let mut same = 0;
            for table in &node.tables {
                if table.result == TableResult::Same
                    && !table.whole_table
                    && table.rechecked.is_empty()
                {
                    same += 1;
                    continue;
                }
                out.push_str(&table_text(table));
            }
            if same > 0 {
                out.push_str(&format!(
                    "  {same} {}table{} the same\n",
                    if same == node.tables.len() {
                        ""
                    } else {
                        "other "
                    },
                    if same == 1 { "" } else { "s" }
                ));
            }
        }
        out.push('\n');
        let primary = &self.primary;
        out.push_str(&match self.result {
            Outcome::Identical => format!("Every node holds the same data as {primary}.\n"),
            Outcome::Differs => format!(
                "Differences found: the ranges above hold rows that differ from {primary}'s. \
                 A node whose data cannot be trusted is re-seeded with `ha-setup recover rebuild NODE`.\n"
            ),
            Outcome::Incomplete => {
                "No difference found, but not everything could be compared (see above); run verify again once that is fixed.\n"
                    .to_owned()
            }
        });
        out
    }
}

fn table_text(table: &TableReport) -> String {
    let whole = table.note.clone().filter(|_| table.whole_table);
    let how = match &whole {
        Some(why) => format!(" (compared whole: {why})"),
        None => String::new(),
    };
    let mut out = match table.result {
        TableResult::Same => format!("  {}: the same{how}\n", table.table),
        TableResult::Skipped => format!(
            "  {}: skipped: {}\n",
            table.table,
            table.note.as_deref().unwrap_or_default()
        ),
        TableResult::Differs if table.differing.is_empty() => format!(
            "  {}: DIFFERS: {}\n",
            table.table,
            table.note.as_deref().unwrap_or_default()
        ),
        TableResult::Differs if table.whole_table => {
            format!("  {}: DIFFERS{how}\n", table.table)
        }
        TableResult::Differs => format!(
            "  {}: DIFFERS in {} of {} chunks:\n",
            table.table,
            table.differing.len(),
            table.chunks
        ),
        TableResult::NotCompared if table.not_compared.is_empty() => format!(
            "  {}: not compared: {}\n",
            table.table,
            table.note.as_deref().unwrap_or_default()
        ),
        TableResult::NotCompared => format!("  {}: not all compared{how}:\n", table.table),
    };
    if !table.whole_table {
        for range in &table.differing {
            out.push_str(&format!("    {}\n", range_text(&table.key, range)));
        }
    }
    for range in &table.not_compared {
        out.push_str(&format!(
            "    not compared: {}: {}\n",
            range_text(&table.key, range),
            range.why.as_deref().unwrap_or_default()
        ));
    }
    if !table.rechecked.is_empty() {
        out.push_str(&format!(
            "    {} chunk{} compared again, as writes in flight made {} differ at first:\n",
            table.rechecked.len(),
            if table.rechecked.len() == 1 { "" } else { "s" },
            if table.rechecked.len() == 1 {
                "it"
            } else {
                "them"
            }
        ));
        for range in &table.rechecked {
            out.push_str(&format!("      {}\n", range_text(&table.key, range)));
        }
    }
    out
}

/// `id > 1000 and id <= 2000`; a composite key as a row, `(a, b) > ('x', 3)`.
pub fn range_text(key: &[String], range: &Range) -> String {
    let columns = match key {
        [one] => one.clone(),
        _ => format!("({})", key.join(", ")),
    };
    let values = |values: &[String]| match values {
        [one] => shown(one),
        _ => format!(
            "({})",
            values
                .iter()
                .map(|v| shown(v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    match (&range.lower, &range.upper) {
        (None, None) => "the whole table".into(),
        (Some(lower), None) => format!("{columns} > {}", values(lower)),
        (None, Some(upper)) => format!("{columns} <= {}", values(upper)),
        (Some(lower), Some(upper)) => format!(
            "{columns} > {} and {columns} <= {}",
            values(lower),
            values(upper)
        ),
    }
}

/// A value as text: a number as is, anything else quoted.
fn shown(value: &str) -> String {
    let number = !value.is_empty()
        && value.parse::<f64>().is_ok()
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'));
    if number {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(lower: Option<&[&str]>, upper: Option<&[&str]>) -> Range {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Range {
            lower: lower.map(own),
            upper: upper.map(own),
            why: None,
        }
    }

    #[test]
    fn ranges_read_as_conditions() {
        let id = ["id".to_string()];
        assert_eq!(
            range_text(&id, &range(Some(&["1000"]), Some(&["2000"]))),
            "id > 1000 and id <= 2000"
        );
        assert_eq!(range_text(&id, &range(None, Some(&["7"]))), "id <= 7");
        assert_eq!(range_text(&id, &range(Some(&["7"]), None)), "id > 7");
        assert_eq!(range_text(&id, &range(None, None)), "the whole table");
        let pair = ["a".to_string(), "b".to_string()];
        assert_eq!(
            range_text(&pair, &range(Some(&["it's", "3"]), Some(&["z", "-1.5"]))),
            "(a, b) > ('it''s', 3) and (a, b) <= ('z', -1.5)"
        );
    }
}
