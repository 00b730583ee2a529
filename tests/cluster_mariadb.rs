//! The cluster as the servers show it, not as the config names it: operations after a
//! switchover act on the live roles, two runs exclude each other, status writes nothing a
//! fenced node would keep, and a primary with two replicas is set up, promoted, rejoined
//! and switched over.

use std::collections::BTreeMap;

use crate::util::Run;
use crate::util::lab::{Host, Lab, lab};

fn state(lab: &Lab, name: &str) -> String {
    let dir = format!("{}/state-{name}", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn ha(lab: &Lab, state: &str, args: &[&str]) -> Run {
    lab.ha_setup_with(&[("HA_SETUP_STATE_DIR", state)], args)
}

/// A fresh pair set up by init, with an application table.
fn pair(lab: &Lab, name: &str) -> (String, String) {
    lab.reset();
    lab.sql_ok(
        Host::Primary,
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1), (2), (3);",
    );
    let config = lab.write_config(name, "");
    let state = state(lab, name);
    ha(lab, &state, &["init", "-c", &config, "--yes"]).expect_code(0);
    (config, state)
}

/// Where a node replicates from (its Master_Host), or "" when it does not.
fn source_of(lab: &Lab, host: Host) -> String {
    lab.exec_ok(
        host,
        "mariadb -e 'SHOW SLAVE STATUS\\G' | sed -n 's/^ *Master_Host: //p'",
    )
    .trim()
    .to_owned()
}

/// Restarts a node's MariaDB over SSH (so the daemon has a reaper; tests/lab/README.md).
fn restart(lab: &Lab, host: Host) {
    lab.ssh(host, "service mariadb restart >/dev/null 2>&1")
        .expect_code(0);
}

/// `domain-server -> seq` of a node's `gtid_binlog_state`: the last transaction each
/// server wrote, as this node's binary log has it.
fn binlog_state(lab: &Lab, host: Host) -> BTreeMap<(u32, u32), u64> {
    lab.sql_ok(host, "SELECT @@gtid_binlog_state")
        .split(',')
        .filter_map(|gtid| {
            let mut parts = gtid.trim().split('-').map(|p| p.parse::<u64>().ok());
            Some((
                (parts.next()?? as u32, parts.next()?? as u32),
                parts.next()??,
            ))
        })
        .collect()
}

/// Transactions `host` holds in its binary log that `other` never got.
fn errant(lab: &Lab, host: Host, other: Host) -> Vec<String> {
    let theirs = binlog_state(lab, other);
    binlog_state(lab, host)
        .into_iter()
        .filter(|(key, seq)| theirs.get(key).is_none_or(|have| have < seq))
        .map(|((domain, server), seq)| format!("{domain}-{server}-{seq}"))
        .collect()
}

#[test]
#[ignore = "needs the lab"]
fn init_after_a_switchover_repairs_the_live_primarys_replica() {
    let lab = lab();
    let (config, state) = pair(&lab, "after-switchover");
    ha(&lab, &state, &["switchover", "-c", &config, "--yes"]).expect_code(0);
    // The config's [primary] is the replica now; its SQL thread stops, and the live
    // primary takes writes meanwhile.
    lab.sql_ok(Host::Primary, "STOP SLAVE SQL_THREAD");
    lab.sql_ok(Host::Secondary, "INSERT INTO app.t VALUES (20), (21)");
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(
        (code, &report["link"]),
        (Some(4), &"broken".into()),
        "{report}"
    );

    let init = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    init.expect_code(0);
    assert!(
        init.stderr.contains("The primary now is secondary"),
        "{init:?}"
    );
    // Nothing reversed: the live primary still takes writes, the old one follows it.
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "0");
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "1");
    assert_eq!(source_of(&lab, Host::Primary), lab.addr(Host::Secondary));
    assert_eq!(source_of(&lab, Host::Secondary), "");
    lab.wait_for_sql(Host::Primary, "SELECT COUNT(*) FROM app.t", "5");
    // It was repaired, not re-seeded: its data directory was never moved aside.
    lab.exec(
        Host::Primary,
        "ls -d /var/lib/mysql/.ha-setup-old/* 2>/dev/null",
    )
    .expect_code(2);
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
}

#[test]
#[ignore = "needs the lab"]
fn rebuild_after_both_restart_read_only_reseeds_the_replica_never_the_primary() {
    let lab = lab();
    let (config, state) = pair(&lab, "rebuild-fenced");
    ha(&lab, &state, &["switchover", "-c", &config, "--yes"]).expect_code(0);
    lab.sql_ok(Host::Secondary, "INSERT INTO app.t VALUES (30)");
    lab.wait_for_sql(Host::Primary, "SELECT COUNT(*) FROM app.t", "4");
    // A power cycle: both come back read-only (fenced by their config).
    restart(&lab, Host::Primary);
    restart(&lab, Host::Secondary);
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "1");
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "1");

    // The live primary is never the node re-seeded.
    let refused = ha(
        &lab,
        &state,
        &["recover", "rebuild", "secondary", "-c", &config, "--yes"],
    );
    assert_eq!(refused.code, Some(3), "{refused:?}");
    assert!(
        refused.stderr.contains("never re-seeds the primary"),
        "{refused:?}"
    );
    // init refuses too, and says to unfence the rightful primary first.
    let init = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    assert_eq!(init.code, Some(3), "{init:?}");
    assert!(init.stderr.contains("recover unfence"), "{init:?}");

    // Without a name, rebuild picks the node that is not the primary its replica follows.
    let rebuild = ha(
        &lab,
        &state,
        &["recover", "rebuild", "-c", &config, "--yes"],
    );
    rebuild.expect_code(0);
    assert!(
        rebuild
            .stdout
            .contains("primary holds a fresh copy of secondary's data"),
        "{rebuild:?}"
    );
    // The primary's data is whole and it stays fenced: rebuild opens no writes.
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT COUNT(*) FROM app.t"),
        "4"
    );
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "1");
    assert_eq!(source_of(&lab, Host::Primary), lab.addr(Host::Secondary));
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT COUNT(*) FROM app.t"), "4");
}

#[test]
#[ignore = "needs the lab"]
fn two_switchovers_at_once_one_is_refused_and_status_writes_nothing_errant() {
    let lab = lab();
    let (config, state) = pair(&lab, "concurrent");
    let done = std::sync::atomic::AtomicBool::new(false);
    let (runs, statuses) = std::thread::scope(|scope| {
        // status in a loop meanwhile, canary and all: it must never write into a node
        // that is being fenced.
        let watcher = scope.spawn(|| {
            let mut count = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                ha(&lab, &state, &["status", "-c", &config, "--format", "json"]);
                count += 1;
            }
            count
        });
        let first = scope.spawn(|| ha(&lab, &state, &["switchover", "-c", &config, "--yes"]));
        let second = scope.spawn(|| ha(&lab, &state, &["switchover", "-c", &config, "--yes"]));
        let runs = [first.join().unwrap(), second.join().unwrap()];
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (runs, watcher.join().unwrap())
    });
    let mut codes: Vec<Option<i32>> = runs.iter().map(|r| r.code).collect();
    codes.sort();
    assert_eq!(codes, [Some(0), Some(3)], "{runs:?}");
    let refused = runs.iter().find(|r| r.code == Some(3)).unwrap();
    assert!(refused.stderr.contains("lock"), "{refused:?}");
    assert!(statuses > 0);
    // One switchover happened, and no node holds a transaction the other lacks.
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "0");
    lab.sql_ok(Host::Secondary, "INSERT INTO app.t VALUES (40)");
    lab.wait_for_sql(Host::Primary, "SELECT COUNT(*) FROM app.t", "4");
    assert_eq!(
        errant(&lab, Host::Primary, Host::Secondary),
        Vec::<String>::new()
    );
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
    // The lock is gone once the run ends: the next run takes it.
    ha(&lab, &state, &["switchover", "-c", &config, "--yes"]).expect_code(0);
    lab.exec(Host::Primary, "test ! -e /var/lib/ha-setup/lock.json")
        .expect_code(0);
}

/// A config naming the three lab hosts db1 (the primary to start from), db2 and db3.
fn three(lab: &Lab, name: &str) -> String {
    let path = format!("{}/{name}.toml", lab.var("HA_LAB_ROOT"));
    let node = |host: Host, role: &str| {
        format!(
            "host = \"{}\"\nssh_user = \"root\"\nidentity_file = \"{}\"\n{role}",
            lab.addr(host),
            lab.var("HA_LAB_KEY")
        )
    };
    let text = format!(
        "engine = \"mariadb\"\n\n[nodes.db1]\n{}\n[nodes.db2]\n{}\n[nodes.db3]\n{}\n\
         [ssh]\nknown_hosts = \"{}\"\nhost_key_policy = \"strict\"\n",
        node(Host::Primary, "role = \"primary\"\n"),
        node(Host::Secondary, ""),
        node(Host::Tertiary, ""),
        lab.var("HA_LAB_KNOWN_HOSTS"),
    );
    std::fs::write(&path, text).expect("the lab root is writable");
    path
}

fn roles(report: &serde_json::Value) -> Vec<(String, String)> {
    report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or("").to_owned(),
                n["role"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
#[ignore = "needs the lab"]
fn a_primary_with_two_replicas_survives_losing_it_and_switches_back() {
    let lab = lab();
    lab.reset();
    lab.sql_ok(
        Host::Primary,
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1), (2), (3);",
    );
    let config = three(&lab, "three");
    let state = state(&lab, "three");

    let init = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    init.expect_code(0);
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["link"], "alive", "{report}");
    assert_eq!(
        roles(&report),
        pairs(&[("db1", "primary"), ("db2", "replica"), ("db3", "replica")])
    );
    for host in [Host::Secondary, Host::Tertiary] {
        assert_eq!(source_of(&lab, host), lab.addr(Host::Primary));
        assert_eq!(lab.sql_ok(host, "SELECT COUNT(*) FROM app.t"), "3");
    }
    // A second init changes nothing.
    let again = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    again.expect_code(0);
    assert!(again.stdout.contains("nothing to change"), "{again:?}");

    // db3 falls behind (its replication stopped), db2 keeps up; then db1 is lost.
    lab.sql_ok(Host::Tertiary, "STOP SLAVE");
    lab.sql_ok(Host::Primary, "INSERT INTO app.t VALUES (4), (5)");
    lab.wait_for_sql(Host::Secondary, "SELECT COUNT(*) FROM app.t", "5");
    assert_eq!(
        lab.sql_ok(Host::Tertiary, "SELECT COUNT(*) FROM app.t"),
        "3"
    );
    lab.exec_ok(
        Host::Primary,
        "p=$(cat /run/mysqld/mysqld.pid); pp=$(ps -o ppid= -p \"$p\" | tr -d ' '); kill -9 \"$pp\" \"$p\"; \
         while kill -0 \"$p\" 2>/dev/null; do sleep 0.1; done",
    );

    // promote picks the replica that has the most, and the other follows it.
    let promote = ha(
        &lab,
        &state,
        &["recover", "promote", "-c", &config, "--yes"],
    );
    promote.expect_code(0);
    assert!(promote.stdout.contains("db2 is the primary"), "{promote:?}");
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "0");
    assert_eq!(source_of(&lab, Host::Tertiary), lab.addr(Host::Secondary));
    lab.wait_for_sql(Host::Tertiary, "SELECT COUNT(*) FROM app.t", "5");
    lab.sql_ok(Host::Secondary, "INSERT INTO app.t VALUES (6)");
    lab.wait_for_sql(Host::Tertiary, "SELECT COUNT(*) FROM app.t", "6");

    // The old primary comes back fenced; rejoin makes it db2's replica.
    lab.ssh(
        Host::Primary,
        "rm -f /run/mysqld/mysqld.pid; service mariadb start >/dev/null 2>&1",
    )
    .expect_code(0);
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "1");
    ha(&lab, &state, &["recover", "rejoin", "-c", &config, "--yes"]).expect_code(0);
    lab.wait_for_sql(Host::Primary, "SELECT COUNT(*) FROM app.t", "6");
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(
        roles(&report),
        pairs(&[("db1", "replica"), ("db2", "primary"), ("db3", "replica")])
    );

    // With two replicas, a switchover names its new primary.
    let unnamed = ha(&lab, &state, &["switchover", "-c", &config, "--yes"]);
    assert_eq!(unnamed.code, Some(2), "{unnamed:?}");
    assert!(unnamed.stderr.contains("--to NODE"), "{unnamed:?}");
    let unknown = ha(
        &lab,
        &state,
        &["switchover", "--to", "db9", "-c", &config, "--yes"],
    );
    assert_eq!(unknown.code, Some(2), "{unknown:?}");
    assert!(unknown.stderr.contains("db1, db2, db3"), "{unknown:?}");

    // And back to db1, the others following it.
    ha(
        &lab,
        &state,
        &["switchover", "--to", "db1", "-c", &config, "--yes"],
    )
    .expect_code(0);
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "0");
    for host in [Host::Secondary, Host::Tertiary] {
        assert_eq!(source_of(&lab, host), lab.addr(Host::Primary));
        assert_eq!(lab.sql_ok(host, "SELECT @@read_only"), "1");
    }
    lab.sql_ok(Host::Primary, "INSERT INTO app.t VALUES (7)");
    lab.wait_for_sql(Host::Tertiary, "SELECT COUNT(*) FROM app.t", "7");
    lab.wait_for_sql(Host::Secondary, "SELECT COUNT(*) FROM app.t", "7");

    // rebuild NODE re-seeds that node from the primary now.
    let rebuild = ha(
        &lab,
        &state,
        &["recover", "rebuild", "db3", "-c", &config, "--yes"],
    );
    rebuild.expect_code(0);
    assert_eq!(
        lab.sql_ok(Host::Tertiary, "SELECT COUNT(*) FROM app.t"),
        "7"
    );
    lab.exec(Host::Tertiary, "ls -d /var/lib/mysql/.ha-setup-old/*")
        .expect_code(0);
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
}
