//! Host keys, checked before anything else happens on a connection (before
//! authentication, so no credential ever reaches an impostor).

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ssh2::{CheckResult, HashType, HostKeyType, KnownHostFileKind, Session};

use super::HostError;
use crate::config::HostKeyPolicy;

/// The key a server offered.
struct Offered {
    key: Vec<u8>,
    type_name: &'static str,
    fingerprint: String,
}

/// Checks the server's key against `known_hosts` under `policy`; with `accept-new`, an
/// unknown key is appended there. A changed key is always refused.
pub(super) fn check(
    session: &Session,
    label: &str,
    host: &str,
    port: u16,
    known_hosts: &Path,
    policy: HostKeyPolicy,
) -> Result<(), HostError> {
    let offered = offered(session).ok_or_else(|| HostError::HostKeyCheck {
        host: label.to_owned(),
        detail: "the server sent no host key".to_owned(),
    })?;
    let entry = if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    };
    let text = std::fs::read_to_string(known_hosts).unwrap_or_default();
    // Before anything else: a revoked key is refused even where a line lists it as known,
    // and is never recorded.
    if is_revoked(&text, &offered.key) {
        return Err(HostError::RevokedHostKey {
            host: label.to_owned(),
            key: format!("{} {}", offered.type_name, offered.fingerprint),
            known_hosts: known_hosts.to_path_buf(),
        });
    }
    let mut known = session
        .known_hosts()
        .map_err(|err| HostError::HostKeyCheck {
            host: label.to_owned(),
            detail: err.message().to_owned(),
        })?;
    // Line by line, so one entry libssh2 cannot read (a certificate authority, a security
    // key type) does not hide all the others.
    // Marker lines (`@revoked`, `@cert-authority`) are never handed to libssh2, which
    // would read a marked line's key as a plain entry or not at all.
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('@'))
    {
        if known.read_str(line, KnownHostFileKind::OpenSSH).is_err() {
            tracing::debug!("skipping a known_hosts line libssh2 cannot read");
        }
    }
    match known.check_port(host, port, &offered.key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(HostError::ChangedHostKey {
            host: label.to_owned(),
            entry,
            key: format!("{} {}", offered.type_name, offered.fingerprint),
            known_hosts: known_hosts.to_path_buf(),
        }),
        CheckResult::NotFound => {
            let line = format!(
                "{entry} {} {}",
                offered.type_name,
                STANDARD.encode(&offered.key)
            );
            match policy {
                HostKeyPolicy::Strict => Err(HostError::UnknownHostKey {
                    host: label.to_owned(),
                    key: format!("{} {}", offered.type_name, offered.fingerprint),
                    known_hosts: known_hosts.to_path_buf(),
                    line,
                }),
                HostKeyPolicy::AcceptNew => {
                    record(known_hosts, &line).map_err(|err| HostError::HostKeyCheck {
                        host: label.to_owned(),
                        detail: format!(
                            "cannot record its key in {}: {err}",
                            known_hosts.display()
                        ),
                    })?;
                    tracing::warn!(
                        "recorded the new host key of {label} ({} {}) in {}",
                        offered.type_name,
                        offered.fingerprint,
                        known_hosts.display()
                    );
                    Ok(())
                }
            }
        }
        CheckResult::Failure => Err(HostError::HostKeyCheck {
            host: label.to_owned(),
            detail: format!(
                "libssh2 could not check it against {}",
                known_hosts.display()
            ),
        }),
    }
}

/// Whether `known_hosts` marks `key` (the key blob, as the server sent it) `@revoked`.
/// OpenSSH says such a key "must not ever be accepted"; ha-setup refuses it whatever host
/// names the line lists, which can only refuse more than OpenSSH, never less.
fn is_revoked(known_hosts: &str, key: &[u8]) -> bool {
    known_hosts.lines().any(|line| {
        let mut fields = line.split_whitespace();
        fields.next() == Some("@revoked")
            && fields
                .nth(2) // after the host patterns and the key type: the key
                .and_then(|encoded| STANDARD.decode(encoded).ok())
                .is_some_and(|revoked| revoked == key)
    })
}

fn offered(session: &Session) -> Option<Offered> {
    let (key, kind) = session.host_key()?;
    let type_name = match kind {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    };
    let hash = session.host_key_hash(HashType::Sha256)?;
    Some(Offered {
        key: key.to_vec(),
        type_name,
        fingerprint: format!("SHA256:{}", STANDARD_NO_PAD.encode(hash)),
    })
}

/// The key the server offered, as known_hosts writes it after the host: `TYPE BASE64`.
pub(super) fn offered_key(session: &Session) -> Option<String> {
    let offered = offered(session)?;
    Some(format!(
        "{} {}",
        offered.type_name,
        STANDARD.encode(&offered.key)
    ))
}

/// Appends one line, never rewriting the file: what libssh2 could not parse stays as it was.
pub(super) fn record(known_hosts: &Path, line: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = known_hosts
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let needs_newline =
        std::fs::read(known_hosts).is_ok_and(|text| !text.is_empty() && !text.ends_with(b"\n"));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(known_hosts)?;
    if needs_newline {
        file.write_all(b"\n")?;
    }
    file.write_all(format!("{line}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"\0\0\0\x0bssh-ed25519\0\0\0\x20-the-32-bytes-of-an-ed25519-key";

    fn line(prefix: &str) -> String {
        format!("{prefix} ssh-ed25519 {} comment", STANDARD.encode(KEY))
    }

    #[test]
    fn a_revoked_key_is_recognised_for_any_host_pattern() {
        for hosts in [
            "*",
            "db1.example",
            "|1|c2FsdA==|aGFzaA==",
            "[db1]:2222,10.0.0.1",
        ] {
            let text = format!("# known\n{}\n", line(&format!("@revoked {hosts}")));
            assert!(is_revoked(&text, KEY), "{text}");
        }
        let tabs = format!("\t{}\n", line("@revoked\t*").replace(' ', "\t"));
        assert!(is_revoked(&tabs, KEY), "{tabs}");
    }

    #[test]
    fn only_a_revoked_line_revokes() {
        let known = format!("{}\n{}\n", line("db1"), line("@cert-authority *"));
        assert!(!is_revoked(&known, KEY));
        let other = format!(
            "@revoked * ssh-ed25519 {}\n",
            STANDARD.encode(b"another key")
        );
        assert!(!is_revoked(&other, KEY));
        assert!(!is_revoked(
            "@revoked *\n@revoked * ssh-ed25519 not-base64!\n",
            KEY
        ));
        assert!(!is_revoked("", KEY));
    }
}
