//! prepare-primary: the tool's settings snippet on the primary (server_id, binary log,
//! ROW format, log_slave_updates, listening where the replicas connect, TLS), applied
//! at run time where MariaDB allows it and by a restart (announced) where it does not;
//! and the replication user with only the replication privilege.

use super::client::{self, literal};
use super::facts::{self, Server};
use super::layout::{self, NodeSettings};
use super::seed::start_and_wait;
use crate::host::{Cmd, FileMode, Host, HostExt};
use crate::node::NodeName;
use crate::plan::{Action, Ctx, Input, SECRET_MARK, Step, Verdict};
use crate::secret::Secret;
use crate::service::Verb;

pub use crate::password::{password, read_optional};

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
        actions.extend(settings_file(cx, &source, &settings)?);
        if settings.tls {
            let address = node.replication_address().to_owned();
            actions.extend(certificates(cx.host(&source), &source, &address)?);
        }
        // Writes open here only on a node that takes them now, or on its first set-up: a
        // fenced primary stays fenced until `recover unfence` says otherwise. With two
        // writers, a node set up before opens only once it has caught up with the other
        // (the open-writes step), also after a restart made here.
        let open = if settings.pair.is_some() {
            !member
        } else {
            !server.read_only || !member
        };
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
                cmd: start_and_wait(
                    &layout::service(cx, &source),
                    installed.systemd,
                    Verb::Restart,
                ),
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
    cx: &mut Ctx<'_>,
    on: &NodeName,
    settings: &NodeSettings,
) -> anyhow::Result<Option<Action>> {
    let path = layout::cnf_path(cx, on);
    let wanted = settings.render(cx.config)?;
    if read_optional(cx.host(on), &path)?.as_deref() == Some(wanted.as_bytes()) {
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

/// The node's TLS certificate for its replication address (see [`crate::tls`]), its key
/// readable by mysql, loaded by a running server with FLUSH SSL.
pub fn certificates(
    host: &mut dyn Host,
    on: &NodeName,
    address: &str,
) -> anyhow::Result<Option<Action>> {
    let place = crate::tls::Place {
        dir: layout::TLS_DIR,
        key_owner: "mysql:mysql",
        reload: Cmd::new(
            "if mariadb-admin --connect-timeout=5 ping >/dev/null 2>&1; then mariadb --connect-timeout=10 -e 'FLUSH SSL'; fi",
        ),
    };
    crate::tls::certificates(host, on, address, &place)
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
    if settings.pair.is_some() {
        if !server.gtid_strict_mode {
            sql.push_str("SET GLOBAL gtid_strict_mode = ON;\n");
        }
        if !server.gtid_ignore_duplicates {
            sql.push_str("SET GLOBAL gtid_ignore_duplicates = ON;\n");
        }
    }
    (!sql.is_empty()).then(|| Action::Run {
        on: on.clone(),
        why: if settings.pair.is_some() {
            "apply server_id, binlog_format and the GTID modes now (no restart needed)".into()
        } else {
            "apply server_id and binlog_format now (no restart needed)".into()
        },
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

/// The password as MariaDB's mysql_native_password keeps it: `*` and the upper-case hex
/// of SHA1(SHA1(password)). The user is set and compared by it (`IDENTIFIED BY PASSWORD`),
/// so the password itself never goes into SQL that the server logs, shows in its
/// processlist, or writes to the binary log its replicas apply.
pub fn native_hash(password: &Secret) -> Secret {
    use sha1::{Digest, Sha1};
    use zeroize::Zeroize;
    // SHA1(password) is what a client logs in with: not left in memory.
    let mut stage1: [u8; 20] = Sha1::digest(password.expose().as_bytes()).into();
    let stage2 = Sha1::digest(stage1);
    stage1.zeroize();
    Secret::new(format!("*{}", hex::encode_upper(stage2)))
}

fn replication_user(cx: &mut Ctx<'_>) -> anyhow::Result<Vec<Action>> {
    let (secret, store) = password(cx)?;
    let hash = native_hash(&secret);
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
    // Compared by its hash: the password never goes into SQL.
    let probe = format!(
        "SELECT COUNT(*), \
         IFNULL(SUM(JSON_VALUE(g.priv, '$.plugin') = 'mysql_native_password' \
         AND JSON_VALUE(g.priv, '$.authentication_string') = '{SECRET_MARK}'), 0), \
         IFNULL(SUM(u.Repl_slave_priv = 'Y'), 0), \
         IFNULL(SUM(u.ssl_type = '{}'), 0) \
         FROM mysql.global_priv g JOIN mysql.user u ON u.User = g.User AND u.Host = g.Host \
         WHERE g.User = {user} AND g.Host = '%'",
        if tls { "ANY" } else { "" }
    );
    let probe = Input::WithSecret(probe, hash.clone());
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
            "CREATE USER IF NOT EXISTS {user}@'%' IDENTIFIED BY PASSWORD '{SECRET_MARK}';\n\
             ALTER USER {user}@'%' IDENTIFIED BY PASSWORD '{SECRET_MARK}' REQUIRE {require};\n\
             GRANT REPLICATION SLAVE ON *.* TO {user}@'%';\n"
        );
        actions.push(Action::Run {
            on: cx.roles.source.clone(),
            why: format!(
                "replication user {} with only REPLICATION SLAVE{}, set by its password's hash",
                cx.config.replication.user,
                if tls { ", TLS required" } else { "" }
            ),
            cmd: client::command(),
            input: Input::WithSecret(sql, hash),
        });
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_native_hash_is_mariadbs() {
        // SELECT PASSWORD('password') on MariaDB.
        assert_eq!(
            native_hash(&Secret::new("password")).expose(),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
    }
}
