//! MariaDB's data where real hosts keep it, on the lab: the datadir a mount point of its
//! own (the lab's default: a loop-mounted ext4 volume) through init, rebuild and restore;
//! a datadir elsewhere, found on the host without a config key; a failure once the
//! replica's MariaDB is stopped, which must leave it running on its old data; not enough
//! room, refused before anything stops; and restore refusing a node that holds data while
//! it is stopped or fenced.

use crate::util::Run;
use crate::util::lab::{Flavour, Host, Lab, Layout, lab};

fn state(lab: &Lab, name: &str) -> String {
    let dir = format!("{}/state-volume-{name}", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn ha(lab: &Lab, state: &str, args: &[&str]) -> Run {
    lab.ha_setup_with(&[("HA_SETUP_STATE_DIR", state)], args)
}

fn is_mount_point(lab: &Lab, host: Host, path: &str) -> bool {
    lab.exec(host, &format!("mountpoint -q {path}")).code == Some(0)
}

/// A reset lab whose secondary holds a database of its own (`before_init`, the data that
/// must be kept) and whose primary holds the application's table.
fn fresh(lab: &Lab) {
    lab.reset();
    assert_eq!(
        lab.datadir(Host::Secondary),
        (Layout::Mount, "/var/lib/mysql".to_owned()),
        "the lab's datadir is a mount point by default"
    );
    assert!(is_mount_point(lab, Host::Secondary, "/var/lib/mysql"));
    lab.sql_ok(Host::Secondary, "CREATE DATABASE before_init");
    lab.sql_ok(
        Host::Primary,
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1), (2), (3);",
    );
}

/// The directories the secondary's earlier data was moved into.
fn moved_aside(lab: &Lab, host: Host, datadir: &str) -> Vec<String> {
    let run = lab.exec(
        host,
        &format!("ls -d {datadir}/.ha-setup-old/*/ 2>/dev/null"),
    );
    run.stdout
        .lines()
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect()
}

#[test]
#[ignore = "needs the lab"]
fn init_and_rebuild_with_the_datadir_a_mount_point() {
    let lab = lab();
    fresh(&lab);
    let config = lab.write_config("volume-mount", "");
    let state = state(&lab, "mount");

    // Preflight says what it found, and measures the room on the data's own filesystem.
    let plan = ha(&lab, &state, &["plan", "-c", &config]);
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains("data in /var/lib/mysql (from the running server)"),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("settings go to /etc/mysql/mariadb.conf.d (from the last !includedir of /etc/mysql/my.cnf)"),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains(
            "free for the copy at /var/lib/mysql/.ha-setup-incoming (filesystem /dev/loop"
        ),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains("mounted at /var/lib/mysql)"),
        "{plan:?}"
    );

    let init = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    init.expect_code(0);
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT COUNT(*) FROM app.t"),
        "3"
    );
    assert!(is_mount_point(&lab, Host::Secondary, "/var/lib/mysql"));
    // The old data is kept on the same volume, its path printed.
    let aside = moved_aside(&lab, Host::Secondary, "/var/lib/mysql");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(init.stderr.contains(&aside[0]), "{init:?}");
    lab.exec(
        Host::Secondary,
        &format!("test -d {}/before_init", aside[0]),
    )
    .expect_code(0);
    lab.exec(
        Host::Secondary,
        "test ! -e /var/lib/mysql/.ha-setup-incoming",
    )
    .expect_code(0);
    // ha-setup's directories are no databases.
    assert_eq!(
        lab.sql_ok(
            Host::Secondary,
            "SELECT GROUP_CONCAT(schema_name ORDER BY schema_name) FROM information_schema.schemata"
        ),
        "app,ha_setup,information_schema,mysql,performance_schema,sys"
    );
    lab.sql_ok(Host::Primary, "INSERT INTO app.t VALUES (4)");
    lab.wait_for_sql(Host::Secondary, "SELECT COUNT(*) FROM app.t", "4");

    // rebuild: a fresh copy, the replica's data moved aside again on its own volume.
    let rebuild = ha(
        &lab,
        &state,
        &["recover", "rebuild", "-c", &config, "--yes"],
    );
    rebuild.expect_code(0);
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT COUNT(*) FROM app.t"),
        "4"
    );
    assert!(is_mount_point(&lab, Host::Secondary, "/var/lib/mysql"));
    assert_eq!(
        moved_aside(&lab, Host::Secondary, "/var/lib/mysql").len(),
        2
    );
    lab.sql_ok(Host::Primary, "INSERT INTO app.t VALUES (5)");
    lab.wait_for_sql(Host::Secondary, "SELECT COUNT(*) FROM app.t", "5");
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
}

#[test]
#[ignore = "needs the lab"]
fn restore_with_the_datadir_a_mount_point() {
    let lab = lab();
    fresh(&lab);
    let config = lab.write_config("volume-restore", "");
    let state = state(&lab, "restore");
    let bundle = format!("{}/volume-restore.bundle", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_file(&bundle);
    ha(
        &lab,
        &state,
        &["bundle", "create", "-c", &config, "--out", &bundle],
    )
    .expect_code(0);
    // The secondary's own database is someone's data: refused, then forced.
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
    let refused = ha(&lab, &state, &args);
    assert_eq!(refused.code, Some(3), "{refused:?}");
    assert!(refused.stderr.contains("before_init"), "{refused:?}");
    let forced: Vec<&str> = args.iter().copied().chain(["--force"]).collect();
    let restore = ha(&lab, &state, &forced);
    restore.expect_code(0);
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT COUNT(*) FROM app.t"),
        "3"
    );
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "0");
    assert!(is_mount_point(&lab, Host::Secondary, "/var/lib/mysql"));
    let aside = moved_aside(&lab, Host::Secondary, "/var/lib/mysql");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(restore.stderr.contains(&aside[0]), "{restore:?}");
    lab.exec(
        Host::Secondary,
        &format!("test -d {}/before_init", aside[0]),
    )
    .expect_code(0);
    // A second run changes nothing.
    ha(&lab, &state, &args).expect_code(0);
    assert_eq!(
        moved_aside(&lab, Host::Secondary, "/var/lib/mysql").len(),
        1
    );
    let _ = std::fs::remove_file(&bundle);
}

/// The secondary's datadir is a plain directory under /srv that its configuration names:
/// found there, whether the server runs (its own word) or not (its settings).
#[test]
#[ignore = "needs the lab"]
fn init_finds_a_datadir_at_another_path() {
    let lab = lab();
    fresh(&lab);
    lab.set_datadir(Host::Secondary, Layout::Plain, "/srv/mariadb-data");
    assert!(!is_mount_point(&lab, Host::Secondary, "/srv/mariadb-data"));
    let config = lab.write_config("volume-relocated", "");
    let state = state(&lab, "relocated");

    lab.ssh(Host::Secondary, "service mariadb stop >/dev/null 2>&1")
        .expect_code(0);
    let plan = ha(&lab, &state, &["plan", "-c", &config]);
    plan.expect_code(0);
    assert!(
        plan.stdout.contains(
            "data in /srv/mariadb-data (from the server's settings (mariadbd --verbose --help))"
        ),
        "{plan:?}"
    );
    lab.ssh(Host::Secondary, "service mariadb start >/dev/null 2>&1")
        .expect_code(0);

    let init = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    init.expect_code(0);
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT @@datadir"),
        "/srv/mariadb-data/"
    );
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT COUNT(*) FROM app.t"),
        "3"
    );
    let aside = moved_aside(&lab, Host::Secondary, "/srv/mariadb-data");
    assert_eq!(aside.len(), 1, "{aside:?}");
    lab.exec(
        Host::Secondary,
        &format!("test -d {}/before_init", aside[0]),
    )
    .expect_code(0);
    // The default place was left alone.
    assert!(moved_aside(&lab, Host::Secondary, "/var/lib/mysql").is_empty());
    lab.exec(Host::Secondary, "test ! -e /var/lib/mysql.ha-setup-old-*")
        .expect_code(0);
    lab.sql_ok(Host::Primary, "INSERT INTO app.t VALUES (4)");
    lab.wait_for_sql(Host::Secondary, "SELECT COUNT(*) FROM app.t", "4");
}

/// Undoes the stop-then-fail test's mounts in the secondary's mount namespace, also when
/// the test fails.
struct Injected<'a>(&'a Lab);

impl Drop for Injected<'_> {
    fn drop(&mut self) {
        self.0.exec(
            Host::Secondary,
            "umount /usr/bin/mariadb-backup 2>/dev/null; \
             umount /var/lib/mysql/.ha-setup-incoming/sys 2>/dev/null; true",
        );
    }
}

/// A failure once the replica's MariaDB is stopped (here: part of the copy cannot be moved
/// into the datadir, after the old data was moved aside) leaves it running on its old data,
/// with the copy kept for the next run, and an error that says so.
#[test]
#[ignore = "needs the lab"]
fn a_failure_after_the_stop_leaves_the_old_data_running() {
    let lab = lab();
    fresh(&lab);
    let config = lab.write_config("volume-stop-fail", "");
    let state = state(&lab, "stop-fail");
    let injected = Injected(&lab);

    // First run: the copy arrives, but preparing it fails (before anything is stopped).
    lab.exec_ok(
        Host::Secondary,
        "cp /usr/bin/mariadb-backup /tmp/mariadb-backup.real && \
         printf '#!/bin/sh\\ncase \" $* \" in *\" --prepare \"*) echo \"prepare refused by the test\" >&2; exit 1 ;; esac\\nexec /tmp/mariadb-backup.real \"$@\"\\n' > /tmp/mariadb-backup.wrap && \
         chmod 755 /tmp/mariadb-backup.wrap && \
         mount --bind /tmp/mariadb-backup.wrap /usr/bin/mariadb-backup",
    );
    let first = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    first.expect_code(1);
    assert!(first.stderr.contains("prepare refused"), "{first:?}");
    lab.exec_ok(
        Host::Secondary,
        "umount /usr/bin/mariadb-backup && \
         test -f /var/lib/mysql/.ha-setup-incoming/ha-setup-manifest.toml",
    );

    // Second run: part of the copy cannot be moved (a mount point inside it).
    lab.exec_ok(
        Host::Secondary,
        "d=/var/lib/mysql/.ha-setup-incoming/sys && mount --bind \"$d\" \"$d\"",
    );
    let second = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    second.expect_code(1);
    assert!(
        second
            .stderr
            .contains("The old data is back in /var/lib/mysql and MariaDB runs on it again"),
        "{second:?}"
    );
    assert!(
        second.stderr.contains("putting the copy in place failed"),
        "{second:?}"
    );
    // Running, on its own data; the copy waits; nothing half-done is left.
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SHOW DATABASES LIKE 'before_init'"),
        "before_init"
    );
    assert_eq!(lab.sql_ok(Host::Secondary, "SHOW DATABASES LIKE 'app'"), "");
    lab.exec_ok(
        Host::Secondary,
        "test -f /var/lib/mysql/.ha-setup-incoming/ha-setup-manifest.toml && \
         test -d /var/lib/mysql/.ha-setup-incoming/mysql && \
         test ! -e /var/lib/mysql/.ha-setup-old && \
         test ! -e /var/lib/ha-setup/seed.json",
    );

    // With the cause gone, the same command carries on from the copy already there.
    lab.exec_ok(
        Host::Secondary,
        "umount /var/lib/mysql/.ha-setup-incoming/sys",
    );
    let third = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    third.expect_code(0);
    assert!(
        third.stderr.contains("is on secondary already, checked"),
        "{third:?}"
    );
    drop(injected);
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SELECT COUNT(*) FROM app.t"),
        "3"
    );
    let aside = moved_aside(&lab, Host::Secondary, "/var/lib/mysql");
    assert_eq!(aside.len(), 1, "{aside:?}");
    lab.exec(
        Host::Secondary,
        &format!("test -d {}/before_init", aside[0]),
    )
    .expect_code(0);
}

/// Not enough room on the data's own filesystem: preflight refuses, and nothing stops.
#[test]
#[ignore = "needs the lab"]
fn init_refuses_when_the_data_volume_is_too_small() {
    let lab = lab();
    fresh(&lab);
    let config = lab.write_config("volume-full", "");
    let state = state(&lab, "full");
    // Leave about 100 MiB free on the secondary's data volume.
    lab.exec_ok(
        Host::Secondary,
        "free=$(df -B1 --output=avail /var/lib/mysql | tail -n 1) && \
         fallocate -l $((free - 100 * 1024 * 1024)) /var/lib/mysql/filler",
    );
    let init = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    lab.exec(Host::Secondary, "rm -f /var/lib/mysql/filler");
    init.expect_code(1);
    assert!(
        init.stderr
            .contains("free for the copy at /var/lib/mysql/.ha-setup-incoming"),
        "{init:?}"
    );
    assert!(init.stderr.contains("free at least"), "{init:?}");
    assert!(init.stderr.contains("nothing was changed"), "{init:?}");
    assert_eq!(
        lab.sql_ok(Host::Secondary, "SHOW DATABASES LIKE 'before_init'"),
        "before_init"
    );
    lab.exec_ok(
        Host::Secondary,
        "test ! -e /var/lib/mysql/.ha-setup-old && test ! -e /var/lib/mysql/.ha-setup-incoming",
    );
}

/// The restore guard: a node that holds a database of its own is refused (exit 3) also
/// when its MariaDB is stopped (the datadir's directories say so) or fenced.
#[test]
#[ignore = "needs the lab"]
fn restore_refuses_a_stopped_or_fenced_node_holding_data() {
    let lab = lab();
    fresh(&lab);
    let config = lab.write_config("volume-guard", "");
    let state = state(&lab, "guard");
    let bundle = format!("{}/volume-guard.bundle", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_file(&bundle);
    ha(
        &lab,
        &state,
        &["bundle", "create", "-c", &config, "--out", &bundle],
    )
    .expect_code(0);
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

    lab.sql_ok(Host::Secondary, "SET GLOBAL read_only = ON");
    let fenced = ha(&lab, &state, &args);
    assert_eq!(fenced.code, Some(3), "{fenced:?}");
    assert!(fenced.stderr.contains("before_init"), "{fenced:?}");
    assert!(fenced.stderr.contains("read-only (fenced)"), "{fenced:?}");

    lab.ssh(Host::Secondary, "service mariadb stop >/dev/null 2>&1")
        .expect_code(0);
    let stopped = ha(&lab, &state, &args);
    assert_eq!(stopped.code, Some(3), "{stopped:?}");
    assert!(stopped.stderr.contains("before_init"), "{stopped:?}");
    assert!(stopped.stderr.contains("is stopped"), "{stopped:?}");
    assert!(stopped.stderr.contains("--force"), "{stopped:?}");
    lab.exec_ok(
        Host::Secondary,
        "test -d /var/lib/mysql/before_init && test ! -e /var/lib/mysql/.ha-setup-old \
         && test ! -e /var/lib/mysql/.ha-setup-incoming",
    );
    let _ = std::fs::remove_file(&bundle);
}

/// Under systemd the service is the unit the host has, and `systemctl` runs it.
#[test]
#[ignore = "needs the lab"]
fn preflight_finds_the_systemd_unit() {
    let lab = lab();
    lab.reset();
    lab.set_flavour(Host::Secondary, Flavour::Systemd);
    let config = lab.write_config("volume-systemd", "");
    let state = state(&lab, "systemd");
    let plan = ha(&lab, &state, &["plan", "-c", &config]);
    lab.reset();
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains("service mariadb (systemd unit mariadb.service)"),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("service mariadb (/etc/init.d/mariadb)"),
        "{plan:?}"
    );
}
