//! The bulk lane: large streams to and from a remote host through OpenSSH's own `ssh`.
//!
//! libssh2 encrypts a packet one cipher block (16 bytes) per call into the crypto library,
//! whatever the cipher, which caps a channel near 170 MiB/s on a core that runs OpenSSH at
//! 350 (docs/BENCHMARKS.md). So when the operator's machine has `ssh` and it can log in the
//! way the libssh2 session did without asking anything, commands marked bulk run through
//! it; everything else, and every host where that is not possible, stays on libssh2.
//!
//! It never weakens a check: the session over libssh2 has already verified (or, under
//! accept-new, recorded) the host key, and `ssh` runs with StrictHostKeyChecking=yes
//! against that same known_hosts file and no config file of its own, so it reaches the
//! same host as the same user or fails. Nothing secret goes on its command line: the
//! scripts never hold secrets (those travel on stdin), and logins that need a password or
//! a passphrase stay on libssh2.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Finished, HostError};
use crate::host::ssh::{CIPHERS, SshTarget};

/// How the libssh2 session logged in: the lane may only use the same key, without asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// A key file that needs no passphrase.
    KeyFile(PathBuf),
    /// A key held by ssh-agent.
    Agent,
    /// A password, or a key whose passphrase came from the environment or a prompt: `ssh`
    /// would have to ask, so the lane is not used.
    Asked,
}

/// The `ssh` invocation for one host, ready to take a command line.
#[derive(Debug, Clone)]
pub struct OpenSsh {
    program: PathBuf,
    args: Vec<OsString>,
}

impl OpenSsh {
    /// The lane for a target logged in by `login`, or why there is none.
    pub fn new(target: &SshTarget, login: &Login) -> Result<OpenSsh, String> {
        let program = find_in_path("ssh").ok_or("no `ssh` program in PATH")?;
        let mut options: Vec<String> = vec![
            "BatchMode=yes".into(),
            "StrictHostKeyChecking=yes".into(),
            // Quoted: ssh splits this option's value at spaces into several files.
            format!("UserKnownHostsFile=\"{}\"", target.known_hosts.display()),
            "GlobalKnownHostsFile=/dev/null".into(),
            "UpdateHostKeys=no".into(),
            format!("ConnectTimeout={}", target.connect_timeout.as_secs().max(1)),
            format!("ServerAliveInterval={}", target.keepalive.as_secs().max(1)),
            format!("ServerAliveCountMax={}", alive_count(target)),
            format!("Ciphers={CIPHERS}"),
            "Compression=no".into(),
            "ControlMaster=no".into(),
            "ControlPath=none".into(),
            "ForwardAgent=no".into(),
            "ForwardX11=no".into(),
            "ClearAllForwardings=yes".into(),
            "PermitLocalCommand=no".into(),
            "RequestTTY=no".into(),
            // INFO, not ERROR: "Timeout, server … not responding" is logged at INFO.
            "LogLevel=INFO".into(),
        ];
        let mut args: Vec<OsString> = vec!["-F".into(), "none".into()];
        match login {
            Login::KeyFile(key) => {
                options.push("IdentitiesOnly=yes".into());
                options.push("IdentityAgent=none".into());
                options.push("PasswordAuthentication=no".into());
                options.push("KbdInteractiveAuthentication=no".into());
                args.push("-i".into());
                args.push(key.into());
            }
            Login::Agent => {
                options.push("PasswordAuthentication=no".into());
                options.push("KbdInteractiveAuthentication=no".into());
            }
            Login::Asked => return Err("the login needed a password or a passphrase".into()),
        }
        for option in options {
            args.push("-o".into());
            args.push(option.into());
        }
        args.extend([
            "-p".into(),
            target.port.to_string().into(),
            "-l".into(),
            target.user.clone().into(),
            "--".into(),
            target.hostname.clone().into(),
        ]);
        Ok(OpenSsh { program, args })
    }

    fn command(&self, command_line: &str) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .arg(command_line)
            // Never a prompt on the operator's terminal, even if BatchMode were ignored.
            .env_remove("SSH_ASKPASS")
            .env_remove("DISPLAY");
        // SAFETY: prctl is async-signal-safe and touches only the child being started.
        unsafe {
            use std::os::unix::process::CommandExt;
            // If ha-setup itself is killed, its transfers end with it, not later.
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        command
    }

    /// Logs in once and runs nothing: whether this host can take the lane.
    pub fn probe(&self) -> Result<(), String> {
        let output = self
            .command("exit 0")
            .stdin(Stdio::null())
            .output()
            .map_err(|err| format!("cannot start {}: {err}", self.program.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }

    /// Runs `command_line` the way [`super::Host::exec`] does: `stdin` fed to it until it
    /// ends, its stdout copied into `stdout`, its stderr and exit status returned.
    pub fn exec(
        &self,
        target: &SshTarget,
        label: &str,
        during: &str,
        command_line: &str,
        stdin: &mut (dyn Read + Send),
        stdout: &mut (dyn Write + Send),
    ) -> Result<Finished, HostError> {
        let ended = super::child::run(self.command(command_line), during, stdin, stdout)?;
        let stderr = ended.stderr;
        match ended.status.code() {
            // 255 is ssh's own failure, or a command that a signal ended (ssh then says
            // nothing); a command's own 255 is indistinguishable and reads as the latter.
            Some(255) => match own_complaint(&stderr) {
                Some(complaint) if complaint.contains("not responding") => Err(HostError::Silent {
                    host: label.to_owned(),
                    secs: target.keepalive.as_secs().max(1) * alive_count(target),
                    during: during.to_owned(),
                }),
                Some(complaint) => Err(HostError::Ssh {
                    host: label.to_owned(),
                    during: format!("running `{during}` through {}", self.program.display()),
                    detail: complaint,
                }),
                None => Ok(Finished {
                    status: None,
                    stderr,
                }),
            },
            code => Ok(Finished {
                status: code,
                stderr,
            }),
        }
    }
}

/// Keepalives unanswered before `ssh` gives a host up: about `io_timeout`.
fn alive_count(target: &SshTarget) -> u64 {
    let keepalive = target.keepalive.as_secs().max(1);
    target.io_timeout.as_secs().div_ceil(keepalive).max(1)
}

/// What `ssh` itself said went wrong, as opposed to the remote command's stderr.
fn own_complaint(stderr: &str) -> Option<String> {
    const OWN: [&str; 7] = [
        "ssh: ",
        "Timeout, server",
        "Connection to ",
        "Connection closed",
        "Connection reset",
        "Host key verification failed",
        "client_loop:",
    ];
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| OWN.iter().any(|own| line.starts_with(own)))
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn target() -> SshTarget {
        SshTarget {
            name: "secondary".into(),
            hostname: "db2.example".into(),
            port: 2222,
            user: "ops".into(),
            identity_files: vec![],
            identity_explicit: false,
            passphrase_env: None,
            password_env: None,
            known_hosts: PathBuf::from("/home/ops/.ssh/known_hosts"),
            policy: crate::config::HostKeyPolicy::AcceptNew,
            connect_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(5),
            io_timeout: Duration::from_secs(30),
            bulk_via_openssh: true,
        }
    }

    #[test]
    fn ssh_checks_the_same_host_key_as_the_same_user_and_never_asks() {
        let Ok(lane) = OpenSsh::new(&target(), &Login::KeyFile("/k/id_ed25519".into())) else {
            return; // no ssh on this machine: nothing to check
        };
        let args: Vec<String> = lane
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let has = |pair: [&str; 2]| args.windows(2).any(|w| w == pair);
        assert!(has(["-F", "none"]), "{args:?}");
        assert!(has(["-o", "StrictHostKeyChecking=yes"]), "{args:?}");
        assert!(has([
            "-o",
            "UserKnownHostsFile=\"/home/ops/.ssh/known_hosts\""
        ]));
        assert!(has(["-o", "BatchMode=yes"]));
        assert!(has(["-o", "IdentitiesOnly=yes"]));
        assert!(has(["-i", "/k/id_ed25519"]));
        assert!(has(["-o", "ServerAliveCountMax=6"]));
        assert_eq!(
            args[args.len() - 6..],
            ["-p", "2222", "-l", "ops", "--", "db2.example"]
        );
    }

    #[test]
    fn a_login_that_needed_asking_stays_on_libssh2() {
        assert!(OpenSsh::new(&target(), &Login::Asked).is_err());
    }

    #[test]
    fn tells_ssh_complaints_from_the_command_s_stderr() {
        assert_eq!(own_complaint("tee: /x: No space left on device\n"), None);
        assert_eq!(
            own_complaint("Timeout, server 198.51.100.12 not responding.\r\n").as_deref(),
            Some("Timeout, server 198.51.100.12 not responding.")
        );
        assert!(own_complaint("ssh: connect to host h port 22: Connection refused\n").is_some());
    }
}
