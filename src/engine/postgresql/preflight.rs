//! preflight: everything init needs, checked on every node before anything changes, one
//! line per check; one failure stops the run.

use super::client;
use super::layout;
use super::observe::{self, Server};
use crate::node::NodeName;
use crate::plan::{Ctx, Finding, Step, Verdict};
use crate::runner::human_bytes;

pub struct Preflight;

/// Room to leave on a filesystem beyond the data itself.
pub const MARGIN_BYTES: u64 = 256 << 20;

impl Step for Preflight {
    fn name(&self) -> &'static str {
        "preflight"
    }

    fn purpose(&self) -> &'static str {
        "check every node before anything changes"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let source = cx.roles.source.clone();
        let targets = cx.roles.targets.clone();
        let mut out = Vec::new();
        let mut everyone = vec![source.clone()];
        everyone.extend(targets.iter().cloned());
        for name in &everyone {
            let seen = cx.observe(name);
            let host = cx.host(name);
            let login = if host.login_is_root() {
                "root"
            } else {
                "a user that becomes root with sudo"
            };
            out.push(Finding::ok(format!("{}: reached, as {login}", seen.label)));
            let Some(cluster) = observe::cluster(&seen) else {
                out.push(Finding::failed(
                    format!(
                        "{}: {}",
                        seen.label,
                        seen.problem
                            .as_deref()
                            .unwrap_or("no PostgreSQL cluster found")
                    ),
                    "install PostgreSQL from Debian's packages (apt-get install postgresql), \
                     or set db_port to the port of the cluster to use",
                ));
                continue;
            };
            out.push(Finding::ok(format!(
                "{}: cluster {} on port {}, data in {}{}, settings in {}; service: {}",
                seen.label,
                cluster.id(),
                cluster.port,
                cluster.datadir,
                if cluster.datadir_mount {
                    " (a filesystem of its own)"
                } else {
                    ""
                },
                cluster.confdir,
                cluster.control("…")
            )));
            if !cluster.include_dir {
                out.push(Finding::failed(
                    format!(
                        "{}: {}/postgresql.conf does not include conf.d, so ha-setup's settings would not be read",
                        seen.label, cluster.confdir
                    ),
                    format!(
                        "add `include_dir = 'conf.d'` at the end of {}/postgresql.conf, as Debian ships it",
                        cluster.confdir
                    ),
                ));
            }
        }
        let source_seen = cx.observe(&source);
        let Some(server) = observe::server(&source_seen).cloned() else {
            out.push(Finding::failed(
                format!(
                    "{}: PostgreSQL does not answer: {}",
                    source_seen.label,
                    source_seen.problem.as_deref().unwrap_or("unknown")
                ),
                "start it (pg_ctlcluster VERSION NAME start) and load the application's data",
            ));
            return Ok(finish(cx, out));
        };
        out.push(Finding::ok(format!(
            "{}: PostgreSQL {} running{}",
            source_seen.label,
            server.version,
            if server.in_recovery {
                " in recovery (a fenced primary: init keeps it fenced)"
            } else {
                ", takes writes"
            }
        )));
        for target in &targets {
            let seen = cx.observe(target);
            let Some(cluster) = observe::cluster(&seen) else {
                continue;
            };
            let theirs = cluster.version.clone();
            let ours = (server.version_num / 10000).to_string();
            if theirs == ours {
                out.push(Finding::ok(format!(
                    "versions: {target} has PostgreSQL {theirs}, as {source}"
                )));
            } else {
                out.push(Finding::failed(
                    format!(
                        "versions: {target}'s cluster is PostgreSQL {theirs}, {source} runs {ours}: a standby must run the same major version"
                    ),
                    format!("install PostgreSQL {ours} on {target} (apt-get install postgresql-{ours}) and make its cluster the one on the config's db_port"),
                ));
            }
            if let Some(theirs) = observe::server(&seen).cloned()
                && !seen.member
                && theirs.system_identifier != server.system_identifier
            {
                out.push(own_databases(
                    cx,
                    target,
                    &cluster_id(&seen),
                    &theirs.system_identifier,
                ));
            }
            // The standby's slot name on the primary, if something else holds it.
            let slot = layout::slot_name(target);
            if let Some(taken) = server.slot(&slot)
                && (taken.slot_type != "physical"
                    || (taken.active
                        && !server
                            .replicas
                            .iter()
                            .any(|r| r.application_name == target.as_str())))
            {
                out.push(Finding::failed(
                    format!(
                        "{source}: the slot {slot} is there already and is not {target}'s ({} slot{})",
                        taken.slot_type,
                        if taken.active { ", in use by another client" } else { "" }
                    ),
                    format!(
                        "find who uses it (SELECT * FROM pg_replication_slots WHERE slot_name = '{slot}'; SELECT * FROM pg_stat_replication), \
                         stop that client and drop it (SELECT pg_drop_replication_slot('{slot}')), or name the node differently in the config"
                    ),
                ));
            }
            let address = cx.node(&source).replication_address().to_owned();
            let port = cx.node(&source).db_port.unwrap_or(server.port);
            let listening = server
                .listen_addresses
                .split(',')
                .any(|a| matches!(a.trim(), "*" | "0.0.0.0" | "::") || a.trim() == address);
            out.push(crate::reach::check(
                cx,
                target,
                &address,
                port,
                listening,
                "PostgreSQL listens on its own address list until prepare-primary",
            ));
        }
        connections(cx, &server, &mut out);
        space(cx, &server, &mut out)?;
        Ok(finish(cx, out))
    }
}

fn cluster_id(seen: &crate::topology::Observed) -> String {
    observe::cluster(seen).map(|c| c.id()).unwrap_or_default()
}

/// A standby-to-be whose cluster holds databases of its own (beyond postgres and the
/// templates) is someone's data: init does not replace it on its own say (a wrong host in
/// the config looks just like this).
fn own_databases(cx: &mut Ctx<'_>, target: &NodeName, cluster: &str, system: &str) -> Finding {
    let listed: anyhow::Result<Vec<String>> = client::json(
        cx.host(target),
        cluster,
        "SELECT coalesce(json_agg(datname ORDER BY datname), '[]') FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')",
    );
    match listed {
        Ok(names) if names.is_empty() || cx.roles.fresh_copy => Finding::ok(format!(
            "{target}: its own cluster (system {system}) will be moved aside, not deleted"
        )),
        Ok(names) => Finding::failed(
            format!(
                "{target}: its cluster holds databases of its own ({}), not a copy of {}'s",
                names.join(", "),
                cx.roles.source
            ),
            format!(
                "if that is the wrong host, correct the config; if its data may go, drop those databases on {target} \
                 (DROP DATABASE …) and run init again: its cluster is then moved aside whole, not deleted"
            ),
        ),
        Err(err) => Finding::failed(
            format!("{target}: cannot list its databases: {err:#}"),
            "check that PostgreSQL answers the postgres user on its socket there",
        ),
    }
}

/// The application's connections (`[postgresql] app_instances`, MAAS: 40 per region
/// controller) against the primary's `max_connections`: a warning with the exact setting,
/// or what init will set when the config lets it.
fn connections(cx: &mut Ctx<'_>, server: &Server, out: &mut Vec<Finding>) {
    let pg = &cx.config.postgresql;
    let (Some(instances), Some(needed)) = (pg.app_instances, pg.connections_needed()) else {
        return;
    };
    let source = cx.roles.source.clone();
    let what = format!(
        "connections: {instances} application instance(s) × {} and 5 reserved need max_connections = {needed}; {source} has {}",
        pg.connections_per_instance, server.max_connections
    );
    out.push(Finding::ok(if server.max_connections >= needed {
        what
    } else if pg.raise_max_connections {
        format!("{what}: init raises it to {needed} on every node (a restart, announced)")
    } else {
        format!(
            "WARNING {what}: too low. Set `max_connections = {needed}` in {source}'s postgresql.conf and on every standby (a restart), \
             or let init do it: [postgresql] raise_max_connections = true"
        )
    }));
}

fn finish(cx: &mut Ctx<'_>, out: Vec<Finding>) -> Verdict {
    let failed = out.iter().filter(|f| !f.ok).count();
    let total = out.len();
    cx.findings = out;
    Verdict::Done(if failed == 0 {
        format!("all {total} checks passed")
    } else {
        format!("{failed} of {total} checks failed")
    })
}

/// Room on each standby's data filesystem for its copy (received beside the data; the old
/// data stays too, moved aside, which takes no room), and a little on the primary for the
/// stream's own files: the backup itself is not kept there.
fn space(cx: &mut Ctx<'_>, server: &Server, out: &mut Vec<Finding>) -> anyhow::Result<()> {
    let source = cx.roles.source.clone();
    let mut places = Vec::new();
    for target in cx.roles.targets.clone() {
        if let Some(why) = super::seed::has_copy(cx, &target)?.filter(|_| !cx.roles.fresh_copy) {
            out.push(Finding::ok(format!("disk space: {why}")));
            continue;
        }
        let Ok(cluster) = layout::cluster(cx, &target) else {
            continue;
        };
        places.push((target, cluster.incoming_dir()));
    }
    if places.is_empty() {
        return Ok(());
    }
    let host = cx.host(&source);
    let room = crate::host::room::room(host, crate::tool::STREAM_DIR)?;
    let line = format!(
        "{}: {} free at {} for the stream's own files; the base backup itself is streamed, not kept there",
        host.label(),
        human_bytes(room.free + room.used),
        crate::tool::STREAM_DIR,
    );
    out.push(if room.free + room.used >= MARGIN_BYTES {
        Finding::ok(line)
    } else {
        Finding::failed(
            line,
            format!("free at least {} there", human_bytes(MARGIN_BYTES)),
        )
    });
    let data = crate::host::room::room(cx.host(&source), &server.datadir)?.used;
    let needed = data + data / 10 + MARGIN_BYTES;
    for (name, path) in places {
        let host = cx.host(&name);
        let room = crate::host::room::room(host, &path)?;
        let free = room.free + room.used;
        let line = format!(
            "{}: {} free for the copy at {path} (filesystem {} mounted at {}); {source}'s data takes {}",
            host.label(),
            human_bytes(free),
            room.device,
            room.mount,
            human_bytes(data)
        );
        out.push(if free >= needed {
            Finding::ok(line)
        } else {
            Finding::failed(
                line,
                format!(
                    "free at least {} on that filesystem (the data plus 10% and {} of margin)",
                    human_bytes(needed - free),
                    human_bytes(MARGIN_BYTES)
                ),
            )
        });
    }
    Ok(())
}
