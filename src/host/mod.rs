//! Everything ha-setup does on a database host goes through [`Host`]: SSH to a remote host
//! (`ssh.rs`) or this machine itself (`local.rs`). One primitive, [`Host::exec`], runs a
//! shell command with a stdin source and a stdout sink; files, secrets and captured output
//! are built on it once, in [`HostExt`], so both kinds behave the same.

mod child;
mod error;
mod files;
mod jump;
mod known_hosts;
mod local;
mod openssh;
mod quote;
pub mod room;
mod ssh;
mod ssh_config;

use std::io::{Read, Write};

pub use error::HostError;
pub use files::{FileMode, HostFiles, Transfer};
pub use local::LocalHost;
pub use quote::quote;
pub use ssh::{CIPHERS, SshHost, SshTarget};

/// Who a command runs as on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// The user that logged in (the SSH user, or whoever runs ha-setup locally).
    Login,
    /// root: as is when logged in as root, else through `sudo -n`.
    Root,
    /// Another OS user, such as `postgres`: `runuser` as root, else `sudo -n -u`.
    User(String),
}

/// A POSIX shell command for a host. Every value in `script` is put there with [`quote`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub script: String,
    pub run_as: RunAs,
    /// Moves a lot of data: a remote host may run it over a faster transport.
    pub bulk: bool,
}

impl Cmd {
    pub fn new(script: impl Into<String>) -> Self {
        Cmd {
            script: script.into(),
            run_as: RunAs::Login,
            bulk: false,
        }
    }

    /// A script kept in a file of its own (embedded with `include_str!`), given its values
    /// as positional parameters (`$1`, `$2`, …): no value is spliced into its text.
    pub fn script(script: &str, args: &[&str]) -> Self {
        let mut text = String::from("set --");
        for arg in args {
            text.push(' ');
            text.push_str(&quote(arg));
        }
        text.push('\n');
        text.push_str(script);
        Cmd::new(text)
    }

    pub fn as_root(mut self) -> Self {
        self.run_as = RunAs::Root;
        self
    }

    /// Marks a command whose input or output is large (a bundle, a file).
    pub fn bulk(mut self) -> Self {
        self.bulk = true;
        self
    }

    pub fn as_user(mut self, user: &str) -> Self {
        self.run_as = RunAs::User(user.to_owned());
        self
    }

    /// The command line the host's login shell runs: the script, wrapped to change user
    /// when asked. The wrapping is the only place privileges change.
    pub fn command_line(&self, login_is_root: bool) -> String {
        let script = quote(&self.script);
        match (&self.run_as, login_is_root) {
            (RunAs::Login, _) | (RunAs::Root, true) => format!("sh -c {script}"),
            (RunAs::Root, false) => format!("sudo -n -- sh -c {script}"),
            (RunAs::User(user), true) => format!("runuser -u {} -- sh -c {script}", quote(user)),
            (RunAs::User(user), false) => format!("sudo -n -u {} -- sh -c {script}", quote(user)),
        }
    }

    /// A short name for the command in messages and logs: its first line, cut short.
    pub fn summary(&self) -> String {
        let first = self.script.trim_start().lines().next().unwrap_or("");
        let mut summary: String = first.chars().take(80).collect();
        if summary.len() < first.len() || self.script.trim().lines().count() > 1 {
            summary.push_str(" …");
        }
        summary
    }
}

/// Where and as whom this machine logged in to a host, and the host key it checked there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEndpoint {
    /// The address connected to (after `~/.ssh/config` HostName).
    pub host: String,
    pub port: u16,
    pub user: String,
    /// `TYPE BASE64`, as known_hosts writes it.
    pub host_key: String,
}

impl SshEndpoint {
    /// The line a known_hosts file needs for this host's key.
    pub fn known_hosts_line(&self) -> String {
        if self.port == 22 {
            format!("{} {}", self.host, self.host_key)
        } else {
            format!("[{}]:{} {}", self.host, self.port, self.host_key)
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The exit status, or None when a signal ended it.
    pub status: Option<i32>,
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// What a captured command printed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A database host that commands run on.
pub trait Host: Send {
    /// How the host is named in messages: `secondary (198.51.100.12)`.
    fn label(&self) -> &str;

    /// Whether the login user is root (so root commands need no `sudo`).
    fn login_is_root(&self) -> bool;

    /// How another host would log in to this one over SSH, as this machine did (for a
    /// route straight from host to host); None for this machine itself.
    fn ssh_endpoint(&self) -> Option<SshEndpoint> {
        None
    }

    /// Runs `cmd`, feeding it `stdin` until that ends and copying its stdout into
    /// `stdout` as it arrives. Returns when the command has ended; its exit status is data,
    /// not an error. Errors are about reaching the host, never about the command.
    fn exec(
        &mut self,
        cmd: &Cmd,
        stdin: &mut (dyn Read + Send),
        stdout: &mut (dyn Write + Send),
    ) -> Result<Finished, HostError>;
}

/// What every host can do, built on [`Host::exec`].
pub trait HostExt: Host {
    /// Runs a command with no input and captures what it prints.
    fn run(&mut self, cmd: &Cmd) -> Result<Output, HostError> {
        self.run_with_input(cmd, &[])
    }

    /// Runs a command with `input` on its stdin (the way secrets and SQL go in).
    fn run_with_input(&mut self, cmd: &Cmd, input: &[u8]) -> Result<Output, HostError> {
        let mut stdout = Vec::new();
        let finished = self.exec(cmd, &mut &input[..], &mut stdout)?;
        Ok(Output {
            status: finished.status,
            stdout,
            stderr: finished.stderr,
        })
    }

    /// Runs a command that must succeed and returns its stdout; a failure carries the
    /// command's stderr.
    fn run_ok(&mut self, cmd: &Cmd) -> Result<String, HostError> {
        self.run_ok_with_input(cmd, &[])
    }

    fn run_ok_with_input(&mut self, cmd: &Cmd, input: &[u8]) -> Result<String, HostError> {
        let output = self.run_with_input(cmd, input)?;
        if output.success() {
            Ok(output.stdout_text())
        } else {
            Err(HostError::command_failed(
                self.label(),
                cmd,
                output.status,
                &output.stderr,
            ))
        }
    }

    /// Runs `make_cmd(path)` with `secret` in a 0600 file at `path` that is removed
    /// afterwards, also when the command fails or the connection drops. The secret travels
    /// on stdin, never on a command line; `input` follows it on the command's stdin.
    /// `path` is a quoted shell word, ready to put into the script.
    fn run_with_secret_file(
        &mut self,
        secret: &[u8],
        input: &[u8],
        make_cmd: &dyn Fn(&str) -> Cmd,
    ) -> Result<Output, HostError> {
        let inner = make_cmd("\"$ha_secret\"");
        // The whole script runs as the inner command's user, so the file is that user's.
        // GNU head -c reads no further than the secret, leaving `input` for the command.
        let script = format!(
            "umask 077\n\
             ha_secret=$(mktemp) || exit 125\n\
             trap 'rm -f \"$ha_secret\"' EXIT\n\
             trap 'exit 129' HUP INT TERM PIPE\n\
             head -c {len} > \"$ha_secret\" || exit 125\n\
             {script}",
            len = secret.len(),
            script = inner.script,
        );
        // Sized once and zeroed when dropped: no stray copy of the secret is left behind.
        let mut stdin = zeroize::Zeroizing::new(Vec::with_capacity(secret.len() + input.len()));
        stdin.extend_from_slice(secret);
        stdin.extend_from_slice(input);
        let wrapped = Cmd { script, ..inner };
        self.run_with_input(&wrapped, &stdin)
    }
}

impl<H: Host + ?Sized> HostExt for H {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_wrapping_follows_the_login_user() {
        let cmd = Cmd::new("id -u");
        assert_eq!(cmd.command_line(true), "sh -c 'id -u'");
        assert_eq!(cmd.clone().as_root().command_line(true), "sh -c 'id -u'");
        assert_eq!(
            cmd.clone().as_root().command_line(false),
            "sudo -n -- sh -c 'id -u'"
        );
        assert_eq!(
            cmd.clone().as_user("postgres").command_line(true),
            "runuser -u postgres -- sh -c 'id -u'"
        );
        assert_eq!(
            cmd.as_user("postgres").command_line(false),
            "sudo -n -u postgres -- sh -c 'id -u'"
        );
    }

    #[test]
    fn summary_is_one_short_line() {
        assert_eq!(
            Cmd::new("mariadb -N -e 'select 1'").summary(),
            "mariadb -N -e 'select 1'"
        );
        assert_eq!(Cmd::new("set -e\ncat > x").summary(), "set -e …");
        assert_eq!(Cmd::new("x".repeat(200)).summary().chars().count(), 82);
    }
}
