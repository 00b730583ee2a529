//! enable-replication and verify-link: the secondary replicates from the primary by GTID,
//! starting right after the snapshot's position, and a canary row written on the primary
//! shows up on the secondary.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::client::{self, literal};
use super::facts::{self, Replica};
use super::layout;
use super::primary::password;
use super::seed::seeded;
use crate::config::Config;
use crate::host::{Cmd, Host, HostExt};
use crate::plan::{Action, Ctx, Input, NodeName, SECRET_MARK, Step, Verdict};
use crate::secret::Secret;

pub struct EnableReplication;

/// Whether the secondary's replica connection is the one this config describes.
fn is_ours(replica: &Replica, cx: &Ctx<'_>, port: u16) -> bool {
    replica.master_host == cx.config.primary.replication_address()
        && replica.master_port == port
        && replica.master_user == cx.config.replication.user
        && replica.using_gtid.eq_ignore_ascii_case("Slave_Pos")
}

impl Step for EnableReplication {
    fn name(&self) -> &'static str {
        "enable-replication"
    }

    fn purpose(&self) -> &'static str {
        "the secondary replicates from the primary by GTID, from the snapshot's position"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let port = match cx.config.primary.db_port {
            Some(port) => port,
            None => facts::server(cx.primary)?.port,
        };
        let mut gtid = "<the GTID position in the bundle>".to_owned();
        if !cx.predicting() {
            if let Some(replica) = facts::replica(cx.secondary)?.filter(|r| is_ours(r, cx, port)) {
                if replica.io_ok() && replica.sql_ok() {
                    return Ok(Verdict::Done(format!(
                        "replicating from {}:{port} by GTID",
                        replica.master_host
                    )));
                }
                // Configured already: its position is the replica's own now, so only start.
                return Ok(Verdict::Todo(vec![Action::Run {
                    on: NodeName::Secondary,
                    why: "start the replica threads".into(),
                    cmd: client::command(),
                    input: Input::Text("START SLAVE;\n".into()),
                }]));
            }
            match seeded(cx)? {
                Some(record) => gtid = record.gtid,
                None if cx.dry_run => {}
                None => bail!(
                    "the secondary holds no copy placed by ha-setup ({} is missing); run `ha-setup init` again",
                    layout::SEED_RECORD
                ),
            }
        }
        let (secret, _) = password(cx)?;
        let secret = Secret::new(client::escape(secret.expose()));
        let sql = format!(
            "STOP SLAVE;\n\
             RESET SLAVE ALL;\n\
             SET GLOBAL gtid_slave_pos = {gtid};\n\
             {change}\n\
             START SLAVE;\n",
            gtid = literal(&gtid),
            change = change_master(cx.config, NodeName::Primary, port),
        );
        Ok(Verdict::Todo(vec![Action::Run {
            on: NodeName::Secondary,
            why: format!(
                "replicate from {}:{port} by GTID, after the snapshot's position",
                cx.config.primary.replication_address()
            ),
            cmd: client::command(),
            input: Input::WithSecret(sql, secret),
        }]))
    }
}

/// `CHANGE MASTER TO` the `source` node, by GTID from `gtid_slave_pos`, over TLS checked
/// against the source's CA when TLS is on; the password is [`SECRET_MARK`].
pub fn change_master(config: &Config, source: NodeName, port: u16) -> String {
    let node = match source {
        NodeName::Primary => &config.primary,
        NodeName::Secondary => &config.secondary,
    };
    let tls = if config.replication.tls {
        format!(
            ",\n  MASTER_SSL = 1, MASTER_SSL_CA = {}, MASTER_SSL_VERIFY_SERVER_CERT = 1",
            literal(layout::PEER_CA)
        )
    } else {
        String::new()
    };
    format!(
        "CHANGE MASTER TO\n  MASTER_HOST = {host}, MASTER_PORT = {port},\n  \
         MASTER_USER = {user}, MASTER_PASSWORD = '{SECRET_MARK}',\n  \
         MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 10, MASTER_HEARTBEAT_PERIOD = 5{tls};",
        host = literal(node.replication_address()),
        user = literal(&config.replication.user),
    )
}

pub struct VerifyLink;

impl Step for VerifyLink {
    fn name(&self) -> &'static str {
        "verify-link"
    }

    fn purpose(&self) -> &'static str {
        "both replica threads running, no error, and a canary row arrives"
    }

    fn check(&self, _cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        Ok(Verdict::Todo(vec![Action::Canary {
            from: NodeName::Primary,
            to: NodeName::Secondary,
            timeout: Duration::from_secs(60),
        }]))
    }
}

/// Waits until both replica threads run; fails with the server's error and what to do.
pub fn wait_for_threads(secondary: &mut dyn Host, timeout: Duration) -> anyhow::Result<Replica> {
    let deadline = Instant::now() + timeout;
    loop {
        let replica = facts::replica(secondary)?;
        let Some(replica) = replica else {
            bail!(
                "the secondary does not replicate from anywhere; run `ha-setup init` to set it up"
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
    let hint = if error.contains("Access denied") {
        "the replication user's password on the primary differs from the secondary's: run `ha-setup init` again, which resets both from the kept password"
    } else if error.contains("connecting to master") || error.contains("Can't connect") {
        "the secondary cannot connect to the primary's database: check the primary is running, listens on its replication address (ss -ltn there), and no firewall blocks the port"
    } else if error.contains("SSL") || error.contains("TLS") || error.contains("certificate") {
        "the TLS handshake failed: check the primary's certificate in /etc/mysql/ha-setup-tls matches its replication address, or set [replication] tls = false"
    } else if error.contains("Duplicate entry") || error.contains("Could not execute") {
        "the secondary's data differs from the primary's (it was written to, or the copy is stale): re-seed it with `ha-setup recover rebuild`"
    } else {
        "see the secondary's MariaDB error log (/var/log/mysql/error.log or journalctl -u mariadb)"
    };
    format!(
        "the replication link is not running (IO thread: {}, SQL thread: {}): {error}. Next: {hint}.",
        or_unknown(&replica.io_running),
        or_unknown(&replica.sql_running)
    )
}

fn or_unknown(state: &str) -> &str {
    if state.is_empty() { "unknown" } else { state }
}

/// Writes a fresh token on the primary (in the tool's own schema) and waits for it on the
/// secondary; returns how long it took to arrive, from the commit on the primary to the
/// read on the secondary, by the hosts' clocks. The secondary watches from a loop of its
/// own, started before the write: one SSH command per poll would add more than it measures.
pub fn canary(
    primary: &mut dyn Host,
    secondary: &mut dyn Host,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let token = Secret::generate().expose().to_owned();
    let schema = layout::SCHEMA;
    let ensure = format!(
        "CREATE DATABASE IF NOT EXISTS {schema};\n\
         CREATE TABLE IF NOT EXISTS {schema}.canary (id TINYINT UNSIGNED PRIMARY KEY, token CHAR(32) NOT NULL, written_at DATETIME(6) NOT NULL) ENGINE=InnoDB;\n"
    );
    client::execute(primary, &Input::Text(ensure))?;
    let watch = Cmd::new(format!(
        "end=$(( $(date +%s) + {secs} ))\n\
         while :; do\n\
         \tr=$(mariadb -N -B -e \"SELECT TIMESTAMPDIFF(MICROSECOND, written_at, NOW(6)) FROM {schema}.canary WHERE id = 1 AND token = '{token}'\" 2>/dev/null)\n\
         \t[ -n \"$r\" ] && {{ echo \"$r\"; exit 0; }}\n\
         \t[ \"$(date +%s)\" -ge \"$end\" ] && exit 3\n\
         \tsleep 0.01\n\
         done",
        secs = timeout.as_secs().max(1)
    ))
    .as_root();
    let write = Input::Text(format!(
        "REPLACE INTO {schema}.canary VALUES (1, '{token}', NOW(6));\n"
    ));
    let (watched, written) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| secondary.run(&watch));
        // Let the watcher start before the write, so it sees the row as soon as it lands.
        std::thread::sleep(Duration::from_millis(300));
        let written = client::execute(primary, &write);
        let watched = watcher
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (watched, written)
    });
    written?;
    let watched = watched?;
    if watched.success() {
        let micros: i64 = watched.stdout_text().trim().parse().unwrap_or(0);
        return Ok(Duration::from_micros(micros.max(0) as u64));
    }
    let state = facts::replica(secondary)
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
        .unwrap_or_else(|| "the secondary does not replicate".into());
    bail!(
        "the canary written on the primary did not arrive on the secondary within {}s; {state}",
        timeout.as_secs()
    )
}
