//! verify-link: every standby's WAL receiver streaming, its primary showing it, and a
//! canary row written on the primary read back on each standby.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::client;
use super::layout;
use super::observe;
use crate::engine::Canary;
use crate::host::{Cmd, Host, HostExt};
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Input, Step, Verdict};
use crate::secret::Secret;

use crate::topology::Observed;

const VERIFY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct VerifyLink;

impl Step for VerifyLink {
    fn name(&self) -> &'static str {
        "verify-link"
    }

    fn purpose(&self) -> &'static str {
        "every standby streaming, its primary showing it, and a canary row arrives"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let source = cx.roles.source.clone();
        let mut standbys: Vec<NodeName> = cx.roles.old.iter().cloned().collect();
        standbys.extend(cx.roles.targets.iter().cloned());
        if standbys.is_empty() {
            return Ok(Verdict::Done("no standby to check".into()));
        }
        let mut on = vec![source.clone()];
        on.extend(standbys.iter().cloned());
        Ok(Verdict::Todo(vec![Action::Call {
            on,
            why: format!(
                "wait up to {}s for {} to stream from {source}, then write a canary row and read it there",
                VERIFY_TIMEOUT.as_secs(),
                crate::topology::and_list(&standbys)
            ),
            call: Call::new(move |cx| verify(cx, &source, &standbys, VERIFY_TIMEOUT)),
        }]))
    }
}

pub fn verify(
    cx: &mut Ctx<'_>,
    source: &NodeName,
    standbys: &[NodeName],
    timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for standby in standbys {
        lines.push(wait_streaming(cx, source, standby, timeout)?);
    }
    let mut seen = vec![cx.observe_fresh(source)];
    for standby in standbys {
        seen.push(cx.observe_fresh(standby));
    }
    let (source_host, standby_hosts) = cx.hosts.one_and_many(source, standbys);
    match canary(source_host, standby_hosts, seen.iter().collect(), timeout)? {
        Canary::Skipped(why) => lines.push(format!(
            "no canary: {why} (reopen writes with `ha-setup recover unfence`, then `ha-setup status` proves the link)"
        )),
        Canary::Arrived(results) => {
            for (standby, result) in standbys.iter().zip(results) {
                match result {
                    Ok(took) => lines.push(format!(
                        "the canary arrived on {standby} in {} ms",
                        took.as_millis()
                    )),
                    Err(why) => bail!("the link {source} → {standby}: {why}"),
                }
            }
        }
    }
    Ok(lines)
}

/// Waits until the standby's WAL receiver streams and its primary lists it.
fn wait_streaming(
    cx: &mut Ctx<'_>,
    source: &NodeName,
    standby: &NodeName,
    timeout: Duration,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    let name = standby.as_str().to_owned();
    loop {
        let seen = cx.observe_fresh(standby);
        let primary = cx.observe_fresh(source);
        let listed = observe::server(&primary).and_then(|s| {
            s.replicas
                .iter()
                .find(|r| r.application_name == name && r.state.as_deref() == Some("streaming"))
                .cloned()
        });
        let streaming = observe::server(&seen).is_some_and(|s| s.receiving);
        if streaming && let Some(replica) = listed {
            return Ok(format!(
                "{standby} streams from {source} (sent up to {}, replayed up to {})",
                replica.sent_lsn.as_deref().unwrap_or("?"),
                replica.replay_lsn.as_deref().unwrap_or("?")
            ));
        }
        if Instant::now() >= deadline {
            bail!(
                "{standby} does not stream from {source} after {}s: {}. {}",
                timeout.as_secs(),
                seen.upstream()
                    .map(|u| u.lost_source())
                    .unwrap_or_else(|| seen.describe()),
                hint(
                    seen.upstream()
                        .and_then(|u| u.error.as_deref())
                        .unwrap_or("")
                )
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What to do about a WAL receiver's error, from the server log's words.
pub fn hint(error: &str) -> String {
    let e = error.to_ascii_lowercase();
    if e.contains("password authentication failed") || e.contains("no pg_hba.conf entry") {
        "The primary refuses the replication role: run `ha-setup init` again to set its password and pg_hba.conf lines".into()
    } else if e.contains("replication slot") {
        "The standby's slot on the primary is missing or was invalidated (it stayed away past max_slot_wal_keep_size): re-seed it with `ha-setup recover rebuild`".into()
    } else if e.contains("timeline") {
        "The standby's history diverged from its primary's: `ha-setup recover rejoin`, or re-seed it with `ha-setup recover rebuild`".into()
    } else if e.contains("certificate") || e.contains("ssl") {
        "TLS failed: run `ha-setup init` again to renew the certificates and share the CAs".into()
    } else if e.contains("could not connect")
        || e.contains("connection refused")
        || e.contains("timeout")
    {
        "The standby cannot reach its primary's database: check that it runs and that the port is open between them".into()
    } else {
        "See the standby's PostgreSQL log in /var/log/postgresql".into()
    }
}

/// Writes a canary on `source` (only while it is out of recovery) and waits for it on each
/// standby, each watching from a loop of its own started before the write. Each canary is
/// a row of its own, keyed by its token, so canaries written at once (status from cron
/// while an operation checks its link) never replace each other's row before a standby has
/// seen it; rows older than a day go.
pub fn canary(
    source: &mut dyn Host,
    standbys: Vec<&mut dyn Host>,
    seen: Vec<&Observed>,
    timeout: Duration,
) -> anyhow::Result<Canary> {
    let clusters: Vec<String> = seen
        .iter()
        .map(|s| observe::cluster(s).map(|c| c.id()).unwrap_or_default())
        .collect();
    let Some(source_cluster) = clusters.first().filter(|c| !c.is_empty()).cloned() else {
        bail!("no PostgreSQL cluster was read on {}", source.label());
    };
    let token = Secret::generate().expose().to_owned();
    let schema = layout::SCHEMA;
    let writable: bool = client::json(
        source,
        &source_cluster,
        "SELECT to_json(NOT pg_is_in_recovery())",
    )?;
    if !writable {
        return Ok(Canary::Skipped(format!(
            "{} is in recovery (fenced, or a standby)",
            source.label()
        )));
    }
    client::execute(
        source,
        &source_cluster,
        &Input::Text(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};\n\
             CREATE TABLE IF NOT EXISTS {schema}.canaries (token text PRIMARY KEY, written_at timestamptz NOT NULL);\n\
             CREATE INDEX IF NOT EXISTS canaries_by_age ON {schema}.canaries (written_at);\n"
        )),
    )?;
    let query = format!(
        "SELECT (extract(epoch FROM clock_timestamp() - written_at) * 1000000)::bigint FROM {schema}.canaries \
         WHERE token = '{token}'"
    );
    let watchers: Vec<Cmd> = clusters[1..]
        .iter()
        .map(|cluster| {
            crate::engine::canary_watch(
                timeout,
                &[
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    "psql",
                    "--cluster",
                    cluster,
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-c",
                    &query,
                ],
            )
        })
        .collect();
    // One transaction that writes only out of recovery (a standby refuses it anyway), and
    // takes away the canaries older than a day.
    let write = format!(
        "BEGIN;\n\
         INSERT INTO {schema}.canaries VALUES ('{token}', clock_timestamp());\n\
         DELETE FROM {schema}.canaries WHERE written_at < clock_timestamp() - interval '1 day';\n\
         COMMIT;\n"
    );
    let (watched, written) = std::thread::scope(|scope| {
        let handles: Vec<_> = standbys
            .into_iter()
            .zip(&watchers)
            .map(|(standby, watch)| scope.spawn(move || (standby.run(watch), standby)))
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let written = client::execute(source, &source_cluster, &Input::Text(write));
        let watched: Vec<_> = handles
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        (watched, written)
    });
    written?;
    let mut results = Vec::new();
    for (result, standby) in watched {
        results.push(match result {
            Ok(output) if output.success() => {
                let micros: i64 = output.stdout_text().trim().parse().unwrap_or(0);
                Ok(Duration::from_micros(micros.max(0) as u64))
            }
            Ok(_) => Err(format!(
                "the canary did not arrive on {} within {}s",
                standby.label(),
                timeout.as_secs()
            )),
            Err(err) => Err(format!("cannot watch for the canary: {err}")),
        });
    }
    Ok(Canary::Arrived(results))
}
