//! Errors of the host layer: each one paragraph that says what happened, on which host,
//! and what to do. The exit status of a command is not an error here; failing on it is
//! [`HostError::CommandFailed`], made by `run_ok`.

use std::path::PathBuf;

use super::Cmd;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(
        "cannot resolve the address of {host}: {source}. Check the host name in the config (or HostName in ~/.ssh/config) and this machine's DNS."
    )]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "no answer from {host} at {addr} within {secs} s: the host is down, or a firewall drops SSH on the way. Check that it is up and reachable from here, or raise [ssh] connect_timeout_secs."
    )]
    ConnectTimeout {
        host: String,
        addr: String,
        secs: u64,
    },

    #[error(
        "{host} refused the SSH connection at {addr}: no SSH server listens on that port. Start sshd there, or fix ssh_port in the config."
    )]
    ConnectRefused { host: String, addr: String },

    #[error(
        "cannot reach {host} at {addr}: {source}. Check the address and this machine's network."
    )]
    Connect {
        host: String,
        addr: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the SSH handshake with {host} failed: {detail}. Check that an SSH server (not another service) listens there and offers modern ciphers."
    )]
    Handshake { host: String, detail: String },

    #[error("{host} offered an unknown SSH host key ({key}), and [ssh] host_key_policy is \"strict\". Check the fingerprint on the host itself (`ssh-keygen -lf /etc/ssh/ssh_host_{short}_key.pub`), then accept it by adding this line to {known_hosts}:\n  {line}\nor set host_key_policy = \"accept-new\" for the first connection.", known_hosts = known_hosts.display(), short = short_key_type(key))]
    UnknownHostKey {
        host: String,
        /// Type and fingerprint: `ssh-ed25519 SHA256:…`.
        key: String,
        known_hosts: PathBuf,
        line: String,
    },

    #[error("WARNING: THE SSH HOST KEY OF {host} HAS CHANGED. It now offers {key}, which {known_hosts} does not list for it. Someone may be intercepting the connection, or the host was reinstalled. Nothing was run. If the change is expected, check the new fingerprint on the host itself and remove the old entry with `ssh-keygen -R {entry} -f {known_hosts}`.", known_hosts = known_hosts.display())]
    ChangedHostKey {
        host: String,
        entry: String,
        /// Type and fingerprint: `ssh-ed25519 SHA256:…`.
        key: String,
        known_hosts: PathBuf,
    },

    #[error("{host} offered the SSH host key {key}, which {known_hosts} marks @revoked: it must never be accepted. Nothing was sent to it. Someone may be impersonating the host, or its key was retired on purpose and the host still uses it. Give the host a new key, check its fingerprint on the host itself, and add it to {known_hosts}.", known_hosts = known_hosts.display())]
    RevokedHostKey {
        host: String,
        /// Type and fingerprint: `ssh-ed25519 SHA256:…`.
        key: String,
        known_hosts: PathBuf,
    },

    #[error("cannot connect to {host} as {ssh_config} says: {detail}.", ssh_config = ssh_config.display())]
    SshConfig {
        host: String,
        /// The OpenSSH client config that was read (`[ssh] config_file`).
        ssh_config: PathBuf,
        detail: String,
    },

    #[error(
        "cannot reach {host} through {jump}: {detail}. Check that {target} is reachable from the jump host and that its sshd allows TCP forwarding (AllowTcpForwarding), or fix ProxyJump in the SSH config."
    )]
    Tunnel {
        host: String,
        jump: String,
        /// `address:port` asked of the jump host.
        target: String,
        detail: String,
    },

    #[error("cannot check the host key of {host}: {detail}")]
    HostKeyCheck { host: String, detail: String },

    #[error("cannot log in to {host} as {user}: {}. Set identity_file (and identity_passphrase_env if the key has a passphrase) under the node in the config, load the key into ssh-agent, or set ssh_password_env; and check that the key is in ~{user}/.ssh/authorized_keys there.", tried.join("; "))]
    Auth {
        host: String,
        user: String,
        tried: Vec<String>,
    },

    #[error(
        "{host} went silent for {secs} s while {during}: the host or the network to it is cut off. Nothing more was sent; check the host and the network, then run the command again (it resumes)."
    )]
    Silent {
        host: String,
        secs: u64,
        during: String,
    },

    #[error(
        "the SSH connection to {host} failed while {during}: {detail}. Check the host and its sshd log, then run the command again."
    )]
    Ssh {
        host: String,
        during: String,
        detail: String,
    },

    #[error("cannot run a command on this machine ({during}): {source}")]
    Local {
        during: String,
        #[source]
        source: std::io::Error,
    },

    #[error("on {host}, `{command}` {status}{stderr_part}{hint}", stderr_part = if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    CommandFailed {
        host: String,
        command: String,
        status: String,
        stderr: String,
        hint: String,
    },

    #[error(
        "on {host}, writing {path} failed{reason}; the partial file was removed and {path} is as it was. {hint}"
    )]
    WriteFailed {
        host: String,
        path: String,
        reason: String,
        hint: String,
    },

    #[error(
        "the data written to {path} on {host} does not match what was sent (sent {sent_bytes} bytes, SHA-256 {sent_sha256}; the host has {got}). The file was removed and {path} is as it was; run the command again."
    )]
    Mismatch {
        host: String,
        path: String,
        sent_bytes: u64,
        sent_sha256: String,
        got: String,
    },
}

impl HostError {
    /// For an unknown host key: the key's type and fingerprint, to show a person before
    /// asking whether to trust it.
    pub fn unknown_host_key(&self) -> Option<&str> {
        match self {
            HostError::UnknownHostKey { key, .. } => Some(key),
            _ => None,
        }
    }

    /// For an unknown host key: which host offered it, as labelled in messages
    /// (`primary (198.51.100.11)`, or `primary's jump host (198.51.100.13)` when it is the
    /// jump host's key that is unknown).
    pub fn unknown_host_key_host(&self) -> Option<&str> {
        match self {
            HostError::UnknownHostKey { host, .. } => Some(host),
            _ => None,
        }
    }

    /// Trusts the unknown host key this error is about: appends its line to the
    /// known_hosts file (never rewriting it), so the next connection checks against it.
    /// Only after a person said yes to the fingerprint. False for any other error.
    pub fn accept_unknown_host_key(&self) -> std::io::Result<bool> {
        match self {
            HostError::UnknownHostKey {
                known_hosts, line, ..
            } => super::known_hosts::record(known_hosts, line).map(|()| true),
            _ => Ok(false),
        }
    }

    pub(super) fn command_failed(host: &str, cmd: &Cmd, status: Option<i32>, stderr: &str) -> Self {
        let stderr = last_lines(stderr, 6);
        let (status, hint) = match status {
            Some(127) => (
                "was not found (exit status 127)".to_owned(),
                ". Install the package that provides it on that host.".to_owned(),
            ),
            Some(1) if stderr.contains("sudo: a password is required") => (
                "needs root, and sudo asked for a password".to_owned(),
                ". Log in as root, or allow the SSH user passwordless sudo (NOPASSWD) on that host.".to_owned(),
            ),
            Some(code) => (format!("failed with exit status {code}"), String::new()),
            None => ("was killed by a signal".to_owned(), String::new()),
        };
        HostError::CommandFailed {
            host: host.to_owned(),
            command: cmd.summary(),
            status,
            stderr,
            hint,
        }
    }
}

/// The name OpenSSH gives a key type in its host key file names (`ed25519`, `ecdsa`, `rsa`).
fn short_key_type(key: &str) -> &str {
    let key_type = key.split(' ').next().unwrap_or("");
    key_type
        .trim_start_matches("ssh-")
        .split('-')
        .next()
        .unwrap_or(key_type)
}

/// The end of a command's stderr: where the reason usually is, without flooding the user.
pub(super) fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    let start = lines.len().saturating_sub(count);
    lines[start..].join("\n")
}
