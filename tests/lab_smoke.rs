//! The lab itself: both hosts answer over real SSH, each runs its own databases, and a cut
//! host stops answering until healed.

use std::time::{Duration, Instant};

use crate::util::lab::{Host, lab};

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
