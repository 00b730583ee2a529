//! `ha-setup verify` on the lab's PostgreSQL pair: the same data under a steady write
//! load, a row corrupted on the standby's disk behind replication's back found and named,
//! a standby whose replay is paused reported as not compared, and the same again after
//! `recover rebuild`. One init for all of it.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::Run;
use crate::util::lab::{Host, Lab, lab};
use crate::util::verify::{not_compared_because, range_holds, table, verify_json};

fn state(lab: &Lab) -> String {
    let dir = format!("{}/state-verify-pg", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn ha(lab: &Lab, state: &str, args: &[&str]) -> Run {
    lab.ha_setup_with(&[("HA_SETUP_STATE_DIR", state)], args)
}

fn config(lab: &Lab) -> String {
    let path = lab.write_config("verify-pg", "");
    let text = std::fs::read_to_string(&path).expect("written");
    std::fs::write(
        &path,
        text.replace("engine = \"mariadb\"", "engine = \"postgresql\""),
    )
    .expect("the lab root is writable");
    path
}

#[track_caller]
fn psql(lab: &Lab, host: Host, db: &str, sql: &str) -> String {
    lab.exec_ok(
        host,
        &format!(
            "cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -d {db} -c \"{}\"",
            sql.replace('"', "\\\"")
        ),
    )
    .trim()
    .to_owned()
}

/// Two databases of the application: keyed tables of several chunks, a composite key, a
/// table without a key, an unlogged one, and one the writer appends to.
fn seed(lab: &Lab) {
    psql(lab, Host::Primary, "postgres", "CREATE DATABASE app");
    psql(lab, Host::Primary, "postgres", "CREATE DATABASE other");
    psql(
        lab,
        Host::Primary,
        "app",
        "CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL, at timestamptz, note text); \
         INSERT INTO t SELECT g, 'value-' || lpad(g::text, 5, '0'), '2026-01-01'::timestamptz + g * interval '1 minute', \
         CASE WHEN g % 7 = 0 THEN NULL ELSE '' END FROM generate_series(1, 5000) g; \
         CREATE TABLE pairs (a text, b int, val int NOT NULL, PRIMARY KEY (a, b)); \
         INSERT INTO pairs SELECT 'k' || (g % 3), g, 0 FROM generate_series(1, 3000) g; \
         CREATE TABLE nokey (line text, n int); \
         INSERT INTO nokey VALUES ('one', 1), ('two', 2), ('two', 2), (NULL, 3); \
         CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY); \
         CREATE TABLE writes (id serial PRIMARY KEY, v int NOT NULL);",
    );
    psql(
        lab,
        Host::Primary,
        "other",
        "CREATE TABLE things (id bigint PRIMARY KEY, what text); \
         INSERT INTO things SELECT g, md5(g::text) FROM generate_series(1, 100) g;",
    );
}

/// Writes on the primary, about a hundred transactions a second, until [`stop_writer`] or
/// a minute at most. They never touch `t`, whose page the test corrupts later.
fn start_writer(lab: &Lab) -> Child {
    let script = "rm -f /run/ha-verify-writer.stop; end=$(( $(date +%s) + 60 )); i=0; \
        while [ ! -e /run/ha-verify-writer.stop ] && [ \"$(date +%s)\" -lt \"$end\" ]; do \
          i=$((i + 1)); \
          echo \"INSERT INTO writes (v) VALUES ($i); UPDATE pairs SET val = val + 1 WHERE b = $(( i % 3000 + 1 ));\"; \
          sleep 0.01; \
        done | (cd / && runuser -u postgres -- psql -X -q -d app)";
    lab.command()
        .args(["exec", "primary", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the writer starts")
}

/// The statement [`hold_a_table_lock`]'s session waits in.
const HOLDER: &str = "SELECT pg_sleep(40)";

/// A transaction on the primary that holds `writes` locked against verify's share lock
/// (40 s at most, ended by terminating its backend), once it holds it.
fn hold_a_table_lock(lab: &Lab) -> Child {
    let holder = lab.command()
        .args(["exec", "primary", "sh", "-c"])
        .arg(format!(
            "cd / && runuser -u postgres -- psql -X -q -d app -c 'BEGIN' -c 'LOCK TABLE writes IN ROW EXCLUSIVE MODE' -c '{HOLDER}'"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the lock holder starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while psql(
        lab,
        Host::Primary,
        "postgres",
        &format!("SELECT count(*) FROM pg_stat_activity WHERE query = '{HOLDER}'"),
    ) != "1"
    {
        assert!(Instant::now() < deadline, "the lock holder never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    holder
}

fn stop_writer(lab: &Lab, mut writer: Child) {
    lab.exec_ok(Host::Primary, "touch /run/ha-verify-writer.stop");
    let status = writer.wait().expect("the writer ends");
    assert!(status.success(), "the writer failed: {status}");
}

/// Changes `from` into `to` (the same length) in the heap file of `app.t` on the
/// standby's disk while it is stopped: a change no WAL record carries. The table's pages
/// were frozen and checkpointed first, so nothing replayed afterwards rewrites the page.
fn corrupt_on_standby(lab: &Lab, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    psql(lab, Host::Primary, "app", "VACUUM FREEZE t");
    psql(lab, Host::Primary, "postgres", "CHECKPOINT");
    let lsn = psql(
        lab,
        Host::Primary,
        "postgres",
        "SELECT pg_current_wal_lsn()",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while psql(
        lab,
        Host::Secondary,
        "postgres",
        &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'"),
    ) != "t"
    {
        assert!(
            Instant::now() < deadline,
            "the standby never replayed {lsn}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        psql(lab, Host::Secondary, "postgres", "SHOW data_checksums"),
        "off",
        "with data checksums on, a changed page is refused rather than read"
    );
    psql(lab, Host::Secondary, "postgres", "CHECKPOINT");
    let file = format!(
        "{}/{}",
        psql(lab, Host::Secondary, "postgres", "SHOW data_directory"),
        psql(
            lab,
            Host::Primary,
            "app",
            "SELECT pg_relation_filepath('t')"
        )
    );
    lab.exec_ok(Host::Secondary, "pg_ctlcluster -m fast 15 main stop");
    lab.exec_ok(
        Host::Secondary,
        &format!("grep -c {from} {file} && sed -i 's/{from}/{to}/' {file} && grep -c {to} {file}"),
    );
    lab.exec_ok(Host::Secondary, "pg_ctlcluster 15 main start");
    let deadline = Instant::now() + Duration::from_secs(30);
    while lab
        .exec(
            Host::Secondary,
            &format!(
                "cd / && runuser -u postgres -- psql -X -A -t -d app -c \"SELECT v FROM t WHERE id = 2500\" | grep -qx {to}"
            ),
        )
        .code
        != Some(0)
    {
        assert!(Instant::now() < deadline, "the standby never read {to}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs the lab"]
fn verify_finds_a_row_corrupted_on_the_standby_and_nothing_else_under_writes() {
    let lab = lab();
    lab.reset();
    seed(&lab);
    let config = config(&lab);
    let state = state(&lab);
    ha(&lab, &state, &["init", "-c", &config, "--yes"]).expect_code(0);

    let writer = start_writer(&lab);
    std::thread::sleep(Duration::from_secs(1));
    let before: u64 = psql(&lab, Host::Primary, "app", "SELECT count(*) FROM writes")
        .parse()
        .unwrap();
    let (code, report, stderr) = verify_json(&lab, &state, &config);
    let during: u64 = psql(&lab, Host::Primary, "app", "SELECT count(*) FROM writes")
        .parse()
        .unwrap();
    stop_writer(&lab, writer);
    assert!(during > before, "no write went on during verify");
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(report["result"], "identical");
    assert!(table(&report, "secondary", "app.public.t")["chunks"].as_u64() >= Some(2));
    assert_eq!(
        table(&report, "secondary", "other.public.things")["result"],
        "same"
    );
    let nokey = table(&report, "secondary", "app.public.nokey");
    assert_eq!(nokey["whole_table"], true, "{nokey}");
    assert_eq!(nokey["note"], "no primary key");
    let scratch = table(&report, "secondary", "app.public.scratch");
    assert_eq!(scratch["result"], "skipped", "{scratch}");
    assert!(
        scratch["note"]
            .as_str()
            .is_some_and(|n| n.contains("unlogged")),
        "{scratch}"
    );

    // A table the application keeps locked past the bound: not compared, and said so;
    // the rest is (exit 1).
    let mut holder = hold_a_table_lock(&lab);
    let (code, report, stderr) = verify_json(&lab, &state, &config);
    psql(
        &lab,
        Host::Primary,
        "postgres",
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = '{HOLDER}'"),
    );
    let _ = holder.wait();
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(report["result"], "incomplete");
    not_compared_because(&report, "secondary", "app.public.writes", "stayed locked");
    assert_eq!(
        table(&report, "secondary", "app.public.t")["result"],
        "same"
    );

    corrupt_on_standby(&lab, "value-02500", "VALUE-02500");
    let (code, report, stderr) = verify_json(&lab, &state, &config);
    assert_eq!(code, Some(4), "{report:#}\n{stderr}");
    let t = table(&report, "secondary", "app.public.t");
    assert_eq!(t["result"], "differs", "{t}");
    assert_eq!(t["differing"].as_array().map(Vec::len), Some(1), "{t}");
    assert!(range_holds(t, 2500), "{t}");
    for same in [
        "app.public.pairs",
        "app.public.nokey",
        "other.public.things",
    ] {
        assert_eq!(
            table(&report, "secondary", same)["result"],
            "same",
            "{same}"
        );
    }
    let text = ha(&lab, &state, &["verify", "-c", &config]);
    text.expect_code(4);
    assert!(
        text.stdout.contains("app.public.t: DIFFERS in 1 of") && text.stdout.contains("id > "),
        "{text:?}"
    );

    // A standby whose replay is paused cannot be compared.
    psql(
        &lab,
        Host::Secondary,
        "postgres",
        "SELECT pg_wal_replay_pause()",
    );
    let (code, report, stderr) = verify_json(&lab, &state, &config);
    psql(
        &lab,
        Host::Secondary,
        "postgres",
        "SELECT pg_wal_replay_resume()",
    );
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(report["nodes"][0]["result"], "not_compared");

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
