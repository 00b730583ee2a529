//! A node's SSH settings completed from the operator's OpenSSH client config
//! (`~/.ssh/config`, read with the ssh2-config crate): Host aliases, HostName, User, Port,
//! IdentityFile and ProxyJump apply. What ha-setup cannot honour for the host (ProxyCommand,
//! HostKeyAlias, more than one jump host, …) is never ignored: it is kept as the reason the
//! connection is refused, before anything goes on the network.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2_config::{HostParams, ParseRule, SshConfig};

use super::ssh::SshTarget;
use crate::config::{Node, Ssh, expand_home};

/// Options ha-setup does not implement and must not skip: each changes which host is
/// reached or how its key is checked. Keys as ssh2-config stores them (lower case).
const REFUSED: [(&str, &str, &str); 4] = [
    (
        "proxycommand",
        "ProxyCommand",
        "its connection would go through a program ha-setup cannot check. For a jump host use ProxyJump (one jump host is supported); otherwise remove ProxyCommand for this host",
    ),
    (
        "hostkeyalias",
        "HostKeyAlias",
        "ha-setup checks a host's key under the name it connects to. Remove HostKeyAlias for this host and list the host's key under that name in the known_hosts file",
    ),
    (
        "revokedhostkeys",
        "RevokedHostKeys",
        "ha-setup does not read that file. Mark revoked keys with `@revoked` lines in the known_hosts file instead, and remove RevokedHostKeys for this host",
    ),
    (
        "knownhostscommand",
        "KnownHostsCommand",
        "ha-setup reads host keys only from the known_hosts file ([ssh] known_hosts). Put the host's key there and remove KnownHostsCommand for this host",
    ),
];

/// Completes a node's SSH settings: the config file wins, then `~/.ssh/config`, then the
/// defaults.
pub(super) fn resolve(name: &str, node: &Node, ssh: &Ssh) -> SshTarget {
    let file = expand_home(&ssh.config_file);
    resolve_with(name, node, ssh, read(&file).as_ref(), &file)
}

fn read(path: &Path) -> Option<SshConfig> {
    let file = std::fs::File::open(path).ok()?;
    parse(&mut io::BufReader::new(file), path)
}

fn parse(reader: &mut impl io::BufRead, path: &Path) -> Option<SshConfig> {
    let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
    match SshConfig::default().parse(reader, rules) {
        Ok(config) => Some(config),
        Err(err) => {
            tracing::warn!("ignoring {}: {err}", path.display());
            None
        }
    }
}

fn resolve_with(
    name: &str,
    node: &Node,
    ssh: &Ssh,
    config: Option<&SshConfig>,
    file: &Path,
) -> SshTarget {
    let params = config.map(|config| config.query(&node.host));
    let from_file = params.as_ref();
    let explicit = node
        .identity_file
        .as_ref()
        .map(|path| vec![expand_home(path)]);
    let identity_explicit = explicit.is_some();
    let identity_files = explicit
        .or_else(|| from_file.and_then(identity_files))
        .unwrap_or_else(default_identity_files);
    let mut target = SshTarget {
        name: name.to_owned(),
        hostname: from_file
            .and_then(|p| p.host_name.clone())
            .unwrap_or_else(|| node.host.clone()),
        port: node
            .ssh_port
            .or(from_file.and_then(|p| p.port))
            .unwrap_or(22),
        user: node
            .ssh_user
            .clone()
            .or(from_file.and_then(|p| p.user.clone()))
            .unwrap_or_else(current_user),
        identity_files,
        identity_explicit,
        passphrase_env: node.identity_passphrase_env.clone(),
        password_env: node.ssh_password_env.clone(),
        known_hosts: expand_home(&ssh.known_hosts),
        policy: ssh.host_key_policy,
        connect_timeout: Duration::from_secs(ssh.connect_timeout_secs),
        keepalive: Duration::from_secs(ssh.keepalive_secs),
        io_timeout: Duration::from_secs(ssh.io_timeout_secs),
        bulk_via_openssh: ssh.bulk_via_openssh,
        jump: None,
        refused: None,
        ssh_config: file.to_path_buf(),
    };
    if let (Some(config), Some(params)) = (config, from_file) {
        match jump_of(&target, &node.host, params, config) {
            Ok(jump) => target.jump = jump.map(Box::new),
            Err(why) => target.refused = Some(why),
        }
    }
    target
}

/// The jump host of `alias` (whose settings are `params`), completed from the same config,
/// or why ha-setup cannot connect the way the config says.
fn jump_of(
    target: &SshTarget,
    alias: &str,
    params: &HostParams,
    config: &SshConfig,
) -> Result<Option<SshTarget>, String> {
    refuse_unsupported(alias, params)?;
    let Some(hops) = proxy_jump(params) else {
        return Ok(None);
    };
    if hops.len() > 1 {
        return Err(format!(
            "ProxyJump for {alias} lists {} jump hosts ({}); ha-setup goes through one. Reach the database host through a single jump host, or connect from a machine inside the network",
            hops.len(),
            hops.join(",")
        ));
    }
    let spec = JumpSpec::parse(&hops[0])
        .map_err(|why| format!("ProxyJump {} for {alias}: {why}", hops[0]))?;
    let jump_params = config.query(&spec.host);
    refuse_unsupported(&spec.host, &jump_params)
        .map_err(|why| format!("for its jump host: {why}"))?;
    if let Some(further) = proxy_jump(&jump_params) {
        // `Host *` with ProxyJump names the jump host too; pointing at itself adds no hop.
        if further
            .iter()
            .any(|hop| JumpSpec::parse(hop).map_or(true, |hop| hop.host != spec.host))
        {
            return Err(format!(
                "its jump host {} has a ProxyJump of its own ({}): that is two jump hosts, and ha-setup goes through one. Reach the database host through a single jump host",
                spec.host,
                further.join(",")
            ));
        }
    }
    // The jump host logs in the same ways as the node: its own IdentityFile if the config
    // gives one, else the node's keys; the agent; a password only when asked on a terminal
    // (the node's password is never sent to another host).
    let (identity_files, identity_explicit) = match identity_files(&jump_params) {
        Some(files) => (files, false),
        None => (target.identity_files.clone(), target.identity_explicit),
    };
    Ok(Some(SshTarget {
        name: format!("{}'s jump host", target.name),
        hostname: jump_params.host_name.clone().unwrap_or(spec.host),
        port: spec.port.or(jump_params.port).unwrap_or(22),
        user: spec
            .user
            .or_else(|| jump_params.user.clone())
            .unwrap_or_else(current_user),
        identity_files,
        identity_explicit,
        passphrase_env: target.passphrase_env.clone(),
        password_env: None,
        jump: None,
        refused: None,
        ..target.clone()
    }))
}

fn refuse_unsupported(alias: &str, params: &HostParams) -> Result<(), String> {
    for (key, option, why) in REFUSED {
        let Some(args) = params.unsupported_fields.get(key) else {
            continue;
        };
        let value = args.join(" ");
        // `none` switches these off, as if they were not there.
        if matches!(key, "proxycommand" | "knownhostscommand") && value.eq_ignore_ascii_case("none")
        {
            continue;
        }
        return Err(format!(
            "it sets {option} {value} for {alias}, which ha-setup does not support: {why}"
        ));
    }
    Ok(())
}

/// The ProxyJump hops, or None without one (`ProxyJump none` included).
fn proxy_jump(params: &HostParams) -> Option<Vec<String>> {
    let hops: Vec<String> = params
        .proxy_jump
        .as_ref()?
        .iter()
        .map(|hop| hop.trim().to_owned())
        .filter(|hop| !hop.is_empty())
        .collect();
    match hops.as_slice() {
        [] => None,
        [only] if only.eq_ignore_ascii_case("none") => None,
        _ => Some(hops),
    }
}

fn identity_files(params: &HostParams) -> Option<Vec<PathBuf>> {
    params
        .identity_file
        .as_ref()
        .map(|files| files.iter().map(|file| expand_home(file)).collect())
}

fn default_identity_files() -> Vec<PathBuf> {
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|file| expand_home(&Path::new("~/.ssh").join(file)))
        .collect()
}

fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_owned())
}

/// One ProxyJump hop: `[user@]host[:port]` or `ssh://[user@]host[:port]`, an IPv6 address
/// in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JumpSpec {
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

impl JumpSpec {
    fn parse(spec: &str) -> Result<JumpSpec, String> {
        let rest = spec.strip_prefix("ssh://").unwrap_or(spec);
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (user, rest) = match rest.rsplit_once('@') {
            Some((user, rest)) if !user.is_empty() => (Some(user.to_owned()), rest),
            Some(_) => return Err("the user before @ is empty".to_owned()),
            None => (None, rest),
        };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or("an address opened with [ is not closed with ]")?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(format!("unexpected {after:?} after the address")),
                },
            }
        } else {
            match rest.split_once(':') {
                Some((host, port)) if !port.contains(':') => (host, Some(port)),
                Some(_) => return Err("put an IPv6 address in brackets: [addr]:port".to_owned()),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err("no host name".to_owned());
        }
        let port = port
            .map(|port| {
                port.parse::<u16>()
                    .ok()
                    .filter(|port| *port > 0)
                    .ok_or_else(|| format!("{port:?} is not a port number"))
            })
            .transpose()?;
        Ok(JumpSpec {
            user,
            host: host.to_owned(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh() -> Ssh {
        Ssh {
            known_hosts: PathBuf::from("/ops/known_hosts"),
            config_file: PathBuf::from("/ops/ssh_config"),
            ..Ssh::default()
        }
    }

    fn node(toml: &str) -> Node {
        toml::from_str(toml).expect("a valid node")
    }

    fn target(ssh_config: &str, node_toml: &str) -> SshTarget {
        let config = parse(&mut ssh_config.as_bytes(), Path::new("/ops/ssh_config"));
        resolve_with(
            "primary",
            &node(node_toml),
            &ssh(),
            config.as_ref(),
            Path::new("/ops/ssh_config"),
        )
    }

    const JUMPING: &str = "Host db1-via-jump\n  HostName 10.0.0.11\n  ProxyJump ops@bastion.example:2201\n\n\
                           Host bastion.example\n  HostName 192.0.2.7\n  IdentityFile /keys/bastion\n";

    #[test]
    fn proxy_jump_becomes_a_jump_host_completed_from_the_same_config() {
        let target = target(
            JUMPING,
            "host = \"db1-via-jump\"\nssh_user = \"root\"\nidentity_file = \"/keys/db\"",
        );
        assert_eq!(target.refused, None);
        assert_eq!((target.hostname.as_str(), target.port), ("10.0.0.11", 22));
        let jump = target.jump.as_deref().expect("a jump host");
        assert_eq!(jump.name, "primary's jump host");
        assert_eq!(
            (jump.hostname.as_str(), jump.port, jump.user.as_str()),
            ("192.0.2.7", 2201, "ops")
        );
        assert_eq!(jump.identity_files, [PathBuf::from("/keys/bastion")]);
        assert_eq!(jump.known_hosts, PathBuf::from("/ops/known_hosts"));
        assert_eq!(jump.policy, target.policy);
        assert!(jump.jump.is_none());
    }

    #[test]
    fn a_jump_host_without_keys_of_its_own_uses_the_node_s_and_never_its_password() {
        let target = target(
            "Host db1\n  ProxyJump root@198.51.100.13\n",
            "host = \"db1\"\nidentity_file = \"/keys/db\"\nidentity_passphrase_env = \"PP\"\nssh_password_env = \"PW\"",
        );
        let jump = target.jump.as_deref().expect("a jump host");
        assert_eq!(
            (jump.hostname.as_str(), jump.port, jump.user.as_str()),
            ("198.51.100.13", 22, "root")
        );
        assert_eq!(jump.identity_files, [PathBuf::from("/keys/db")]);
        assert!(jump.identity_explicit);
        assert_eq!(jump.passphrase_env.as_deref(), Some("PP"));
        assert_eq!(jump.password_env, None);
        assert_eq!(target.password_env.as_deref(), Some("PW"));
    }

    #[test]
    fn proxy_jump_none_and_no_config_mean_no_jump() {
        let target = target(
            "Host db1\n  ProxyJump none\nHost *\n  ProxyJump bastion\n",
            "host = \"db1\"",
        );
        assert!(target.jump.is_none());
        assert_eq!(target.refused, None);
        let plain = resolve_with(
            "primary",
            &node("host = \"db1\""),
            &ssh(),
            None,
            Path::new("/x"),
        );
        assert!(plain.jump.is_none() && plain.refused.is_none());
    }

    #[test]
    fn a_jump_host_caught_by_its_own_wildcard_is_one_hop() {
        let target = target(
            "Host bastion\n  HostName 192.0.2.7\nHost *\n  ProxyJump bastion\n",
            "host = \"db1\"",
        );
        assert_eq!(target.refused, None);
        assert_eq!(target.jump.expect("a jump host").hostname, "192.0.2.7");
    }

    #[test]
    fn more_than_one_hop_is_refused_naming_them() {
        let two = target(
            "Host db1\n  ProxyJump a.example,b.example\n",
            "host = \"db1\"",
        );
        let why = two.refused.expect("refused");
        assert!(
            why.contains("lists 2 jump hosts (a.example,b.example)"),
            "{why}"
        );
        assert!(two.jump.is_none());

        let chained = target(
            "Host db1\n  ProxyJump a.example\nHost a.example\n  ProxyJump b.example\n",
            "host = \"db1\"",
        );
        let why = chained.refused.expect("refused");
        assert!(
            why.contains("its jump host a.example has a ProxyJump of its own (b.example)"),
            "{why}"
        );
    }

    #[test]
    fn proxy_command_and_host_key_alias_are_refused_by_name() {
        let command = target(
            "Host db1\n  ProxyCommand nc -X 5 -x proxy:1080 %h %p\n",
            "host = \"db1\"",
        );
        let why = command.refused.expect("refused");
        assert!(
            why.starts_with("it sets ProxyCommand nc -X 5 -x proxy:1080 %h %p for db1"),
            "{why}"
        );
        assert!(why.contains("ProxyJump"), "{why}");

        let alias = target("Host db1\n  HostKeyAlias db1-key\n", "host = \"db1\"");
        let why = alias.refused.expect("refused");
        assert!(
            why.starts_with("it sets HostKeyAlias db1-key for db1"),
            "{why}"
        );

        for option in [
            "RevokedHostKeys /etc/ssh/revoked",
            "KnownHostsCommand /bin/keys %H",
        ] {
            let name = option.split(' ').next().unwrap();
            let refused = target(&format!("Host *\n  {option}\n"), "host = \"db1\"");
            let why = refused.refused.expect("refused");
            assert!(why.starts_with(&format!("it sets {name} ")), "{why}");
        }
        let off = target("Host db1\n  ProxyCommand none\n", "host = \"db1\"");
        assert_eq!(off.refused, None);
    }

    #[test]
    fn what_the_jump_host_cannot_honour_is_refused_too() {
        let target = target(
            "Host db1\n  ProxyJump bastion\nHost bastion\n  ProxyCommand ssh -W %h:%p gw\n",
            "host = \"db1\"",
        );
        let why = target.refused.expect("refused");
        assert!(
            why.starts_with("for its jump host: it sets ProxyCommand ssh -W %h:%p gw for bastion"),
            "{why}"
        );
    }

    #[test]
    fn other_hosts_options_do_not_apply() {
        let target = target(
            "Host other\n  ProxyCommand nc %h %p\n  ProxyJump x\n",
            "host = \"db1\"",
        );
        assert_eq!(target.refused, None);
        assert!(target.jump.is_none());
    }

    #[test]
    fn jump_specs_parse_like_openssh() {
        let spec = |text: &str| JumpSpec::parse(text);
        let ok = |user: Option<&str>, host: &str, port: Option<u16>| {
            Ok(JumpSpec {
                user: user.map(str::to_owned),
                host: host.to_owned(),
                port,
            })
        };
        assert_eq!(spec("bastion"), ok(None, "bastion", None));
        assert_eq!(
            spec("root@198.51.100.13"),
            ok(Some("root"), "198.51.100.13", None)
        );
        assert_eq!(spec("ops@gw:2222"), ok(Some("ops"), "gw", Some(2222)));
        assert_eq!(spec("ssh://ops@gw:2222"), ok(Some("ops"), "gw", Some(2222)));
        assert_eq!(spec("[2001:db8::1]:22"), ok(None, "2001:db8::1", Some(22)));
        assert_eq!(spec("u@[2001:db8::1]"), ok(Some("u"), "2001:db8::1", None));
        assert_eq!(spec("a@b@gw"), ok(Some("a@b"), "gw", None));
        for bad in ["gw:port", "gw:0", "2001:db8::1", "[2001:db8::1", "@gw", ""] {
            assert!(spec(bad).is_err(), "{bad}");
        }
    }
}
