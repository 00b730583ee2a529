//! The SSH host layer against the lab's real sshd: commands, users, files, secrets, and
//! every kind of bad input, each with the error a person reads.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ha_setup::config::Config;
use ha_setup::host::{Cmd, FileMode, Host as _, HostError, HostExt, HostFiles, SshHost, SshTarget};
use ha_setup::prompt::{NoPrompt, Prompter};

use crate::util::lab::{Host, Lab, lab, on_operator};

/// A config for the lab pair; `extra` lines go under [primary].
fn config(lab: &Lab, known_hosts: &Path, primary_extra: &str, ssh_extra: &str) -> Config {
    let text = format!(
        "engine = \"mariadb\"\n\
         [primary]\nhost = \"{}\"\n{primary_extra}\n\
         [secondary]\nhost = \"{}\"\nidentity_file = \"{}\"\n\
         [ssh]\nknown_hosts = \"{}\"\nconfig_file = \"/nonexistent\"\nconnect_timeout_secs = 3\nkeepalive_secs = 1\nio_timeout_secs = 4\n{ssh_extra}\n",
        lab.addr(Host::Primary),
        lab.addr(Host::Secondary),
        lab.var("HA_LAB_KEY"),
        known_hosts.display(),
    );
    Config::parse(&text, Path::new("test.toml")).expect("the test config is valid")
}

/// A copy of the lab's known_hosts, so tests may change it; in a directory whose name has
/// a space, as a home directory's may.
fn known_hosts(lab: &Lab, dir: &Path) -> PathBuf {
    let dir = dir.join("ssh files");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("known_hosts");
    std::fs::copy(lab.var("HA_LAB_KNOWN_HOSTS"), &path).unwrap();
    path
}

fn connect(lab: &Lab, config: &Config, prompter: &dyn Prompter) -> Result<SshHost, HostError> {
    let target = SshTarget::resolve("primary", &config.nodes["primary"], &config.ssh);
    on_operator(lab, || SshHost::connect(target, prompter))
}

fn lab_key_config(lab: &Lab, dir: &Path) -> Config {
    lab_key_config_over(lab, dir, Bulk::OpenSsh)
}

/// The two transports bulk streams can take; streaming tests run over both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bulk {
    OpenSsh,
    Libssh2,
}

const BOTH: [Bulk; 2] = [Bulk::OpenSsh, Bulk::Libssh2];

impl Bulk {
    fn name(self) -> &'static str {
        match self {
            Bulk::OpenSsh => "openssh",
            Bulk::Libssh2 => "libssh2",
        }
    }
}

fn lab_key_config_over(lab: &Lab, dir: &Path, bulk: Bulk) -> Config {
    let known = known_hosts(lab, dir);
    config(
        lab,
        &known,
        &format!("identity_file = \"{}\"", lab.var("HA_LAB_KEY")),
        &format!("bulk_via_openssh = {}", bulk == Bulk::OpenSsh),
    )
}

#[test]
#[ignore = "needs the lab"]
fn runs_commands_as_root_and_as_another_user() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let config = lab_key_config(&lab, dir.path());
    let mut host = connect(&lab, &config, &NoPrompt).unwrap();
    on_operator(&lab, move || {
        let output = host
            .run(&Cmd::new("hostname; echo to-stderr >&2; exit 7"))
            .unwrap();
        assert_eq!(output.stdout_text().trim(), "primary");
        assert_eq!(output.stderr.trim(), "to-stderr");
        assert_eq!(output.status, Some(7));
        let who = host
            .run_ok(&Cmd::new("id -un").as_user("postgres"))
            .unwrap();
        assert_eq!(who.trim(), "postgres");
        let sql = host
            .run_ok_with_input(&Cmd::new("mariadb -N").as_root(), b"select 40 + 2;")
            .unwrap();
        assert_eq!(sql.trim(), "42");
        // The same session serves every command.
        for _ in 0..20 {
            host.run_ok(&Cmd::new("true")).unwrap();
        }
    });
}

#[test]
#[ignore = "needs the lab"]
fn hostile_strings_arrive_unchanged() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let config = lab_key_config(&lab, dir.path());
    let mut host = connect(&lab, &config, &NoPrompt).unwrap();
    on_operator(&lab, move || {
        for value in [
            "it's",
            "$(touch /tmp/pwned)",
            "`id`",
            "a b\nc",
            "\"q\"",
            "; rm -rf /x",
            "*",
        ] {
            let cmd =
                Cmd::new(format!("printf %s {}", ha_setup::host::quote(value))).as_user("postgres");
            assert_eq!(host.run_ok(&cmd).unwrap(), value);
        }
        assert!(!host.run(&Cmd::new("test -e /tmp/pwned")).unwrap().success());
    });
}

#[test]
#[ignore = "needs the lab"]
fn a_secret_never_appears_on_a_command_line() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let config = lab_key_config(&lab, dir.path());
    let mut host = connect(&lab, &config, &NoPrompt).unwrap();
    let secret = b"Repl-Pa55-7f3a9c";
    let output = on_operator(&lab, move || {
        host.run_with_secret_file(secret, b"", &|path| {
            // While the command runs, every process's command line on the host is searched.
            Cmd::new(format!(
                "test \"$(stat -c %a {path})\" = 600 && grep -c 7f3a9c {path} && sleep 0.3 && \
                 grep -l 'Repl-Pa55-7f3a9[c]' /proc/[0-9]*/cmdline 2>/dev/null | wc -l; echo {path}"
            ))
        })
        .unwrap()
    });
    let text = output.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..2], ["1", "0"], "{text}\n{}", output.stderr);
    let gone = lab.exec(Host::Primary, &format!("test -e {}", lines[2]));
    assert_eq!(
        gone.code,
        Some(1),
        "the secret file was left at {}",
        lines[2]
    );
}

#[test]
#[ignore = "needs the lab"]
fn streams_files_in_and_out_with_their_digest() {
    let lab = lab();
    let data: Vec<u8> = (0..24_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    for bulk in BOTH {
        let dir = tempfile::tempdir().unwrap();
        let config = lab_key_config_over(&lab, dir.path(), bulk);
        let mut host = connect(&lab, &config, &NoPrompt).unwrap();
        let (sent, back, transport) = on_operator(&lab, || {
            let mut last = 0;
            let mode = FileMode::new(0o640).owned_by("mysql:mysql");
            let sent = host
                .stream_in(&mut &data[..], "/tmp/streamed.bin", &mode, &mut |n| {
                    last = n
                })
                .unwrap();
            assert_eq!(last, data.len() as u64);
            let mut back = Vec::new();
            host.stream_out("/tmp/streamed.bin", &mut back, &mut |_| {})
                .unwrap();
            (sent, back, host.bulk_transport())
        });
        assert_eq!(transport, bulk.name());
        assert!(back == data, "the bytes read back over {bulk:?} differ");
        let on_host = lab.exec_ok(
            Host::Primary,
            "sha256sum /tmp/streamed.bin | cut -d' ' -f1; stat -c '%a %U:%G' /tmp/streamed.bin; ls /tmp/streamed.bin* | wc -l",
        );
        let lines: Vec<&str> = on_host.lines().collect();
        assert_eq!(
            lines,
            [sent.sha256.as_str(), "640 mysql:mysql", "1"],
            "over {bulk:?}"
        );
        lab.exec_ok(Host::Primary, "rm -f /tmp/streamed.bin");
    }
}

#[test]
#[ignore = "needs the lab"]
fn small_files_are_written_atomically_and_read_back() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let config = lab_key_config(&lab, dir.path());
    let mut host = connect(&lab, &config, &NoPrompt).unwrap();
    on_operator(&lab, move || {
        let path = "/etc/mysql/mariadb.conf.d/99-ha-setup-test.cnf";
        host.write_file(path, b"[mysqld]\nserver_id = 11\n", &FileMode::new(0o644))
            .unwrap();
        assert_eq!(host.read_file(path).unwrap(), b"[mysqld]\nserver_id = 11\n");
        let listing = host
            .run_ok(&Cmd::new("ls /etc/mysql/mariadb.conf.d"))
            .unwrap();
        // Only this file's: the folder may hold ha-setup's backups of its own settings
        // from an earlier test.
        assert!(
            !listing.contains("99-ha-setup-test.cnf.ha-setup-"),
            "a temporary file was left: {listing}"
        );
        host.run_ok(&Cmd::new(format!("rm {path}"))).unwrap();
    });
}

#[test]
#[ignore = "needs the lab"]
fn rsa_keys_and_ssh_config_aliases_work() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let known = known_hosts(&lab, dir.path());
    let config = config(
        &lab,
        &known,
        &format!("identity_file = \"{}\"", lab.var("HA_LAB_RSA_KEY")),
        "",
    );
    let mut host = connect(&lab, &config, &NoPrompt).unwrap();
    on_operator(&lab, || {
        assert_eq!(
            host.run_ok(&Cmd::new("hostname")).unwrap().trim(),
            "primary"
        )
    });

    // An alias from an OpenSSH client config: HostName, User, Port and IdentityFile apply.
    let ssh_config = dir.path().join("ssh_config");
    std::fs::write(
        &ssh_config,
        format!(
            "Host labprimary\n  HostName {}\n  User root\n  Port 22\n  IdentityFile {}\n",
            lab.addr(Host::Primary),
            lab.var("HA_LAB_KEY")
        ),
    )
    .unwrap();
    let mut config = config.clone();
    config.nodes["primary"].host = "labprimary".to_owned();
    config.nodes["primary"].identity_file = None;
    config.ssh.config_file = ssh_config;
    let target = SshTarget::resolve("primary", &config.nodes["primary"], &config.ssh);
    assert_eq!(target.hostname, lab.addr(Host::Primary));
    let mut host = on_operator(&lab, || SshHost::connect(target, &NoPrompt)).unwrap();
    on_operator(&lab, || {
        assert_eq!(
            host.run_ok(&Cmd::new("hostname")).unwrap().trim(),
            "primary"
        )
    });
}

/// A prompter that answers with a fixed passphrase, as a person at the terminal would.
struct Answer(&'static str);

impl Prompter for Answer {
    fn secret(&self, _question: &str) -> Option<String> {
        Some(self.0.to_owned())
    }
}

#[test]
#[ignore = "needs the lab"]
fn a_key_with_a_passphrase_is_opened_from_a_prompt() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_locked");
    let made = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "open sesame",
            "-C",
            "locked",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    lab.exec_ok(
        Host::Primary,
        &format!("echo '{}' >> /root/.ssh/authorized_keys", public.trim()),
    );
    let known = known_hosts(&lab, dir.path());
    let config = config(
        &lab,
        &known,
        &format!("identity_file = \"{}\"", key.display()),
        "",
    );

    let refused = connect(&lab, &config, &NoPrompt)
        .err()
        .expect("no passphrase, no login");
    let text = refused.to_string();
    assert!(text.contains("it has a passphrase"), "{text}");
    let mut host = connect(&lab, &config, &Answer("open sesame")).unwrap();
    on_operator(&lab, || host.run_ok(&Cmd::new("true")).unwrap());
    // OpenSSH's ssh would have to ask for the passphrase again: bulk stays on libssh2.
    assert_eq!(on_operator(&lab, || host.bulk_transport()), "libssh2");
    // Or from the environment variable the config names, with no one to ask.
    let from_env = self::config(
        &lab,
        &known,
        &format!(
            "identity_file = \"{}\"\nidentity_passphrase_env = \"HA_TEST_KEY_PASSPHRASE\"",
            key.display()
        ),
        "",
    );
    // SAFETY: lab tests run one at a time (the lab lock); nothing else reads this variable.
    unsafe { std::env::set_var("HA_TEST_KEY_PASSPHRASE", "open sesame") };
    let mut host = connect(&lab, &from_env, &NoPrompt).unwrap();
    on_operator(&lab, || host.run_ok(&Cmd::new("true")).unwrap());
    lab.exec_ok(
        Host::Primary,
        "sed -i '/ locked$/d' /root/.ssh/authorized_keys",
    );
}

fn connect_err(lab: &Lab, config: &Config) -> (String, Duration) {
    let started = Instant::now();
    let err = connect(lab, config, &NoPrompt)
        .err()
        .expect("the connection must fail");
    (err.to_string(), started.elapsed())
}

#[test]
#[ignore = "needs the lab"]
fn an_unreachable_address_times_out_with_advice() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let mut config = lab_key_config(&lab, dir.path());
    config.nodes["primary"].host = "198.51.100.99".to_owned();
    let (text, took) = connect_err(&lab, &config);
    assert!(
        text.contains("no answer from primary (198.51.100.99)"),
        "{text}"
    );
    assert!(text.contains("connect_timeout_secs"), "{text}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
#[ignore = "needs the lab"]
fn a_refused_port_says_no_ssh_server_listens() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let mut config = lab_key_config(&lab, dir.path());
    config.nodes["primary"].ssh_port = Some(2222);
    let (text, _) = connect_err(&lab, &config);
    assert!(
        text.contains("refused the SSH connection at 198.51.100.11:2222"),
        "{text}"
    );
}

#[test]
#[ignore = "needs the lab"]
fn a_wrong_user_names_the_user_host_and_methods() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let mut config = lab_key_config(&lab, dir.path());
    config.nodes["primary"].ssh_user = Some("nosuchuser".to_owned());
    let (text, _) = connect_err(&lab, &config);
    assert!(
        text.contains("cannot log in to primary (198.51.100.11) as nosuchuser"),
        "{text}"
    );
    assert!(text.contains(lab.var("HA_LAB_KEY")), "{text}");
    assert!(text.contains("ssh-agent"), "{text}");
}

#[test]
#[ignore = "needs the lab"]
fn a_wrong_key_is_refused() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_other");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let known = known_hosts(&lab, dir.path());
    let config = config(
        &lab,
        &known,
        &format!("identity_file = \"{}\"", key.display()),
        "",
    );
    let (text, _) = connect_err(&lab, &config);
    assert!(
        text.contains(&format!("key {}: refused by the host", key.display())),
        "{text}"
    );
}

#[test]
#[ignore = "needs the lab"]
fn no_key_and_no_agent_says_so() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let known = known_hosts(&lab, dir.path());
    let config = config(
        &lab,
        &known,
        "identity_file = \"/nonexistent/id_ed25519\"",
        "",
    );
    let (text, _) = connect_err(&lab, &config);
    assert!(
        text.contains("identity_file /nonexistent/id_ed25519: no such file"),
        "{text}"
    );
    assert!(text.contains("ssh-agent: not running"), "{text}");
}

#[test]
#[ignore = "needs the lab"]
fn an_unknown_host_key_is_refused_under_strict_and_recorded_under_accept_new() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("empty_known_hosts");
    std::fs::write(&known, "").unwrap();
    let key = format!("identity_file = \"{}\"", lab.var("HA_LAB_KEY"));
    let strict = config(&lab, &known, &key, "");
    let (text, _) = connect_err(&lab, &strict);
    let fingerprint = lab.exec_ok(
        Host::Primary,
        "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2",
    );
    assert!(
        text.contains(fingerprint.trim()),
        "the fingerprint is shown: {text}"
    );
    assert!(
        text.contains("198.51.100.11 ssh-ed25519 AAAA"),
        "the line to add is shown: {text}"
    );
    assert!(text.contains("accept-new"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        "",
        "strict wrote nothing"
    );

    let accept = config(&lab, &known, &key, "host_key_policy = \"accept-new\"");
    let mut host = connect(&lab, &accept, &NoPrompt).unwrap();
    on_operator(&lab, || host.run_ok(&Cmd::new("true")).unwrap());
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(
        recorded.starts_with("198.51.100.11 ssh-ed25519 "),
        "{recorded}"
    );
    // Now known: strict accepts it.
    connect(&lab, &strict, &NoPrompt).unwrap();
}

#[test]
#[ignore = "needs the lab"]
fn a_changed_host_key_is_refused_loudly_even_under_accept_new() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    // The secondary's keys, listed under the primary's address: as if the primary changed.
    let secondary_keys = lab.exec_ok(Host::Secondary, "cat /etc/ssh/ssh_host_*_key.pub");
    let lines: String = secondary_keys
        .lines()
        .map(|line| {
            format!(
                "{} {}\n",
                lab.addr(Host::Primary),
                line.split(' ').take(2).collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, lines).unwrap();
    let key = format!("identity_file = \"{}\"", lab.var("HA_LAB_KEY"));
    let config = config(&lab, &known, &key, "host_key_policy = \"accept-new\"");
    let (text, _) = connect_err(&lab, &config);
    assert!(
        text.contains("HOST KEY OF primary (198.51.100.11) HAS CHANGED"),
        "{text}"
    );
    assert!(text.contains("ssh-keygen -R 198.51.100.11"), "{text}");
}

#[test]
#[ignore = "needs the lab"]
fn hashed_and_port_entries_are_understood() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let known = known_hosts(&lab, dir.path());
    let hashed = std::process::Command::new("ssh-keygen")
        .args(["-H", "-f"])
        .arg(&known)
        .output()
        .unwrap();
    assert!(hashed.status.success());
    let text = std::fs::read_to_string(&known).unwrap();
    assert!(text.lines().all(|line| line.starts_with("|1|")), "{text}");
    let config = config(
        &lab,
        &known,
        &format!("identity_file = \"{}\"", lab.var("HA_LAB_KEY")),
        "",
    );
    connect(&lab, &config, &NoPrompt).unwrap();

    // A `[host]:port` entry does not vouch for port 22, and port 22 entries not for others.
    let port_only = dir.path().join("port_known_hosts");
    let key = lab.exec_ok(
        Host::Primary,
        "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub",
    );
    std::fs::write(
        &port_only,
        format!("[{}]:2200 {}\n", lab.addr(Host::Primary), key.trim()),
    )
    .unwrap();
    let config = self::config(
        &lab,
        &port_only,
        &format!("identity_file = \"{}\"", lab.var("HA_LAB_KEY")),
        "",
    );
    let (text, _) = connect_err(&lab, &config);
    assert!(text.contains("unknown SSH host key"), "{text}");
}

#[test]
#[ignore = "needs the lab"]
fn a_missing_remote_command_says_to_install_it() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let config = lab_key_config(&lab, dir.path());
    let mut host = connect(&lab, &config, &NoPrompt).unwrap();
    let err = on_operator(&lab, move || {
        host.run_ok(&Cmd::new("mariadb-backup-not-here --backup"))
            .unwrap_err()
    });
    let text = err.to_string();
    assert!(
        text.contains(
            "on primary (198.51.100.11), `mariadb-backup-not-here --backup` was not found"
        ),
        "{text}"
    );
    assert!(text.contains("Install the package"), "{text}");
}

#[test]
#[ignore = "needs the lab"]
fn a_full_disk_while_streaming_removes_the_partial_file() {
    let lab = lab();
    for bulk in BOTH {
        let dir = tempfile::tempdir().unwrap();
        let config = lab_key_config_over(&lab, dir.path(), bulk);
        lab.exec_ok(
            Host::Primary,
            "mkdir -p /mnt/ha-small && mount -t tmpfs -o size=1m tmpfs /mnt/ha-small",
        );
        let mut host = connect(&lab, &config, &NoPrompt).unwrap();
        let data = vec![7u8; 4 << 20];
        let err = on_operator(&lab, move || {
            host.stream_in(
                &mut &data[..],
                "/mnt/ha-small/big.bin",
                &FileMode::private(),
                &mut |_| {},
            )
            .unwrap_err()
        });
        let left = lab.exec_ok(
            Host::Primary,
            "ls -A /mnt/ha-small; umount /mnt/ha-small; rmdir /mnt/ha-small",
        );
        let text = err.to_string();
        assert!(
            text.contains("writing /mnt/ha-small/big.bin failed"),
            "{bulk:?}: {text}"
        );
        assert!(text.contains("No space left on device"), "{bulk:?}: {text}");
        assert!(
            text.contains("partial file was removed"),
            "{bulk:?}: {text}"
        );
        assert_eq!(left.trim(), "", "files were left behind over {bulk:?}");
    }
}

/// Endless data: the transfer can only end by the host being cut off.
struct Endless;

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        buf.fill(1);
        Ok(buf.len())
    }
}

#[test]
#[ignore = "needs the lab"]
fn a_host_cut_off_mid_transfer_is_an_error_in_bounded_time() {
    let lab = lab();
    for bulk in BOTH {
        cut_off_mid_transfer(&lab, bulk);
    }
}

fn cut_off_mid_transfer(lab: &Lab, bulk: Bulk) {
    let dir = tempfile::tempdir().unwrap();
    let config = lab_key_config_over(lab, dir.path(), bulk);
    let mut host = connect(lab, &config, &NoPrompt).unwrap();
    // lab.sh runs from the machine's own namespaces: the cut is made from this thread,
    // when the transfer (on the operator's thread) says it is under way.
    let (going, under_way) = std::sync::mpsc::channel();
    let (result, cut_at) = std::thread::scope(|scope| {
        let transfer = scope.spawn(|| {
            on_operator(lab, || {
                let mut told = false;
                host.stream_in(
                    &mut Endless,
                    "/tmp/cut.bin",
                    &FileMode::private(),
                    &mut |n| {
                        if n > 32 << 20 && !told {
                            told = true;
                            let _ = going.send(());
                        }
                    },
                )
            })
        });
        under_way
            .recv_timeout(Duration::from_secs(60))
            .expect("the transfer got going");
        lab.cut(Host::Primary);
        let cut_at = Instant::now();
        (transfer.join().unwrap(), cut_at)
    });
    let waited = cut_at.elapsed();
    lab.heal(Host::Primary);
    let text = result
        .expect_err("a cut host cannot finish a transfer")
        .to_string();
    assert!(
        text.contains("primary (198.51.100.11) went silent"),
        "{bulk:?}: {text}"
    );
    assert!(
        waited < Duration::from_secs(30),
        "noticed only after {waited:?} over {bulk:?}"
    );
    // The destination was never created; the partial file goes once sshd notices.
    assert_eq!(
        lab.exec(Host::Primary, "test -e /tmp/cut.bin").code,
        Some(1),
        "over {bulk:?}"
    );
    lab.exec_ok(Host::Primary, "rm -f /tmp/cut.bin.ha-setup-partial*");
}

/// A target for the lab's non-root login (`ha-admin`, passwordless sudo), offering no key
/// files: what logs in is decided by the test.
fn admin_target(lab: &Lab, dir: &Path, with_key: bool) -> SshTarget {
    let known = known_hosts(lab, dir);
    let key = if with_key {
        format!("identity_file = \"{}\"", lab.var("HA_LAB_KEY"))
    } else {
        String::new()
    };
    let config = config(
        lab,
        &known,
        &format!("ssh_user = \"{}\"\n{key}", lab.var("HA_LAB_ADMIN_USER")),
        "",
    );
    let mut target = SshTarget::resolve("primary", &config.nodes["primary"], &config.ssh);
    if !with_key {
        target.identity_files.clear();
    }
    target
}

#[test]
#[ignore = "needs the lab"]
fn a_non_root_login_becomes_root_and_other_users_with_sudo() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let target = admin_target(&lab, dir.path(), true);
    on_operator(&lab, move || {
        let mut host = SshHost::connect(target, &NoPrompt).unwrap();
        assert!(!host.login_is_root());
        assert_eq!(host.run_ok(&Cmd::new("id -un")).unwrap().trim(), "ha-admin");
        assert_eq!(
            host.run_ok(&Cmd::new("id -u").as_root()).unwrap().trim(),
            "0"
        );
        assert_eq!(
            host.run_ok(&Cmd::new("id -un").as_user("postgres"))
                .unwrap()
                .trim(),
            "postgres"
        );
        let sql = host
            .run_ok_with_input(&Cmd::new("mariadb -N").as_root(), b"select 6 * 7;")
            .unwrap();
        assert_eq!(sql.trim(), "42");
        // Root's files through sudo, written atomically with mode and owner.
        host.write_file(
            "/var/lib/ha-admin-test.txt",
            b"written through sudo\n",
            &FileMode::new(0o640).owned_by("mysql"),
        )
        .unwrap();
        let stat = host
            .run_ok(&Cmd::new("stat -c '%U %a' /var/lib/ha-admin-test.txt").as_root())
            .unwrap();
        assert_eq!(stat.trim(), "mysql 640");
        // A bulk stream through OpenSSH's ssh, still becoming root with sudo.
        assert_eq!(host.bulk_transport(), "openssh");
        let data = vec![5u8; 3 << 20];
        host.stream_in(
            &mut &data[..],
            "/var/lib/ha-admin-bulk.bin",
            &FileMode::private(),
            &mut |_| {},
        )
        .unwrap();
        let stat = host
            .run_ok(&Cmd::new("stat -c '%U %s' /var/lib/ha-admin-bulk.bin").as_root())
            .unwrap();
        assert_eq!(stat.trim(), format!("root {}", data.len()));
        host.run_ok(
            &Cmd::new("rm -f /var/lib/ha-admin-test.txt /var/lib/ha-admin-bulk.bin").as_root(),
        )
        .unwrap();
    });
}

#[test]
#[ignore = "needs the lab"]
fn logs_in_with_a_password_from_the_named_environment_variable() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let mut target = admin_target(&lab, dir.path(), false);
    target.password_env = Some("HA_TEST_LAB_ADMIN_PASSWORD".into());
    // SAFETY: lab tests run one at a time (the lab lock); nothing else in this process
    // reads this variable.
    unsafe {
        std::env::set_var(
            "HA_TEST_LAB_ADMIN_PASSWORD",
            lab.var("HA_LAB_ADMIN_PASSWORD"),
        )
    };
    let mut wrong = target.clone();
    wrong.password_env = Some("HA_TEST_WRONG_PASSWORD".into());
    // SAFETY: as above.
    unsafe { std::env::set_var("HA_TEST_WRONG_PASSWORD", "not-the-password") };
    on_operator(&lab, move || {
        let mut host = SshHost::connect(target, &NoPrompt).unwrap();
        assert_eq!(host.run_ok(&Cmd::new("id -un")).unwrap().trim(), "ha-admin");
        // OpenSSH's ssh could only ask for the password: bulk streams stay on libssh2.
        assert_eq!(host.bulk_transport(), "libssh2");
        let data = vec![6u8; 1 << 20];
        let sent = host
            .stream_in(
                &mut &data[..],
                "/tmp/ha-admin-pw.bin",
                &FileMode::private(),
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(sent.bytes, data.len() as u64);
        host.run_ok(&Cmd::new("rm -f /tmp/ha-admin-pw.bin").as_root())
            .unwrap();
        let err = SshHost::connect(wrong, &NoPrompt)
            .err()
            .expect("a wrong password is refused");
        let text = err.to_string();
        assert!(text.contains("password"), "{text}");
        assert!(
            !text.contains("not-the-password"),
            "the password leaked: {text}"
        );
    });
}

#[test]
#[ignore = "needs the lab"]
fn logs_in_with_a_key_held_by_ssh_agent() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    // Our own agent, in the foreground so this test ends it by its PID.
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent starts");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "ssh-agent made no socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(lab.var("HA_LAB_KEY"))
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .expect("ssh-add runs");
    assert!(added.status.success(), "{added:?}");
    let target = admin_target(&lab, dir.path(), false);
    // SAFETY: lab tests run one at a time (the lab lock); libssh2 reads it only while
    // this test connects.
    unsafe { std::env::set_var("SSH_AUTH_SOCK", &socket) };
    let connected = on_operator(&lab, move || {
        SshHost::connect(target, &NoPrompt).map(|mut host| {
            // OpenSSH's ssh logs in with the agent's key too.
            let transport = host.bulk_transport();
            (host.run_ok(&Cmd::new("id -un")), transport)
        })
    });
    // SAFETY: as above.
    unsafe { std::env::remove_var("SSH_AUTH_SOCK") };
    let _ = agent.kill();
    let _ = agent.wait();
    let (user, transport) = connected.unwrap();
    assert_eq!(user.unwrap().trim(), "ha-admin");
    assert_eq!(transport, "openssh");
}

/// An OpenSSH client config for the test, in its directory; returns its path.
fn ssh_config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("ssh_config");
    std::fs::write(&path, text).unwrap();
    path
}

/// The lab config with the primary reached as `alias` through `ssh_config`.
fn via_ssh_config(lab: &Lab, dir: &Path, bulk: Bulk, alias: &str, ssh_config: &str) -> Config {
    let mut config = lab_key_config_over(lab, dir, bulk);
    config.nodes["primary"].host = alias.to_owned();
    config.ssh.config_file = ssh_config_file(dir, ssh_config);
    config
}

/// `Host primary-via-jump`: the primary, through the tertiary as its jump host.
fn through_the_tertiary(lab: &Lab) -> String {
    format!(
        "Host primary-via-jump\n  HostName {}\n  ProxyJump root@{}\n",
        lab.addr(Host::Primary),
        lab.addr(Host::Tertiary)
    )
}

/// Packets from `from` dropped at `to` until this is dropped (also when a test fails).
struct Blocked<'a> {
    lab: &'a Lab,
    from: Host,
    to: Host,
}

impl<'a> Blocked<'a> {
    fn new(lab: &'a Lab, from: Host, to: Host) -> Self {
        lab.block(from, to);
        Blocked { lab, from, to }
    }
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        // Not through Lab::unblock, which panics on failure: never a panic in a panic.
        let _ = self
            .lab
            .command()
            .args(["unblock", self.from.name(), self.to.name()])
            .stdin(std::process::Stdio::null())
            .output();
    }
}

/// The lines of the lab's known_hosts that do not name `host`.
fn known_hosts_without(lab: &Lab, dir: &Path, host: Host) -> PathBuf {
    let path = known_hosts(lab, dir);
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String = text
        .lines()
        .filter(|line| {
            let names = line.split(' ').next().unwrap_or("");
            names != lab.addr(host) && names != host.name()
        })
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&path, kept).unwrap();
    path
}

#[test]
#[ignore = "needs the lab"]
fn proxy_jump_reaches_a_host_only_its_jump_host_reaches() {
    let lab = lab();
    let _blocked = Blocked::new(&lab, Host::Operator, Host::Primary);
    let data: Vec<u8> = (0..12_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    // Straight to the primary: nothing comes back.
    let dir = tempfile::tempdir().unwrap();
    let (text, _) = connect_err(&lab, &lab_key_config(&lab, dir.path()));
    assert!(text.contains("no answer from primary"), "{text}");
    for bulk in BOTH {
        let dir = tempfile::tempdir().unwrap();
        let config = via_ssh_config(
            &lab,
            dir.path(),
            bulk,
            "primary-via-jump",
            &through_the_tertiary(&lab),
        );
        let target = SshTarget::resolve("primary", &config.nodes["primary"], &config.ssh);
        assert_eq!(target.hostname, lab.addr(Host::Primary));
        let jump = target.jump.as_deref().expect("the tertiary as jump host");
        assert_eq!(
            (jump.hostname.as_str(), jump.user.as_str()),
            (lab.addr(Host::Tertiary), "root")
        );
        let mut host = connect(&lab, &config, &NoPrompt).unwrap();
        let (name, sent, back, transport) = on_operator(&lab, || {
            let name = host.run_ok(&Cmd::new("hostname")).unwrap();
            let mode = FileMode::new(0o640).owned_by("mysql:mysql");
            let sent = host
                .stream_in(&mut &data[..], "/tmp/jumped.bin", &mode, &mut |_| {})
                .unwrap();
            let mut back = Vec::new();
            host.stream_out("/tmp/jumped.bin", &mut back, &mut |_| {})
                .unwrap();
            // The same session serves many commands through the tunnel.
            for _ in 0..10 {
                host.run_ok(&Cmd::new("true")).unwrap();
            }
            (name, sent, back, host.bulk_transport())
        });
        assert_eq!(name.trim(), "primary", "over {bulk:?}");
        assert_eq!(transport, bulk.name());
        assert!(back == data, "the bytes read back over {bulk:?} differ");
        let on_host = lab.exec_ok(
            Host::Primary,
            "sha256sum /tmp/jumped.bin | cut -d' ' -f1; stat -c '%a %U:%G' /tmp/jumped.bin",
        );
        let lines: Vec<&str> = on_host.lines().collect();
        assert_eq!(
            lines,
            [sent.sha256.as_str(), "640 mysql:mysql"],
            "over {bulk:?}"
        );
        lab.exec_ok(Host::Primary, "rm -f /tmp/jumped.bin");
    }
}

#[test]
#[ignore = "needs the lab"]
fn a_jump_host_with_an_unknown_or_changed_key_is_refused() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let ssh_config = through_the_tertiary(&lab);
    let key = format!("identity_file = \"{}\"", lab.var("HA_LAB_KEY"));
    let with = |known: &Path, policy: &str| {
        let mut config = config(&lab, known, &key, policy);
        config.nodes["primary"].host = "primary-via-jump".to_owned();
        config.ssh.config_file = ssh_config_file(dir.path(), &ssh_config);
        config
    };

    // Unknown under strict: refused, with the jump host's own line to add.
    let known = known_hosts_without(&lab, dir.path(), Host::Tertiary);
    let before = std::fs::read_to_string(&known).unwrap();
    let (text, _) = connect_err(&lab, &with(&known, ""));
    assert!(
        text.contains("primary's jump host (198.51.100.13) offered an unknown SSH host key"),
        "{text}"
    );
    assert!(text.contains("198.51.100.13 ssh-ed25519 AAAA"), "{text}");
    assert_eq!(std::fs::read_to_string(&known).unwrap(), before);

    // Unknown under accept-new: recorded, like any host's.
    let mut host = connect(
        &lab,
        &with(&known, "host_key_policy = \"accept-new\""),
        &NoPrompt,
    )
    .unwrap();
    on_operator(&lab, || host.run_ok(&Cmd::new("true")).unwrap());
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(
        recorded[before.len()..].starts_with("198.51.100.13 ssh-ed25519 "),
        "{recorded}"
    );

    // Changed (another host's keys under its address): refused even under accept-new.
    let changed = known_hosts_without(&lab, dir.path(), Host::Tertiary);
    let secondary_keys = lab.exec_ok(Host::Secondary, "cat /etc/ssh/ssh_host_*_key.pub");
    let mut text = std::fs::read_to_string(&changed).unwrap();
    for line in secondary_keys.lines() {
        let key: Vec<&str> = line.split(' ').take(2).collect();
        text.push_str(&format!("{} {}\n", lab.addr(Host::Tertiary), key.join(" ")));
    }
    std::fs::write(&changed, text).unwrap();
    let (text, _) = connect_err(&lab, &with(&changed, "host_key_policy = \"accept-new\""));
    assert!(
        text.contains("HOST KEY OF primary's jump host (198.51.100.13) HAS CHANGED"),
        "{text}"
    );
    assert!(text.contains("ssh-keygen -R 198.51.100.13"), "{text}");
}

#[test]
#[ignore = "needs the lab"]
fn the_host_behind_a_jump_host_has_its_own_key_checked() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let mut config = via_ssh_config(
        &lab,
        dir.path(),
        Bulk::OpenSsh,
        "primary-via-jump",
        &through_the_tertiary(&lab),
    );
    // The jump host is known; the primary behind it is not.
    config.ssh.known_hosts = known_hosts_without(&lab, dir.path(), Host::Primary);
    let (text, _) = connect_err(&lab, &config);
    assert!(
        text.contains("primary (198.51.100.11) offered an unknown SSH host key"),
        "{text}"
    );
    assert!(text.contains("198.51.100.11 ssh-ed25519 AAAA"), "{text}");
}

#[test]
#[ignore = "needs the lab"]
fn a_jump_host_that_cannot_reach_the_target_says_so() {
    let lab = lab();
    let _blocked = Blocked::new(&lab, Host::Tertiary, Host::Primary);
    let dir = tempfile::tempdir().unwrap();
    let config = via_ssh_config(
        &lab,
        dir.path(),
        Bulk::OpenSsh,
        "primary-via-jump",
        &through_the_tertiary(&lab),
    );
    let (text, took) = connect_err(&lab, &config);
    assert!(
        text.contains(
            "cannot reach primary (198.51.100.11) through primary's jump host (198.51.100.13): no answer within 3 s"
        ),
        "{text}"
    );
    assert!(text.contains("AllowTcpForwarding"), "{text}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
#[ignore = "needs the lab"]
fn a_revoked_host_key_is_refused_even_when_listed_as_known() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let known = known_hosts(&lab, dir.path());
    let keys = lab.exec_ok(Host::Primary, "cat /etc/ssh/ssh_host_*_key.pub");
    let mut text = std::fs::read_to_string(&known).unwrap();
    for line in keys.lines() {
        let key: Vec<&str> = line.split(' ').take(2).collect();
        text.push_str(&format!("@revoked * {}\n", key.join(" ")));
    }
    std::fs::write(&known, &text).unwrap();
    let key = format!("identity_file = \"{}\"", lab.var("HA_LAB_KEY"));
    for policy in ["", "host_key_policy = \"accept-new\""] {
        let (error, _) = connect_err(&lab, &config(&lab, &known, &key, policy));
        assert!(
            error.contains("primary (198.51.100.11) offered the SSH host key ssh-"),
            "{error}"
        );
        assert!(error.contains("marks @revoked"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&known).unwrap(),
            text,
            "nothing recorded"
        );
    }
    // Unknown and revoked under accept-new: still refused, and not recorded.
    let unknown = known_hosts_without(&lab, dir.path(), Host::Primary);
    let revoked_only: String = keys
        .lines()
        .map(|line| {
            let key: Vec<&str> = line.split(' ').take(2).collect();
            format!("@revoked * {}\n", key.join(" "))
        })
        .collect();
    let mut text = std::fs::read_to_string(&unknown).unwrap();
    text.push_str(&revoked_only);
    std::fs::write(&unknown, &text).unwrap();
    let (error, _) = connect_err(
        &lab,
        &config(&lab, &unknown, &key, "host_key_policy = \"accept-new\""),
    );
    assert!(error.contains("marks @revoked"), "{error}");
    assert_eq!(
        std::fs::read_to_string(&unknown).unwrap(),
        text,
        "nothing recorded"
    );
}

/// What ~/.ssh/config asks for that ha-setup cannot do is refused before any connection,
/// naming the option and the host; no lab needed.
#[test]
fn unsupported_ssh_config_options_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "Host db1\n  ProxyCommand nc -X connect -x proxy:3128 %h %p\n",
            "it sets ProxyCommand nc -X connect -x proxy:3128 %h %p for db1",
        ),
        (
            "Host db1\n  HostName 192.0.2.1\n  HostKeyAlias db1-key\n",
            "it sets HostKeyAlias db1-key for db1",
        ),
        (
            "Host db1\n  ProxyJump a.example,b.example\n",
            "ProxyJump for db1 lists 2 jump hosts (a.example,b.example)",
        ),
        (
            "Host db1\n  ProxyJump gw\nHost gw\n  ProxyCommand ssh -W %h:%p outer\n",
            "for its jump host: it sets ProxyCommand ssh -W %h:%p outer for gw",
        ),
    ];
    for (ssh_config, expected) in cases {
        let path = ssh_config_file(dir.path(), ssh_config);
        let text = format!(
            "engine = \"mariadb\"\n[primary]\nhost = \"db1\"\n[secondary]\nhost = \"db2\"\n\
             [ssh]\nconfig_file = \"{}\"\nknown_hosts = \"{}\"\n",
            path.display(),
            dir.path().join("known_hosts").display()
        );
        let config = Config::parse(&text, Path::new("test.toml")).unwrap();
        let target = SshTarget::resolve("primary", &config.nodes["primary"], &config.ssh);
        let started = Instant::now();
        let err = SshHost::connect(target, &NoPrompt)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.starts_with(&format!(
                "cannot connect to primary ({}) as {} says: ",
                if ssh_config.contains("192.0.2.1") {
                    "192.0.2.1"
                } else {
                    "db1"
                },
                path.display()
            )),
            "{err}"
        );
        assert!(err.contains(expected), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "it went on the network"
        );
    }
}
