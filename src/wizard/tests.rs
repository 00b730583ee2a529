//! The questions and their precedence, with scripted answers: no terminal, no hosts.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::error::exit_code;
use crate::prompt::{NoPrompt, Reply, Scripted};

fn ui() -> Ui {
    Ui::new(true, 0)
}

fn text(answer: &str) -> Reply {
    Reply::Text(answer.to_owned())
}

/// Every question, in order, for hosts not given by flags.
fn all_questions() -> Vec<(&'static str, Reply)> {
    vec![
        ("Database engine", text("")),
        ("Primary host", text("db1.example.com")),
        ("SSH user on the primary", text("admin")),
        ("SSH port on the primary", text("2222")),
        ("SSH key for the primary", Reply::Pick("ssh-agent".into())),
        (
            "Address the secondary's database uses to reach the primary's",
            text("10.0.0.1"),
        ),
        ("Secondary host", text("db2.example.com")),
        ("SSH user on the secondary", text("")),
        ("SSH port on the secondary", text("")),
        ("SSH key for the secondary", text("")),
        (
            "Address the primary's database uses to reach the secondary's",
            text(""),
        ),
        ("Third host, for", text("")),
        ("Replication user", text("")),
        (
            "Replication password",
            Reply::Pick("environment variable".into()),
        ),
        ("Environment variable that holds it", text("")),
        ("Encrypt replication with TLS?", Reply::No),
    ]
}

#[test]
fn every_answer_lands_in_the_config_and_the_secondary_defaults_to_the_primarys() {
    let prompter = Scripted::new(&all_questions());
    let answers = ask_with(&Given::default(), &prompter, true, &ui(), false).unwrap();
    assert!(prompter.finished(), "{:?}", prompter.transcript());
    insta::assert_snapshot!(answers.text);
    let config = answers.config;
    assert_eq!(config.nodes["secondary"].ssh_user.as_deref(), Some("admin"));
    assert_eq!(config.nodes["secondary"].ssh_port, Some(2222));
    assert_eq!(config.nodes["secondary"].replication_host, None);
    assert_eq!(
        config.replication.password_env.as_deref(),
        Some(PASSWORD_ENV)
    );
}

#[test]
fn a_value_given_by_flag_is_never_asked() {
    let questions: Vec<_> = all_questions()
        .into_iter()
        .filter(|(q, _)| !q.ends_with("host"))
        .collect();
    let prompter = Scripted::new(&questions);
    let given = Given {
        primary: Some("db1.example.com".into()),
        secondary: Some("db2.example.com".into()),
    };
    let answers = ask_with(&given, &prompter, true, &ui(), false).unwrap();
    assert!(prompter.finished());
    assert!(
        !prompter.transcript().iter().any(|q| q.contains(" host:")),
        "{:?}",
        prompter.transcript()
    );
    assert_eq!(answers.config.nodes["primary"].host, "db1.example.com");
}

#[test]
fn with_nothing_to_ask_the_defaults_are_taken() {
    let given = Given {
        primary: Some("db1".into()),
        secondary: Some("db2".into()),
    };
    let answers = ask_with(&given, &NoPrompt, false, &ui(), false).unwrap();
    let config = answers.config;
    assert_eq!(config.engine, Engine::Mariadb);
    assert_eq!(config.nodes["primary"].ssh_port, None);
    assert_eq!(config.nodes["primary"].replication_host, None);
    assert_eq!(config.replication.user, "ha_repl");
    assert_eq!(config.replication.password_env, None);
    assert!(config.replication.tls);
}

#[test]
fn with_nothing_to_ask_a_missing_host_is_a_usage_error_naming_the_key() {
    let given = Given {
        primary: Some("db1".into()),
        secondary: None,
    };
    let err = ask_with(&given, &NoPrompt, false, &ui(), false).unwrap_err();
    assert_eq!(exit_code(&err), ExitCode::Usage);
    insta::assert_snapshot!(format!("{err:#}"));
}

#[test]
fn a_bad_answer_is_refused_and_asked_again() {
    let mut questions = all_questions();
    questions.insert(3, ("SSH port on the primary", text("99999")));
    questions.insert(2, ("SSH user on the primary", text("admin@db1")));
    let prompter = Scripted::new(&questions);
    let answers = ask_with(&Given::default(), &prompter, true, &ui(), false).unwrap();
    assert!(prompter.finished());
    let transcript = prompter.transcript().join("\n");
    assert!(
        transcript.contains("✗ \"admin@db1\" is not a user name"),
        "{transcript}"
    );
    assert!(
        transcript.contains("✗ \"99999\" is not a port number"),
        "{transcript}"
    );
    assert_eq!(answers.config.nodes["primary"].ssh_port, Some(2222));
}

#[test]
fn postgresql_is_offered() {
    let mut questions = all_questions();
    questions[0] = ("Database engine", Reply::Pick("postgresql".into()));
    let prompter = Scripted::new(&questions);
    let answers = ask_with(&Given::default(), &prompter, true, &ui(), false).unwrap();
    assert_eq!(answers.config.engine.name(), "postgresql");
    assert!(
        answers.text.contains("engine = \"postgresql\""),
        "{}",
        answers.text
    );
}

#[test]
fn ctrl_c_at_a_question_stops_with_one_line() {
    let prompter = Scripted::new(&[
        ("Database engine", text("")),
        ("Primary host", Reply::Interrupt),
    ]);
    let err = ask_with(&Given::default(), &prompter, true, &ui(), false).unwrap_err();
    assert_eq!(exit_code(&err), ExitCode::Interrupted);
    assert_eq!(
        format!("{err:#}"),
        "interrupted: nothing was written, and nothing on the hosts changed"
    );
}

#[test]
fn the_config_is_written_0600_and_replaced_only_on_a_yes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ha-setup.toml");
    assert!(write(&path, "engine = \"mariadb\"\n", &NoPrompt).unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let keep = Scripted::new(&[("exists. Replace it?", Reply::No)]);
    assert!(!write(&path, "changed", &keep).unwrap());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "engine = \"mariadb\"\n"
    );

    let err = write(&path, "changed", &NoPrompt).unwrap_err();
    assert_eq!(exit_code(&err), ExitCode::Usage);

    let replace = Scripted::new(&[("exists. Replace it?", Reply::Yes)]);
    assert!(write(&path, "changed", &replace).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "changed");
}

#[test]
fn a_third_mariadb_host_offers_galera() {
    let questions = vec![
        ("Database engine", text("")),
        ("Primary host", text("10.0.0.1")),
        ("SSH user on the primary", text("root")),
        ("SSH port on the primary", text("")),
        ("SSH key for the primary", Reply::Pick("ssh-agent".into())),
        ("Address the secondary's database", text("")),
        ("Secondary host", text("10.0.0.2")),
        ("SSH user on the secondary", text("")),
        ("SSH port on the secondary", text("")),
        ("SSH key for the secondary", text("")),
        ("Address the primary's database", text("")),
        ("Third host", text("10.0.0.3")),
        ("SSH user on the third node", text("")),
        ("SSH port on the third node", text("")),
        ("SSH key for the third node", text("")),
        (
            "Address the primary's database uses to reach the third node's",
            text(""),
        ),
        ("Topology", text("")),
        (
            "Encrypt replication and state transfers with TLS?",
            text(""),
        ),
    ];
    let prompter = Scripted::new(&questions);
    let answers = ask_with(&Given::default(), &prompter, true, &ui(), false).unwrap();
    assert!(prompter.finished(), "{:?}", prompter.transcript());
    let config = answers.config;
    assert_eq!(config.topology, crate::config::Topology::Galera);
    let names: Vec<&str> = config.nodes.keys().map(|n| n.as_str()).collect();
    assert_eq!(names, ["db1", "db2", "db3"]);
    assert_eq!(config.starting_primary().as_str(), "db1");
    assert!(
        answers.text.contains("topology = \"galera\""),
        "{}",
        answers.text
    );
    assert!(
        answers.text.contains("[nodes.db3]\nhost = \"10.0.0.3\""),
        "{}",
        answers.text
    );
    assert!(!answers.text.contains("\nuser = "), "{}", answers.text);

    // PostgreSQL has no Galera: three hosts are a primary and two replicas.
    let mut questions = questions;
    questions[0] = ("Database engine", Reply::Pick("postgresql".into()));
    questions.retain(|(q, _)| *q != "Topology" && !q.starts_with("Encrypt"));
    questions.extend([
        ("Replication user", text("")),
        ("Replication password", text("")),
        ("Encrypt replication with TLS?", text("")),
    ]);
    let prompter = Scripted::new(&questions);
    let answers = ask_with(&Given::default(), &prompter, true, &ui(), false).unwrap();
    assert!(prompter.finished(), "{:?}", prompter.transcript());
    assert_eq!(
        answers.config.topology,
        crate::config::Topology::PrimaryReplica
    );
    assert_eq!(answers.config.starting_primary().as_str(), "primary");
    assert_eq!(answers.config.nodes.len(), 3);
}
