//! preflight: everything init needs, checked on every node before anything changes. Each
//! check is one line with its verdict (like `repmgr --dry-run`); one failure stops the run.

use anyhow::Context;

use super::facts::{self, Installed, Server};
use super::layout::{self, Origin};
use super::{observe, seed};
use crate::host::Host;
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
        let mut everyone = vec![source.clone()];
        everyone.extend(targets.iter().cloned());
        let mut out = Vec::new();
        let mut surveyed = Vec::new();
        for name in &everyone {
            let host = cx.host(name);
            let label = host.label().to_owned();
            out.push(Finding::ok(format!("{label}: reached, as {}", login(host))));
            surveyed.push(survey(host, &mut out));
        }
        let Some(surveyed) = surveyed.into_iter().collect::<Option<Vec<Installed>>>() else {
            cx.findings = out;
            return Ok(Verdict::Done("stopped early".into()));
        };
        for (name, installed) in everyone.iter().zip(&surveyed) {
            whereabouts(cx, name, installed, &mut out);
        }
        let on_source = &surveyed[0];
        let server = source_server(cx, on_source, &mut out);
        for (target, installed) in targets.iter().zip(&surveyed[1..]) {
            let label = cx.host(target).label().to_owned();
            installed_on_replica(&label, installed, &mut out);
            if let (Some(server), Some(replica)) = (&server, installed.server) {
                let p = server.version;
                if (replica.0, replica.1) >= (p.0, p.1) {
                    out.push(Finding::ok(format!(
                        "versions: {target} {replica} can replicate from {source} {p}"
                    )));
                } else {
                    out.push(Finding::failed(
                        format!("versions: {target} {replica} is older than {source} {p}"),
                        format!("upgrade MariaDB on {target} to {}.{} or newer", p.0, p.1),
                    ));
                }
            }
        }
        for (name, installed) in everyone.iter().zip(&surveyed) {
            let label = cx.host(name).label().to_owned();
            match &installed.backup_tool {
                Some(path) => out.push(Finding::ok(format!("{label}: mariadb-backup at {path}"))),
                None => out.push(Finding::failed(
                    format!("{label}: mariadb-backup is not installed"),
                    "install it there: apt-get install mariadb-backup (the same version as the server)",
                )),
            }
        }
        let topology = cx.topology();
        let ids = layout::server_ids(cx.config, &topology, &source);
        let mut seen: Vec<(u32, &NodeName)> = Vec::new();
        let mut clash = false;
        for name in &everyone {
            let id = ids[name];
            if let Some((_, other)) = seen.iter().find(|(i, _)| *i == id) {
                clash = true;
                out.push(Finding::failed(
                    format!("server_id: {other} and {name} would both use {id}"),
                    format!(
                        "give each node its own server_id in the config ({} = …)",
                        cx.config.key(name.as_str(), "server_id")
                    ),
                ));
            }
            seen.push((id, name));
        }
        if !clash {
            out.push(Finding::ok(format!(
                "server_id: {}",
                everyone
                    .iter()
                    .map(|n| format!("{n} {}", ids[n]))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if let Some(server) = &server {
            for target in &targets {
                reachability(cx, server, target, &mut out);
            }
            space(cx, server, &mut out)?;
        }
        for target in &targets {
            innodb_outside(cx, target, &mut out);
        }
        let failed = out.iter().filter(|f| !f.ok).count();
        let total = out.len();
        cx.findings = out;
        Ok(Verdict::Done(if failed == 0 {
            format!("all {total} checks passed")
        } else {
            format!("{failed} of {total} checks failed")
        }))
    }
}

fn login(host: &mut dyn Host) -> String {
    if host.login_is_root() {
        "root".to_owned()
    } else {
        "a user that becomes root with sudo".to_owned()
    }
}

fn survey(host: &mut dyn Host, out: &mut Vec<Finding>) -> Option<Installed> {
    match facts::survey(host) {
        Ok(installed) => Some(installed),
        Err(err) => {
            let fix = if host.login_is_root() {
                "check that the host runs a POSIX shell with coreutils".to_owned()
            } else {
                "let the SSH user run commands as root without a password (sudo -n), or log in as root".to_owned()
            };
            out.push(Finding::failed(
                format!("{}: cannot look around as root: {err}", host.label()),
                fix,
            ));
            None
        }
    }
}

fn source_server(
    cx: &mut Ctx<'_>,
    installed: &Installed,
    out: &mut Vec<Finding>,
) -> Option<Server> {
    let source = cx.roles.source.clone();
    let label = cx.host(&source).label().to_owned();
    let service = layout::service(cx, &source);
    if installed.server.is_none() {
        out.push(Finding::failed(
            format!("{label}: MariaDB server is not installed"),
            "install it (apt-get install mariadb-server) and load the application's data",
        ));
        return None;
    }
    if !installed.running {
        out.push(Finding::failed(
            format!("{label}: MariaDB is installed but not running"),
            format!("start it: systemctl start {service} (or service {service} start)"),
        ));
        return None;
    }
    match facts::server(cx.host(&source)) {
        Ok(server) => {
            out.push(Finding::ok(format!(
                "{label}: MariaDB {} running, data in {}",
                server.version, server.datadir
            )));
            Some(server)
        }
        Err(err) => {
            out.push(Finding::failed(
                format!("{label}: MariaDB does not answer root on its socket: {err:#}"),
                "ha-setup logs in as root through the unix socket, as Debian sets it up; check `mariadb -e 'select 1'` as root there",
            ));
            None
        }
    }
}

fn installed_on_replica(label: &str, installed: &Installed, out: &mut Vec<Finding>) {
    match installed.server {
        Some(version) => out.push(Finding::ok(format!(
            "{label}: MariaDB {version} installed ({})",
            if installed.running {
                "running; its data will be moved aside"
            } else {
                "not running"
            }
        ))),
        None => out.push(Finding::failed(
            format!("{label}: MariaDB server is not installed"),
            "install it there: apt-get install mariadb-server mariadb-backup",
        )),
    }
}

/// Each replica must reach the source's database port at its replication address (see
/// [`crate::reach`]).
fn reachability(cx: &mut Ctx<'_>, server: &Server, target: &NodeName, out: &mut Vec<Finding>) {
    let source = cx.roles.source.clone();
    let address = cx.node(&source).replication_address().to_owned();
    let port = cx.node(&source).db_port.unwrap_or(server.port);
    let listening = server.bind_address.is_empty()
        || server
            .bind_address
            .split(',')
            .any(|a| matches!(a.trim(), "0.0.0.0" | "*" | "::") || a.trim() == address);
    out.push(crate::reach::check(
        cx,
        target,
        &address,
        port,
        listening,
        "MariaDB listens only on its own address list until prepare-primary",
    ));
}

/// Where MariaDB lives on a node, as found there (preflight prints it for every node), and
/// what makes that unusable: a config key that contradicts the running server, or nothing
/// found where ha-setup must write its settings or control the service.
pub(crate) fn whereabouts(
    cx: &mut Ctx<'_>,
    name: &NodeName,
    installed: &Installed,
    out: &mut Vec<Finding>,
) {
    let label = cx.host(name).label().to_owned();
    let paths = layout::paths(cx, name);
    let seen = cx.observe(name);
    if seen.unreachable.is_some()
        || observe::host_facts(&seen).is_none()
        || installed.server.is_none()
    {
        // Said already: the survey of this node failed, or MariaDB is not installed.
        return;
    }
    out.push(Finding::ok(format!(
        "{label}: data in {} ({}); settings go to {} ({}); service {} ({})",
        paths.datadir.value,
        paths.datadir.origin,
        paths.config_dir.value,
        paths.config_dir.origin,
        paths.service.value,
        paths.service.origin,
    )));
    let key = |k: &str| cx.config.key(name.as_str(), k);
    if let Some(server) = observe::state(&seen).map(|s| &s.server)
        && paths.datadir.origin == Origin::Config
        && server.datadir != paths.datadir.value
    {
        out.push(Finding::failed(
            format!(
                "{label}: the config says datadir {} but MariaDB runs with {}",
                paths.datadir.value, server.datadir
            ),
            format!(
                "remove {} from the config (ha-setup finds the datadir on the host), or correct it",
                key("datadir")
            ),
        ));
    }
    if paths.datadir.origin == Origin::Assumed {
        out.push(Finding::failed(
            format!("{label}: cannot tell where MariaDB keeps its data (it is not running, and mariadbd --verbose --help names no datadir)"),
            format!("start MariaDB there, or set {} = \"…\" in the config", key("datadir")),
        ));
    }
    if paths.config_dir.origin == Origin::Assumed {
        out.push(Finding::failed(
            format!("{label}: none of MariaDB's option files includes a directory (!includedir), so a settings file of ha-setup's would not be read"),
            format!(
                "set {} = \"…\" in the config to a directory MariaDB reads, or add `!includedir /etc/mysql/mariadb.conf.d/` to its my.cnf",
                key("config_dir")
            ),
        ));
    }
    if paths.service.origin == Origin::Assumed {
        out.push(Finding::failed(
            format!("{label}: no service runs MariaDB there (no systemd unit or /etc/init.d script named mariadb, mysql or mysqld)"),
            format!("set {} = \"…\" in the config to the service's name", key("service")),
        ));
    }
}

/// A replica whose InnoDB files live outside its datadir cannot take a copy by putting it
/// in the datadir: the server would start with the old redo log or undo tablespaces.
fn innodb_outside(cx: &mut Ctx<'_>, target: &NodeName, out: &mut Vec<Finding>) {
    let seen = cx.observe(target);
    let Some(state) = observe::state(&seen) else {
        return;
    };
    let datadir = state.server.datadir.clone();
    let Ok(row) = super::client::row(
        cx.host(target),
        "SELECT @@innodb_data_home_dir, @@innodb_log_group_home_dir, @@innodb_undo_directory",
    ) else {
        return;
    };
    let names = [
        "innodb_data_home_dir",
        "innodb_log_group_home_dir",
        "innodb_undo_directory",
    ];
    let outside: Vec<String> = names
        .iter()
        .zip(row)
        .filter_map(|(name, value)| {
            let value = value.unwrap_or_default();
            let dir = value.trim_end_matches('/');
            let inside = matches!(dir, "" | "." | "./") || dir == datadir;
            (!inside).then(|| format!("{name} = {value}"))
        })
        .collect();
    if !outside.is_empty() {
        let label = cx.host(target).label().to_owned();
        out.push(Finding::failed(
            format!(
                "{label}: InnoDB keeps files outside the datadir {datadir} ({}); a copy put in the datadir would start with the old ones",
                outside.join(", ")
            ),
            "move those files into the datadir and remove the settings there (ha-setup puts a copy only into the datadir)",
        ));
    }
}

/// Room for the data on each replica's data filesystem for its copy (received inside the
/// datadir; its old data stays there too, moved aside, which takes no room). The source
/// keeps no copy: the backup is streamed as it is taken, and only mariadb-backup's own
/// temporary files, a small constant, land in its stream directory.
fn space(cx: &mut Ctx<'_>, server: &Server, out: &mut Vec<Finding>) -> anyhow::Result<()> {
    let source = cx.roles.source.clone();
    let mut places = Vec::new();
    for target in cx.roles.targets.clone() {
        if let Some(why) = seed::has_copy(cx, &target)?.filter(|_| !cx.roles.fresh_copy) {
            out.push(Finding::ok(format!("disk space: {why}")));
            continue;
        }
        let incoming = layout::paths(cx, &target).incoming_dir();
        places.push((target, incoming, "the copy"));
    }
    if places.is_empty() {
        return Ok(());
    }
    let host = cx.host(&source);
    let room = facts::room(host, layout::STREAM_DIR)?;
    let line = format!(
        "{}: {} free at {} for mariadb-backup's temporary files (filesystem {} mounted at {}); \
         the backup itself is streamed, not kept there",
        host.label(),
        human_bytes(room.free + room.used),
        layout::STREAM_DIR,
        room.device,
        room.mount
    );
    if room.free + room.used >= MARGIN_BYTES {
        out.push(Finding::ok(line));
    } else {
        out.push(Finding::failed(
            line,
            format!(
                "free at least {} on that filesystem",
                human_bytes(MARGIN_BYTES)
            ),
        ));
    }
    let datadir = server.datadir.clone();
    let data = facts::backup_bytes(cx.host(&source), server)
        .with_context(|| format!("measuring {datadir} on {source}"))?;
    let needed = data + data / 10 + MARGIN_BYTES;
    for (name, path, what) in places {
        let host = cx.host(&name);
        let room = facts::room(host, &path)?;
        // A copy already there (a resumed run) is replaced by the new one: its room counts.
        let free = room.free + room.used;
        let line = format!(
            "{}: {} free for {what} at {path} (filesystem {} mounted at {}); a backup of the data takes {} (binary logs not counted)",
            host.label(),
            human_bytes(free),
            room.device,
            room.mount,
            human_bytes(data)
        );
        if free >= needed {
            out.push(Finding::ok(line));
        } else {
            out.push(Finding::failed(
                line,
                format!(
                    "free at least {} on that filesystem (the data plus 10% and {} of margin)",
                    human_bytes(needed - free),
                    human_bytes(MARGIN_BYTES)
                ),
            ));
        }
    }
    Ok(())
}
