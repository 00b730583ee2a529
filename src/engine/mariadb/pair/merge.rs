//! check-merge (rejoin): whether the two nodes' histories can simply be exchanged. Each
//! node's GTID domain is written by that node alone, so each node must hold at least as
//! much of its own domain as the other holds of it. A node that holds less of its own
//! domain than the other lost writes of its own (restored from an older copy, say): its
//! next writes would take numbers the other has applied already, and the other would skip
//! them as duplicates. That, a link stopped on a conflict, or a link whose source lost the
//! binary logs it needs, is refused (exit 3) with `rebuild` named; nothing is discarded.

use std::collections::BTreeMap;

use super::conflict;
use crate::engine::mariadb::facts::NodeState;
use crate::engine::mariadb::observe;
use crate::engine::mariadb::recover::parse_gtids;
use crate::error::Exit;
use crate::node::NodeName;
use crate::plan::{Ctx, Step, Verdict};
use crate::topology::Observed;

/// Per GTID domain, the last transaction a node holds (in its binary log, applied, or
/// received and waiting in its relay log): (server_id, sequence number). The binary log
/// counts whoever wrote it (gtid_current_pos counts only the node's own server_id there).
pub fn history(state: &NodeState) -> BTreeMap<u32, (u32, u64)> {
    let mut have: BTreeMap<u32, (u32, u64)> = BTreeMap::new();
    let received = state
        .replica
        .as_ref()
        .map_or("", |r| r.gtid_io_pos.as_str());
    let server = &state.server;
    for list in [
        server.gtid_binlog_pos.as_str(),
        server.gtid_current_pos.as_str(),
        received,
    ] {
        for (domain, server, seq) in parse_gtids(list) {
            let entry = have.entry(domain).or_insert((server, 0));
            if seq >= entry.1 {
                *entry = (server, seq);
            }
        }
    }
    have
}

/// One node as the merge check reads it.
pub struct Side<'a> {
    pub name: &'a NodeName,
    pub domain: u32,
    pub server_id: u32,
    pub history: BTreeMap<u32, (u32, u64)>,
}

impl<'a> Side<'a> {
    pub fn new(name: &'a NodeName, state: &NodeState) -> Side<'a> {
        Side {
            name,
            domain: state.server.gtid_domain_id,
            server_id: state.server.server_id,
            history: history(state),
        }
    }
}

/// What keeps the two histories from merging, each with what to do.
pub fn problems(a: &Side<'_>, b: &Side<'_>) -> Vec<String> {
    let mut found = Vec::new();
    if a.domain == b.domain {
        found.push(format!(
            "{} and {} both write GTID domain {}: they were not set up as two writers (run `ha-setup init`)",
            a.name, b.name, a.domain
        ));
        return found;
    }
    for (own, other) in [(a, b), (b, a)] {
        let mine = own.history.get(&own.domain).copied();
        let theirs = other.history.get(&own.domain).copied();
        for (holder, gtid) in [(own, mine), (other, theirs)] {
            if let Some((server, seq)) = gtid
                && server != own.server_id
            {
                found.push(format!(
                    "{} holds {}-{server}-{seq} in {}'s GTID domain {}, written by server_id {server}, not by {} \
                     (server_id {}): another server wrote into its domain",
                    holder.name, own.domain, own.name, own.domain, own.name, own.server_id
                ));
            }
        }
        let have = mine.map_or(0, |(_, seq)| seq);
        if let Some((server, seq)) = theirs
            && seq > have
        {
            let range = if seq == have + 1 {
                format!("{}-{server}-{seq}", own.domain)
            } else {
                format!(
                    "{d}-{server}-{} … {d}-{server}-{seq} ({} transactions)",
                    have + 1,
                    seq - have,
                    d = own.domain
                )
            };
            found.push(format!(
                "{other} holds transactions of {own}'s own GTID domain that {own} lacks: {range}. \
                 {own} lost writes of its own (was its data restored from an older copy?); its next writes would \
                 take those numbers again and {other} would skip them as duplicates. Re-seed {own} from {other}: \
                 ha-setup recover rebuild {own}",
                other = other.name,
                own = own.name
            ));
        }
    }
    found
}

/// A link that cannot continue by being started again: stopped on a conflict, or its
/// source no longer has what it needs.
pub fn link_problem(node: &Observed) -> Option<String> {
    let state = observe::state(node)?;
    let replica = state.replica.as_ref()?;
    let from = node
        .upstream()
        .and_then(|up| up.node.as_ref())
        .map_or_else(|| replica.master_host.clone(), |n| n.to_string());
    if replica.sql_running != "Yes" && !replica.last_sql_error.is_empty() {
        return Some(format!(
            "{}'s link from {from} stopped on an error: {}\n    {}",
            node.name,
            replica.last_sql_error,
            conflict::hint(node, &replica.last_sql_error)
        ));
    }
    if replica.last_io_error.contains("1236") {
        return Some(format!(
            "{}'s link from {from} cannot continue: {}. {from} no longer holds what {} needs next \
             (its binary logs were purged, or the two histories diverged). Re-seed {}: ha-setup recover rebuild {}",
            node.name, replica.last_io_error, node.name, node.name, node.name
        ));
    }
    None
}

pub struct CheckMerge;

impl Step for CheckMerge {
    fn name(&self) -> &'static str {
        "check-merge"
    }

    fn purpose(&self) -> &'static str {
        "the two nodes' histories can be exchanged: each holds all of its own GTID domain, and no link stopped on a conflict"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let topology = cx.topology();
        let mut sides = Vec::new();
        for observed in &topology.nodes {
            match observe::state(observed) {
                Some(state) => sides.push((observed, state)),
                None => {
                    return Err(Exit::refused(format!(
                        "refusing to rejoin: {} {}. Start its MariaDB (it comes back read-only), then run rejoin again{}",
                        observed.name,
                        observed.describe(),
                        topology.table()
                    ))
                    .into());
                }
            }
        }
        let [(a, a_state), (b, b_state)] = &sides[..] else {
            anyhow::bail!("two writers take exactly two nodes");
        };
        let mut found = problems(&Side::new(&a.name, a_state), &Side::new(&b.name, b_state));
        found.extend([*a, *b].into_iter().filter_map(link_problem));
        if !found.is_empty() {
            return Err(Exit::refused(format!(
                "refusing to rejoin: the two nodes' histories cannot simply be exchanged:\n  - {}\n\
                 Nothing was changed. A re-seed replaces a node's data with the other's (its old data moved aside, not deleted).{}",
                found.join("\n  - "),
                topology.table()
            ))
            .into());
        }
        Ok(Verdict::Done(format!(
            "the histories merge: {} at {}, {} at {}",
            a.name, a_state.server.gtid_current_pos, b.name, b_state.server.gtid_current_pos
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side<'a>(name: &'a NodeName, domain: u32, pairs: &[(u32, u32, u64)]) -> Side<'a> {
        Side {
            name,
            domain,
            server_id: domain,
            history: pairs.iter().map(|(d, s, n)| (*d, (*s, *n))).collect(),
        }
    }

    #[test]
    fn each_node_holds_all_of_its_own_domain() {
        let (a, b) = (NodeName::new("db1"), NodeName::new("db2"));
        // Each ahead in its own domain: the links exchange the rest.
        let fine = problems(
            &side(&a, 1, &[(0, 1, 9), (1, 1, 40), (2, 2, 3)]),
            &side(&b, 2, &[(0, 1, 9), (1, 1, 38), (2, 2, 7)]),
        );
        assert!(fine.is_empty(), "{fine:?}");
        // db1 lost its own 39 and 40, which db2 holds.
        let lost = problems(
            &side(&a, 1, &[(1, 1, 38), (2, 2, 7)]),
            &side(&b, 2, &[(1, 1, 40), (2, 2, 7)]),
        );
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(
            lost[0].contains("1-1-39 … 1-1-40 (2 transactions)")
                && lost[0].contains("recover rebuild db1"),
            "{lost:?}"
        );
        // A transaction in db2's domain written by another server.
        let foreign = problems(
            &side(&a, 1, &[(1, 1, 4), (2, 1, 8)]),
            &side(&b, 2, &[(1, 1, 4), (2, 2, 7)]),
        );
        assert!(
            foreign.iter().any(|p| p.contains("written by server_id 1")),
            "{foreign:?}"
        );
        // The same domain on both: not set up.
        assert!(problems(&side(&a, 0, &[]), &side(&b, 0, &[]))[0].contains("both write"));
    }
}
