//! `topology = "galera"` on the lab's three real MariaDB hosts with Debian's galera-4,
//! without systemd: init from a primary with rows (mariadb-backup SST over TLS), writes on
//! any node, verify while two nodes take writes and with a row changed on one node behind
//! Galera's back, one node killed and rejoined, every node killed and the cluster
//! bootstrapped from the highest position, a rebuild, two data nodes and an arbitrator
//! (garbd), and the bad inputs refused before anything changes. One init serves each story (CI time).

use std::time::{Duration, Instant};

use crate::util::lab::{Flavour, Host, Lab, lab};
use crate::util::verify::{Updates, range_holds, table, updated, verify_json};
use crate::util::{HaSetup, Run};

const NODES: [(Host, &str); 3] = [
    (Host::Primary, "db1"),
    (Host::Secondary, "db2"),
    (Host::Tertiary, "db3"),
];

/// A Galera config naming the lab's three hosts db1, db2 and db3 (`arbitrator`: db3 is
/// garbd's host), with a state directory of its own.
fn config(lab: &Lab, name: &str, arbitrator: bool) -> (String, String) {
    let path = format!("{}/{name}.toml", lab.var("HA_LAB_ROOT"));
    let node = |host: Host, extra: &str| {
        format!(
            "host = \"{}\"\nssh_user = \"root\"\nidentity_file = \"{}\"\n{extra}",
            lab.addr(host),
            lab.var("HA_LAB_KEY")
        )
    };
    let text = format!(
        "engine = \"mariadb\"\ntopology = \"galera\"\n\n[nodes.db1]\n{}\n[nodes.db2]\n{}\n[nodes.db3]\n{}\n\
         [ssh]\nknown_hosts = \"{}\"\nhost_key_policy = \"strict\"\n",
        node(Host::Primary, ""),
        node(Host::Secondary, ""),
        node(
            Host::Tertiary,
            if arbitrator {
                "role = \"arbitrator\"\n"
            } else {
                ""
            }
        ),
        lab.var("HA_LAB_KNOWN_HOSTS"),
    );
    std::fs::write(&path, text).expect("the lab root is writable");
    let state = format!("{}/state-{name}", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_dir_all(&state);
    (path, state)
}

fn ha(lab: &Lab, state: &str, args: &[&str]) -> Run {
    lab.ha_setup_with(&[("HA_SETUP_STATE_DIR", state)], args)
}

/// The application on db1: rows, and a table without a primary key (warned about).
fn seed_application(lab: &Lab) {
    lab.sql_ok(
        Host::Primary,
        "CREATE DATABASE app; \
         CREATE TABLE app.t (id INT PRIMARY KEY, note VARCHAR(64) NOT NULL); \
         INSERT INTO app.t VALUES (1, 'before'), (2, 'before'); \
         CREATE TABLE app.audit (line VARCHAR(64)) ENGINE=InnoDB;",
    );
}

/// SIGKILL to a host's mariadbd (no clean shutdown: grastate.dat keeps seqno -1).
fn kill(lab: &Lab, host: Host) {
    lab.exec(host, "kill -9 $(cat /run/mysqld/mysqld.pid)")
        .expect_code(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while lab.exec(host, "pgrep -x mariadbd").code == Some(0) {
        assert!(
            Instant::now() < deadline,
            "mariadbd on {host:?} did not die"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A node's wsrep status value.
fn wsrep(lab: &Lab, host: Host, name: &str) -> String {
    lab.sql_ok(
        host,
        &format!(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '{name}'"
        ),
    )
}

/// Waits until `host` counts `size` members in a primary component (Galera evicts a
/// killed node after its suspect timeout, a few seconds).
#[track_caller]
fn wait_for_size(lab: &Lab, host: Host, size: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = lab.sql(
            host,
            "SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME) FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_SIZE', 'WSREP_CLUSTER_STATUS')",
        );
        if run.stdout.trim() == format!("{size},Primary") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{host:?} never counted {size} members in a primary component: {run:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn rows(lab: &Lab, host: Host) -> String {
    lab.sql_ok(host, "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t")
}

/// Every node's status entry, as (name, state) pairs.
fn states(report: &serde_json::Value) -> Vec<(String, String)> {
    report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or("").to_owned(),
                n["cluster"]["wsrep_local_state_comment"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_two_node_galera_or_one_with_postgresql_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ha-setup.toml");
    std::fs::write(
        &path,
        "engine = \"mariadb\"\ntopology = \"galera\"\n[nodes.db1]\nhost = \"10.0.0.1\"\n[nodes.db2]\nhost = \"10.0.0.2\"\n",
    )
    .unwrap();
    let run = HaSetup::new(dir.path())
        .args(["config", "check", "-c", "ha-setup.toml"])
        .run();
    run.expect_code(2);
    assert!(
        run.stderr.contains("not a majority") && run.stderr.contains("role = \"arbitrator\""),
        "{run:?}"
    );
    std::fs::write(
        &path,
        "engine = \"postgresql\"\ntopology = \"galera\"\n[nodes.db1]\nhost = \"10.0.0.1\"\n\
         [nodes.db2]\nhost = \"10.0.0.2\"\n[nodes.db3]\nhost = \"10.0.0.3\"\n",
    )
    .unwrap();
    let run = HaSetup::new(dir.path())
        .args(["init", "-c", "ha-setup.toml", "--yes"])
        .run();
    run.expect_code(2);
    assert!(run.stderr.contains("needs engine = \"mariadb\""), "{run:?}");
}

#[test]
#[ignore = "needs the lab"]
fn a_galera_cluster_is_set_up_written_to_crashed_and_bootstrapped_from_the_highest_position() {
    let lab = lab();
    lab.reset();
    seed_application(&lab);
    let (config, state) = config(&lab, "galera", false);

    // The plan names the table without a primary key, and changes nothing.
    let plan = ha(&lab, &state, &["plan", "-c", &config, "init"]);
    plan.expect_code(0);
    assert!(
        plan.stdout.contains("WARN") && plan.stdout.contains("app.audit"),
        "{plan:?}"
    );
    assert_eq!(wsrep(&lab, Host::Primary, "WSREP_READY"), "OFF");

    let init = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    init.expect_code(0);
    assert!(init.stdout.contains("form the Galera cluster"), "{init:?}");
    for (host, _) in NODES {
        assert_eq!(wsrep(&lab, host, "WSREP_LOCAL_STATE_COMMENT"), "Synced");
        assert_eq!(wsrep(&lab, host, "WSREP_CLUSTER_SIZE"), "3");
        assert_eq!(rows(&lab, host), "1,2");
    }
    // The joiners' own data was moved aside, not deleted; mariadb-backup logged in by
    // unix_socket, no password in any settings file; replication is TLS.
    for host in [Host::Secondary, Host::Tertiary] {
        lab.exec(host, "ls -d /var/lib/mysql/.ha-setup-old/*/mysql")
            .expect_code(0);
    }
    let cnf = lab.exec_ok(
        Host::Secondary,
        "cat /etc/mysql/mariadb.conf.d/90-ha-setup.cnf",
    );
    assert!(cnf.contains("wsrep_sst_auth = mysql:\n"), "{cnf}");
    assert!(
        cnf.contains("encrypt = 3") && cnf.contains("socket.ssl_ca="),
        "{cnf}"
    );
    lab.exec(
        Host::Secondary,
        "echo | timeout 5 openssl s_client -connect 198.51.100.11:4567 2>/dev/null | grep -q 'BEGIN CERTIFICATE'",
    )
    .expect_code(0);

    // Writes on two different nodes appear on all three.
    lab.sql_ok(Host::Secondary, "INSERT INTO app.t VALUES (3, 'on db2')");
    lab.sql_ok(Host::Tertiary, "INSERT INTO app.t VALUES (4, 'on db3')");
    for (host, _) in NODES {
        lab.wait_for_sql(
            host,
            "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t",
            "1,2,3,4",
        );
    }
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["link"], "alive");
    assert_eq!(report["cluster_size"], 3);
    assert_eq!(
        states(&report),
        [("db1", "Synced"), ("db2", "Synced"), ("db3", "Synced")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    // verify while the application writes on two nodes: every data node is compared with
    // db1, the write node, and holds the same; every table is compared.
    lab.sql_ok(
        Host::Primary,
        "CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, v INT NOT NULL); \
         USE app; INSERT INTO app.items SELECT seq, CONCAT('item-', seq), 0 FROM seq_1_to_5000;",
    );
    for (host, _) in NODES {
        lab.wait_for_sql(host, "SELECT COUNT(*) FROM app.items", "5000");
    }
    let (on_db2, on_db3) = (
        Updates::start(&lab, Host::Secondary, 1, 2500),
        Updates::start(&lab, Host::Tertiary, 2, 2500),
    );
    std::thread::sleep(Duration::from_secs(1));
    let before = updated(&lab, Host::Primary);
    let (code, verified, stderr) = verify_json(&lab, &state, &config);
    let after = updated(&lab, Host::Primary);
    on_db2.stop(&lab);
    on_db3.stop(&lab);
    assert!(after > before, "no updates went on during verify");
    assert_eq!(code, Some(0), "{verified:#}\n{stderr}");
    assert_eq!(
        (
            &verified["topology"],
            &verified["primary"],
            &verified["result"]
        ),
        (&"galera".into(), &"db1".into(), &"identical".into()),
        "{verified:#}"
    );
    let nodes: Vec<&str> = verified["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(nodes, ["db2", "db3"], "{verified:#}");
    for node in ["db2", "db3"] {
        for name in ["app.audit", "app.items", "app.t"] {
            let t = table(&verified, node, name);
            assert_eq!(t["result"], "same", "{node}: {t}");
            assert!(t["chunks"].as_u64() > Some(0), "{node}: {t}");
        }
    }
    assert_eq!(table(&verified, "db2", "app.audit")["whole_table"], true);

    // A row changed on db3 behind Galera's back (this session's writes not replicated):
    // found on db3, in a range that holds it; db2 is the same. Then set back the same way.
    lab.sql_ok(
        Host::Tertiary,
        "SET SESSION wsrep_on = OFF; UPDATE app.items SET name = 'changed behind' WHERE id = 3700",
    );
    let (code, verified, stderr) = verify_json(&lab, &state, &config);
    assert_eq!(code, Some(4), "{verified:#}\n{stderr}");
    assert_eq!(verified["result"], "differs", "{verified:#}");
    let items = table(&verified, "db3", "app.items");
    assert_eq!(items["result"], "differs", "{items}");
    assert!(range_holds(items, 3700), "{items}");
    assert_eq!(verified["nodes"][1]["result"], "differs", "{verified:#}");
    assert_eq!(verified["nodes"][0]["result"], "same", "{verified:#}");
    lab.sql_ok(
        Host::Tertiary,
        "SET SESSION wsrep_on = OFF; UPDATE app.items SET name = 'item-3700' WHERE id = 3700",
    );
    let (code, verified, stderr) = verify_json(&lab, &state, &config);
    assert_eq!(code, Some(0), "{verified:#}\n{stderr}");

    // A second init changes nothing.
    let again = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    again.expect_code(0);
    assert!(
        again.stdout.contains("init: nothing to change"),
        "{again:?}"
    );

    // Someone edited ha-setup's settings on db2 by hand (read at its next start): init puts
    // the file back and, the change being one only a restart applies, restarts db2 alone,
    // once db1 and db3 are Synced, and waits until it is Synced again. The edited file is
    // kept.
    let cnf = "/etc/mysql/mariadb.conf.d/90-ha-setup.cnf";
    lab.exec_ok(
        Host::Secondary,
        &format!("sed -i 's/^binlog_format = ROW$/binlog_format = MIXED/' {cnf}"),
    );
    let rolled = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    rolled.expect_code(0);
    assert!(
        rolled.stderr.contains("RESTART MariaDB on db2"),
        "{rolled:?}"
    );
    assert!(rolled.stderr.contains("binlog_format"), "{rolled:?}");
    assert!(
        !rolled.stderr.contains("RESTART MariaDB on db1"),
        "{rolled:?}"
    );
    assert!(
        !rolled.stderr.contains("RESTART MariaDB on db3"),
        "{rolled:?}"
    );
    assert_eq!(
        lab.exec_ok(
            Host::Secondary,
            &format!("grep -c '^binlog_format = ROW$' {cnf}")
        )
        .trim(),
        "1"
    );
    lab.exec_ok(
        Host::Secondary,
        &format!("grep -l '^binlog_format = MIXED$' {cnf}.ha-setup-bak-*"),
    );
    assert_eq!(
        wsrep(&lab, Host::Secondary, "WSREP_LOCAL_STATE_COMMENT"),
        "Synced"
    );
    assert_eq!(wsrep(&lab, Host::Primary, "WSREP_CLUSTER_SIZE"), "3");

    // A Primary component runs: bootstrap is refused.
    let refused = ha(
        &lab,
        &state,
        &["recover", "bootstrap", "-c", &config, "--yes"],
    );
    refused.expect_code(3);
    assert!(refused.stderr.contains("primary component"), "{refused:?}");

    // One node killed: the others keep serving, status is degraded, rejoin brings it back.
    kill(&lab, Host::Tertiary);
    wait_for_size(&lab, Host::Primary, 2);
    lab.sql_ok(Host::Primary, "INSERT INTO app.t VALUES (5, 'db3 away')");
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(
        (code, &report["link"]),
        (Some(4), &"down".into()),
        "{report}"
    );
    let nagios = ha(
        &lab,
        &state,
        &["status", "-c", &config, "--format", "nagios"],
    );
    assert_eq!(nagios.code, Some(2), "{nagios:?}");
    assert!(nagios.stdout.starts_with("HA-SETUP CRITICAL"), "{nagios:?}");
    ha(&lab, &state, &["recover", "rejoin", "-c", &config, "--yes"]).expect_code(0);
    assert_eq!(rows(&lab, Host::Tertiary), "1,2,3,4,5");

    // Every node killed, db1 first: db2 and db3 hold a later write. Bootstrap must not
    // choose db1, and nothing is lost.
    kill(&lab, Host::Primary);
    wait_for_size(&lab, Host::Secondary, 2);
    lab.sql_ok(
        Host::Secondary,
        "INSERT INTO app.t VALUES (6, 'after db1 died')",
    );
    std::thread::scope(|scope| {
        scope.spawn(|| kill(&lab, Host::Secondary));
        scope.spawn(|| kill(&lab, Host::Tertiary));
    });
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(4), "{report}");
    assert!(
        report["problems"].to_string().contains("recover bootstrap"),
        "{report}"
    );
    let dry = ha(
        &lab,
        &state,
        &["recover", "bootstrap", "-c", &config, "--dry-run"],
    );
    dry.expect_code(0);
    assert!(dry.stdout.contains("bootstrap from db2"), "{dry:?}");
    assert!(dry.stdout.contains("--wsrep-recover"), "{dry:?}");
    for (host, _) in NODES {
        assert_eq!(
            lab.exec(host, "pgrep -x mariadbd").code,
            Some(1),
            "the dry run started nothing"
        );
    }
    let boot = ha(
        &lab,
        &state,
        &["recover", "bootstrap", "-c", &config, "--yes"],
    );
    boot.expect_code(0);
    assert!(boot.stdout.contains("from db2's data"), "{boot:?}");
    for (host, _) in NODES {
        assert_eq!(wsrep(&lab, host, "WSREP_LOCAL_STATE_COMMENT"), "Synced");
        assert_eq!(rows(&lab, host), "1,2,3,4,5,6");
    }
    // safe_to_bootstrap was set on the chosen node only (db1 and db3 joined it).
    assert_eq!(
        lab.exec_ok(
            Host::Primary,
            "grep safe_to_bootstrap /var/lib/mysql/grastate.dat"
        )
        .trim(),
        "safe_to_bootstrap: 0"
    );

    // A rebuild: db3's data moved aside, a full state transfer, by default not from db1
    // (the write node); --from names the donor, db1 here, and is honoured.
    let plan = ha(
        &lab,
        &state,
        &["recover", "rebuild", "db3", "-c", &config, "--dry-run"],
    );
    plan.expect_code(0);
    assert!(plan.stderr.contains("not from db1"), "{plan:?}");
    let itself = ha(
        &lab,
        &state,
        &[
            "recover", "rebuild", "db3", "--from", "db3", "-c", &config, "--yes",
        ],
    );
    itself.expect_code(2);
    assert!(
        itself.stderr.contains("names the node being rebuilt"),
        "{itself:?}"
    );
    let before = lab
        .exec_ok(Host::Tertiary, "ls /var/lib/mysql/.ha-setup-old | wc -l")
        .trim()
        .to_owned();
    let donor_log = "stat -c %Y /var/lib/mysql/mariabackup.backup.log 2>/dev/null || echo none";
    let donated = lab.exec_ok(Host::Primary, donor_log);
    let usual = lab.sql_ok(Host::Tertiary, "SELECT @@wsrep_sst_donor");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let rebuild = ha(
        &lab,
        &state,
        &[
            "recover", "rebuild", "db3", "--from", "db1", "-c", &config, "--yes",
        ],
    );
    rebuild.expect_code(0);
    assert!(rebuild.stderr.contains("from db1, as asked"), "{rebuild:?}");
    let after = lab
        .exec_ok(Host::Tertiary, "ls /var/lib/mysql/.ha-setup-old | wc -l")
        .trim()
        .to_owned();
    assert_ne!(before, after, "the old data was moved aside");
    assert_eq!(rows(&lab, Host::Tertiary), "1,2,3,4,5,6");
    assert_ne!(
        lab.exec_ok(Host::Primary, donor_log),
        donated,
        "db1 gave the state transfer (its backup log was written again)"
    );
    // The usual donors are back, in the file and at run time.
    assert_eq!(
        lab.sql_ok(Host::Tertiary, "SELECT @@wsrep_sst_donor"),
        usual
    );
    let cnf = lab.exec_ok(
        Host::Tertiary,
        "grep '^wsrep_sst_donor' /etc/mysql/mariadb.conf.d/90-ha-setup.cnf",
    );
    assert_eq!(cnf.trim(), format!("wsrep_sst_donor = {usual}"));
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
}

#[test]
#[ignore = "needs the lab"]
fn two_data_nodes_and_an_arbitrator_survive_the_loss_of_one() {
    let lab = lab();
    lab.reset();
    // db1 runs its services under systemd: the cluster starts there with galera_new_cluster.
    lab.set_flavour(Host::Primary, Flavour::Systemd);
    seed_application(&lab);
    let (config, state) = config(&lab, "galera-arbitrator", true);
    ha(&lab, &state, &["init", "-c", &config, "--yes"]).expect_code(0);
    assert_eq!(wsrep(&lab, Host::Primary, "WSREP_CLUSTER_SIZE"), "3");
    assert_eq!(lab.exec(Host::Tertiary, "pgrep -x garbd").code, Some(0));
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["nodes"][2]["role"], "arbitrator");
    // verify compares the data nodes only: garbd holds nothing.
    let (code, verified, stderr) = verify_json(&lab, &state, &config);
    assert_eq!(code, Some(0), "{verified:#}\n{stderr}");
    assert_eq!(
        verified["nodes"].as_array().map(Vec::len),
        Some(1),
        "{verified:#}"
    );
    assert_eq!(verified["nodes"][0]["name"], "db2", "{verified:#}");

    kill(&lab, Host::Secondary);
    wait_for_size(&lab, Host::Primary, 2);
    // db1 and garbd are the majority: db1 keeps taking writes.
    lab.sql_ok(Host::Primary, "INSERT INTO app.t VALUES (3, 'db2 lost')");
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(
        (code, &report["link"]),
        (Some(4), &"down".into()),
        "{report}"
    );
    ha(&lab, &state, &["recover", "rejoin", "-c", &config, "--yes"]).expect_code(0);
    assert_eq!(rows(&lab, Host::Secondary), "1,2,3");
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");

    // The arbitrator's host gets a database: the config names it a data node, and init
    // joins it (garbd stopped, its CA given to the running members).
    // Its first state transfer is cut mid-way (the donor's stream reset after 1 MiB): the
    // join fails, db3's old data stays where it was moved to, and the message says where
    // and which logs to read; the others run on. Once the link is whole, the same init
    // carries on.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("role = \"arbitrator\"\n", "")).unwrap();
    lab.break_after(Host::Tertiary, 4444, 1);
    let cut = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    assert_ne!(cut.code, Some(0), "{cut:?}");
    assert!(cut.stderr.contains("stop garbd on db3"), "{cut:?}");
    assert!(
        cut.stderr.contains("db3 did not join the cluster"),
        "{cut:?}"
    );
    assert!(cut.stderr.contains("mariabackup."), "{cut:?}");
    let kept = lab.exec_ok(Host::Tertiary, "ls -d /var/lib/mysql/.ha-setup-old/*/mysql");
    assert!(
        cut.stderr.contains(kept.trim().trim_end_matches("/mysql")),
        "the message names where the old data is ({kept}): {cut:?}"
    );
    // Left stopped, as the message says: mysqld_safe (or systemd) would otherwise start
    // the aborted joiner again and again, and the pieces of the failed transfer are gone.
    assert!(cut.stderr.contains("MariaDB on db3 is stopped"), "{cut:?}");
    assert_eq!(lab.exec(Host::Tertiary, "pgrep -x mariadbd").code, Some(1));
    assert_eq!(
        lab.exec(
            Host::Tertiary,
            "pgrep -u mysql -f 'socat|mbstream|wsrep_sst_'"
        )
        .code,
        Some(1)
    );
    for host in [Host::Primary, Host::Secondary] {
        assert_eq!(wsrep(&lab, host, "WSREP_LOCAL_STATE_COMMENT"), "Synced");
    }
    lab.sql_ok(
        Host::Primary,
        "INSERT INTO app.t VALUES (4, 'while db3 failed')",
    );
    lab.heal(Host::Tertiary);
    let grown = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    grown.expect_code(0);
    assert_eq!(lab.exec(Host::Tertiary, "pgrep -x garbd").code, Some(1));
    assert_eq!(
        wsrep(&lab, Host::Tertiary, "WSREP_LOCAL_STATE_COMMENT"),
        "Synced"
    );
    assert_eq!(rows(&lab, Host::Tertiary), "1,2,3,4");
    lab.exec_ok(Host::Tertiary, &format!("test -d {}", kept.trim()));
    let (code, report) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{report}");
}

#[test]
#[ignore = "needs the lab"]
fn bad_inputs_are_refused_before_anything_changes() {
    let lab = lab();
    lab.reset();
    seed_application(&lab);
    lab.sql_ok(
        Host::Primary,
        "CREATE TABLE app.legacy (id INT PRIMARY KEY) ENGINE=MyISAM",
    );
    lab.sql_ok(Host::Tertiary, "CREATE DATABASE shop");
    // db2's packets no longer reach db3.
    lab.block(Host::Secondary, Host::Tertiary);
    let (config, state) = config(&lab, "galera-bad", false);
    // Two nodes hold data and none is marked: ha-setup will not choose (exit 3).
    let unmarked = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    unmarked.expect_code(3);
    assert!(
        unmarked.stderr.contains("db1: app; db3: shop"),
        "{unmarked:?}"
    );
    // db1 marked as the start: db3's own database, the MyISAM table and the blocked port
    // are each named by preflight.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen("[nodes.db1]\n", "[nodes.db1]\nrole = \"primary\"\n", 1),
    )
    .unwrap();
    let init = ha(&lab, &state, &["init", "-c", &config, "--yes"]);
    lab.unblock(Host::Secondary, Host::Tertiary);
    init.expect_code(1);
    let out = format!("{}{}", init.stdout, init.stderr);
    assert!(
        out.contains("FAIL") && out.contains("app.legacy (MyISAM)"),
        "{init:?}"
    );
    assert!(out.contains("own (shop)"), "{init:?}");
    assert!(
        out.contains("db2 cannot reach db3 at 198.51.100.13:4567"),
        "{init:?}"
    );
    assert!(out.contains("nothing was changed"), "{init:?}");
    // Nothing changed: no node runs Galera, db3 still has its database.
    for (host, _) in NODES {
        assert_eq!(wsrep(&lab, host, "WSREP_READY"), "OFF");
    }
    assert_eq!(
        lab.sql_ok(Host::Tertiary, "SHOW DATABASES LIKE 'shop'"),
        "shop"
    );
}
