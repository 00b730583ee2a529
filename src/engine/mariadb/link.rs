//! enable-replication and verify-link: each replica replicates from the primary by GTID,
//! starting right after the snapshot's position, and a canary row written on the primary
//! shows up on every replica.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::client::{self, literal};
use super::facts::{self, Replica};
use super::layout;
use super::primary::password;
use super::seed::seeded;
use crate::config::Config;
use crate::engine::Canary;
use crate::host::{Cmd, Host, HostExt};
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Input, SECRET_MARK, Step, Verdict};
use crate::secret::Secret;

pub struct EnableReplication;

/// Whether a replica connection is the one this config describes for `source`.
pub fn is_ours(replica: &Replica, config: &Config, source: &NodeName, port: u16) -> bool {
    replica.master_host == config.node(source).replication_address()
        && replica.master_port == port
        && replica.master_user == config.replication.user
        && replica.using_gtid.eq_ignore_ascii_case("Slave_Pos")
}

/// The source's database port: the config's, else what the server says.
pub fn source_port(cx: &mut Ctx<'_>, source: &NodeName) -> anyhow::Result<u16> {
    match cx.node(source).db_port {
        Some(port) => Ok(port),
        None => Ok(facts::server(cx.host(source))?.port),
    }
}

impl Step for EnableReplication {
    fn name(&self) -> &'static str {
        "enable-replication"
    }

    fn purpose(&self) -> &'static str {
        "each replica replicates from the primary by GTID, from the snapshot's position"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let source = cx.roles.source.clone();
        let port = source_port(cx, &source)?;
        let mut actions = Vec::new();
        let mut done = Vec::new();
        let (plain, _) = password(cx)?;
        let secret = Secret::new(client::escape(plain.expose()));
        for target in cx.roles.targets.clone() {
            let mut gtid = "<the GTID position in the bundle>".to_owned();
            if !cx.predicting() {
                let replica = facts::replica(cx.host(&target))?;
                if let Some(replica) = replica.filter(|r| is_ours(r, cx.config, &source, port)) {
                    // Configured already: its position is the replica's own now, so it is
                    // only given a changed password, the timeout, or started.
                    let kept = kept_link(cx.host(&target), &plain)?;
                    let running = replica.io_ok() && replica.sql_ok();
                    let (why, sql) = if kept.password_differs {
                        (
                            "the replication password changed: the replica reconnects with the new one \
                             (CHANGE MASTER … MASTER_PASSWORD, kept in its master.info)"
                                .to_owned(),
                            format!(
                                "STOP SLAVE;\n{UNLOGGED}{net}CHANGE MASTER TO MASTER_PASSWORD = '{SECRET_MARK}';\nSTART SLAVE;\n",
                                net = net_timeout()
                            ),
                        )
                    } else if running && kept.net_timeout == Some(NET_TIMEOUT_SECS) {
                        done.push(format!(
                            "{target} replicates from {}:{port} by GTID",
                            replica.master_host
                        ));
                        continue;
                    } else if running {
                        (
                            format!(
                                "notice a silent primary within {NET_TIMEOUT_SECS}s (slave_net_timeout is {}): reconnect with it",
                                kept.net_timeout
                                    .map_or("unknown".into(), |t| format!("{t}s"))
                            ),
                            format!(
                                "{}STOP SLAVE IO_THREAD;\nSTART SLAVE IO_THREAD;\n",
                                net_timeout()
                            ),
                        )
                    } else {
                        (
                            "start the replica threads".to_owned(),
                            format!("{}START SLAVE;\n", net_timeout()),
                        )
                    };
                    actions.push(Action::Run {
                        on: target.clone(),
                        why,
                        cmd: client::command(),
                        input: Input::WithSecret(sql, secret.clone()),
                    });
                    continue;
                }
                match seeded(cx.host(&target))? {
                    Some(record) => gtid = record.gtid,
                    None if cx.dry_run => {}
                    None => bail!(
                        "{target} holds no copy placed by ha-setup ({} is missing) and does not replicate from {source}; \
                         run `ha-setup recover rebuild {target}` to give it one",
                        layout::SEED_RECORD
                    ),
                }
            }
            let sql = format!(
                "STOP SLAVE;\n\
                 RESET SLAVE ALL;\n\
                 SET GLOBAL gtid_slave_pos = {gtid};\n\
                 {change}\n\
                 START SLAVE;\n",
                gtid = literal(&gtid),
                change = change_master(cx.config, &source, port),
            );
            actions.push(Action::Run {
                on: target.clone(),
                why: format!(
                    "replicate from {source} ({}:{port}) by GTID, after the snapshot's position",
                    cx.node(&source).replication_address()
                ),
                cmd: client::command(),
                input: Input::WithSecret(sql, secret.clone()),
            });
        }
        Ok(if actions.is_empty() {
            Verdict::Done(done.join("; "))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// How long a replica waits on a silent source before it drops the connection and
/// reconnects (`slave_net_timeout`, MariaDB's default 60 s): three of the source's
/// heartbeats. A replica that still receives (its IO thread running) is the witness that
/// its primary lives (`recover promote`), so a source cut off by the network, which
/// resets nothing, must stop counting as alive within a bounded time.
pub const NET_TIMEOUT_SECS: u64 = 15;

/// The source sends a heartbeat when it has had nothing to send for this long.
pub const HEARTBEAT_SECS: u64 = 5;

pub fn net_timeout() -> String {
    format!("SET GLOBAL slave_net_timeout = {NET_TIMEOUT_SECS};\n")
}

/// What the session runs next stays out of the general and slow query logs: a
/// `CHANGE MASTER` carries the password itself (the replica needs it to log in), and
/// MariaDB writes statements to those logs as they are. It is not written to the binary
/// log; the processlist shows it, to users with the PROCESS privilege, for the
/// milliseconds it runs.
pub const UNLOGGED: &str = "SET SESSION sql_log_off = ON, slow_query_log = OFF;\n";

/// What a replica keeps of its link that SQL does not show.
pub struct KeptLink {
    /// Its stored replication password is not the one given.
    pub password_differs: bool,
    pub net_timeout: Option<u64>,
}

const REPLICA_LINK: &str = include_str!("scripts/replica-link.sh");

pub fn kept_link(host: &mut dyn Host, password: &Secret) -> anyhow::Result<KeptLink> {
    let input = Input::WithSecret(SECRET_MARK.into(), password.clone());
    let text = host.run_ok_with_input(&Cmd::script(REPLICA_LINK, &[]).as_root(), &input.bytes())?;
    Ok(parse_kept_link(&text))
}

fn parse_kept_link(text: &str) -> KeptLink {
    let value = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    KeptLink {
        password_differs: value("password") == Some("differs"),
        net_timeout: value("net_timeout").and_then(|t| t.parse().ok()),
    }
}

/// `CHANGE MASTER TO` the `source` node, by GTID from `gtid_slave_pos`, over TLS checked
/// against the other nodes' CAs when TLS is on; the password is [`SECRET_MARK`]. Kept out
/// of the server's logs ([`UNLOGGED`]), with the replica's `slave_net_timeout` set.
pub fn change_master(config: &Config, source: &NodeName, port: u16) -> String {
    let node = config.node(source);
    let tls = if config.replication.tls {
        format!(
            ",\n  MASTER_SSL = 1, MASTER_SSL_CA = {}, MASTER_SSL_VERIFY_SERVER_CERT = 1",
            literal(layout::PEER_CA)
        )
    } else {
        String::new()
    };
    format!(
        "{UNLOGGED}{net}CHANGE MASTER TO\n  MASTER_HOST = {host}, MASTER_PORT = {port},\n  \
         MASTER_USER = {user}, MASTER_PASSWORD = '{SECRET_MARK}',\n  \
         MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 10, MASTER_HEARTBEAT_PERIOD = {HEARTBEAT_SECS}{tls};",
        net = net_timeout(),
        host = literal(node.replication_address()),
        user = literal(&config.replication.user),
    )
}

/// verify-link: a canary written on the primary arrives on every replica. In a
/// switchover or promote the source is the new primary; the targets (and the old primary)
/// its replicas.
pub struct VerifyLink;

impl Step for VerifyLink {
    fn name(&self) -> &'static str {
        "verify-link"
    }

    fn purpose(&self) -> &'static str {
        "every replica's threads running, no error, and a canary row arrives"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let source = cx.roles.source.clone();
        let mut replicas: Vec<NodeName> = cx.roles.old.iter().cloned().collect();
        replicas.extend(cx.roles.targets.iter().cloned());
        if replicas.is_empty() {
            return Ok(Verdict::Done("no replica to check".into()));
        }
        let mut on = vec![source.clone()];
        on.extend(replicas.iter().cloned());
        Ok(Verdict::Todo(vec![Action::Call {
            on,
            why: format!(
                "write a canary row on {source} and wait up to {}s for it on {}",
                VERIFY_TIMEOUT.as_secs(),
                crate::topology::and_list(&replicas)
            ),
            call: Call::new(move |cx| verify(cx, &source, &replicas, VERIFY_TIMEOUT)),
        }]))
    }
}

const VERIFY_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits for every replica's threads, then a canary from the source arriving on each.
pub fn verify(
    cx: &mut Ctx<'_>,
    source: &NodeName,
    replicas: &[NodeName],
    timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    for replica in replicas {
        wait_for_threads(cx.host(replica), timeout)
            .with_context(|| format!("the link {source} → {replica}"))?;
    }
    let (source_host, replica_hosts) = cx.hosts.one_and_many(source, replicas);
    match canary(source_host, replica_hosts, timeout)? {
        // A fenced primary (a rebuild from it) takes no canary: the threads run, and the
        // canary proves the link once writes are open.
        Canary::Skipped(why) => Ok(vec![format!(
            "the replica threads run on {}; no canary: {why} (reopen writes with `ha-setup recover unfence`, then `ha-setup status` proves the link)",
            crate::topology::and_list(replicas)
        )]),
        Canary::Arrived(results) => {
            let mut lines = Vec::new();
            for (replica, result) in replicas.iter().zip(results) {
                match result {
                    Ok(took) => lines.push(format!(
                        "the canary arrived on {replica} in {} ms",
                        took.as_millis()
                    )),
                    Err(why) => bail!("the link {source} → {replica}: {why}"),
                }
            }
            Ok(lines)
        }
    }
}

/// Waits until both replica threads run; fails with the server's error and what to do.
pub fn wait_for_threads(replica_host: &mut dyn Host, timeout: Duration) -> anyhow::Result<Replica> {
    let deadline = Instant::now() + timeout;
    loop {
        let replica = facts::replica(replica_host)?;
        let Some(replica) = replica else {
            bail!(
                "{} does not replicate from anywhere; run `ha-setup init` to set it up",
                replica_host.label()
            );
        };
        if replica.io_ok() && replica.sql_ok() {
            return Ok(replica);
        }
        // An SQL thread that stopped on an error will not recover by waiting.
        let sql_stopped = replica.sql_running == "No" && !replica.last_sql_error.is_empty();
        if sql_stopped || Instant::now() >= deadline {
            bail!("{}", broken_link_message(&replica));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What a broken replica connection says, and the likely fix.
pub fn broken_link_message(replica: &Replica) -> String {
    let error = replica
        .last_error()
        .unwrap_or_else(|| "no error reported".into());
    format!(
        "the replication link is not running (IO thread: {}, SQL thread: {}): {error}. Next: {}.",
        or_unknown(&replica.io_running),
        or_unknown(&replica.sql_running),
        hint(&error)
    )
}

/// The likely fix for a replica's error.
pub fn hint(error: &str) -> &'static str {
    if error.contains("Access denied") {
        "the replication user's password on the primary differs from the replica's: run `ha-setup init` again, which resets both from the kept password"
    } else if error.contains("connecting to master") || error.contains("Can't connect") {
        "the replica cannot connect to the primary's database: check the primary is running, listens on its replication address (ss -ltn there), and no firewall blocks the port"
    } else if error.contains("SSL") || error.contains("TLS") || error.contains("certificate") {
        "the TLS handshake failed: check the primary's certificate in /etc/mysql/ha-setup-tls matches its replication address, or set [replication] tls = false"
    } else if error.contains("Duplicate entry") || error.contains("Could not execute") {
        "the replica's data differs from the primary's (it was written to, or the copy is stale): re-seed it from the primary with `ha-setup recover rebuild NODE`"
    } else if error.is_empty() || error == "no error reported" {
        "start it again with `ha-setup init`, which repairs the replicas of the live primary"
    } else {
        "see the replica's MariaDB error log (/var/log/mysql/error.log or journalctl -u mariadb)"
    }
}

fn or_unknown(state: &str) -> &str {
    if state.is_empty() { "unknown" } else { state }
}

/// Writes a fresh token on the source (in the tool's own schema) and waits for it on every
/// replica; returns how long it took to arrive on each, from the commit on the source to
/// the read on the replica, by the hosts' clocks. Each replica watches from a loop of its
/// own, started before the write: one SSH command per poll would add more than it measures.
///
/// The write is one statement that writes only while the source takes writes: its
/// `WHERE @@global.read_only = 0` is read after the statement holds its locks, so a fence
/// that lands first makes it write nothing, and one that lands later waits for it. A
/// canary is never a transaction on a node that is fenced or a replica.
///
/// Each canary is a row of its own, keyed by its token: canaries written at once (status
/// from cron while an operation checks its link, two status runs, the two writers of a
/// pair) never replace each other's row before a replica has seen it. Each writer removes
/// its own rows older than a day, never another's, so no two nodes delete the same row.
pub fn canary(
    source: &mut dyn Host,
    replicas: Vec<&mut dyn Host>,
    timeout: Duration,
) -> anyhow::Result<Canary> {
    let token = Secret::generate().expose().to_owned();
    let schema = layout::SCHEMA;
    let ready = client::row(
        source,
        &format!(
            "SELECT @@global.read_only, (SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = '{schema}' AND table_name = 'canaries'), @@hostname"
        ),
    )?;
    let field = |i: usize| ready.get(i).cloned().flatten().unwrap_or_default();
    if field(0) != "0" {
        return Ok(Canary::Skipped(format!(
            "{} is read-only (fenced, or not the primary)",
            source.label()
        )));
    }
    if field(1) == "0" {
        // The first canary of a cluster (init): the table is made while the source takes
        // writes, checked the line before.
        client::execute(
            source,
            &Input::Text(format!(
                "CREATE DATABASE IF NOT EXISTS {schema};\n\
                 CREATE TABLE IF NOT EXISTS {schema}.canaries (token CHAR(32) PRIMARY KEY, writer VARCHAR(255) NOT NULL, \
                 written_at DATETIME(6) NOT NULL, KEY by_writer (writer, written_at)) ENGINE=InnoDB;\n"
            )),
        )?;
    }
    // The writer's name as a literal, not @@hostname in the statement: a replica that
    // replays a statement would read its own.
    let writer = literal(&field(2));
    let watch = crate::engine::canary_watch(
        timeout,
        &[
            "mariadb",
            "-N",
            "-B",
            "-e",
            &format!(
                "SELECT TIMESTAMPDIFF(MICROSECOND, written_at, NOW(6)) FROM {schema}.canaries WHERE token = '{token}'"
            ),
        ],
    );
    let write = format!(
        "INSERT INTO {schema}.canaries SELECT '{token}', {writer}, NOW(6) FROM DUAL WHERE @@global.read_only = 0;\n\
         SELECT ROW_COUNT();\n"
    );
    let (watched, written) = std::thread::scope(|scope| {
        let watchers: Vec<_> = replicas
            .into_iter()
            .map(|replica| {
                let watch = &watch;
                scope.spawn(move || {
                    let result = replica.run(watch);
                    (result, replica)
                })
            })
            .collect();
        // Let the watchers start before the write, so each sees the row as soon as it lands.
        std::thread::sleep(Duration::from_millis(300));
        let written = client::rows(source, &write);
        let watched: Vec<_> = watchers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        (watched, written)
    });
    let wrote = written?
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .is_some_and(|count| count != "0");
    if !wrote {
        return Ok(Canary::Skipped(format!(
            "{} was fenced while the canary was written",
            source.label()
        )));
    }
    // Housekeeping, after the answer: a failure here (a fence that just landed) loses
    // nothing, and the next canary tries again.
    let _ = client::execute(
        source,
        &Input::Text(format!(
            "DELETE FROM {schema}.canaries WHERE writer = {writer} AND written_at < NOW(6) - INTERVAL 1 DAY \
             AND @@global.read_only = 0 ORDER BY written_at, token LIMIT 1000;\n"
        )),
    );
    let mut results = Vec::new();
    for (result, replica) in watched {
        results.push(match result {
            Ok(output) if output.success() => {
                let micros: i64 = output.stdout_text().trim().parse().unwrap_or(0);
                Ok(Duration::from_micros(micros.max(0) as u64))
            }
            Ok(_) => Err(lost_canary(replica, timeout)),
            Err(err) => Err(format!("cannot watch for the canary: {err}")),
        });
    }
    Ok(Canary::Arrived(results))
}

fn lost_canary(replica: &mut dyn Host, timeout: Duration) -> String {
    let state = facts::replica(replica)
        .ok()
        .flatten()
        .map(|r| {
            if r.io_ok() && r.sql_ok() {
                format!(
                    "the replica threads run, {} behind",
                    r.seconds_behind
                        .map_or("an unknown time".into(), |s| format!("{s} s"))
                )
            } else {
                broken_link_message(&r)
            }
        })
        .unwrap_or_else(|| format!("{} does not replicate", replica.label()));
    format!(
        "the canary did not arrive on {} within {}s; {state}",
        replica.label(),
        timeout.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_is_kept_out_of_the_logs_and_notices_a_silent_source() {
        let config = Config::parse(
            "engine = \"mariadb\"\n[primary]\nhost = \"198.51.100.11\"\n[secondary]\nhost = \"198.51.100.12\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let sql = change_master(&config, &NodeName::new("primary"), 3306);
        let unlogged = sql.find("sql_log_off = ON").expect("unlogged");
        let change = sql.find("CHANGE MASTER").expect("the change");
        assert!(unlogged < change, "{sql}");
        assert!(sql.contains("SET GLOBAL slave_net_timeout = 15;"), "{sql}");
        assert!(sql.contains("MASTER_HEARTBEAT_PERIOD = 5"), "{sql}");
        assert!(
            sql.contains(&format!("MASTER_PASSWORD = '{SECRET_MARK}'")),
            "{sql}"
        );
        const { assert!(NET_TIMEOUT_SECS >= 2 * HEARTBEAT_SECS) };
    }

    #[test]
    fn what_a_replica_keeps() {
        let kept = parse_kept_link("net_timeout=60\npassword=differs\n");
        assert!(kept.password_differs);
        assert_eq!(kept.net_timeout, Some(60));
        let same = parse_kept_link("net_timeout=15\npassword=same\n");
        assert!(!same.password_differs);
        let unknown = parse_kept_link("net_timeout=15\npassword=unknown\n");
        assert!(!unknown.password_differs);
    }
}
