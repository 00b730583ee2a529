//! An operation is a plan: named steps, each with a read-only check that says whether the
//! step is done and, if not, the actions it would take. `--dry-run`/`plan` print those
//! actions; a real run executes exactly them (runner.rs), so the plan shown is the plan run.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, Node};
use crate::engine::Engine;
use crate::host::{Cmd, FileMode, Host, HostExt};
use crate::node::Hosts;
use crate::secret::Secret;
use crate::topology::{Observed, Topology};
use crate::ui::Ui;

pub use crate::node::NodeName;

/// Where in a command's input a secret goes: `SECRET_MARK` is replaced by it only when the
/// action runs, so plans, logs and errors show the mark.
pub const SECRET_MARK: &str = "<secret>";

/// What a command gets on its stdin.
#[derive(Debug, Clone)]
pub enum Input {
    None,
    /// Text shown in plans as is (SQL, for instance).
    Text(String),
    /// Text with [`SECRET_MARK`] standing for the secret.
    WithSecret(String, Secret),
}

impl Input {
    /// The bytes to send, the secret in place.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Input::None => Vec::new(),
            Input::Text(text) => text.clone().into_bytes(),
            Input::WithSecret(text, secret) => {
                text.replace(SECRET_MARK, secret.expose()).into_bytes()
            }
        }
    }

    /// What a person may see.
    pub fn shown(&self) -> Option<&str> {
        match self {
            Input::None => None,
            Input::Text(text) | Input::WithSecret(text, _) => Some(text),
        }
    }
}

/// One thing a step does to a host.
#[derive(Debug, Clone)]
pub enum Action {
    /// Runs a command; it must succeed.
    Run {
        on: NodeName,
        why: String,
        cmd: Cmd,
        input: Input,
    },
    /// Writes a small file atomically; a different file already there is copied to
    /// `<path>.ha-setup-bak-<time>` first.
    Write {
        on: NodeName,
        why: String,
        path: String,
        contents: Input,
        mode: FileMode,
    },
    /// Copies a small, non-secret file (a CA certificate) from one node to the other,
    /// read when the action runs, so it may be made by an earlier action.
    Copy {
        why: String,
        from: NodeName,
        path: String,
        to: NodeName,
        to_path: String,
        mode: FileMode,
    },
    /// Streams a local file (a bundle) into a command's stdin on a node.
    Send {
        why: String,
        local: PathBuf,
        to: NodeName,
        receive: Cmd,
    },
    /// Places this ha-setup binary on a host, checked by SHA-256.
    PlaceTool {
        on: NodeName,
        local: PathBuf,
        remote: String,
    },
    /// Streams one command's stdout into another's stdin, host to host, through this
    /// machine: the bundle going from primary to secondary.
    Relay {
        why: String,
        from: NodeName,
        send: Cmd,
        to: NodeName,
        receive: Cmd,
        /// Expected size, for progress; 0 when unknown.
        bytes: u64,
    },
    /// Work the engine does itself, reading and acting in turn (a switchover must read
    /// the primary's position after fencing it, then act on the replica with it). Returns
    /// lines for the operator.
    Call {
        on: Vec<NodeName>,
        why: String,
        call: Call,
    },
}

/// The engine's own work for [`Action::Call`]: it gets the context and returns lines for
/// the operator.
pub type CallFn = dyn Fn(&mut Ctx<'_>) -> anyhow::Result<Vec<String>> + Send + Sync;

#[derive(Clone)]
pub struct Call(pub Arc<CallFn>);

impl Call {
    pub fn new(
        call: impl Fn(&mut Ctx<'_>) -> anyhow::Result<Vec<String>> + Send + Sync + 'static,
    ) -> Call {
        Call(Arc::new(call))
    }
}

impl Call {
    /// Runs one script on `on`, as one action on the host (so its own undo runs there,
    /// connection or not), and hands its output lines to the operator, each naming the node.
    pub fn script(on: NodeName, cmd: Cmd) -> Call {
        Call::new(move |cx| {
            let host = cx.host(&on);
            let label = host.label().to_owned();
            tracing::info!("[{label}] {}", cmd.script);
            let output = host.run(&cmd)?;
            if !output.success() {
                anyhow::bail!("on {label}: {}", output.stderr.trim());
            }
            Ok(output
                .stdout_text()
                .lines()
                .map(|line| format!("{on}: {line}"))
                .collect())
        })
    }
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Call(..)")
    }
}

impl Action {
    /// The action as a plan shows it: `[primary] write /etc/…` with details indented.
    pub fn describe(&self, verbose: bool) -> String {
        let mut text = match self {
            Action::Run { on, why, .. } => format!("[{on}] {why}"),
            Action::Write { on, why, path, .. } => format!("[{on}] {why}: write {path}"),
            Action::Copy {
                why,
                from,
                path,
                to,
                to_path,
                ..
            } => format!("[{from} → {to}] {why}: copy {path} to {to_path}"),
            Action::PlaceTool { on, remote, .. } => {
                format!("[{on}] place this ha-setup binary at {remote} (checked by SHA-256)")
            }
            Action::Relay { why, from, to, .. } => format!("[{from} → {to}] {why}"),
            Action::Send { why, local, to, .. } => {
                format!("[this machine → {to}] {why}: {}", local.display())
            }
            Action::Call { on, why, .. } => format!(
                "[{}] {why}",
                on.iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
        };
        if verbose {
            let detail = match self {
                Action::Run { cmd, input, .. } => {
                    let mut detail = cmd.script.clone();
                    if let Some(shown) = input.shown() {
                        detail.push_str("\n<<<\n");
                        detail.push_str(shown.trim_end());
                    }
                    Some(detail)
                }
                Action::Write { contents, .. } => contents.shown().map(str::to_owned),
                Action::Relay { send, receive, .. } => Some(format!(
                    "send:    {}\nreceive: {}",
                    send.script, receive.script
                )),
                _ => None,
            };
            if let Some(detail) = detail {
                for line in detail.lines() {
                    text.push_str("\n      ");
                    text.push_str(line);
                }
            }
        }
        text
    }
}

/// What a step's check found.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Nothing to do, and why (shown to the user).
    Done(String),
    /// The actions that would bring the step about.
    Todo(Vec<Action>),
}

/// One line of a check report (preflight): what was checked and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub ok: bool,
    /// Not a failure, but something to know (the run goes on).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    pub what: String,
    /// For a failed check: what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(what: impl Into<String>) -> Self {
        Finding {
            ok: true,
            warning: false,
            what: what.into(),
            fix: None,
        }
    }

    /// Something to know that stops nothing, with what to do about it.
    pub fn warning(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            ok: true,
            warning: true,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn failed(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            ok: false,
            warning: false,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Who is who for an operation, resolved from the observed topology before the plan runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    /// The node whose data the others follow: the primary now (init, rebuild, rejoin,
    /// switchover's starting point), or the node being promoted (promote), or the node
    /// being restored.
    pub source: NodeName,
    /// The nodes the operation works on besides the source.
    pub targets: Vec<NodeName>,
    /// The primary before the operation, when it changes hands (promote, switchover).
    pub old: Option<NodeName>,
    /// The targets get a fresh copy of the source's data even where they replicate from
    /// it already (rebuild).
    pub fresh_copy: bool,
}

impl Roles {
    pub fn new(source: NodeName, targets: Vec<NodeName>) -> Roles {
        Roles {
            source,
            targets,
            old: None,
            fresh_copy: false,
        }
    }
}

/// The hosts, the roles and the settings a step works with.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub engine: &'a dyn Engine,
    pub hosts: &'a mut Hosts,
    pub roles: Roles,
    pub ui: &'a Ui,
    /// A dry run: checks run, nothing changes.
    pub dry_run: bool,
    /// In a dry run, an earlier step has actions left, so this step sees the hosts as
    /// they are *before* that step: it must describe what it would do afterwards instead
    /// of judging the current state.
    pub after_pending: bool,
    /// Findings of checks (preflight), gathered for the runner to print.
    pub findings: Vec<Finding>,
    /// What each node showed, read once and kept until an action changes that node.
    seen: HashMap<NodeName, Observed>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        config: &'a Config,
        engine: &'a dyn Engine,
        hosts: &'a mut Hosts,
        roles: Roles,
        ui: &'a Ui,
        dry_run: bool,
    ) -> Self {
        Ctx {
            config,
            engine,
            hosts,
            roles,
            ui,
            dry_run,
            after_pending: false,
            findings: Vec::new(),
            seen: HashMap::new(),
        }
    }

    pub fn host(&mut self, name: &NodeName) -> &mut dyn Host {
        self.hosts.host(name)
    }

    /// Two different nodes' hosts at once.
    pub fn pair(&mut self, a: &NodeName, b: &NodeName) -> (&mut dyn Host, &mut dyn Host) {
        self.hosts.pair(a, b)
    }

    pub fn node(&self, name: &NodeName) -> &Node {
        self.config.node(name)
    }

    /// The source's host (see [`Roles::source`]).
    pub fn source(&mut self) -> &mut dyn Host {
        let name = self.roles.source.clone();
        self.hosts.host(&name)
    }

    /// What a node shows now: read once, then kept until an action changes the node.
    pub fn observe(&mut self, name: &NodeName) -> Observed {
        if let Some(seen) = self.seen.get(name) {
            return seen.clone();
        }
        let seen = crate::topology::observe_one(self.engine, self.config, self.hosts, name);
        self.seen.insert(name.clone(), seen.clone());
        seen
    }

    /// What a node shows right now, read again.
    pub fn observe_fresh(&mut self, name: &NodeName) -> Observed {
        self.forget(name);
        self.observe(name)
    }

    /// Every node, each read once (in parallel when none is cached).
    pub fn topology(&mut self) -> Topology {
        if self.seen.len() < self.config.nodes.len() {
            let all = crate::topology::observe(self.engine, self.config, self.hosts);
            for observed in &all.nodes {
                self.seen
                    .entry(observed.name.clone())
                    .or_insert_with(|| observed.clone());
            }
        }
        let nodes = self
            .config
            .nodes
            .keys()
            .map(|name| self.seen[name].clone())
            .collect();
        Topology::new(nodes, self.config)
    }

    /// An action changed the node: what was seen of it no longer holds.
    pub fn forget(&mut self, name: &NodeName) {
        self.seen.remove(name);
    }

    /// Whether the step should describe what it would do rather than look at the hosts.
    pub fn predicting(&self) -> bool {
        self.dry_run && self.after_pending
    }
}

/// A named step of a plan.
pub trait Step {
    /// The stable name (`prepare-primary`), used in the journal and in messages.
    fn name(&self) -> &'static str;

    /// One line on what the step is for, for plans.
    fn purpose(&self) -> &'static str;

    /// Read-only: is the step done, and if not, what would it do? Findings that fail go
    /// into `cx.findings` and stop the run before anything changes.
    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict>;
}

/// An operation's ordered steps.
pub struct Plan {
    pub operation: &'static str,
    pub steps: Vec<Box<dyn Step>>,
}

impl Plan {
    /// A plan that refuses before anything is read or changed, saying why (usage, exit 2):
    /// an operation or option the engine cannot do, rather than half of it.
    pub fn refused(operation: &'static str, why: String) -> Plan {
        Plan {
            operation,
            steps: vec![Box::new(Refuse(why))],
        }
    }
}

struct Refuse(String);

impl Step for Refuse {
    fn name(&self) -> &'static str {
        "refuse"
    }

    fn purpose(&self) -> &'static str {
        "an operation this engine cannot do"
    }

    fn check(&self, _cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        Err(crate::error::Exit::usage(self.0.clone()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_show_as_the_mark_and_go_in_only_when_sent() {
        let input = Input::WithSecret(
            format!("ALTER USER x IDENTIFIED BY '{SECRET_MARK}';"),
            Secret::new("s3cr3t"),
        );
        assert_eq!(
            input.shown(),
            Some("ALTER USER x IDENTIFIED BY '<secret>';")
        );
        assert_eq!(input.bytes(), b"ALTER USER x IDENTIFIED BY 's3cr3t';");
        let action = Action::Run {
            on: NodeName::new("primary"),
            why: "create the replication user".into(),
            cmd: Cmd::new("mariadb"),
            input,
        };
        let shown = action.describe(true);
        assert!(
            shown.contains("<secret>") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        assert!(format!("{action:?}").contains("<secret>"));
    }
}
