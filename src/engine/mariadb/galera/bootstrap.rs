//! `recover bootstrap`: after every node stopped or crashed, the cluster starts again from
//! the node whose last committed position is the highest, and the others join it.
//!
//! What automation has got wrong (a node bootstrapped with seqno 7 over peers at 8 and 9, a
//! node with a zeroed UUID after a failed state transfer chosen) is what this refuses to
//! guess: every node's position is read (the running server's, grastate.dat after a clean
//! stop, else `mariadbd --wsrep-recover`, which is where a crashed node's position is); a
//! node still in a primary component, two histories, or a node whose position cannot be
//! read (it might hold more) is a refusal, exit 3, and only the last yields to `--force`.

use super::init::{self, BOOTSTRAP_SECS, JOIN_SECS};
use super::observe;
use super::resolve;
use super::settings;
use crate::config::Config;
use crate::error::Exit;
use crate::host::{Cmd, HostExt};
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Finding, Input, Roles, Step, Verdict};
use crate::topology::{Topology, and_list};

const POSITION: &str = include_str!("scripts/position.sh");

/// A history no node has (a node that never held data, or whose state transfer failed).
const NO_HISTORY: &str = "00000000-0000-0000-0000-000000000000";

/// Refused before anything is read further: a node runs in a primary component, so the
/// cluster is up and a second bootstrap would make two clusters.
pub fn roles(config: &Config, topology: &Topology) -> anyhow::Result<(Roles, Vec<String>)> {
    let data = settings::data_nodes(config);
    let up: Vec<NodeName> = data
        .iter()
        .filter(|n| observe::wsrep(topology.get(n)).is_some_and(|w| w.primary()))
        .cloned()
        .collect();
    if !up.is_empty() {
        return Err(Exit::refused(format!(
            "refusing to bootstrap: {} in a primary component of the cluster, so the cluster is up and takes writes; \
             a second bootstrap would make two clusters that never agree again. A node that stopped comes back with \
             `ha-setup recover rejoin`{}",
            match &up[..] {
                [one] => format!("{one} runs"),
                many => format!("{} run", and_list(many)),
            },
            topology.table()
        ))
        .into());
    }
    let first = data[0].clone();
    let others = data[1..].to_vec();
    Ok((Roles::new(first, others), Vec::new()))
}

/// A node's position, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    At {
        uuid: String,
        seqno: i64,
        /// Where it was read.
        from: &'static str,
        safe_to_bootstrap: bool,
    },
    Unknown(String),
}

/// How the positions decide, for the operator and for the test of the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Bootstrap from this node; the nodes left out (unknown positions, with --force).
    From(NodeName, Vec<NodeName>),
    /// Refused, saying why (exit 3).
    Refused(String),
}

/// The rule: one history among the nodes that hold any; no node whose position is unknown
/// unless forced; then the highest seqno, ties going to the node marked safe to bootstrap,
/// then to the node the application writes to, then to config order.
pub fn choose(positions: &[(NodeName, Position)], write: &NodeName, force: bool) -> Choice {
    let known: Vec<(&NodeName, &str, i64, bool)> = positions
        .iter()
        .filter_map(|(n, p)| match p {
            Position::At {
                uuid,
                seqno,
                safe_to_bootstrap,
                ..
            } if uuid != NO_HISTORY && *seqno >= 0 => {
                Some((n, uuid.as_str(), *seqno, *safe_to_bootstrap))
            }
            _ => None,
        })
        .collect();
    let mut uuids: Vec<&str> = known.iter().map(|k| k.1).collect();
    uuids.sort();
    uuids.dedup();
    if uuids.len() > 1 {
        return Choice::Refused(format!(
            "the nodes hold two different histories ({}): they are not one cluster, and bootstrapping either loses \
             the other's. Decide whose data is right; --force does not override this",
            known
                .iter()
                .map(|(n, u, s, _)| format!("{n} {u}:{s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let unknown: Vec<(&NodeName, &str)> = positions
        .iter()
        .filter_map(|(n, p)| match p {
            Position::Unknown(why) => Some((n, why.as_str())),
            _ => None,
        })
        .collect();
    if !unknown.is_empty() && !force {
        return Choice::Refused(format!(
            "the position of {} cannot be read, and it might hold transactions the others lack: bootstrapping \
             without it would lose them. Make it readable (reach its host; stop a mariadbd that runs but does not answer) \
             and run this again, or go ahead without it with --force",
            unknown
                .iter()
                .map(|(n, why)| format!("{n} ({why})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let Some(best) = known.iter().max_by(|a, b| {
        a.2.cmp(&b.2)
            .then(a.3.cmp(&b.3))
            .then((a.0 == write).cmp(&(b.0 == write)))
            // Earlier in the config wins a full tie: max_by keeps the last of equals.
            .then(std::cmp::Ordering::Greater)
    }) else {
        return Choice::Refused(
            "no node holds a position of the cluster's history (each is unknown or empty): there is nothing to bootstrap from"
                .into(),
        );
    };
    Choice::From(
        best.0.clone(),
        unknown.iter().map(|(n, _)| (*n).clone()).collect(),
    )
}

/// Reads one node's position.
fn position(cx: &mut Ctx<'_>, name: &NodeName) -> Position {
    let seen = cx.observe(name);
    if let Some(why) = &seen.unreachable {
        return Position::Unknown(format!("cannot be reached from here: {why}"));
    }
    let Some(reading) = observe::reading(&seen).cloned() else {
        return Position::Unknown(
            seen.problem
                .clone()
                .unwrap_or_else(|| "cannot be read".into()),
        );
    };
    if let Some(w) = reading.wsrep.as_ref().filter(|w| w.on) {
        return Position::At {
            uuid: w.local_uuid.clone(),
            seqno: w.last_committed,
            from: "the running server (outside any primary component)",
            safe_to_bootstrap: false,
        };
    }
    if reading.mariadbd_running {
        return Position::Unknown(
            "mariadbd runs but does not answer (a state transfer, or stuck): stop it, or let it finish".into(),
        );
    }
    let safe = reading
        .grastate
        .as_ref()
        .is_some_and(|g| g.safe_to_bootstrap);
    if let Some(state) = reading.grastate.as_ref().filter(|g| g.seqno >= 0) {
        return Position::At {
            uuid: state.uuid.clone(),
            seqno: state.seqno,
            from: "grastate.dat (it stopped cleanly)",
            safe_to_bootstrap: safe,
        };
    }
    let host = cx.host(name);
    match host.run(&Cmd::script(POSITION, &[]).as_root()) {
        Ok(output) if output.success() => {
            let text = output.stdout_text();
            match text.trim().rsplit_once(':') {
                Some((uuid, seqno)) => match seqno.parse::<i64>() {
                    Ok(seqno) => Position::At {
                        uuid: uuid.to_owned(),
                        seqno,
                        from: "mariadbd --wsrep-recover (it crashed: grastate.dat says -1)",
                        safe_to_bootstrap: safe,
                    },
                    Err(_) => Position::Unknown(format!("mariadbd --wsrep-recover said {text:?}")),
                },
                None => Position::Unknown(format!("mariadbd --wsrep-recover said {text:?}")),
            }
        }
        Ok(output) => Position::Unknown(format!(
            "mariadbd --wsrep-recover failed: {}",
            output.stderr.trim().replace('\n', " / ")
        )),
        Err(err) => Position::Unknown(format!("cannot run mariadbd --wsrep-recover: {err}")),
    }
}

pub struct Positions {
    pub force: bool,
}

impl Step for Positions {
    fn name(&self) -> &'static str {
        "positions"
    }

    fn purpose(&self) -> &'static str {
        "every node's last committed position, and the node with the highest"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let topology = cx.topology();
        if !resolve::synced(cx.config, &topology).is_empty() && !cx.dry_run {
            // A run that stopped after its bootstrap: the cluster is up, its choice made.
            let running = resolve::synced(cx.config, &topology);
            let first = running[0].clone();
            cx.roles = Roles::new(
                first.clone(),
                settings::data_nodes(cx.config)
                    .into_iter()
                    .filter(|n| *n != first)
                    .collect(),
            );
            return Ok(Verdict::Done(format!(
                "the cluster runs again ({} Synced): the others join it",
                and_list(&running)
            )));
        }
        let data = settings::data_nodes(cx.config);
        let mut positions = Vec::new();
        for name in &data {
            let seen = cx.observe(name);
            if observe::wsrep(&seen).is_some_and(|w| w.primary()) {
                return Err(Exit::refused(format!(
                    "refusing to bootstrap: {name} runs in a primary component of the cluster: it is up{}",
                    topology.table()
                ))
                .into());
            }
            positions.push((name.clone(), position(cx, name)));
        }
        let first = data[0].clone();
        let write = resolve::write_node(cx.config, &topology, &first);
        let mut findings = Vec::new();
        for (name, position) in &positions {
            findings.push(Finding::ok(match position {
                Position::At {
                    uuid,
                    seqno,
                    from,
                    safe_to_bootstrap,
                } if uuid == NO_HISTORY || *seqno < 0 => format!(
                    "{name}: holds no position of the cluster's history ({uuid}:{seqno}, from {from}{}): it cannot be the one; it gets a state transfer",
                    if *safe_to_bootstrap { ", marked safe to bootstrap" } else { "" }
                ),
                Position::At {
                    uuid,
                    seqno,
                    from,
                    safe_to_bootstrap,
                } => format!(
                    "{name}: seqno {seqno} of {uuid}, from {from}{}",
                    if *safe_to_bootstrap { "; marked safe to bootstrap" } else { "" }
                ),
                Position::Unknown(why) => format!("{name}: position unknown: {why}"),
            }));
        }
        match choose(&positions, &write, self.force) {
            Choice::Refused(why) => {
                let seen: Vec<String> = findings.iter().map(|f| format!("  {}", f.what)).collect();
                Err(Exit::refused(format!(
                    "refusing to bootstrap: {why}.\nThe positions seen:\n{}",
                    seen.join("\n")
                ))
                .into())
            }
            Choice::From(chosen, left_out) => {
                let seqno = positions
                    .iter()
                    .find_map(|(n, p)| match p {
                        Position::At { seqno, .. } if *n == chosen => Some(*seqno),
                        _ => None,
                    })
                    .unwrap_or_default();
                for lost in &left_out {
                    findings.push(Finding::warning(
                        format!(
                            "{lost}: left out (--force): if it committed transactions after seqno {seqno}, they are lost \
                             when it rejoins (it gets the cluster's state from a donor)"
                        ),
                        "once it is reachable: ha-setup recover rejoin (its old data is replaced by a state transfer if it differs)",
                    ));
                }
                cx.findings = findings;
                cx.roles = Roles::new(
                    chosen.clone(),
                    data.into_iter().filter(|n| *n != chosen).collect(),
                );
                Ok(Verdict::Done(format!(
                    "bootstrap from {chosen}: it holds the highest position, seqno {seqno}"
                )))
            }
        }
    }
}

pub struct Bootstrap;

impl Step for Bootstrap {
    fn name(&self) -> &'static str {
        "bootstrap"
    }

    fn purpose(&self) -> &'static str {
        "the chosen node marked safe to bootstrap (it alone) and started as the new primary component"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let topology = cx.topology();
        let running = resolve::synced(cx.config, &topology);
        if !running.is_empty() {
            return Ok(Verdict::Done(format!(
                "{} Synced already",
                and_list(&running)
            )));
        }
        let chosen = cx.roles.source.clone();
        let seen = cx.observe(&chosen);
        if observe::wsrep(&seen).is_some_and(|w| w.on) {
            // It runs, outside any primary component: it becomes one where it stands.
            let name = chosen.clone();
            return Ok(Verdict::Todo(vec![Action::Call {
                on: vec![chosen.clone()],
                why: format!(
                    "make {chosen}'s component the primary one (pc.bootstrap), and wait until it is Synced"
                ),
                call: Call::new(move |cx| {
                    super::super::client::execute(
                        cx.host(&name),
                        &Input::Text(
                            "SET GLOBAL wsrep_provider_options = 'pc.bootstrap=YES';\n".into(),
                        ),
                    )?;
                    wait_synced(cx, &name, BOOTSTRAP_SECS)?;
                    Ok(vec![format!("{name}: the primary component, Synced")])
                }),
            }]));
        }
        let datadir = observe::reading(&seen)
            .map(|r| r.datadir.clone())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| super::super::layout::paths(cx, &chosen).datadir.value);
        let grastate = format!("{datadir}/grastate.dat");
        Ok(Verdict::Todo(vec![
            Action::Run {
                on: chosen.clone(),
                why: format!("mark {chosen} safe to bootstrap (safe_to_bootstrap: 1 in {grastate}), on it alone"),
                cmd: Cmd::new(format!(
                    "if [ -e {g} ]; then sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' {g}; fi",
                    g = crate::host::quote(&grastate)
                ))
                .as_root(),
                input: Input::None,
            },
            init::start_action(
                cx,
                &chosen,
                "bootstrap",
                None,
                BOOTSTRAP_SECS,
                format!(
                    "start MariaDB on {chosen} with --wsrep-new-cluster: the cluster runs again from its data"
                ),
            ),
        ]))
    }
}

/// Waits until `name` is Synced in a primary component.
fn wait_synced(cx: &mut Ctx<'_>, name: &NodeName, secs: u64) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let seen = cx.observe_fresh(name);
        if observe::wsrep(&seen).is_some_and(|w| w.synced()) {
            return Ok(());
        }
        if started.elapsed().as_secs() > secs {
            anyhow::bail!("{name} is not Synced {secs} s later: {}", seen.describe());
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

pub struct StartOthers;

impl Step for StartOthers {
    fn name(&self) -> &'static str {
        "start-others"
    }

    fn purpose(&self) -> &'static str {
        "every other data node started, one at a time: it catches up by IST where the donor's gcache allows, else a full state transfer"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let topology = cx.topology();
        let running = resolve::synced(cx.config, &topology);
        let mut actions = Vec::new();
        let mut skipped = Vec::new();
        for name in cx.roles.targets.clone() {
            if running.contains(&name) && !cx.predicting() {
                continue;
            }
            if let Some(why) = &topology.get(&name).unreachable {
                skipped.push(format!("{name} (cannot be reached: {why})"));
                continue;
            }
            actions.push(init::start_action(
                cx,
                &name,
                "join",
                None,
                JOIN_SECS,
                format!(
                    "start MariaDB on {name}: it rejoins with what it missed (IST) or a full state transfer, as Galera decides, and waits until Synced"
                ),
            ));
        }
        if actions.is_empty() {
            return Ok(Verdict::Done(if skipped.is_empty() {
                "every data node is Synced".into()
            } else {
                format!(
                    "every other data node it can reach is Synced; left out: {}",
                    skipped.join(", ")
                )
            }));
        }
        Ok(Verdict::Todo(actions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seqno: i64, safe: bool) -> Position {
        Position::At {
            uuid: "u".into(),
            seqno,
            from: "test",
            safe_to_bootstrap: safe,
        }
    }

    fn nodes(list: &[(&str, Position)]) -> Vec<(NodeName, Position)> {
        list.iter()
            .map(|(n, p)| (NodeName::new(*n), p.clone()))
            .collect()
    }

    #[test]
    fn the_highest_position_wins_never_a_guess() {
        let db1 = NodeName::new("db1");
        // kubeblocks-addons #2996: seqno 7 bootstrapped over peers at 8 and 9.
        let seen = nodes(&[
            ("db1", at(7, false)),
            ("db2", at(8, false)),
            ("db3", at(9, false)),
        ]);
        assert_eq!(
            choose(&seen, &db1, false),
            Choice::From(NodeName::new("db3"), vec![])
        );
        // resource-agents #1323: a zeroed UUID after a failed SST is never the one.
        let zeroed = nodes(&[
            ("db1", at(5, false)),
            (
                "db2",
                Position::At {
                    uuid: NO_HISTORY.into(),
                    seqno: -1,
                    from: "test",
                    safe_to_bootstrap: true,
                },
            ),
        ]);
        assert_eq!(
            choose(&zeroed, &db1, false),
            Choice::From(db1.clone(), vec![])
        );
        // Ties: safe_to_bootstrap, then the write node, then config order.
        let tie = nodes(&[
            ("db1", at(9, false)),
            ("db2", at(9, true)),
            ("db3", at(9, false)),
        ]);
        assert_eq!(
            choose(&tie, &db1, false),
            Choice::From(NodeName::new("db2"), vec![])
        );
        let tie = nodes(&[
            ("db1", at(9, false)),
            ("db2", at(9, false)),
            ("db3", at(9, false)),
        ]);
        assert_eq!(
            choose(&tie, &NodeName::new("db3"), false),
            Choice::From(NodeName::new("db3"), vec![])
        );
        assert_eq!(
            choose(&tie, &NodeName::new("x"), false),
            Choice::From(db1.clone(), vec![])
        );
    }

    #[test]
    fn an_unknown_position_is_refused_unless_forced_and_two_histories_always() {
        let db1 = NodeName::new("db1");
        let unknown = nodes(&[
            ("db1", at(9, false)),
            ("db2", Position::Unknown("cannot be reached".into())),
        ]);
        assert!(
            matches!(choose(&unknown, &db1, false), Choice::Refused(why) if why.contains("db2 (cannot be reached)"))
        );
        assert_eq!(
            choose(&unknown, &db1, true),
            Choice::From(db1.clone(), vec![NodeName::new("db2")])
        );
        let two = vec![
            (db1.clone(), at(9, false)),
            (
                NodeName::new("db2"),
                Position::At {
                    uuid: "v".into(),
                    seqno: 12,
                    from: "test",
                    safe_to_bootstrap: false,
                },
            ),
        ];
        assert!(
            matches!(choose(&two, &db1, true), Choice::Refused(why) if why.contains("two different histories"))
        );
    }
}
