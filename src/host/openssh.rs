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

use super::{Finished, HostError, quote};
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
    /// The lane for a target logged in by `login` (and its jump host, if any, by
    /// `jump_login`), or why there is none.
    pub fn new(
        target: &SshTarget,
        login: &Login,
        jump_login: Option<&Login>,
    ) -> Result<OpenSsh, String> {
        let program = find_in_path("ssh").ok_or("no `ssh` program in PATH")?;
        let mut args = hop_args(target, login)?;
        let mut options = vec![
            "ClearAllForwardings=yes".to_owned(),
            "RequestTTY=no".to_owned(),
        ];
        match (&target.jump, jump_login) {
            (None, _) => {}
            (Some(jump), Some(jump_login)) => {
                options.push(format!(
                    "ProxyCommand={}",
                    proxy_command(&program, jump, jump_login, target)?
                ));
            }
            (Some(_), None) => return Err("the jump host's login is unknown".into()),
        }
        for option in options {
            args.push("-o".into());
            args.push(option.into());
        }
        args.extend(destination(target));
        Ok(OpenSsh { program, args })
    }

    fn command(&self, command_line: &str) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .arg(command_line)
            // Never a prompt on the operator's terminal, even if BatchMode were ignored.
            .env_remove("SSH_ASKPASS")
            .env_remove("DISPLAY")
            // ssh runs a ProxyCommand with $SHELL: ours is quoted for a POSIX shell.
            .env("SHELL", "/bin/sh");
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

/// The arguments for one hop (the target, or its jump host): no config file, the host key
/// checked strictly against the known_hosts file the libssh2 session used (which has
/// checked, or under accept-new recorded, it already), the same login, never a question.
fn hop_args(hop: &SshTarget, login: &Login) -> Result<Vec<OsString>, String> {
    let mut options: Vec<String> = vec![
        "BatchMode=yes".into(),
        "StrictHostKeyChecking=yes".into(),
        // Quoted: ssh splits this option's value at spaces into several files.
        format!(
            "UserKnownHostsFile=\"{}\"",
            no_tokens(&hop.known_hosts.to_string_lossy())
        ),
        "GlobalKnownHostsFile=/dev/null".into(),
        "UpdateHostKeys=no".into(),
        format!("ConnectTimeout={}", hop.connect_timeout.as_secs().max(1)),
        format!("ServerAliveInterval={}", hop.keepalive.as_secs().max(1)),
        format!("ServerAliveCountMax={}", alive_count(hop)),
        format!("Ciphers={CIPHERS}"),
        "Compression=no".into(),
        "ControlMaster=no".into(),
        "ControlPath=none".into(),
        "ForwardAgent=no".into(),
        "ForwardX11=no".into(),
        "PermitLocalCommand=no".into(),
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
            args.push(no_tokens(&key.to_string_lossy()).into());
        }
        Login::Agent => {
            options.push("PasswordAuthentication=no".into());
            options.push("KbdInteractiveAuthentication=no".into());
        }
        Login::Asked => {
            return Err(format!(
                "the login to {} needed a password or a passphrase",
                hop.hostname
            ));
        }
    }
    for option in options {
        args.push("-o".into());
        args.push(option.into());
    }
    Ok(args)
}

/// A path as ssh reads it after expanding its `%` tokens (which it does in known_hosts
/// and identity file names): every `%` doubled.
fn no_tokens(path: &str) -> String {
    path.replace('%', "%%")
}

/// Port, user and host, last on the command line.
fn destination(hop: &SshTarget) -> [OsString; 6] {
    [
        "-p".into(),
        hop.port.to_string().into(),
        "-l".into(),
        hop.user.clone().into(),
        "--".into(),
        hop.hostname.clone().into(),
    ]
}

/// The ProxyCommand that reaches `target` through `jump`: a second `ssh` of ours with the
/// jump host's own strict checks, forwarding its stdin and stdout to the target's port
/// (`-W`). Built here rather than by `-J`, whose second `ssh` would read the operator's
/// config and known_hosts and could ask questions. The target's address is written out, not
/// left to `%h`, and every `%` doubled, so ssh's token expansion changes nothing.
fn proxy_command(
    program: &Path,
    jump: &SshTarget,
    login: &Login,
    target: &SshTarget,
) -> Result<String, String> {
    let mut words: Vec<OsString> = vec![program.into()];
    words.extend(hop_args(jump, login)?);
    words.push("-W".into());
    words.push(format!("[{}]:{}", target.hostname, target.port).into());
    words.extend(destination(jump));
    let mut command = Vec::with_capacity(words.len());
    for word in words {
        let word = word
            .into_string()
            .map_err(|word| format!("{} is not UTF-8", word.to_string_lossy()))?;
        command.push(quote(&word).replace('%', "%%"));
    }
    Ok(command.join(" "))
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
            jump: None,
            refused: None,
            ssh_config: PathBuf::from("/home/ops/.ssh/config"),
        }
    }

    fn strings(lane: &OpenSsh) -> Vec<String> {
        lane.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// The secondary behind a jump host whose known_hosts path has a space and a `%`.
    fn jumping() -> SshTarget {
        let mut jump = target();
        jump.name = "secondary's jump host".into();
        jump.hostname = "bastion.example".into();
        jump.port = 22;
        jump.user = "jumper".into();
        jump.known_hosts = PathBuf::from("/home/ops/my ssh/100%/known_hosts");
        let mut target = target();
        target.known_hosts = jump.known_hosts.clone();
        target.jump = Some(Box::new(jump));
        target
    }

    #[test]
    fn ssh_checks_the_same_host_key_as_the_same_user_and_never_asks() {
        let Ok(lane) = OpenSsh::new(&target(), &Login::KeyFile("/k/id_ed25519".into()), None)
        else {
            return; // no ssh on this machine: nothing to check
        };
        let args = strings(&lane);
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
        assert!(OpenSsh::new(&target(), &Login::Asked, None).is_err());
        let key = Login::KeyFile("/k/id".into());
        // Also when only the jump host's login needed asking.
        assert!(OpenSsh::new(&jumping(), &key, Some(&Login::Asked)).is_err());
        assert!(OpenSsh::new(&jumping(), &Login::Asked, Some(&key)).is_err());
        assert!(OpenSsh::new(&jumping(), &key, None).is_err());
    }

    #[test]
    fn a_jump_host_is_reached_by_a_second_ssh_as_strict_as_the_first() {
        let key = Login::KeyFile("/k/id_ed25519".into());
        let Ok(lane) = OpenSsh::new(&jumping(), &key, Some(&Login::Agent)) else {
            return; // no ssh on this machine: nothing to check
        };
        let args = strings(&lane);
        let proxy = args
            .iter()
            .find_map(|arg| arg.strip_prefix("ProxyCommand="))
            .expect("a ProxyCommand");
        // As the shell that ssh runs it with splits it, once ssh has expanded its tokens.
        let expanded = proxy.replace("%%", "%");
        let words = shlex::split(&expanded).expect("a shell command line");
        let has = |pair: [&str; 2]| words.windows(2).any(|w| w == pair);
        assert_eq!(words[0], lane.program.to_string_lossy());
        assert!(has(["-F", "none"]), "{words:?}");
        assert!(has(["-o", "StrictHostKeyChecking=yes"]), "{words:?}");
        assert!(has(["-o", "BatchMode=yes"]), "{words:?}");
        // The second ssh expands tokens in it once more.
        assert!(has([
            "-o",
            "UserKnownHostsFile=\"/home/ops/my ssh/100%%/known_hosts\""
        ]));
        assert!(has(["-o", "GlobalKnownHostsFile=/dev/null"]), "{words:?}");
        assert!(has(["-o", "ControlPath=none"]), "{words:?}");
        // Logged in to by the agent, as the libssh2 session to it was.
        assert!(!words.iter().any(|w| w == "-i"), "{words:?}");
        assert_eq!(
            words[words.len() - 8..],
            [
                "-W",
                "[db2.example]:2222",
                "-p",
                "22",
                "-l",
                "jumper",
                "--",
                "bastion.example"
            ]
        );
        // No token is left for ssh to expand.
        assert!(!proxy.replace("%%", "").contains('%'), "{proxy}");
        // The target itself: the key file, and its own address last.
        assert!(args.windows(2).any(|w| w == ["-i", "/k/id_ed25519"]));
        assert_eq!(
            args[args.len() - 6..],
            ["-p", "2222", "-l", "ops", "--", "db2.example"]
        );
    }

    #[test]
    fn ssh_itself_reads_the_proxy_command_as_built() {
        let key = Login::KeyFile("/k/id_ed25519".into());
        let Ok(lane) = OpenSsh::new(&jumping(), &key, Some(&Login::Agent)) else {
            return; // no ssh on this machine: nothing to check
        };
        // `ssh -G` prints the configuration it would use, and connects nowhere.
        let mut args = lane.args.clone();
        args.insert(0, "-G".into());
        let output = Command::new(&lane.program)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        let proxy = text
            .lines()
            .find_map(|line| line.strip_prefix("proxycommand "))
            .unwrap_or_else(|| panic!("no proxycommand in:\n{text}"));
        let built = strings(&lane)
            .iter()
            .find_map(|arg| arg.strip_prefix("ProxyCommand=").map(str::to_owned))
            .unwrap();
        assert_eq!(proxy, built);
        assert!(
            text.lines()
                .any(|line| line == "stricthostkeychecking true"),
            "{text}"
        );
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
