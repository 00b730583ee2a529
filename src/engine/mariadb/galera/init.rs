//! init for a Galera cluster, after preflight: each node's TLS certificate and the
//! cluster's CAs on every node; the state transfer's login on the first node; the first
//! node restarted with Galera on, bootstrapping the cluster from its data (announced
//! downtime); every other data node joined by a state transfer, one at a time, its old
//! data moved aside first; members whose settings changed rewritten, restarted one at a
//! time where a restart is needed; garbd on the arbitrator; and the proof: every node
//! Synced, the cluster the right size with one history, a canary written on one node read
//! on every other. Each step recognises its own result on the hosts, so a second run
//! changes nothing and an interrupted one resumes.

use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::super::{client, layout, observe as base, primary};
use super::observe::{self, Record};
use super::resolve;
use super::settings::{self, CLUSTER_CA, GARBD_TLS_DIR, GCOMM_PORT, Settings};
use crate::engine::Canary;
use crate::host::{Cmd, FileMode, Host, HostExt, HostFiles, quote};
use crate::node::NodeName;
use crate::password::read_optional;
use crate::plan::{Action, Call, Ctx, Input, Step, Verdict};
use crate::topology::Topology;

const START: &str = include_str!("scripts/start.sh");

/// How long a node may take to be Synced: the first node starts on its own data; a joiner
/// receives a full copy (a large database over a slow link takes long; a failed transfer
/// ends mariadbd, which is noticed at once); a restarted member catches up.
pub const BOOTSTRAP_SECS: u64 = 300;
pub const JOIN_SECS: u64 = 4 * 3600;
pub const RESTART_SECS: u64 = 1800;
const CANARY_TIMEOUT: Duration = Duration::from_secs(15);

/// The file Galera's settings wait in until the node is stopped (MariaDB reads only
/// `.cnf` files).
pub fn pending(cnf: &str) -> String {
    format!("{cnf}.ha-setup-new")
}

/// The node the application writes to, as this run sees it.
pub fn write_node(cx: &mut Ctx<'_>) -> NodeName {
    let topology = cx.topology();
    let source = cx.roles.source.clone();
    resolve::write_node(cx.config, &topology, &source)
}

/// A data node's settings as they should be.
pub fn settings_for(cx: &mut Ctx<'_>, name: &NodeName, write: &NodeName) -> Settings {
    let seen = cx.observe(name);
    let provider = observe::reading(&seen).and_then(|r| r.provider.clone());
    let version = base::state(&seen).map(|s| s.server.version);
    Settings::new(cx.config, name, write, provider.as_deref(), version)
}

/// A data node's settings file as it should be.
pub fn wanted(cx: &mut Ctx<'_>, name: &NodeName, write: &NodeName) -> anyhow::Result<String> {
    settings_for(cx, name, write).render(cx.config)
}

fn record(cx: &Ctx<'_>, write: &NodeName) -> String {
    let record = Record {
        cluster: settings::cluster_name(cx.config),
        write_node: write.clone(),
    };
    serde_json::to_string_pretty(&record).expect("a record serialises") + "\n"
}

/// ha-setup's record on a node, written where it differs.
fn record_action(
    cx: &mut Ctx<'_>,
    name: &NodeName,
    write: &NodeName,
) -> anyhow::Result<Option<Action>> {
    let text = record(cx, write);
    if read_optional(cx.host(name), observe::RECORD)?.as_deref() == Some(text.as_bytes()) {
        return Ok(None);
    }
    Ok(Some(Action::Write {
        on: name.clone(),
        why: format!("record that the application writes to {write} (state transfers keep off it)"),
        path: observe::RECORD.to_owned(),
        contents: Input::Text(text),
        mode: FileMode::new(0o644),
    }))
}

/// The action that starts a node as a Galera node and waits until it is Synced (see
/// scripts/start.sh), its settings waiting in the pending file.
pub fn start_action(
    cx: &mut Ctx<'_>,
    name: &NodeName,
    mode: &str,
    aside: Option<&str>,
    limit: u64,
    why: String,
) -> Action {
    let paths = layout::paths(cx, name);
    let cnf = paths.cnf_path();
    let cmd = Cmd::script(
        START,
        &[
            mode,
            &paths.datadir.value,
            &cnf,
            &pending(&cnf),
            aside.unwrap_or(""),
            &paths.service.value,
            &limit.to_string(),
            name.as_str(),
        ],
    )
    .as_root();
    Action::Call {
        on: vec![name.clone()],
        why,
        call: Call::script(name.clone(), cmd),
    }
}

pub fn write_pending(cx: &mut Ctx<'_>, name: &NodeName, text: String) -> Action {
    let cnf = layout::cnf_path(cx, name);
    Action::Write {
        on: name.clone(),
        why: "ha-setup's Galera settings, put in place once MariaDB is stopped".into(),
        path: pending(&cnf),
        contents: Input::Text(text),
        mode: FileMode::new(0o644),
    }
}

/// The grants of mysql@localhost, or None when there is no such account.
pub fn sst_grants(host: &mut dyn Host) -> anyhow::Result<Option<String>> {
    match client::rows(host, "SHOW GRANTS FOR 'mysql'@'localhost'") {
        Ok(rows) => Ok(Some(
            rows.into_iter()
                .flatten()
                .flatten()
                .collect::<Vec<_>>()
                .join("\n"),
        )),
        Err(err) if format!("{err:#}").contains("1141") => Ok(None),
        Err(err) => Err(err),
    }
}

/// What mariadb-backup needs to take a backup for a state transfer.
const SST_PRIVILEGES: &[&str] = &["RELOAD", "PROCESS", "LOCK TABLES", "BINLOG MONITOR"];

pub struct Certificates;

impl Step for Certificates {
    fn name(&self) -> &'static str {
        "certificates"
    }

    fn purpose(&self) -> &'static str {
        "a TLS certificate on every node, and every node's CA on every node"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        if !cx.config.replication.tls {
            return Ok(Verdict::Done(
                "TLS is off ([replication] tls = false): replication and state transfers go unencrypted".into(),
            ));
        }
        let mut actions = Vec::new();
        let arbitrator = settings::arbitrator(cx.config);
        for name in cx.config.nodes.keys().cloned().collect::<Vec<_>>() {
            let address = cx.node(&name).replication_address().to_owned();
            let made = if Some(&name) == arbitrator.as_ref() {
                crate::tls::certificates(
                    cx.host(&name),
                    &name,
                    &address,
                    &crate::tls::Place {
                        dir: GARBD_TLS_DIR,
                        key_owner: "nobody:",
                        reload: Cmd::new("true"),
                    },
                )?
            } else {
                primary::certificates(cx.host(&name), &name, &address)?
            };
            actions.extend(made);
        }
        if actions.is_empty() && cas_shared(cx)? {
            return Ok(Verdict::Done(format!(
                "every node has its certificate and the cluster's CAs ({CLUSTER_CA})"
            )));
        }
        actions.push(share_cas(
            cx.config.nodes.keys().cloned().collect(),
            arbitrator,
        ));
        Ok(Verdict::Todo(actions))
    }
}

fn tls_dir(name: &NodeName, arbitrator: Option<&NodeName>) -> &'static str {
    if Some(name) == arbitrator {
        GARBD_TLS_DIR
    } else {
        layout::TLS_DIR
    }
}

/// Every node's CA, in config order.
fn bundle(
    cx: &mut Ctx<'_>,
    nodes: &[NodeName],
    arbitrator: Option<&NodeName>,
) -> anyhow::Result<Option<Vec<u8>>> {
    let mut bundle = Vec::new();
    for name in nodes {
        let path = format!("{}/ca.pem", tls_dir(name, arbitrator));
        match read_optional(cx.host(name), &path)? {
            Some(ca) => bundle.extend(ca),
            None => return Ok(None),
        }
    }
    Ok(Some(bundle))
}

fn cas_shared(cx: &mut Ctx<'_>) -> anyhow::Result<bool> {
    let nodes: Vec<NodeName> = cx.config.nodes.keys().cloned().collect();
    let arbitrator = settings::arbitrator(cx.config);
    let Some(bundle) = bundle(cx, &nodes, arbitrator.as_ref())? else {
        return Ok(false);
    };
    for name in &nodes {
        let path = format!("{}/{CLUSTER_CA}", tls_dir(name, arbitrator.as_ref()));
        if read_optional(cx.host(name), &path)?.as_deref() != Some(&bundle[..]) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Gives every node every node's CA, read when the action runs (after the certificates
/// are made). A running member reloads them at once (`socket.ssl_reload`), so a node that
/// joins later is trusted without a restart; a running garbd is restarted.
fn share_cas(nodes: Vec<NodeName>, arbitrator: Option<NodeName>) -> Action {
    Action::Call {
        on: nodes.clone(),
        why: format!(
            "give every node every node's CA certificate ({CLUSTER_CA}), which Galera and the state transfer check the others' certificates against"
        ),
        call: Call::new(move |cx| {
            let Some(bundle) = bundle(cx, &nodes, arbitrator.as_ref())? else {
                anyhow::bail!("a node's CA certificate is missing; run the command again");
            };
            let mut lines = Vec::new();
            for name in &nodes {
                let dir = tls_dir(name, arbitrator.as_ref());
                let path = format!("{dir}/{CLUSTER_CA}");
                let host = cx.host(name);
                if read_optional(host, &path)?.as_deref() == Some(&bundle[..]) {
                    continue;
                }
                host.run_ok(&Cmd::new(format!("mkdir -p -- {}", quote(dir))).as_root())?;
                host.write_file(&path, &bundle, &FileMode::new(0o644))?;
                lines.push(format!("{name}: {path} written"));
                let seen = cx.observe_fresh(name);
                if observe::wsrep(&seen).is_some_and(|w| w.on) {
                    client::execute(
                        cx.host(name),
                        &Input::Text(
                            "SET GLOBAL wsrep_provider_options = 'socket.ssl_reload=1';\n".into(),
                        ),
                    )?;
                    lines.push(format!("{name}: Galera reloaded its TLS files"));
                } else if observe::reading(&seen).is_some_and(|r| r.garbd_running) {
                    let systemd = base::host_facts(&seen).is_some_and(|h| h.systemd);
                    cx.host(name)
                        .run_ok(&garb(crate::service::Verb::Restart, systemd))?;
                    lines.push(format!("{name}: garbd restarted with the new CAs"));
                }
            }
            Ok(lines)
        }),
    }
}

pub struct SstLogin;

impl Step for SstLogin {
    fn name(&self) -> &'static str {
        "sst-login"
    }

    fn purpose(&self) -> &'static str {
        "the state transfer's login: mysql@localhost by unix_socket, no password"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let source = cx.roles.source.clone();
        let grants = sst_grants(cx.host(&source))?;
        let sql = match grants {
            None => format!(
                "CREATE USER 'mysql'@'localhost' IDENTIFIED VIA unix_socket;\nGRANT {} ON *.* TO 'mysql'@'localhost';\n",
                SST_PRIVILEGES.join(", ")
            ),
            Some(grants) => {
                let upper = grants.to_uppercase();
                if upper.contains("ALL PRIVILEGES ON *.*") {
                    return Ok(Verdict::Done(
                        "mysql@localhost logs in by unix_socket and may take backups".into(),
                    ));
                }
                let missing: Vec<&str> = SST_PRIVILEGES
                    .iter()
                    .filter(|p| !upper.contains(*p))
                    .copied()
                    .collect();
                if missing.is_empty() {
                    return Ok(Verdict::Done(
                        "mysql@localhost logs in by unix_socket and may take backups".into(),
                    ));
                }
                format!(
                    "GRANT {} ON *.* TO 'mysql'@'localhost';\n",
                    missing.join(", ")
                )
            }
        };
        Ok(Verdict::Todo(vec![Action::Run {
            on: source,
            why: "let mariadb-backup log in for state transfers as mysql@localhost, by unix_socket (no password)".into(),
            cmd: client::command(),
            input: Input::Text(sql),
        }]))
    }
}

pub struct StartCluster;

impl Step for StartCluster {
    fn name(&self) -> &'static str {
        "start-cluster"
    }

    fn purpose(&self) -> &'static str {
        "the first node restarted with Galera on, bootstrapping the cluster from its data"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let topology = cx.topology();
        let running = resolve::synced(cx.config, &topology);
        if !running.is_empty() && !cx.predicting() {
            return Ok(Verdict::Done(format!(
                "the cluster {} runs: {} Synced",
                settings::cluster_name(cx.config),
                crate::topology::and_list(&running)
            )));
        }
        let source = cx.roles.source.clone();
        let write = write_node(cx);
        let text = wanted(cx, &source, &write)?;
        let mut actions = vec![write_pending(cx, &source, text)];
        actions.extend(record_action(cx, &source, &write)?);
        actions.push(start_action(
            cx,
            &source,
            "bootstrap",
            None,
            BOOTSTRAP_SECS,
            format!(
                "RESTART MariaDB on {source} with Galera on, bootstrapping the cluster {} from its data: \
                 the application cannot use {source}'s database for the restart (a few seconds)",
                settings::cluster_name(cx.config)
            ),
        ));
        Ok(Verdict::Todo(actions))
    }
}

pub struct Join;

impl Step for Join {
    fn name(&self) -> &'static str {
        "join"
    }

    fn purpose(&self) -> &'static str {
        "every other data node joins by a state transfer, one at a time, its old data moved aside"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let topology = cx.topology();
        let running = resolve::synced(cx.config, &topology);
        let uuid = running
            .first()
            .and_then(|n| observe::wsrep(topology.get(n)))
            .map(|w| w.cluster_uuid.clone());
        let write = write_node(cx);
        let mut actions = Vec::new();
        let mut joined = Vec::new();
        for target in cx.roles.targets.clone() {
            if running.contains(&target) && !cx.predicting() {
                joined.push(target);
                continue;
            }
            let seen = topology.get(&target).clone();
            let member =
                observe::reading(&seen).is_some_and(|r| resolve::former_member(r, uuid.as_deref()));
            let paths = layout::paths(cx, &target);
            let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
            let aside = (!member).then(|| layout::moved_aside_dir(&paths.datadir.value, &stamp));
            let text = wanted(cx, &target, &write)?;
            if observe::reading(&seen).is_some_and(|r| {
                r.garbd_running
                    && r.garb.as_ref().map(|g| g.0.as_str())
                        == Some(&settings::cluster_name(cx.config))
            }) {
                // The cluster's arbitrator until now: this host holds data from here on.
                let systemd = base::host_facts(&seen).is_some_and(|h| h.systemd);
                actions.push(Action::Run {
                    on: target.clone(),
                    why: format!("stop garbd on {target}: it was the cluster's arbitrator and becomes a data node"),
                    cmd: garb(crate::service::Verb::Stop, systemd),
                    input: Input::None,
                });
            }
            actions.push(write_pending(cx, &target, text));
            actions.extend(record_action(cx, &target, &write)?);
            let why = match &aside {
                Some(aside) => format!(
                    "stop MariaDB on {target}, move its data aside to {aside} (kept), and start it with Galera on: \
                     it joins by a state transfer (SST) with mariadb-backup and waits until Synced"
                ),
                None => format!(
                    "start MariaDB on {target} with Galera on: it was a member, so it rejoins with what it missed \
                     (IST) or a full state transfer, as Galera decides, and waits until Synced"
                ),
            };
            actions.push(start_action(
                cx,
                &target,
                "join",
                aside.as_deref(),
                JOIN_SECS,
                why,
            ));
        }
        if actions.is_empty() {
            return Ok(Verdict::Done(if joined.is_empty() {
                "no other data node".into()
            } else {
                format!("{} Synced already", crate::topology::and_list(&joined))
            }));
        }
        Ok(Verdict::Todo(actions))
    }
}

/// A settings file written in place, and what changed in it applied at run time: for
/// changes that need no restart.
pub fn without_restart(
    name: &NodeName,
    path: String,
    text: String,
    runtime: &[String],
    why: String,
) -> Vec<Action> {
    let mut actions = vec![Action::Write {
        on: name.clone(),
        why,
        path,
        contents: Input::Text(text),
        mode: FileMode::new(0o644),
    }];
    if !runtime.is_empty() {
        actions.push(Action::Run {
            on: name.clone(),
            why: "apply the changed settings at run time".into(),
            cmd: client::command(),
            input: Input::Text(runtime.join(";\n") + ";\n"),
        });
    }
    actions
}

pub struct Settle;

impl Step for Settle {
    fn name(&self) -> &'static str {
        "settings"
    }

    fn purpose(&self) -> &'static str {
        "every member's settings as they should be; a change only a restart applies goes one node at a time"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        if cx.predicting() {
            return Ok(Verdict::Done(
                "checked once the nodes above run (a new node's address, for instance, is written on every member)".into(),
            ));
        }
        let topology = cx.topology();
        let running = resolve::synced(cx.config, &topology);
        let write = write_node(cx);
        let mut actions = Vec::new();
        let mut restarts = Vec::new();
        for name in settings::data_nodes(cx.config) {
            if !running.contains(&name) {
                continue;
            }
            actions.extend(record_action(cx, &name, &write)?);
            let cnf = layout::cnf_path(cx, &name);
            let text = wanted(cx, &name, &write)?;
            let current = read_optional(cx.host(&name), &cnf)?.unwrap_or_default();
            let current = String::from_utf8_lossy(&current).into_owned();
            if current == text {
                continue;
            }
            let (runtime, restart) = settings::changes(&current, &text);
            if current.contains("socket.ssl_cert") != text.contains("socket.ssl_cert") {
                anyhow::bail!(
                    "{name} runs Galera {} TLS and the config says {}: nodes with and without TLS do not talk, so this \
                     cannot change one node at a time. Set [replication] tls back, or stop every node, run `ha-setup init` \
                     after `ha-setup recover bootstrap` has started the first with the new settings",
                    if current.contains("socket.ssl_cert") {
                        "with"
                    } else {
                        "without"
                    },
                    if cx.config.replication.tls {
                        "tls = true"
                    } else {
                        "tls = false"
                    }
                );
            }
            if restart.is_empty() {
                actions.extend(without_restart(
                    &name,
                    cnf,
                    text,
                    &runtime,
                    "ha-setup's Galera settings (read at the next start; nothing needs a restart now)".into(),
                ));
            } else {
                restarts.push((name, text, restart));
            }
        }
        for (name, text, restart) in restarts {
            actions.push(write_pending(cx, &name, text));
            actions.push(rolling_restart(cx, &name, &restart));
        }
        Ok(if actions.is_empty() {
            Verdict::Done("every member runs with the settings it should".into())
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// Restarts one member to take settings only a restart applies, once every other data
/// node is Synced (the cluster keeps its majority and a donor), and waits until it is
/// Synced again before the plan goes on to the next.
fn rolling_restart(cx: &mut Ctx<'_>, name: &NodeName, reasons: &[String]) -> Action {
    let restart = start_action(cx, name, "restart", None, RESTART_SECS, String::new());
    let Action::Call { call: restart, .. } = restart else {
        unreachable!("start is a call")
    };
    let node = name.clone();
    Action::Call {
        on: vec![name.clone()],
        why: format!(
            "RESTART MariaDB on {name}, when every other data node is Synced, because {}; it is back once Synced \
             (the application's connections to {name} are cut meanwhile; the other nodes serve)",
            reasons.join(", ")
        ),
        call: Call::new(move |cx| {
            let topology = cx.topology();
            let running = resolve::synced(cx.config, &topology);
            let others: Vec<NodeName> = settings::data_nodes(cx.config)
                .into_iter()
                .filter(|n| *n != node && !running.contains(n))
                .collect();
            if !others.is_empty() {
                anyhow::bail!(
                    "not restarting {node}: {} not Synced, and the cluster would lose more than one node at once. \
                     Bring {} back first (`ha-setup recover rejoin`), then run the command again",
                    crate::topology::and_list(&others),
                    if others.len() == 1 { "it" } else { "them" }
                );
            }
            (restart.0)(cx)
        }),
    }
}

/// garbd's service, controlled the host's way.
fn garb(verb: crate::service::Verb, systemd: bool) -> Cmd {
    crate::service::control("garb", verb, systemd)
}

/// garbd's settings (Debian's /etc/default/garb, read by its service).
pub const GARB_DEFAULTS: &str = "/etc/default/garb";

pub fn garb_text(cx: &Ctx<'_>) -> String {
    let data: Vec<String> = settings::data_nodes(cx.config)
        .iter()
        .map(|n| {
            format!(
                "{}:{GCOMM_PORT}",
                settings::url_host(cx.node(n).replication_address())
            )
        })
        .collect();
    let mut text = format!(
        "# Written by ha-setup {}: garbd, the arbitrator of the Galera cluster {}.\n\
         # ha-setup rewrites this file (a different one is backed up first).\n\
         GALERA_NODES=\"{}\"\n\
         GALERA_GROUP=\"{}\"\n",
        env!("CARGO_PKG_VERSION"),
        settings::cluster_name(cx.config),
        data.join(" "),
        settings::cluster_name(cx.config),
    );
    if cx.config.replication.tls {
        text.push_str(&format!(
            "GALERA_OPTIONS=\"socket.ssl_cert={GARBD_TLS_DIR}/server-cert.pem;socket.ssl_key={GARBD_TLS_DIR}/server-key.pem;socket.ssl_ca={GARBD_TLS_DIR}/{CLUSTER_CA}\"\n"
        ));
    }
    text
}

/// The members the cluster should count: every data node and the arbitrator.
pub fn expected_size(cx: &Ctx<'_>) -> u32 {
    cx.config.nodes.len() as u32
}

pub struct Arbitrator;

impl Step for Arbitrator {
    fn name(&self) -> &'static str {
        "arbitrator"
    }

    fn purpose(&self) -> &'static str {
        "garbd on the arbitrator, so that losing one data node leaves a majority"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let Some(arbitrator) = settings::arbitrator(cx.config) else {
            return Ok(Verdict::Done("the config names no arbitrator".into()));
        };
        let text = garb_text(cx);
        let seen = cx.observe(&arbitrator);
        let current = read_optional(cx.host(&arbitrator), GARB_DEFAULTS)?;
        let same = current.as_deref() == Some(text.as_bytes());
        let running = observe::reading(&seen).is_some_and(|r| r.garbd_running);
        let topology = cx.topology();
        let counted = resolve::synced(cx.config, &topology)
            .first()
            .and_then(|n| observe::wsrep(topology.get(n)))
            .is_some_and(|w| w.cluster_size >= expected_size(cx));
        if same && running && counted && !cx.predicting() {
            return Ok(Verdict::Done(format!(
                "garbd runs on {arbitrator} and the cluster counts it"
            )));
        }
        let mut actions = Vec::new();
        if !same {
            actions.push(Action::Write {
                on: arbitrator.clone(),
                why: "garbd's settings: the cluster's name and its data nodes".into(),
                path: GARB_DEFAULTS.to_owned(),
                contents: Input::Text(text),
                mode: FileMode::new(0o644),
            });
        }
        let systemd = base::host_facts(&seen).is_some_and(|h| h.systemd);
        let name = arbitrator.clone();
        let size = expected_size(cx);
        actions.push(Action::Call {
            on: vec![arbitrator.clone()],
            why: format!(
                "(re)start garbd on {arbitrator} and wait until the cluster counts {size} members"
            ),
            call: Call::new(move |cx| {
                cx.host(&name)
                    .run_ok(&garb(crate::service::Verb::Restart, systemd))
                    .map_err(|err| anyhow::anyhow!("starting garbd on {name} failed: {err}"))?;
                let started = Instant::now();
                loop {
                    let topology = fresh(cx);
                    let seen = resolve::synced(cx.config, &topology)
                        .first()
                        .and_then(|n| observe::wsrep(topology.get(n)))
                        .map(|w| w.cluster_size);
                    if seen.is_some_and(|s| s >= size) {
                        return Ok(vec![format!(
                            "{name}: garbd runs and the cluster counts {size} members (in {:.1} s)",
                            started.elapsed().as_secs_f64()
                        )]);
                    }
                    if started.elapsed() > Duration::from_secs(60) {
                        anyhow::bail!(
                            "garbd on {name} started, but after 60 s the cluster counts {} members, not {size}; \
                             look at garbd's log there (syslog, or journalctl -u garb) and at port {GCOMM_PORT} between {name} and the data nodes",
                            seen.map_or("no".into(), |s| s.to_string())
                        );
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }),
        });
        Ok(Verdict::Todo(actions))
    }
}

/// Every node read again.
fn fresh(cx: &mut Ctx<'_>) -> Topology {
    for name in cx.config.nodes.keys().cloned().collect::<Vec<_>>() {
        cx.forget(&name);
    }
    cx.topology()
}

pub struct VerifyCluster {
    /// Nodes this machine cannot reach are left out of the proof (a bootstrap that went
    /// ahead without them), and said so.
    pub without_unreachable: bool,
}

impl Step for VerifyCluster {
    fn name(&self) -> &'static str {
        "verify-cluster"
    }

    fn purpose(&self) -> &'static str {
        "every node Synced, the cluster the right size with one history, a canary from one node read on every other"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let data = settings::data_nodes(cx.config);
        let size = expected_size(cx);
        let without = self.without_unreachable;
        Ok(Verdict::Todo(vec![Action::Call {
            on: data.clone(),
            why: format!(
                "check that {} are Synced in one cluster of {size}, then write a canary on one and wait up to {}s for it on the others",
                crate::topology::and_list(&data),
                CANARY_TIMEOUT.as_secs()
            ),
            call: Call::new(move |cx| verify(cx, size, without)),
        }]))
    }
}

/// The proof that the cluster works: what verify-cluster runs.
pub fn verify(
    cx: &mut Ctx<'_>,
    size: u32,
    without_unreachable: bool,
) -> anyhow::Result<Vec<String>> {
    let topology = fresh(cx);
    let mut data = settings::data_nodes(cx.config);
    let name = settings::cluster_name(cx.config);
    let mut lines = Vec::new();
    let mut size = size;
    if without_unreachable {
        let lost: Vec<NodeName> = cx
            .config
            .nodes
            .keys()
            .filter(|n| topology.get(n).unreachable.is_some())
            .cloned()
            .collect();
        if !lost.is_empty() {
            lines.push(format!(
                "left out: {} (cannot be reached from here); bring {} back with `ha-setup recover rejoin`",
                crate::topology::and_list(&lost),
                if lost.len() == 1 { "it" } else { "them" }
            ));
            data.retain(|n| !lost.contains(n));
            size -= lost.len() as u32;
        }
    }
    let mut wrong = Vec::new();
    let mut uuids: Vec<(NodeName, String)> = Vec::new();
    for node in &data {
        let seen = topology.get(node);
        match observe::wsrep(seen) {
            Some(w) if w.synced() && w.cluster_name == name => {
                if w.cluster_size != size {
                    wrong.push(format!(
                        "{node} counts {} members in the cluster, not {size}",
                        w.cluster_size
                    ));
                }
                uuids.push((node.clone(), w.cluster_uuid.clone()));
            }
            Some(w) if w.on => wrong.push(format!(
                "{node} is {} in a {} component of {}",
                if w.state.is_empty() {
                    "in no state"
                } else {
                    &w.state
                },
                if w.cluster_status.is_empty() {
                    "no"
                } else {
                    &w.cluster_status
                },
                if w.cluster_name.is_empty() {
                    "no cluster"
                } else {
                    &w.cluster_name
                }
            )),
            _ => wrong.push(format!("{node}: {}", seen.describe())),
        }
    }
    if let Some((first, uuid)) = uuids.first() {
        for (other, theirs) in &uuids[1..] {
            if theirs != uuid {
                wrong.push(format!(
                    "{first} and {other} are in different clusters (state UUIDs {uuid} and {theirs})"
                ));
            }
        }
    }
    if !wrong.is_empty() {
        anyhow::bail!("the cluster is not whole: {}", wrong.join("; "));
    }
    lines.push(format!(
        "{} are Synced in the cluster {name} ({}), which counts {size} members",
        crate::topology::and_list(&data),
        uuids.first().map(|(_, u)| u.as_str()).unwrap_or("")
    ));
    let write = resolve::write_node(cx.config, &topology, &data[0]);
    let readers: Vec<NodeName> = data.iter().filter(|n| **n != write).cloned().collect();
    if readers.is_empty() {
        return Ok(lines);
    }
    let seen: Vec<&crate::topology::Observed> = std::iter::once(&write)
        .chain(&readers)
        .map(|n| topology.get(n))
        .collect();
    let (source, replicas) = cx.hosts.one_and_many(&write, &readers);
    match cx.engine.canary(source, replicas, seen, CANARY_TIMEOUT)? {
        Canary::Arrived(results) => {
            let mut lost = Vec::new();
            for (reader, result) in readers.iter().zip(results) {
                match result {
                    Ok(took) => lines.push(format!(
                        "the canary written on {write} was read on {reader} after {} ms",
                        took.as_millis()
                    )),
                    Err(why) => lost.push(why),
                }
            }
            if !lost.is_empty() {
                anyhow::bail!("{}", lost.join("; "));
            }
        }
        Canary::Skipped(why) => anyhow::bail!("no canary could be written on {write}: {why}"),
    }
    Ok(lines)
}
