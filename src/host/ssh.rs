//! A remote host over SSH (libssh2, through the ssh2 crate): one session per host, reused
//! for every command of a run. Nothing can hang forever: connecting has a timeout, and a
//! host that stops answering (keepalives unanswered) for `io_timeout` is an error.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, ErrorCode, MethodType, Session};
use zeroize::Zeroizing;

use super::jump::Tunnel;
use super::openssh::{Login, OpenSsh};
use super::{Cmd, Finished, Host, HostError, SshEndpoint, known_hosts};
use crate::config::{HostKeyPolicy, Node, Ssh};
use crate::prompt::Prompter;

/// Ciphers in order of preference: AES-GCM runs on the CPU's AES instructions and needs no
/// separate MAC; chacha20-poly1305 is next best where AES-NI is missing. Measured in
/// docs/BENCHMARKS.md.
pub const CIPHERS: &str = "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-ctr,aes256-ctr";
/// A large receive window, so the far side never waits for window adjustments on a fast link.
const WINDOW: u32 = 16 * 1024 * 1024;
const PACKET: u32 = 32 * 1024;
const CHUNK: usize = 256 * 1024;

/// Where and how to reach a node: the config, completed from `~/.ssh/config` and defaults
/// (ssh_config.rs).
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// The node's name in the config (`primary`).
    pub name: String,
    /// The address connected to (after `~/.ssh/config` HostName).
    pub hostname: String,
    pub port: u16,
    pub user: String,
    /// Keys to offer; when the config names one, only that one.
    pub identity_files: Vec<PathBuf>,
    pub identity_explicit: bool,
    pub passphrase_env: Option<String>,
    pub password_env: Option<String>,
    pub known_hosts: PathBuf,
    pub policy: HostKeyPolicy,
    pub connect_timeout: Duration,
    pub keepalive: Duration,
    pub io_timeout: Duration,
    /// Whether bulk commands may go through OpenSSH's `ssh` (see `openssh.rs`).
    pub bulk_via_openssh: bool,
    /// The jump host to go through (ProxyJump in `~/.ssh/config`): connected to, its key
    /// checked and logged in to first, under the same known_hosts and policy. It has none.
    pub jump: Option<Box<SshTarget>>,
    /// Why `~/.ssh/config` says to connect in a way ha-setup does not support
    /// (ProxyCommand, HostKeyAlias, two jump hosts, …): connecting is refused with it.
    pub refused: Option<String>,
    /// The OpenSSH client config that was read (`[ssh] config_file`).
    pub ssh_config: PathBuf,
}

impl SshTarget {
    /// Completes a node's SSH settings: the config file wins, then `~/.ssh/config` (Host
    /// aliases, HostName, User, Port, IdentityFile, ProxyJump), then the defaults.
    pub fn resolve(name: &str, node: &Node, ssh: &Ssh) -> SshTarget {
        super::ssh_config::resolve(name, node, ssh)
    }

    pub(super) fn label(&self) -> String {
        format!("{} ({})", self.name, self.hostname)
    }
}

pub struct SshHost {
    label: String,
    target: SshTarget,
    session: Session,
    /// The session's socket, for waiting on it.
    wire: Wire,
    /// Set once the connection failed mid-command: libssh2 cannot continue such a session.
    broken: Option<String>,
    login: Login,
    /// OpenSSH for bulk commands, found out at the first one.
    lane: Lane,
    /// The relay through the jump host, if any; last, so it ends after the session.
    tunnel: Option<Tunnel>,
    /// The host key checked at connection (`TYPE BASE64`).
    host_key: String,
}

/// What a session runs over: a TCP connection to the host, or a tunnel through its jump
/// host.
enum Wire {
    Direct(TcpStream),
    Tunnel(UnixStream),
}

impl Wire {
    fn try_clone(&self) -> io::Result<Wire> {
        Ok(match self {
            Wire::Direct(stream) => Wire::Direct(stream.try_clone()?),
            Wire::Tunnel(stream) => Wire::Tunnel(stream.try_clone()?),
        })
    }
}

impl AsRawFd for Wire {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Wire::Direct(stream) => stream.as_raw_fd(),
            Wire::Tunnel(stream) => stream.as_raw_fd(),
        }
    }
}

enum Lane {
    Untried,
    Ready(OpenSsh),
    Closed,
}

impl SshHost {
    /// Connects (through the jump host, if any), checks the host key (every hop's), and
    /// logs in. Nothing runs on the host before its key has been checked, and nothing goes
    /// on the network when `~/.ssh/config` asks for something ha-setup does not support.
    pub fn connect(target: SshTarget, prompter: &dyn Prompter) -> Result<SshHost, HostError> {
        let label = target.label();
        if let Some(detail) = &target.refused {
            return Err(HostError::SshConfig {
                host: label,
                ssh_config: target.ssh_config.clone(),
                detail: detail.clone(),
            });
        }
        let (wire, tunnel) = match &target.jump {
            None => (Wire::Direct(tcp_connect(&target, &label)?), None),
            Some(jump) => {
                let tunnel = Tunnel::open(jump, &target, &label, prompter)?;
                let socket = tunnel
                    .socket
                    .try_clone()
                    .map_err(|source| HostError::Local {
                        during: "cloning the tunnel's socket".to_owned(),
                        source,
                    })?;
                (Wire::Tunnel(socket), Some(tunnel))
            }
        };
        let for_session = wire.try_clone().map_err(|source| HostError::Local {
            during: "cloning the SSH socket".to_owned(),
            source,
        })?;
        let (session, login) = open_session(&target, &label, for_session, prompter)?;
        let host_key = known_hosts::offered_key(&session).unwrap_or_default();
        tracing::debug!(
            "connected to {label} as {}{}",
            target.user,
            target
                .jump
                .as_ref()
                .map(|jump| format!(" through {}", jump.label()))
                .unwrap_or_default()
        );
        Ok(SshHost {
            label,
            target,
            session,
            wire,
            broken: None,
            login,
            lane: Lane::Untried,
            tunnel,
            host_key,
        })
    }

    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Which transport bulk commands take to this host: `"openssh"` or `"libssh2"`.
    pub fn bulk_transport(&mut self) -> &'static str {
        if self.lane().is_some() {
            "openssh"
        } else {
            "libssh2"
        }
    }

    /// OpenSSH for a bulk command, when this host can take it: tried once per session.
    fn lane(&mut self) -> Option<OpenSsh> {
        if let Lane::Untried = self.lane {
            self.lane = match self.open_lane() {
                Ok(lane) => {
                    tracing::debug!("{}: bulk streams go through OpenSSH's ssh", self.label);
                    Lane::Ready(lane)
                }
                Err(why) => {
                    tracing::debug!("{}: bulk streams stay on libssh2: {why}", self.label);
                    Lane::Closed
                }
            };
        }
        match &self.lane {
            Lane::Ready(lane) => Some(lane.clone()),
            _ => None,
        }
    }

    fn open_lane(&self) -> Result<OpenSsh, String> {
        if !self.target.bulk_via_openssh {
            return Err("[ssh] bulk_via_openssh is false".into());
        }
        let jump_login = self.tunnel.as_ref().map(|tunnel| &tunnel.login);
        let lane = OpenSsh::new(&self.target, &self.login, jump_login)?;
        lane.probe()?;
        Ok(lane)
    }

    fn silent(&self, during: &str) -> HostError {
        HostError::Silent {
            host: self.label.clone(),
            secs: self.target.io_timeout.as_secs(),
            during: during.to_owned(),
        }
    }

    /// An ssh2 error from a blocking call: a timeout there means the host went silent.
    fn fail(&mut self, during: &str, err: &ssh2::Error) -> HostError {
        let error = if err.code() == ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_TIMEOUT) {
            self.silent(during)
        } else {
            ssh_error(&self.label, during, err)
        };
        self.broken = Some(error.to_string());
        error
    }

    /// Copies stdin to the channel and the channel's stdout and stderr out, all at once, so
    /// neither side can block the other, until the command has closed its output.
    fn pump(
        &mut self,
        channel: &mut ssh2::Channel,
        during: &str,
        stdin: &mut (dyn Read + Send),
        stdout: &mut (dyn Write + Send),
    ) -> Result<String, HostError> {
        // Zeroed when the pump ends: a command's input may hold a secret.
        let mut input = Zeroizing::new(vec![0u8; CHUNK]);
        let (mut start, mut end) = (0usize, 0usize);
        let mut input_open = true;
        let mut eof_sent = false;
        let mut stderr = Vec::new();
        let mut last_heard = Instant::now();
        loop {
            let mut progressed = false;
            if input_open && start == end {
                match stdin.read(&mut input) {
                    Ok(0) => input_open = false,
                    Ok(n) => (start, end) = (0, n),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(source) => {
                        return Err(HostError::Local {
                            during: format!("reading the input for `{during}`"),
                            source,
                        });
                    }
                }
            }
            if start < end {
                match channel.write(&input[start..end]) {
                    Ok(n) => {
                        start += n;
                        progressed |= n > 0;
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    // The command stopped reading (it ended early); its status says why.
                    Err(_) => (input_open, start, end, eof_sent) = (false, 0, 0, true),
                }
            }
            if !input_open && start == end && !eof_sent {
                match channel.send_eof() {
                    Ok(()) => eof_sent = true,
                    Err(err)
                        if err.code() == ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_EAGAIN) => {}
                    Err(_) => eof_sent = true,
                }
            }
            let drained = drain(channel.stream(0), |data| stdout.write_all(data)).and_then(|out| {
                drain(channel.stderr(), |data| {
                    stderr.extend_from_slice(data);
                    Ok(())
                })
                .map(|err| out | err)
            });
            progressed |= drained.map_err(|failed| match failed {
                Drain::Sink(source) => HostError::Local {
                    during: format!("writing the output of `{during}`"),
                    source,
                },
                Drain::Stream(err) => ssh_io_error(&self.label, during, &err),
            })?;
            if channel.eof() {
                return Ok(String::from_utf8_lossy(&stderr).into_owned());
            }
            if progressed {
                last_heard = Instant::now();
            } else {
                if self.wait(last_heard)? {
                    last_heard = Instant::now();
                }
                if last_heard.elapsed() > self.target.io_timeout {
                    let error = self.silent(during);
                    self.broken = Some(error.to_string());
                    return Err(error);
                }
            }
        }
    }

    /// Waits for the socket to be ready the way libssh2 needs, sending keepalives so that a
    /// quiet but healthy host keeps answering. True when the host sent something.
    fn wait(&self, last_heard: Instant) -> Result<bool, HostError> {
        let next_keepalive = match self.session.keepalive_send() {
            Ok(secs) => Duration::from_secs(u64::from(secs.max(1))),
            Err(_) => self.target.keepalive,
        };
        let until_silent = self.target.io_timeout.saturating_sub(last_heard.elapsed());
        let timeout = next_keepalive
            .min(until_silent)
            .max(Duration::from_millis(10));
        let mut events = libc::POLLIN;
        if matches!(
            self.session.block_directions(),
            BlockDirections::Outbound | BlockDirections::Both
        ) {
            events |= libc::POLLOUT;
        }
        let mut poll = libc::pollfd {
            fd: self.wire.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd for a socket this struct owns, for the call's duration.
        let ready = unsafe {
            libc::poll(
                &mut poll,
                1,
                timeout.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        Ok(ready > 0 && poll.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0)
    }
}

/// Which end of a copy failed.
enum Drain {
    /// Writing where the data goes, here.
    Sink(io::Error),
    /// Reading the channel.
    Stream(io::Error),
}

/// Reads everything a stream has ready into `sink`. True when anything came.
fn drain(
    mut stream: ssh2::Stream,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<bool, Drain> {
    let mut buf = [0u8; 32 * 1024];
    let mut any = false;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(any),
            Ok(n) => {
                sink(&buf[..n]).map_err(Drain::Sink)?;
                any = true;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(any),
            Err(err) => return Err(Drain::Stream(err)),
        }
    }
}

impl Host for SshHost {
    fn label(&self) -> &str {
        &self.label
    }

    fn login_is_root(&self) -> bool {
        self.target.user == "root"
    }

    fn ssh_endpoint(&self) -> Option<SshEndpoint> {
        Some(SshEndpoint {
            host: self.target.hostname.clone(),
            port: self.target.port,
            user: self.target.user.clone(),
            host_key: self.host_key.clone(),
        })
    }

    fn exec(
        &mut self,
        cmd: &Cmd,
        stdin: &mut (dyn Read + Send),
        stdout: &mut (dyn Write + Send),
    ) -> Result<Finished, HostError> {
        if let Some(reason) = &self.broken {
            return Err(HostError::Ssh {
                host: self.label.clone(),
                during: format!("running `{}`", cmd.summary()),
                detail: format!("the connection was lost earlier ({reason})"),
            });
        }
        let during = cmd.summary();
        tracing::info!(host = %self.label, "run: {during}");
        let command_line = cmd.command_line(self.login_is_root());
        if cmd.bulk
            && let Some(lane) = self.lane()
        {
            return lane.exec(
                &self.target,
                &self.label,
                &during,
                &command_line,
                stdin,
                stdout,
            );
        }
        self.session.set_blocking(true);
        let mut channel = match self.session.channel_open("session", WINDOW, PACKET, None) {
            Ok(channel) => channel,
            Err(err) => return Err(self.fail(&format!("opening a channel for `{during}`"), &err)),
        };
        if let Err(err) = channel.exec(&command_line) {
            return Err(self.fail(&format!("starting `{during}`"), &err));
        }
        self.session.set_blocking(false);
        let pumped = self.pump(&mut channel, &during, stdin, stdout);
        self.session.set_blocking(true);
        let stderr = pumped?;
        if let Err(err) = channel.wait_close() {
            return Err(self.fail(&format!("waiting for `{during}` to end"), &err));
        }
        let signal = channel.exit_signal().ok().and_then(|s| s.exit_signal);
        let status = match (signal, channel.exit_status()) {
            (Some(_), _) => None,
            (None, Ok(code)) => Some(code),
            (None, Err(_)) => None,
        };
        Ok(Finished { status, stderr })
    }
}

/// Starts an SSH session over `stream`: the handshake, the host key checked against
/// known_hosts under the target's policy, then the login. Used for every hop.
pub(super) fn open_session(
    target: &SshTarget,
    label: &str,
    stream: impl AsRawFd + 'static,
    prompter: &dyn Prompter,
) -> Result<(Session, Login), HostError> {
    let mut session = Session::new().map_err(|err| ssh_error(label, "starting a session", &err))?;
    session.set_compress(false);
    for method in [MethodType::CryptCs, MethodType::CryptSc] {
        session
            .method_pref(method, CIPHERS)
            .map_err(|err| ssh_error(label, "choosing ciphers", &err))?;
    }
    session.set_tcp_stream(stream);
    session.set_timeout(millis(target.connect_timeout));
    session.handshake().map_err(|err| HostError::Handshake {
        host: label.to_owned(),
        detail: err.message().to_owned(),
    })?;
    known_hosts::check(
        &session,
        label,
        &target.hostname,
        target.port,
        &target.known_hosts,
        target.policy,
    )?;
    let login = authenticate(&session, target, label, prompter)?;
    session.set_keepalive(true, target.keepalive.as_secs().max(1) as u32);
    session.set_timeout(millis(target.io_timeout));
    Ok((session, login))
}

pub(super) fn tcp_connect(target: &SshTarget, label: &str) -> Result<TcpStream, HostError> {
    let addrs: Vec<_> = (target.hostname.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|source| HostError::Resolve {
            host: label.to_owned(),
            source,
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, target.connect_timeout) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(err) => last = Some((addr.to_string(), err)),
        }
    }
    let (addr, err) = last.unwrap_or_else(|| {
        (
            format!("{}:{}", target.hostname, target.port),
            io::Error::new(io::ErrorKind::NotFound, "the name has no address"),
        )
    });
    Err(match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => HostError::ConnectTimeout {
            host: label.to_owned(),
            addr,
            secs: target.connect_timeout.as_secs(),
        },
        io::ErrorKind::ConnectionRefused => HostError::ConnectRefused {
            host: label.to_owned(),
            addr,
        },
        _ => HostError::Connect {
            host: label.to_owned(),
            addr,
            source: err,
        },
    })
}

/// Tries, in order: the configured identity file (or the usual ones), ssh-agent, and a
/// password; every attempt is named in the error when none works.
fn authenticate(
    session: &Session,
    target: &SshTarget,
    label: &str,
    prompter: &dyn Prompter,
) -> Result<Login, HostError> {
    let user = target.user.as_str();
    let mut tried = Vec::new();
    let offered = session
        .auth_methods(user)
        .map(str::to_owned)
        .map_err(|err| ssh_error(label, "asking which login methods it accepts", &err))?;
    if session.authenticated() {
        return Ok(Login::Asked);
    }
    let allows = |method: &str| offered.split(',').any(|m| m == method);

    if allows("publickey") {
        for key in &target.identity_files {
            if !key.exists() {
                if target.identity_explicit {
                    tried.push(format!("identity_file {}: no such file", key.display()));
                }
                continue;
            }
            let passphrase = match &target.passphrase_env {
                Some(var) => match std::env::var(var) {
                    Ok(value) => Some(Zeroizing::new(value)),
                    Err(_) => {
                        tried.push(format!(
                            "identity_file {}: identity_passphrase_env names {var}, which is not set",
                            key.display()
                        ));
                        continue;
                    }
                },
                None => None,
            };
            match session.userauth_pubkey_file(
                user,
                None,
                key,
                passphrase.as_ref().map(|p| p.as_str()),
            ) {
                Ok(()) if passphrase.is_none() => return Ok(Login::KeyFile(key.clone())),
                Ok(()) => return Ok(Login::Asked),
                Err(err) if passphrase.is_none() && is_locked_key(&err) => {
                    let question = format!("Passphrase for {}", key.display());
                    match prompter.secret(&question).map(Zeroizing::new) {
                        Some(typed) => match session.userauth_pubkey_file(user, None, key, Some(&typed)) {
                            Ok(()) => return Ok(Login::Asked),
                            Err(err) => tried.push(format!("key {}: {}", key.display(), err.message())),
                        },
                        None => tried.push(format!(
                            "key {}: it has a passphrase, and neither identity_passphrase_env nor a terminal gave it",
                            key.display()
                        )),
                    }
                }
                Err(err) => {
                    tried.push(format!("key {}: {}", key.display(), describe_refusal(&err)))
                }
            }
        }
        match agent_login(session, user) {
            Ok(true) => return Ok(Login::Agent),
            Ok(false) => tried.push("ssh-agent: none of its keys was accepted".to_owned()),
            Err(why) => tried.push(format!("ssh-agent: {why}")),
        }
    } else {
        tried.push(format!(
            "public keys: {label} does not accept them (it offers: {offered})"
        ));
    }

    if allows("password") {
        let password = match &target.password_env {
            Some(var) => std::env::var(var).ok().map(Zeroizing::new).or_else(|| {
                tried.push(format!(
                    "password: ssh_password_env names {var}, which is not set"
                ));
                None
            }),
            None => prompter
                .secret(&format!("SSH password for {user}@{}", target.hostname))
                .map(Zeroizing::new)
                .or_else(|| {
                    tried.push(
                        "password: no ssh_password_env is set, and no terminal to ask on"
                            .to_owned(),
                    );
                    None
                }),
        };
        if let Some(password) = password {
            match session.userauth_password(user, &password) {
                Ok(()) => return Ok(Login::Asked),
                Err(_) => tried.push("password: refused".to_owned()),
            }
        }
    }
    Err(HostError::Auth {
        host: label.to_owned(),
        user: user.to_owned(),
        tried,
    })
}

fn agent_login(session: &Session, user: &str) -> Result<bool, String> {
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        return Err("not running (SSH_AUTH_SOCK is not set)".to_owned());
    }
    let mut agent = session.agent().map_err(|err| err.message().to_owned())?;
    agent
        .connect()
        .map_err(|err| format!("cannot connect: {}", err.message()))?;
    agent
        .list_identities()
        .map_err(|err| format!("cannot list keys: {}", err.message()))?;
    let identities = agent.identities().map_err(|err| err.message().to_owned())?;
    if identities.is_empty() {
        return Err("it holds no keys".to_owned());
    }
    let accepted = identities
        .iter()
        .any(|identity| agent.userauth(user, identity).is_ok());
    let _ = agent.disconnect();
    Ok(accepted)
}

fn is_locked_key(err: &ssh2::Error) -> bool {
    err.code() == ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_FILE)
        || err.message().contains("passphrase")
}

fn describe_refusal(err: &ssh2::Error) -> String {
    match err.code() {
        ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_AUTHENTICATION_FAILED)
        | ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) => {
            "refused by the host".to_owned()
        }
        _ => err.message().to_owned(),
    }
}

fn ssh_error(label: &str, during: &str, err: &ssh2::Error) -> HostError {
    HostError::Ssh {
        host: label.to_owned(),
        during: during.to_owned(),
        detail: err.message().to_owned(),
    }
}

fn ssh_io_error(label: &str, during: &str, err: &io::Error) -> HostError {
    HostError::Ssh {
        host: label.to_owned(),
        during: format!("running `{during}`"),
        detail: err.to_string(),
    }
}

pub(super) fn millis(duration: Duration) -> u32 {
    duration.as_millis().min(u128::from(u32::MAX)) as u32
}
