//! `ha-setup verify` on the lab's MariaDB pair: the same data under a steady write load,
//! a row changed on the replica behind replication's back found and named, a replica that
//! stopped applying reported as not compared, and the same again after `recover rebuild`.
//! One init for all of it.

use std::process::{Child, Stdio};

use crate::util::Run;
use crate::util::lab::{Host, Lab, lab};
use crate::util::verify::{not_compared_because, range_holds, table, verify_json};

fn state(lab: &Lab) -> String {
    let dir = format!("{}/state-verify-mariadb", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn ha(lab: &Lab, state: &str, args: &[&str]) -> Run {
    lab.ha_setup_with(&[("HA_SETUP_STATE_DIR", state)], args)
}

/// The application: a keyed table of several chunks, one with a composite key, one
/// without a key, and one that the writer appends to.
fn seed(lab: &Lab) {
    lab.sql_ok(
        Host::Primary,
        "CREATE DATABASE app; USE app; \
         CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, v INT NOT NULL, note TEXT NULL); \
         INSERT INTO items SELECT seq, CONCAT('item-', seq), 0, IF(seq % 7 = 0, NULL, '') FROM seq_1_to_5000; \
         CREATE TABLE pairs (a VARCHAR(20) NOT NULL, b INT NOT NULL, val INT NOT NULL, PRIMARY KEY (a, b)); \
         INSERT INTO pairs SELECT CONCAT('k', seq % 3), seq, 0 FROM seq_1_to_3000; \
         CREATE TABLE nokey (line VARCHAR(40), n INT); \
         INSERT INTO nokey VALUES ('one', 1), ('two', 2), ('two', 2), (NULL, 3); \
         CREATE TABLE writes (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL);",
    );
}

/// A steady stream of writes on the primary (about a hundred transactions a second) until
/// [`stop_writer`] or a minute at most.
fn start_writer(lab: &Lab) -> Child {
    let script = "rm -f /run/ha-verify-writer.stop; end=$(( $(date +%s) + 60 )); i=0; \
        while [ ! -e /run/ha-verify-writer.stop ] && [ \"$(date +%s)\" -lt \"$end\" ]; do \
          i=$((i + 1)); \
          echo \"UPDATE items SET v = v + 1 WHERE id = $(( (i * 37) % 5000 + 1 )); INSERT INTO writes (v) VALUES ($i); UPDATE pairs SET val = val + 1 WHERE b = $(( i % 3000 + 1 ));\"; \
          sleep 0.01; \
        done | mariadb app";
    lab.command()
        .args(["exec", "primary", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the writer starts")
}

/// The connection of [`hold_a_row_lock`].
const HOLDER: &str =
    "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(40)'";

/// A transaction on the primary that holds a row of `app.writes` locked (40 s at most,
/// ended by killing its connection), once it holds it.
fn hold_a_row_lock(lab: &Lab) -> Child {
    let holder = lab
        .command()
        .args([
            "exec",
            "primary",
            "mariadb",
            "-e",
            "BEGIN; SELECT id FROM app.writes WHERE id = 1 FOR UPDATE; SELECT SLEEP(40); ROLLBACK;",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the lock holder starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lab.sql_ok(Host::Primary, HOLDER).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock holder never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    holder
}

fn stop_writer(lab: &Lab, mut writer: Child) {
    lab.exec_ok(Host::Primary, "touch /run/ha-verify-writer.stop");
    let status = writer.wait().expect("the writer ends");
    assert!(status.success(), "the writer failed: {status}");
}

#[test]
#[ignore = "needs the lab"]
fn verify_finds_a_changed_row_and_nothing_else_under_writes() {
    let lab = lab();
    lab.reset();
    seed(&lab);
    let config = lab.write_config("verify-mariadb", "");
    let state = state(&lab);
    ha(&lab, &state, &["init", "-c", &config, "--yes"]).expect_code(0);

    // The same data, while the application writes on.
    let writer = start_writer(&lab);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let before: u64 = lab
        .sql_ok(Host::Primary, "SELECT COUNT(*) FROM app.writes")
        .parse()
        .unwrap();
    let (code, report, stderr) = verify_json(&lab, &state, &config);
    let during: u64 = lab
        .sql_ok(Host::Primary, "SELECT COUNT(*) FROM app.writes")
        .parse()
        .unwrap();
    stop_writer(&lab, writer);
    assert!(during > before, "no write went on during verify");
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(report["result"], "identical");
    assert_eq!(report["nodes"][0]["result"], "same");
    assert!(table(&report, "secondary", "app.items")["chunks"].as_u64() >= Some(2));
    let nokey = table(&report, "secondary", "app.nokey");
    assert_eq!(nokey["whole_table"], true, "{nokey}");
    assert_eq!(nokey["note"], "no primary key");
    assert_eq!(nokey["result"], "same");

    // Rows the application keeps locked past the bound: that table is not compared, and
    // said so; the rest is (exit 1).
    let mut holder = hold_a_row_lock(&lab);
    let (code, report, stderr) = verify_json(&lab, &state, &config);
    let id = lab.sql_ok(Host::Primary, HOLDER);
    lab.sql_ok(Host::Primary, &format!("KILL {id}"));
    let _ = holder.wait();
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(report["result"], "incomplete");
    not_compared_because(&report, "secondary", "app.writes", "stayed locked");
    assert_eq!(table(&report, "secondary", "app.items")["result"], "same");

    // A row changed on the replica behind replication's back (root passes read_only).
    lab.sql_ok(
        Host::Secondary,
        "SET SESSION sql_log_bin = 0; UPDATE app.items SET name = 'changed behind' WHERE id = 2500; \
         DELETE FROM app.pairs WHERE a = 'k1' AND b = 1000; UPDATE app.nokey SET n = 4 WHERE n = 3;",
    );
    let (code, report, stderr) = verify_json(&lab, &state, &config);
    assert_eq!(code, Some(4), "{report:#}\n{stderr}");
    assert_eq!(report["result"], "differs");
    let items = table(&report, "secondary", "app.items");
    assert_eq!(items["result"], "differs", "{items}");
    assert_eq!(
        items["differing"].as_array().map(Vec::len),
        Some(1),
        "{items}"
    );
    assert!(range_holds(items, 2500), "{items}");
    let pairs = table(&report, "secondary", "app.pairs");
    assert_eq!(pairs["result"], "differs", "{pairs}");
    assert_eq!(pairs["key"], serde_json::json!(["a", "b"]));
    assert_eq!(
        table(&report, "secondary", "app.nokey")["result"],
        "differs"
    );
    assert_eq!(table(&report, "secondary", "app.writes")["result"], "same");
    // The text names each table and range.
    let text = ha(&lab, &state, &["verify", "-c", &config]);
    text.expect_code(4);
    assert!(
        text.stdout.contains("app.items: DIFFERS in 1 of")
            && text.stdout.contains("id > ")
            && text.stdout.contains("(a, b) > ")
            && text
                .stdout
                .contains("app.nokey: DIFFERS (compared whole: no primary key)"),
        "{text:?}"
    );

    // The history says when the nodes were compared and what was found.
    let history = ha(
        &lab,
        &state,
        &["history", "-c", &config, "--format", "json"],
    );
    history.expect_code(0);
    assert!(
        history
            .stdout
            .lines()
            .any(|line| line.contains("\"operation\":\"verify\"")
                && line.contains("\"result\":\"differs\"")
                && line.contains("secondary: app.items")),
        "{history:?}"
    );

    // A replica that stopped applying cannot be compared.
    lab.sql_ok(Host::Secondary, "STOP SLAVE SQL_THREAD");
    let (code, report, stderr) = verify_json(&lab, &state, &config);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(report["nodes"][0]["result"], "not_compared");
    assert!(
        report["nodes"][0]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("applying: stopped")),
        "{report:#}"
    );
    lab.sql_ok(Host::Secondary, "START SLAVE SQL_THREAD");

    // Re-seeded from the primary: the same again.
    ha(
        &lab,
        &state,
        &["recover", "rebuild", "-c", &config, "--yes"],
    )
    .expect_code(0);
    let (code, report, stderr) = verify_json(&lab, &state, &config);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(report["result"], "identical");
}
