//! The cluster as it is, read from the servers: every node the operator can reach, what
//! its database answers, and where each replica replicates from. One value that every
//! operation builds its plan from, so no operation takes a role from the config's names.
//!
//! The engine reads a node (`Engine::observe`, one round trip); this module resolves each
//! replica's source to a node of the config and judges the shape: one primary and its
//! replicas, or a problem that every changing operation refuses on until it is resolved.

use std::any::Any;
use std::cmp::Ordering;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::engine::Engine;
use crate::node::{Hosts, NodeName};

/// Reads every node, all at once: one round trip each.
pub fn observe(engine: &dyn Engine, config: &Config, hosts: &mut Hosts) -> Topology {
    let nodes = std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .all_mut()
            .into_iter()
            .map(|(name, host, unreachable)| {
                scope.spawn(move || match unreachable {
                    Some(why) => Observed::unreachable(&name, host.label(), &why),
                    None => engine.observe(host, &name, config),
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    Topology::new(nodes, config)
}

/// Reads one node.
pub fn observe_one(
    engine: &dyn Engine,
    config: &Config,
    hosts: &mut Hosts,
    name: &NodeName,
) -> Observed {
    let why = hosts.unreachable(name).map(|err| err.to_string());
    let mut observed = match why {
        Some(why) => Observed::unreachable(name, hosts.host(name).label(), &why),
        None => engine.observe(hosts.host(name), name, config),
    };
    resolve(&mut observed, config);
    observed
}

/// Names the config's node at a replica's source address.
fn resolve(observed: &mut Observed, config: &Config) {
    let port = config.engine.default_db_port();
    let Some(up) = observed.db.as_mut().and_then(|db| db.upstream.as_mut()) else {
        return;
    };
    up.node = config
        .nodes
        .iter()
        .find(|(_, node)| {
            (node.replication_address().eq_ignore_ascii_case(&up.address)
                || node.host.eq_ignore_ascii_case(&up.address))
                && node.db_port.unwrap_or(port) == up.port
        })
        .map(|(name, _)| name.clone());
}

/// One node as the operator saw it at the start of the operation (or after the last
/// action on it: actions invalidate what was seen).
#[derive(Debug, Clone)]
pub struct Observed {
    pub name: NodeName,
    /// How messages name the host: `secondary (db2.example.com)`.
    pub label: String,
    /// Why the node could not be reached over SSH, when it could not. Not reaching a node
    /// from here is not proof that it is down.
    pub unreachable: Option<String>,
    /// The node carries ha-setup's settings: it has been set up as part of the cluster.
    pub member: bool,
    /// The node holds a copy of the data placed by ha-setup (its seed record).
    pub seeded: bool,
    /// What the database answered; None when it did not answer.
    pub db: Option<DbState>,
    /// Why the database did not answer, when it did not.
    pub problem: Option<String>,
    /// The engine's own reading of the node, for its steps.
    pub detail: Option<Arc<dyn Any + Send + Sync>>,
}

/// What a running database says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbState {
    pub version: String,
    /// Takes the application's writes.
    pub writable: bool,
    /// Where the node's data is, in the engine's terms, for people (a GTID list, an LSN).
    pub position: String,
    /// Where it replicates from, if it does.
    pub upstream: Option<Upstream>,
}

/// A replica's view of its source: the second witness of whether that source lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub address: String,
    pub port: u16,
    /// The config's node at that address, once resolved.
    pub node: Option<NodeName>,
    /// Receiving changes from the source (MariaDB's IO thread, PostgreSQL's WAL receiver).
    pub receiving: LinkState,
    /// Applying them (MariaDB's SQL thread, PostgreSQL's startup process).
    pub applying: LinkState,
    pub error: Option<String>,
    pub lag_seconds: Option<u64>,
    /// Seconds since changes last arrived from the source, when the engine can tell.
    pub received_secs_ago: Option<u64>,
    /// How often an idle source sends a heartbeat, when the engine can tell: changes more
    /// recent than this show the source lived a moment ago.
    pub heartbeat_secs: Option<u64>,
}

impl Upstream {
    /// The replica's own word that its source lives, with the evidence: connected to it
    /// now (receiving), or changes arrived from it within one heartbeat period.
    pub fn hears_source(&self) -> Option<String> {
        if self.receiving == LinkState::Running {
            return Some("connected to it and receiving (receiving: running)".into());
        }
        match (self.received_secs_ago, self.heartbeat_secs) {
            (Some(ago), Some(period)) if ago <= period => Some(format!(
                "not connected to it, but got changes from it {ago} s ago, within one heartbeat period ({period} s) (receiving: {})",
                self.receiving.as_str()
            )),
            _ => None,
        }
    }

    /// Why the replica's word is that it does not reach its source.
    pub fn lost_source(&self) -> String {
        let mut text = format!("receiving: {}", self.receiving.as_str());
        if let Some(ago) = self.received_secs_ago {
            text.push_str(&format!(", last changes {ago} s ago"));
        }
        if let Some(error) = &self.error {
            text.push_str(&format!(", error: {}", short(error)));
        }
        text
    }
}

/// Whether the old primary lives, from what the operator saw of it and what its replicas
/// say: the verdict `recover promote` acts on, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    /// Replicas that still hear it, with the evidence; any one means it lives.
    pub heard_by: Vec<(NodeName, String)>,
    /// One line per witness: the operator, then each replica.
    pub evidence: Vec<String>,
}

impl Liveness {
    pub fn alive(&self) -> bool {
        !self.heard_by.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    Running,
    /// Trying to (re)connect.
    Connecting,
    Stopped,
}

/// A node's role as status reports it (SPEC.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
    /// A Galera arbitrator (garbd): a member of the cluster without a database.
    Arbitrator,
    Unreachable,
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::Arbitrator => "arbitrator",
            Role::Unreachable => "unreachable",
            Role::Unknown => "unknown",
        }
    }
}

impl Observed {
    /// A node that could not be reached over SSH.
    pub fn unreachable(name: &NodeName, label: &str, why: &str) -> Observed {
        Observed {
            unreachable: Some(why.to_owned()),
            ..Observed::reached(name, label)
        }
    }

    /// A node reached over SSH, before anything is known of it.
    pub fn reached(name: &NodeName, label: &str) -> Observed {
        Observed {
            name: name.clone(),
            label: label.to_owned(),
            unreachable: None,
            member: false,
            seeded: false,
            db: None,
            problem: None,
            detail: None,
        }
    }

    pub fn answers(&self) -> bool {
        self.db.is_some()
    }

    pub fn upstream(&self) -> Option<&Upstream> {
        self.db.as_ref().and_then(|db| db.upstream.as_ref())
    }

    /// Answers and replicates from nowhere: a primary, fenced or not.
    pub fn primary_like(&self) -> bool {
        self.db.as_ref().is_some_and(|db| db.upstream.is_none())
    }

    /// Takes writes and replicates from nowhere.
    pub fn writable_primary(&self) -> bool {
        self.db
            .as_ref()
            .is_some_and(|db| db.writable && db.upstream.is_none())
    }

    /// Answers, replicates from nowhere, and is read-only.
    pub fn fenced(&self) -> bool {
        self.db
            .as_ref()
            .is_some_and(|db| !db.writable && db.upstream.is_none())
    }

    pub fn role(&self) -> Role {
        match (&self.unreachable, &self.db) {
            (Some(_), _) => Role::Unreachable,
            (None, None) => Role::Unknown,
            (None, Some(db)) if db.upstream.is_some() => Role::Replica,
            (None, Some(_)) => Role::Primary,
        }
    }

    /// The engine's reading of the node, if it is of type `T`.
    pub fn detail<T: 'static>(&self) -> Option<&T> {
        self.detail.as_ref().and_then(|d| d.downcast_ref::<T>())
    }

    /// One line for the tables that refusals print.
    pub fn describe(&self) -> String {
        if let Some(why) = &self.unreachable {
            return format!("cannot be reached from here ({})", short(why));
        }
        let Some(db) = &self.db else {
            return match &self.problem {
                Some(problem) => format!("the database does not answer ({})", short(problem)),
                None => "the database does not answer".into(),
            };
        };
        let role = match &db.upstream {
            Some(up) => format!(
                "replica of {} (receiving: {}, applying: {})",
                up.node
                    .as_ref()
                    .map_or_else(|| format!("{}:{}", up.address, up.port), |n| n.to_string()),
                up.receiving.as_str(),
                up.applying.as_str()
            ),
            None => "replicates from nowhere".into(),
        };
        format!(
            "answers; {role}; {}; at {}{}",
            if db.writable { "WRITABLE" } else { "read-only" },
            if db.position.is_empty() {
                "(no position)"
            } else {
                &db.position
            },
            if self.member {
                ""
            } else {
                "; not set up by ha-setup yet"
            }
        )
    }
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Running => "running",
            LinkState::Connecting => "connecting",
            LinkState::Stopped => "stopped",
        }
    }
}

fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(160).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// Every node of the config as seen, in config order.
#[derive(Debug, Clone)]
pub struct Topology {
    pub nodes: Vec<Observed>,
    /// The shape the config asks for: one primary and its replicas, or two writable nodes
    /// that replicate from each other.
    pub kind: crate::config::Topology,
}

impl Topology {
    /// Resolves each replica's source address to a node of the config.
    pub fn new(mut nodes: Vec<Observed>, config: &Config) -> Topology {
        for observed in &mut nodes {
            resolve(observed, config);
        }
        Topology {
            nodes,
            kind: config.topology,
        }
    }

    /// Two writable nodes, each replicating from the other (`topology = "primary-primary"`).
    pub fn two_writers(&self) -> bool {
        self.kind == crate::config::Topology::PrimaryPrimary
    }

    /// In a pair of two writers, the other node.
    pub fn peer(&self, name: &NodeName) -> Option<&NodeName> {
        match &self.nodes[..] {
            [a, b] if &a.name == name => Some(&b.name),
            [a, b] if &b.name == name => Some(&a.name),
            _ => None,
        }
    }

    /// A node's role as status reports it. With two writers every node whose database
    /// answers is a primary (its replication from the other node does not make it a
    /// replica); `read_only` says whether it takes writes now.
    pub fn role(&self, name: &NodeName) -> Role {
        let observed = self.get(name);
        match observed.role() {
            Role::Replica if self.two_writers() => Role::Primary,
            role => role,
        }
    }

    pub fn get(&self, name: &NodeName) -> &Observed {
        self.nodes
            .iter()
            .find(|n| &n.name == name)
            .unwrap_or_else(|| panic!("no node {name} was observed"))
    }

    /// The node a node replicates from, when it is one of the config's.
    pub fn source_of(&self, name: &NodeName) -> Option<&NodeName> {
        self.get(name).upstream().and_then(|up| up.node.as_ref())
    }

    /// Every node that replicates, from wherever.
    pub fn replicas(&self) -> Vec<NodeName> {
        self.nodes
            .iter()
            .filter(|n| n.upstream().is_some())
            .map(|n| n.name.clone())
            .collect()
    }

    /// The nodes that replicate from `name`.
    pub fn replicas_of(&self, name: &NodeName) -> Vec<NodeName> {
        self.nodes
            .iter()
            .filter(|n| n.upstream().and_then(|up| up.node.as_ref()) == Some(name))
            .map(|n| n.name.clone())
            .collect()
    }

    /// Nodes that count as part of the cluster: set up by ha-setup, or a source of one.
    fn in_cluster(&self, observed: &Observed) -> bool {
        observed.member
            || observed.upstream().is_some()
            || !self.replicas_of(&observed.name).is_empty()
    }

    /// No node was set up by ha-setup yet and none replicates: before the first init, when
    /// the config's starting node is the primary by definition.
    pub fn untouched(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| !n.member && n.upstream().is_none())
    }

    /// The writable primaries of the cluster (a node never set up by ha-setup that no one
    /// replicates from is not one yet).
    pub fn writable(&self) -> Vec<NodeName> {
        self.nodes
            .iter()
            .filter(|n| n.writable_primary() && self.in_cluster(n))
            .map(|n| n.name.clone())
            .collect()
    }

    /// The one node that takes writes, if exactly one does.
    pub fn primary(&self) -> Option<NodeName> {
        match &self.writable()[..] {
            [one] => Some(one.clone()),
            _ => None,
        }
    }

    /// The node that is provably the primary now: the one writable primary, else the one
    /// node every replica replicates from (fenced, down or unreachable), else none.
    pub fn provable_primary(&self) -> Option<NodeName> {
        if let Some(primary) = self.primary() {
            return Some(primary);
        }
        if !self.writable().is_empty() {
            return None;
        }
        let mut sources: Vec<&NodeName> = self
            .nodes
            .iter()
            .filter_map(|n| n.upstream().and_then(|up| up.node.as_ref()))
            .collect();
        sources.sort();
        sources.dedup();
        match sources[..] {
            [one] if self.get(one).upstream().is_none() => Some(one.clone()),
            _ => None,
        }
    }

    /// What makes this none of the known shapes: every changing operation refuses while
    /// there is any, and status shows them.
    pub fn problems(&self) -> Vec<String> {
        if self.two_writers() {
            return self.pair_problems();
        }
        let mut found = Vec::new();
        let writable = self.writable();
        if writable.len() > 1 {
            found.push(format!(
                "{} all take writes (split brain): ha-setup will not choose between them. Decide which data is right, \
                 fence the others, then re-seed them with `ha-setup recover rebuild NODE`",
                and_list(&writable)
            ));
        }
        for observed in &self.nodes {
            let Some(up) = observed.upstream() else {
                continue;
            };
            let name = &observed.name;
            match &up.node {
                None => found.push(format!(
                    "{name} replicates from {}:{}, which is none of the config's nodes",
                    up.address, up.port
                )),
                Some(source) if source == name => {
                    found.push(format!("{name} replicates from itself"))
                }
                Some(source) => {
                    if let Some(next) = self.source_of(source) {
                        found.push(format!(
                            "{name} replicates from {source}, which itself replicates from {next}: \
                             ha-setup keeps one primary and its direct replicas"
                        ));
                    }
                }
            }
            if observed.db.as_ref().is_some_and(|db| db.writable) {
                found.push(format!(
                    "{name} replicates and takes writes too: a replica must be read-only"
                ));
            }
        }
        let mut sources: Vec<&NodeName> = self
            .nodes
            .iter()
            .filter_map(|n| n.upstream().and_then(|up| up.node.as_ref()))
            .collect();
        sources.sort();
        sources.dedup();
        if sources.len() > 1 && found.is_empty() {
            found.push(format!(
                "the replicas follow different sources ({}): ha-setup keeps one primary",
                sources
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        found
    }

    /// With two writers, both nodes take writes and each replicates from the other: what is
    /// wrong is only a node that replicates from one that is not its peer.
    fn pair_problems(&self) -> Vec<String> {
        let mut found = Vec::new();
        for observed in &self.nodes {
            let Some(up) = observed.upstream() else {
                continue;
            };
            let name = &observed.name;
            match &up.node {
                None => found.push(format!(
                    "{name} replicates from {}:{}, which is none of the config's nodes",
                    up.address, up.port
                )),
                Some(source) if source == name => {
                    found.push(format!("{name} replicates from itself"))
                }
                Some(_) => {}
            }
        }
        found
    }

    /// Refuses (exit 3) while the shape is not a known one.
    pub fn refuse_problems(&self, operation: &str) -> anyhow::Result<()> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(crate::error::Exit::refused(format!(
            "refusing to {operation}: the cluster is in none of the shapes ha-setup knows:\n  - {}{}",
            problems.join("\n  - "),
            self.table()
        ))
        .into())
    }

    /// Every node with what it answered, for refusals.
    pub fn table(&self) -> String {
        let width = self
            .nodes
            .iter()
            .map(|n| n.label.chars().count())
            .max()
            .unwrap_or(0);
        let mut text = String::from("\nWhat each node answered:");
        for observed in &self.nodes {
            text.push_str(&format!(
                "\n  {:<width$}  {}",
                observed.label,
                observed.describe()
            ));
        }
        text
    }

    /// Whether `source`, whose database this machine does not reach, lives: each of its
    /// replicas that answers is a witness. Connected to it is alive; when this machine
    /// does not reach its host at all, changes within a heartbeat period count too (when
    /// its host answers that the database does not, a closed connection is its end).
    pub fn liveness(&self, source: &NodeName) -> Liveness {
        let seen = self.get(source);
        let from_here = match (&seen.unreachable, &seen.db) {
            (Some(why), _) => format!("cannot be reached from here ({})", short(why)),
            (None, None) => format!(
                "its host answers, its database does not ({})",
                seen.problem.as_deref().map_or("no answer".into(), short)
            ),
            (None, Some(db)) if db.writable => "answers, and takes writes".into(),
            (None, Some(_)) => "answers, read-only".into(),
        };
        let mut liveness = Liveness {
            heard_by: Vec::new(),
            evidence: vec![format!("this machine: {source} {from_here}")],
        };
        for replica in self.replicas_of(source) {
            let Some(up) = self.get(&replica).upstream() else {
                continue;
            };
            let heard = match up.hears_source() {
                Some(_) if up.receiving != LinkState::Running && seen.unreachable.is_none() => None,
                heard => heard,
            };
            match heard {
                Some(why) => {
                    liveness
                        .evidence
                        .push(format!("{replica}: hears {source}: {why}"));
                    liveness.heard_by.push((replica, why));
                }
                None => liveness.evidence.push(format!(
                    "{replica}: does not reach {source} ({})",
                    up.lost_source()
                )),
            }
        }
        for observed in &self.nodes {
            let follows = observed.upstream().is_some();
            if !follows && observed.name != *source && !observed.answers() {
                liveness.evidence.push(format!(
                    "{}: cannot say ({})",
                    observed.name,
                    observed.describe()
                ));
            }
        }
        liveness
    }

    /// The most advanced of `candidates` by the engine's order; None when two of them
    /// cannot be ordered (their histories diverged).
    pub fn most_advanced(
        &self,
        candidates: &[NodeName],
        compare: impl Fn(&Observed, &Observed) -> Option<Ordering>,
    ) -> Result<NodeName, (NodeName, NodeName)> {
        let mut best = candidates.first().expect("at least one candidate").clone();
        for other in &candidates[1..] {
            match compare(self.get(other), self.get(&best)) {
                Some(Ordering::Greater) => best = other.clone(),
                Some(_) => {}
                None => return Err((best, other.clone())),
            }
        }
        Ok(best)
    }
}

/// Why an operation does not apply to two writable nodes, if it does not: no state of the
/// servers would change the answer, so it is said before any host is touched (usage, exit 2).
pub fn two_writers_refusal(operation: &str) -> Option<&'static str> {
    match operation {
        "recover-promote" => Some(
            "there is nothing to promote with topology = \"primary-primary\": both nodes take writes. \
             If one node is lost, the other keeps serving: point the application at it. When the lost node is back, \
             `ha-setup recover rejoin` reconnects it; a node that restarted is read-only until `ha-setup recover unfence` \
             (with --force when the other node is gone for good).",
        ),
        "switchover" => Some(
            "there is no role to swap with topology = \"primary-primary\": both nodes take writes. \
             To move the application to the other node, point it there (`ha-setup status` shows both links alive); \
             a node that restarted is read-only until `ha-setup recover unfence`.",
        ),
        _ => None,
    }
}

/// `a, b and c`.
pub fn and_list(names: &[NodeName]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!(
            "{} and {last}",
            rest.iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            "engine = \"mariadb\"\n\
             [nodes.a]\nhost = \"10.0.0.1\"\nrole = \"primary\"\n\
             [nodes.b]\nhost = \"10.0.0.2\"\n\
             [nodes.c]\nhost = \"10.0.0.3\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    fn node(name: &str, writable: bool, source: Option<&str>) -> Observed {
        Observed {
            name: NodeName::new(name),
            label: name.to_owned(),
            unreachable: None,
            member: true,
            seeded: false,
            db: Some(DbState {
                version: "10.11".into(),
                writable,
                position: String::new(),
                upstream: source.map(|address| Upstream {
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
            problem: None,
            detail: None,
        }
    }

    #[test]
    fn a_primary_and_two_replicas() {
        let topology = Topology::new(
            vec![
                node("a", true, None),
                node("b", false, Some("10.0.0.1")),
                node("c", false, Some("10.0.0.1")),
            ],
            &config(),
        );
        assert!(topology.problems().is_empty());
        assert_eq!(topology.primary(), Some(NodeName::new("a")));
        assert_eq!(
            topology.replicas_of(&NodeName::new("a")),
            [NodeName::new("b"), NodeName::new("c")]
        );
    }

    #[test]
    fn roles_follow_the_servers_not_the_names() {
        // After a switchover: b is the primary, a and c its replicas.
        let topology = Topology::new(
            vec![
                node("a", false, Some("10.0.0.2")),
                node("b", true, None),
                node("c", false, Some("10.0.0.2")),
            ],
            &config(),
        );
        assert_eq!(topology.primary(), Some(NodeName::new("b")));
        // Restarted, every node read-only: b is still provably the primary.
        let fenced = Topology::new(
            vec![
                node("a", false, Some("10.0.0.2")),
                node("b", false, None),
                node("c", false, Some("10.0.0.2")),
            ],
            &config(),
        );
        assert_eq!(fenced.primary(), None);
        assert_eq!(fenced.provable_primary(), Some(NodeName::new("b")));
        // No node replicates and none takes writes: nothing is provable.
        let lost = Topology::new(
            vec![node("a", false, None), node("b", false, None)],
            &config(),
        );
        assert_eq!(lost.provable_primary(), None);
    }

    #[test]
    fn unknown_shapes_are_problems() {
        let split = Topology::new(
            vec![node("a", true, None), node("b", true, None)],
            &config(),
        );
        assert!(
            split.problems()[0].contains("split brain"),
            "{:?}",
            split.problems()
        );
        let chain = Topology::new(
            vec![
                node("a", true, None),
                node("b", false, Some("10.0.0.1")),
                node("c", false, Some("10.0.0.2")),
            ],
            &config(),
        );
        assert!(chain.problems()[0].contains("itself replicates"));
        let ring = Topology::new(
            vec![
                node("a", false, Some("10.0.0.2")),
                node("b", false, Some("10.0.0.1")),
            ],
            &config(),
        );
        assert_eq!(ring.problems().len(), 2);
        let stranger = Topology::new(
            vec![node("a", true, None), node("b", false, Some("10.9.9.9"))],
            &config(),
        );
        assert!(stranger.problems()[0].contains("none of the config's nodes"));
        // A fresh, writable node that was never set up is not a second primary.
        let mut fresh = node("b", true, None);
        fresh.member = false;
        let first_init = Topology::new(vec![node("a", true, None), fresh], &config());
        assert!(first_init.problems().is_empty());
        assert_eq!(first_init.primary(), Some(NodeName::new("a")));
    }
}
