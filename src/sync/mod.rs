//! `[[sync_files]]`: application files (an encryption key, a pepper, signing keys) kept
//! identical on every node, bytes, mode and owner, from the primary's copy. Nothing here is
//! about a database: the engine only tells who the primary is.
//!
//! - Reading: one round trip per node (`describe.rs`) describes every path, entry by
//!   entry, without its contents; a digest of that description tells same from different.
//! - Copying, for each node whose copy differs: an empty staging directory
//!   `PATH.ha-setup-new` (0700) beside the path, on the same file system
//!   (`scripts/stage.sh`); a tar stream from the primary into it, owners by name, node to
//!   node the way the bundle goes (`Action::Relay`: straight over SSH, or relayed through
//!   this machine); the copy described again where it landed and checked against the
//!   primary's digest; then what was there kept as `PATH.ha-setup-old-<UTC time>` and the
//!   copy renamed into place (`scripts/place.sh`). Identical copies are never touched.
//! - Bad input is refused before anything is copied, for every path at once: a path missing
//!   on the primary, a symbolic link, an owner without a name there, a directory, an owner
//!   or a group missing on a node, no room on a node.
//!
//! Contents travel only on the stream's stdin and stdout: never in an argument, a log
//! line, the journal, a plan or an error (errors name paths and what differs).

mod describe;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::bail;
use jiff::Timestamp;
use serde::Serialize;

pub use describe::{Entry, Kind, NodeFiles, Seen, State, differences, read};

use crate::config::Config;
use crate::host::{Cmd, HostExt, quote};
use crate::node::{Hosts, NodeName};
use crate::plan::{Action, Call, Ctx, Finding, Input, Plan, Step, Verdict};
use crate::runner::human_bytes;
use crate::topology::{Topology, and_list};

const STAGE_SH: &str = include_str!("scripts/stage.sh");
const PLACE_SH: &str = include_str!("scripts/place.sh");

/// The suffix of the staging directory beside a path.
pub const STAGED: &str = ".ha-setup-new";
/// The suffix (before the time) of the copy a node held before it got the primary's.
pub const KEPT: &str = ".ha-setup-old-";

/// `ha-setup sync`: the one step.
pub fn plan() -> Plan {
    Plan {
        operation: "sync",
        steps: vec![Box::new(SyncFiles)],
    }
}

/// init's plan with the files in it: checked right after the preflight (a missing key is
/// found before the data is copied), copied once the link is proven.
pub fn add_to_init(plan: &mut Plan) {
    let at = plan
        .steps
        .iter()
        .position(|step| step.name() == "preflight")
        .map_or(0, |i| i + 1);
    plan.steps.insert(at, Box::new(CheckFiles));
    plan.steps.push(Box::new(SyncFiles));
}

/// The listed paths as written, without a trailing `/` or `.` parts.
pub fn paths(config: &Config) -> Vec<String> {
    config
        .sync_files
        .iter()
        .map(|file| {
            file.path
                .components()
                .collect::<std::path::PathBuf>()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// The node whose copies the others get: the primary the servers show (the one writable
/// node, else the one every replica follows, fenced or down), else the config's primary
/// before the first init or where two nodes take writes. None when nothing tells.
pub fn source(config: &Config, topology: &Topology) -> Option<(NodeName, Option<String>)> {
    if let Some(primary) = topology.primary() {
        return Some((primary, None));
    }
    if let Some(primary) = topology.provable_primary() {
        return Some((
            primary.clone(),
            Some(format!(
                "{primary} takes no writes now, but it is the primary its replicas follow: its copies are the ones kept"
            )),
        ));
    }
    let starting = config.starting_primary().clone();
    if topology.untouched() {
        return Some((starting, None));
    }
    if topology.writable().len() > 1 {
        return Some((
            starting.clone(),
            Some(format!(
                "{} take writes: the copies of {starting}, the config's primary, are the ones kept",
                and_list(&topology.writable())
            )),
        ));
    }
    None
}

/// What every node showed of every listed path.
pub struct Survey {
    pub paths: Vec<String>,
    pub source: NodeName,
    pub from: Result<NodeFiles, String>,
    pub nodes: Vec<(NodeName, Result<NodeFiles, String>)>,
}

/// Reads the source, then each target with the owner and group names the source's copies
/// carry (whether the target knows them): one round trip per node.
pub fn survey(
    hosts: &mut Hosts,
    paths: &[String],
    source: &NodeName,
    targets: &[NodeName],
) -> Survey {
    let mut read_node = |name: &NodeName, users: &[String], groups: &[String]| {
        if let Some(err) = hosts.unreachable(name) {
            return Err(format!("{name} cannot be reached from here: {err}"));
        }
        read(hosts.host(name), paths, users, groups).map_err(|err| format!("{err:#}"))
    };
    let from = read_node(source, &[], &[]);
    let (mut users, mut groups) = (BTreeSet::new(), BTreeSet::new());
    if let Ok(files) = &from {
        for entry in files
            .paths
            .iter()
            .filter_map(|p| p.state.entries())
            .flatten()
        {
            if entry.owner.named {
                users.insert(entry.owner.name.clone());
            }
            if entry.group.named {
                groups.insert(entry.group.name.clone());
            }
        }
    }
    let (users, groups): (Vec<String>, Vec<String>) =
        (users.into_iter().collect(), groups.into_iter().collect());
    let nodes = targets
        .iter()
        .map(|name| (name.clone(), read_node(name, &users, &groups)))
        .collect();
    Survey {
        paths: paths.to_vec(),
        source: source.clone(),
        from,
        nodes,
    }
}

/// One path across the nodes.
#[derive(Debug, Clone)]
pub struct Judged {
    pub path: String,
    /// What the source holds, when it is something ha-setup can copy.
    pub want: Option<State>,
    /// Why it cannot be copied, when it cannot: bad input on the source.
    pub refusals: Vec<Finding>,
    pub same: Vec<NodeName>,
    pub differ: Vec<(NodeName, Vec<String>)>,
    /// Nodes that could not be read, and why.
    pub unchecked: Vec<(NodeName, String)>,
    /// Nodes holding the staging directory an interrupted copy left.
    pub staged: Vec<NodeName>,
}

/// Compares every node's copy of each path with the source's.
pub fn judge(survey: &Survey) -> Vec<Judged> {
    let source = &survey.source;
    survey
        .paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let mut judged = Judged {
                path: path.clone(),
                want: None,
                refusals: Vec::new(),
                same: Vec::new(),
                differ: Vec::new(),
                unchecked: Vec::new(),
                staged: Vec::new(),
            };
            match &survey.from {
                Err(why) => judged.refusals.push(Finding::failed(
                    format!("{path}: {why}"),
                    format!("make {source} reachable, with root (or sudo) for its login user"),
                )),
                Ok(files) => {
                    let seen = &files.paths[i];
                    judged.refusals = refusals(path, source, &seen.state);
                    if seen.staged {
                        judged.staged.push(source.clone());
                    }
                    if judged.refusals.is_empty() {
                        judged.want = Some(seen.state.clone());
                    }
                }
            }
            for (name, files) in &survey.nodes {
                match files {
                    Err(why) => judged.unchecked.push((name.clone(), why.clone())),
                    Ok(files) => {
                        let seen = &files.paths[i];
                        if seen.staged {
                            judged.staged.push(name.clone());
                        }
                        let Some(want) = &judged.want else { continue };
                        if want.digest() == seen.state.digest() {
                            judged.same.push(name.clone());
                        } else {
                            judged
                                .differ
                                .push((name.clone(), differences(want, &seen.state)));
                        }
                    }
                }
            }
            judged
        })
        .collect()
}

/// Why the source's copy of `path` cannot be copied: each thing wrong, with its fix.
fn refusals(path: &str, source: &NodeName, state: &State) -> Vec<Finding> {
    let entries = match state {
        State::Missing { .. } => {
            return vec![Finding::failed(
                format!("{path} is missing on {source}, the node every other node copies from"),
                format!(
                    "create it on {source}, or take its [[sync_files]] entry out of the config"
                ),
            )];
        }
        State::Symlink => {
            return vec![Finding::failed(
                format!("{path} on {source} is a symbolic link"),
                "list the path it points to instead: ha-setup copies files and directories, never links",
            )];
        }
        State::Other => {
            return vec![Finding::failed(
                format!("{path} on {source} is neither a file nor a directory"),
                "list only files and directories under [[sync_files]]",
            )];
        }
        State::Present(entries) => entries,
    };
    let mut found = Vec::new();
    for entry in entries {
        let at = entry.at(path);
        if matches!(entry.kind, Kind::Symlink | Kind::Other) {
            found.push(Finding::failed(
                format!("{at} on {source} is a {}", entry.kind.word()),
                "only files and directories are copied: remove it, or list the files beside it one by one",
            ));
        }
        for (what, id) in [("user", &entry.owner), ("group", &entry.group)] {
            if !id.named {
                found.push(Finding::failed(
                    format!("{at} on {source} belongs to {what} id {}, which has no name there", id.name),
                    format!("give it a {what} with a name (chown): owners are copied by name, since ids differ between hosts"),
                ));
            }
        }
    }
    found
}

/// A copy to make: `path` from the source to `target`.
struct Copy {
    path: String,
    target: NodeName,
    want: State,
    differences: Vec<String>,
    /// The target holds something at the path now (it is kept aside).
    replaces: bool,
}

/// Reads every node and decides: the failed findings (bad input anywhere, each with its
/// fix), the copies to make, and what was judged.
fn assess(cx: &mut Ctx<'_>) -> anyhow::Result<(Vec<Judged>, Vec<Finding>, Vec<Copy>)> {
    let paths = paths(cx.config);
    let source = cx.roles.source.clone();
    let targets = cx.roles.targets.clone();
    let survey = survey(cx.hosts, &paths, &source, &targets);
    if let Err(why) = &survey.from {
        bail!("{why}");
    }
    let judged = judge(&survey);
    let mut failed: Vec<Finding> = judged.iter().flat_map(|j| j.refusals.clone()).collect();
    let mut copies = Vec::new();
    for (i, judged) in judged.iter().enumerate() {
        if let Some((_, why)) = judged.unchecked.first() {
            bail!("{why}");
        }
        let Some(want) = &judged.want else { continue };
        for (target, differences) in &judged.differ {
            let Some((_, Ok(files))) = survey.nodes.iter().find(|(n, _)| n == target) else {
                continue;
            };
            let before = failed.len();
            failed.extend(target_refusals(
                &judged.path,
                target,
                want,
                files,
                &files.paths[i].state,
            ));
            if failed.len() == before {
                failed.extend(room(cx, &judged.path, target, want)?);
            }
            copies.push(Copy {
                path: judged.path.clone(),
                target: target.clone(),
                want: want.clone(),
                differences: differences.clone(),
                replaces: !matches!(files.paths[i].state, State::Missing { .. }),
            });
        }
    }
    Ok((judged, failed, copies))
}

/// What keeps a target from taking the source's copy of `path`: its directory missing, an
/// owner or a group it does not know.
fn target_refusals(
    path: &str,
    target: &NodeName,
    want: &State,
    files: &NodeFiles,
    have: &State,
) -> Vec<Finding> {
    let mut found = Vec::new();
    if *have == (State::Missing { parent: false }) {
        let dir = parent(path);
        found.push(Finding::failed(
            format!("the directory {dir} of {path} does not exist on {target}"),
            format!("create it on {target} with the owner and mode the application expects (installing the application usually does), then run again"),
        ));
    }
    let mut users = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for entry in want.entries().unwrap_or_default() {
        users.insert(entry.owner.name.as_str());
        groups.insert(entry.group.name.as_str());
    }
    for (what, names, known) in [
        ("user", users, &files.users),
        ("group", groups, &files.groups),
    ] {
        for name in names {
            if known.get(name) == Some(&false) {
                found.push(Finding::failed(
                    format!("{path} belongs to the {what} {name}, which does not exist on {target}"),
                    format!("create the {what} {name} on {target} (installing the application usually does), then run again: owners are copied by name"),
                ));
            }
        }
    }
    found
}

/// Bytes the copy takes on disk, roughly: every file rounded up to a 4 KiB block, and a
/// block per directory.
fn needed(want: &State) -> u64 {
    const BLOCK: u64 = 4096;
    want.entries()
        .unwrap_or_default()
        .iter()
        .map(|e| e.size.div_ceil(BLOCK).max(1) * BLOCK)
        .sum()
}

/// No room on the target's file system for the copy (the copy kept aside stays, so none
/// is freed).
fn room(
    cx: &mut Ctx<'_>,
    path: &str,
    target: &NodeName,
    want: &State,
) -> anyhow::Result<Option<Finding>> {
    let need = needed(want);
    // The path itself, not its directory: room.sh also measures what it is given (du),
    // and a directory such as /etc is large. A missing path is measured at its directory.
    let room = crate::host::room::room(cx.host(target), path)?;
    Ok((room.free < need).then(|| {
        Finding::failed(
            format!(
                "no room for {path} on {target}: the copy needs {}, and {} ({}) has {} free",
                human_bytes(need),
                room.mount,
                room.device,
                human_bytes(room.free)
            ),
            format!("free space on {} on {target}, then run again", room.mount),
        )
    }))
}

fn parent(path: &str) -> String {
    Path::new(path)
        .parent()
        .map_or_else(|| "/".to_owned(), |p| p.to_string_lossy().into_owned())
}

fn name_of(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned())
}

/// init, right after the preflight: every listed path can be copied from the primary to
/// every node (read-only; the copy itself is the last step).
pub struct CheckFiles;

impl Step for CheckFiles {
    fn name(&self) -> &'static str {
        "check-files"
    }

    fn purpose(&self) -> &'static str {
        "the [[sync_files]] can be copied from the primary to every node"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        if cx.config.sync_files.is_empty() {
            return Ok(Verdict::Done("no [[sync_files]] in the config".into()));
        }
        let source = cx.roles.source.clone();
        let (judged, failed, _) = assess(cx)?;
        for judged in &judged {
            let Some(want) = &judged.want else { continue };
            let mut what = format!("{}: {} on {source}", judged.path, want.summary());
            if !judged.same.is_empty() {
                what.push_str(&format!("; the same on {}", and_list(&judged.same)));
            }
            if !judged.differ.is_empty() {
                let names: Vec<NodeName> = judged.differ.iter().map(|(n, _)| n.clone()).collect();
                what.push_str(&format!(
                    "; differs on {} (copied once the link is proven)",
                    and_list(&names)
                ));
            }
            cx.findings.push(Finding::ok(what));
        }
        let ready = failed.is_empty();
        cx.findings.extend(failed);
        Ok(Verdict::Done(if ready {
            "every listed path can be copied".into()
        } else {
            "nothing is copied until every listed path can be".into()
        }))
    }
}

/// Makes every listed path identical on every node, from the source's copy.
pub struct SyncFiles;

impl Step for SyncFiles {
    fn name(&self) -> &'static str {
        "sync-files"
    }

    fn purpose(&self) -> &'static str {
        "the [[sync_files]] identical on every node (bytes, mode, owner), from the primary's copy"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        if cx.config.sync_files.is_empty() {
            return Ok(Verdict::Done("no [[sync_files]] in the config".into()));
        }
        let source = cx.roles.source.clone();
        let (judged, failed, copies) = assess(cx)?;
        if !failed.is_empty() {
            cx.findings.extend(failed);
            return Ok(Verdict::Done(
                "nothing is copied until every listed path can be".into(),
            ));
        }
        let mut actions = Vec::new();
        for judged in &judged {
            for node in &judged.staged {
                if copies
                    .iter()
                    .any(|c| c.path == judged.path && &c.target == node)
                {
                    continue; // staging starts by emptying it
                }
                let stage = format!("{}{STAGED}", judged.path);
                actions.push(Action::Run {
                    on: node.clone(),
                    why: format!("remove {stage}, what an interrupted copy left"),
                    cmd: Cmd::new(format!("rm -rf -- {}", quote(&stage))).as_root(),
                    input: Input::None,
                });
            }
        }
        if !copies.is_empty() && !cx.predicting() {
            let mut everyone = vec![source.clone()];
            for copy in &copies {
                if !everyone.contains(&copy.target) {
                    everyone.push(copy.target.clone());
                }
            }
            actions.splice(0..0, crate::route::leftovers(cx, &everyone)?);
        }
        for copy in copies {
            actions.extend(copy_actions(&source, copy));
        }
        if actions.is_empty() {
            return Ok(Verdict::Done(format!(
                "identical on every node: {}",
                judged
                    .iter()
                    .map(|j| j.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Verdict::Todo(actions))
    }
}

/// Staging, the stream, and the checked rename, for one path on one node.
fn copy_actions(source: &NodeName, copy: Copy) -> Vec<Action> {
    let Copy {
        path,
        target,
        want,
        differences,
        replaces,
    } = copy;
    let stage = format!("{path}{STAGED}");
    // The tar stream's size, for progress: a 512-byte header per entry, data in 512-byte
    // blocks, two empty blocks at the end, all in 10 KiB records.
    let bytes: u64 = want
        .entries()
        .unwrap_or_default()
        .iter()
        .map(|e| 512 + e.size.div_ceil(512) * 512)
        .sum::<u64>()
        + 1024;
    let bytes = bytes.div_ceil(10240) * 10240;
    let send = Cmd::new(format!(
        "exec tar -C {} -c -f - -- {}",
        quote(&parent(&path)),
        quote(&name_of(&path))
    ))
    .as_root();
    // One line: on the direct route it becomes the forced command of a one-time key.
    let receive = Cmd::new(format!(
        "exec tar -C {} -x -p --same-owner -f -",
        quote(&stage)
    ))
    .as_root();
    let kept = if replaces {
        format!(
            "keep what {target} holds there ({}) as {path}{KEPT}<time>, ",
            differences.join("; ")
        )
    } else {
        String::new()
    };
    let why_place = format!(
        "check the copy against {source}'s by its digest, {kept}and rename it into place as {path}"
    );
    let place = {
        let (path, stage, target, source) =
            (path.clone(), stage.clone(), target.clone(), source.clone());
        Call::new(move |cx| place(cx, &path, &stage, &target, &source, &want))
    };
    vec![
        Action::Run {
            on: target.clone(),
            why: format!("make an empty staging directory {stage} (0700) beside {path}"),
            cmd: Cmd::script(STAGE_SH, &[&path]).as_root(),
            input: Input::None,
        },
        Action::Relay {
            why: format!("copy {path} as a tar stream, owners by name, into {stage}"),
            from: source.clone(),
            send,
            to: target.clone(),
            receive,
            bytes,
        },
        Action::Call {
            on: vec![target],
            why: why_place,
            call: place,
        },
    ]
}

/// On the target: the copy that arrived, described where it is, must be the source's
/// (same digest); then it goes into place and what was there is kept.
fn place(
    cx: &mut Ctx<'_>,
    path: &str,
    stage: &str,
    target: &NodeName,
    source: &NodeName,
    want: &State,
) -> anyhow::Result<Vec<String>> {
    let host = cx.host(target);
    let arrived = format!("{stage}/{}", name_of(path));
    let got = read(host, std::slice::from_ref(&arrived), &[], &[])?;
    let got = &got.paths[0].state;
    if got.digest() != want.digest() {
        let removed = host.run(&Cmd::new(format!("rm -rf -- {}", quote(stage))).as_root());
        let left = if removed.is_ok_and(|out| out.success()) {
            "the copy was removed".to_owned()
        } else {
            format!("remove {stage} there")
        };
        bail!(
            "the copy of {path} that arrived on {target} is not {source}'s ({}); nothing was replaced, and {left}. \
             If {path} changed on {source} meanwhile, run again",
            differences(want, got).join("; ")
        );
    }
    let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let placed = host.run_ok(&Cmd::script(PLACE_SH, &[path, stage, &stamp]).as_root())?;
    Ok(vec![match placed.trim().strip_prefix("kept ") {
        Some(old) => {
            format!("{target}: {path} is {source}'s copy; the one it held is kept as {old}")
        }
        None => format!("{target}: {path} is {source}'s copy"),
    }])
}

/// One path in `status`: the same on every node, or where it differs and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReport {
    pub path: String,
    /// Identical on every node (bytes, mode, owner).
    pub same: bool,
    /// The nodes whose copy differs from the source's.
    pub differs_on: Vec<String>,
    /// The node the others are compared with (the primary).
    pub source: String,
    /// What differs, per node, in words (never contents).
    pub differences: BTreeMap<String, String>,
    /// Nodes that could not be read.
    pub unchecked: Vec<String>,
    /// What is wrong on the source, when the path cannot be compared.
    pub problem: Option<String>,
}

/// Nodes and what differs on each: `db2 (mode 0644, not 0600), db3 (missing)`.
pub fn shown(differences: &BTreeMap<String, String>) -> String {
    differences
        .iter()
        .map(|(node, what)| format!("{node} ({what})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every listed path as `status` reports it, and the problems to list (each a difference
/// that makes status degraded).
pub fn report(
    config: &Config,
    topology: &Topology,
    hosts: &mut Hosts,
) -> (Vec<FileReport>, Vec<String>) {
    let paths = paths(config);
    if paths.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let source = source(config, topology)
        .map(|(name, _)| name)
        .unwrap_or_else(|| config.starting_primary().clone());
    let targets: Vec<NodeName> = config
        .nodes
        .keys()
        .filter(|n| **n != source)
        .cloned()
        .collect();
    let survey = survey(hosts, &paths, &source, &targets);
    // A node this machine cannot reach is a problem of its own already: its files are
    // only unchecked.
    let source_lost = hosts.unreachable(&source).is_some();
    let mut problems = Vec::new();
    let reports = judge(&survey)
        .into_iter()
        .map(|mut judged| {
            let path = judged.path.clone();
            if source_lost {
                judged.refusals.clear();
                judged.unchecked.insert(0, (source.clone(), String::new()));
            }
            let problem = judged.refusals.first().map(|f| f.what.clone());
            if let Some(problem) = &problem {
                problems.push(format!("files: {problem}"));
            }
            let differences: BTreeMap<String, String> = judged
                .differ
                .iter()
                .map(|(n, what)| (n.to_string(), what.join("; ")))
                .collect();
            if !differences.is_empty() {
                problems.push(format!(
                    "files: {path} differs on {}: make it identical with `ha-setup sync`",
                    shown(&differences)
                ));
            }
            for node in &judged.staged {
                problems.push(format!(
                    "files: an interrupted copy left {path}{STAGED} on {node}: `ha-setup sync` removes it"
                ));
            }
            for (node, why) in &judged.unchecked {
                if hosts.unreachable(node).is_none() {
                    problems.push(format!("files: {path}: {why}"));
                }
            }
            FileReport {
                same: problem.is_none() && differences.is_empty() && judged.unchecked.is_empty(),
                differs_on: judged.differ.iter().map(|(n, _)| n.to_string()).collect(),
                source: source.to_string(),
                differences,
                unchecked: judged.unchecked.iter().map(|(n, _)| n.to_string()).collect(),
                problem,
                path,
            }
        })
        .collect();
    (reports, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rel: &str, kind: Kind, size: u64) -> Entry {
        let id = |name: &str| describe::Id {
            name: name.into(),
            named: true,
        };
        Entry {
            rel: rel.into(),
            kind,
            mode: 0o600,
            owner: id("pi"),
            group: id("pi"),
            size,
            sha256: (kind == Kind::File).then(|| "aa".into()),
        }
    }

    #[test]
    fn bad_input_on_the_source_is_refused_with_what_to_do() {
        let source = NodeName::new("db1");
        let missing = refusals("/etc/pi/enckey", &source, &State::Missing { parent: true });
        assert_eq!(
            missing[0].what,
            "/etc/pi/enckey is missing on db1, the node every other node copies from"
        );
        assert!(
            refusals("/k", &source, &State::Symlink)[0]
                .what
                .contains("symbolic link")
        );
        let mut link = entry("keys/current", Kind::Symlink, 0);
        link.owner.named = false;
        link.owner.name = "1234".into();
        let found = refusals(
            "/etc/pi",
            &source,
            &State::Present(vec![entry("", Kind::Dir, 0), link]),
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0]
                .what
                .contains("/etc/pi/keys/current on db1 is a symbolic link")
        );
        assert!(
            found[1]
                .what
                .contains("user id 1234, which has no name there")
        );
        assert!(
            refusals(
                "/etc/pi",
                &source,
                &State::Present(vec![entry("", Kind::File, 3)])
            )
            .is_empty()
        );
    }

    #[test]
    fn a_target_missing_an_owner_or_the_directory_is_named() {
        let want = State::Present(vec![entry("", Kind::File, 3)]);
        let mut files = NodeFiles::default();
        files.users.insert("pi".into(), false);
        files.groups.insert("pi".into(), true);
        let found = target_refusals(
            "/etc/pi/enckey",
            &NodeName::new("db2"),
            &want,
            &files,
            &State::Missing { parent: false },
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0]
                .what
                .contains("the directory /etc/pi of /etc/pi/enckey does not exist on db2")
        );
        assert_eq!(
            found[1].what,
            "/etc/pi/enckey belongs to the user pi, which does not exist on db2"
        );
    }

    #[test]
    fn room_needed_counts_blocks() {
        let want = State::Present(vec![
            entry("", Kind::Dir, 0),
            entry("a", Kind::File, 1),
            entry("b", Kind::File, 5000),
        ]);
        assert_eq!(needed(&want), 4096 + 4096 + 8192);
    }
}
