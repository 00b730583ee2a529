use std::path::Path;

use super::*;

const MINIMAL: &str = r#"
engine = "mariadb"

[primary]
host = "198.51.100.11"

[secondary]
host = "198.51.100.12"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("ha-setup.toml"))
}

fn error(text: &str) -> ConfigError {
    parse(text).expect_err("the config should be refused")
}

#[test]
fn the_example_passes_its_own_check() {
    let config = parse(EXAMPLE).expect("the example config is valid");
    assert_eq!(config.engine, Engine::Mariadb);
    assert_eq!(config.sync_files.len(), 1);
    assert_eq!(config.ssh.host_key_policy, HostKeyPolicy::Strict);
    assert_eq!(config.replication.fence_timeout_secs, 5);
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.ssh.known_hosts, Path::new("~/.ssh/known_hosts"));
    assert_eq!(config.ssh.host_key_policy, HostKeyPolicy::Strict);
    assert_eq!(config.ssh.connect_timeout_secs, 10);
    assert_eq!(config.replication.user, "ha_repl");
    assert!(config.replication.password_env.is_none());
    assert!(config.replication.tls);
    assert_eq!(config.replication.fence_timeout_secs, 5);
    assert_eq!(
        config.nodes["primary"].replication_address(),
        "198.51.100.11"
    );
    assert!(config.sync_files.is_empty());
}

#[test]
fn postgresql_and_accept_new_are_accepted() {
    let text =
        MINIMAL.replace("mariadb", "postgresql") + "[ssh]\nhost_key_policy = \"accept-new\"\n";
    let config = parse(&text).unwrap();
    assert_eq!(config.engine, Engine::Postgresql);
    assert_eq!(config.engine.default_db_port(), 5432);
    assert_eq!(config.ssh.host_key_policy, HostKeyPolicy::AcceptNew);
}

#[test]
fn local_primary_with_a_replication_address_is_accepted() {
    let text = MINIMAL.replace(
        "host = \"198.51.100.11\"",
        "host = \"local\"\nreplication_host = \"198.51.100.11\"",
    );
    let config = parse(&text).unwrap();
    assert!(config.nodes["primary"].is_local());
    assert_eq!(
        config.nodes["primary"].replication_address(),
        "198.51.100.11"
    );
}

#[test]
fn unknown_key_names_the_key_line_and_column() {
    let err = error(&MINIMAL.replace(
        "host = \"198.51.100.12\"",
        "host = \"198.51.100.12\"\nhots = \"x\"",
    ));
    assert_eq!(err.keys(), ["secondary.hots"]);
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn unknown_top_level_key() {
    let err = error(&format!("enigne = \"mariadb\"\n{MINIMAL}"));
    assert_eq!(err.keys(), ["enigne"]);
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn wrong_type_names_the_key() {
    let err = error(&MINIMAL.replace(
        "host = \"198.51.100.12\"",
        "host = \"198.51.100.12\"\nssh_port = \"22\"",
    ));
    assert_eq!(err.keys(), ["secondary.ssh_port"]);
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn port_out_of_range_is_refused() {
    let err = error(&MINIMAL.replace(
        "host = \"198.51.100.12\"",
        "host = \"198.51.100.12\"\ndb_port = 70000",
    ));
    assert_eq!(err.keys(), ["secondary.db_port"]);
}

#[test]
fn missing_host_names_the_key() {
    let err = error(&MINIMAL.replace("host = \"198.51.100.12\"", "ssh_user = \"root\""));
    assert_eq!(err.keys(), ["secondary.host"]);
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn missing_secondary_table() {
    let text = MINIMAL.split("[secondary]").next().unwrap();
    let err = error(text);
    assert_eq!(err.keys(), ["secondary"]);
}

#[test]
fn missing_engine() {
    let err = error(&MINIMAL.replace("engine = \"mariadb\"", ""));
    assert_eq!(err.keys(), ["engine"]);
}

#[test]
fn unknown_engine() {
    let err = error(&MINIMAL.replace("\"mariadb\"", "\"oracle\""));
    assert_eq!(err.keys(), ["engine"]);
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn bad_host_key_policy() {
    let err = error(&format!("{MINIMAL}\n[ssh]\nhost_key_policy = \"yolo\"\n"));
    assert_eq!(err.keys(), ["ssh.host_key_policy"]);
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn the_same_host_twice() {
    let err = error(&MINIMAL.replace("198.51.100.12", "198.51.100.11"));
    assert_eq!(err.keys(), ["secondary.host"]);
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn the_same_host_twice_ignores_case_and_default_port() {
    let text = MINIMAL
        .replace("198.51.100.11", "DB1.example.com\"\nssh_port = 22\n#\"")
        .replace("198.51.100.12", "db1.example.com");
    assert_eq!(error(&text).keys(), ["secondary.host"]);
}

#[test]
fn the_same_host_on_another_ssh_port_needs_its_own_database_address() {
    let text = MINIMAL
        .replace("host = \"198.51.100.11\"", "host = \"gw\"\nssh_port = 2201")
        .replace("host = \"198.51.100.12\"", "host = \"gw\"\nssh_port = 2202");
    assert_eq!(error(&text).keys(), ["secondary.replication_host"]);
    let fixed = text
        .replace(
            "ssh_port = 2201",
            "ssh_port = 2201\nreplication_host = \"10.0.0.1\"",
        )
        .replace(
            "ssh_port = 2202",
            "ssh_port = 2202\nreplication_host = \"10.0.0.2\"",
        );
    parse(&fixed).unwrap();
}

#[test]
fn local_without_replication_address_is_refused() {
    let err = error(&MINIMAL.replace("198.51.100.11", "local"));
    assert_eq!(err.keys(), ["primary.host"]);
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let text = format!(
        "{}\n[replication]\nuser = \"bad user\"\npassword_env = \"my secret\"\n\n[[sync_files]]\npath = \"relative/file\"\n",
        MINIMAL.replace("198.51.100.12", "198.51.100.11")
    );
    let err = error(&text);
    assert_eq!(
        err.keys(),
        [
            "secondary.host",
            "replication.user",
            "replication.password_env",
            "sync_files[0].path"
        ]
    );
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn server_ids_must_differ_and_not_be_zero() {
    let text = MINIMAL
        .replace(
            "host = \"198.51.100.11\"",
            "host = \"198.51.100.11\"\nserver_id = 0",
        )
        .replace(
            "host = \"198.51.100.12\"",
            "host = \"198.51.100.12\"\nserver_id = 7",
        );
    assert_eq!(error(&text).keys(), ["primary.server_id"]);
    let same = text.replace("server_id = 0", "server_id = 7");
    assert_eq!(error(&same).keys(), ["secondary.server_id"]);
}

#[test]
fn timeouts_must_be_sane() {
    let err = error(&format!(
        "{MINIMAL}\n[ssh]\nconnect_timeout_secs = 0\nio_timeout_secs = 2\nkeepalive_secs = 5\n"
    ));
    assert_eq!(
        err.keys(),
        ["ssh.connect_timeout_secs", "ssh.io_timeout_secs"]
    );
}

#[test]
fn the_fence_bound_must_be_a_few_seconds() {
    for bad in [0, 301] {
        let err = error(&format!(
            "{MINIMAL}\n[replication]\nfence_timeout_secs = {bad}\n"
        ));
        assert_eq!(err.keys(), ["replication.fence_timeout_secs"], "{bad}");
    }
    let config = parse(&format!(
        "{MINIMAL}\n[replication]\nfence_timeout_secs = 2\n"
    ))
    .unwrap();
    assert_eq!(config.replication.fence_timeout_secs, 2);
}

#[test]
fn hostile_host_names_are_refused() {
    for host in ["", "-oProxyCommand=x", "a b", "x;rm", "$(id)"] {
        let text = MINIMAL.replace("198.51.100.12", host);
        assert_eq!(error(&text).keys(), ["secondary.host"], "host {host:?}");
    }
}

#[test]
fn duplicate_sync_files_are_refused() {
    let text = format!(
        "{MINIMAL}\n[[sync_files]]\npath = \"/etc/a\"\n\n[[sync_files]]\npath = \"/etc/a\"\n"
    );
    assert_eq!(error(&text).keys(), ["sync_files[1].path"]);
}

#[test]
fn nested_sync_files_and_the_root_are_refused() {
    for (first, second) in [
        ("/etc/a", "/etc/a/key"),
        ("/etc/a/key", "/etc/a/"),
        ("/srv", "/"),
    ] {
        let text = format!(
            "{MINIMAL}\n[[sync_files]]\npath = \"{first}\"\n\n[[sync_files]]\npath = \"{second}\"\n"
        );
        assert_eq!(
            error(&text).keys(),
            ["sync_files[1].path"],
            "{first} {second}"
        );
    }
    let text = format!(
        "{MINIMAL}\n[[sync_files]]\npath = \"/etc/ab\"\n\n[[sync_files]]\npath = \"/etc/a\"\n"
    );
    assert_eq!(
        Config::parse(&text, std::path::Path::new("t.toml"))
            .unwrap()
            .sync_files
            .len(),
        2
    );
}

#[test]
fn toml_syntax_error_has_a_line() {
    let err = error("engine = \"mariadb\n");
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn missing_file_says_how_to_start_one() {
    let err = Config::load(Path::new("/nonexistent/ha-setup.toml")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("/nonexistent/ha-setup.toml"), "{text}");
    assert!(text.contains("ha-setup config example"), "{text}");
}

#[test]
fn home_is_expanded() {
    let home = std::env::var("HOME").unwrap_or_default();
    if !home.is_empty() {
        assert_eq!(
            expand_home(Path::new("~/.ssh/x")),
            Path::new(&home).join(".ssh/x")
        );
    }
    assert_eq!(expand_home(Path::new("/etc/x")), Path::new("/etc/x"));
}

const THREE: &str = r#"
engine = "mariadb"

[nodes.db1]
host = "198.51.100.11"
role = "primary"

[nodes.db2]
host = "198.51.100.12"

[nodes.db3]
host = "198.51.100.13"
"#;

#[test]
fn nodes_by_name_keep_their_order_and_start_from_the_marked_one() {
    let config = parse(THREE).unwrap();
    let names: Vec<&str> = config.nodes.keys().map(|n| n.as_str()).collect();
    assert_eq!(names, ["db1", "db2", "db3"]);
    assert_eq!(config.starting_primary().as_str(), "db1");
    assert!(!config.two_node_form);
    assert_eq!(config.key("db2", "host"), "nodes.db2.host");
    assert_eq!(config.topology, Topology::PrimaryReplica);
    // The two-node form names its nodes after its tables.
    let pair = parse(MINIMAL).unwrap();
    assert_eq!(pair.starting_primary().as_str(), "primary");
    assert_eq!(pair.key("secondary", "host"), "secondary.host");
}

#[test]
fn the_cluster_identity_does_not_follow_roles_or_order() {
    let config = parse(THREE).unwrap();
    let reordered = parse(
        &THREE
            .replace(
                "[nodes.db1]\nhost = \"198.51.100.11\"\nrole = \"primary\"\n",
                "",
            )
            .replace(
                "[nodes.db3]",
                "[nodes.db1]\nhost = \"198.51.100.11\"\nrole = \"primary\"\n\n[nodes.db3]",
            ),
    )
    .unwrap();
    assert_eq!(config.cluster_id(), reordered.cluster_id());
    assert!(config.cluster_id().starts_with("198.51.100.11-"));
    let named = parse(&format!("cluster = \"payments\"\n{THREE}")).unwrap();
    assert_eq!(named.cluster_id(), "payments");
}

#[test]
fn a_flag_naming_no_node_is_a_usage_error() {
    let config = parse(THREE).unwrap();
    assert_eq!(config.named("db3", "--to").unwrap().as_str(), "db3");
    let err = config.named("db9", "--to").unwrap_err();
    assert_eq!(err.code, crate::error::ExitCode::Usage);
    assert!(err.message.contains("db1, db2, db3"), "{}", err.message);
}

#[test]
fn both_forms_at_once_are_refused() {
    let text = format!("{MINIMAL}\n[nodes.db3]\nhost = \"198.51.100.13\"\n");
    assert_eq!(error(&text).keys(), ["nodes"]);
}

#[test]
fn two_starting_primaries_and_none_are_refused() {
    let two = THREE.replacen(
        "[nodes.db2]\nhost = \"198.51.100.12\"",
        "[nodes.db2]\nhost = \"198.51.100.12\"\nrole = \"primary\"",
        1,
    );
    let err = error(&two);
    assert_eq!(err.keys(), ["nodes.db2.role"]);
    assert!(err.to_string().contains("db1 is marked"), "{err}");
    let none = THREE.replace("role = \"primary\"\n", "");
    assert_eq!(error(&none).keys(), ["nodes"]);
    let in_pair = MINIMAL.replace("[secondary]\nhost", "[secondary]\nrole = \"replica\"\nhost");
    assert_eq!(error(&in_pair).keys(), ["secondary.role"]);
}

#[test]
fn node_names_and_counts_are_checked() {
    let bad = THREE.replace("[nodes.db3]", "[nodes.\"db 3\"]");
    assert_eq!(error(&bad).keys(), ["nodes.db 3"]);
    let galera = format!("topology = \"galera\"\n{MINIMAL}");
    assert_eq!(error(&galera).keys(), ["topology"]);
    let primary_primary = format!("topology = \"primary-primary\"\n{THREE}");
    assert_eq!(error(&primary_primary).keys(), ["nodes"]);
    // Two writable nodes: MariaDB only, two nodes in either form.
    let pair = format!("topology = \"primary-primary\"\n{MINIMAL}");
    assert_eq!(parse(&pair).unwrap().topology, Topology::PrimaryPrimary);
    let postgres = pair.replace("engine = \"mariadb\"", "engine = \"postgresql\"");
    let err = error(&postgres);
    assert_eq!(err.keys(), ["topology"]);
    assert!(err.to_string().contains("no built-in replication"), "{err}");
}

const GALERA: &str = r#"
engine = "mariadb"
topology = "galera"

[nodes.db1]
host = "198.51.100.11"

[nodes.db2]
host = "198.51.100.12"

[nodes.db3]
host = "198.51.100.13"
"#;

#[test]
fn galera_takes_three_data_nodes_or_two_and_an_arbitrator() {
    let three = parse(GALERA).unwrap();
    assert_eq!(three.topology, Topology::Galera);
    assert_eq!(three.starting_primary().as_str(), "db1");
    let arbitrated = parse(&GALERA.replace(
        "[nodes.db1]\nhost = \"198.51.100.11\"",
        "[nodes.db1]\nhost = \"198.51.100.11\"\nrole = \"arbitrator\"",
    ))
    .unwrap();
    assert!(arbitrated.nodes["db1"].is_arbitrator());
    // The arbitrator holds no data: the cluster starts from a node with a database.
    assert_eq!(arbitrated.starting_primary().as_str(), "db2");
    let marked = parse(&GALERA.replace(
        "[nodes.db3]\nhost = \"198.51.100.13\"",
        "[nodes.db3]\nhost = \"198.51.100.13\"\nrole = \"primary\"",
    ))
    .unwrap();
    assert_eq!(marked.starting_primary().as_str(), "db3");
}

#[test]
fn a_two_node_galera_without_an_arbitrator_is_refused_saying_why() {
    let two = GALERA.replace("[nodes.db3]\nhost = \"198.51.100.13\"\n", "");
    let err = error(&two);
    assert_eq!(err.keys(), ["nodes"]);
    let text = err.to_string();
    assert!(text.contains("not a majority"), "{text}");
    assert!(text.contains("role = \"arbitrator\""), "{text}");
    // The pair form says the same, at `topology`.
    let pair = format!("topology = \"galera\"\n{MINIMAL}");
    let err = error(&pair);
    assert_eq!(err.keys(), ["topology"]);
    assert!(err.to_string().contains("not a majority"), "{err}");
    // One data node and two arbitrators: no cluster at all.
    let lonely = GALERA
        .replace(
            "[nodes.db2]\nhost = \"198.51.100.12\"",
            "[nodes.db2]\nhost = \"198.51.100.12\"\nrole = \"arbitrator\"",
        )
        .replace(
            "[nodes.db3]\nhost = \"198.51.100.13\"",
            "[nodes.db3]\nhost = \"198.51.100.13\"\nrole = \"arbitrator\"",
        );
    assert_eq!(error(&lonely).keys(), ["nodes", "nodes.db3.role"]);
}

#[test]
fn galera_needs_mariadb_and_arbitrators_need_galera() {
    let pg = GALERA.replace("engine = \"mariadb\"", "engine = \"postgresql\"");
    let err = error(&pg);
    assert_eq!(err.keys(), ["topology"]);
    assert!(
        err.to_string().contains("needs engine = \"mariadb\""),
        "{err}"
    );
    let arbiter_in_pairs = THREE.replace(
        "[nodes.db3]\nhost = \"198.51.100.13\"",
        "[nodes.db3]\nhost = \"198.51.100.13\"\nrole = \"arbitrator\"",
    );
    assert_eq!(error(&arbiter_in_pairs).keys(), ["nodes.db3.role"]);
    let replica = GALERA.replace(
        "[nodes.db2]\nhost = \"198.51.100.12\"",
        "[nodes.db2]\nhost = \"198.51.100.12\"\nrole = \"replica\"",
    );
    assert_eq!(error(&replica).keys(), ["nodes.db2.role"]);
}
