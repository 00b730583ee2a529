//! A PostgreSQL hot standby on the lab (the MAAS setup): init seeds and links it, status
//! reads it, the standby refuses writes, promote after the primary's crash, and the old
//! primary restarted comes back fenced.

use std::time::{Duration, Instant};

use crate::util::Run;
use crate::util::lab::{Host, Lab, lab};

fn state(lab: &Lab, name: &str) -> String {
    let dir = format!("{}/state-pg-{name}", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn ha(lab: &Lab, state: &str, args: &[&str]) -> Run {
    lab.ha_setup_with(&[("HA_SETUP_STATE_DIR", state)], args)
}

/// The lab pair's config with engine = "postgresql".
fn config(lab: &Lab, name: &str) -> String {
    let path = lab.write_config(name, "");
    let text = std::fs::read_to_string(&path).expect("written");
    std::fs::write(
        &path,
        text.replace("engine = \"mariadb\"", "engine = \"postgresql\""),
    )
    .expect("the lab root is writable");
    path
}

/// psql as postgres on a host's cluster, in database `db`.
fn psql(lab: &Lab, host: Host, db: &str, sql: &str) -> Run {
    lab.exec(
        host,
        &format!(
            "cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -d {db} -c \"{}\"",
            sql.replace('"', "\\\"")
        ),
    )
}

#[track_caller]
fn psql_ok(lab: &Lab, host: Host, db: &str, sql: &str) -> String {
    let run = psql(lab, host, db, sql);
    run.expect_code(0);
    run.stdout.trim().to_owned()
}

/// Waits until `sql` prints `expected` (a bound against a hang, not a speed test).
#[track_caller]
fn wait_for(lab: &Lab, host: Host, db: &str, sql: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = psql(lab, host, db, sql);
        if run.code == Some(0) && run.stdout.trim() == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{sql}` on {host:?} never printed {expected}: {run:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs the lab"]
fn a_hot_standby_streams_refuses_writes_and_takes_over_when_the_primary_is_lost() {
    let lab = lab();
    lab.reset();
    psql_ok(&lab, Host::Primary, "postgres", "CREATE DATABASE app");
    psql_ok(
        &lab,
        Host::Primary,
        "app",
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
    );
    // The standby's own cluster holds data of its own: it is moved aside, not deleted.
    psql_ok(&lab, Host::Secondary, "postgres", "CREATE DATABASE mine");
    let config = config(&lab, "pg-pair");
    let state = state(&lab, "pair");

    let init = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    init.expect_code(0);
    assert!(
        init.stderr.contains("the canary arrived on secondary"),
        "{init:?}"
    );
    assert_eq!(
        psql_ok(&lab, Host::Secondary, "app", "SELECT count(*) FROM t"),
        "5000"
    );
    let moved = lab.exec_ok(
        Host::Secondary,
        "ls -d /var/lib/postgresql/15/.ha-setup-old-15-main-*",
    );
    assert_eq!(moved.lines().count(), 1, "{moved}");
    // Rows written after init arrive; the standby refuses writes of its own.
    psql_ok(
        &lab,
        Host::Primary,
        "app",
        "INSERT INTO t VALUES (5001, 'after')",
    );
    wait_for(
        &lab,
        Host::Secondary,
        "app",
        "SELECT v FROM t WHERE id = 5001",
        "after",
    );
    let refused = psql(
        &lab,
        Host::Secondary,
        "app",
        "INSERT INTO t VALUES (9, 'x')",
    );
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains("read-only transaction"),
        "{refused:?}"
    );
    // Through a slot of its own, over TLS, by a role that can only replicate.
    assert_eq!(
        psql_ok(
            &lab,
            Host::Primary,
            "postgres",
            "SELECT s.active::text || ' ' || r.ssl::text FROM pg_replication_slots s, pg_stat_replication p JOIN pg_stat_ssl r USING (pid) WHERE s.slot_name = 'ha_setup_secondary' AND p.application_name = 'secondary'"
        ),
        "true true"
    );
    assert_eq!(
        psql_ok(
            &lab,
            Host::Primary,
            "postgres",
            "SELECT rolsuper::text || rolreplication::text FROM pg_authid WHERE rolname = 'ha_repl'"
        ),
        "falsetrue"
    );
    // The password is in no log and no command line.
    let password = lab.exec_ok(Host::Primary, "cat /etc/ha-setup/replication-password");
    assert!(password.len() >= 20);
    for host in [Host::Primary, Host::Secondary] {
        lab.exec(
            host,
            &format!(
                "! grep -rqF -- '{password}' /var/log/postgresql /etc/postgresql/15/main/conf.d"
            ),
        )
        .expect_code(0);
    }

    // A second init changes nothing.
    let again = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    again.expect_code(0);
    assert!(again.stdout.contains("nothing to change"), "{again:?}");

    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{status}");
    assert_eq!(status["link"], "alive");
    assert_eq!(status["nodes"][1]["role"], "replica");
    assert_eq!(status["nodes"][1]["io_running"], true);

    // The primary crashes.
    lab.exec_ok(Host::Primary, "pg_ctlcluster -m immediate 15 main stop");
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(4), "{status}");
    assert_ne!(status["link"], "alive");

    let promote = ha(
        &lab,
        &state,
        &["recover", "promote", "-c", &config, "--yes"],
    );
    promote.expect_code(0);
    assert!(
        promote.stderr.contains("secondary took a write"),
        "{promote:?}"
    );
    psql_ok(
        &lab,
        Host::Secondary,
        "app",
        "INSERT INTO t VALUES (5002, 'promoted')",
    );

    // The old primary comes back, by an operator's hand or its host's: fenced.
    lab.exec_ok(Host::Primary, "pg_ctlcluster 15 main start");
    assert_eq!(
        psql_ok(&lab, Host::Primary, "app", "SELECT pg_is_in_recovery()"),
        "t"
    );
    let refused = psql(
        &lab,
        Host::Primary,
        "app",
        "SET default_transaction_read_only = off; INSERT INTO t VALUES (9, 'x')",
    );
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains("read-only transaction"),
        "{refused:?}"
    );
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(4), "{status}");
    assert_eq!(status["nodes"][0]["read_only"], true);
    assert_eq!(status["nodes"][1]["role"], "primary");
    assert_eq!(status["nodes"][1]["read_only"], false);

    // Unfence is refused while another node takes writes.
    let unfence = ha(
        &lab,
        &state,
        &["recover", "unfence", "-c", &config, "--yes"],
    );
    assert_eq!(unfence.code, Some(3), "{unfence:?}");
}

#[test]
#[ignore = "needs the lab"]
fn a_restarted_primary_comes_back_fenced_and_unfence_opens_it() {
    let lab = lab();
    lab.reset();
    let config = config(&lab, "pg-unfence");
    let state = state(&lab, "unfence");
    ha(&lab, &state, &["init", "-c", &config, "--yes"]).expect_code(0);
    lab.exec_ok(Host::Primary, "pg_ctlcluster -m fast 15 main restart");
    let refused = psql(&lab, Host::Primary, "postgres", "CREATE TABLE x (i int)");
    assert!(
        refused.stderr.contains("read-only transaction"),
        "{refused:?}"
    );
    let unfence = ha(
        &lab,
        &state,
        &["recover", "unfence", "-c", &config, "--yes"],
    );
    unfence.expect_code(0);
    psql_ok(&lab, Host::Primary, "postgres", "CREATE TABLE x (i int)");
    // The standby followed the new timeline.
    wait_for(
        &lab,
        Host::Secondary,
        "postgres",
        "SELECT count(*) FROM pg_class WHERE relname = 'x'",
        "1",
    );
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{status}");
    assert_eq!(status["link"], "alive");
}
