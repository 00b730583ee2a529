//! The lab of tests/lab/lab.sh, as the tests use it: three database hosts and an operator,
//! each in its own network, mount and PID namespaces, with real sshd, MariaDB and
//! PostgreSQL; MariaDB's datadir is a file system of its own unless a test says otherwise
//! ([`Lab::set_datadir`]). Lab tests take the lab's lock, so they never interfere with each
//! other. Several labs can stand side by side (`lab.sh` with `HA_LAB_INSTANCE`):
//! `HA_LAB_INSTANCES="1 2"` gives a test run two, and each lab test takes whichever is free,
//! so two run at once (tests/run-all.sh).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::{Run, binary, repo_root};

/// One of the lab's machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Primary,
    Secondary,
    Tertiary,
    Operator,
}

impl Host {
    pub fn name(self) -> &'static str {
        match self {
            Host::Primary => "primary",
            Host::Secondary => "secondary",
            Host::Tertiary => "tertiary",
            Host::Operator => "operator",
        }
    }
}

/// How MariaDB's datadir sits on a database host (`lab.sh datadir`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The datadir is a mount point: a file system of its own (the lab's default, as on a
    /// production host with a dedicated disk or LVM volume).
    Mount,
    /// The datadir is a plain directory on its parent's file system.
    Plain,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Mount => "mount",
            Layout::Plain => "plain",
        }
    }
}

/// What runs as a database host's init (`lab.sh flavour`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// The lab's small init; services through their init scripts (the default).
    Plain,
    /// systemd as PID 1 of the host; services are units, `systemctl` works.
    Systemd,
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Flavour::Plain => "plain",
            Flavour::Systemd => "systemd",
        }
    }
}

/// MariaDB's datadir on a database host, where the lab puts it by default.
pub const DEFAULT_DATADIR: &str = "/var/lib/mysql";

pub struct Lab {
    script: PathBuf,
    /// Which of the labs (`HA_LAB_INSTANCE` of lab.sh).
    instance: u8,
    env: HashMap<String, String>,
}

/// The labs this test run may use (`HA_LAB_INSTANCES`, default lab 1 alone), each found
/// once.
static LABS: OnceLock<Vec<(u8, OnceLock<Mutex<Lab>>)>> = OnceLock::new();

/// A lab, for this test alone (also against lab tests of other processes: two test runs at
/// once must not reset each other's hosts): the first of the run's labs that no other test
/// holds, waiting while all are taken. Panics with what to do when the lab is not up.
pub fn lab() -> LabGuard {
    let labs = LABS.get_or_init(|| {
        let listed = std::env::var("HA_LAB_INSTANCES").unwrap_or_else(|_| "1".to_owned());
        let instances: Vec<(u8, OnceLock<Mutex<Lab>>)> = listed
            .split([' ', ','])
            .filter(|word| !word.is_empty())
            .map(|word| match word.parse::<u8>() {
                Ok(n @ 1..=9) => (n, OnceLock::new()),
                _ => panic!("HA_LAB_INSTANCES={listed:?}: want lab numbers from 1 to 9"),
            })
            .collect();
        assert!(!instances.is_empty(), "HA_LAB_INSTANCES is empty");
        instances
    });
    // The file lock first: another process may be resetting that lab right now, and its
    // status says "down" while it does.
    let (slot, file) = take_one(labs);
    let (instance, cell) = &labs[slot];
    let lab = cell.get_or_init(|| Mutex::new(Lab::discover(*instance)));
    // A failed lab test must not fail every later one: the lab itself is still usable.
    let guard = lab.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    LabGuard { guard, _file: file }
}

/// Where lab.sh keeps lab `instance`'s state: `HA_LAB_ROOT` (default /var/tmp/ha-lab) for
/// lab 1, followed by the number for the others.
fn lab_root(instance: u8) -> String {
    let base = std::env::var("HA_LAB_ROOT").unwrap_or_else(|_| "/var/tmp/ha-lab".to_owned());
    if instance == 1 {
        base
    } else {
        format!("{base}{instance}")
    }
}

/// Locks one lab's tests.lock: the first free one; when all are held, tries again a moment
/// later (flock cannot wait for any of several files).
fn take_one(labs: &[(u8, OnceLock<Mutex<Lab>>)]) -> (usize, std::fs::File) {
    use std::os::fd::AsRawFd;
    loop {
        for (slot, (instance, _)) in labs.iter().enumerate() {
            let root = lab_root(*instance);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(format!("{root}/tests.lock"))
                .unwrap_or_else(|err| {
                    panic!("{root}/tests.lock: {err} (is lab {instance} up? tests/lab/lab.sh up)")
                });
            // SAFETY: flock on a file this function owns; released when the file is closed.
            let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if locked == 0 {
                return (slot, file);
            }
            let err = std::io::Error::last_os_error();
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::WouldBlock,
                "flock {root}/tests.lock: {err}"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The lab, held by one test of one process.
pub struct LabGuard {
    guard: MutexGuard<'static, Lab>,
    _file: std::fs::File,
}

impl std::ops::Deref for LabGuard {
    type Target = Lab;

    fn deref(&self) -> &Lab {
        &self.guard
    }
}

impl Lab {
    fn discover(instance: u8) -> Lab {
        let mut lab = Lab {
            script: repo_root().join("tests/lab/lab.sh"),
            instance,
            env: HashMap::new(),
        };
        let status = lab
            .command()
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "lab {instance} is not up: run `HA_LAB_INSTANCE={instance} tests/lab/lab.sh up` as root (or `tests/run-all.sh`), then run the lab tests again"
        );
        let env = lab.command().arg("env").output().expect("lab.sh env runs");
        lab.env = String::from_utf8_lossy(&env.stdout)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        lab
    }

    /// tests/lab/lab.sh for this lab, for a test that runs it in its own way.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.script);
        command.env("HA_LAB_INSTANCE", self.instance.to_string());
        command
    }

    /// A value from `lab.sh env`, e.g. `HA_LAB_KEY`.
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("lab.sh env does not print {key}"))
    }

    pub fn addr(&self, host: Host) -> &str {
        self.var(match host {
            Host::Primary => "HA_LAB_PRIMARY_ADDR",
            Host::Secondary => "HA_LAB_SECONDARY_ADDR",
            Host::Tertiary => "HA_LAB_TERTIARY_ADDR",
            Host::Operator => "HA_LAB_OPERATOR_ADDR",
        })
    }

    fn script(&self, args: &[&str]) -> Run {
        let output = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("lab.sh runs");
        Run::from(output)
    }

    /// Runs a shell command directly in the host's namespaces (no SSH): for setting up and
    /// checking the databases behind ha-setup's back.
    pub fn exec(&self, host: Host, shell: &str) -> Run {
        self.script(&["exec", host.name(), "sh", "-c", shell])
    }

    /// Like [`Lab::exec`], but the command must succeed; returns its stdout.
    #[track_caller]
    pub fn exec_ok(&self, host: Host, shell: &str) -> String {
        let run = self.exec(host, shell);
        run.expect_code(0);
        run.stdout
    }

    /// Runs a shell command on a database host through the real OpenSSH client, from the
    /// operator's namespace.
    pub fn ssh(&self, host: Host, shell: &str) -> Run {
        self.script(&["ssh", host.name(), shell])
    }

    /// Takes the host off the network (packets silently dropped, like a pulled cable).
    pub fn cut(&self, host: Host) {
        self.script(&["cut", host.name()]).expect_code(0);
    }

    /// Puts the host back on the network, and lifts every block from or to it.
    pub fn heal(&self, host: Host) {
        self.script(&["heal", host.name()]).expect_code(0);
    }

    /// From now on, packets from `from` arriving at `to` are silently dropped (a filter in
    /// `to` alone: `to` still reaches `from`, but hears nothing back). E.g. `block(Operator,
    /// Primary)`: the operator has lost its route to a primary that its replicas still reach.
    /// Lifted by [`Lab::unblock`], by healing either host, and by [`Lab::reset`].
    pub fn block(&self, from: Host, to: Host) {
        self.script(&["block", from.name(), to.name()])
            .expect_code(0);
    }

    /// A transfer cut mid-way: `to`'s TCP `port` answers until `mib` MiB have arrived there
    /// (all connections together), then resets every connection. Lifted by [`Lab::heal`] of
    /// `to`, and by [`Lab::reset`].
    pub fn break_after(&self, to: Host, port: u16, mib: u32) {
        self.script(&[
            "break-after",
            to.name(),
            &port.to_string(),
            &mib.to_string(),
        ])
        .expect_code(0);
    }

    pub fn unblock(&self, from: Host, to: Host) {
        self.script(&["unblock", from.name(), to.name()])
            .expect_code(0);
    }

    /// Moves a database host's MariaDB data into `layout` at `path` ([`DEFAULT_DATADIR`] or
    /// a path under /srv; another path is named in the server's configuration, as an
    /// administrator would), restarting the server on it. [`Lab::reset`] brings back the
    /// default: [`Layout::Mount`] on [`DEFAULT_DATADIR`].
    pub fn set_datadir(&self, host: Host, layout: Layout, path: &str) {
        self.script(&["datadir", host.name(), layout.name(), path])
            .expect_code(0);
    }

    /// A database host's datadir layout and path now.
    pub fn datadir(&self, host: Host) -> (Layout, String) {
        let run = self.script(&["datadir", host.name()]);
        run.expect_code(0);
        let (layout, path) = run
            .stdout
            .trim()
            .split_once(' ')
            .unwrap_or_else(|| panic!("lab.sh datadir printed {:?}", run.stdout));
        let layout = match layout {
            "mount" => Layout::Mount,
            "plain" => Layout::Plain,
            other => panic!("lab.sh datadir printed the layout {other:?}"),
        };
        (layout, path.to_owned())
    }

    /// Reboots a database host with `flavour` as its init (its files, data and network stay;
    /// every process stops and starts again). [`Lab::reset`] brings back [`Flavour::Plain`].
    pub fn set_flavour(&self, host: Host, flavour: Flavour) {
        self.script(&["flavour", host.name(), flavour.name()])
            .expect_code(0);
    }

    /// What runs as a database host's init now.
    pub fn flavour(&self, host: Host) -> Flavour {
        let run = self.script(&["flavour", host.name()]);
        run.expect_code(0);
        match run.stdout.trim() {
            "plain" => Flavour::Plain,
            "systemd" => Flavour::Systemd,
            other => panic!("lab.sh flavour printed {other:?}"),
        }
    }

    /// Returns all three database hosts to pristine: fresh datadirs in the default layout,
    /// the plain flavour, no replication config, no cut links or blocks.
    pub fn reset(&self) {
        self.script(&["reset"]).expect_code(0);
    }

    /// `ha-setup ARGS` run on the operator, the way an operator would run it.
    pub fn ha_setup(&self, args: &[&str]) -> Run {
        self.ha_setup_with(&[], args)
    }

    /// `ha-setup ARGS` on the operator with extra environment variables.
    pub fn ha_setup_with(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut command = self.command();
        command.args(["exec", "operator", "env"]);
        for (key, value) in env {
            command.arg(format!("{key}={value}"));
        }
        command.arg(binary()).args(args);
        Run::from(
            command
                .stdin(Stdio::null())
                .output()
                .expect("ha-setup runs on the operator"),
        )
    }

    /// Starts ha-setup on the operator in the background, for a test that interrupts it:
    /// `args` as one shell word list, `state` as its state directory. Its stderr goes to a
    /// file (a pipe nobody reads could fill and stop it).
    pub fn spawn_ha_setup(&self, state: &str, args: &str) -> Background {
        let base = format!(
            "{}/background-{}",
            self.var("HA_LAB_ROOT"),
            std::process::id()
        );
        let (pidfile, errfile) = (format!("{base}.pid"), format!("{base}.err"));
        let _ = std::fs::remove_file(&pidfile);
        let child = self
            .command()
            .args(["exec", "operator", "sh", "-c"])
            .arg(format!(
                "echo $$ > {pidfile}; exec env HA_SETUP_STATE_DIR={state} {} {args} 2> {errfile}",
                binary().display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ha-setup starts on the operator");
        Background {
            child,
            pidfile,
            errfile,
        }
    }

    /// Waits until the secondary's staging directory holds at least `mib` MiB (a copy is
    /// arriving); panics if `background` ends first, or after two minutes.
    pub fn wait_for_incoming(&self, background: &mut Background, mib: u32) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let arriving = self.exec(
                Host::Secondary,
                &format!(
                    "test \"$(du -s -B1M /var/lib/mysql/.ha-setup-incoming 2>/dev/null | cut -f1)\" -ge {mib}"
                ),
            );
            if arriving.code == Some(0) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "no copy ever arrived");
            if let Ok(Some(status)) = background.child.try_wait() {
                panic!("ha-setup ended before a copy arrived: {status}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Writes a config for the lab pair (root, the lab key, strict host keys) with `extra`
    /// appended, under the lab's root; returns its path.
    pub fn write_config(&self, name: &str, extra: &str) -> String {
        let path = format!("{}/{name}.toml", self.var("HA_LAB_ROOT"));
        let text = format!(
            "engine = \"mariadb\"\n\n[primary]\nhost = \"{primary}\"\nssh_user = \"root\"\nidentity_file = \"{key}\"\n\n\
             [secondary]\nhost = \"{secondary}\"\nssh_user = \"root\"\nidentity_file = \"{key}\"\n\n\
             [ssh]\nknown_hosts = \"{known}\"\nhost_key_policy = \"strict\"\n{extra}",
            primary = self.addr(Host::Primary),
            secondary = self.addr(Host::Secondary),
            key = self.var("HA_LAB_KEY"),
            known = self.var("HA_LAB_KNOWN_HOSTS"),
        );
        std::fs::write(&path, text).expect("the lab root is writable");
        path
    }

    /// Runs SQL as root on a host's MariaDB (directly, not through ha-setup); returns the
    /// rows, tab-separated.
    pub fn sql(&self, host: Host, sql: &str) -> Run {
        let mut command = self.command();
        command.args([
            "exec",
            host.name(),
            "mariadb",
            "--batch",
            "--skip-column-names",
            "-e",
            sql,
        ]);
        Run::from(command.stdin(Stdio::null()).output().expect("lab.sh runs"))
    }

    /// `ha-setup status --format json` on the operator: its exit code and the report.
    pub fn status_json(&self, config: &str, state: &str) -> (Option<i32>, serde_json::Value) {
        let run = self.ha_setup_with(
            &[("HA_SETUP_STATE_DIR", state)],
            &["status", "-c", config, "--format", "json"],
        );
        let value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|err| panic!("status --format json printed no JSON ({err}): {run:?}"));
        (run.code, value)
    }

    /// Waits until `sql` on `host` prints `expected` (replication takes a moment); panics
    /// with the last answer after 30 s, a guard against a hang rather than a speed test.
    #[track_caller]
    pub fn wait_for_sql(&self, host: Host, sql: &str, expected: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let run = self.sql(host, sql);
            if run.code == Some(0) && run.stdout.trim() == expected {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{sql} on {host:?} never gave {expected:?}: {run:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Like [`Lab::sql`], but it must succeed.
    #[track_caller]
    pub fn sql_ok(&self, host: Host, sql: &str) -> String {
        let run = self.sql(host, sql);
        run.expect_code(0);
        run.stdout.trim_end().to_owned()
    }
}

/// Runs `work` on a thread that has joined the operator's network namespace, so that
/// library code under test (an SSH connection, say) reaches the lab hosts as ha-setup on
/// the operator would. A network namespace is per thread; nothing else of the test moves.
pub fn on_operator<T: Send>(lab: &Lab, work: impl FnOnce() -> T + Send) -> T {
    let path = lab.var("HA_LAB_OPERATOR_NETNS").to_owned();
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let netns = std::fs::File::open(&path)
                    .expect("the operator's network namespace exists (is the lab up?)");
                use std::os::fd::AsRawFd;
                // SAFETY: setns on a valid namespace fd; it affects only this thread.
                let joined = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(joined, 0, "setns: {}", std::io::Error::last_os_error());
                work()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// ha-setup running on the operator in the background.
pub struct Background {
    pub child: std::process::Child,
    pidfile: String,
    errfile: String,
}

impl Background {
    /// Kills it with SIGKILL, by its PID in the operator's own PID namespace.
    pub fn kill(mut self, lab: &Lab) {
        let pid: u32 = std::fs::read_to_string(&self.pidfile)
            .expect("the background run wrote its PID")
            .trim()
            .parse()
            .expect("a PID");
        lab.exec(Host::Operator, &format!("kill -KILL {pid}"))
            .expect_code(0);
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pidfile);
        let _ = std::fs::remove_file(&self.errfile);
    }

    /// Waits for it to end; its exit code and stderr.
    pub fn wait(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().expect("ha-setup ends");
        let stderr = std::fs::read_to_string(&self.errfile).unwrap_or_default();
        let _ = std::fs::remove_file(&self.pidfile);
        let _ = std::fs::remove_file(&self.errfile);
        (status.code(), stderr)
    }
}
