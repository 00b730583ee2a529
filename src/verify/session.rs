//! A database client kept open on a host while other work goes on: `verify` holds a lock
//! in one session on the primary while it reads a standby (PostgreSQL), or keeps one
//! session's settings for every chunk (MariaDB). [`Host::exec`] is blocking, with a reader
//! for the command's stdin and a writer for its stdout, so it runs on a scoped thread fed
//! and drained through pipes, and each question ends with a marker line that the client
//! prints once everything before it has run.
//!
//! The SSH host's pump reads the command's stdin before it drains the command's stdout
//! (host/ssh.rs), so a session whose input waits for its own answer would never see that
//! answer. While an answer is awaited, the session therefore writes an empty line every
//! few milliseconds: both clients skip empty lines, and each one lets the pump pass on
//! what the command printed meanwhile.

use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::host::{Cmd, Finished, Host, HostError};

/// How often an empty line nudges the host's pump while an answer is awaited.
const NUDGE: Duration = Duration::from_millis(3);

/// How a session's client ended before it answered: an error it reported (each client
/// stops at the first one), the connection lost, or a question that ran out of time.
#[derive(Debug)]
pub struct Ended {
    pub host: String,
    pub status: Option<i32>,
    /// What the client printed on stderr: the server's own words.
    pub stderr: String,
    /// The question ran longer than its bound (the client was ended for it).
    pub timed_out: bool,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.timed_out {
            return write!(
                f,
                "the database client on {} did not answer in time",
                self.host
            );
        }
        let text = self.stderr.trim();
        match (self.status, text.is_empty()) {
            (_, false) => write!(f, "the database client on {} ended: {text}", self.host),
            (Some(code), true) => write!(
                f,
                "the database client on {} ended with status {code}",
                self.host
            ),
            (None, true) => write!(f, "the database client on {} was ended", self.host),
        }
    }
}

impl std::error::Error for Ended {}

type Worker<'scope> = ScopedJoinHandle<'scope, (Result<Finished, HostError>, &'scope mut dyn Host)>;

struct Running<'scope> {
    input: PipeWriter,
    output: PipeReader,
    pending: Vec<u8>,
    worker: Worker<'scope>,
}

enum State<'scope> {
    Running(Running<'scope>),
    /// The client ended (or never started); its host, to start it again.
    Idle(&'scope mut dyn Host),
    /// Only while a state changes.
    Moving,
}

/// A batch sent and not yet answered, from [`Session::post`].
#[must_use = "the answer is read with Session::answer"]
pub struct Posted {
    mark: String,
}

/// One client on one host, started by [`Session::open`] and started again after it ends.
pub struct Session<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    label: String,
    cmd: Cmd,
    /// Sent first, every time the client starts (session settings).
    setup: String,
    /// The statement that makes the client print a line: `SELECT 'x';`, `\echo x`.
    marker: fn(&str) -> String,
    asked: u64,
    state: State<'scope>,
}

impl<'scope, 'env> Session<'scope, 'env> {
    /// A session that starts its client at the first question.
    pub fn open(
        scope: &'scope Scope<'scope, 'env>,
        host: &'scope mut dyn Host,
        cmd: Cmd,
        setup: String,
        marker: fn(&str) -> String,
    ) -> Self {
        Session {
            scope,
            label: host.label().to_owned(),
            cmd,
            setup,
            marker,
            asked: 0,
            state: State::Idle(host),
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs `batch` and returns the lines it printed. A client that ends (on an error:
    /// neither client goes on after one) is an [`Ended`] error, and the next question
    /// starts it again with its setup. `bound` limits the wait for the answer; past it the
    /// client is ended.
    pub fn ask(&mut self, batch: &str, bound: Duration) -> anyhow::Result<Vec<String>> {
        let posted = self.post(batch)?;
        self.answer(posted, bound)
    }

    /// Sends `batch` without waiting for its answer, so that several hosts work at once;
    /// [`Session::answer`] collects it.
    pub fn post(&mut self, batch: &str) -> anyhow::Result<Posted> {
        if matches!(self.state, State::Idle(_)) {
            self.start()?;
        }
        self.asked += 1;
        let mark = format!("ha-setup-verify-{}-{}", std::process::id(), self.asked);
        let text = format!("{}\n{}\n", batch.trim_end(), (self.marker)(&mark));
        let State::Running(running) = &mut self.state else {
            unreachable!("started above");
        };
        if running.input.write_all(text.as_bytes()).is_err() {
            // The client is gone; what it said comes with its end.
            return Err(self.stop(false).into());
        }
        Ok(Posted { mark })
    }

    /// The lines printed by what [`Session::post`] sent, up to its marker.
    pub fn answer(&mut self, posted: Posted, bound: Duration) -> anyhow::Result<Vec<String>> {
        let Posted { mark } = posted;
        let deadline = Instant::now() + bound;
        let mut lines = Vec::new();
        loop {
            let State::Running(running) = &mut self.state else {
                return Err(anyhow::anyhow!(
                    "the database client on {} is not running",
                    self.label
                ));
            };
            while let Some(end) = running.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = running.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..end]).into_owned();
                if line == mark {
                    return Ok(lines);
                }
                lines.push(line);
            }
            if Instant::now() >= deadline {
                return Err(self.stop(true).into());
            }
            match wait_readable(&running.output, NUDGE) {
                Ok(true) => {
                    let mut buf = [0u8; 64 * 1024];
                    match running.output.read(&mut buf) {
                        Ok(0) => return Err(self.stop(false).into()),
                        Ok(n) => running.pending.extend_from_slice(&buf[..n]),
                        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => return Err(self.stop(false).into()),
                    }
                }
                Ok(false) => {
                    // A failed nudge means the client is gone: its output ends next.
                    let _ = running.input.write_all(b"\n");
                }
                Err(_) => return Err(self.stop(false).into()),
            }
        }
    }

    /// Ends the client and starts `cmd` instead at the next question (another database).
    pub fn switch(&mut self, cmd: Cmd) {
        self.close();
        self.cmd = cmd;
    }

    /// Ends the client (its input closes, so it finishes what it has and exits) and waits
    /// for it.
    pub fn close(&mut self) {
        if matches!(self.state, State::Running(_)) {
            let _ = self.stop(false);
        }
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let (stdin_r, mut stdin_w) = std::io::pipe().context("cannot make a pipe")?;
        let (stdout_r, stdout_w) = std::io::pipe().context("cannot make a pipe")?;
        let State::Idle(host) = std::mem::replace(&mut self.state, State::Moving) else {
            unreachable!("started only when idle");
        };
        let cmd = self.cmd.clone();
        let worker = self.scope.spawn(move || {
            let (mut stdin_r, mut stdout_w) = (stdin_r, stdout_w);
            let finished = host.exec(&cmd, &mut stdin_r, &mut stdout_w);
            // The reader sees the end of the output once this end is closed.
            drop(stdout_w);
            (finished, host)
        });
        // Setup goes first; a pipe holds it until the client reads.
        let _ = stdin_w.write_all(format!("{}\n", self.setup.trim_end()).as_bytes());
        self.state = State::Running(Running {
            input: stdin_w,
            output: stdout_r,
            pending: Vec::new(),
            worker,
        });
        Ok(())
    }

    /// Closes the client's input and waits for it to end; the session is idle after.
    fn stop(&mut self, timed_out: bool) -> Ended {
        let State::Running(running) = std::mem::replace(&mut self.state, State::Moving) else {
            unreachable!("stopped only while running");
        };
        let Running {
            input,
            mut output,
            worker,
            ..
        } = running;
        drop(input);
        if timed_out {
            // Whatever the client still prints is not wanted; reading it lets the
            // command end rather than block on a full pipe.
            let _ = std::io::copy(&mut output, &mut std::io::sink());
        }
        drop(output);
        let (finished, host) = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        self.state = State::Idle(host);
        match finished {
            Ok(finished) => Ended {
                host: self.label.clone(),
                status: finished.status,
                stderr: finished.stderr,
                timed_out,
            },
            Err(err) => Ended {
                host: self.label.clone(),
                status: None,
                stderr: err.to_string(),
                timed_out,
            },
        }
    }
}

impl Drop for Session<'_, '_> {
    fn drop(&mut self) {
        self.close();
    }
}

/// Whether `pipe` has something to read (or has ended) within `timeout`.
fn wait_readable(pipe: &PipeReader, timeout: Duration) -> std::io::Result<bool> {
    let mut poll = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for a descriptor this session owns, for the call's duration.
    let ready = unsafe { libc::poll(&mut poll, 1, timeout.as_millis() as i32) };
    match ready {
        -1 => {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(err)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::LocalHost;

    fn echo_marker(mark: &str) -> String {
        format!("echo {mark}")
    }

    #[test]
    fn answers_come_back_question_by_question_and_an_end_is_reported() {
        let mut host = LocalHost::new("here");
        std::thread::scope(|scope| {
            // A shell reading its commands one line at a time: a client in miniature.
            let mut session = Session::open(
                scope,
                &mut host,
                Cmd::new("exec sh"),
                "x=1".into(),
                echo_marker,
            );
            let bound = Duration::from_secs(10);
            assert_eq!(
                session.ask("echo $x; echo two", bound).unwrap(),
                ["1", "two"]
            );
            assert_eq!(session.ask("x=3", bound).unwrap(), Vec::<String>::new());
            assert_eq!(session.ask("echo $x", bound).unwrap(), ["3"]);
            let ended = session
                .ask("echo oops >&2; exit 7", bound)
                .unwrap_err()
                .downcast::<Ended>()
                .unwrap();
            assert_eq!((ended.status, ended.stderr.trim()), (Some(7), "oops"));
            // Started again, with its setup.
            assert_eq!(session.ask("echo $x", bound).unwrap(), ["1"]);
            let slow = session
                .ask("sleep 1", Duration::from_millis(200))
                .unwrap_err()
                .downcast::<Ended>()
                .unwrap();
            assert!(slow.timed_out);
        });
    }
}
