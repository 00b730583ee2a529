//! Checks that the types alone cannot express. Every problem is collected, so an operator
//! fixes the file in one pass instead of one error per run.

use super::{Config, LOCAL_HOST, Node, NodeRole, Problem, Topology};

pub(super) fn problems(config: &Config) -> Vec<Problem> {
    let mut found = Vec::new();
    let engine_port = config.engine.default_db_port();
    for (name, node) in &config.nodes {
        node_problems(config, name.as_str(), node, &mut found);
    }
    pair_problems(config, engine_port, &mut found);
    shape_problems(config, &mut found);
    if let Some(cluster) = &config.cluster
        && !valid_name(cluster, 64)
    {
        found.push(
            Problem::new(
                "cluster",
                format!("{cluster:?} is not a usable cluster name"),
            )
            .help("use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"),
        );
    }

    let keep = &config.postgresql.max_slot_wal_keep_size;
    if !valid_size(keep) {
        found.push(
            Problem::new(
                "postgresql.max_slot_wal_keep_size",
                format!("{keep:?} is not a size PostgreSQL reads"),
            )
            .help(
                "write a number of megabytes, gigabytes or terabytes, e.g. \"8GB\" (at least 1GB)",
            ),
        );
    }
    let pg = &config.postgresql;
    if pg.connections_per_instance == 0 || pg.connections_per_instance > 10_000 {
        found.push(Problem::new(
            "postgresql.connections_per_instance",
            format!(
                "{} is out of range; use 1 to 10000",
                pg.connections_per_instance
            ),
        ));
    }
    if pg.app_instances.is_some_and(|n| n == 0 || n > 1000) {
        found.push(Problem::new(
            "postgresql.app_instances",
            format!(
                "{} is out of range; use 1 to 1000 (or leave it out)",
                pg.app_instances.unwrap_or_default()
            ),
        ));
    }

    let ssh = &config.ssh;
    for (key, value, max) in [
        ("ssh.connect_timeout_secs", ssh.connect_timeout_secs, 600),
        ("ssh.keepalive_secs", ssh.keepalive_secs, 600),
        ("ssh.io_timeout_secs", ssh.io_timeout_secs, 3600),
    ] {
        if value == 0 || value > max {
            found.push(Problem::new(
                key,
                format!("{value} is out of range; use 1 to {max} seconds"),
            ));
        }
    }
    if ssh.io_timeout_secs <= ssh.keepalive_secs {
        found.push(
            Problem::new(
                "ssh.io_timeout_secs",
                format!(
                    "{} seconds is not longer than ssh.keepalive_secs ({}), so a healthy but idle host would be taken for cut off",
                    ssh.io_timeout_secs, ssh.keepalive_secs
                ),
            )
            .help("make io_timeout_secs at least two keepalive intervals"),
        );
    }

    let user = &config.replication.user;
    if user.is_empty()
        || user.len() > 32
        || !user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        found.push(
            Problem::new(
                "replication.user",
                format!("{user:?} is not a usable database user name"),
            )
            .help("use 1 to 32 letters, digits or underscores, e.g. \"ha_repl\""),
        );
    }
    if let Some(var) = &config.replication.password_env {
        env_name_problem("replication.password_env", var, &mut found);
    }
    let fence = config.replication.fence_timeout_secs;
    if fence == 0 || fence > 300 {
        found.push(
            Problem::new(
                "replication.fence_timeout_secs",
                format!("{fence} is out of range; use 1 to 300 seconds"),
            )
            .help("the application's writes wait behind a fence this long at most: a few seconds, e.g. 5"),
        );
    }

    let mut seen = Vec::new();
    for (index, file) in config.sync_files.iter().enumerate() {
        let key = format!("sync_files[{index}].path");
        if !file.path.is_absolute() {
            found.push(Problem::new(
                &key,
                format!("{:?} is not an absolute path", file.path),
            ));
        } else if seen.contains(&&file.path) {
            found.push(Problem::new(
                &key,
                format!("{:?} is listed twice", file.path),
            ));
        } else if file.path.parent().is_none() {
            found.push(Problem::new(
                &key,
                "\"/\" cannot be synced: list the files or directories to keep identical",
            ));
        } else if let Some((other, _)) = seen
            .iter()
            .enumerate()
            .find(|(_, other)| file.path.starts_with(other) || other.starts_with(&file.path))
        {
            // Two copies of the same files, one inside the other, would replace each other.
            found.push(Problem::new(
                &key,
                format!(
                    "{:?} and sync_files[{other}].path overlap (one is inside the other): list one of them",
                    file.path
                ),
            ));
        }
        seen.push(&file.path);
    }
    found
}

/// Names go into flags, messages and file names: letters, digits, '.', '_', '-'.
fn valid_name(name: &str, max: usize) -> bool {
    name.len() <= max
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// How many nodes the topology takes, and which node primary-replica starts from.
fn shape_problems(config: &Config, found: &mut Vec<Problem>) {
    let count = config.nodes.len();
    if config.topology == Topology::Galera {
        galera_problems(config, found);
    } else if let Some((name, _)) = config.nodes.iter().find(|(_, n)| n.is_arbitrator()) {
        found.push(
            Problem::new(
                config.key(name.as_str(), "role"),
                format!(
                    "role = \"arbitrator\" is for topology = \"galera\" (a garbd host); this is topology = \"{}\"",
                    config.topology.name()
                ),
            )
            .help("remove the key, or the node"),
        );
    }
    let (least, most) = match config.topology {
        Topology::PrimaryReplica => (2, 16),
        Topology::PrimaryPrimary => (2, 2),
        Topology::Galera => (3, 16),
    };
    // A missing table of the two-node form is reported by itself; Galera's count above.
    let missing_table = config.two_node_form && count < 2;
    let counted = config.topology == Topology::Galera && count < least;
    if !missing_table && !counted && ((1..least).contains(&count) || count > most) {
        found.push(Problem::new(
            if config.two_node_form {
                "topology"
            } else {
                "nodes"
            },
            format!(
                "topology = \"{}\" takes {} nodes; the file names {count}",
                config.topology.name(),
                if least == most {
                    least.to_string()
                } else {
                    format!("{least} to {most}")
                }
            ),
        ));
    }
    if config.topology == Topology::PrimaryPrimary && config.engine != super::Engine::Mariadb {
        found.push(
            Problem::new(
                "topology",
                format!(
                    "topology = \"primary-primary\" needs engine = \"mariadb\"; {} has no built-in replication \
                     between two writable servers",
                    match config.engine {
                        super::Engine::Postgresql => "PostgreSQL",
                        super::Engine::Mariadb => "MariaDB",
                    }
                ),
            )
            .help("use topology = \"primary-replica\": one writable primary and its standby"),
        );
    }
    let marked: Vec<&str> = config
        .nodes
        .iter()
        .filter(|(_, node)| node.role == Some(NodeRole::Primary))
        .map(|(name, _)| name.as_str())
        .collect();
    if config.two_node_form {
        for name in ["primary", "secondary"] {
            if config.nodes.get(name).is_some_and(|n| n.role.is_some()) {
                found.push(
                    Problem::new(
                        format!("{name}.role"),
                        "role belongs in [nodes.NAME] tables; in the two-node form the table's name says it",
                    )
                    .help("remove the key"),
                );
            }
        }
    } else if config.topology == Topology::PrimaryReplica && count >= 2 {
        match marked[..] {
            [_] => {}
            [] => found.push(
                Problem::new(
                    "nodes",
                    "no node is marked role = \"primary\": ha-setup must know whose data the others get at the first init",
                )
                .help("add `role = \"primary\"` to the [nodes.NAME] table of the node that holds the data"),
            ),
            [first, ..] => {
                for other in &marked[1..] {
                    found.push(
                        Problem::new(
                            format!("nodes.{other}.role"),
                            format!("{first} is marked role = \"primary\" already; only one node starts as the primary"),
                        )
                        .help("mark the other nodes role = \"replica\", or leave role out"),
                    );
                }
            }
        }
    }
}

/// Galera: MariaDB only; three data nodes or more, or two and one arbitrator (garbd), so
/// that losing any one member leaves a majority; at most one node marked as the start.
fn galera_problems(config: &Config, found: &mut Vec<Problem>) {
    if config.engine != super::Engine::Mariadb {
        found.push(
            Problem::new(
                "topology",
                format!(
                    "topology = \"galera\" needs engine = \"mariadb\": Galera is MariaDB's (galera-4); engine = \"{}\" has none",
                    config.engine.name()
                ),
            )
            .help("use topology = \"primary-replica\" for PostgreSQL"),
        );
    }
    let arbitrators: Vec<&str> = config
        .nodes
        .iter()
        .filter(|(_, n)| n.is_arbitrator())
        .map(|(name, _)| name.as_str())
        .collect();
    let data = config.nodes.len() - arbitrators.len();
    let key = if config.two_node_form {
        "topology"
    } else {
        "nodes"
    };
    if config.nodes.is_empty() || (config.two_node_form && config.nodes.len() < 2) {
        // Said already: the file names no nodes, or a table is missing.
    } else if data == 2 && arbitrators.is_empty() {
        found.push(
            Problem::new(
                key,
                "a Galera cluster of two nodes stops taking writes when either is lost: the one left                  is not a majority (1 of 2), so it cannot tell a dead peer from a cut cable",
            )
            .help(
                "add a third [nodes.NAME] with a database, or a light host with role = \"arbitrator\"                  (it runs garbd, Debian's galera-arbitrator-4, and holds no data)",
            ),
        );
    } else if data < 2 || data + arbitrators.len() < 3 {
        found.push(
            Problem::new(
                key,
                format!(
                    "topology = \"galera\" takes three or more nodes with a database, or two and one                      role = \"arbitrator\"; the file names {data} with a database{}",
                    if arbitrators.is_empty() {
                        String::new()
                    } else {
                        format!(" and {} arbitrator(s)", arbitrators.len())
                    }
                ),
            )
            .help("add [nodes.NAME] tables"),
        );
    }
    for extra in arbitrators.iter().skip(1) {
        found.push(
            Problem::new(
                config.key(extra, "role"),
                format!(
                    "{} is the arbitrator already; ha-setup runs one garbd per cluster",
                    arbitrators[0]
                ),
            )
            .help("give the cluster another node with a database instead"),
        );
    }
    let marked: Vec<&str> = config
        .nodes
        .iter()
        .filter(|(_, node)| node.role == Some(NodeRole::Primary))
        .map(|(name, _)| name.as_str())
        .collect();
    for other in marked.iter().skip(1) {
        found.push(
            Problem::new(
                config.key(other, "role"),
                format!(
                    "{} is marked role = \"primary\" already; the cluster starts from one node's data",
                    marked[0]
                ),
            )
            .help("leave role out on the others"),
        );
    }
    for (name, node) in &config.nodes {
        if node.role == Some(NodeRole::Replica) {
            found.push(
                Problem::new(
                    config.key(name.as_str(), "role"),
                    "there are no replicas in a Galera cluster: every node with a database takes writes",
                )
                .help("remove the key (or mark the node whose data the cluster starts from role = \"primary\")"),
            );
        }
    }
}

fn node_problems(config: &Config, name: &str, node: &Node, found: &mut Vec<Problem>) {
    let key = |field: &str| config.key(name, field);
    if !config.two_node_form && !valid_name(name, 32) {
        found.push(
            Problem::new(
                config.key(name, ""),
                format!("{name:?} is not a usable node name (it appears in flags, messages and file names)"),
            )
            .help("use 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit"),
        );
    }
    if let Some(problem) = host_problem(&node.host) {
        found.push(
            Problem::new(key("host"), problem)
                .help("give a host name or IP address, or \"local\" for this machine"),
        );
    }
    if let Some(address) = &node.replication_host {
        if address == LOCAL_HOST {
            found.push(
                Problem::new(
                    key("replication_host"),
                    "\"local\" is not an address the other node can reach",
                )
                .help("give the IP address or name the other database host uses for this one"),
            );
        } else if let Some(problem) = host_problem(address) {
            found.push(Problem::new(key("replication_host"), problem));
        }
    } else if node.is_local() {
        found.push(
            Problem::new(
                key("host"),
                "\"local\" needs a replication_host: the other node cannot reach this machine's database by that name",
            )
            .help(format!("add `replication_host = \"<this machine's address>\"` under [{}]", config.key(name, ""))),
        );
    }
    for (field, port) in [("ssh_port", node.ssh_port), ("db_port", node.db_port)] {
        if port == Some(0) {
            found.push(Problem::new(
                key(field),
                "port 0 is not a port; use 1 to 65535",
            ));
        }
    }
    if node.server_id == Some(0) {
        found.push(Problem::new(
            key("server_id"),
            "server_id 0 cannot replicate; use 1 to 4294967295",
        ));
    }
    if let Some(user) = &node.ssh_user
        && (user.is_empty() || user.chars().any(|c| c.is_whitespace() || c == '@'))
    {
        found.push(Problem::new(
            key("ssh_user"),
            format!("{user:?} is not a user name"),
        ));
    }
    for (field, var) in [
        ("identity_passphrase_env", &node.identity_passphrase_env),
        ("ssh_password_env", &node.ssh_password_env),
    ] {
        if let Some(var) = var {
            env_name_problem(&key(field), var, found);
        }
    }
    for (field, path) in [("datadir", &node.datadir), ("config_dir", &node.config_dir)] {
        if let Some(path) = path
            && !path.is_absolute()
        {
            found.push(Problem::new(
                key(field),
                format!("{path:?} is not an absolute path"),
            ));
        }
    }
}

fn pair_problems(config: &Config, engine_port: u16, found: &mut Vec<Problem>) {
    let nodes: Vec<(&str, &Node)> = config
        .nodes
        .iter()
        .map(|(name, node)| (name.as_str(), node))
        .collect();
    for (j, (name, node)) in nodes.iter().enumerate() {
        for (earlier, first) in &nodes[..j] {
            let same_ssh_target = first.host.eq_ignore_ascii_case(&node.host)
                && first.ssh_port.unwrap_or(22) == node.ssh_port.unwrap_or(22);
            if same_ssh_target {
                found.push(
                    Problem::new(
                        config.key(name, "host"),
                        format!(
                            "{:?} is the {earlier}'s host too; every node needs its own host",
                            node.host
                        ),
                    )
                    .help(format!(
                        "set {} to this node's address",
                        config.key(name, "host")
                    )),
                );
                continue;
            }
            let same_database = first
                .replication_address()
                .eq_ignore_ascii_case(node.replication_address())
                && first.db_port.unwrap_or(engine_port) == node.db_port.unwrap_or(engine_port);
            if same_database {
                found.push(
                    Problem::new(
                        config.key(name, "replication_host"),
                        format!(
                            "the {name}'s database address {:?} is the {earlier}'s too",
                            node.replication_address()
                        ),
                    )
                    .help("each node needs its own replication address (or db_port)"),
                );
            }
            if let (Some(a), Some(b)) = (first.server_id, node.server_id)
                && a == b
            {
                found.push(Problem::new(
                    config.key(name, "server_id"),
                    format!("{b} is the {earlier}'s server_id too; they must differ"),
                ));
            }
        }
    }
}

fn host_problem(host: &str) -> Option<String> {
    if host.is_empty() {
        Some("is empty".to_owned())
    } else if host.starts_with('-') {
        Some(format!("{host:?} starts with '-'"))
    } else if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/@'\"$`;".contains(c))
    {
        Some(format!("{host:?} is not a host name or address"))
    } else {
        None
    }
}

fn env_name_problem(key: &str, var: &str, found: &mut Vec<Problem>) {
    let mut chars = var.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        found.push(
            Problem::new(key, format!("{var:?} is not an environment variable name"))
                .help("this key names the variable that holds the secret, never the secret itself"),
        );
    }
}

/// `8GB`, `512MB`, `1TB`: a WAL size PostgreSQL reads, and at least 1GB, so a standby
/// that restarts or falls behind for a moment keeps its slot.
fn valid_size(text: &str) -> bool {
    let Some(split) = text.find(|c: char| !c.is_ascii_digit()) else {
        return false;
    };
    let (number, unit) = text.split_at(split);
    let Ok(number) = number.parse::<u64>() else {
        return false;
    };
    let mb = match unit {
        "MB" => number,
        "GB" => number.saturating_mul(1024),
        "TB" => number.saturating_mul(1024 * 1024),
        _ => return false,
    };
    mb >= 1024
}
