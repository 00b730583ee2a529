//! Files on a host: streamed in and out with a SHA-256 computed on the fly, and small files
//! written atomically. A destination is never half-written: data lands in a
//! `<path>.ha-setup-partial` file that becomes `<path>` by rename only once its length and
//! digest match what was sent, and is removed on any failure.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::{Cmd, Host, HostError, HostExt, quote};

/// Mode and owner for a file ha-setup writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMode {
    pub mode: u32,
    /// `user` or `user:group`; None leaves the writing user as owner.
    pub owner: Option<String>,
}

impl FileMode {
    pub fn new(mode: u32) -> Self {
        FileMode { mode, owner: None }
    }

    /// 0600: for passwords and keys.
    pub fn private() -> Self {
        FileMode::new(0o600)
    }

    pub fn owned_by(mut self, owner: &str) -> Self {
        self.owner = Some(owner.to_owned());
        self
    }

    fn script(&self, file: &str) -> String {
        let mut script = format!("chmod {:o} -- {file}\n", self.mode);
        if let Some(owner) = &self.owner {
            script.push_str(&format!("chown {} -- {file}\n", quote(owner)));
        }
        script
    }
}

/// What went through a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// Reads through to `inner`, counting and hashing every byte, and reporting progress.
struct Hashing<'a, R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    progress: &'a mut (dyn FnMut(u64) + Send),
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        (self.progress)(self.bytes);
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        (self.progress)(self.bytes);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Makes a file's data durable, then (after the rename) the directory entry naming it:
/// `sync FILE` is fsync(2) in coreutils since 8.24 (2015), busybox since 1.28. Where it is
/// older and takes no operand, a plain `sync` flushes everything, which also does. The
/// caller sets `$t` (the file) and `$d` (its directory).
const SYNC_FILE: &str = "sync -- \"$t\" 2>/dev/null || sync";
const SYNC_DIR: &str = "sync -- \"$d\" 2>/dev/null || sync";

/// The digest command on the host: OpenSSL's where present (it uses the CPU's SHA
/// instructions; coreutils' does not), else coreutils'. Both print the hex digest first.
const DIGEST: &str = "if command -v openssl >/dev/null 2>&1; then ha_digest='openssl dgst -sha256 -r'; else ha_digest=sha256sum; fi";

/// Files on any host.
pub trait HostFiles: Host {
    /// Streams `reader` to `path` on the host, as root, then gives it `mode`. `progress`
    /// gets the byte count so far.
    fn stream_in(
        &mut self,
        reader: &mut (dyn Read + Send),
        path: &str,
        mode: &FileMode,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<Transfer, HostError> {
        let target = quote(path);
        let partial = quote(&format!("{path}.ha-setup-partial"));
        // The digest is taken while the data arrives; tee's own failure (a full disk) is
        // caught through fd 3, since a pipeline's status is only its last command's.
        let receive = Cmd::new(format!(
            "set -e\n\
             t={partial}\n\
             trap 'rm -f \"$t\" \"$t.sha256\"' EXIT\n\
             trap 'exit 129' HUP INT TERM PIPE\n\
             umask 077\n\
             {DIGEST}\n\
             failed=$( {{ {{ tee -- \"$t\" || echo $? >&3; }} | $ha_digest > \"$t.sha256\"; }} 3>&1 )\n\
             [ -z \"$failed\" ] || exit 1\n\
             trap - EXIT"
        ))
        .as_root()
        .bulk();
        let mut hashing = Hashing {
            inner: reader,
            hasher: Sha256::new(),
            bytes: 0,
            progress,
        };
        let mut sink = Vec::new();
        let received = self.exec(&receive, &mut hashing, &mut sink)?;
        let sent = Transfer {
            bytes: hashing.bytes,
            sha256: hex::encode(hashing.hasher.finalize()),
        };
        if !received.success() {
            return Err(write_failed(self.label(), path, &received.stderr));
        }
        let finish = Cmd::new(format!(
            "set -e\n\
             t={partial}\n\
             trap 'rm -f \"$t\" \"$t.sha256\"' EXIT\n\
             read want_sum want_len\n\
             got_sum=$(cut -d' ' -f1 < \"$t.sha256\")\n\
             got_len=$(stat -c %s -- \"$t\")\n\
             if [ \"$got_sum\" != \"$want_sum\" ] || [ \"$got_len\" != \"$want_len\" ]; then\n\
               echo \"$got_len bytes, SHA-256 $got_sum\" >&2; exit 3\n\
             fi\n\
             {}\
             {SYNC_FILE}\n\
             mv -f -- \"$t\" {target}\n\
             rm -f -- \"$t.sha256\"\n\
             trap - EXIT\n\
             d=$(dirname -- {target})\n\
             {SYNC_DIR}",
            mode.script("\"$t\"")
        ))
        .as_root();
        let line = format!("{} {}\n", sent.sha256, sent.bytes);
        let output = self.run_with_input(&finish, line.as_bytes())?;
        match output.status {
            Some(0) => Ok(sent),
            Some(3) => Err(HostError::Mismatch {
                host: self.label().to_owned(),
                path: path.to_owned(),
                sent_bytes: sent.bytes,
                sent_sha256: sent.sha256,
                got: output.stderr.trim().to_owned(),
            }),
            _ => Err(write_failed(self.label(), path, &output.stderr)),
        }
    }

    /// Streams `path` on the host (read as root) into `writer`, and checks the digest the
    /// host computes of it against the one computed here as the bytes arrived.
    fn stream_out(
        &mut self,
        path: &str,
        writer: &mut (dyn Write + Send),
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<Transfer, HostError> {
        let source = quote(path);
        let send = Cmd::new(format!("cat -- {source}")).as_root().bulk();
        let mut hashing = Hashing {
            inner: writer,
            hasher: Sha256::new(),
            bytes: 0,
            progress,
        };
        let finished = self.exec(&send, &mut io::empty(), &mut hashing)?;
        if !finished.success() {
            return Err(HostError::command_failed(
                self.label(),
                &send,
                finished.status,
                &finished.stderr,
            ));
        }
        let received = Transfer {
            bytes: hashing.bytes,
            sha256: hex::encode(hashing.hasher.finalize()),
        };
        let check = Cmd::new(format!(
            "{DIGEST}\n$ha_digest < {source} | cut -d' ' -f1\nstat -c %s -- {source}"
        ))
        .as_root();
        let answer = self.run_ok(&check)?;
        let mut lines = answer.lines();
        let (sum, len) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
        if sum != received.sha256 || len != received.bytes.to_string() {
            return Err(HostError::Mismatch {
                host: self.label().to_owned(),
                path: path.to_owned(),
                sent_bytes: received.bytes,
                sent_sha256: received.sha256,
                got: format!("{len} bytes, SHA-256 {sum}"),
            });
        }
        Ok(received)
    }

    /// Writes a small file atomically and durably, as root: a temporary file in the same
    /// directory, given its mode and owner and fsynced, then renamed over `path`, then the
    /// directory fsynced, so after a crash `path` holds either the old contents or the
    /// new, never an empty or partial file.
    fn write_file(
        &mut self,
        path: &str,
        contents: &[u8],
        mode: &FileMode,
    ) -> Result<(), HostError> {
        let target = quote(path);
        let cmd = Cmd::new(format!(
            "set -e\n\
             t=$(mktemp -- {target}.ha-setup-XXXXXX)\n\
             trap 'rm -f \"$t\"' EXIT\n\
             trap 'exit 129' HUP INT TERM PIPE\n\
             cat > \"$t\"\n\
             {}\
             {SYNC_FILE}\n\
             mv -f -- \"$t\" {target}\n\
             trap - EXIT\n\
             d=$(dirname -- {target})\n\
             {SYNC_DIR}",
            mode.script("\"$t\"")
        ))
        .as_root();
        let output = self.run_with_input(&cmd, contents)?;
        if output.success() {
            Ok(())
        } else {
            Err(write_failed(self.label(), path, &output.stderr))
        }
    }

    /// Reads a small file, as root.
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, HostError> {
        let cmd = Cmd::new(format!("cat -- {}", quote(path))).as_root();
        let output = self.run(&cmd)?;
        if output.success() {
            Ok(output.stdout)
        } else {
            Err(HostError::command_failed(
                self.label(),
                &cmd,
                output.status,
                &output.stderr,
            ))
        }
    }
}

impl<H: Host + ?Sized> HostFiles for H {}

fn write_failed(host: &str, path: &str, stderr: &str) -> HostError {
    let stderr = super::error::last_lines(stderr, 3);
    let hint = if stderr.contains("No space left") {
        "Free space on that host (df -h shows where), or write somewhere with room."
    } else if stderr.contains("Permission denied") || stderr.contains("Read-only") {
        "Check that the directory is writable by root there and not on a read-only mount."
    } else if stderr.contains("No such file or directory") {
        "Check that the directory exists on that host."
    } else {
        "Check the host, then run the command again."
    };
    HostError::WriteFailed {
        host: host.to_owned(),
        path: path.to_owned(),
        reason: if stderr.is_empty() {
            String::new()
        } else {
            format!(" ({stderr})")
        },
        hint: hint.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::host::Finished;

    /// This machine, every command run under strace so the test sees the system calls.
    struct Traced {
        trace: PathBuf,
    }

    impl Host for Traced {
        fn label(&self) -> &str {
            "traced (this machine)"
        }

        fn login_is_root(&self) -> bool {
            // Root's commands run as whoever runs the test: everything is in a temp dir.
            true
        }

        fn exec(
            &mut self,
            cmd: &Cmd,
            stdin: &mut (dyn Read + Send),
            stdout: &mut (dyn Write + Send),
        ) -> Result<Finished, HostError> {
            let mut command = Command::new("strace");
            command
                .args([
                    "-f",
                    "-y",
                    "-e",
                    "trace=fsync,rename,renameat,renameat2",
                    "-o",
                ])
                .arg(&self.trace)
                .args(["sh", "-c", &cmd.command_line(true)]);
            let ended = crate::host::child::run(command, &cmd.summary(), stdin, stdout)?;
            Ok(Finished {
                status: ended.status.code(),
                stderr: ended.stderr,
            })
        }
    }

    /// Whether strace runs here (it may be missing, or not allowed to trace).
    fn strace_works() -> bool {
        Command::new("strace")
            .args(["-o", "/dev/null", "true"])
            .output()
            .is_ok_and(|out| out.status.success())
    }

    /// The lines of the trace for: the temporary file fsynced, then renamed to `path`,
    /// then `path`'s directory fsynced.
    fn assert_durable(trace: &Path, path: &Path, temp_suffix: &str) {
        let text = std::fs::read_to_string(trace).unwrap();
        let dir = path.parent().unwrap();
        let at = |what: &str, found: &dyn Fn(&str) -> bool| {
            text.lines()
                .position(found)
                .unwrap_or_else(|| panic!("no {what} in:\n{text}"))
        };
        let prefix = format!("<{}{temp_suffix}", path.display());
        let file_synced = at("fsync of the file", &|line| {
            line.contains("fsync(") && line.contains(&prefix)
        });
        let renamed = at("rename", &|line| {
            line.contains("rename") && line.contains(&format!("\"{}\")", path.display()))
                || line.contains(&format!("\"{}\",", path.display()))
        });
        let dir_synced = at("fsync of the directory", &|line| {
            line.contains("fsync(") && line.contains(&format!("<{}>)", dir.display()))
        });
        assert!(
            file_synced < renamed && renamed < dir_synced,
            "fsync, rename, fsync of the directory, in that order:\n{text}"
        );
    }

    #[test]
    fn small_files_are_fsynced_before_the_rename_and_the_directory_after() {
        if !strace_works() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut host = Traced {
            trace: dir.path().join("trace"),
        };
        let path = dir.path().join("seed.json");
        let text = path.to_str().unwrap();
        host.write_file(text, b"{}\n", &FileMode::private())
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}\n");
        assert_durable(&host.trace, &path, ".ha-setup-");
    }

    #[test]
    fn streamed_files_are_fsynced_before_the_rename_and_the_directory_after() {
        if !strace_works() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut host = Traced {
            trace: dir.path().join("trace"),
        };
        let path = dir.path().join("placed.bin");
        let data = vec![3u8; 100_000];
        host.stream_in(
            &mut &data[..],
            path.to_str().unwrap(),
            &FileMode::private(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_durable(&host.trace, &path, ".ha-setup-partial>");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "only the file and the trace: {left:?}");
    }
}
