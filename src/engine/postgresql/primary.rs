//! prepare-primary: the tool's settings file (WAL for standbys, wal_log_hints for a later
//! rewind, listening where the standbys connect, TLS, slot limits), ha-setup's lines at
//! the top of pg_hba.conf (backed up first), the fence file, the replication role with
//! only REPLICATION and LOGIN, and one physical slot per standby. Settings that need a
//! restart get one, announced; the primary then comes back fenced, as every node does,
//! and is promoted back at once when it took writes before.

use super::client::{self, literal};
use super::layout::{self, Cluster, Settings};
use super::observe::{self, Server};
use super::scram;
use super::service;
use crate::host::{Cmd, FileMode, Host, quote};
use crate::node::NodeName;
use crate::password::{PASSWORD_FILE, read_optional};
use crate::plan::{Action, Ctx, Input, SECRET_MARK, Step, Verdict};
use crate::secret::Secret;

pub struct PreparePrimary;

impl Step for PreparePrimary {
    fn name(&self) -> &'static str {
        "prepare-primary"
    }

    fn purpose(&self) -> &'static str {
        "WAL settings, access, the replication role and a slot per standby on the primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let source = cx.roles.source.clone();
        let seen = cx.observe(&source);
        let cluster = layout::cluster(cx, &source)?;
        let Some(server) = observe::server(&seen).cloned() else {
            anyhow::bail!(
                "PostgreSQL on {source} does not answer: {}",
                seen.problem.as_deref().unwrap_or("unknown")
            );
        };
        let settings = Settings::new(cx.config, &source, &server, None);
        let mut actions = Vec::new();
        let mut reload = false;
        if cx.config.replication.tls {
            let address = cx.node(&source).replication_address().to_owned();
            let made = certificates(cx.host(&source), &source, &address, &cluster)?;
            reload |= made.is_some();
            actions.extend(made);
        }
        if let Some(write) = hba(cx, &source, &cluster)? {
            reload = true;
            actions.push(write);
        }
        if let Some(write) = settings_file(cx, &source, &cluster, &settings)? {
            reload = true;
            actions.push(write);
        }
        actions.extend(fence_file(cx, &source, &cluster)?);
        let (secret, store) = crate::password::password(cx)?;
        if store {
            actions.push(Action::Write {
                on: source.clone(),
                why: "keep the replication password (root only)".into(),
                path: PASSWORD_FILE.into(),
                contents: Input::WithSecret(SECRET_MARK.into(), secret.clone()),
                mode: FileMode::private(),
            });
        }
        actions.extend(pgpass(cx, &source, &secret)?);
        actions.extend(roles(cx, &cluster, &secret)?);
        let restart = settings.needs_restart(&server);
        let took_writes = !server.in_recovery;
        if !restart.is_empty() {
            actions.push(Action::Run {
                on: source.clone(),
                why: format!(
                    "RESTART PostgreSQL {}, a few seconds without the database, because {}{}",
                    cluster.id(),
                    restart
                        .iter()
                        .map(|(name, was, now)| format!("{name} goes from '{was}' to '{now}'"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if took_writes {
                        "; it comes back fenced, as every node does, and is promoted at once (a new timeline begins)"
                    } else {
                        ""
                    }
                ),
                cmd: if took_writes {
                    // One action: a failure between the restart and the promotion would
                    // leave the primary fenced by ha-setup's own hand.
                    service::restart_then(&cluster)
                } else {
                    service::restart(&cluster)
                },
                input: if took_writes {
                    Input::Text(reopen_sql())
                } else {
                    Input::None
                },
            });
        } else if reload {
            actions.push(Action::Run {
                on: source.clone(),
                why: "reload PostgreSQL's settings (no restart needed)".into(),
                cmd: client::command(&cluster.id()),
                input: Input::Text("SELECT pg_reload_conf();\n".into()),
            });
        }
        let targets = cx.roles.targets.clone();
        actions.extend(slots(cx, &source, &cluster, &server, &targets)?);
        Ok(if actions.is_empty() {
            Verdict::Done(format!(
                "settings, access, role {} and slots in place",
                cx.config.replication.user
            ))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// The node's TLS certificate for its replication address (see [`crate::tls`]), its key
/// the postgres user's, loaded by a running server on reload.
pub fn certificates(
    host: &mut dyn Host,
    on: &NodeName,
    address: &str,
    cluster: &Cluster,
) -> anyhow::Result<Option<Action>> {
    let place = crate::tls::Place {
        dir: layout::DIR,
        key_owner: "postgres:postgres",
        reload: Cmd::new(format!(
            "{} >/dev/null 2>&1 || true",
            cluster.control("reload")
        )),
    };
    crate::tls::certificates(host, on, address, &place)
}

/// ha-setup's block at the top of pg_hba.conf, unless it is there as it should be.
pub fn hba(cx: &mut Ctx<'_>, on: &NodeName, cluster: &Cluster) -> anyhow::Result<Option<Action>> {
    let path = cluster.hba_path();
    let current = read_optional(cx.host(on), &path)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let wanted = layout::hba_with_block(&current, &layout::hba_lines(cx.config, on));
    if wanted == current {
        return Ok(None);
    }
    Ok(Some(Action::Write {
        on: on.clone(),
        why: "let the replication role in from the other nodes only (ha-setup's lines at the top of pg_hba.conf; the file is backed up first)".into(),
        path,
        contents: Input::Text(wanted),
        mode: FileMode::new(0o640).owned_by("postgres:postgres"),
    }))
}

/// Writes the node's settings file unless it holds them already.
pub fn settings_file(
    cx: &mut Ctx<'_>,
    on: &NodeName,
    cluster: &Cluster,
    settings: &Settings,
) -> anyhow::Result<Option<Action>> {
    let path = cluster.conf_path();
    let wanted = settings.render();
    if read_optional(cx.host(on), &path)?.as_deref() == Some(wanted.as_bytes()) {
        return Ok(None);
    }
    Ok(Some(Action::Write {
        on: on.clone(),
        why: "the tool's PostgreSQL settings".into(),
        path,
        contents: Input::Text(wanted),
        mode: FileMode::new(0o644).owned_by("postgres:postgres"),
    }))
}

/// `standby.signal` in the data directory, unless it is there: the fence. A server that
/// starts with it comes up in recovery and takes no writes until ha-setup promotes it, so
/// a primary that restarts (or returns after a promote elsewhere) cannot split the brain.
/// It does nothing to a server that runs.
pub fn fence_file(
    cx: &mut Ctx<'_>,
    on: &NodeName,
    cluster: &Cluster,
) -> anyhow::Result<Option<Action>> {
    let seen = cx.observe(on);
    if observe::reading(&seen).is_some_and(|r| r.signal) {
        return Ok(None);
    }
    Ok(Some(fence_file_action(on, cluster)))
}

pub fn fence_file_action(on: &NodeName, cluster: &Cluster) -> Action {
    let path = quote(&format!("{}/standby.signal", cluster.datadir));
    Action::Run {
        on: on.clone(),
        why: format!(
            "fence for restarts: {}/standby.signal (a restarted server comes up read-only until ha-setup promotes it)",
            cluster.datadir
        ),
        cmd: Cmd::new(format!(
            "set -e\ntouch -- {path}\nchown postgres:postgres -- {path}\nchmod 0600 -- {path}"
        ))
        .as_root(),
        input: Input::None,
    }
}

/// Promotes a node that came back from a restart in recovery (the fence) and took writes
/// before it: ha-setup's own restart must not take the primary away.
pub fn promote_back(on: &NodeName, cluster: &Cluster) -> Action {
    Action::Run {
        on: on.clone(),
        why: "open writes again: it comes back fenced from the restart, as every node does, and is promoted (a new timeline begins)".into(),
        cmd: client::command(&cluster.id()),
        input: Input::Text(reopen_sql()),
    }
}

/// Promotes a server that came up fenced and writes its fence file again.
pub fn reopen_sql() -> String {
    format!(
        "{}\n{}\n",
        service::PROMOTE_SQL,
        super::standby::FENCE_AGAIN_SQL
    )
}

/// The password in libpq's password-file format (`*:*:*:user:password`, `:` and `\`
/// escaped), 0600 postgres, for the WAL receiver: every node gets it, since any may
/// become a standby.
pub fn pgpass(cx: &mut Ctx<'_>, on: &NodeName, secret: &Secret) -> anyhow::Result<Option<Action>> {
    let escape = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    let line = format!(
        "*:*:*:{}:{SECRET_MARK}\n*:*:*:{}:{SECRET_MARK}\n",
        escape(&cx.config.replication.user),
        escape(layout::REWIND_ROLE)
    );
    let wanted = Secret::new(line.replace(SECRET_MARK, &escape(secret.expose())));
    if read_optional(cx.host(on), layout::PGPASS)?.as_deref() == Some(wanted.expose().as_bytes()) {
        return Ok(None);
    }
    Ok(Some(Action::Write {
        on: on.clone(),
        why: format!(
            "the replication password for the WAL receiver ({}; the connection string names the file)",
            layout::PGPASS
        ),
        path: layout::PGPASS.into(),
        contents: Input::WithSecret(SECRET_MARK.into(), wanted),
        mode: FileMode::private().owned_by("postgres:postgres"),
    }))
}

/// The roles the other nodes log in as, each set by its SCRAM verifier, with nothing more
/// than it needs: the replication role (LOGIN, REPLICATION) and the rewind role (LOGIN, and
/// EXECUTE on the functions pg_rewind reads the primary's files with, as PostgreSQL's
/// documentation lists them), so pg_rewind never logs in as a superuser over the network.
fn roles(cx: &mut Ctx<'_>, cluster: &Cluster, secret: &Secret) -> anyhow::Result<Vec<Action>> {
    let user = cx.config.replication.user.clone();
    let mut actions = Vec::new();
    for (name, replication, grants) in [
        (user.as_str(), true, &[][..]),
        (layout::REWIND_ROLE, false, &layout::REWIND_FUNCTIONS[..]),
    ] {
        #[derive(serde::Deserialize)]
        struct Row {
            exists: bool,
            login: Option<bool>,
            replication: Option<bool>,
            superuser: Option<bool>,
            verifier: Option<String>,
            granted: Option<bool>,
        }
        let granted = if grants.is_empty() {
            "true".to_owned()
        } else {
            grants
                .iter()
                .map(|f| {
                    format!(
                        "has_function_privilege({}, {}, 'EXECUTE')",
                        literal(name),
                        literal(f)
                    )
                })
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let row: Row = client::json(
            cx.source(),
            &cluster.id(),
            &format!(
                "SELECT json_build_object('exists', count(*) > 0, 'login', bool_and(rolcanlogin), \
                 'replication', bool_and(rolreplication), 'superuser', bool_or(rolsuper), \
                 'verifier', max(rolpassword), 'granted', CASE WHEN count(*) > 0 THEN {granted} END) \
                 FROM pg_authid WHERE rolname = {}",
                literal(name)
            ),
        )?;
        let verifier_ok = row
            .verifier
            .as_deref()
            .is_some_and(|v| scram::matches(v, secret));
        if row.exists
            && row.login == Some(true)
            && row.replication == Some(replication)
            && row.superuser == Some(false)
            && row.granted == Some(true)
            && verifier_ok
        {
            continue;
        }
        let verifier = scram::verifier(secret)?;
        let ident = client::ident(name);
        let verb = if row.exists {
            format!("ALTER ROLE {ident}")
        } else {
            format!("CREATE ROLE {ident}")
        };
        let mut sql = format!(
            "{verb} WITH LOGIN {} NOSUPERUSER PASSWORD '{SECRET_MARK}';\n",
            if replication {
                "REPLICATION"
            } else {
                "NOREPLICATION"
            }
        );
        for function in grants {
            sql.push_str(&format!(
                "GRANT EXECUTE ON FUNCTION {function} TO {ident};\n"
            ));
        }
        actions.push(Action::Run {
            on: cx.roles.source.clone(),
            why: if replication {
                format!("replication role {name}: LOGIN and REPLICATION only, set by its password's SCRAM verifier")
            } else {
                format!("rewind role {name}: LOGIN and EXECUTE on pg_rewind's four file functions only, set by the same password's SCRAM verifier")
            },
            cmd: client::command(&cluster.id()),
            input: Input::WithSecret(sql, verifier),
        });
    }
    Ok(actions)
}

/// One physical slot per standby on the primary, reserving WAL from now: the standby's
/// copy is taken after, so nothing it needs can be recycled before it streams.
pub fn slots(
    cx: &mut Ctx<'_>,
    primary: &NodeName,
    cluster: &Cluster,
    server: &Server,
    standbys: &[NodeName],
) -> anyhow::Result<Vec<Action>> {
    let mut sql = String::new();
    let mut names = Vec::new();
    for name in standbys {
        let slot = layout::slot_name(name);
        if server.slot(&slot).is_none() {
            sql.push_str(&format!(
                "SELECT pg_create_physical_replication_slot({}, true);\n",
                literal(&slot)
            ));
            names.push(slot);
        }
    }
    if sql.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Action::Run {
        on: primary.clone(),
        why: format!(
            "replication slot{} {} (WAL kept for the standby, at most max_slot_wal_keep_size = {})",
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            cx.config.postgresql.max_slot_wal_keep_size
        ),
        cmd: client::command(&cluster.id()),
        input: Input::Text(sql),
    }])
}
