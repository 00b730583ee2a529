//! The `ha-setup init` wizard as a person meets it: through a real pseudo-terminal, on the
//! operator, against the lab's hosts. And what it does when there is no one to ask.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use expectrl::session::OsSession as Session;
use expectrl::{ControlCode, Eof, Expect};

use crate::util::lab::{Host, Lab, lab};
use crate::util::{HaSetup, binary};

/// A HOME of the test's own on the operator (the lab root is visible there): the lab's
/// key as ~/.ssh/id_ed25519, and a known_hosts without the lab's host keys, so the wizard
/// must show them and ask.
fn operator_home(lab: &Lab, name: &str) -> PathBuf {
    let home = PathBuf::from(format!("{}/wizard-{name}", lab.var("HA_LAB_ROOT")));
    let _ = std::fs::remove_dir_all(&home);
    let ssh = home.join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(lab.var("HA_LAB_KEY"), ssh.join("id_ed25519")).unwrap();
    std::fs::set_permissions(
        ssh.join("id_ed25519"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        ssh.join("known_hosts"),
        "# no lab keys here\n192.0.2.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHfakefakefakefakefakefakefakefakefakefakefake\n",
    )
    .unwrap();
    home
}

/// `ha-setup ARGS` on the operator in a pseudo-terminal, with `home` as HOME and cwd.
fn spawn(lab: &Lab, home: &Path, args: &[&str]) -> Session {
    let mut command = lab.command();
    command
        .current_dir(home)
        .args(["exec", "operator", "env", "-i"])
        .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .arg(format!("HOME={}", home.display()))
        .arg("TERM=xterm")
        .arg(format!("HA_SETUP_STATE_DIR={}/state", home.display()))
        .arg(binary())
        .args(args);
    let mut session = Session::spawn(command).expect("a pseudo-terminal");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    session
}

#[track_caller]
fn expect(session: &mut Session, text: &str) {
    if let Err(err) = session.expect(text) {
        let rest = session
            .expect(Eof)
            .map(|found| String::from_utf8_lossy(found.before()).into_owned())
            .unwrap_or_default();
        panic!("waiting for {text:?}: {err}; the terminal showed:\n{rest}");
    }
}

fn answer(session: &mut Session, question: &str, reply: &str) {
    expect(session, question);
    session.send_line(reply).unwrap();
}

/// The exit code, once the program has ended.
fn exit_code(session: &mut Session) -> String {
    let _ = session.expect(Eof);
    format!(
        "{:?}",
        session.get_process().wait().expect("the process ends")
    )
}

fn host_questions(session: &mut Session, name: &str, address: &str) {
    answer(session, &format!("{name} host"), address);
    answer(session, "SSH user on the", ""); // root
    answer(session, "SSH port on the", ""); // 22
    answer(session, "SSH key for the", ""); // ~/.ssh/id_ed25519, found there
    expect(session, "offers the host key ssh-ed25519 SHA256:");
    answer(session, "Trust this host key?", "y");
    expect(session, "MariaDB 10.");
    answer(session, "Address the", "");
}

#[test]
#[ignore = "needs the lab"]
fn answering_every_question_sets_up_a_pair_and_writes_a_config() {
    let lab = lab();
    lab.reset();
    let home = operator_home(&lab, "full");
    let mut session = spawn(&lab, &home, &["init"]);
    answer(&mut session, "Database engine", "");
    host_questions(&mut session, "Primary", lab.addr(Host::Primary));
    host_questions(&mut session, "Secondary", lab.addr(Host::Secondary));
    answer(&mut session, "Third host", "");
    answer(&mut session, "Replication user", "");
    answer(&mut session, "Replication password", "");
    answer(&mut session, "Encrypt replication with TLS?", "");
    expect(&mut session, "Wrote ha-setup.toml (0600)");
    expect(&mut session, "Plan for init of");
    answer(&mut session, "Run this plan now?", "y");
    session.set_expect_timeout(Some(Duration::from_secs(600)));
    expect(&mut session, "init: done");
    let code = exit_code(&mut session);
    assert!(code.contains(", 0)"), "init ended with {code}");

    let config = home.join("ha-setup.toml");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("identity_file = \"~/.ssh/id_ed25519\""),
        "{text}"
    );
    let known = std::fs::read_to_string(home.join(".ssh/known_hosts")).unwrap();
    assert!(known.contains(lab.addr(Host::Primary)), "{known}");

    let home_dir = home.display().to_string();
    let config_arg = config.display().to_string();
    let check = HaSetup::new(&home)
        .args(["config", "check", "-c", &config_arg])
        .run();
    check.expect_code(0);
    let state = format!("{}/state", home.display());
    let env = [
        ("HOME", home_dir.as_str()),
        ("HA_SETUP_STATE_DIR", state.as_str()),
    ];
    let status = lab.ha_setup_with(&env, &["status", "-c", &config_arg]);
    status.expect_code(0);
    assert!(status.stdout.contains("alive"), "{status:?}");
    // The same run, scripted, with the written config: nothing left to do.
    let again = lab.ha_setup_with(&env, &["init", "-c", &config_arg, "--yes"]);
    again.expect_code(0);
    assert!(again.stdout.contains("nothing to change"), "{again:?}");
}

/// A third MariaDB host: the wizard offers a Galera cluster (the default), asks for no
/// replication user, and init forms the cluster from the first host's data.
#[test]
#[ignore = "needs the lab"]
fn a_third_host_sets_up_a_galera_cluster() {
    let lab = lab();
    lab.reset();
    lab.sql_ok(
        Host::Primary,
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, item TEXT); \
         INSERT INTO shop.orders VALUES (1, 'tea'), (2, 'cups');",
    );
    let home = operator_home(&lab, "galera");
    let mut session = spawn(&lab, &home, &["init"]);
    answer(&mut session, "Database engine", "");
    host_questions(&mut session, "Primary", lab.addr(Host::Primary));
    host_questions(&mut session, "Secondary", lab.addr(Host::Secondary));
    answer(&mut session, "Third host", lab.addr(Host::Tertiary));
    answer(&mut session, "SSH user on the", "");
    answer(&mut session, "SSH port on the", "");
    answer(&mut session, "SSH key for the", "");
    expect(&mut session, "offers the host key ssh-ed25519 SHA256:");
    answer(&mut session, "Trust this host key?", "y");
    expect(&mut session, "MariaDB 10.");
    answer(&mut session, "Address the", "");
    expect(&mut session, "Topology");
    expect(&mut session, "galera: a MariaDB Galera cluster");
    session.send_line("").unwrap(); // the default: galera
    answer(
        &mut session,
        "Encrypt replication and state transfers with TLS?",
        "",
    );
    expect(&mut session, "Wrote ha-setup.toml (0600)");
    expect(&mut session, "Plan for init of");
    answer(&mut session, "Run this plan now?", "y");
    session.set_expect_timeout(Some(Duration::from_secs(600)));
    expect(&mut session, "form the Galera cluster, every node Synced");
    let code = exit_code(&mut session);
    assert!(code.contains(", 0)"), "init ended with {code}");

    let config = home.join("ha-setup.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("topology = \"galera\""), "{text}");
    assert!(
        !text.contains("password"),
        "Galera needs no replication password: {text}"
    );
    for host in [Host::Secondary, Host::Tertiary] {
        assert_eq!(
            lab.sql_ok(
                host,
                "SELECT GROUP_CONCAT(item ORDER BY id) FROM shop.orders"
            ),
            "tea,cups"
        );
    }
    let config_arg = config.display().to_string();
    let state = format!("{}/state", home.display());
    let (code, report) = lab.status_json(&config_arg, &state);
    assert_eq!(code, Some(0), "{report}");
    for node in report["nodes"].as_array().expect("nodes") {
        assert_eq!(
            node["cluster"]["wsrep_local_state_comment"], "Synced",
            "{report}"
        );
        assert_eq!(node["cluster"]["cluster_size"], 3, "{report}");
    }
}

#[test]
#[ignore = "needs the lab"]
fn a_wrong_host_is_caught_at_its_question() {
    let lab = lab();
    let home = operator_home(&lab, "wrong-host");
    let mut session = spawn(&lab, &home, &["init"]);
    answer(&mut session, "Database engine", "");
    answer(&mut session, "Primary host", "db1.invalid");
    answer(&mut session, "SSH user on the", "");
    answer(&mut session, "SSH port on the", "");
    answer(&mut session, "SSH key for the", "");
    expect(
        &mut session,
        "cannot resolve the address of primary (db1.invalid)",
    );
    // Asked again, with the typo as the default to correct.
    expect(&mut session, "Primary host");
    session.send(ControlCode::EndOfText).unwrap();
    expect(&mut session, "interrupted: nothing");
    let code = exit_code(&mut session);
    assert!(code.contains(", 130)"), "{code}");
    assert!(!home.join("ha-setup.toml").exists());
}

#[test]
#[ignore = "needs the lab"]
fn an_unknown_host_key_is_shown_and_refused_on_no() {
    let lab = lab();
    let home = operator_home(&lab, "host-key");
    let before = std::fs::read_to_string(home.join(".ssh/known_hosts")).unwrap();
    let mut session = spawn(&lab, &home, &["init"]);
    answer(&mut session, "Database engine", "");
    answer(&mut session, "Primary host", lab.addr(Host::Primary));
    answer(&mut session, "SSH user on the", "");
    answer(&mut session, "SSH port on the", "");
    answer(&mut session, "SSH key for the", "");
    expect(&mut session, "offers the host key ssh-ed25519 SHA256:");
    answer(&mut session, "Trust this host key?", "n");
    expect(&mut session, "not trusted: nothing was recorded");
    expect(&mut session, "Primary host");
    session.send(ControlCode::EndOfText).unwrap();
    expect(&mut session, "interrupted: nothing");
    let code = exit_code(&mut session);
    assert!(code.contains(", 130)"), "{code}");
    let after = std::fs::read_to_string(home.join(".ssh/known_hosts")).unwrap();
    assert_eq!(before, after, "known_hosts changed");
    assert!(!home.join("ha-setup.toml").exists());
}

#[test]
#[ignore = "needs the lab"]
fn with_a_config_on_a_terminal_the_plan_is_shown_and_no_runs_nothing() {
    let lab = lab();
    // The plan is read from the servers: an earlier test may have left them set up otherwise
    // (two writers, a cluster).
    lab.reset();
    let home = operator_home(&lab, "confirm");
    let config = lab.write_config("wizard-confirm", "");
    let mut session = spawn(&lab, &home, &["init", "-c", &config]);
    // Nothing is asked but the confirmation: the hosts come from the config.
    expect(&mut session, "Plan for init of");
    answer(&mut session, "Run this plan now?", "n");
    expect(&mut session, "Nothing was run");
    let code = exit_code(&mut session);
    assert!(code.contains(", 0)"), "{code}");
    assert!(
        !home.join("state/init.journal.json").exists(),
        "a journal was written: something ran"
    );
}

#[test]
#[ignore = "needs the lab"]
fn switchover_on_a_terminal_shows_the_plan_and_asks_before_acting() {
    let lab = lab();
    lab.reset();
    let home = operator_home(&lab, "ask-switchover");
    let config = lab.write_config("ask-switchover", "");
    let state = format!("{}/state", home.display());
    lab.ha_setup_with(
        &[("HA_SETUP_STATE_DIR", state.as_str())],
        &["init", "-c", &config, "--yes"],
    )
    .expect_code(0);

    // No: the plan was shown, nothing changed, and no lock is left behind.
    let mut session = spawn(&lab, &home, &["switchover", "-c", &config]);
    expect(&mut session, "Plan for switchover");
    expect(&mut session, "[primary → secondary");
    answer(&mut session, "Run this plan now?", "n");
    expect(&mut session, "Nothing was run");
    let code = exit_code(&mut session);
    assert!(code.contains(", 0)"), "switchover ended with {code}");
    assert_eq!(lab.sql_ok(Host::Primary, "SELECT @@read_only"), "0");
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "1");
    lab.exec(Host::Primary, "test ! -e /var/lib/ha-setup/lock.json")
        .expect_code(0);

    // Yes: it runs.
    let mut session = spawn(&lab, &home, &["recover", "rejoin", "-c", &config]);
    answer(&mut session, "Run this plan now?", "y");
    expect(&mut session, "recover rejoin: done");
    let code = exit_code(&mut session);
    assert!(code.contains(", 0)"), "rejoin ended with {code}");

    // --yes never asks, on a terminal too.
    let mut session = spawn(&lab, &home, &["switchover", "-c", &config, "--yes"]);
    expect(&mut session, "switchover: done");
    let code = exit_code(&mut session);
    assert!(code.contains(", 0)"), "switchover ended with {code}");
    assert_eq!(lab.sql_ok(Host::Secondary, "SELECT @@read_only"), "0");
}
