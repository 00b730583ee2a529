//! `ha-setup init` and `status` on the lab's two real MariaDB hosts, run on the operator
//! the way an operator runs them.

use std::time::{Duration, Instant};

use crate::util::lab::{Host, Lab, lab};

/// A state directory of the test's own, so journals of other tests do not show.
fn state(lab: &Lab, name: &str) -> String {
    format!("{}/state-{name}", lab.var("HA_LAB_ROOT"))
}

fn fresh_state(lab: &Lab, name: &str) -> String {
    let dir = state(lab, name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The application's data on the primary before init: a table with rows, and a user
/// without privileges beyond its own schema (read_only stops it; it would not stop root).
fn seed_application(lab: &Lab) {
    lab.sql_ok(
        Host::Primary,
        "CREATE DATABASE app; \
         CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(40)); \
         INSERT INTO app.items VALUES (1, 'one'), (2, 'two'), (3, 'three'); \
         CREATE USER app@localhost IDENTIFIED BY 'app-pass'; \
         GRANT ALL ON app.* TO app@localhost;",
    );
}

#[test]
#[ignore = "needs the lab"]
fn init_sets_up_a_pair_that_replicates_and_status_follows_it() {
    let lab = lab();
    lab.reset();
    seed_application(&lab);
    let config = lab.write_config("init", "");
    let state = fresh_state(&lab, "init");
    let env = [("HA_SETUP_STATE_DIR", state.as_str())];

    // A dry run touches nothing, and shows every step.
    let plan = lab.ha_setup_with(&env, &["init", "-c", &config, "--dry-run"]);
    plan.expect_code(0);
    for step in [
        "preflight",
        "prepare-primary",
        "transfer",
        "unpack",
        "configure-replicas",
        "start",
        "enable-replication",
        "verify-link",
    ] {
        assert!(
            plan.stdout.contains(step),
            "{step} missing from the plan: {}",
            plan.stdout
        );
    }
    assert!(plan.stdout.contains("RESTART MariaDB"), "{}", plan.stdout);
    lab.exec(
        Host::Primary,
        "test ! -e /etc/mysql/mariadb.conf.d/90-ha-setup.cnf",
    )
    .expect_code(0);
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@log_bin"), "0");

    let init = lab.ha_setup_with(&env, &["init", "-c", &config, "--yes"]);
    init.expect_code(0);
    assert!(init.stdout.contains("the link is alive"), "{init:?}");

    // Rows from before init are there; rows written after arrive.
    assert_eq!(
        lab.sql_ok(
            Host::Secondary,
            "SELECT GROUP_CONCAT(name ORDER BY id) FROM app.items"
        ),
        "one,two,three"
    );
    lab.sql_ok(Host::Primary, "INSERT INTO app.items VALUES (4, 'four')");
    lab.wait_for_sql(
        Host::Secondary,
        "SELECT name FROM app.items WHERE id = 4",
        "four",
    );

    // The secondary refuses the application's writes.
    let refused = lab.exec(
        Host::Secondary,
        "mariadb -u app -papp-pass -e \"INSERT INTO app.items VALUES (5, 'five')\"",
    );
    assert_ne!(refused.code, Some(0), "{refused:?}");
    assert!(
        refused.stderr.contains("read-only") || refused.stderr.contains("1290"),
        "{refused:?}"
    );

    // The old datadir was moved aside, not deleted.
    let aside = lab.exec_ok(Host::Secondary, "ls -d /var/lib/mysql/.ha-setup-old/*");
    assert!(
        aside.trim().starts_with("/var/lib/mysql/.ha-setup-old/"),
        "{aside}"
    );
    lab.exec(
        Host::Secondary,
        "test -d \"$(ls -d /var/lib/mysql/.ha-setup-old/* | head -n1)/mysql\"",
    )
    .expect_code(0);
    // Nothing of the backup stays on the primary; the password is kept 0600.
    lab.exec(
        Host::Primary,
        "test ! -e /var/lib/ha-setup/backup && test ! -e /var/lib/ha-setup/stream",
    )
    .expect_code(0);
    assert_eq!(
        lab.exec_ok(
            Host::Primary,
            "stat -c %a /etc/ha-setup/replication-password"
        )
        .trim(),
        "600"
    );

    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{status}");
    assert_eq!(status["link"], "alive", "{status}");
    assert!(status["canary_ms"].is_number(), "{status}");
    assert_eq!(status["nodes"][0]["role"], "primary");
    assert_eq!(status["nodes"][1]["role"], "replica");
    assert_eq!(status["nodes"][1]["read_only"], true);
    assert_eq!(status["nodes"][1]["io_running"], true);

    // --watch repeats until stopped: one JSON object per line. `head` stops it after two
    // (a closed stdout ends ha-setup quietly); the timeout only guards against a hang.
    let watch = lab.exec(
        Host::Operator,
        &format!(
            "HA_SETUP_STATE_DIR={state} timeout 120 {} status -c {config} --format json --watch 1 | head -n 2",
            crate::util::binary().display()
        ),
    );
    let reports: Vec<serde_json::Value> = watch
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON report per line"))
        .collect();
    assert_eq!(reports.len(), 2, "{watch:?}");
    assert!(reports.iter().all(|r| r["link"] == "alive"), "{watch:?}");

    // A second init changes nothing, and says so.
    let again = lab.ha_setup_with(&env, &["init", "-c", &config, "--yes"]);
    again.expect_code(0);
    assert!(again.stdout.contains("nothing to change"), "{again:?}");
    assert!(!again.stderr.contains("RESTART"), "{again:?}");

    // Replication stopped on the secondary: status says broken (exit 4; nagios CRITICAL).
    lab.sql_ok(Host::Secondary, "STOP SLAVE");
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(4), "{status}");
    assert_eq!(status["link"], "broken", "{status}");
    let nagios = lab.ha_setup_with(&env, &["status", "-c", &config, "--format", "nagios"]);
    assert_eq!(nagios.code, Some(2), "{nagios:?}");
    assert!(
        nagios.stdout.starts_with("HA-SETUP CRITICAL - link broken"),
        "{nagios:?}"
    );

    // init repairs it by starting the threads again, from where they were.
    lab.ha_setup_with(&env, &["init", "-c", &config, "--yes"])
        .expect_code(0);
    let text = lab.ha_setup_with(&env, &["status", "-c", &config]);
    text.expect_code(0);
    assert!(text.stdout.starts_with("link: alive"), "{text:?}");

    // The history has every step.
    let history = lab.ha_setup_with(&env, &["history", "-c", &config]);
    history.expect_code(0);
    assert!(history.stdout.contains("transfer"), "{history:?}");
}

#[test]
#[ignore = "needs the lab"]
fn status_shows_an_unreachable_secondary_as_such() {
    let lab = lab();
    lab.reset();
    let config = lab.write_config("status-cut", "");
    let state = fresh_state(&lab, "status-cut");
    lab.cut(Host::Secondary);
    let run = lab.ha_setup_with(
        &[("HA_SETUP_STATE_DIR", &state)],
        &["status", "-c", &config, "--format", "json"],
    );
    lab.heal(Host::Secondary);
    assert_eq!(run.code, Some(4), "{run:?}");
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status["link"], "down");
    assert_eq!(status["nodes"][1]["reachable"], false);
    assert_eq!(status["nodes"][1]["role"], "unreachable");
    assert_eq!(status["nodes"][0]["reachable"], true);
}

#[test]
#[ignore = "needs the lab"]
fn a_failed_preflight_changes_nothing() {
    let lab = lab();
    lab.reset();
    // The config cannot know the primary runs with server_id 1 already; preflight does.
    let config = lab.write_config("same-ids", "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[secondary]\n", "[secondary]\nserver_id = 1\n");
    std::fs::write(&config, text).unwrap();
    let run = lab.ha_setup_with(
        &[("HA_SETUP_STATE_DIR", &fresh_state(&lab, "same-ids"))],
        &["init", "-c", &config, "--yes"],
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("FAIL  server_id: primary and secondary would both use 1"),
        "{run:?}"
    );
    assert!(run.stderr.contains("nothing was changed"), "{run:?}");
    lab.exec(
        Host::Primary,
        "test ! -e /etc/mysql/mariadb.conf.d/90-ha-setup.cnf",
    )
    .expect_code(0);
}

/// A 20 Mbit/s token bucket on a host's link, lifted when dropped.
struct SlowLink<'a>(&'a Lab, Host);

impl SlowLink<'_> {
    fn on(lab: &Lab, host: Host) -> SlowLink<'_> {
        lab.exec_ok(
            host,
            "tc qdisc replace dev eth0 root tbf rate 20mbit burst 64kbit latency 400ms",
        );
        SlowLink(lab, host)
    }
}

impl Drop for SlowLink<'_> {
    fn drop(&mut self) {
        self.0
            .exec(self.1, "tc qdisc del dev eth0 root 2>/dev/null || true");
    }
}

#[test]
#[ignore = "needs the lab"]
fn init_killed_during_the_transfer_resumes() {
    let lab = lab();
    lab.reset();
    seed_application(&lab);
    // Enough data that the transfer takes a moment: ~100 MiB of incompressible rows.
    lab.sql_ok(
        Host::Primary,
        "CREATE TABLE app.blobs (id INT AUTO_INCREMENT PRIMARY KEY, b BLOB) ENGINE=InnoDB; \
         INSERT INTO app.blobs (b) SELECT RANDOM_BYTES(1024) FROM app.seq_1_to_1024; \
         INSERT INTO app.blobs (b) SELECT a.b FROM app.blobs a, app.seq_1_to_99;",
    );
    let config = lab.write_config("resume", "[replication]\ntls = false\n");
    let state = fresh_state(&lab, "resume");
    // A slow link out of the primary (about 40 s for the copy), so the transfer is still
    // running when ha-setup is killed, whichever route it takes.
    let slow = SlowLink::on(&lab, Host::Primary);
    let mut init = lab.spawn_ha_setup(&state, &format!("init -c {config} --yes"));
    // Kill it once data is arriving on the secondary.
    lab.wait_for_incoming(&mut init, 20);
    init.kill(&lab);
    // The stream's far ends notice: no backup goes on holding the primary's locks, and the
    // copy stops half way.
    let deadline = Instant::now() + Duration::from_secs(20);
    while lab.exec(Host::Primary, "pgrep -x mariadb-backup").code == Some(0) {
        assert!(
            Instant::now() < deadline,
            "mariadb-backup still runs on the primary 20 s after its reader was killed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.exec(
        Host::Secondary,
        "test ! -e /var/lib/mysql/.ha-setup-incoming/ha-setup-manifest.toml",
    )
    .expect_code(0);
    drop(slow);

    let run = lab.ha_setup_with(
        &[("HA_SETUP_STATE_DIR", &state)],
        &["init", "-c", &config, "--yes"],
    );
    run.expect_code(0);
    assert!(run.stderr.contains("Resuming init"), "{run:?}");
    // The cut-short copy is never used: it is streamed again from the start.
    assert!(
        run.stderr.contains("make an empty staging directory"),
        "{run:?}"
    );
    lab.exec(Host::Primary, "test ! -e /var/lib/ha-setup/stream")
        .expect_code(0);
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT COUNT(*) FROM app.blobs"),
        lab.sql_ok(Host::Primary, "SELECT COUNT(*) FROM app.blobs")
    );
}

#[test]
#[ignore = "needs the lab"]
fn a_bundle_file_is_checked_and_a_corrupted_one_refused() {
    let lab = lab();
    lab.reset();
    seed_application(&lab);
    let config = lab.write_config("bundle", "");
    let out = format!("{}/test-bundle.bundle", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_file(&out);
    let create = lab.ha_setup(&["bundle", "create", "-c", &config, "--out", &out]);
    create.expect_code(0);
    lab.ha_setup(&["bundle", "verify", &out]).expect_code(0);
    let inspect = lab.ha_setup(&["bundle", "inspect", &out, "--format", "json"]);
    inspect.expect_code(0);
    let manifest: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(manifest["engine"], "mariadb");
    assert_eq!(manifest["source_host"], lab.addr(Host::Primary));
    // Nothing of the backup stays on the primary.
    lab.exec(Host::Primary, "test ! -e /var/lib/ha-setup/stream")
        .expect_code(0);

    // One byte changed in the middle of the data: refused, naming a file.
    let mut bytes = std::fs::read(&out).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let corrupted = format!("{}/test-bundle-corrupted.bundle", lab.var("HA_LAB_ROOT"));
    std::fs::write(&corrupted, &bytes).unwrap();
    let verify = lab.ha_setup(&["bundle", "verify", &corrupted]);
    assert_eq!(verify.code, Some(1), "{verify:?}");
    // Truncated: refused too.
    std::fs::write(&corrupted, &bytes[..middle]).unwrap();
    let verify = lab.ha_setup(&["bundle", "verify", &corrupted]);
    assert_eq!(verify.code, Some(1), "{verify:?}");
    assert!(verify.stderr.contains("cut short"), "{verify:?}");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&corrupted);
}

#[test]
#[ignore = "needs the lab"]
fn init_run_on_the_primary_itself_streams_from_local_disk() {
    let lab = lab();
    lab.reset();
    seed_application(&lab);
    let config = lab.write_config("local", "");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        &format!(
            "host = \"{}\"\nssh_user = \"root\"\n",
            lab.addr(Host::Primary)
        ),
        &format!(
            "host = \"local\"\nreplication_host = \"{}\"\n",
            lab.addr(Host::Primary)
        ),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let state = fresh_state(&lab, "local");
    let run = lab.exec(
        Host::Primary,
        &format!(
            "HA_SETUP_STATE_DIR={state} {} init -c {config} --yes",
            crate::util::binary().display()
        ),
    );
    run.expect_code(0);
    // No copy of ha-setup was placed on the primary: it streamed from here.
    lab.exec(Host::Primary, "test ! -e /var/lib/ha-setup/bin")
        .expect_code(0);
    lab.exec(Host::Secondary, "test -x /var/lib/ha-setup/bin/ha-setup-*")
        .expect_code(0);
    assert_eq!(
        lab.sql_ok(
            Host::Secondary,
            "SELECT GROUP_CONCAT(name ORDER BY id) FROM app.items"
        ),
        "one,two,three"
    );
}
