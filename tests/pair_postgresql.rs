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
    // The standby's cluster holds a database of its own: refused before anything changes.
    psql_ok(&lab, Host::Secondary, "postgres", "CREATE DATABASE mine");
    let config = config(&lab, "pg-pair");
    let state = state(&lab, "pair");

    let refused = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("databases of its own (mine)"),
        "{refused:?}"
    );
    lab.exec(
        Host::Primary,
        "test ! -e /etc/postgresql/15/main/conf.d/90-ha-setup.conf",
    )
    .expect_code(0);
    // Dropped: the cluster, now only PostgreSQL's own, is moved aside whole.
    psql_ok(&lab, Host::Secondary, "postgres", "DROP DATABASE mine");
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
    let standbys = status["nodes"][0]["details"]["standbys"]
        .as_str()
        .unwrap_or_default();
    assert!(
        standbys.starts_with("secondary streaming lag_bytes="),
        "{status}"
    );
    let slots = status["nodes"][0]["details"]["slots"]
        .as_str()
        .unwrap_or_default();
    assert!(
        slots.starts_with("ha_setup_secondary active=true wal_status=reserved"),
        "{status}"
    );
    let nagios = ha(
        &lab,
        &state,
        &["status", "-c", &config, "--format", "nagios"],
    );
    assert_eq!(nagios.code, Some(0), "{nagios:?}");
    assert!(
        nagios.stdout.starts_with("HA-SETUP OK") && nagios.stdout.contains("lag=0s"),
        "{nagios:?}"
    );

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

    // Nothing diverged (the standby had all the old primary wrote): it only follows.
    let rejoin = ha(&lab, &state, &["recover", "rejoin", "-c", &config, "--yes"]);
    rejoin.expect_code(0);
    assert!(!rejoin.stderr.contains("pg_rewind"), "{rejoin:?}");
    psql_ok(
        &lab,
        Host::Secondary,
        "app",
        "INSERT INTO t VALUES (5003, 'followed')",
    );
    wait_for(
        &lab,
        Host::Primary,
        "app",
        "SELECT v FROM t WHERE id = 5003",
        "followed",
    );
    assert_eq!(
        psql_ok(
            &lab,
            Host::Primary,
            "app",
            "SELECT v FROM t WHERE id = 5002"
        ),
        "promoted"
    );
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{status}");
    assert_eq!(status["nodes"][0]["role"], "replica");
}

/// Cut off from its standby, the primary runs `sql` (WAL the standby never gets) and
/// crashes; the standby is promoted once it no longer hears it.
fn diverge_and_promote(lab: &Lab, config: &str, state: &str, sql: &str) {
    lab.block(Host::Primary, Host::Secondary);
    psql_ok(lab, Host::Primary, "postgres", sql);
    lab.exec_ok(Host::Primary, "pg_ctlcluster -m immediate 15 main stop");
    // The standby hears of the crash only when its receiver times out (the close is
    // dropped): until then promote rightly refuses. The block stays until the promote:
    // lifted earlier, the dead primary's kernel would still deliver the WAL it holds
    // unacknowledged, and the standby would have it after all.
    wait_for(
        lab,
        Host::Secondary,
        "postgres",
        "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
        "0",
    );
    ha(lab, state, &["recover", "promote", "-c", config, "--yes"]).expect_code(0);
    lab.unblock(Host::Primary, Host::Secondary);
}

#[test]
#[ignore = "needs the lab"]
fn rejoin_refuses_to_discard_transactions_the_new_primary_never_got_without_consent() {
    let lab = lab();
    lab.reset();
    let config = config(&lab, "pg-rewind");
    let state = state(&lab, "rewind");
    psql_ok(
        &lab,
        Host::Primary,
        "postgres",
        "CREATE TABLE t (id int PRIMARY KEY, v text)",
    );
    ha(&lab, &state, &["init", "-c", &config, "--yes"]).expect_code(0);
    wait_for(
        &lab,
        Host::Secondary,
        "postgres",
        "SELECT count(*) FROM pg_class WHERE relname = 't'",
        "1",
    );
    // The standby stops hearing the primary; the primary commits once more, then crashes.
    diverge_and_promote(
        &lab,
        &config,
        &state,
        "INSERT INTO t VALUES (1, 'never replicated')",
    );
    psql_ok(
        &lab,
        Host::Secondary,
        "postgres",
        "INSERT INTO t VALUES (2, 'after the promote')",
    );
    lab.exec_ok(Host::Primary, "pg_ctlcluster 15 main start");

    // By default: refused, naming the WAL range and the transaction.
    let refused = ha(&lab, &state, &["recover", "rejoin", "-c", &config, "--yes"]);
    assert_eq!(refused.code, Some(3), "{refused:?}");
    assert!(refused.stderr.contains("1 transaction"), "{refused:?}");
    assert!(refused.stderr.contains("COMMIT"), "{refused:?}");
    assert!(refused.stderr.contains("--rewind"), "{refused:?}");
    assert_eq!(
        psql_ok(
            &lab,
            Host::Primary,
            "postgres",
            "SELECT v FROM t WHERE id = 1"
        ),
        "never replicated"
    );

    // With consent: rewound, its WAL kept aside first, and it streams from the new primary.
    let rewound = ha(
        &lab,
        &state,
        &["recover", "rejoin", "-c", &config, "--rewind", "--yes"],
    );
    rewound.expect_code(0);
    let kept = lab.exec_ok(
        Host::Primary,
        "ls -d /var/lib/postgresql/15/.ha-setup-wal-before-rewind-15-main-*/",
    );
    assert_eq!(kept.lines().count(), 1, "{kept}");
    lab.exec(
        Host::Primary,
        &format!("ls {}/ | grep -q '^0000000'", kept.trim()),
    )
    .expect_code(0);
    wait_for(
        &lab,
        Host::Primary,
        "postgres",
        "SELECT v FROM t WHERE id = 2",
        "after the promote",
    );
    assert_eq!(
        psql_ok(
            &lab,
            Host::Primary,
            "postgres",
            "SELECT count(*) FROM t WHERE id = 1"
        ),
        "0"
    );
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{status}");
    assert_eq!(status["link"], "alive");
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

    // rebuild: a fresh copy for the standby, its data moved aside, the link proven.
    psql_ok(
        &lab,
        Host::Primary,
        "postgres",
        "INSERT INTO x SELECT generate_series(1, 1000)",
    );
    let rebuild = ha(
        &lab,
        &state,
        &["recover", "rebuild", "-c", &config, "--yes"],
    );
    rebuild.expect_code(0);
    assert!(
        rebuild.stderr.contains("the canary arrived on secondary"),
        "{rebuild:?}"
    );
    let moved = lab.exec_ok(
        Host::Secondary,
        "ls -d /var/lib/postgresql/15/.ha-setup-old-15-main-*",
    );
    assert_eq!(moved.lines().count(), 2, "{moved}");
    assert_eq!(
        psql_ok(&lab, Host::Secondary, "postgres", "SELECT count(*) FROM x"),
        "1000"
    );
    assert_eq!(
        psql_ok(
            &lab,
            Host::Primary,
            "postgres",
            "SELECT active FROM pg_replication_slots WHERE slot_name = 'ha_setup_secondary'"
        ),
        "t"
    );
}

#[test]
#[ignore = "needs the lab"]
fn switchover_there_and_back_loses_no_acknowledged_write() {
    let lab = lab();
    lab.reset();
    let config = config(&lab, "pg-switch");
    let state = state(&lab, "switch");
    psql_ok(
        &lab,
        Host::Primary,
        "postgres",
        "CREATE TABLE w (id int PRIMARY KEY)",
    );
    ha(&lab, &state, &["init", "-c", &config, "--yes"]).expect_code(0);
    // An application writing on the primary throughout, one transaction per row; it prints
    // each id the server acknowledged.
    let writer = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            lab.exec(
                Host::Primary,
                "cd / && i=0; while [ $i -lt 150 ]; do i=$((i+1)); \
                 runuser -u postgres -- psql -X -q -c \"INSERT INTO w VALUES ($i)\" postgres 2>/dev/null && echo $i; \
                 sleep 0.05; done",
            )
        });
        std::thread::sleep(Duration::from_secs(2));
        let switch = ha(&lab, &state, &["switchover", "-c", &config, "--yes"]);
        switch.expect_code(0);
        assert!(
            switch.stderr.contains("secondary takes writes"),
            "{switch:?}"
        );
        writer.join().expect("the writer ran")
    });
    let acknowledged: Vec<&str> = writer.stdout.lines().collect();
    assert!(acknowledged.len() > 10, "{writer:?}");
    // Every write the old primary acknowledged is on the new one.
    let list = acknowledged.join(",");
    assert_eq!(
        psql_ok(
            &lab,
            Host::Secondary,
            "postgres",
            &format!("SELECT count(*) FROM w WHERE id IN ({list})")
        ),
        acknowledged.len().to_string()
    );
    // The old primary streams from the new one, without a rewind.
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{status}");
    assert_eq!(status["nodes"][0]["role"], "replica");
    assert_eq!(status["nodes"][1]["role"], "primary");
    psql_ok(
        &lab,
        Host::Secondary,
        "postgres",
        "INSERT INTO w VALUES (1000)",
    );
    wait_for(
        &lab,
        Host::Primary,
        "postgres",
        "SELECT count(*) FROM w WHERE id = 1000",
        "1",
    );

    // And back.
    let back = ha(&lab, &state, &["switchover", "-c", &config, "--yes"]);
    back.expect_code(0);
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{status}");
    assert_eq!(status["nodes"][0]["role"], "primary");
    let rows = psql_ok(&lab, Host::Primary, "postgres", "SELECT count(*) FROM w");
    psql_ok(
        &lab,
        Host::Primary,
        "postgres",
        "INSERT INTO w VALUES (1001)",
    );
    wait_for(
        &lab,
        Host::Secondary,
        "postgres",
        "SELECT count(*) FROM w",
        &(rows.parse::<u32>().unwrap() + 1).to_string(),
    );
}

#[test]
#[ignore = "needs the lab"]
fn a_bundle_file_restores_a_fresh_cluster_as_a_primary() {
    let lab = lab();
    lab.reset();
    psql_ok(&lab, Host::Primary, "postgres", "CREATE DATABASE app");
    psql_ok(
        &lab,
        Host::Primary,
        "app",
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 3000)",
    );
    let config = config(&lab, "pg-restore");
    let state = state(&lab, "restore");
    let out = format!("{}/pg-test.bundle", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_file(&out);
    let create = ha(
        &lab,
        &state,
        &["bundle", "create", "-c", &config, "--out", &out],
    );
    create.expect_code(0);
    let inspect = lab.ha_setup(&["bundle", "inspect", &out, "--format", "json"]);
    inspect.expect_code(0);
    let manifest: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(manifest["engine"], "postgresql");
    assert!(manifest["position"]["start_lsn"].is_string(), "{manifest}");
    // The secondary holds a database of its own: refused unless --force.
    psql_ok(&lab, Host::Secondary, "postgres", "CREATE DATABASE mine");
    let restore_args = [
        "recover",
        "restore",
        "-c",
        &config,
        "--bundle",
        &out,
        "--target",
        "secondary",
        "--yes",
    ];
    let refused = ha(&lab, &state, &restore_args);
    assert_eq!(refused.code, Some(3), "{refused:?}");
    assert!(refused.stderr.contains("mine"), "{refused:?}");
    psql_ok(&lab, Host::Secondary, "postgres", "DROP DATABASE mine");
    let restore = ha(&lab, &state, &restore_args);
    restore.expect_code(0);
    assert_eq!(
        psql_ok(&lab, Host::Secondary, "app", "SELECT count(*) FROM t"),
        "3000"
    );
    psql_ok(&lab, Host::Secondary, "app", "INSERT INTO t VALUES (3001)");
    // Restarted, it comes back fenced, as every node.
    lab.exec_ok(Host::Secondary, "pg_ctlcluster -m fast 15 main restart");
    assert_eq!(
        psql_ok(&lab, Host::Secondary, "app", "SELECT pg_is_in_recovery()"),
        "t"
    );
    let _ = std::fs::remove_file(&out);
}

#[test]
#[ignore = "needs the lab"]
fn bad_input_is_refused_before_anything_changes() {
    let lab = lab();
    lab.reset();
    let config = config(&lab, "pg-bad");
    let state = state(&lab, "bad");
    let untouched = |lab: &Lab| {
        lab.exec(
            Host::Primary,
            "test ! -e /etc/postgresql/15/main/conf.d/90-ha-setup.conf && ! grep -q ha-setup /etc/postgresql/15/main/pg_hba.conf",
        )
        .expect_code(0);
    };

    // The standby's slot name is held by another client on the primary.
    lab.exec_ok(
        Host::Primary,
        "cd / && runuser -u postgres -- pg_receivewal -D /tmp --slot=ha_setup_secondary --create-slot && \
         (runuser -u postgres -- pg_receivewal -D /tmp --slot=ha_setup_secondary >/dev/null 2>&1 &) && sleep 2",
    );
    let run = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("the slot ha_setup_secondary is there already"),
        "{run:?}"
    );
    untouched(&lab);
    lab.reset();

    // No cluster on the standby.
    lab.exec_ok(Host::Secondary, "pg_dropcluster --stop 15 main");
    let run = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("no PostgreSQL cluster"), "{run:?}");
    untouched(&lab);
}

#[test]
#[ignore = "needs the lab"]
fn a_dead_standbys_slot_cannot_fill_the_primarys_disk() {
    let lab = lab();
    lab.reset();
    let config = config(&lab, "pg-slot");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap()
            + "\n[postgresql]\nmax_slot_wal_keep_size = \"1GB\"\n",
    )
    .unwrap();
    let state = state(&lab, "slot");
    psql_ok(
        &lab,
        Host::Primary,
        "postgres",
        "CREATE TABLE churn (i int)",
    );
    ha(&lab, &state, &["init", "-c", &config, "--yes"]).expect_code(0);
    // The standby dies; the primary goes on writing well past the slot's bound.
    lab.exec_ok(Host::Secondary, "pg_ctlcluster -m immediate 15 main stop");
    psql_ok(
        &lab,
        Host::Primary,
        "postgres",
        "DO \\$\\$ BEGIN FOR i IN 1..80 LOOP INSERT INTO churn VALUES (i); PERFORM pg_switch_wal(); END LOOP; END \\$\\$; CHECKPOINT",
    );
    assert_eq!(
        psql_ok(
            &lab,
            Host::Primary,
            "postgres",
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'ha_setup_secondary'"
        ),
        "lost"
    );
    // The primary kept at most the bound, and status says what happened and what to do.
    let wal_bytes: u64 = lab
        .exec_ok(
            Host::Primary,
            "du -s -B1 /var/lib/postgresql/15/main/pg_wal | cut -f1",
        )
        .trim()
        .parse()
        .unwrap();
    assert!(wal_bytes < (1u64 << 30) + (256 << 20), "{wal_bytes}");
    lab.exec_ok(Host::Secondary, "pg_ctlcluster 15 main start");
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(4), "{status}");
    let slots = status["nodes"][0]["details"]["slots"]
        .as_str()
        .unwrap_or_default();
    assert!(slots.contains("wal_status=lost"), "{status}");
    // rebuild brings it back, through a slot made anew.
    let rebuild = ha(
        &lab,
        &state,
        &["recover", "rebuild", "-c", &config, "--yes"],
    );
    rebuild.expect_code(0);
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{status}");
}

#[test]
#[ignore = "needs the lab"]
fn rejoin_rewinds_without_asking_when_what_diverged_holds_no_transaction() {
    let lab = lab();
    lab.reset();
    let config = config(&lab, "pg-rewind-quiet");
    let state = state(&lab, "rewind-quiet");
    ha(&lab, &state, &["init", "-c", &config, "--yes"]).expect_code(0);
    // Cut off from its standby, the primary writes a checkpoint, and no transaction.
    diverge_and_promote(&lab, &config, &state, "CHECKPOINT");
    lab.exec_ok(Host::Primary, "pg_ctlcluster 15 main start");
    let rejoin = ha(&lab, &state, &["recover", "rejoin", "-c", &config, "--yes"]);
    rejoin.expect_code(0);
    assert!(
        rejoin.stderr.contains("with no transaction in it"),
        "{rejoin:?}"
    );
    psql_ok(
        &lab,
        Host::Secondary,
        "postgres",
        "CREATE TABLE after (i int)",
    );
    wait_for(
        &lab,
        Host::Primary,
        "postgres",
        "SELECT count(*) FROM pg_class WHERE relname = 'after'",
        "1",
    );
}
