//! This machine as a host (`host = "local"`): the same commands, run by `sh` here.

use std::io::{Read, Write};
use std::process::Command;

use super::{Cmd, Finished, Host, HostError};

pub struct LocalHost {
    label: String,
    is_root: bool,
}

impl LocalHost {
    /// `name` is the node's name in the config (`primary`).
    pub fn new(name: &str) -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let is_root = unsafe { libc::geteuid() } == 0;
        LocalHost {
            label: format!("{name} (this machine)"),
            is_root,
        }
    }
}

impl Host for LocalHost {
    fn label(&self) -> &str {
        &self.label
    }

    fn login_is_root(&self) -> bool {
        self.is_root
    }

    fn exec(
        &mut self,
        cmd: &Cmd,
        stdin: &mut (dyn Read + Send),
        stdout: &mut (dyn Write + Send),
    ) -> Result<Finished, HostError> {
        let line = cmd.command_line(self.is_root);
        tracing::info!(host = %self.label, "run: {}", cmd.summary());
        let mut command = Command::new("sh");
        command.arg("-c").arg(&line);
        let ended = super::child::run(command, &cmd.summary(), stdin, stdout)?;
        Ok(Finished {
            status: ended.status.code(),
            stderr: ended.stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{FileMode, HostExt, HostFiles};

    fn host() -> LocalHost {
        LocalHost::new("primary")
    }

    #[test]
    fn captures_stdout_stderr_and_status() {
        let output = host()
            .run_with_input(&Cmd::new("cat; echo oops >&2; exit 3"), b"fed in")
            .unwrap();
        assert_eq!(output.stdout, b"fed in");
        assert_eq!(output.stderr.trim(), "oops");
        assert_eq!(output.status, Some(3));
    }

    #[test]
    fn run_ok_fails_with_the_commands_stderr() {
        let err = host()
            .run_ok(&Cmd::new("echo 'no such table' >&2; exit 1"))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("primary (this machine)"), "{text}");
        assert!(text.contains("no such table"), "{text}");
        assert!(text.contains("exit status 1"), "{text}");
    }

    #[test]
    fn a_missing_command_says_to_install_it() {
        let err = host()
            .run_ok(&Cmd::new("ha-setup-no-such-command --x"))
            .unwrap_err();
        assert!(err.to_string().contains("Install the package"), "{err}");
    }

    #[test]
    fn large_input_and_output_do_not_deadlock() {
        let data = vec![b'x'; 8 << 20];
        let output = host()
            .run_with_input(&Cmd::new("cat; cat /dev/null >&2"), &data)
            .unwrap();
        assert_eq!(output.stdout.len(), data.len());
    }

    #[test]
    fn streams_in_with_digest_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle part");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut seen = 0;
        let transfer = host()
            .stream_in(
                &mut &data[..],
                path.to_str().unwrap(),
                &FileMode::new(0o640),
                &mut |n| seen = n,
            )
            .unwrap();
        assert_eq!(transfer.bytes, data.len() as u64);
        assert_eq!(seen, data.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), data);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");

        let mut back = Vec::new();
        let out = host()
            .stream_out(path.to_str().unwrap(), &mut back, &mut |_| {})
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(out.sha256, transfer.sha256);
    }

    #[test]
    fn write_file_is_atomic_and_read_file_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("it's.cnf");
        let path = path.to_str().unwrap();
        let mut host = host();
        host.write_file(path, b"[mysqld]\n", &FileMode::private())
            .unwrap();
        host.write_file(path, b"[mysqld]\nserver_id=2\n", &FileMode::private())
            .unwrap();
        assert_eq!(host.read_file(path).unwrap(), b"[mysqld]\nserver_id=2\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn writing_into_a_missing_directory_names_the_path() {
        let err = host()
            .write_file("/nonexistent-dir/x.cnf", b"x", &FileMode::private())
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent-dir/x.cnf"), "{text}");
        assert!(text.contains("directory exists"), "{text}");
    }

    #[test]
    fn secret_file_is_private_gone_afterwards_and_not_on_the_command_line() {
        let output = host()
            .run_with_secret_file(b"s3cr3t-value", b"after", &|path| {
                Cmd::new(format!(
                    "stat -c %a {path}; cat {path}; echo; cat; echo; echo {path}; grep -l s3cr3t-valu[e] /proc/[0-9]*/cmdline 2>/dev/null | wc -l"
                ))
            })
            .unwrap();
        let text = output.stdout_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "600");
        assert_eq!(lines[1], "s3cr3t-value");
        assert_eq!(lines[2], "after");
        assert_eq!(lines[4], "0", "the secret was on a command line");
        assert!(
            !std::path::Path::new(lines[3]).exists(),
            "the secret file was left behind"
        );
    }
}
