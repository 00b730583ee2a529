//! Reaching a host through a jump host (ProxyJump): a libssh2 session to the jump host,
//! checked and logged in to exactly as any host is, then a `direct-tcpip` channel from it
//! to the target's SSH port. libssh2 needs a socket for the target's own session, so the
//! channel is bridged to one end of a Unix socket pair (private to this process, unlike a
//! port on 127.0.0.1) by a relay thread; the target's session runs over the other end and
//! checks the target's host key itself, end to end: the jump host only ever sees
//! encrypted bytes.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ssh2::{BlockDirections, Channel, ErrorCode, Session};

use super::HostError;
use super::openssh::Login;
use super::ssh::{self, SshTarget};
use crate::prompt::Prompter;

const BUFFER: usize = 256 * 1024;

/// An open tunnel to a target's SSH port through its jump host. Dropping it ends the relay.
pub(super) struct Tunnel {
    /// The end the target's session runs over.
    pub socket: UnixStream,
    /// How the jump host was logged in to (the bulk lane logs in the same way).
    pub login: Login,
    stop: Arc<AtomicBool>,
}

impl Tunnel {
    /// Connects to `jump`, checks its host key, logs in, and opens a channel from it to
    /// `target`'s host and port. `label` names the target in errors.
    pub fn open(
        jump: &SshTarget,
        target: &SshTarget,
        label: &str,
        prompter: &dyn Prompter,
    ) -> Result<Tunnel, HostError> {
        let jump_label = jump.label();
        let tcp = ssh::tcp_connect(jump, &jump_label)?;
        let for_session = tcp.try_clone().map_err(|source| HostError::Local {
            during: "cloning the SSH socket".to_owned(),
            source,
        })?;
        let (session, login) = ssh::open_session(jump, &jump_label, for_session, prompter)?;
        let address = format!("{}:{}", target.hostname, target.port);
        // Opening the channel makes the jump host connect: the target's connect timeout.
        session.set_timeout(ssh::millis(target.connect_timeout));
        let channel = session
            .channel_direct_tcpip(&target.hostname, target.port, None)
            .map_err(|err| HostError::Tunnel {
                host: label.to_owned(),
                jump: jump_label.clone(),
                target: address.clone(),
                detail: if err.code() == ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_TIMEOUT) {
                    format!(
                        "no answer within {} s",
                        target.connect_timeout.as_secs().max(1)
                    )
                } else {
                    err.message().to_owned()
                },
            })?;
        let (socket, relayed) = UnixStream::pair().map_err(|source| HostError::Local {
            during: "making a socket pair for the jump host's tunnel".to_owned(),
            source,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let relay = Relay {
            session,
            tcp,
            channel,
            local: relayed,
            stop: Arc::clone(&stop),
            keepalive: jump.keepalive.max(Duration::from_secs(1)),
        };
        std::thread::Builder::new()
            .name("ssh-jump-relay".to_owned())
            .spawn(move || relay.run())
            .map_err(|source| HostError::Local {
                during: "starting the jump host's relay".to_owned(),
                source,
            })?;
        tracing::debug!("{label}: tunnel to {address} through {jump_label} is open");
        Ok(Tunnel {
            socket,
            login,
            stop,
        })
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Bytes waiting to be written on, `data[start..end]`.
struct Pending {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Pending {
    fn new() -> Self {
        Pending {
            data: vec![0; BUFFER],
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Fills the buffer from `from`; Ok(false) at end of input.
    fn fill(&mut self, from: &mut impl Read) -> io::Result<bool> {
        match from.read(&mut self.data) {
            Ok(0) => Ok(false),
            Ok(n) => {
                (self.start, self.end) = (0, n);
                Ok(true)
            }
            Err(err) => Err(err),
        }
    }

    fn flush(&mut self, to: &mut impl Write) -> io::Result<usize> {
        let n = to.write(&self.data[self.start..self.end])?;
        self.start += n;
        Ok(n)
    }
}

/// The relay thread's state: it alone drives the jump host's session.
struct Relay {
    session: Session,
    tcp: TcpStream,
    channel: Channel,
    local: UnixStream,
    stop: Arc<AtomicBool>,
    keepalive: Duration,
}

fn would_block(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

impl Relay {
    /// Copies both ways until either side ends. The target's session notices a jump host
    /// that went silent by its own keepalives, as it would a direct connection.
    fn run(mut self) {
        if self.local.set_nonblocking(true).is_err() {
            return;
        }
        self.session.set_blocking(false);
        let mut up = Pending::new(); // this process → the target
        let mut down = Pending::new(); // the target → this process
        let mut target_open = true;
        while !self.stop.load(Ordering::Relaxed) {
            let mut progressed = false;
            if up.is_empty() {
                match up.fill(&mut self.local) {
                    Ok(true) => progressed = true,
                    // The target's session was dropped: the tunnel has no more use.
                    Ok(false) => break,
                    Err(err) if would_block(&err) => {}
                    Err(_) => break,
                }
            }
            if !up.is_empty() {
                match up.flush(&mut self.channel) {
                    Ok(n) => progressed |= n > 0,
                    Err(err) if would_block(&err) => {}
                    Err(_) => break,
                }
            }
            if down.is_empty() && target_open {
                match down.fill(&mut self.channel) {
                    Ok(true) => progressed = true,
                    Ok(false) => target_open = !self.channel.eof(),
                    Err(err) if would_block(&err) => {}
                    Err(_) => break,
                }
            }
            if !down.is_empty() {
                match down.flush(&mut self.local) {
                    Ok(n) => progressed |= n > 0,
                    Err(err) if would_block(&err) => {}
                    Err(_) => break,
                }
            }
            if !target_open && down.is_empty() {
                // The target closed the connection; closing our end tells its session.
                break;
            }
            if !progressed && !self.wait(up.is_empty(), down.is_empty()) {
                break;
            }
        }
        // Best effort, briefly: close the channel so the jump host lets go at once.
        self.session.set_blocking(true);
        self.session.set_timeout(1000);
        let _ = self.channel.close();
        let _ = self
            .session
            .disconnect(None, "ha-setup is done with the tunnel", None);
    }

    /// Waits until either socket can move data (at most a second, so a stop is seen),
    /// sending the jump host keepalives. False when either side has hung up.
    fn wait(&self, up_empty: bool, down_empty: bool) -> bool {
        let _ = self.session.keepalive_send();
        let blocked = self.session.block_directions();
        let mut tcp_events = 0;
        if down_empty || matches!(blocked, BlockDirections::Inbound | BlockDirections::Both) {
            tcp_events |= libc::POLLIN;
        }
        if matches!(blocked, BlockDirections::Outbound | BlockDirections::Both) {
            tcp_events |= libc::POLLOUT;
        }
        let mut local_events = 0;
        if up_empty {
            local_events |= libc::POLLIN;
        }
        if !down_empty {
            local_events |= libc::POLLOUT;
        }
        let mut fds = [
            libc::pollfd {
                fd: self.tcp.as_raw_fd(),
                events: tcp_events,
                revents: 0,
            },
            libc::pollfd {
                fd: self.local.as_raw_fd(),
                events: local_events,
                revents: 0,
            },
        ];
        let timeout = self.keepalive.min(Duration::from_secs(1)).as_millis() as i32;
        // SAFETY: two valid pollfds for sockets this struct owns, for the call's duration.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if ready < 0 {
            return io::Error::last_os_error().kind() == io::ErrorKind::Interrupted;
        }
        let gone = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
        // A hang-up with data still readable is read first; only a bare one ends the relay.
        fds.iter()
            .all(|fd| fd.revents & gone == 0 || fd.revents & libc::POLLIN != 0)
    }
}
