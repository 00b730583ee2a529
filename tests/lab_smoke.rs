//! The lab itself: both hosts answer over real SSH, each runs its own databases, and a cut
//! host stops answering until healed. Hosts look like production database hosts: the
//! datadir is a file system of its own, each host sees only its own processes, one-way
//! packet drops leave a path through the jump host.

use std::time::{Duration, Instant};

use crate::util::lab::{DEFAULT_DATADIR, Flavour, Host, Layout, lab};

const DB_HOSTS: [Host; 3] = [Host::Primary, Host::Secondary, Host::Tertiary];

#[test]
#[ignore = "needs the lab"]
fn both_hosts_answer_over_ssh_with_their_own_hostname() {
    let lab = lab();
    let primary = lab.ssh(Host::Primary, "hostname");
    primary.expect_code(0);
    let secondary = lab.ssh(Host::Secondary, "hostname");
    secondary.expect_code(0);
    assert_eq!(primary.stdout.trim(), "primary");
    assert_eq!(secondary.stdout.trim(), "secondary");
}

#[test]
#[ignore = "needs the lab"]
fn each_host_has_its_own_host_key() {
    let lab = lab();
    let key = |host| lab.exec_ok(host, "cat /etc/ssh/ssh_host_ed25519_key.pub");
    let (primary, secondary) = (key(Host::Primary), key(Host::Secondary));
    assert!(primary.starts_with("ssh-ed25519 "), "{primary}");
    assert_ne!(primary, secondary);
}

#[test]
#[ignore = "needs the lab"]
fn each_host_runs_its_own_mariadb_and_postgresql() {
    let lab = lab();
    for host in [Host::Primary, Host::Secondary] {
        let maria = lab.ssh(host, "mariadb -N -e 'select @@hostname, @@version'");
        maria.expect_code(0);
        assert!(maria.stdout.starts_with(host.name()), "{}", maria.stdout);
        assert!(maria.stdout.contains("10.11"), "{}", maria.stdout);
        let pg = lab.ssh(
            host,
            "runuser -u postgres -- psql -Atc 'show server_version'",
        );
        pg.expect_code(0);
        assert!(pg.stdout.starts_with("15."), "{}", pg.stdout);
    }
    // Private datadirs: a table made on the primary does not exist on the secondary.
    lab.exec_ok(
        Host::Primary,
        "mariadb -e 'create database if not exists lab_smoke'",
    );
    let listed = lab.exec_ok(Host::Secondary, "mariadb -N -e 'show databases'");
    assert!(!listed.contains("lab_smoke"), "{listed}");
    lab.exec_ok(Host::Primary, "mariadb -e 'drop database lab_smoke'");
}

#[test]
#[ignore = "needs the lab"]
fn a_cut_host_stops_answering_and_comes_back_after_heal() {
    let lab = lab();
    lab.cut(Host::Primary);
    let started = Instant::now();
    let cut = lab.ssh(Host::Primary, "true");
    let waited = started.elapsed();
    // Healing first, so a failed assertion does not leave the lab cut.
    lab.heal(Host::Primary);
    assert_ne!(cut.code, Some(0), "the cut primary still answered");
    // Silence, not a refusal: the client waited out its connect timeout.
    assert!(
        waited >= Duration::from_secs(2),
        "answered in {waited:?}: refused, not cut"
    );
    lab.ssh(Host::Secondary, "true").expect_code(0);
    lab.ssh(Host::Primary, "true").expect_code(0);
}

#[test]
#[ignore = "needs the lab"]
fn ha_setup_runs_on_the_operator() {
    let lab = lab();
    let run = lab.ha_setup(&["--version"]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("ha-setup "), "{}", run.stdout);
    let hostname = lab.exec_ok(Host::Operator, "hostname");
    assert_eq!(hostname.trim(), "operator");
}

#[test]
#[ignore = "needs the lab"]
fn each_host_has_its_lab_address() {
    let lab = lab();
    for host in [Host::Primary, Host::Secondary, Host::Operator] {
        let addresses = lab.exec_ok(host, "ip -4 -o addr show dev eth0");
        assert!(
            addresses.contains(&format!("inet {}/", lab.addr(host))),
            "{addresses}"
        );
    }
}

#[test]
#[ignore = "needs the lab"]
fn reset_returns_both_hosts_to_pristine() {
    let lab = lab();
    // Whatever test ran before may have left a replicating pair, which would copy the
    // primary's new database to the secondary before this test makes it there.
    lab.reset();
    for host in [Host::Primary, Host::Secondary] {
        lab.exec_ok(host, "mariadb -e 'create database before_reset'");
        lab.exec_ok(host, "runuser -u postgres -- createdb before_reset");
        lab.exec_ok(
            host,
            "mkdir -p /var/lib/mysql.old-test && touch /etc/mysql/mariadb.conf.d/90-test.cnf",
        );
    }
    lab.reset();
    for host in [Host::Primary, Host::Secondary] {
        let maria = lab.exec_ok(host, "mariadb -N -e 'show databases'");
        assert!(!maria.contains("before_reset"), "{maria}");
        let pg = lab.exec_ok(
            host,
            "runuser -u postgres -- psql -Atc 'select datname from pg_database'",
        );
        assert!(!pg.contains("before_reset"), "{pg}");
        let leftovers = lab.exec_ok(
            host,
            "ls -d /var/lib/mysql.* /etc/mysql/mariadb.conf.d/90-test.cnf 2>/dev/null || true",
        );
        assert!(leftovers.trim().is_empty(), "{leftovers}");
    }
}

#[test]
#[ignore = "needs the lab"]
fn each_datadir_is_a_file_system_of_its_own() {
    let lab = lab();
    lab.reset();
    for host in DB_HOSTS {
        assert_eq!(
            lab.datadir(host),
            (Layout::Mount, DEFAULT_DATADIR.to_owned())
        );
        lab.exec_ok(host, "mountpoint -q /var/lib/mysql");
        // Not the file system of /var/lib, and with free space of its own.
        let devices = lab.exec_ok(host, "stat -c %d /var/lib /var/lib/mysql");
        let devices: Vec<&str> = devices.lines().collect();
        assert_ne!(devices[0], devices[1], "{host:?}: same device");
        let avail = lab.exec_ok(host, "df --output=avail -B1M /var/lib/mysql | tail -n 1");
        let avail: u64 = avail.trim().parse().unwrap();
        assert!((4096..8192).contains(&avail), "{host:?}: {avail} MiB free");
        // InnoDB runs on it.
        let datadir = lab.sql_ok(
            host,
            "select @@datadir, engine from information_schema.tables \
             where table_schema = 'mysql' and table_name = 'innodb_index_stats'",
        );
        assert_eq!(datadir, "/var/lib/mysql/\\tInnoDB".replace("\\t", "\t"));
        // As on a production host, the data cannot be moved aside by renaming its directory.
        let moved = lab.exec(host, "mv /var/lib/mysql /var/lib/mysql.old-smoke");
        assert_ne!(moved.code, Some(0), "{moved:?}");
        assert!(
            moved.stderr.contains("Device or resource busy"),
            "{}",
            moved.stderr
        );
    }
}

#[test]
#[ignore = "needs the lab"]
fn datadir_layouts_keep_the_data_and_reset_brings_back_the_default() {
    let lab = lab();
    lab.reset();
    lab.exec_ok(Host::Primary, "mariadb -e 'create database layout_smoke'");
    let databases = |host| lab.sql_ok(host, "show databases like 'layout_smoke'");
    // The old layout: a plain directory on /var/lib's file system.
    lab.set_datadir(Host::Primary, Layout::Plain, DEFAULT_DATADIR);
    assert_eq!(
        lab.datadir(Host::Primary),
        (Layout::Plain, DEFAULT_DATADIR.to_owned())
    );
    let mounted = lab.exec(Host::Primary, "mountpoint -q /var/lib/mysql");
    assert_ne!(mounted.code, Some(0), "{mounted:?}");
    assert_eq!(databases(Host::Primary), "layout_smoke");
    // A datadir elsewhere, named in the server's configuration: its own volume, then a plain
    // directory.
    for layout in [Layout::Mount, Layout::Plain] {
        lab.set_datadir(Host::Primary, layout, "/srv/mysql-data");
        assert_eq!(
            lab.datadir(Host::Primary),
            (layout, "/srv/mysql-data".to_owned())
        );
        assert_eq!(
            lab.sql_ok(Host::Primary, "select @@datadir"),
            "/srv/mysql-data/"
        );
        let config = lab.exec_ok(
            Host::Primary,
            "my_print_defaults --mysqld | grep -- --datadir=",
        );
        assert_eq!(config.trim(), "--datadir=/srv/mysql-data");
        let mounted = lab.exec(Host::Primary, "mountpoint -q /srv/mysql-data");
        assert_eq!(
            mounted.code == Some(0),
            layout == Layout::Mount,
            "{mounted:?}"
        );
        assert_eq!(databases(Host::Primary), "layout_smoke");
    }
    // The other hosts are untouched.
    assert_eq!(
        lab.datadir(Host::Secondary),
        (Layout::Mount, DEFAULT_DATADIR.to_owned())
    );
    lab.reset();
    assert_eq!(
        lab.datadir(Host::Primary),
        (Layout::Mount, DEFAULT_DATADIR.to_owned())
    );
    assert_eq!(databases(Host::Primary), "");
    let srv = lab.exec_ok(Host::Primary, "ls -A /srv");
    assert!(srv.trim().is_empty(), "{srv}");
}

#[test]
#[ignore = "needs the lab"]
fn each_host_sees_only_its_own_processes() {
    let lab = lab();
    for host in DB_HOSTS {
        let found = lab.exec_ok(host, "pgrep -x mariadbd");
        let pid_file = lab.exec_ok(host, "cat /run/mysqld/mysqld.pid");
        assert_eq!(
            found.trim(),
            pid_file.trim(),
            "{host:?}: pgrep found {found:?}"
        );
        let init = lab.exec_ok(host, "cat /proc/1/comm");
        assert_eq!(init.trim(), "ha-lab-init");
    }
    // A daemon started with `exec` and orphaned is reaped by the host's init: no zombie.
    lab.exec_ok(Host::Secondary, "sleep 0.2 >/dev/null 2>&1 & exit 0");
    std::thread::sleep(Duration::from_millis(600));
    let zombies = lab.exec_ok(Host::Secondary, "ps -e -o stat= | grep -c '^Z' || true");
    assert_eq!(zombies.trim(), "0");
}

#[test]
#[ignore = "needs the lab"]
fn a_block_drops_one_way_and_lifts() {
    let lab = lab();
    lab.block(Host::Operator, Host::Primary);
    let started = Instant::now();
    let blocked = lab.ssh(Host::Primary, "true");
    let waited = started.elapsed();
    // The primary's own replicas still reach it; it still reaches the others.
    let from_secondary = lab.exec(
        Host::Secondary,
        "timeout 5 bash -c '</dev/tcp/198.51.100.11/22'",
    );
    let from_primary = lab.exec(
        Host::Primary,
        "timeout 5 bash -c '</dev/tcp/198.51.100.12/22'",
    );
    lab.unblock(Host::Operator, Host::Primary);
    let unblocked = lab.ssh(Host::Primary, "true");
    // Healing lifts a block too.
    lab.block(Host::Operator, Host::Secondary);
    lab.heal(Host::Secondary);
    let healed = lab.ssh(Host::Secondary, "true");
    assert_ne!(blocked.code, Some(0), "the blocked primary answered");
    assert!(
        waited >= Duration::from_secs(2),
        "answered in {waited:?}: refused, not dropped"
    );
    from_secondary.expect_code(0);
    from_primary.expect_code(0);
    unblocked.expect_code(0);
    healed.expect_code(0);
}

#[test]
#[ignore = "needs the lab"]
fn the_tertiary_is_a_jump_host_to_a_primary_the_operator_cannot_reach() {
    let lab = lab();
    lab.block(Host::Operator, Host::Primary);
    // OpenSSH on the operator, with root's key and known_hosts there (by host name).
    let jumped = lab.exec(
        Host::Operator,
        "ssh -o BatchMode=yes -o ConnectTimeout=5 -J root@tertiary root@primary hostname",
    );
    let started = Instant::now();
    let direct = lab.exec(
        Host::Operator,
        "ssh -o BatchMode=yes -o ConnectTimeout=3 root@primary hostname",
    );
    let waited = started.elapsed();
    lab.unblock(Host::Operator, Host::Primary);
    jumped.expect_code(0);
    assert_eq!(jumped.stdout.trim(), "primary");
    assert_eq!(direct.code, Some(255), "{direct:?}");
    assert!(direct.stderr.contains("timed out"), "{}", direct.stderr);
    assert!(waited >= Duration::from_secs(2), "answered in {waited:?}");
}

#[test]
#[ignore = "needs the lab"]
fn a_host_can_run_systemd_and_reset_brings_back_the_plain_init() {
    let lab = lab();
    lab.reset();
    lab.set_flavour(Host::Tertiary, Flavour::Systemd);
    assert_eq!(lab.flavour(Host::Tertiary), Flavour::Systemd);
    let booted = lab.ssh(
        Host::Tertiary,
        "systemctl is-system-running; test -d /run/systemd/system && echo systemd-here; \
         systemctl is-active ssh mariadb postgresql@15-main",
    );
    booted.expect_code(0);
    assert_eq!(
        booted.stdout.split_whitespace().collect::<Vec<_>>(),
        ["running", "systemd-here", "active", "active", "active"]
    );
    // `service` goes through systemctl, and the data volume is still the datadir.
    lab.ssh(Host::Tertiary, "service mariadb restart >/dev/null 2>&1")
        .expect_code(0);
    let main_pid = lab.exec_ok(
        Host::Tertiary,
        "systemctl show -p MainPID --value mariadb; pgrep -x mariadbd",
    );
    let pids: Vec<&str> = main_pid.lines().collect();
    assert_eq!(pids.len(), 2, "{main_pid}");
    assert_eq!(pids[0], pids[1]);
    lab.exec_ok(Host::Tertiary, "mountpoint -q /var/lib/mysql");
    assert_eq!(lab.flavour(Host::Primary), Flavour::Plain);
    lab.reset();
    assert_eq!(lab.flavour(Host::Tertiary), Flavour::Plain);
    let plain = lab.exec_ok(
        Host::Tertiary,
        "cat /proc/1/comm; test -e /run/systemd/system || echo no-systemd",
    );
    assert_eq!(
        plain.split_whitespace().collect::<Vec<_>>(),
        ["ha-lab-init", "no-systemd"]
    );
}
