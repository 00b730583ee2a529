//! preflight: everything init needs, checked on both hosts before anything changes. Each
//! check is one line with its verdict (like `repmgr --dry-run`); one failure stops the run.

use anyhow::Context;

use super::facts::{self, Installed, Server};
use super::layout;
use super::seed;
use crate::host::{Cmd, Host, HostExt, quote};
use crate::plan::{Ctx, Finding, Step, Verdict};
use crate::runner::human_bytes;

pub struct Preflight;

/// Room to leave on a filesystem beyond the data itself.
const MARGIN_BYTES: u64 = 256 << 20;

impl Step for Preflight {
    fn name(&self) -> &'static str {
        "preflight"
    }

    fn purpose(&self) -> &'static str {
        "check both hosts before anything changes"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let primary_label = cx.primary.label().to_owned();
        let secondary_label = cx.secondary.label().to_owned();
        let mut out = Vec::new();
        out.push(Finding::ok(format!(
            "{primary_label}: reached, as {}",
            login(cx.primary)
        )));
        out.push(Finding::ok(format!(
            "{secondary_label}: reached, as {}",
            login(cx.secondary)
        )));

        let on_primary = survey(cx.primary, &mut out);
        let on_secondary = survey(cx.secondary, &mut out);
        let (Some(on_primary), Some(on_secondary)) = (on_primary, on_secondary) else {
            cx.findings = out;
            return Ok(Verdict::Done("stopped early".into()));
        };

        let server = primary_server(cx, &on_primary, &mut out);
        installed_on_secondary(&secondary_label, &on_secondary, &mut out);
        if let (Some(server), Some(secondary)) = (&server, on_secondary.server) {
            let (p, s) = (server.version, secondary);
            if (s.0, s.1) >= (p.0, p.1) {
                out.push(Finding::ok(format!(
                    "versions: secondary {s} can replicate from primary {p}"
                )));
            } else {
                out.push(Finding::failed(
                    format!("versions: secondary {s} is older than primary {p}"),
                    format!(
                        "upgrade MariaDB on the secondary to {}.{} or newer",
                        p.0, p.1
                    ),
                ));
            }
        }
        for (label, installed) in [
            (&primary_label, &on_primary),
            (&secondary_label, &on_secondary),
        ] {
            match &installed.backup_tool {
                Some(path) => out.push(Finding::ok(format!("{label}: mariadb-backup at {path}"))),
                None => out.push(Finding::failed(
                    format!("{label}: mariadb-backup is not installed"),
                    "install it there: apt-get install mariadb-backup (the same version as the server)",
                )),
            }
        }
        let (primary_id, secondary_id) = layout::server_ids(cx.config, server.as_ref());
        if primary_id == secondary_id {
            out.push(Finding::failed(
                format!("server_id: both nodes would use {primary_id}"),
                "give each node its own server_id in the config ([primary] server_id = 1, [secondary] server_id = 2)",
            ));
        } else {
            out.push(Finding::ok(format!(
                "server_id: primary {primary_id}, secondary {secondary_id}"
            )));
        }
        if let Some(server) = &server {
            reachability(cx, server, &mut out);
            space(cx, server, &mut out)?;
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

fn primary_server(
    cx: &mut Ctx<'_>,
    installed: &Installed,
    out: &mut Vec<Finding>,
) -> Option<Server> {
    let label = cx.primary.label().to_owned();
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
            format!(
                "start it: systemctl start {} (or service {} start)",
                layout::service(&cx.config.primary),
                layout::service(&cx.config.primary)
            ),
        ));
        return None;
    }
    match facts::server(cx.primary) {
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

fn installed_on_secondary(label: &str, installed: &Installed, out: &mut Vec<Finding>) {
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

/// The secondary must reach the primary's database port at its replication address. When
/// the primary's server does not listen there yet (Debian binds 127.0.0.1), a short-lived
/// listener on the primary takes its place for the test, so firewalls show up now.
fn reachability(cx: &mut Ctx<'_>, server: &Server, out: &mut Vec<Finding>) {
    let address = cx.config.primary.replication_address().to_owned();
    let port = cx.config.primary.db_port.unwrap_or(server.port);
    let what = format!("the secondary reaches the primary's database at {address}:{port}");
    let listening = server.bind_address.is_empty()
        || server
            .bind_address
            .split(',')
            .any(|a| matches!(a.trim(), "0.0.0.0" | "*" | "::") || a.trim() == address);
    let target = format!("{} {port}", quote(&address));
    let probe = Cmd::new(format!(
        "exec perl -MIO::Socket::INET -e 'for (1..20) {{ exit 0 if IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], Proto => \"tcp\", Timeout => 3); select(undef, undef, undef, 0.25) }} exit 1' {target}"
    ));
    let result = if listening {
        cx.secondary
            .run(&probe)
            .map(|o| (o.success(), String::new()))
    } else {
        let listen = Cmd::new(format!(
            "exec perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => $ARGV[0], LocalPort => $ARGV[1], Listen => 1, ReuseAddr => 1, Proto => \"tcp\") or do {{ print STDERR \"cannot listen: $!\\n\"; exit 3 }}; $SIG{{ALRM}} = sub {{ exit 2 }}; alarm 8; exit($s->accept ? 0 : 1)' {target}"
        ))
        .as_root();
        let (primary, secondary) = (&mut *cx.primary, &mut *cx.secondary);
        std::thread::scope(|scope| {
            let listener = scope.spawn(|| primary.run(&listen));
            std::thread::sleep(std::time::Duration::from_millis(300));
            let probed = secondary.run(&probe);
            let listened = listener
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            match (probed, listened) {
                (Ok(p), Ok(l)) if l.status == Some(3) => Ok((p.success(), "untestable".to_owned())),
                (Ok(p), Ok(_)) => Ok((p.success(), " (tested with a stand-in listener: MariaDB listens only on its own address list until prepare-primary)".to_owned())),
                (Err(err), _) | (_, Err(err)) => Err(err),
            }
        })
    };
    match result {
        Ok((true, note)) => out.push(Finding::ok(format!("{what}{note}"))),
        Ok((false, note)) if note == "untestable" => out.push(Finding::ok(format!(
            "{what}: not tested ({address} is not an address of the primary itself; a NAT or proxy in between?)"
        ))),
        Ok((false, _)) => out.push(Finding::failed(
            format!("{what}: no connection"),
            format!(
                "open TCP port {port} from the secondary to {address} (firewall, security group), or set [primary] replication_host to an address the secondary can reach"
            ),
        )),
        Err(err) => out.push(Finding::failed(
            format!("{what}: could not test: {err}"),
            "check that perl (perl-base) is installed on both hosts",
        )),
    }
}

/// Room for the data: in the primary's work directory for the snapshot, and beside the
/// secondary's datadir for the copy (its old datadir stays, moved aside).
fn space(cx: &mut Ctx<'_>, server: &Server, out: &mut Vec<Finding>) -> anyhow::Result<()> {
    if seed::seeded(cx)?.is_some() {
        out.push(Finding::ok(
            "disk space: the secondary already holds its copy of the data",
        ));
        return Ok(());
    }
    let datadir = layout::datadir(&cx.config.primary, Some(server));
    let data = facts::used_bytes(cx.primary, &datadir)
        .with_context(|| format!("measuring {datadir} on the primary"))?;
    let needed = data + data / 10 + MARGIN_BYTES;
    let secondary_datadir = layout::datadir(&cx.config.secondary, None);
    let places = [
        (true, layout::WORK_DIR.to_owned(), "the snapshot"),
        (false, layout::incoming_dir(&secondary_datadir), "the copy"),
    ];
    for (on_primary, path, what) in places {
        let host: &mut dyn Host = if on_primary { cx.primary } else { cx.secondary };
        let free = facts::free_bytes(host, &path)?;
        let line = format!(
            "{}: {} free for {what} at {path}; the data takes {}",
            host.label(),
            human_bytes(free),
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
