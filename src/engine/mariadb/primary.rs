//! prepare-primary: the tool's settings snippet on the primary (server_id, binary log,
//! ROW format, log_slave_updates, listening where the replicas connect, TLS), applied
//! at run time where MariaDB allows it and by a restart (announced) where it does not;
//! and the replication user with only the replication privilege.

use anyhow::Context;

use super::client::{self, literal};
use super::facts::{self, Server};
use super::layout::{self, NodeSettings};
use super::seed::start_and_wait;
use crate::host::{Cmd, FileMode, Host, HostExt, quote};
use crate::node::NodeName;
use crate::plan::{Action, Ctx, Input, SECRET_MARK, Step, Verdict};
use crate::secret::Secret;
use crate::service::Verb;

pub struct PreparePrimary;

impl Step for PreparePrimary {
    fn name(&self) -> &'static str {
        "prepare-primary"
    }

    fn purpose(&self) -> &'static str {
        "binary log, server_id and the replication user on the primary"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let source = cx.roles.source.clone();
        let topology = cx.topology();
        let member = topology.get(&source).member;
        let server_id = layout::server_ids(cx.config, &topology, &source)[&source];
        let host = cx.host(&source);
        let server = facts::server(host)?;
        let installed = facts::survey(host)?;
        let settings = NodeSettings::new(cx.config, &source, server_id, Some(&server));
        let mut actions = Vec::new();

        let node = cx.config.node(&source);
        actions.extend(settings_file(
            cx.config,
            cx.hosts.host(&source),
            &source,
            &settings,
        )?);
        if settings.tls {
            let address = node.replication_address().to_owned();
            actions.extend(certificates(cx.host(&source), &source, &address)?);
        }
        // Writes open here only on a node that takes them now, or on its first set-up: a
        // fenced primary stays fenced until `recover unfence` says otherwise.
        let open = !server.read_only || !member;
        let restart = settings.needs_restart(&server);
        if restart.is_empty() {
            actions.extend(runtime_settings(&source, &server, &settings));
            if server.read_only && open {
                actions.push(open_writes(&source));
            }
        } else {
            actions.push(Action::Run {
                on: source.clone(),
                why: format!(
                    "RESTART MariaDB, a few seconds without the database, because {}",
                    restart.join(", ")
                ),
                cmd: start_and_wait(layout::service(node), installed.systemd, Verb::Restart),
                input: Input::None,
            });
            // It comes back read-only, as every node does (fencing).
            if open {
                actions.push(open_writes(&source));
            }
        }
        actions.extend(replication_user(cx)?);
        Ok(if actions.is_empty() {
            Verdict::Done(format!(
                "server_id {server_id}, binary log on, replication user {} in place",
                cx.config.replication.user
            ))
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// Writes the node's settings snippet unless it holds them already.
pub fn settings_file(
    config: &crate::config::Config,
    host: &mut dyn Host,
    on: &NodeName,
    settings: &NodeSettings,
) -> anyhow::Result<Option<Action>> {
    let path = layout::cnf_path(config.node(on));
    let wanted = settings.render(config)?;
    if read_optional(host, &path)?.as_deref() == Some(wanted.as_bytes()) {
        return Ok(None);
    }
    Ok(Some(Action::Write {
        on: on.clone(),
        why: "the tool's MariaDB settings".into(),
        path,
        contents: Input::Text(wanted),
        mode: FileMode::new(0o644),
    }))
}

/// A file's contents, or None when it does not exist.
pub fn read_optional(host: &mut dyn Host, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let output = host.run(&Cmd::new(format!("cat -- {} 2>/dev/null", quote(path))).as_root())?;
    Ok(output.success().then_some(output.stdout))
}

/// Settings MariaDB takes at run time, applied with SET GLOBAL when they differ.
fn runtime_settings(on: &NodeName, server: &Server, settings: &NodeSettings) -> Option<Action> {
    let mut sql = String::new();
    if server.server_id != settings.server_id {
        sql.push_str(&format!("SET GLOBAL server_id = {};\n", settings.server_id));
    }
    if !server.binlog_format.eq_ignore_ascii_case("ROW") {
        sql.push_str("SET GLOBAL binlog_format = 'ROW';\n");
    }
    (!sql.is_empty()).then(|| Action::Run {
        on: on.clone(),
        why: "apply server_id and binlog_format now (no restart needed)".into(),
        cmd: client::command(),
        input: Input::Text(sql),
    })
}

/// Opens writes at run time on the node that is primary (its config keeps read_only=ON).
pub fn open_writes(on: &NodeName) -> Action {
    Action::Run {
        on: on.clone(),
        why: "open writes on the primary (read_only=OFF at run time; the config keeps it ON)"
            .into(),
        cmd: client::command(),
        input: Input::Text("SET GLOBAL read_only = OFF;\n".into()),
    }
}

/// A private CA and a server certificate for a node's replication address, made on the
/// node with its openssl; the keys never leave the host. The other node gets the CA.
pub fn certificates(
    host: &mut dyn Host,
    on: &NodeName,
    address: &str,
) -> anyhow::Result<Option<Action>> {
    let cert = format!("{}/server-cert.pem", layout::TLS_DIR);
    let present = host
        .run(&Cmd::new(format!("test -s {}", quote(&cert))).as_root())?
        .success();
    if present {
        return Ok(None);
    }
    let san = if address.parse::<std::net::IpAddr>().is_ok() {
        format!("IP:{address}")
    } else {
        format!("DNS:{address}")
    };
    let script = format!(
        "set -e\n\
         command -v openssl >/dev/null || {{ echo 'openssl is not installed (apt-get install openssl), or set [replication] tls = false' >&2; exit 1; }}\n\
         umask 077\n\
         mkdir -p -- {dir}\n\
         cd -- {dir}\n\
         openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=ha-setup replication CA' -keyout ca-key.pem -out ca.pem 2>/dev/null\n\
         openssl req -newkey rsa:2048 -nodes -subj {cn} -keyout server-key.pem -out server.csr 2>/dev/null\n\
         printf 'subjectAltName=%s\\n' {san} > server.ext\n\
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 -extfile server.ext -out server-cert.pem 2>/dev/null\n\
         rm -f server.csr server.ext\n\
         chown mysql: server-key.pem\n\
         chmod 0644 ca.pem server-cert.pem\n\
         chmod 0755 .",
        dir = quote(layout::TLS_DIR),
        cn = quote(&format!("/CN={address}")),
        san = quote(&san),
    );
    Ok(Some(Action::Run {
        on: on.clone(),
        why: format!(
            "make a TLS certificate for {address} in {} (replication is encrypted, and the replica checks it)",
            layout::TLS_DIR
        ),
        cmd: Cmd::new(script).as_root(),
        input: Input::None,
    }))
}

/// The replication password: from the environment variable the config names, else the
/// one already kept on the source (the primary now), else a new one.
pub fn password(cx: &mut Ctx<'_>) -> anyhow::Result<(Secret, bool)> {
    if let Some(var) = &cx.config.replication.password_env {
        let value = std::env::var(var).map_err(|_| {
            crate::error::Exit::usage(format!(
                "[replication] password_env names {var}, which is not set: export {var}=… \
                 (or remove password_env to let ha-setup generate and keep a password)"
            ))
        })?;
        if value.is_empty() {
            return Err(crate::error::Exit::usage(format!("{var} is empty")).into());
        }
        let kept = read_optional(cx.source(), layout::PASSWORD_FILE)?;
        let same = kept.as_deref() == Some(value.as_bytes());
        return Ok((Secret::new(value), !same));
    }
    match read_optional(cx.source(), layout::PASSWORD_FILE)? {
        Some(kept) if !kept.is_empty() => {
            let text = String::from_utf8(kept)
                .with_context(|| format!("{} on the primary is not text", layout::PASSWORD_FILE))?;
            Ok((Secret::new(text), false))
        }
        _ => Ok((Secret::generate(), true)),
    }
}

fn replication_user(cx: &mut Ctx<'_>) -> anyhow::Result<Vec<Action>> {
    let (secret, store) = password(cx)?;
    let sql_secret = Secret::new(client::escape(secret.expose()));
    let user = literal(&cx.config.replication.user);
    let tls = cx.config.replication.tls;
    let require = if tls { "SSL" } else { "NONE" };
    let mut actions = Vec::new();
    if store {
        actions.push(Action::Write {
            on: cx.roles.source.clone(),
            why: "keep the replication password (root only)".into(),
            path: layout::PASSWORD_FILE.into(),
            contents: Input::WithSecret(SECRET_MARK.into(), secret),
            mode: FileMode::private(),
        });
    }
    // The password is compared inside the server, sent on stdin like everything else.
    let probe = format!(
        "SELECT COUNT(*), \
         IFNULL(SUM(JSON_VALUE(g.priv, '$.authentication_string') = PASSWORD('{SECRET_MARK}')), 0), \
         IFNULL(SUM(u.Repl_slave_priv = 'Y'), 0), \
         IFNULL(SUM(u.ssl_type = '{}'), 0) \
         FROM mysql.global_priv g JOIN mysql.user u ON u.User = g.User AND u.Host = g.Host \
         WHERE g.User = {user} AND g.Host = '%'",
        if tls { "ANY" } else { "" }
    );
    let probe = Input::WithSecret(probe, sql_secret.clone());
    let output = cx
        .source()
        .run_with_input(&client::command(), &probe.bytes())?;
    if !output.success() {
        anyhow::bail!(
            "cannot read the users on the primary: {}",
            client::server_message(&output.stderr)
        );
    }
    let row = client::parse_rows(&output.stdout_text());
    let counts: Vec<u64> = row
        .first()
        .map(|r| {
            r.iter()
                .map(|f| f.as_deref().unwrap_or("0").parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let in_place = counts == [1, 1, 1, 1];
    if !in_place {
        let sql = format!(
            "CREATE USER IF NOT EXISTS {user}@'%' IDENTIFIED BY '{SECRET_MARK}';\n\
             ALTER USER {user}@'%' IDENTIFIED BY '{SECRET_MARK}' REQUIRE {require};\n\
             GRANT REPLICATION SLAVE ON *.* TO {user}@'%';\n"
        );
        actions.push(Action::Run {
            on: cx.roles.source.clone(),
            why: format!(
                "replication user {} with only REPLICATION SLAVE{}",
                cx.config.replication.user,
                if tls { ", TLS required" } else { "" }
            ),
            cmd: client::command(),
            input: Input::WithSecret(sql, sql_secret),
        });
    }
    Ok(actions)
}
