//! `topology = "primary-primary"` on the lab's two real MariaDB hosts: both take writes,
//! each replicates from the other. One init serves the whole story (CI time): writes on
//! both, a node killed and back (unfence), a node cut off and back (rejoin), a conflict
//! named by status and refused by rejoin, a re-seed that restores the pair.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::Run;
use crate::util::lab::{Host, Lab, lab};
use crate::util::verify::{Updates, updated, verify_json};

/// The lab pair as two writers, with a state directory of its own.
fn pair_config(lab: &Lab, name: &str) -> (String, String) {
    let path = lab.write_config(name, "");
    let text = std::fs::read_to_string(&path).expect("the config was written");
    let text = text.replacen(
        "engine = \"mariadb\"\n",
        "engine = \"mariadb\"\ntopology = \"primary-primary\"\n",
        1,
    );
    std::fs::write(&path, text).expect("the lab root is writable");
    let state = format!("{}/state-{name}", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_dir_all(&state);
    (path, state)
}

fn ha(lab: &Lab, state: &str, args: &[&str]) -> Run {
    lab.ha_setup_with(&[("HA_SETUP_STATE_DIR", state)], args)
}

/// The application's table: keys from AUTO_INCREMENT, so the two nodes' writes collide
/// unless their sequences are disjoint.
fn seed_application(lab: &Lab) {
    lab.sql_ok(
        Host::Primary,
        "CREATE DATABASE app; \
         CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, node VARCHAR(20) NOT NULL); \
         INSERT INTO app.t (node) VALUES ('before'), ('before'); \
         CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, v INT NOT NULL); \
         USE app; INSERT INTO app.items SELECT seq, CONCAT('item-', seq), 0 FROM seq_1_to_4000;",
    );
}

/// `count` single-row inserts on `host`, one statement each, in the background.
fn writer(lab: &Lab, host: Host, count: u32) -> Child {
    lab.command()
        .args(["exec", host.name(), "sh", "-c"])
        .arg(format!(
            "for i in $(seq 1 {count}); do mariadb -e \"INSERT INTO app.t (node) VALUES ('{}')\" || exit 1; done",
            host.name()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the writer starts")
}

/// The table as each node holds it: every id with the node that wrote it.
fn rows(lab: &Lab, host: Host) -> String {
    lab.sql_ok(
        host,
        "SELECT IFNULL(GROUP_CONCAT(id, ':', node ORDER BY id), '') FROM app.t",
    )
}

/// Waits until both nodes hold the same rows, `count` of them; returns them.
#[track_caller]
fn same_rows(lab: &Lab, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (p, s) = (rows(lab, Host::Primary), rows(lab, Host::Secondary));
        if p == s && p.split(',').filter(|r| !r.is_empty()).count() == count {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes never held the same {count} rows:\nprimary:   {p}\nsecondary: {s}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits until `status` says healthy (exit 0); returns the JSON report.
#[track_caller]
fn healthy(lab: &Lab, config: &str, state: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, report) = lab.status_json(config, state);
        if code == Some(0) {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "the pair never became healthy: {report:#}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Kills a node's MariaDB and its mysqld_safe (which would restart it) with SIGKILL.
fn kill_database(lab: &Lab, host: Host) {
    lab.exec_ok(
        host,
        "p=$(cat /run/mysqld/mysqld.pid); pp=$(ps -o ppid= -p \"$p\" | tr -d ' '); kill -9 \"$pp\" \"$p\"; \
         while kill -0 \"$p\" 2>/dev/null; do sleep 0.1; done",
    );
}

fn start_database(lab: &Lab, host: Host) {
    // Over SSH, so the daemon has a reaper (see tests/lab/README.md).
    lab.ssh(
        host,
        "rm -f /run/mysqld/mysqld.pid; service mariadb start >/dev/null 2>&1",
    )
    .expect_code(0);
}

#[test]
#[ignore = "needs the lab"]
fn two_writers_lose_a_node_come_back_and_survive_a_conflict() {
    let lab = lab();
    lab.reset();
    seed_application(&lab);
    let (config, state) = pair_config(&lab, "pp");

    // The plan shows both directions and the opening of writes; nothing changes.
    let plan = ha(&lab, &state, &["init", "-c", &config, "--dry-run"]);
    plan.expect_code(0);
    for step in [
        "enable-replication",
        "link-back",
        "open-writes",
        "verify-link",
    ] {
        assert!(plan.stdout.contains(step), "{step}: {}", plan.stdout);
    }
    assert!(
        plan.stdout.contains("gtid_domain_id is 0 and must be 1"),
        "{}",
        plan.stdout
    );

    let init = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    init.expect_code(0);
    assert!(init.stdout.contains("both take writes"), "{init:?}");
    for (host, domain, offset) in [(Host::Primary, "1", "1"), (Host::Secondary, "2", "2")] {
        assert_eq!(
            lab.sql_ok(
                host,
                "SELECT CONCAT_WS(' ', @@read_only, @@gtid_domain_id, @@auto_increment_increment, \
                 @@auto_increment_offset, @@log_slave_updates, @@binlog_format, @@gtid_strict_mode)"
            ),
            format!("OFF {domain} 2 {offset} ON ROW ON"),
            "{host:?}"
        );
        // Both links over TLS.
        assert_eq!(
            lab.exec_ok(
                host,
                "mariadb -E -e 'SHOW SLAVE STATUS' | sed -n 's/^ *Master_SSL_Allowed: //p'"
            )
            .trim(),
            "Yes"
        );
    }
    // A second init changes nothing.
    let again = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    again.expect_code(0);
    assert!(again.stdout.contains("nothing to change"), "{again:?}");

    // An init interrupted before the primary's link from the secondary resumes there.
    lab.sql_ok(Host::Primary, "STOP SLAVE; RESET SLAVE ALL");
    let resumed = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    resumed.expect_code(0);
    assert!(
        resumed.stderr.contains("link-back: ")
            && resumed
                .stderr
                .contains("primary replicates from secondary (198.51.100.12:3306)"),
        "{resumed:?}"
    );
    assert!(
        resumed
            .stderr
            .contains("nothing to do: every replica holds its copy of the data"),
        "{resumed:?}"
    );

    // Writes on both at once, into one AUTO_INCREMENT table: no key collides, and each
    // node's rows arrive on the other.
    let (mut a, mut b) = (
        writer(&lab, Host::Primary, 30),
        writer(&lab, Host::Secondary, 30),
    );
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let both = same_rows(&lab, 62);
    for row in both.split(',').skip(2) {
        let (id, node) = row.split_once(':').unwrap();
        let odd = id.parse::<u32>().unwrap() % 2 == 1;
        assert_eq!(odd, node == "primary", "{row} in {both}");
    }
    let report = healthy(&lab, &config, &state);
    assert_eq!(report["topology"], "primary-primary", "{report:#}");
    assert_eq!(report["link"], "alive", "{report:#}");
    for (i, other) in [(0, "secondary"), (1, "primary")] {
        let node = &report["nodes"][i];
        assert_eq!(node["role"], "primary", "{report:#}");
        assert_eq!(node["read_only"], false, "{report:#}");
        assert_eq!(node["io_running"], true, "{report:#}");
        assert_eq!(node["sql_running"], true, "{report:#}");
        assert_eq!(node["last_error"], serde_json::Value::Null, "{report:#}");
        assert_eq!(node["source"], other, "{report:#}");
        assert!(node["canary_ms"].is_u64(), "{report:#}");
    }

    // verify compares the secondary with the config's first node while both write to the
    // same chunks: what one node's own writes make differ for a moment is compared again,
    // never reported.
    // Odd ids on the primary, even ones on the secondary: never the same row (that would
    // be a conflict), but the same chunks.
    let (p, s) = (
        Updates::start(&lab, Host::Primary, 1, 2000),
        Updates::start(&lab, Host::Secondary, 2, 2000),
    );
    std::thread::sleep(Duration::from_secs(1));
    let before = (updated(&lab, Host::Primary), updated(&lab, Host::Secondary));
    let (code, verified, stderr) = verify_json(&lab, &state, &config);
    let after = (updated(&lab, Host::Primary), updated(&lab, Host::Secondary));
    p.stop(&lab);
    s.stop(&lab);
    assert!(
        after.0 > before.0 && after.1 > before.1,
        "no updates went on during verify"
    );
    assert_eq!(code, Some(0), "{verified:#}\n{stderr}");
    assert_eq!(verified["topology"], "primary-primary");
    assert_eq!(verified["primary"], "primary");
    assert_eq!(verified["nodes"][0]["name"], "secondary");
    assert_eq!(verified["result"], "identical", "{verified:#}");

    // The primary applies the secondary's writes 4 s late, and the secondary has just
    // changed every even row: at first each chunk differs with the secondary's writes in
    // between, so each must be compared again once they have arrived, and none reported.
    let delay = |secs: u32| {
        lab.sql_ok(
            Host::Primary,
            &format!("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = {secs}; START SLAVE"),
        );
    };
    delay(4);
    lab.sql_ok(
        Host::Secondary,
        "UPDATE app.items SET v = v + 1 WHERE id % 2 = 0",
    );
    let (code, verified, stderr) = verify_json(&lab, &state, &config);
    delay(0);
    assert_eq!(code, Some(0), "{verified:#}\n{stderr}");
    let items = verified["nodes"][0]["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == "app.items"))
        .cloned()
        .unwrap_or_else(|| panic!("no app.items in {verified:#}"));
    assert!(
        items["rechecked"].as_array().is_some_and(|r| !r.is_empty()),
        "nothing was compared again: {items}"
    );

    // A row changed on the secondary behind replication's back: found and named.
    lab.sql_ok(
        Host::Secondary,
        "SET SESSION sql_log_bin = 0; UPDATE app.items SET name = 'changed behind' WHERE id = 2500",
    );
    let (code, verified, stderr) = verify_json(&lab, &state, &config);
    assert_eq!(code, Some(4), "{verified:#}\n{stderr}");
    let items = verified["nodes"][0]["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == "app.items"))
        .cloned()
        .unwrap_or_else(|| panic!("no app.items in {verified:#}"));
    assert_eq!(items["result"], "differs", "{items}");
    let ranges = items["differing"].as_array().cloned().unwrap_or_default();
    let bound = |v: &serde_json::Value| {
        v.as_array()
            .and_then(|a| a[0].as_str()?.parse::<i64>().ok())
    };
    assert!(
        ranges.len() == 1
            && bound(&ranges[0]["lower"]).is_none_or(|l| l < 2500)
            && bound(&ranges[0]["upper"]).is_none_or(|u| 2500 <= u),
        "{items}"
    );
    let text = ha(&lab, &state, &["verify", "-c", &config]);
    text.expect_code(4);
    assert!(
        text.stdout.contains("app.items: DIFFERS in 1 of") && text.stdout.contains("id > "),
        "{text:?}"
    );

    // The secondary's database is killed: the primary keeps taking writes; degraded.
    kill_database(&lab, Host::Secondary);
    lab.sql_ok(Host::Primary, "INSERT INTO app.t (node) VALUES ('primary')");
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(4), "{report:#}");
    assert_eq!(report["link"], "down", "{report:#}");
    // It comes back read-only (fenced), and says how to reopen it.
    start_database(&lab, Host::Secondary);
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "1");
    let status = ha(&lab, &state, &["status", "-c", &config]);
    assert_eq!(status.code, Some(4), "{status:?}");
    assert!(status.stdout.contains("recover unfence"), "{status:?}");
    let unfence = ha(
        &lab,
        &state,
        &["recover", "unfence", "-c", &config, "--yes"],
    );
    unfence.expect_code(0);
    assert!(
        unfence
            .stderr
            .contains("secondary has applied everything primary wrote"),
        "{unfence:?}"
    );
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "0");
    lab.sql_ok(
        Host::Secondary,
        "INSERT INTO app.t (node) VALUES ('secondary')",
    );
    same_rows(&lab, 64);
    healthy(&lab, &config, &state);

    // The secondary is cut off (no restart: it keeps taking writes, as the primary does).
    lab.cut(Host::Secondary);
    lab.sql_ok(Host::Primary, "INSERT INTO app.t (node) VALUES ('primary')");
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(4), "{report:#}");
    assert_eq!(report["nodes"][1]["reachable"], false, "{report:#}");
    lab.sql_ok(
        Host::Secondary,
        "INSERT INTO app.t (node) VALUES ('secondary')",
    );
    lab.heal(Host::Secondary);
    let rejoin = ha(&lab, &state, &["recover", "rejoin", "-c", &config, "--yes"]);
    rejoin.expect_code(0);
    assert!(rejoin.stdout.contains("both links are alive"), "{rejoin:?}");
    same_rows(&lab, 66);
    healthy(&lab, &config, &state);

    // A conflict: a row written on the secondary behind replication's back, then the same
    // key on the primary. Status names the transaction, the row and both ways out.
    lab.sql_ok(
        Host::Secondary,
        "SET SESSION sql_log_bin = 0; INSERT INTO app.t VALUES (1001, 'secondary')",
    );
    lab.sql_ok(Host::Primary, "INSERT INTO app.t VALUES (1001, 'primary')");
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let (code, report) = lab.status_json(&config, &state);
        if report["link"] == "broken" {
            assert_eq!(code, Some(4), "{report:#}");
            break report;
        }
        assert!(Instant::now() < deadline, "no conflict seen: {report:#}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(report["nodes"][1]["sql_running"], false, "{report:#}");
    let error = report["nodes"][1]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("Duplicate entry '1001'"), "{report:#}");
    let problems = report["problems"].to_string();
    for words in [
        "replication conflict (error 1062)",
        "an insert of app.t, the row id=1001",
        "ha-setup recover rebuild secondary",
        "STOP SLAVE; SET GLOBAL sql_slave_skip_counter = 1; START SLAVE;",
    ] {
        assert!(problems.contains(words), "{words}: {report:#}");
    }

    // The secondary also holds writes in the primary's own GTID domain that the primary
    // lacks (another server wrote with the primary's server_id): the histories do not merge.
    lab.sql_ok(Host::Primary, "STOP SLAVE");
    lab.sql_ok(
        Host::Secondary,
        "SET SESSION server_id = 1, gtid_domain_id = 1; \
         INSERT INTO app.t VALUES (2001, 'x'); INSERT INTO app.t VALUES (2002, 'x'); INSERT INTO app.t VALUES (2003, 'x');",
    );
    let refused = ha(&lab, &state, &["recover", "rejoin", "-c", &config, "--yes"]);
    assert_eq!(refused.code, Some(3), "{refused:?}");
    for words in [
        "stopped on an error",
        "holds transactions of primary's own GTID domain that primary lacks",
        "recover rebuild",
    ] {
        assert!(refused.stderr.contains(words), "{words}: {refused:?}");
    }

    // Nothing to promote, no role to swap: refused before any host is touched (usage).
    for args in [
        &["recover", "promote", "-c", &config, "--yes"][..],
        &["switchover", "-c", &config, "--yes"][..],
    ] {
        let run = ha(&lab, &state, args);
        assert_eq!(run.code, Some(2), "{run:?}");
        assert!(run.stderr.contains("both nodes take writes"), "{run:?}");
    }

    // Re-seed the secondary from the primary: its conflicting rows are moved aside with its
    // old data, and both links and both writers are back.
    let rebuild = ha(
        &lab,
        &state,
        &["recover", "rebuild", "secondary", "-c", &config, "--yes"],
    );
    rebuild.expect_code(0);
    assert_eq!(
        lab.sql_ok(
            Host::Secondary,
            "SELECT node FROM app.t WHERE id = 1001 UNION ALL SELECT COUNT(*) FROM app.t WHERE id > 2000"
        ),
        "primary\n0"
    );
    let aside = lab.exec_ok(
        Host::Secondary,
        "ls -d /var/lib/mysql/.ha-setup-old/* | wc -l",
    );
    assert_eq!(aside.trim(), "2", "{aside}");
    lab.sql_ok(Host::Primary, "INSERT INTO app.t (node) VALUES ('primary')");
    lab.sql_ok(
        Host::Secondary,
        "INSERT INTO app.t (node) VALUES ('secondary')",
    );
    same_rows(&lab, 69);
    let report = healthy(&lab, &config, &state);
    assert_eq!(report["link"], "alive", "{report:#}");

    // Re-seeded from the primary, the secondary holds the same data again, the changed
    // row too.
    let (code, verified, stderr) = verify_json(&lab, &state, &config);
    assert_eq!(code, Some(0), "{verified:#}\n{stderr}");
    assert_eq!(verified["result"], "identical", "{verified:#}");
}
