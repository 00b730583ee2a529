//! Who is who for each operation, decided from the observed topology before any host is
//! touched. A decision the facts do not prove is refused (exit 3) with what each node
//! answered and what would make it safe.

use crate::config::Config;
use crate::engine::Engine;
use crate::error::Exit;
use crate::node::NodeName;
use crate::plan::Roles;
use crate::topology::{LinkState, Topology, and_list};

fn refused(message: String, topology: &Topology) -> anyhow::Error {
    Exit::refused(format!("{message}{}", topology.table())).into()
}

/// init: the primary now seeds and links every other node. Before the first init (no
/// node set up yet) the primary is the one the config marks; after, it is the one the
/// servers say. A node whose own history could be lost is never re-seeded by init.
pub fn init(config: &Config, topology: &Topology) -> anyhow::Result<(Roles, Vec<String>)> {
    if topology.two_writers() {
        return super::resolve_pp::init(config, topology);
    }
    topology.refuse_problems("init")?;
    let untouched = topology.untouched();
    let mut notes = Vec::new();
    let source = match topology.primary() {
        Some(primary) => primary,
        None if untouched => config.starting_primary().clone(),
        None => return Err(no_primary(topology, "init")),
    };
    if &source != config.starting_primary() && !untouched {
        notes.push(format!(
            "The primary now is {source} (the config marks {} to start from): init works on the roles the servers show.",
            config.starting_primary()
        ));
    }
    let mut targets = Vec::new();
    for observed in &topology.nodes {
        let name = &observed.name;
        if name == &source {
            continue;
        }
        let follows = topology.source_of(name) == Some(&source);
        if !follows && observed.member && !observed.seeded {
            let what = match &observed.db {
                None => {
                    "its database does not answer, so ha-setup cannot tell what it holds; start it (it comes back read-only) and run init again"
                }
                Some(_) => {
                    "it replicates from nowhere and holds data of its own (a former primary?)"
                }
            };
            return Err(refused(
                format!(
                    "refusing to init: {name} was set up by ha-setup but does not replicate from {source}: {what}.\n\
                     init never replaces a node's own data. `ha-setup recover rejoin` makes a former primary a replica \
                     (it checks for transactions the primary never got); `ha-setup recover rebuild {name}` re-seeds it \
                     (its data moved aside, not deleted)."
                ),
                topology,
            ));
        }
        targets.push(name.clone());
    }
    Ok((Roles::new(source, targets), notes))
}

/// No node takes writes: say which node looks like the primary and what to do.
fn no_primary(topology: &Topology, operation: &str) -> anyhow::Error {
    let message = match topology.provable_primary() {
        Some(primary) if topology.get(&primary).answers() => format!(
            "refusing to {operation}: no node takes writes. {primary} is the primary its replicas follow, and it is fenced (read-only), \
             as every node is after a restart. If it is the rightful primary, reopen writes with `ha-setup recover unfence`, then run {operation} again"
        ),
        Some(primary) => format!(
            "refusing to {operation}: the primary {primary} {}. Start it, or if it is lost, promote a replica: `ha-setup recover promote`",
            topology.get(&primary).describe()
        ),
        None => format!(
            "refusing to {operation}: no node is provably the primary (none takes writes, none replicates). \
             Reopen writes on the one whose data is right with `ha-setup recover unfence`"
        ),
    };
    refused(message, topology)
}

/// promote: the most advanced replica that answers becomes the primary; the other
/// replicas follow it. Refused while a writable primary still serves its replicas.
pub fn promote(engine: &dyn Engine, topology: &Topology, force: bool) -> anyhow::Result<Roles> {
    topology.refuse_problems("promote")?;
    if let Some(primary) = topology.primary() {
        let replicas = topology.replicas_of(&primary);
        if replicas.is_empty() {
            // A promotion that finished (or that the other replicas left behind): the
            // replicas still following a lost primary are pointed at this one.
            let stranded: Vec<NodeName> = topology.replicas();
            let old = stranded
                .first()
                .and_then(|n| topology.source_of(n))
                .cloned();
            return Ok(Roles {
                old,
                ..Roles::new(primary, stranded)
            });
        }
        if !force {
            return Err(refused(
                format!(
                    "refusing to promote: {primary} still answers as a writable primary and {} replicate{} from it; two primaries would split the data.\n\
                     If {primary} is really lost (its clients cannot reach it and it will not come back), run again with --force: \
                     ha-setup then fences it (read-only) before anything else.",
                    and_list(&replicas),
                    if replicas.len() == 1 { "s" } else { "" }
                ),
                topology,
            ));
        }
        let target = most_advanced(engine, topology, &replicas)?;
        let others = replicas.into_iter().filter(|n| n != &target).collect();
        return Ok(Roles {
            old: Some(primary),
            ..Roles::new(target, others)
        });
    }
    let replicas: Vec<NodeName> = topology.replicas();
    if replicas.is_empty() {
        return Err(refused(
            "refusing to promote: no node replicates, so there is nothing to promote".into(),
            topology,
        ));
    }
    let old = topology.source_of(&replicas[0]).cloned();
    if let Some(old) = &old
        && !topology.get(old).answers()
    {
        let liveness = topology.liveness(old);
        if liveness.alive() && !force {
            return Err(alive_as_seen_from_replicas(topology, old, &liveness));
        }
    }
    let target = most_advanced(engine, topology, &replicas)?;
    let others = replicas.into_iter().filter(|n| n != &target).collect();
    Ok(Roles {
        old,
        ..Roles::new(target, others)
    })
}

/// The refusal when this machine does not reach the old primary but a replica does.
fn alive_as_seen_from_replicas(
    topology: &Topology,
    old: &NodeName,
    liveness: &crate::topology::Liveness,
) -> anyhow::Error {
    let witnesses: Vec<NodeName> = liveness.heard_by.iter().map(|(n, _)| n.clone()).collect();
    let (first, why) = &liveness.heard_by[0];
    let reachable = topology.get(old).unreachable.is_none();
    refused(
        format!(
            "refusing to promote: {old} is alive as seen from {}: {first} is {why}. \
             Only this machine lost its route to it; promoting now would make two primaries.\n\
             Either fix the route from here to {old} and look again (`ha-setup status`), or, if {old} must go \
             (its clients cannot reach it, or it must not come back), run again with --force: ha-setup then fences it \
             (read-only) first when it can reach it{}.\n\
             Verdict: alive. Evidence:\n  - {}",
            and_list(&witnesses),
            if reachable {
                ""
            } else {
                ", and from here it cannot now: make sure it takes no more writes"
            },
            liveness.evidence.join("\n  - ")
        ),
        topology,
    )
}

/// The replica holding the most, among those that answer; refused when two cannot be
/// ordered (each holds transactions the other lacks).
fn most_advanced(
    engine: &dyn Engine,
    topology: &Topology,
    replicas: &[NodeName],
) -> anyhow::Result<NodeName> {
    let answering: Vec<NodeName> = replicas
        .iter()
        .filter(|n| topology.get(n).answers())
        .cloned()
        .collect();
    if answering.is_empty() {
        return Err(refused(
            "refusing to promote: no replica's database answers".into(),
            topology,
        ));
    }
    topology
        .most_advanced(&answering, |a, b| engine.compare(a, b))
        .map_err(|(a, b)| {
            refused(
                format!(
                    "refusing to promote: {a} and {b} each hold transactions the other lacks, so neither is the most advanced. \
                     Decide whose data is right, then promote by hand and re-seed the other"
                ),
                topology,
            )
        })
}

/// unfence: the primary that came back read-only, once no other node takes writes and
/// every other node could be checked (unless `force`).
pub fn unfence(topology: &Topology, force: bool) -> anyhow::Result<Roles> {
    if topology.two_writers() {
        return super::resolve_pp::unfence(topology, force);
    }
    topology.refuse_problems("unfence")?;
    if let Some(primary) = topology.primary() {
        // A former primary beside the one that takes writes: opening it too would make two.
        let fenced: Vec<NodeName> = topology
            .nodes
            .iter()
            .filter(|n| n.fenced() && n.name != primary)
            .map(|n| n.name.clone())
            .collect();
        if !fenced.is_empty() {
            return Err(refused(
                format!(
                    "refusing to unfence {}: {primary} takes writes already, and opening writes there too would split the data. \
                     Make {} {primary}'s replica{}: ha-setup recover rejoin",
                    and_list(&fenced),
                    if fenced.len() == 1 { "it" } else { "them" },
                    if fenced.len() == 1 { "" } else { "s" }
                ),
                topology,
            ));
        }
    }
    let target = match topology.provable_primary() {
        Some(primary) => primary,
        None => {
            let alone: Vec<NodeName> = topology
                .nodes
                .iter()
                .filter(|n| n.primary_like() && n.member)
                .map(|n| n.name.clone())
                .collect();
            match &alone[..] {
                [one] => one.clone(),
                _ => {
                    return Err(refused(
                        "refusing to unfence: cannot tell which node is the primary. A primary replicates from nowhere; its replicas replicate from it"
                            .into(),
                        topology,
                    ));
                }
            }
        }
    };
    if !topology.get(&target).answers() {
        return Err(refused(
            format!("refusing to unfence: the primary {target} does not answer"),
            topology,
        ));
    }
    let unchecked: Vec<NodeName> = topology
        .nodes
        .iter()
        .filter(|n| n.name != target && !n.answers())
        .map(|n| n.name.clone())
        .collect();
    if !unchecked.is_empty() && !force {
        return Err(refused(
            format!(
                "refusing to unfence {target}: {} cannot be checked, so ha-setup cannot tell that no other node is primary.\n\
                 If you know {} down or a replica, run again with --force.",
                and_list(&unchecked),
                if unchecked.len() == 1 {
                    "it is"
                } else {
                    "they are"
                }
            ),
            topology,
        ));
    }
    Ok(Roles::new(target, Vec::new()))
}

/// rejoin: every other node replicates from the one primary (each checked for history
/// the primary never got).
pub fn rejoin(topology: &Topology) -> anyhow::Result<Roles> {
    if topology.two_writers() {
        return super::resolve_pp::rejoin(topology);
    }
    topology.refuse_problems("rejoin")?;
    let Some(primary) = topology.primary() else {
        return Err(refused(
            "refusing to rejoin: rejoin needs exactly one writable primary".into(),
            topology,
        ));
    };
    let others = topology
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .filter(|n| n != &primary)
        .collect();
    Ok(Roles::new(primary, others))
}

/// rebuild: a fresh copy for `node` from the primary now (or `from`). Never re-seeds the
/// primary; refuses when no node is provably the primary and none was named.
pub fn rebuild(
    config: &Config,
    topology: &Topology,
    node: Option<NodeName>,
    from: Option<NodeName>,
) -> anyhow::Result<Roles> {
    if topology.two_writers() {
        return super::resolve_pp::rebuild(config, topology, node, from);
    }
    let source = match from {
        Some(from) => from,
        None => {
            topology.refuse_problems("rebuild")?;
            match topology.provable_primary() {
                Some(primary) => primary,
                None => {
                    return Err(refused(
                        "refusing to rebuild: no node is provably the primary (none takes writes, none replicates), \
                         so ha-setup cannot tell whose data is right. Name the node to copy from: \
                         `ha-setup recover rebuild NODE --from NODE`"
                            .into(),
                        topology,
                    ));
                }
            }
        }
    };
    let target = match node {
        Some(node) => node,
        None => {
            let others: Vec<NodeName> = config
                .nodes
                .keys()
                .filter(|n| **n != source)
                .cloned()
                .collect();
            match &others[..] {
                [one] => one.clone(),
                _ => {
                    return Err(Exit::usage(format!(
                        "recover rebuild: name the node to re-seed, one of {} (the primary now is {source})",
                        and_list(&others)
                    ))
                    .into());
                }
            }
        }
    };
    if target == source {
        return Err(refused(
            format!(
                "refusing to rebuild {target}: it is the node the copy would come from (the primary now); \
                 ha-setup never re-seeds the primary"
            ),
            topology,
        ));
    }
    if topology.get(&target).writable_primary() {
        return Err(refused(
            format!("refusing to rebuild {target}: it takes writes (it is a primary)"),
            topology,
        ));
    }
    if !topology.get(&source).answers() {
        return Err(refused(
            format!(
                "refusing to rebuild {target}: {source}, whose data it would get, does not answer"
            ),
            topology,
        ));
    }
    Ok(Roles {
        fresh_copy: true,
        ..Roles::new(source, vec![target])
    })
}

/// switchover: the primary hands over to one of its running replicas (`to`, or the only
/// one); its other replicas follow the new primary.
pub fn switchover(topology: &Topology, to: Option<NodeName>) -> anyhow::Result<Roles> {
    topology.refuse_problems("switchover")?;
    let Some(primary) = topology.primary() else {
        // Resumed after the swap itself: the new primary and the old one as its replica.
        return Err(refused(
            "refusing to switch over: it needs one writable primary and its replica (after a loss use `ha-setup recover promote`)"
                .into(),
            topology,
        ));
    };
    let replicas = topology.replicas_of(&primary);
    let target = match to {
        Some(to) if to == primary => {
            let mut roles = Roles::new(primary.clone(), Vec::new());
            roles.old = replicas.first().cloned();
            roles.targets = replicas.into_iter().skip(1).collect();
            // `--to` the primary now: a finished switchover, checked again.
            return Ok(roles);
        }
        Some(to) if replicas.contains(&to) => to,
        Some(to) => {
            return Err(refused(
                format!(
                    "refusing to switch over to {to}: it does not replicate from the primary {primary}"
                ),
                topology,
            ));
        }
        None => match &replicas[..] {
            [one] => one.clone(),
            [] => {
                return Err(refused(
                    format!(
                        "refusing to switch over: no node replicates from the primary {primary}"
                    ),
                    topology,
                ));
            }
            _ => {
                return Err(Exit::usage(format!(
                    "switchover: name the new primary with --to NODE, one of {}",
                    and_list(&replicas)
                ))
                .into());
            }
        },
    };
    let up = topology.get(&target).upstream().expect("a replica");
    if up.receiving != LinkState::Running || up.applying != LinkState::Running {
        return Err(refused(
            format!(
                "refusing to switch over to {target}: its replication is not running ({}); fix the link first",
                up.error.clone().unwrap_or_else(|| "stopped".into())
            ),
            topology,
        ));
    }
    let others = replicas.into_iter().filter(|n| n != &target).collect();
    Ok(Roles {
        old: Some(primary),
        ..Roles::new(target, others)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::mariadb::MariaDb;
    use crate::error::ExitCode;
    use crate::topology::{DbState, Observed, Upstream};

    fn config() -> Config {
        Config::parse(
            "engine = \"mariadb\"\n[primary]\nhost = \"10.0.0.1\"\n[secondary]\nhost = \"10.0.0.2\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    /// The primary as this machine saw it: unreachable, or its database not answering.
    fn lost_primary(unreachable: bool) -> Observed {
        let name = NodeName::new("primary");
        if unreachable {
            Observed::unreachable(&name, "primary", "timed out connecting")
        } else {
            Observed {
                member: true,
                problem: Some("MariaDB is not running".into()),
                ..Observed::reached(&name, "primary")
            }
        }
    }

    fn replica(receiving: LinkState, received_secs_ago: Option<u64>) -> Observed {
        Observed {
            member: true,
            seeded: true,
            db: Some(DbState {
                version: "10.11".into(),
                writable: false,
                position: "0-1-7".into(),
                upstream: Some(Upstream {
                    address: "10.0.0.1".into(),
                    port: 3306,
                    node: None,
                    receiving,
                    applying: LinkState::Running,
                    error: None,
                    lag_seconds: Some(0),
                    received_secs_ago,
                    heartbeat_secs: Some(5),
                }),
            }),
            ..Observed::reached(&NodeName::new("secondary"), "secondary")
        }
    }

    fn promote_with(primary: Observed, secondary: Observed, force: bool) -> anyhow::Result<Roles> {
        let topology = Topology::new(vec![primary, secondary], &config());
        promote(&MariaDb, &topology, force)
    }

    #[track_caller]
    fn assert_refused(result: anyhow::Result<Roles>, words: &str) {
        let err = result.expect_err("refused");
        assert_eq!(crate::error::exit_code(&err), ExitCode::Refused, "{err:#}");
        assert!(format!("{err:#}").contains(words), "{err:#}");
    }

    #[test]
    fn a_replica_still_connected_to_the_primary_is_a_witness_that_it_lives() {
        let result = promote_with(
            lost_primary(true),
            replica(LinkState::Running, Some(40)),
            false,
        );
        assert_refused(result, "primary is alive as seen from secondary");
        let result = promote_with(lost_primary(true), replica(LinkState::Running, None), false);
        assert_refused(result, "--force");
        // Its database down on a host this machine reaches, yet the replica connected: alive.
        let result = promote_with(
            lost_primary(false),
            replica(LinkState::Running, None),
            false,
        );
        assert_refused(result, "receiving: running");
        // --force goes ahead (and fences it first when it can).
        let roles = promote_with(
            lost_primary(true),
            replica(LinkState::Running, Some(1)),
            true,
        )
        .unwrap();
        assert_eq!(roles.source, NodeName::new("secondary"));
        assert_eq!(roles.old, Some(NodeName::new("primary")));
    }

    #[test]
    fn changes_within_a_heartbeat_count_when_the_primary_cannot_be_reached() {
        let result = promote_with(
            lost_primary(true),
            replica(LinkState::Connecting, Some(3)),
            false,
        );
        assert_refused(result, "within one heartbeat period");
        // Long silent, and nobody reaches it: promoted.
        let roles = promote_with(
            lost_primary(true),
            replica(LinkState::Connecting, Some(40)),
            false,
        )
        .unwrap();
        assert_eq!(roles.source, NodeName::new("secondary"));
        // Its host says its database is not running: a closed connection is its end, however
        // recent the last change.
        let roles = promote_with(
            lost_primary(false),
            replica(LinkState::Connecting, Some(1)),
            false,
        )
        .unwrap();
        assert_eq!(roles.source, NodeName::new("secondary"));
    }

    #[test]
    fn the_verdict_names_its_evidence() {
        let topology = Topology::new(
            vec![lost_primary(true), replica(LinkState::Connecting, Some(40))],
            &config(),
        );
        let liveness = topology.liveness(&NodeName::new("primary"));
        assert!(!liveness.alive());
        assert_eq!(liveness.evidence.len(), 2, "{liveness:?}");
        assert!(liveness.evidence[0].contains("cannot be reached from here"));
        assert!(
            liveness.evidence[1].contains(
                "secondary: does not reach primary (receiving: connecting, last changes 40 s ago"
            ),
            "{liveness:?}"
        );
    }
}
