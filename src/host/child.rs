//! A process on this machine fed from a reader and drained into a writer at once, so neither
//! pipe can block the other: `sh -c` for a local host, `ssh` for the bulk lane.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Command, ExitStatus, Stdio};

use super::HostError;

const CHUNK: usize = 256 * 1024;

/// How the process ended.
pub struct Ended {
    pub status: ExitStatus,
    pub stderr: String,
}

/// Starts `command` with its standard streams piped, feeds it `stdin` until that ends,
/// copies its stdout into `stdout` and collects its stderr. `during` names the command in
/// errors. A process that stops reading early is not an error here (its status says why);
/// a failing input or output is, and ends the process first, so that a cut-short input
/// never looks complete to it.
pub fn run(
    mut command: Command,
    during: &str,
    stdin: &mut (dyn Read + Send),
    stdout: &mut (dyn Write + Send),
) -> Result<Ended, HostError> {
    let local = |what: &str, source: io::Error| HostError::Local {
        during: format!("{what} `{during}`"),
        source,
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| local("starting", err))?;
    let mut to_child = child.stdin.take().expect("stdin is piped");
    let mut from_child = child.stdout.take().expect("stdout is piped");
    let mut errors = child.stderr.take().expect("stderr is piped");
    widen(&to_child);
    widen(&from_child);
    let pid = child.id() as libc::pid_t;
    let (fed, copied, stderr) = std::thread::scope(|scope| {
        let feeding = scope.spawn(move || {
            let fed = feed(stdin, &mut to_child);
            if fed.is_err() {
                // End the process before its input closes. It is not reaped before this
                // thread ends, so the pid is still its own.
                // SAFETY: kill(2) on a pid this process spawned and has not waited for.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            // Closing the pipe is the command's end of input.
            drop(to_child);
            fed
        });
        let reading_errors = scope.spawn(move || {
            let mut text = Vec::new();
            let _ = errors.read_to_end(&mut text);
            text
        });
        let copied = copy(&mut from_child, stdout);
        if copied.is_err() {
            // Nobody takes the output any more: stop the process rather than let the
            // feeding thread wait on a pipe that no longer drains.
            let _ = child.kill();
        }
        drop(from_child);
        let fed = feeding
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let stderr = reading_errors
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (fed, copied, String::from_utf8_lossy(&stderr).into_owned())
    });
    let status = child.wait().map_err(|err| local("waiting for", err))?;
    fed.map_err(|err| local("reading the input for", err))?;
    copied.map_err(|err| local("writing the output of", err))?;
    Ok(Ended { status, stderr })
}

fn feed(source: &mut (dyn Read + Send), to_child: &mut impl Write) -> io::Result<()> {
    // Zeroed when done: a command's input may hold a secret.
    let mut buf = zeroize::Zeroizing::new(vec![0u8; CHUNK]);
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if let Err(err) = to_child.write_all(&buf[..n]) {
            return match err.kind() {
                io::ErrorKind::BrokenPipe => Ok(()),
                _ => Err(err),
            };
        }
    }
}

fn copy(from: &mut impl Read, to: &mut (dyn Write + Send)) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return to.flush(),
            Ok(n) => to.write_all(&buf[..n])?,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// A pipe of 1 MiB rather than 64 KiB: fewer switches between this process and the child.
fn widen(pipe: &impl AsRawFd) {
    // SAFETY: fcntl on a descriptor the caller owns; failure leaves the default size.
    unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
}
