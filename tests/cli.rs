//! The binary as a script sees it: help, exit codes, config commands, completions.

use std::fs;

use clap_complete::Shell;

use crate::util::{HaSetup, repo_root};

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

#[test]
fn help_lists_only_working_commands() {
    let dir = scratch();
    let run = HaSetup::new(dir.path()).args(["--help"]).run();
    run.expect_code(0);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let dir = scratch();
    let run = HaSetup::new(dir.path()).args(["frobnicate"]).run();
    run.expect_code(2);
    assert!(
        run.stderr.contains("unrecognized subcommand"),
        "{}",
        run.stderr
    );
}

#[test]
fn config_example_passes_config_check() {
    let dir = scratch();
    let example = HaSetup::new(dir.path()).args(["config", "example"]).run();
    example.expect_code(0);
    fs::write(dir.path().join("ha-setup.toml"), &example.stdout).unwrap();
    // No -c: the default ./ha-setup.toml is read.
    let check = HaSetup::new(dir.path()).args(["config", "check"]).run();
    check.expect_code(0);
    assert!(
        check.stdout.contains("ha-setup.toml is valid"),
        "{}",
        check.stdout
    );
}

#[test]
fn config_path_comes_from_flag_then_env() {
    let dir = scratch();
    let example = HaSetup::new(dir.path()).args(["config", "example"]).run();
    fs::write(dir.path().join("from-env.toml"), &example.stdout).unwrap();
    let run = HaSetup::new(dir.path())
        .env("HA_SETUP_CONFIG", "from-env.toml")
        .args(["config", "check"])
        .run();
    run.expect_code(0);
    assert!(
        run.stdout.contains("from-env.toml is valid"),
        "{}",
        run.stdout
    );
    // The flag wins over the environment.
    let run = HaSetup::new(dir.path())
        .env("HA_SETUP_CONFIG", "from-env.toml")
        .args(["config", "check", "-c", "missing.toml"])
        .run();
    run.expect_code(2);
    assert!(run.stderr.contains("missing.toml"), "{}", run.stderr);
}

#[test]
fn config_check_json_has_the_defaults_filled_in() {
    let dir = scratch();
    let path = dir.path().join("pair.toml");
    fs::write(
        &path,
        "engine = \"postgresql\"\n[primary]\nhost = \"a\"\n[secondary]\nhost = \"b\"\n",
    )
    .unwrap();
    let run = HaSetup::new(dir.path())
        .args(["config", "check", "--format", "json", "-c"])
        .args([&path])
        .run();
    run.expect_code(0);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(value["engine"], "postgresql");
    assert_eq!(value["ssh"]["host_key_policy"], "strict");
    assert_eq!(value["replication"]["user"], "ha_repl");
}

#[test]
fn a_bad_config_exits_2_with_file_line_column_and_key() {
    let dir = scratch();
    let path = dir.path().join("bad.toml");
    fs::write(
        &path,
        "engine = \"mariadb\"\n[primary]\nhost = \"a\"\n[secondary]\nhost = \"b\"\n[ssh]\nhost_key_policy = \"trusting\"\n",
    )
    .unwrap();
    let run = HaSetup::new(dir.path())
        .args(["config", "check", "-c"])
        .args([&path])
        .run();
    run.expect_code(2);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: invalid config"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("bad.toml:7:19: ssh.host_key_policy: unknown variant `trusting`"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn a_missing_config_exits_2_and_says_how_to_start() {
    let dir = scratch();
    let run = HaSetup::new(dir.path()).args(["config", "check"]).run();
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("ha-setup config example > ha-setup.toml"),
        "{}",
        run.stderr
    );
}

const COMPLETIONS: [(Shell, &str); 5] = [
    (Shell::Bash, "ha-setup.bash"),
    (Shell::Zsh, "_ha-setup"),
    (Shell::Fish, "ha-setup.fish"),
    (Shell::PowerShell, "_ha-setup.ps1"),
    (Shell::Elvish, "ha-setup.elv"),
];

/// The committed scripts must be what the binary prints; `HA_SETUP_BLESS=1` rewrites them.
#[test]
fn committed_completions_are_current() {
    let dir = scratch();
    let bless = std::env::var_os("HA_SETUP_BLESS").is_some();
    let mut stale = Vec::new();
    for (shell, file) in COMPLETIONS {
        let run = HaSetup::new(dir.path())
            .args(["completions", &shell.to_string()])
            .run();
        run.expect_code(0);
        assert!(!run.stdout.is_empty(), "no {shell} completions printed");
        let path = repo_root().join("completions").join(file);
        if fs::read_to_string(&path).ok().as_deref() != Some(run.stdout.as_str()) {
            if bless {
                fs::write(&path, &run.stdout).unwrap();
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "these committed completion scripts differ from what `ha-setup completions` prints: {stale:?}\n\
         regenerate them with: HA_SETUP_BLESS=1 cargo test --test tests committed_completions_are_current"
    );
}

#[test]
fn init_without_config_or_terminal_names_the_missing_key() {
    let dir = scratch();
    let run = HaSetup::new(dir.path()).args(["init"]).run();
    run.expect_code(2);
    insta::assert_snapshot!(run.stderr);
    assert!(!dir.path().join("ha-setup.toml").exists());
    let run = HaSetup::new(dir.path())
        .args(["init", "--yes", "--primary", "db1"])
        .run();
    run.expect_code(2);
    assert!(
        run.stderr.contains("secondary.host is not set"),
        "{}",
        run.stderr
    );
}

#[test]
fn init_host_flags_do_not_override_an_existing_config() {
    let dir = scratch();
    let example = HaSetup::new(dir.path()).args(["config", "example"]).run();
    fs::write(dir.path().join("ha-setup.toml"), &example.stdout).unwrap();
    let run = HaSetup::new(dir.path())
        .args(["init", "--primary", "db9"])
        .run();
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("--primary and --secondary make a new config"),
        "{}",
        run.stderr
    );
}

#[test]
fn plan_without_config_never_starts_the_wizard() {
    let dir = scratch();
    let run = HaSetup::new(dir.path()).args(["plan"]).run();
    run.expect_code(2);
    assert!(run.stderr.contains("no config file at"), "{}", run.stderr);
}

#[test]
fn man_prints_a_manual_page_with_every_command() {
    let dir = scratch();
    let run = HaSetup::new(dir.path()).args(["man"]).run();
    run.expect_code(0);
    assert!(run.stdout.starts_with(".ie"), "{}", run.stdout);
    assert!(run.stdout.contains(".TH ha-setup 1"), "{}", run.stdout);
    for command in [
        "init",
        "plan",
        "status",
        "history",
        "bundle",
        "config",
        "completions",
    ] {
        assert!(
            run.stdout.contains(&format!("ha\\-setup\\-{command}(1)")),
            "{command} missing from the man page"
        );
    }
}

/// Every subcommand says in one line what it does, and shows an example.
#[test]
fn every_subcommand_has_help_and_an_example() {
    use clap::CommandFactory;
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            let path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                missing.push(format!("{path}: no one-line help"));
            }
            let example = sub
                .get_after_help()
                .is_some_and(|text| text.to_string().contains("ha-setup "));
            // A group's own help lists its subcommands, each with examples.
            let group = sub.get_subcommands().next().is_some();
            if !example && !group && sub.get_name() != "help" {
                missing.push(format!("{path}: no example"));
            }
            walk(sub, &path, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&ha_setup::cli::Cli::command(), "ha-setup", &mut missing);
    assert!(missing.is_empty(), "{missing:#?}");
}
