//! `ha-setup recover …` on the lab's real MariaDB pair, after real failures: a primary
//! killed with SIGKILL, a crashed primary coming back, an errant transaction.

use std::time::{Duration, Instant};

use crate::util::lab::{Host, Lab, lab};

fn state(lab: &Lab, name: &str) -> String {
    let dir = format!("{}/state-{name}", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
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
    lab.ha_setup_with(
        &[("HA_SETUP_STATE_DIR", &state)],
        &["init", "-c", &config, "--yes"],
    )
    .expect_code(0);
    (config, state)
}

fn ha(lab: &Lab, state: &str, args: &[&str]) -> crate::util::Run {
    lab.ha_setup_with(&[("HA_SETUP_STATE_DIR", state)], args)
}

/// Kills the primary's MariaDB and its mysqld_safe (which would restart it) with SIGKILL.
fn kill_primary_database(lab: &Lab) {
    lab.exec_ok(
        Host::Primary,
        "p=$(cat /run/mysqld/mysqld.pid); pp=$(ps -o ppid= -p \"$p\" | tr -d ' '); kill -9 \"$pp\" \"$p\"; \
         while kill -0 \"$p\" 2>/dev/null; do sleep 0.1; done",
    );
}

fn start_primary_database(lab: &Lab) {
    // Over SSH, so the daemon has a reaper (see tests/lab/README.md).
    lab.ssh(
        Host::Primary,
        "rm -f /run/mysqld/mysqld.pid; service mariadb start >/dev/null 2>&1",
    )
    .expect_code(0);
}

#[test]
#[ignore = "needs the lab"]
fn promote_after_losing_the_primary_then_rejoin_it() {
    let lab = lab();
    let (config, state) = pair(&lab, "promote");

    // Refused while the primary is alive and writable: exit 3, with what was seen.
    let refused = ha(
        &lab,
        &state,
        &["recover", "promote", "-c", &config, "--yes"],
    );
    assert_eq!(refused.code, Some(3), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("still answers as a writable primary"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("WRITABLE"), "{refused:?}");
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "1");

    lab.sql_ok(Host::Primary, "INSERT INTO app.t VALUES (4)");
    lab.wait_for_sql(Host::Secondary, "SELECT COUNT(*) FROM app.t", "4");
    kill_primary_database(&lab);

    let promote = ha(
        &lab,
        &state,
        &["recover", "promote", "-c", &config, "--yes"],
    );
    promote.expect_code(0);
    assert!(
        promote
            .stderr
            .contains("last transaction received from the old primary"),
        "{promote:?}"
    );
    // Every row that had replicated is there, and writes are accepted.
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT COUNT(*) FROM app.t"),
        "4"
    );
    lab.sql_ok(Host::Secondary, "INSERT INTO app.t VALUES (5)");
    // A second promote has nothing to do.
    ha(
        &lab,
        &state,
        &["recover", "promote", "-c", &config, "--yes"],
    )
    .expect_code(0);

    // The crashed primary comes back read-only (fenced by its config).
    start_primary_database(&lab);
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "1");
    let status = ha(&lab, &state, &["status", "-c", &config, "--format", "json"]);
    assert_eq!(status.code, Some(4), "{status:?}");
    let report: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(report["nodes"][1]["role"], "primary", "{report}");
    assert_eq!(report["nodes"][1]["read_only"], false, "{report}");
    assert!(status.stdout.contains("recover rejoin"), "{status:?}");
    // Unfencing it would make two primaries: refused.
    let unfence = ha(
        &lab,
        &state,
        &["recover", "unfence", "-c", &config, "--yes"],
    );
    assert_eq!(unfence.code, Some(3), "{unfence:?}");

    // Rejoin: the old primary replicates from the new one.
    let rejoin = ha(&lab, &state, &["recover", "rejoin", "-c", &config, "--yes"]);
    rejoin.expect_code(0);
    lab.wait_for_sql(Host::Primary, "SELECT COUNT(*) FROM app.t", "5");
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["link"], "alive", "{report}");
    assert_eq!(report["nodes"][0]["role"], "replica", "{report}");
    // The history has the recovery.
    let history = ha(&lab, &state, &["history", "-c", &config]);
    assert!(history.stdout.contains("recover-promote"), "{history:?}");
}

#[test]
#[ignore = "needs the lab"]
fn rejoin_refuses_an_old_primary_with_errant_transactions() {
    let lab = lab();
    let (config, state) = pair(&lab, "errant");
    // A write the secondary never receives: replication is stopped when it happens.
    lab.sql_ok(Host::Secondary, "STOP SLAVE");
    lab.sql_ok(Host::Primary, "INSERT INTO app.t VALUES (99)");
    let errant = lab.sql_ok(Host::Primary, "SELECT @@gtid_binlog_pos");
    kill_primary_database(&lab);
    lab.sql_ok(Host::Secondary, "START SLAVE");
    ha(
        &lab,
        &state,
        &["recover", "promote", "-c", &config, "--yes"],
    )
    .expect_code(0);
    start_primary_database(&lab);

    let rejoin = ha(&lab, &state, &["recover", "rejoin", "-c", &config, "--yes"]);
    assert_eq!(rejoin.code, Some(3), "{rejoin:?}");
    assert!(rejoin.stderr.contains("errant"), "{rejoin:?}");
    assert!(
        rejoin.stderr.contains(&errant),
        "{errant} not named: {rejoin:?}"
    );
    assert!(rejoin.stderr.contains("recover rebuild"), "{rejoin:?}");
    // Nothing was discarded: the row is still on the old primary, which replicates from nowhere.
    assert_eq!(
        lab.sql_ok(Host::Primary, "SELECT COUNT(*) FROM app.t WHERE id = 99"),
        "1"
    );
    assert_eq!(lab.sql_ok(Host::Primary, "SHOW SLAVE STATUS"), "");
}

#[test]
#[ignore = "needs the lab"]
fn a_restarted_primary_comes_back_fenced_and_unfence_reopens_it() {
    let lab = lab();
    let (config, state) = pair(&lab, "unfence");
    lab.ssh(Host::Primary, "service mariadb restart >/dev/null 2>&1")
        .expect_code(0);
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "1");
    let status = ha(&lab, &state, &["status", "-c", &config]);
    assert_eq!(status.code, Some(4), "{status:?}");
    assert!(status.stdout.contains("recover unfence"), "{status:?}");

    let plan = ha(
        &lab,
        &state,
        &["recover", "unfence", "-c", &config, "--dry-run"],
    );
    plan.expect_code(0);
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "1");
    ha(
        &lab,
        &state,
        &["recover", "unfence", "-c", &config, "--yes"],
    )
    .expect_code(0);
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "0");
    // The replica reconnects on its own after the restart (within its 10 s retry).
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let status = ha(&lab, &state, &["status", "-c", &config]);
        if status.code == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pair never became healthy: {status:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
#[ignore = "needs the lab"]
fn switchover_under_writes_loses_none_and_switches_back() {
    let lab = lab();
    let (config, state) = pair(&lab, "switchover");
    // The application's writer: a user without SUPER, so read_only stops it as it would
    // stop the application. It records each insert the server accepted.
    lab.sql_ok(
        Host::Primary,
        "CREATE TABLE app.w (id INT PRIMARY KEY); \
         CREATE USER writer@localhost IDENTIFIED BY 'w'; GRANT INSERT, SELECT ON app.* TO writer@localhost;",
    );
    let writer = lab.command()
        .args(["exec", "primary", "sh", "-c"])
        .arg(
            "rm -f /tmp/accepted; for i in $(seq 1 400); do \
             mariadb -u writer -pw -e \"INSERT INTO app.w VALUES ($i)\" 2>/dev/null && echo $i >> /tmp/accepted; \
             sleep 0.02; done",
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the writer starts");
    std::thread::sleep(Duration::from_secs(2));

    let plan = ha(&lab, &state, &["switchover", "-c", &config, "--dry-run"]);
    plan.expect_code(0);
    let switch = ha(&lab, &state, &["switchover", "-c", &config, "--yes"]);
    let mut writer = writer;
    let _ = writer.wait();
    switch.expect_code(0);

    let accepted = lab
        .exec_ok(Host::Primary, "wc -l < /tmp/accepted")
        .trim()
        .to_owned();
    assert!(
        accepted.parse::<u32>().unwrap() > 10,
        "the writer barely wrote: {accepted}"
    );
    // Every write the old primary accepted is on the new one.
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT COUNT(*) FROM app.w"),
        accepted
    );
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "0");
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "1");
    lab.sql_ok(Host::Secondary, "INSERT INTO app.t VALUES (10)");
    lab.wait_for_sql(
        Host::Primary,
        "SELECT COUNT(*) FROM app.t WHERE id = 10",
        "1",
    );

    // And back.
    ha(&lab, &state, &["switchover", "-c", &config, "--yes"]).expect_code(0);
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "0");
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["nodes"][1]["role"], "replica", "{report}");
}

#[test]
#[ignore = "needs the lab"]
fn rebuild_reseeds_a_secondary_whose_data_was_broken() {
    let lab = lab();
    let (config, state) = pair(&lab, "rebuild");
    // Break the secondary: a row deleted behind replication's back, then changed on the
    // primary, stops the SQL thread (row not found).
    lab.sql_ok(
        Host::Secondary,
        "SET SESSION sql_log_bin = 0; SET GLOBAL read_only = OFF; DELETE FROM app.t WHERE id = 1; SET GLOBAL read_only = ON;",
    );
    lab.sql_ok(Host::Primary, "UPDATE app.t SET id = 100 WHERE id = 1");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = ha(&lab, &state, &["status", "-c", &config, "--format", "json"]);
        if status.stdout.contains("\"link\": \"broken\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the link never broke: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let rebuild = ha(
        &lab,
        &state,
        &["recover", "rebuild", "-c", &config, "--yes"],
    );
    rebuild.expect_code(0);
    assert_eq!(
        lab.sql_ok(
            Host::Secondary,
            "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t"
        ),
        "2,3,100"
    );
    ha(&lab, &state, &["status", "-c", &config]).expect_code(0);
    // Both earlier datadirs are kept, moved aside.
    let aside = lab.exec_ok(
        Host::Secondary,
        "ls -d /var/lib/mysql/.ha-setup-old/* | wc -l",
    );
    assert_eq!(aside.trim(), "2", "{aside}");
}

#[test]
#[ignore = "needs the lab"]
fn restore_a_bundle_file_onto_a_fresh_host() {
    let lab = lab();
    lab.reset();
    lab.sql_ok(
        Host::Primary,
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1), (2), (3);",
    );
    let config = lab.write_config("restore", "");
    let state = state(&lab, "restore");
    let bundle = format!("{}/restore-test.bundle", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_file(&bundle);
    ha(
        &lab,
        &state,
        &["bundle", "create", "-c", &config, "--out", &bundle],
    )
    .expect_code(0);

    // The secondary is a fresh install: restore makes it a primary with the bundle's data.
    let args = [
        "recover",
        "restore",
        "-c",
        &config,
        "--bundle",
        &bundle,
        "--target",
        "secondary",
        "--yes",
    ];
    let restore = ha(&lab, &state, &args);
    restore.expect_code(0);
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT COUNT(*) FROM app.t"),
        "3"
    );
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "0");
    lab.sql_ok(Host::Secondary, "INSERT INTO app.t VALUES (4)");
    // Its fresh datadir was moved aside, not deleted; a second run changes nothing.
    lab.exec(Host::Secondary, "ls -d /var/lib/mysql/.ha-setup-old/*")
        .expect_code(0);
    ha(&lab, &state, &args).expect_code(0);
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT COUNT(*) FROM app.t"),
        "4"
    );

    // Onto a host with data of its own: refused (exit 3) unless --force.
    let refused = ha(
        &lab,
        &state,
        &[
            "recover", "restore", "-c", &config, "--bundle", &bundle, "--target", "primary",
            "--yes",
        ],
    );
    assert_eq!(refused.code, Some(3), "{refused:?}");
    // A corrupted bundle is refused before anything on the target is replaced.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&bundle, &bytes).unwrap();
    lab.reset();
    let broken = ha(
        &lab,
        &state,
        &[
            "recover",
            "restore",
            "-c",
            &config,
            "--bundle",
            &bundle,
            "--target",
            "secondary",
            "--yes",
        ],
    );
    assert_eq!(broken.code, Some(1), "{broken:?}");
    lab.exec(Host::Secondary, "test ! -e /var/lib/mysql/.ha-setup-old/*")
        .expect_code(0);
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "0");
    let _ = std::fs::remove_file(&bundle);
}
