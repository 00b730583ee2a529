//! Safety on the lab's real MariaDB hosts: a fence that gives up within its bound rather
//! than wait behind a long write, a promote that a replica still hearing its primary
//! refuses, and the replication password: rotated to every replica, never in the server's
//! logs, and correct under any sql_mode. And a certificate made for another address is
//! made again.

use std::time::{Duration, Instant};

use crate::util::Run;
use crate::util::lab::{Host, Lab, lab};

fn state(lab: &Lab, name: &str) -> String {
    let dir = format!("{}/state-{name}", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn ha(lab: &Lab, state: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut all = vec![("HA_SETUP_STATE_DIR", state)];
    all.extend_from_slice(env);
    lab.ha_setup_with(&all, args)
}

/// A fresh pair set up by init (with `extra` in the config and `env` for ha-setup), with
/// an application table.
fn pair(lab: &Lab, name: &str, extra: &str, env: &[(&str, &str)]) -> (String, String) {
    lab.reset();
    lab.sql_ok(
        Host::Primary,
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1), (2), (3);",
    );
    let config = lab.write_config(name, extra);
    let state = state(lab, name);
    ha(lab, &state, env, &["init", "-c", &config, "--yes"]).expect_code(0);
    (config, state)
}

/// A field of the replica's `SHOW SLAVE STATUS` ("" when it does not replicate).
fn slave_field(lab: &Lab, host: Host, field: &str) -> String {
    lab.exec_ok(
        host,
        &format!("mariadb -e 'SHOW SLAVE STATUS\\G' | sed -n 's/^ *{field}: //p'"),
    )
    .trim()
    .to_owned()
}

/// Waits until `check` holds; panics with `what` after `limit`, a guard against a hang.
#[track_caller]
fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The replica reconnects (a stop and start of its threads) and a new row arrives: the
/// link holds whatever password and settings it reconnects with.
#[track_caller]
fn survives_a_reconnect(lab: &Lab, row: u32) {
    lab.sql_ok(Host::Secondary, "STOP SLAVE; START SLAVE;");
    wait_until(Duration::from_secs(40), "the replica reconnecting", || {
        slave_field(lab, Host::Secondary, "Slave_IO_Running") == "Yes"
    });
    lab.sql_ok(Host::Primary, &format!("INSERT INTO app.t VALUES ({row})"));
    lab.wait_for_sql(
        Host::Secondary,
        &format!("SELECT COUNT(*) FROM app.t WHERE id = {row}"),
        "1",
    );
    assert_eq!(slave_field(lab, Host::Secondary, "Last_IO_Error"), "");
}

#[test]
#[ignore = "needs the lab"]
fn a_switchover_behind_a_long_write_gives_up_within_its_bound_and_names_it() {
    let lab = lab();
    let (config, state) = pair(
        &lab,
        "fence-bound",
        "\n[replication]\nfence_timeout_secs = 3\n",
        &[],
    );
    // The application: a user without SUPER, whose long write statement holds what
    // SET GLOBAL read_only waits for.
    lab.sql_ok(
        Host::Primary,
        "CREATE TABLE app.slow (id INT PRIMARY KEY, v INT); INSERT INTO app.slow VALUES (1, 0); \
         CREATE USER app@localhost IDENTIFIED BY 'app'; GRANT SELECT, INSERT, UPDATE ON app.* TO app@localhost;",
    );
    lab.wait_for_sql(Host::Secondary, "SELECT COUNT(*) FROM app.slow", "1");
    lab.exec_ok(
        Host::Primary,
        "nohup mariadb -u app -papp -e 'UPDATE app.slow SET v = v + 1 WHERE SLEEP(150) = 0' >/dev/null 2>&1 &",
    );
    lab.wait_for_sql(
        Host::Primary,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE app.slow%'",
        "1",
    );

    let switch = ha(&lab, &state, &[], &["switchover", "-c", &config, "--yes"]);
    assert!(
        switch.code.is_some_and(|code| code != 0),
        "the switchover must stop: {switch:?}"
    );
    for words in [
        "could not be fenced within 3s",
        "fence_timeout_secs",
        "app@localhost",
        "UPDATE app.slow SET v = v + 1 WHERE SLEEP(150) = 0",
        "nothing was swapped",
    ] {
        assert!(
            switch.stderr.contains(words),
            "{words:?} not said: {switch:?}"
        );
    }
    // The primary takes the application's writes, the replica still follows it.
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "0");
    lab.exec_ok(
        Host::Primary,
        "mariadb -u app -papp -e 'INSERT INTO app.slow VALUES (2, 0)'",
    );
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "1");
    assert_eq!(
        slave_field(&lab, Host::Secondary, "Master_Host"),
        lab.addr(Host::Primary)
    );
    lab.wait_for_sql(Host::Secondary, "SELECT COUNT(*) FROM app.slow", "2");

    // Once the statement is gone, the same switchover goes through.
    lab.exec_ok(
        Host::Primary,
        "for id in $(mariadb -N -e \"SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'app'\"); do mariadb -e \"KILL $id\"; done",
    );
    ha(&lab, &state, &[], &["switchover", "-c", &config, "--yes"]).expect_code(0);
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "0");
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "1");
}

#[test]
#[ignore = "needs the lab"]
fn promote_is_refused_while_the_replica_still_hears_the_primary() {
    let lab = lab();
    let (config, state) = pair(&lab, "witness", "connect_timeout_secs = 3\n", &[]);
    let promote = ["recover", "promote", "-c", &config, "--yes"];

    // Only this machine lost its route to the primary; the replica still streams from it.
    let _unblock = Unblock(&lab);
    lab.block(Host::Operator, Host::Primary);
    let refused = ha(&lab, &state, &[], &promote);
    assert_eq!(refused.code, Some(3), "{refused:?}");
    for words in [
        "primary is alive as seen from secondary",
        "receiving: running",
        "--force",
        "cannot be reached from here",
    ] {
        assert!(
            refused.stderr.contains(words),
            "{words:?} not said: {refused:?}"
        );
    }
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "1");
    assert_eq!(
        slave_field(&lab, Host::Secondary, "Slave_IO_Running"),
        "Yes"
    );

    // The replica loses it too: once it no longer receives, nobody reaches the primary.
    lab.block(Host::Secondary, Host::Primary);
    wait_until(
        Duration::from_secs(120),
        "the replica noticing its primary is gone",
        || slave_field(&lab, Host::Secondary, "Slave_IO_Running") != "Yes",
    );
    let promoted = ha(&lab, &state, &[], &promote);
    promoted.expect_code(0);
    assert!(
        promoted.stderr.contains(
            "verdict: primary is gone: neither this machine nor any replica reaches its database"
        ),
        "{promoted:?}"
    );
    assert!(
        promoted
            .stderr
            .contains("secondary: does not reach primary"),
        "{promoted:?}"
    );
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "0");
    lab.sql_ok(Host::Secondary, "INSERT INTO app.t VALUES (10)");
}

/// Lifts the test's blocks whatever happens (a block left behind would cut the next test's
/// primary off until its reset).
struct Unblock<'a>(&'a Lab);

impl Drop for Unblock<'_> {
    fn drop(&mut self) {
        for from in [Host::Operator, Host::Secondary] {
            let _ = self
                .0
                .command()
                .args(["unblock", from.name(), Host::Primary.name()])
                .output();
        }
    }
}

/// Every line of the server's general log and binary logs, for a password to be looked
/// for in.
fn logged(lab: &Lab, host: Host) -> String {
    lab.exec_ok(
        host,
        "cat /tmp/fence-general.log 2>/dev/null; \
         for f in $(mariadb -N -e 'SHOW BINARY LOGS' 2>/dev/null | cut -f1); do \
         mariadb-binlog --base64-output=never \"$(mariadb -N -e 'SELECT @@datadir')/$f\" 2>/dev/null; done",
    )
}

#[test]
#[ignore = "needs the lab"]
fn a_new_password_reaches_every_replica_and_never_the_servers_logs() {
    let lab = lab();
    let extra = "\n[replication]\npassword_env = \"HA_SETUP_REPL_PASSWORD\"\n";
    let first = "first-Pw-7731";
    let (config, state) = pair(&lab, "rotate", extra, &[("HA_SETUP_REPL_PASSWORD", first)]);
    for host in [Host::Primary, Host::Secondary] {
        lab.sql_ok(
            host,
            "SET GLOBAL general_log_file = '/tmp/fence-general.log', general_log = ON",
        );
    }

    let second = "second-Pw-9917";
    let rotate = ha(
        &lab,
        &state,
        &[("HA_SETUP_REPL_PASSWORD", second)],
        &["init", "-c", &config, "--yes"],
    );
    rotate.expect_code(0);
    assert!(
        rotate.stderr.contains("the replication password changed"),
        "{rotate:?}"
    );
    for host in [Host::Primary, Host::Secondary] {
        assert_eq!(
            lab.exec_ok(host, "cat /etc/ha-setup/replication-password"),
            second,
            "{host:?}"
        );
    }
    survives_a_reconnect(&lab, 20);
    // A second run finds everything in place.
    let again = ha(
        &lab,
        &state,
        &[("HA_SETUP_REPL_PASSWORD", second)],
        &["init", "-c", &config, "--yes"],
    );
    again.expect_code(0);
    assert!(
        !again.stderr.contains("the replication password changed"),
        "{again:?}"
    );

    for host in [Host::Primary, Host::Secondary] {
        lab.sql_ok(host, "SET GLOBAL general_log = OFF");
        let logs = logged(&lab, host);
        assert!(logs.contains("ha_repl"), "no logs read on {host:?}");
        for password in [first, second] {
            assert!(
                !logs.contains(password),
                "{password} is in {host:?}'s general or binary log"
            );
        }
        lab.exec_ok(host, "rm -f /tmp/fence-general.log");
    }
}

/// The server's settings file that turns NO_BACKSLASH_ESCAPES on, for one test.
const SQL_MODE_CNF: &str = "/etc/mysql/mariadb.conf.d/95-fence-test-sql-mode.cnf";

/// Takes the test's sql_mode file away again, whatever happens.
struct SqlMode<'a>(&'a Lab);

impl SqlMode<'_> {
    fn set(lab: &Lab, on: bool) {
        for host in [Host::Primary, Host::Secondary] {
            let file = if on {
                format!(
                    "printf '[mariadb]\\nsql_mode = NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION\\n' > {SQL_MODE_CNF}"
                )
            } else {
                format!("rm -f {SQL_MODE_CNF}")
            };
            lab.exec_ok(host, &file);
            lab.ssh(host, "service mariadb restart >/dev/null 2>&1")
                .expect_code(0);
        }
    }
}

impl Drop for SqlMode<'_> {
    fn drop(&mut self) {
        SqlMode::set(self.0, false);
    }
}

#[test]
#[ignore = "needs the lab"]
fn a_password_with_quotes_and_backslashes_under_no_backslash_escapes() {
    let lab = lab();
    lab.reset();
    SqlMode::set(&lab, true);
    let _restore = SqlMode(&lab);
    for host in [Host::Primary, Host::Secondary] {
        assert!(
            lab.sql_ok(host, "SELECT @@GLOBAL.sql_mode")
                .contains("NO_BACKSLASH_ESCAPES")
        );
    }
    let password = r#"it's a \ "quoted" \'pass\\"#;
    let env = [("HA_SETUP_REPL_PASSWORD", password)];
    let extra = "\n[replication]\npassword_env = \"HA_SETUP_REPL_PASSWORD\"\n";
    lab.sql_ok(
        Host::Primary,
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1), (2), (3);",
    );
    let config = lab.write_config("sql-mode", extra);
    let state = state(&lab, "sql-mode");
    ha(&lab, &state, &env, &["init", "-c", &config, "--yes"]).expect_code(0);
    // The restart in init kept the file's sql_mode: the test still means something.
    assert!(
        lab.sql_ok(Host::Primary, "SELECT @@GLOBAL.sql_mode")
            .contains("NO_BACKSLASH_ESCAPES")
    );
    assert_eq!(
        lab.exec_ok(Host::Secondary, "cat /etc/ha-setup/replication-password"),
        password
    );
    // The user's hash is the password's, compared by bytes (no quoting to get wrong here).
    assert_eq!(
        lab.sql_ok(
            Host::Primary,
            &format!(
                "SELECT authentication_string = PASSWORD(X'{}') FROM mysql.user WHERE User = 'ha_repl'",
                hex::encode(password)
            )
        ),
        "1"
    );
    survives_a_reconnect(&lab, 30);
    // What the replica keeps is recognised as the same password: nothing to change.
    let again = ha(&lab, &state, &env, &["init", "-c", &config, "--yes"]);
    again.expect_code(0);
    assert!(
        !again.stderr.contains("the replication password changed"),
        "{again:?}"
    );
}

#[test]
#[ignore = "needs the lab"]
fn a_certificate_made_for_another_address_is_made_again() {
    let lab = lab();
    let (config, state) = pair(&lab, "cert-address", "", &[]);
    // The primary's certificate now names another address (as after a change of its
    // replication address), signed by its CA: the replica's check of it fails.
    lab.exec_ok(
        Host::Primary,
        "set -e; cd /etc/mysql/ha-setup-tls; \
         openssl req -newkey rsa:2048 -nodes -subj /CN=203.0.113.9 -keyout server-key.pem -out x.csr 2>/dev/null; \
         printf 'subjectAltName=IP:203.0.113.9\\n' > x.ext; \
         openssl x509 -req -in x.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 -extfile x.ext -out server-cert.pem 2>/dev/null; \
         rm -f x.csr x.ext; chown mysql: server-key.pem; chmod 0644 server-cert.pem; mariadb -e 'FLUSH SSL'",
    );
    lab.sql_ok(Host::Secondary, "STOP SLAVE; START SLAVE;");
    wait_until(
        Duration::from_secs(40),
        "the replica refusing the certificate",
        || !slave_field(&lab, Host::Secondary, "Last_IO_Error").is_empty(),
    );

    let init = ha(&lab, &state, &[], &["init", "-c", &config, "--yes"]);
    init.expect_code(0);
    assert!(
        init.stderr
            .contains("the one there was made for 203.0.113.9"),
        "{init:?}"
    );
    lab.exec_ok(
        Host::Primary,
        "ls /etc/mysql/ha-setup-tls/server-cert.pem.ha-setup-old-*",
    );
    survives_a_reconnect(&lab, 40);
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
}
