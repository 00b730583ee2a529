//! TLS for the replication channel: a private CA per node and a server certificate for the
//! node's replication address, made on the node with its own openssl, so that no key ever
//! leaves its host. The other nodes get the CA and check the address against it.

use crate::host::{Cmd, FileMode, Host, HostExt, HostFiles, quote};
use crate::node::NodeName;
use crate::password::read_optional;
use crate::plan::{Action, Call, Ctx, Input};

/// Where an engine keeps a node's TLS files, and what it needs of them.
pub struct Place {
    /// The node's CA (`ca.pem`), certificate (`server-cert.pem`) and key (`server-key.pem`).
    pub dir: &'static str,
    /// `user:group` that must own the key for the server to read it.
    pub key_owner: &'static str,
    /// Run when a certificate is replaced and the server may be running: it loads the new
    /// one without a restart (and fails nothing when the server is down).
    pub reload: Cmd,
}

/// A private CA and a server certificate for a node's replication address, made on the
/// node with its openssl; the keys never leave the host. The other nodes get the CA. A
/// certificate made for another address (the replication address changed) is made again,
/// signed by the same CA, since the replicas check the address against it.
pub fn certificates(
    host: &mut dyn Host,
    on: &NodeName,
    address: &str,
    place: &Place,
) -> anyhow::Result<Option<Action>> {
    let cert = format!("{}/server-cert.pem", place.dir);
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
            place.dir,
            if names.is_empty() {
                "no address ha-setup can read".to_owned()
            } else {
                names.join(", ")
            }
        ),
        None => format!(
            "make a TLS certificate for {address} in {} (replication is encrypted, and the replica checks it)",
            place.dir
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
            &[
                place.dir,
                &format!("/CN={address}"),
                &san,
                place.key_owner,
                &place.reload.script,
            ],
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

fn ca_path(dir: &str) -> String {
    format!("{dir}/ca.pem")
}

/// The other nodes' CAs, which a node checks its source's certificate against.
pub fn peer_ca(dir: &str) -> String {
    format!("{dir}/peer-ca.pem")
}

/// Every node's CAs but its own, in config order: the file a replica checks its source's
/// certificate against, whichever node that is.
fn peer_bundle(cas: &[(NodeName, Option<Vec<u8>>)], node: &NodeName) -> Vec<u8> {
    cas.iter()
        .filter(|(name, _)| name != node)
        .filter_map(|(_, ca)| ca.clone())
        .flatten()
        .collect()
}

fn read_cas(
    cx: &mut Ctx<'_>,
    nodes: &[NodeName],
    dir: &str,
) -> anyhow::Result<Vec<(NodeName, Option<Vec<u8>>)>> {
    let mut cas = Vec::new();
    for name in nodes {
        cas.push((name.clone(), read_optional(cx.host(name), &ca_path(dir))?));
    }
    Ok(cas)
}

/// Whether each of `nodes` holds every other's CA already.
pub fn cas_shared(cx: &mut Ctx<'_>, nodes: &[NodeName], dir: &str) -> anyhow::Result<bool> {
    let cas = read_cas(cx, nodes, dir)?;
    if cas.iter().any(|(_, ca)| ca.is_none()) {
        return Ok(false);
    }
    for name in nodes {
        let there = read_optional(cx.host(name), &peer_ca(dir))?;
        if there.as_deref() != Some(&peer_bundle(&cas, name)[..]) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Gives each node the others' CA certificates, read when the action runs (after the
/// certificates are made). Only certificates travel; keys stay where they were made.
pub fn share_cas(nodes: Vec<NodeName>, dir: &'static str) -> Action {
    Action::Call {
        on: nodes.clone(),
        why: format!(
            "give each node the other nodes' CA certificates ({}), so any replica checks whichever node is its source",
            peer_ca(dir)
        ),
        call: Call::new(move |cx| {
            let cas = read_cas(cx, &nodes, dir)?;
            let mut lines = Vec::new();
            for name in &nodes {
                let bundle = peer_bundle(&cas, name);
                let host = cx.host(name);
                if read_optional(host, &peer_ca(dir))?.as_deref() == Some(&bundle[..]) {
                    continue;
                }
                host.run_ok(&Cmd::new(format!("mkdir -p -- {}", quote(dir))).as_root())?;
                host.write_file(&peer_ca(dir), &bundle, &FileMode::new(0o644))?;
                lines.push(format!("{name}: {} written", peer_ca(dir)));
            }
            Ok(lines)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
