//! prepare-primary: the tool's settings snippet on the primary (server_id, binary log,
//! ROW format, log_slave_updates, listening where the replicas connect, TLS), applied
//! at run time where MariaDB allows it and by a restart (announced) where it does not;
//! and the replication user with only the replication privilege.

use anyhow::{Context, bail};

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
        actions.extend(settings_file(cx, &source, &settings)?);
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
/// node with its openssl; the keys never leave the host. The other nodes get the CA. A
/// certificate made for another address (the replication address changed) is made again,
/// signed by the same CA, since the replicas check the address against it.
pub fn certificates(
    host: &mut dyn Host,
    on: &NodeName,
    address: &str,
) -> anyhow::Result<Option<Action>> {
    let cert = format!("{}/server-cert.pem", layout::TLS_DIR);
    let output = host.run(&Cmd::script(CERT_NAMES, &[&cert]).as_root())?;
    let made_for = match output.status {
        Some(3) => None,
        Some(0) => Some(cert_names(&output.stdout_text())),
        // Unreadable (or no openssl, which making one then says): made again.
        _ => Some(Vec::new()),
    };
    let why = match &made_for {
        Some(names) if cert_matches(names, address) => return Ok(None),
        Some(names) => format!(
            "make the TLS certificate in {} again, for {address}: the one there was made for {} \
             (the replicas check the address; it is moved aside, the CA kept)",
            layout::TLS_DIR,
            if names.is_empty() {
                "no address ha-setup can read".to_owned()
            } else {
                names.join(", ")
            }
        ),
        None => format!(
            "make a TLS certificate for {address} in {} (replication is encrypted, and the replica checks it)",
            layout::TLS_DIR
        ),
    };
    let san = if address.parse::<std::net::IpAddr>().is_ok() {
        format!("IP:{address}")
    } else {
        format!("DNS:{address}")
    };
    Ok(Some(Action::Run {
        on: on.clone(),
        why,
        cmd: Cmd::script(
            CERTIFICATE,
            &[layout::TLS_DIR, &format!("/CN={address}"), &san],
        )
        .as_root(),
        input: Input::None,
    }))
}

const CERTIFICATE: &str = include_str!("scripts/certificate.sh");

/// The addresses a certificate was made for; exit 3 when there is none.
const CERT_NAMES: &str =
    "[ -e \"$1\" ] || exit 3\nopenssl x509 -in \"$1\" -noout -ext subjectAltName";

/// `IP Address:10.0.0.1` and `DNS:db1.example.com` entries of openssl's subjectAltName
/// text, as `10.0.0.1` and `db1.example.com`.
fn cert_names(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|line| !line.contains("Subject Alternative Name"))
        .skip(1)
        .flat_map(|line| line.split(','))
        .filter_map(|entry| {
            let entry = entry.trim();
            entry
                .strip_prefix("IP Address:")
                .or_else(|| entry.strip_prefix("DNS:"))
                .map(str::to_owned)
        })
        .collect()
}

/// Whether a certificate made for `names` is good for `address` (IP addresses compared
/// as addresses: openssl writes IPv6 in full).
fn cert_matches(names: &[String], address: &str) -> bool {
    match address.parse::<std::net::IpAddr>() {
        Ok(ip) => names
            .iter()
            .any(|name| name.parse::<std::net::IpAddr>().ok() == Some(ip)),
        Err(_) => names.iter().any(|name| name.eq_ignore_ascii_case(address)),
    }
}

/// The replication password: from the environment variable the config names, else the
/// one already kept on the source (the primary now), else, when none is kept, a new one
/// (which init then gives the primary's user and every replica). A kept file that is empty
/// or cannot be read is an error: a new password made then would lock the replicas out.
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
    let source = cx.roles.source.clone();
    match kept_password(cx.source()).with_context(|| format!("on {source}"))? {
        Some(kept) => Ok((kept, false)),
        None => Ok((Secret::generate(), true)),
    }
}

const READ_KEPT: &str =
    "f=$1\nif [ ! -e \"$f\" ] && [ ! -L \"$f\" ]; then exit 3; fi\nexec cat -- \"$f\"";

/// The password kept on a node, or None when no file is there.
fn kept_password(host: &mut dyn Host) -> anyhow::Result<Option<Secret>> {
    let file = layout::PASSWORD_FILE;
    let output = host.run(&Cmd::script(READ_KEPT, &[file]).as_root())?;
    let fix = "ha-setup will not make a new password while one is kept: the replicas still use it. \
               Put it back (each replica keeps a copy in the same file), or delete the file to have \
               init make a new one (it sets it on the primary and every replica), or name one with \
               [replication] password_env";
    match output.status {
        Some(0) => {}
        Some(3) => return Ok(None),
        _ => bail!("{file} cannot be read: {}. {fix}", output.stderr.trim()),
    }
    let text = String::from_utf8(output.stdout)
        .map_err(|_| anyhow::anyhow!("{file} is not text. {fix}"))?;
    if text.is_empty() {
        bail!("{file} is empty. {fix}");
    }
    Ok(Some(Secret::new(text)))
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

    #[test]
    fn a_certificate_is_for_the_address_it_names() {
        let ip = cert_names("X509v3 Subject Alternative Name: \n    IP Address:198.51.100.11\n");
        assert_eq!(ip, ["198.51.100.11"]);
        assert!(cert_matches(&ip, "198.51.100.11"));
        assert!(!cert_matches(&ip, "198.51.100.12"));
        assert!(!cert_matches(&ip, "db1.example.com"));
        let v6 = cert_names(
            "X509v3 Subject Alternative Name: \n    IP Address:2001:DB8:0:0:0:0:0:1, DNS:db1.example.com\n",
        );
        assert!(cert_matches(&v6, "2001:db8::1"));
        assert!(cert_matches(&v6, "DB1.example.com"));
        assert!(cert_names("No extensions in certificate\n").is_empty());
        assert!(!cert_matches(&[], "198.51.100.11"));
    }
}
