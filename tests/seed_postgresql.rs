//! PostgreSQL's seed as a stream, on the lab: `pg_basebackup` turned into a bundle on the
//! primary while it runs (the hidden `bundle stream`), its start position in the manifest,
//! its WAL kept by a temporary slot that is gone afterwards, however the stream ends.
//!
//! Each test makes a cluster of its own on the lab's primary host (15/haseed, port
//! 5439) and drops it afterwards: the lab's 15/main is whatever the last test of the
//! PostgreSQL engine left (a standby, read-only), and this also proves that PGHOST and
//! PGPORT choose the cluster.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ha_setup::bundle::Manifest;
use ha_setup::engine::postgresql::position::{Lsn, START_LSN, SYSTEM_IDENTIFIER, TIMELINE};

use crate::util::lab::{Host, Lab, lab};
use crate::util::{Run, binary};

const CLUSTER: &str = "15 haseed";
const PG_ENV: &str = "PGHOST=/var/run/postgresql PGPORT=5439";
const WORK: &str = "/var/lib/ha-setup/stream";
const SLOTS: &str =
    "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'ha\\_setup\\_seed\\_%'";

/// The test's own cluster on the primary host, dropped whatever happens.
struct Cluster<'a>(&'a Lab);

impl Cluster<'_> {
    fn new(lab: &Lab) -> Cluster<'_> {
        lab.exec_ok(
            Host::Primary,
            &format!(
                "pg_dropcluster --stop {CLUSTER} 2>/dev/null; \
                 pg_createcluster {CLUSTER} --port 5439 --start </dev/null >/tmp/haseed.log 2>&1 \
                 || {{ cat /tmp/haseed.log; exit 1; }}"
            ),
        );
        Cluster(lab)
    }
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        self.0.exec(
            Host::Primary,
            &format!(
                "pg_dropcluster --stop {CLUSTER} </dev/null >/dev/null 2>&1; rm -f /tmp/haseed.log"
            ),
        );
    }
}

/// `sql` through psql as postgres in the test's cluster; the rows, `|`-separated.
fn psql(lab: &Lab, sql: &str) -> String {
    lab.exec_ok(
        Host::Primary,
        &format!(
            "{PG_ENV} runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -c '{}'",
            sql.replace('\'', "'\\''")
        ),
    )
    .trim_end()
    .to_owned()
}

/// `bundle stream` on the primary as ha-setup runs it there, its stdout piped to the test.
fn spawn_stream(lab: &Lab, server_version: &str) -> Child {
    lab.command()
        .args(["exec", "primary", "sh", "-c"])
        .arg(format!(
            "cd / && {PG_ENV} exec {} bundle stream --engine postgresql --server-version \
             {server_version} --source-host primary --work {WORK} --compress none",
            binary().display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lab.sh runs")
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("lab.sh ends"))
}

#[track_caller]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Nothing of a stream is left on the primary: no slot, no pg_basebackup, no backup running
/// on the server, no work directory.
#[track_caller]
fn nothing_left(lab: &Lab) {
    wait_until("the seed's slot is gone", || psql(lab, SLOTS) == "0");
    wait_until("pg_basebackup is gone", || {
        lab.exec(Host::Primary, "pgrep -x pg_basebackup").code == Some(1)
    });
    wait_until("the server runs no backup", || {
        psql(lab, "SELECT count(*) FROM pg_stat_progress_basebackup") == "0"
    });
    lab.exec(Host::Primary, &format!("test ! -e {WORK}"))
        .expect_code(0);
}

/// Copies `n` bytes (or all, for None) from `from` to `to`; returns how many it copied.
fn pump(from: &mut impl Read, to: &mut impl Write, n: Option<u64>) -> u64 {
    match n {
        Some(n) => std::io::copy(&mut from.take(n), to).expect("the stream flows"),
        None => std::io::copy(from, to).expect("the stream flows"),
    }
}

#[test]
#[ignore = "needs the lab"]
fn a_base_backup_streams_into_a_bundle_with_its_start_position() {
    let lab = lab();
    let _cluster = Cluster::new(&lab);
    psql(
        &lab,
        "DROP TABLE IF EXISTS ha_seed_test; \
         CREATE TABLE ha_seed_test AS SELECT i, md5(i::text) AS t FROM generate_series(1, 20000) i",
    );
    let table_file = psql(&lab, "SELECT pg_relation_filepath('ha_seed_test')");
    lab.exec_ok(Host::Secondary, "rm -rf /tmp/pgseed /tmp/pgseed.bundle");

    // Primary to secondary, the test's pipe in between: it holds the stream after its
    // first MiB, while pg_basebackup runs, to see the slot that keeps its WAL.
    let mut stream = spawn_stream(&lab, "15");
    let mut unpack = lab
        .command()
        .args(["exec", "secondary"])
        .arg(binary())
        .args(["bundle", "unpack", "--into", "/tmp/pgseed"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lab.sh runs");
    let mut from = stream.stdout.take().expect("piped");
    let mut to = unpack.stdin.take().expect("piped");
    assert_eq!(pump(&mut from, &mut to, Some(1 << 20)), 1 << 20);
    let slot = psql(
        &lab,
        "SELECT temporary, active, restart_lsn FROM pg_replication_slots \
         WHERE slot_name LIKE 'ha\\_setup\\_seed\\_%'",
    );
    let backing_up = psql(&lab, "SELECT count(*) FROM pg_stat_progress_basebackup");
    pump(&mut from, &mut to, None);
    drop(to);
    let streamed = finish(stream);
    let unpacked = finish(unpack);
    streamed.expect_code(0);
    unpacked.expect_code(0);
    nothing_left(&lab);

    // While the backup ran, one temporary slot reserved WAL from before its start.
    assert_eq!(backing_up, "1", "no backup was running mid-stream");
    let fields: Vec<&str> = slot.split('|').collect();
    assert_eq!(fields[..2], ["t", "t"], "the slot mid-stream: {slot:?}");
    let reserved: Lsn = fields[2].parse().expect("the slot reserved WAL");

    let manifest: Manifest =
        serde_json::from_str(unpacked.stdout.trim()).expect("unpack prints the manifest");
    assert_eq!(manifest.engine, "postgresql");
    assert_eq!(manifest.server_version, psql(&lab, "SHOW server_version"));
    assert_eq!(manifest.source_host, "primary");
    let position = &manifest.position;
    let identifier = psql(&lab, "SELECT system_identifier FROM pg_control_system()");
    let timeline = psql(&lab, "SELECT timeline_id FROM pg_control_checkpoint()");
    assert_eq!(
        position.get(SYSTEM_IDENTIFIER),
        Some(&identifier),
        "{position:?}"
    );
    assert_eq!(position.get(TIMELINE), Some(&timeline), "{position:?}");
    let start: Lsn = position[START_LSN].parse().expect("an LSN");
    let now: Lsn = psql(&lab, "SELECT pg_current_wal_lsn()")
        .parse()
        .expect("an LSN");
    assert!(
        reserved <= start && start < now,
        "slot {reserved}, backup start {start}, now {now}"
    );

    // The data directory, with the WAL from the backup's start and pg_basebackup's own
    // manifest.
    let label = lab.exec_ok(Host::Secondary, "cat /tmp/pgseed/backup_label");
    assert!(
        label.starts_with(&format!("START WAL LOCATION: {start} (file ")),
        "{label}"
    );
    let segment = label
        .split("(file ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the label names the start segment");
    let files: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for path in [
        "PG_VERSION",
        "global/pg_control",
        "backup_label",
        "backup_manifest",
        &format!("pg_wal/{segment}"),
        &table_file,
    ] {
        assert!(files.contains(&path), "{path} is not in the bundle");
    }
    assert!(!files.iter().any(|path| path.starts_with("./")));
    assert_eq!(
        lab.exec_ok(Host::Secondary, "cat /tmp/pgseed/PG_VERSION"),
        "15\n"
    );
    // The system identifier as the control file holds it (the machine's byte order).
    let control = lab.exec_ok(
        Host::Secondary,
        "od -A n -t u8 -N 8 /tmp/pgseed/global/pg_control",
    );
    assert_eq!(control.trim(), position[SYSTEM_IDENTIFIER]);
    // Every byte and the WAL from start to end, as PostgreSQL itself checks a base backup.
    lab.exec(
        Host::Secondary,
        "/usr/lib/postgresql/15/bin/pg_verifybackup --ignore=ha-setup-manifest.toml /tmp/pgseed",
    )
    .expect_code(0);

    // The unpacked directory gives the same position (`bundle pack --engine postgresql`).
    lab.exec_ok(
        Host::Secondary,
        &format!(
            "rm /tmp/pgseed/ha-setup-manifest.toml && {bin} bundle pack --dir /tmp/pgseed \
             --engine postgresql --server-version 15 --source-host primary > /tmp/pgseed.bundle",
            bin = binary().display()
        ),
    );
    let packed: Manifest = serde_json::from_str(&lab.exec_ok(
        Host::Secondary,
        &format!(
            "{} bundle inspect --format json /tmp/pgseed.bundle",
            binary().display()
        ),
    ))
    .expect("inspect prints the manifest");
    assert_eq!(&packed.position, position);

    lab.exec_ok(Host::Secondary, "rm -rf /tmp/pgseed /tmp/pgseed.bundle");
    psql(&lab, "DROP TABLE ha_seed_test");
}

#[test]
#[ignore = "needs the lab"]
fn a_stream_cut_midway_leaves_no_slot_and_no_pg_basebackup() {
    let lab = lab();
    let _cluster = Cluster::new(&lab);

    // The receiving side goes away after one MiB.
    let mut stream = spawn_stream(&lab, "15");
    let mut from = stream.stdout.take().expect("piped");
    assert_eq!(
        pump(&mut from, &mut std::io::sink(), Some(1 << 20)),
        1 << 20
    );
    assert_eq!(psql(&lab, SLOTS), "1");
    drop(from);
    let cut = finish(stream);
    assert_ne!(cut.code, Some(0), "{cut:?}");
    assert!(
        cut.stderr
            .contains("the receiving side closed the stream before the bundle's end"),
        "{cut:?}"
    );
    nothing_left(&lab);

    // ha-setup itself killed mid-stream: pg_basebackup and the slot's session, left behind,
    // end by themselves.
    let mut stream = lab
        .command()
        .args(["exec", "primary", "sh", "-c"])
        .arg(format!(
            "cd / && {PG_ENV} {} bundle stream --engine postgresql --server-version 15 \
             --source-host primary --work {WORK} --compress none & echo $! >&2; wait",
            binary().display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lab.sh runs");
    let mut from = stream.stdout.take().expect("piped");
    assert_eq!(
        pump(&mut from, &mut std::io::sink(), Some(1 << 20)),
        1 << 20
    );
    let mut pid = String::new();
    let mut stderr = stream.stderr.take().expect("piped");
    while !pid.ends_with('\n') {
        let mut byte = [0];
        assert_eq!(
            stderr.read(&mut byte).expect("stderr"),
            1,
            "no pid: {pid:?}"
        );
        pid.push(byte[0] as char);
    }
    lab.exec(Host::Primary, "pgrep -x pg_basebackup")
        .expect_code(0);
    lab.exec_ok(Host::Primary, &format!("kill -KILL {}", pid.trim()));
    drop(from);
    drop(stderr);
    let _ = stream.wait();
    wait_until("the slot is gone", || psql(&lab, SLOTS) == "0");
    wait_until("pg_basebackup is gone", || {
        lab.exec(Host::Primary, "pgrep -x pg_basebackup").code == Some(1)
    });
    // What the killed run left in its work directory, the next run clears.
    let next = finish(spawn_stream(&lab, "15"));
    next.expect_code(0);
    nothing_left(&lab);
}

/// Drops the slots a test made to fill the server, whatever happens.
struct Filled<'a>(&'a Lab);

impl Drop for Filled<'_> {
    fn drop(&mut self) {
        psql(
            self.0,
            "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots \
             WHERE slot_name LIKE 'ha\\_test\\_fill\\_%'",
        );
    }
}

#[test]
#[ignore = "needs the lab"]
fn without_a_free_replication_slot_nothing_is_streamed_and_it_says_why() {
    let lab = lab();
    let _cluster = Cluster::new(&lab);
    // Slots that reserve no WAL: they only take room.
    let filled = Filled(&lab);
    psql(
        &lab,
        "SELECT count(pg_create_physical_replication_slot('ha_test_fill_' || i)) \
         FROM generate_series(1, current_setting('max_replication_slots')::int \
         - (SELECT count(*) FROM pg_replication_slots)::int) i",
    );
    let refused = finish(spawn_stream(&lab, "15"));
    assert_ne!(refused.code, Some(0), "{refused:?}");
    assert!(refused.stdout.is_empty(), "a bundle was begun");
    assert!(
        refused.stderr.contains("no replication slot is free")
            && refused.stderr.contains("raise max_replication_slots"),
        "{refused:?}"
    );
    nothing_left(&lab);

    // Nor when PGHOST and PGPORT lead to another major version than the one asked for.
    drop(filled);
    let other = finish(spawn_stream(&lab, "16"));
    assert_ne!(other.code, Some(0), "{other:?}");
    assert!(other.stdout.is_empty(), "a bundle was begun");
    assert!(
        other.stderr.contains("is PostgreSQL 15.") && other.stderr.contains("not the 16"),
        "{other:?}"
    );
    nothing_left(&lab);
}
