//! preflight for a Galera cluster: on every node, before anything changes, what it needs
//! installed (with the exact `apt-get install` line), the same MariaDB major version, the
//! ports each node reaches on each other (tested from the nodes themselves), the first
//! node's tables (non-InnoDB refused, no primary key warned, each named), and no other
//! node holding data of its own.

use std::collections::BTreeMap;

use super::super::facts::{self, Installed};
use super::super::{client, layout, preflight as base};
use super::observe::{self, SYSTEM_SCHEMAS};
use super::resolve;
use super::settings::{self, GCOMM_PORT, IST_PORT, SST_PORT};
use crate::host::{Cmd, Host, HostExt};
use crate::node::NodeName;
use crate::plan::{Ctx, Finding, Step, Verdict};
use crate::runner::human_bytes;

pub struct Preflight;

const PORTS: &str = include_str!("scripts/ports.sh");
/// How long the stand-in listeners stay up while every node probes the others.
const PORT_TEST_SECS: u64 = 10;

/// What the Galera set-up needs beyond MariaDB, found without the database.
const SURVEY: &str = "\
printf 'socat=%s\\n' \"$(command -v socat)\"
printf 'garbd=%s\\n' \"$(command -v garbd)\"
printf 'openssl=%s\\n' \"$(command -v openssl)\"
printf 'perl=%s\\n' \"$(command -v perl)\"";

impl Step for Preflight {
    fn name(&self) -> &'static str {
        "preflight"
    }

    fn purpose(&self) -> &'static str {
        "check every node before anything changes"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let mut out = Vec::new();
        let data = settings::data_nodes(cx.config);
        let arbitrator = settings::arbitrator(cx.config);
        let topology = cx.topology();
        let running = resolve::synced(cx.config, &topology);
        let uuid = running
            .first()
            .and_then(|n| observe::wsrep(topology.get(n)))
            .map(|w| w.cluster_uuid.clone());
        let mut installed: BTreeMap<NodeName, Installed> = BTreeMap::new();
        let mut tools_ok = true;
        for name in cx.config.nodes.keys().cloned().collect::<Vec<_>>() {
            let host = cx.host(&name);
            let label = host.label().to_owned();
            out.push(Finding::ok(format!(
                "{label}: reached, as {}",
                if host.login_is_root() {
                    "root"
                } else {
                    "a user that becomes root with sudo"
                }
            )));
            let tools = match crate::host::HostExt::run_ok(host, &Cmd::new(SURVEY).as_root()) {
                Ok(text) => text,
                Err(err) => {
                    out.push(Finding::failed(
                        format!("{label}: cannot look around as root: {err}"),
                        "let the SSH user run commands as root without a password (sudo -n), or log in as root",
                    ));
                    tools_ok = false;
                    continue;
                }
            };
            let has = |tool: &str| {
                tools.lines().any(|l| {
                    l.strip_prefix(&format!("{tool}="))
                        .is_some_and(|v| !v.trim().is_empty())
                })
            };
            let mut missing = Vec::new();
            if Some(&name) == arbitrator.as_ref() {
                if !has("garbd") {
                    missing.push("galera-arbitrator-4");
                }
            } else {
                let survey = match facts::survey(cx.host(&name)) {
                    Ok(survey) => survey,
                    Err(err) => {
                        out.push(Finding::failed(
                            format!("{label}: cannot look around as root: {err}"),
                            "check that the host runs a POSIX shell with coreutils",
                        ));
                        tools_ok = false;
                        continue;
                    }
                };
                if survey.server.is_none() {
                    missing.push("mariadb-server");
                }
                if observe::reading(&cx.observe(&name))
                    .and_then(|r| r.provider.clone())
                    .is_none()
                {
                    missing.push("galera-4");
                }
                if !has("socat") {
                    missing.push("socat");
                }
                if survey.backup_tool.is_none() {
                    missing.push("mariadb-backup");
                }
                installed.insert(name.clone(), survey);
            }
            if cx.config.replication.tls && !has("openssl") {
                missing.push("openssl");
            }
            if !has("perl") {
                missing.push("perl-base");
            }
            if missing.is_empty() {
                out.push(Finding::ok(format!(
                    "{label}: {} installed",
                    if Some(&name) == arbitrator.as_ref() {
                        "garbd (galera-arbitrator-4)"
                    } else {
                        "MariaDB, galera-4, socat and mariadb-backup"
                    }
                )));
            } else {
                tools_ok = false;
                out.push(Finding::failed(
                    format!("{label}: not installed: {}", missing.join(", ")),
                    format!("install them there: apt-get install {}", missing.join(" ")),
                ));
            }
        }
        if !tools_ok {
            return finish(cx, out);
        }
        // The same MariaDB major version on every data node: Galera replicates between
        // minor releases only for the length of a rolling upgrade.
        let versions: Vec<(NodeName, facts::Version)> = installed
            .iter()
            .filter_map(|(n, i)| Some((n.clone(), i.server?)))
            .collect();
        if let Some((first, v)) = versions.first() {
            let other: Vec<String> = versions
                .iter()
                .filter(|(_, w)| (w.0, w.1) != (v.0, v.1))
                .map(|(n, w)| format!("{n} {w}"))
                .collect();
            if other.is_empty() {
                out.push(Finding::ok(format!(
                    "versions: MariaDB {}.{} on every data node",
                    v.0, v.1
                )));
            } else {
                out.push(Finding::failed(
                    format!(
                        "versions: {first} runs MariaDB {v}, but {}",
                        other.join(", ")
                    ),
                    "run the same MariaDB major version (e.g. 10.11) on every data node",
                ));
            }
        }
        for name in &data {
            let Some(survey) = installed.get(name).cloned() else {
                continue;
            };
            base::whereabouts(cx, name, &survey, &mut out);
        }
        let source = cx.roles.source.clone();
        for name in &data {
            let seen = cx.observe(name);
            let label = seen.label.clone();
            let Some(reading) = observe::reading(&seen).cloned() else {
                continue;
            };
            if running.contains(name) {
                out.push(Finding::ok(format!(
                    "{label}: Synced in the cluster {}",
                    settings::cluster_name(cx.config)
                )));
                continue;
            }
            if seen.upstream().is_some() {
                out.push(Finding::failed(
                    format!("{label}: replicates from another server (SHOW SLAVE STATUS)"),
                    "a Galera node replicates only within the cluster: stop that replication there first (STOP SLAVE; RESET SLAVE ALL)",
                ));
            }
            if !seen.answers() {
                if *name != source && seen.member && !reading.mariadbd_running {
                    // Set up by an earlier run that stopped (a state transfer that failed):
                    // its own data was moved aside then; it joins again.
                    out.push(Finding::ok(format!(
                        "{label}: stopped, with ha-setup's settings from an earlier run: it joins again (what its datadir holds now is moved aside first)"
                    )));
                } else if *name == source || !resolve::former_member(&reading, uuid.as_deref()) {
                    out.push(Finding::failed(
                        format!(
                            "{label}: MariaDB does not answer ({}), so ha-setup cannot see what it holds",
                            seen.problem.as_deref().unwrap_or("not running")
                        ),
                        format!("start it there: service {} start", layout::paths(cx, name).service.value),
                    ));
                }
                continue;
            }
            if *name == source {
                tables(cx, name, running.is_empty(), &mut out);
                sst_login(cx, name, &mut out);
            } else if !reading.app_databases.is_empty()
                && !resolve::former_member(&reading, uuid.as_deref())
            {
                out.push(Finding::failed(
                    format!(
                        "{label}: holds application databases of its own ({}); joining the cluster replaces its data with {source}'s",
                        reading.app_databases.join(", ")
                    ),
                    format!(
                        "move those databases off {name} (or drop them) first; or, if the cluster should start from {name}'s data, mark it role = \"primary\""
                    ),
                ));
            } else {
                out.push(Finding::ok(format!(
                    "{label}: holds no application database; it joins with a copy of {source}'s data, its own moved aside"
                )));
            }
        }
        space(cx, &source, &data, &running, &mut out)?;
        ports(cx, &mut out);
        finish(cx, out)
    }
}

fn finish(cx: &mut Ctx<'_>, out: Vec<Finding>) -> anyhow::Result<Verdict> {
    let failed = out.iter().filter(|f| !f.ok).count();
    let total = out.len();
    cx.findings = out;
    Ok(Verdict::Done(if failed == 0 {
        format!("all {total} checks passed")
    } else {
        format!("{failed} of {total} checks failed")
    }))
}

/// The first node's tables: Galera replicates InnoDB only (others would silently differ
/// between the nodes), and a table without a primary key replicates slowly and may apply
/// differently on each node.
fn tables(cx: &mut Ctx<'_>, name: &NodeName, first_init: bool, out: &mut Vec<Finding>) {
    let system = SYSTEM_SCHEMAS
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT 'engine', TABLE_SCHEMA, TABLE_NAME, IFNULL(ENGINE, '') FROM information_schema.TABLES \
         WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ({system}) AND IFNULL(ENGINE, '') <> 'InnoDB' \
         ORDER BY 2, 3;\n\
         SELECT 'nokey', t.TABLE_SCHEMA, t.TABLE_NAME, '' FROM information_schema.TABLES t \
         WHERE t.TABLE_TYPE = 'BASE TABLE' AND t.TABLE_SCHEMA NOT IN ({system}) AND NOT EXISTS (\
         SELECT 1 FROM information_schema.TABLE_CONSTRAINTS c WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA \
         AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = 'PRIMARY KEY') ORDER BY 2, 3"
    );
    let host = cx.host(name);
    let label = host.label().to_owned();
    let rows = match client::rows(host, &sql) {
        Ok(rows) => rows,
        Err(err) => {
            out.push(Finding::failed(
                format!("{label}: cannot list the application's tables: {err:#}"),
                "check that root can read information_schema there",
            ));
            return;
        }
    };
    let field =
        |row: &Vec<Option<String>>, i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let other_engine: Vec<String> = rows
        .iter()
        .filter(|r| field(r, 0) == "engine")
        .map(|r| format!("{}.{} ({})", field(r, 1), field(r, 2), field(r, 3)))
        .collect();
    let no_key: Vec<String> = rows
        .iter()
        .filter(|r| field(r, 0) == "nokey")
        .map(|r| format!("{}.{}", field(r, 1), field(r, 2)))
        .collect();
    if other_engine.is_empty() {
        out.push(Finding::ok(format!(
            "{label}: every application table is InnoDB"
        )));
    } else {
        let what = format!(
            "{label}: tables Galera does not replicate (not InnoDB): {}",
            other_engine.join(", ")
        );
        let fix = "convert each to InnoDB (ALTER TABLE … ENGINE=InnoDB) or drop it: their rows would differ between the nodes";
        out.push(if first_init {
            Finding::failed(what, fix)
        } else {
            Finding::warning(what, fix)
        });
    }
    if !no_key.is_empty() {
        out.push(Finding::warning(
            format!(
                "{label}: tables without a primary key (Galera replicates them slowly, and a DELETE without one may apply differently on each node): {}",
                no_key.join(", ")
            ),
            "give each a primary key (ALTER TABLE … ADD PRIMARY KEY …)",
        ));
    }
}

/// mariadb-backup logs in for a state transfer as the server's OS user, mysql, by
/// unix_socket: that account must be able to log in that way (ha-setup makes it when it
/// is missing, and never changes how an existing one logs in).
fn sst_login(cx: &mut Ctx<'_>, name: &NodeName, out: &mut Vec<Finding>) {
    let host = cx.host(name);
    let label = host.label().to_owned();
    match super::init::sst_grants(host) {
        Ok(None) => out.push(Finding::ok(format!(
            "{label}: no account mysql@localhost yet: ha-setup makes it (unix_socket login, the privileges mariadb-backup needs)"
        ))),
        Ok(Some(grants)) if grants.contains("unix_socket") => out.push(Finding::ok(format!(
            "{label}: mysql@localhost logs in by unix_socket (the state transfer's login)"
        ))),
        Ok(Some(_)) => out.push(Finding::failed(
            format!("{label}: mysql@localhost exists but does not log in by unix_socket, so mariadb-backup cannot log in without a password"),
            "let it log in by unix_socket too: ALTER USER 'mysql'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('…') (or drop the account: ha-setup makes it)",
        )),
        Err(err) => out.push(Finding::failed(
            format!("{label}: cannot read the grants of mysql@localhost: {err:#}"),
            "check that root can log in there over the socket",
        )),
    }
}

/// Each joiner receives a full copy into its datadir while its old data stays there,
/// moved aside: room for the first node's data on the joiner's data filesystem.
fn space(
    cx: &mut Ctx<'_>,
    source: &NodeName,
    data: &[NodeName],
    running: &[NodeName],
    out: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    let Some(server) = super::super::observe::state(&cx.observe(source)).map(|s| s.server.clone())
    else {
        return Ok(());
    };
    let joining: Vec<NodeName> = data
        .iter()
        .filter(|n| *n != source && !running.contains(n))
        .cloned()
        .collect();
    if joining.is_empty() {
        return Ok(());
    }
    let bytes = facts::backup_bytes(cx.host(source), &server)?;
    let needed = bytes + bytes / 10 + base::MARGIN_BYTES;
    for name in joining {
        let datadir = layout::paths(cx, &name).datadir.value;
        let host = cx.host(&name);
        let room = facts::room(host, &datadir)?;
        let line = format!(
            "{}: {} free at {datadir} (filesystem {} mounted at {}); the copy of {source}'s data takes {}",
            host.label(),
            human_bytes(room.free),
            room.device,
            room.mount,
            human_bytes(bytes)
        );
        if room.free >= needed {
            out.push(Finding::ok(line));
        } else {
            out.push(Finding::failed(
                line,
                format!(
                    "free at least {} on that filesystem (the data plus 10% and {} of margin; the old data stays, moved aside)",
                    human_bytes(needed - room.free),
                    human_bytes(base::MARGIN_BYTES)
                ),
            ));
        }
    }
    Ok(())
}

/// The ports each node must reach on each other, tested from the nodes themselves, all at
/// once: replication (4567) between every two members, the arbitrator's included; the
/// database (3306), the incremental (4568) and the full state transfer (4444) between
/// data nodes.
fn ports(cx: &mut Ctx<'_>, out: &mut Vec<Finding>) {
    let config = cx.config;
    let arbitrator = settings::arbitrator(config);
    let ports_of = |name: &NodeName| -> Vec<u16> {
        if Some(name) == arbitrator.as_ref() {
            vec![GCOMM_PORT]
        } else {
            let db = config.node(name).db_port.unwrap_or(3306);
            vec![db, GCOMM_PORT, IST_PORT, SST_PORT]
        }
    };
    let mut jobs = Vec::new();
    for (name, node) in &config.nodes {
        let listen: Vec<String> = ports_of(name).iter().map(u16::to_string).collect();
        let mut targets = String::new();
        for (other, peer) in &config.nodes {
            if other == name {
                continue;
            }
            let both_data = Some(name) != arbitrator.as_ref() && Some(other) != arbitrator.as_ref();
            for port in ports_of(other) {
                if both_data || port == GCOMM_PORT {
                    targets.push_str(&format!("{other} {} {port}\n", peer.replication_address()));
                }
            }
        }
        let cmd = Cmd::script(
            PORTS,
            &[
                node.replication_address(),
                &listen.join(" "),
                &PORT_TEST_SECS.to_string(),
                &targets,
            ],
        )
        .as_root();
        jobs.push((name.clone(), cmd));
    }
    let mut hosts = cx.hosts.all_mut();
    let results: Vec<(NodeName, String, Result<String, String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .iter_mut()
            .map(|(name, host, _)| {
                let cmd = jobs
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, c)| c.clone())
                    .expect("a job per node");
                let name = name.clone();
                let host: &mut dyn Host = &mut **host;
                scope.spawn(move || {
                    let label = host.label().to_owned();
                    let result = match host.run(&cmd) {
                        Ok(output) if output.success() => Ok(output.stdout_text()),
                        Ok(output) => Err(output.stderr.trim().to_owned()),
                        Err(err) => Err(err.to_string()),
                    };
                    (name, label, result)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    // What each node could not listen on (its address is not its own: a NAT in between).
    let mut untestable: Vec<(NodeName, String)> = Vec::new();
    for (name, _, result) in &results {
        if let Ok(text) = result {
            for line in text.lines() {
                if let Some(port) = line
                    .strip_prefix("listen ")
                    .and_then(|l| l.strip_suffix(" unavailable"))
                {
                    untestable.push((name.clone(), port.to_owned()));
                }
            }
        }
    }
    let mut reached = 0;
    for (name, label, result) in results {
        let text = match result {
            Ok(text) => text,
            Err(err) => {
                out.push(Finding::failed(
                    format!("{label}: could not test the ports it reaches: {err}"),
                    "check that perl (perl-base) is installed there",
                ));
                continue;
            }
        };
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            match words[..] {
                ["ok", ..] => reached += 1,
                ["fail", other, address, port] => {
                    let other = NodeName::new(other);
                    if untestable.iter().any(|(n, p)| *n == other && p == port) {
                        out.push(Finding::ok(format!(
                            "ports: {name} → {other} {address}:{port} not tested ({address} is not an address of {other} itself; a NAT or proxy in between?)"
                        )));
                        continue;
                    }
                    out.push(Finding::failed(
                        format!("ports: {name} cannot reach {other} at {address}:{port} ({})", port_use(port)),
                        format!(
                            "open TCP port {port} from {name} to {other} (firewall, security group), or set {} to an address {name} reaches",
                            config.key(other.as_str(), "replication_host")
                        ),
                    ));
                }
                _ => {}
            }
        }
    }
    if reached > 0 {
        out.push(Finding::ok(format!(
            "ports: {reached} node-to-node connections made, each from the node itself (a stand-in listener where nothing listens yet)"
        )));
    }
}

fn port_use(port: &str) -> &'static str {
    match port.parse::<u16>() {
        Ok(GCOMM_PORT) => "Galera replication",
        Ok(IST_PORT) => "incremental state transfer, IST",
        Ok(SST_PORT) => "state transfer, SST",
        _ => "the database",
    }
}
