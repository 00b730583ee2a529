//! A node is a name: `primary`/`secondary` in the config's two-node form, or the NAME of a
//! `[nodes.NAME]` table. What a node *is* right now (primary, replica of whom, fenced,
//! unreachable) is found on the servers (topology.rs), never taken from the name.
//!
//! This module also opens the nodes' hosts: one connection per node per run, all opened in
//! parallel (each SSH handshake is a few round trips), a node that cannot be reached
//! standing in as [`Unreachable`] so operations that must go on without it can.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Node};
use crate::host::{Host, HostError, LocalHost, SshHost, SshTarget};
use crate::prompt::Prompter;

/// A node's name as the config gives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeName(String);

impl NodeName {
    pub fn new(name: impl Into<String>) -> Self {
        NodeName(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeName {
    fn from(name: &str) -> Self {
        NodeName::new(name)
    }
}

/// Opens one node's host.
pub fn connect(
    name: &NodeName,
    node: &Node,
    config: &Config,
    prompter: &dyn Prompter,
) -> Result<Box<dyn Host>, HostError> {
    if node.is_local() {
        return Ok(Box::new(LocalHost::new(name.as_str())));
    }
    let target = SshTarget::resolve(name.as_str(), node, &config.ssh);
    Ok(Box::new(SshHost::connect(target, prompter)?))
}

/// A node that could not be reached, standing in for its host so that operations which
/// must go on without it (`recover promote`) see every command fail with the reason.
pub struct Unreachable {
    label: String,
    reason: String,
}

impl Host for Unreachable {
    fn label(&self) -> &str {
        &self.label
    }

    fn login_is_root(&self) -> bool {
        true
    }

    fn exec(
        &mut self,
        cmd: &crate::host::Cmd,
        _stdin: &mut (dyn std::io::Read + Send),
        _stdout: &mut (dyn std::io::Write + Send),
    ) -> Result<crate::host::Finished, HostError> {
        Err(HostError::Ssh {
            host: self.label.clone(),
            during: format!("running `{}`", cmd.summary()),
            detail: format!("the host could not be reached: {}", self.reason),
        })
    }
}

struct Entry {
    name: NodeName,
    host: Box<dyn Host>,
    /// Why the node could not be reached, when it could not.
    unreachable: Option<HostError>,
}

/// Every node of the config, connected (or standing in as unreachable), in config order.
pub struct Hosts {
    entries: Vec<Entry>,
}

impl Hosts {
    /// Connects to every node at once; a node that cannot be reached is recorded, not an
    /// error, so `status` and recovery can work with the rest.
    pub fn connect(config: &Config, prompter: &dyn Prompter) -> Hosts {
        let entries = std::thread::scope(|scope| {
            let handles: Vec<_> = config
                .nodes
                .iter()
                .map(|(name, node)| {
                    scope.spawn(move || (name.clone(), connect(name, node, config, prompter)))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    let (name, connected) = handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    match connected {
                        Ok(host) => Entry {
                            name,
                            host,
                            unreachable: None,
                        },
                        Err(err) => {
                            let node = &config.nodes[name.as_str()];
                            Entry {
                                host: Box::new(Unreachable {
                                    label: format!("{name} ({})", node.host),
                                    reason: err.to_string(),
                                }),
                                name,
                                unreachable: Some(err),
                            }
                        }
                    }
                })
                .collect()
        });
        Hosts { entries }
    }

    /// Fails on the first node that could not be reached: for operations that need every
    /// node (init).
    pub fn require_all(mut self, during: &str) -> anyhow::Result<Hosts> {
        for entry in &mut self.entries {
            if let Some(err) = entry.unreachable.take() {
                return Err(anyhow::Error::new(err)
                    .context(format!("{during}: cannot reach {}", entry.name)));
            }
        }
        Ok(self)
    }

    pub fn names(&self) -> Vec<NodeName> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }

    /// Why the node could not be reached over SSH, if it could not.
    pub fn unreachable(&self, name: &NodeName) -> Option<&HostError> {
        self.entry(name).unreachable.as_ref()
    }

    fn entry(&self, name: &NodeName) -> &Entry {
        self.entries
            .iter()
            .find(|e| &e.name == name)
            .unwrap_or_else(|| panic!("no node {name} in the config"))
    }

    fn index(&self, name: &NodeName) -> usize {
        self.entries
            .iter()
            .position(|e| &e.name == name)
            .unwrap_or_else(|| panic!("no node {name} in the config"))
    }

    pub fn host(&mut self, name: &NodeName) -> &mut dyn Host {
        let index = self.index(name);
        self.entries[index].host.as_mut()
    }

    /// Two different nodes' hosts at once.
    pub fn pair(&mut self, a: &NodeName, b: &NodeName) -> (&mut dyn Host, &mut dyn Host) {
        let (i, j) = (self.index(a), self.index(b));
        assert_ne!(i, j, "a pair needs two different nodes");
        let [first, second] = self
            .entries
            .get_disjoint_mut([i, j])
            .expect("two different indices");
        (first.host.as_mut(), second.host.as_mut())
    }

    /// One node's host and several others', for work that fans out from one node.
    pub fn one_and_many(
        &mut self,
        one: &NodeName,
        many: &[NodeName],
    ) -> (&mut dyn Host, Vec<&mut dyn Host>) {
        let mut first: Option<&mut dyn Host> = None;
        let mut rest: Vec<(usize, &mut dyn Host)> = Vec::new();
        for entry in self.entries.iter_mut() {
            if &entry.name == one {
                first = Some(entry.host.as_mut());
            } else if let Some(at) = many.iter().position(|n| n == &entry.name) {
                rest.push((at, entry.host.as_mut()));
            }
        }
        rest.sort_by_key(|(at, _)| *at);
        (
            first.unwrap_or_else(|| panic!("no node {one} in the config")),
            rest.into_iter().map(|(_, host)| host).collect(),
        )
    }

    /// Every node's host, with why it could not be reached when it could not.
    pub fn all_mut(&mut self) -> Vec<(NodeName, &mut dyn Host, Option<String>)> {
        let mut all: Vec<(NodeName, &mut dyn Host, Option<String>)> = Vec::new();
        for e in self.entries.iter_mut() {
            let why = e.unreachable.as_ref().map(|err| err.to_string());
            all.push((e.name.clone(), e.host.as_mut(), why));
        }
        all
    }

    /// Every reachable node's host, in name order: what the cluster lock is taken on.
    pub fn reachable_mut(&mut self) -> Vec<(&str, &mut dyn Host)> {
        let mut hosts: Vec<(&str, &mut dyn Host)> = Vec::new();
        for e in self.entries.iter_mut().filter(|e| e.unreachable.is_none()) {
            hosts.push((e.name.as_str(), e.host.as_mut()));
        }
        hosts.sort_by(|a, b| a.0.cmp(b.0));
        hosts
    }
}
