//! A replication conflict between two writers, named for the operator: whose transaction
//! could not be applied where, on which table and row, and the two ways out: re-seed the
//! node from the other, or skip that one transaction there and repair the row by hand.

use crate::engine::mariadb::link;
use crate::engine::mariadb::observe;
use crate::engine::mariadb::recover::parse_gtids;
use crate::topology::Observed;

/// What a row event's error says (MariaDB: `Could not execute Write_rows_v1 event on table
/// app.t; Duplicate entry '5' for key 'PRIMARY', Error_code: 1062; …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub code: u32,
    /// `an insert`, `an update`, `a delete`, or `a transaction`.
    pub change: &'static str,
    pub table: Option<String>,
    /// The server's words on the row: `Duplicate entry '5' for key 'PRIMARY'`.
    pub detail: String,
}

/// The error codes of a row that differs between the nodes.
const CONFLICTS: [u32; 5] = [1062, 1032, 1452, 1451, 1022];

impl Conflict {
    pub fn parse(error: &str) -> Option<Conflict> {
        let code: u32 = error
            .split("Error_code: ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())?;
        if !CONFLICTS.contains(&code) {
            return None;
        }
        let change = if error.contains("Write_rows") {
            "an insert"
        } else if error.contains("Update_rows") {
            "an update"
        } else if error.contains("Delete_rows") {
            "a delete"
        } else {
            "a transaction"
        };
        let table = error
            .split(" on table ")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .map(|t| t.trim().to_owned());
        let detail = error
            .split("; ")
            .nth(1)
            .map(|d| {
                d.split(", Error_code")
                    .next()
                    .unwrap_or(d)
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        Some(Conflict {
            code,
            change,
            table,
            detail,
        })
    }

    /// The row, in the operator's words.
    pub fn row(&self) -> String {
        match self.code {
            1062 | 1022 => format!(
                "{}: the row exists on this node already, with the same key",
                self.detail
            ),
            1032 => "the row it changes is not on this node".to_owned(),
            1452 => format!("{}: the row it refers to is not on this node", self.detail),
            1451 => format!("{}: rows on this node still refer to it", self.detail),
            _ => self.detail.clone(),
        }
    }
}

/// The transaction a stopped link is stuck at: the first in the source's stream after what
/// the node applied. Each domain has one writer whose numbers follow each other, so it is
/// the next number in the domain where the node received more of the other's than it
/// applied.
pub fn stuck_at(node: &Observed) -> Option<(u32, u32, u64)> {
    let state = observe::state(node)?;
    let replica = state.replica.as_ref()?;
    let applied = parse_gtids(&state.server.gtid_slave_pos);
    let own = state.server.server_id;
    // The node's own transactions come back too, and are skipped: not what it is stuck at.
    parse_gtids(&replica.gtid_io_pos)
        .into_iter()
        .filter(|(_, server, _)| *server != own)
        .find_map(|(domain, server, received)| {
            let have = applied
                .iter()
                .find(|(d, _, _)| *d == domain)
                .map_or(0, |(_, _, seq)| *seq);
            (received > have).then_some((domain, server, have + 1))
        })
}

/// What to do about `error` on `node`'s link from the other node: for a conflict, which
/// transaction on which row, and the two ways out; else what usually causes it.
pub fn hint(node: &Observed, error: &str) -> String {
    let name = &node.name;
    let from = node
        .upstream()
        .and_then(|up| up.node.as_ref())
        .map_or_else(|| "the other node".to_owned(), |n| n.to_string());
    let Some(conflict) = Conflict::parse(error) else {
        return other_hint(name.as_str(), &from, error);
    };
    let stuck = observe::stuck(node);
    let gtid = stuck
        .and_then(|s| s.gtid.as_deref())
        .and_then(|g| parse_gtids(g).into_iter().next())
        .or_else(|| stuck_at(node));
    let what = match &gtid {
        Some((d, s, n)) => format!("{from}'s transaction {d}-{s}-{n}"),
        None => format!("a transaction of {from}'s"),
    };
    let table = stuck
        .and_then(|s| s.table.clone())
        .or_else(|| conflict.table.clone());
    let mut on = table.map_or(String::new(), |t| format!(" of {t}"));
    if let Some(key) = stuck.and_then(|s| s.key.as_deref()) {
        on.push_str(&format!(", the row {key}"));
    }
    // The applier stands at the stuck transaction, so skipping one event group skips
    // exactly it (MariaDB allows the counter with GTID), whatever the node writes meanwhile:
    // a position printed here would be stale by the time it is typed.
    let skip =
        format!("on {name}: STOP SLAVE; SET GLOBAL sql_slave_skip_counter = 1; START SLAVE;");
    format!(
        "replication conflict (error {code}): {what} ({change}{on}) cannot be applied on {name}: {row}. \
         The two nodes hold different data for that row: the application wrote it on both, or it was changed \
         behind replication's back. Either re-seed {name} from {from}: ha-setup recover rebuild {name} \
         ({name}'s data is replaced by {from}'s; its old data, with what only {name} wrote, is moved aside), \
         or, with care, skip that one transaction {skip} then make the row the same on both nodes by hand \
         (SET SESSION sql_log_bin = 0 on the node you correct).",
        code = conflict.code,
        change = conflict.change,
        row = conflict.row(),
    )
}

/// A link error that is no conflict, in the words of two writers.
fn other_hint(name: &str, from: &str, error: &str) -> String {
    if error.contains("Access denied") {
        format!(
            "the replication user's password on {from} is not the one {name} logs in with: run `ha-setup init` again, \
             which sets both from the kept password"
        )
    } else if error.contains("connecting to master") || error.contains("Can't connect") {
        format!(
            "{name} cannot reach {from}'s database: check that it runs (the link reconnects on its own, every 10 s, once it does), \
             listens on its replication address (ss -ltn there), and that no firewall blocks the port"
        )
    } else {
        link::hint(error).to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_key_is_named() {
        let error = "Could not execute Write_rows_v1 event on table app.t; Duplicate entry '100' for key 'PRIMARY', \
                     Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log mariadb-bin.000001, end_log_pos 1739";
        let conflict = Conflict::parse(error).unwrap();
        assert_eq!(conflict.code, 1062);
        assert_eq!(conflict.change, "an insert");
        assert_eq!(conflict.table.as_deref(), Some("app.t"));
        assert_eq!(conflict.detail, "Duplicate entry '100' for key 'PRIMARY'");
        let missing = Conflict::parse(
            "Could not execute Update_rows_v1 event on table app.t; Can't find record in 't', Error_code: 1032; \
             handler error HA_ERR_KEY_NOT_FOUND; the event's master log mariadb-bin.000001, end_log_pos 2020",
        )
        .unwrap();
        assert_eq!((missing.code, missing.change), (1032, "an update"));
        assert!(Conflict::parse("error connecting to master 'ha_repl@x:3306'").is_none());
    }
}
