//! Who is who for each operation when two writable nodes replicate from each other
//! (`topology = "primary-primary"`). There is no primary to find: the roles say which node
//! a copy comes from, which node is re-seeded, and which nodes open for writes. A decision
//! the servers do not prove safe is refused (exit 3) with what each node answered.

use crate::config::Config;
use crate::error::Exit;
use crate::node::NodeName;
use crate::plan::Roles;
use crate::topology::{LinkState, Topology, and_list};

fn refused(message: String, topology: &Topology) -> anyhow::Error {
    Exit::refused(format!("{message}{}", topology.table())).into()
}

/// The config's other node.
fn other(config: &Config, name: &NodeName) -> NodeName {
    config
        .nodes
        .keys()
        .find(|n| *n != name)
        .cloned()
        .unwrap_or_else(|| name.clone())
}

/// init: the config's first node (`[primary]`, or the one marked or listed first) holds the
/// data and seeds the other; each then replicates from the other.
pub fn init(config: &Config, topology: &Topology) -> anyhow::Result<(Roles, Vec<String>)> {
    topology.refuse_problems("init")?;
    let first = config.starting_primary().clone();
    let second = other(config, &first);
    if topology.untouched() {
        return Ok((Roles::new(first, vec![second]), Vec::new()));
    }
    let (a, b) = (topology.get(&first), topology.get(&second));
    if !a.member && b.member {
        return Err(refused(
            format!(
                "refusing to init: {second} was set up by ha-setup and {first} was not (or lost ha-setup's settings): \
                 {second} holds the pair's data, and init would seed {second} from {first}. \
                 Re-seed {first} from {second} instead: ha-setup recover rebuild {first}"
            ),
            topology,
        ));
    }
    if !a.answers() {
        return Err(refused(
            format!(
                "refusing to init: {first}, whose data init starts from, {}. Start its database (it comes back read-only), then run init again",
                a.describe()
            ),
            topology,
        ));
    }
    let follows = topology.source_of(&second) == Some(&first);
    if b.member && !b.seeded && !follows {
        return Err(refused(
            format!(
                "refusing to init: {second} was set up by ha-setup but holds no copy placed by it and does not replicate from {first}: \
                 it holds data of its own. init never replaces a node's own data: `ha-setup recover rejoin` reconnects the pair \
                 (it checks that the histories merge); `ha-setup recover rebuild {second}` re-seeds it (its data moved aside, not deleted)."
            ),
            topology,
        ));
    }
    Ok((Roles::new(first, vec![second]), Vec::new()))
}

/// unfence: every node that is read-only opens once its link from the other has caught
/// up. The other must answer, so that "caught up" can be read from it, unless `force`.
pub fn unfence(topology: &Topology, force: bool) -> anyhow::Result<Roles> {
    topology.refuse_problems("unfence")?;
    let fenced: Vec<NodeName> = topology
        .nodes
        .iter()
        .filter(|n| n.db.as_ref().is_some_and(|db| !db.writable))
        .map(|n| n.name.clone())
        .collect();
    let answering: Vec<NodeName> = topology
        .nodes
        .iter()
        .filter(|n| n.answers())
        .map(|n| n.name.clone())
        .collect();
    match (&fenced[..], &answering[..]) {
        (_, []) => Err(refused(
            "refusing to unfence: no node's database answers".into(),
            topology,
        )),
        // Nothing is read-only: the step says so.
        ([], [one, ..]) => Ok(Roles::new(one.clone(), Vec::new())),
        ([_, _], _) => Ok(Roles::new(
            topology.nodes[0].name.clone(),
            vec![topology.nodes[1].name.clone()],
        )),
        ([node], _) => {
            let peer = topology.peer(node).cloned().expect("two nodes");
            let seen = topology.get(&peer);
            if !seen.answers() {
                if force {
                    return Ok(Roles::new(node.clone(), Vec::new()));
                }
                return Err(refused(
                    format!(
                        "refusing to unfence {node}: {peer} {}, so ha-setup cannot check that {node} holds everything {peer} wrote; \
                         opened now, {node} could take writes while it lacks some of {peer}'s.\n\
                         If {peer} is lost (or you accept that), run again with --force.",
                        seen.describe()
                    ),
                    topology,
                ));
            }
            let link = topology.get(node).upstream();
            let running = link.is_some_and(|up| {
                up.node.as_ref() == Some(&peer)
                    && up.receiving == LinkState::Running
                    && up.applying == LinkState::Running
            });
            if !running {
                return Err(refused(
                    format!(
                        "refusing to unfence {node}: its link from {peer} is not running, so it cannot catch up with {peer}'s writes. \
                         Reconnect the pair first: ha-setup recover rejoin"
                    ),
                    topology,
                ));
            }
            Ok(Roles::new(node.clone(), vec![peer]))
        }
        _ => Err(refused(
            "refusing to unfence: two writers take exactly two nodes".into(),
            topology,
        )),
    }
}

/// rejoin: both links run again, after check-merge has read both histories.
pub fn rejoin(topology: &Topology) -> anyhow::Result<Roles> {
    topology.refuse_problems("rejoin")?;
    let [first, second] = &topology.nodes[..] else {
        return Err(refused(
            "refusing to rejoin: two writers take exactly two nodes".into(),
            topology,
        ));
    };
    Ok(Roles::new(first.name.clone(), vec![second.name.clone()]))
}

/// rebuild NODE: NODE gets a fresh copy of the other node's data (`--from` may only name
/// that one). Which node's data is right is the operator's call, so NODE must be named.
pub fn rebuild(
    config: &Config,
    topology: &Topology,
    node: Option<NodeName>,
    from: Option<NodeName>,
) -> anyhow::Result<Roles> {
    let names: Vec<NodeName> = config.nodes.keys().cloned().collect();
    let Some(target) = node else {
        return Err(Exit::usage(format!(
            "recover rebuild: name the node to re-seed, one of {}: both take writes, so which data is kept is yours to say \
             (the node named gets a copy of the other's; its own data is moved aside)",
            and_list(&names)
        ))
        .into());
    };
    let source = other(config, &target);
    if let Some(from) = from
        && from != source
    {
        return Err(Exit::usage(format!(
            "recover rebuild {target} --from {from}: with two nodes the copy comes from the other node, {source}"
        ))
        .into());
    }
    topology.refuse_problems("rebuild")?;
    if !topology.get(&source).answers() {
        return Err(refused(
            format!(
                "refusing to rebuild {target}: {source}, whose data it would get, {}",
                topology.get(&source).describe()
            ),
            topology,
        ));
    }
    Ok(Roles {
        fresh_copy: true,
        ..Roles::new(source, vec![target])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitCode;
    use crate::topology::{DbState, Observed, Upstream};

    fn config() -> Config {
        Config::parse(
            "engine = \"mariadb\"\ntopology = \"primary-primary\"\n[primary]\nhost = \"10.0.0.1\"\n[secondary]\nhost = \"10.0.0.2\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    fn node(name: &str, writable: bool, from: Option<&str>) -> Observed {
        Observed {
            member: true,
            seeded: name == "secondary",
            db: Some(DbState {
                version: "10.11".into(),
                writable,
                position: String::new(),
                upstream: from.map(|address| Upstream {
                    address: address.into(),
                    port: 3306,
                    node: None,
                    receiving: LinkState::Running,
                    applying: LinkState::Running,
                    error: None,
                    lag_seconds: Some(0),
                    received_secs_ago: None,
                    heartbeat_secs: Some(5),
                }),
            }),
            ..Observed::reached(&NodeName::new(name), name)
        }
    }

    fn down(name: &str) -> Observed {
        Observed {
            member: true,
            problem: Some("MariaDB is not running".into()),
            ..Observed::reached(&NodeName::new(name), name)
        }
    }

    #[test]
    fn both_writable_each_from_the_other_is_the_shape() {
        let topology = Topology::new(
            vec![
                node("primary", true, Some("10.0.0.2")),
                node("secondary", true, Some("10.0.0.1")),
            ],
            &config(),
        );
        assert!(topology.problems().is_empty(), "{:?}", topology.problems());
        assert_eq!(
            topology.role(&NodeName::new("secondary")),
            crate::topology::Role::Primary
        );
        let (roles, _) = init(&config(), &topology).unwrap();
        assert_eq!(roles.source, NodeName::new("primary"));
    }

    #[test]
    fn unfence_waits_for_the_other_unless_forced() {
        let restarted = Topology::new(
            vec![
                node("primary", true, Some("10.0.0.2")),
                node("secondary", false, Some("10.0.0.1")),
            ],
            &config(),
        );
        let roles = unfence(&restarted, false).unwrap();
        assert_eq!(
            (roles.source, roles.targets),
            (NodeName::new("secondary"), vec![NodeName::new("primary")])
        );
        let alone = Topology::new(
            vec![down("primary"), node("secondary", false, Some("10.0.0.1"))],
            &config(),
        );
        let err = unfence(&alone, false).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), ExitCode::Refused);
        assert!(format!("{err:#}").contains("--force"), "{err:#}");
        assert!(unfence(&alone, true).unwrap().targets.is_empty());
    }

    #[test]
    fn rebuild_names_its_node() {
        let topology = Topology::new(
            vec![
                node("primary", true, Some("10.0.0.2")),
                node("secondary", true, Some("10.0.0.1")),
            ],
            &config(),
        );
        let err = rebuild(&config(), &topology, None, None).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), ExitCode::Usage);
        let roles = rebuild(&config(), &topology, Some(NodeName::new("secondary")), None).unwrap();
        assert_eq!(roles.source, NodeName::new("primary"));
        assert!(roles.fresh_copy);
    }
}
