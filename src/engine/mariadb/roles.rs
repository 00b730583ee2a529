//! Which node is primary *now*: found on the live servers, never taken from the config's
//! names, so every command works after a promotion or switchover without editing files.

use super::facts::{self, Replica, Server};
use crate::plan::{Ctx, NodeName};

/// One node as seen right now.
#[derive(Debug, Clone)]
pub struct Seen {
    pub name: NodeName,
    pub label: String,
    /// Why the node could not be read (SSH or the database), if it could not.
    pub problem: Option<String>,
    pub server: Option<Server>,
    pub replica: Option<Replica>,
}

impl Seen {
    pub fn answers(&self) -> bool {
        self.server.is_some()
    }

    /// Takes writes: answers, replicates from nowhere, and is not read-only.
    pub fn writable_primary(&self) -> bool {
        self.server.as_ref().is_some_and(|s| !s.read_only) && self.replica.is_none()
    }

    /// Answers and replicates from nowhere (a primary, fenced or not).
    pub fn primary_like(&self) -> bool {
        self.answers() && self.replica.is_none()
    }

    /// A line for precondition tables.
    pub fn describe(&self) -> String {
        match (&self.server, &self.problem) {
            (None, Some(problem)) => format!("does not answer ({problem})"),
            (None, None) => "does not answer".into(),
            (Some(server), _) => {
                let role = match &self.replica {
                    Some(r) => format!("replica of {}:{}", r.master_host, r.master_port),
                    None => "replicates from nowhere".into(),
                };
                format!(
                    "answers; {role}; {}; GTID {}",
                    if server.read_only {
                        "read-only"
                    } else {
                        "WRITABLE"
                    },
                    if server.gtid_current_pos.is_empty() {
                        "(none)"
                    } else {
                        &server.gtid_current_pos
                    }
                )
            }
        }
    }
}

pub fn see(cx: &mut Ctx<'_>, name: NodeName) -> Seen {
    let host = cx.host(name);
    let label = host.label().to_owned();
    let (server, replica, problem) = match facts::state(host) {
        Ok((server, replica)) => (Some(server), replica, None),
        Err(err) => {
            let text = format!("{err:#}");
            let short = if text.contains("Can't connect to local server") {
                "MariaDB is not running".to_owned()
            } else {
                text.chars().take(200).collect()
            };
            (None, None, Some(short))
        }
    };
    Seen {
        name,
        label,
        problem,
        server,
        replica,
    }
}

pub fn other(name: NodeName) -> NodeName {
    match name {
        NodeName::Primary => NodeName::Secondary,
        NodeName::Secondary => NodeName::Primary,
    }
}

/// The node that replicates from the other, if exactly one does.
pub fn replica(a: &Seen, b: &Seen) -> Option<NodeName> {
    match (&a.replica, &b.replica) {
        (Some(_), None) => Some(a.name),
        (None, Some(_)) => Some(b.name),
        _ => None,
    }
}
