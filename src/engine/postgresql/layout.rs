//! Where ha-setup puts things on a PostgreSQL host (Debian's layout: clusters found with
//! `pg_lsclusters`, settings in `/etc/postgresql/VERSION/NAME`), and the settings each node
//! runs with: computed from the config and what the server reports, before anything changes.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::observe::{self, Server};
use crate::config::{Config, Node};
use crate::node::NodeName;
use crate::plan::Ctx;

/// ha-setup's settings file, in the cluster's `conf.d` (Debian's postgresql.conf includes
/// that directory last, so these win over the distribution's file).
pub const CONF_NAME: &str = "90-ha-setup.conf";
/// The node's TLS files (its CA, certificate and key, the other nodes' CAs as
/// `peer-ca.pem`) and the replication password file the standby's WAL receiver reads.
pub const DIR: &str = "/etc/postgresql/ha-setup";
pub const PEER_CA: &str = "/etc/postgresql/ha-setup/peer-ca.pem";
/// The password in libpq's password-file format, 0600 postgres: `primary_conninfo` names
/// the file, never the password.
pub const PGPASS: &str = "/etc/postgresql/ha-setup/pgpass";
/// What a standby received: the bundle's position and where its old data went.
pub const SEED_RECORD: &str = "/var/lib/ha-setup/postgresql-seed.json";
/// The tool's schema for the canary, in the `postgres` database.
pub const SCHEMA: &str = "ha_setup";
/// The role pg_rewind logs in to the primary as (rejoin): no superuser over the network.
pub const REWIND_ROLE: &str = "ha_setup_rewind";
/// What pg_rewind reads the source's files with (PostgreSQL's documentation of pg_rewind).
pub const REWIND_FUNCTIONS: [&str; 4] = [
    "pg_catalog.pg_ls_dir(text, boolean, boolean)",
    "pg_catalog.pg_stat_file(text, boolean)",
    "pg_catalog.pg_read_binary_file(text)",
    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
];
/// Marks the lines ha-setup keeps at the top of `pg_hba.conf` (PostgreSQL 15 has no
/// include for it): everything between is ha-setup's, everything else the operator's.
pub const HBA_BEGIN: &str = "# BEGIN ha-setup: replication between the cluster's nodes (kept by ha-setup; edit its config instead)";
pub const HBA_END: &str = "# END ha-setup";
/// How long a WAL receiver or sender waits on a silent peer before it gives up: a cut
/// link shows as such within this bound (PostgreSQL's default is a minute).
pub const WAL_TIMEOUT_SECS: u64 = 15;
/// See `wal_keep_size` in [`Settings::render`].
pub const WAL_KEEP: &str = "256MB";
/// Staging and moved-aside names beside the data directory (or inside it when it is a
/// mount point of its own, which cannot be renamed).
pub const INCOMING_NAME: &str = ".ha-setup-incoming";
pub const MOVED_ASIDE_NAME: &str = ".ha-setup-old";

/// One of Debian's PostgreSQL clusters on a node, as `pg_lsclusters` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cluster {
    /// `15`.
    pub version: String,
    /// `main`.
    pub name: String,
    pub port: u16,
    pub datadir: String,
    /// `/etc/postgresql/15/main`.
    pub confdir: String,
    pub log: String,
    /// Debian's postgresql.conf includes `conf.d`.
    pub include_dir: bool,
    /// The data directory is a mount point of its own.
    pub datadir_mount: bool,
    pub systemd: bool,
}

impl Cluster {
    /// `15/main`, as `pg_ctlcluster`, `psql --cluster` and people name it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.version, self.name)
    }

    pub fn conf_path(&self) -> String {
        format!("{}/conf.d/{CONF_NAME}", self.confdir)
    }

    pub fn hba_path(&self) -> String {
        format!("{}/pg_hba.conf", self.confdir)
    }

    /// The parent the data directory is renamed within, or the data directory itself
    /// when it is a mount point (then its entries move, not the directory).
    fn staging_parent(&self) -> String {
        if self.datadir_mount {
            self.datadir.clone()
        } else {
            parent(&self.datadir)
        }
    }

    /// Where a copy is received before it takes the data's place: on the data's own
    /// filesystem, so that the swap is a rename.
    pub fn incoming_dir(&self) -> String {
        format!(
            "{}/{INCOMING_NAME}-{}-{}",
            self.staging_parent(),
            self.version,
            self.name
        )
    }

    /// Where the old data goes: kept, never deleted.
    pub fn moved_aside_dir(&self, stamp: &str) -> String {
        format!(
            "{}/{MOVED_ASIDE_NAME}-{}-{}-{stamp}",
            self.staging_parent(),
            self.version,
            self.name
        )
    }

    /// `pg_ctlcluster VERSION NAME VERB`: systemd's unit when systemd runs, else
    /// pg_ctl directly, as Debian's tool decides itself.
    pub fn control(&self, verb: &str) -> String {
        format!("pg_ctlcluster {} {} {verb}", self.version, self.name)
    }

    /// A stop or restart that ends sessions rather than waiting for them (nothing
    /// committed is lost).
    pub fn control_fast(&self, verb: &str) -> String {
        format!(
            "pg_ctlcluster -m fast {} {} {verb}",
            self.version, self.name
        )
    }
}

fn parent(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".to_owned(),
        Some((parent, _)) => parent.to_owned(),
    }
}

/// The cluster of a node as read at the start of the operation.
pub fn cluster(cx: &mut Ctx<'_>, name: &NodeName) -> anyhow::Result<Cluster> {
    let seen = cx.observe(name);
    observe::cluster(&seen).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "no PostgreSQL cluster found on {}: {}",
            seen.label,
            seen.problem.as_deref().unwrap_or("it was not read")
        )
    })
}

/// The replication slot a standby streams through, on whichever node is primary: named
/// after the standby, so a slot tells whose WAL it keeps.
pub fn slot_name(standby: &NodeName) -> String {
    let mut name = String::from("ha_setup_");
    for c in standby.as_str().chars() {
        name.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        });
    }
    name.truncate(63);
    name
}

/// The addresses to listen on: the server's own list with the replication address added,
/// or `*` kept when it listens everywhere already.
pub fn listen_addresses(node: &Node, running: &str) -> String {
    let mut list: Vec<String> = running
        .split(',')
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    if list.iter().any(|a| a == "*") {
        return "*".to_owned();
    }
    if list.is_empty() {
        list.push("localhost".to_owned());
    }
    let address = node.replication_address();
    if !list.iter().any(|a| a.eq_ignore_ascii_case(address)) {
        list.push(address.to_owned());
    }
    list.join(",")
}

/// A standby's way to its primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub tls: bool,
    /// The standby's own name: its `application_name`, which the primary shows.
    pub application_name: String,
    pub slot: String,
}

impl Upstream {
    pub fn new(config: &Config, primary: &NodeName, standby: &NodeName, port: u16) -> Upstream {
        Upstream {
            host: config.node(primary).replication_address().to_owned(),
            port,
            user: config.replication.user.clone(),
            tls: config.replication.tls,
            application_name: standby.as_str().to_owned(),
            slot: slot_name(standby),
        }
    }

    /// libpq's connection string: the password from [`PGPASS`], the primary's
    /// certificate checked against its CA and address.
    pub fn conninfo(&self) -> String {
        let mut text = format!(
            "host={} port={} user={} passfile={PGPASS} application_name={} connect_timeout=10 \
             keepalives=1 keepalives_idle=5 keepalives_interval=5 keepalives_count=3",
            conninfo_value(&self.host),
            self.port,
            conninfo_value(&self.user),
            conninfo_value(&self.application_name)
        );
        if self.tls {
            let _ = write!(text, " sslmode=verify-full sslrootcert={PEER_CA}");
        } else {
            text.push_str(" sslmode=prefer");
        }
        text
    }
}

/// A conninfo value, quoted when it must be.
fn conninfo_value(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
    {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// A value as a postgresql.conf string.
fn conf_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The settings of ha-setup's file for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen_addresses: String,
    pub wal_level: String,
    pub max_wal_senders: u32,
    pub max_replication_slots: u32,
    pub wal_log_hints: bool,
    pub max_slot_wal_keep_size: String,
    pub tls: bool,
    /// Set on a standby: where it streams from.
    pub upstream: Option<Upstream>,
    /// Settings a hot standby needs at least as high as its primary's (or it does not
    /// start), with the value: the larger of this node's and the primary's, on every node,
    /// since any of them may become the primary.
    pub floors: Vec<(&'static str, u32)>,
}

/// Settings only a restart applies, as (name, running value, wanted value).
pub type Restart = Vec<(&'static str, String, String)>;

impl Settings {
    /// Never less than the server runs with now: a setting the operator raised stays.
    pub fn new(
        config: &Config,
        name: &NodeName,
        server: &Server,
        upstream: Option<Upstream>,
    ) -> Settings {
        let nodes = config.nodes.len() as u32;
        Settings {
            listen_addresses: listen_addresses(config.node(name), &server.listen_addresses),
            wal_level: if server.wal_level == "logical" {
                "logical".to_owned()
            } else {
                "replica".to_owned()
            },
            max_wal_senders: server.max_wal_senders.max(10).max(nodes * 2 + 2),
            max_replication_slots: server.max_replication_slots.max(10).max(nodes * 2 + 2),
            wal_log_hints: true,
            max_slot_wal_keep_size: config.postgresql.max_slot_wal_keep_size.clone(),
            tls: config.replication.tls,
            upstream,
            floors: floors(server, server, config),
        }
    }

    /// The floors taken from the primary too (see [`Settings::floors`]).
    pub fn at_least(mut self, primary: &Server, config: &Config) -> Settings {
        let own: std::collections::HashMap<&str, u32> = self.floors.iter().copied().collect();
        self.floors = floors(primary, primary, config)
            .into_iter()
            .map(|(name, value)| (name, value.max(own.get(name).copied().unwrap_or(0))))
            .collect();
        self
    }

    pub fn render(&self) -> String {
        let mut text = String::from(
            "# Written by ha-setup: the settings this node needs for replication.\n\
             # Changes here are overwritten; change ha-setup's config and run init again.\n",
        );
        let mut set = |name: &str, value: String| {
            let _ = writeln!(text, "{name} = {value}");
        };
        set("listen_addresses", conf_string(&self.listen_addresses));
        set("wal_level", self.wal_level.clone());
        set("max_wal_senders", self.max_wal_senders.to_string());
        set(
            "max_replication_slots",
            self.max_replication_slots.to_string(),
        );
        // pg_rewind needs it on clusters without data checksums (rejoin).
        set("wal_log_hints", on(self.wal_log_hints));
        set("hot_standby", "on".to_owned());
        set(
            "max_slot_wal_keep_size",
            conf_string(&self.max_slot_wal_keep_size),
        );
        // WAL kept behind the current position whatever the slots say: pg_rewind (rejoin)
        // needs an old primary's WAL back to the last checkpoint both histories share.
        set("wal_keep_size", format!("'{WAL_KEEP}'"));
        set("wal_sender_timeout", format!("'{WAL_TIMEOUT_SECS}s'"));
        set("wal_receiver_timeout", format!("'{WAL_TIMEOUT_SECS}s'"));
        if self.tls {
            set("ssl", "on".to_owned());
            set(
                "ssl_cert_file",
                conf_string(&format!("{DIR}/server-cert.pem")),
            );
            set(
                "ssl_key_file",
                conf_string(&format!("{DIR}/server-key.pem")),
            );
        }
        for (name, value) in &self.floors {
            set(name, value.to_string());
        }
        match &self.upstream {
            Some(up) => {
                set("primary_conninfo", conf_string(&up.conninfo()));
                set("primary_slot_name", conf_string(&up.slot));
            }
            None => {
                set("primary_conninfo", "''".to_owned());
                set("primary_slot_name", "''".to_owned());
            }
        }
        text
    }

    /// What the running server lacks that only a restart gives it.
    pub fn needs_restart(&self, server: &Server) -> Restart {
        let mut out: Restart = Vec::new();
        let running_listen = server.listen_addresses.replace(' ', "");
        if running_listen != self.listen_addresses.replace(' ', "") {
            out.push((
                "listen_addresses",
                server.listen_addresses.clone(),
                self.listen_addresses.clone(),
            ));
        }
        if server.wal_level != self.wal_level {
            out.push((
                "wal_level",
                server.wal_level.clone(),
                self.wal_level.clone(),
            ));
        }
        if server.max_wal_senders != self.max_wal_senders {
            out.push((
                "max_wal_senders",
                server.max_wal_senders.to_string(),
                self.max_wal_senders.to_string(),
            ));
        }
        if server.max_replication_slots != self.max_replication_slots {
            out.push((
                "max_replication_slots",
                server.max_replication_slots.to_string(),
                self.max_replication_slots.to_string(),
            ));
        }
        for (name, wanted) in &self.floors {
            let running = running_value(server, name);
            if running != *wanted {
                out.push((name, running.to_string(), wanted.to_string()));
            }
        }
        if server.wal_log_hints != self.wal_log_hints {
            out.push((
                "wal_log_hints",
                on(server.wal_log_hints),
                on(self.wal_log_hints),
            ));
        }
        out
    }
}

/// The floors of one server, the connections the application needs counted in
/// (`[postgresql] app_instances` and `raise_max_connections`).
fn floors(a: &Server, b: &Server, config: &Config) -> Vec<(&'static str, u32)> {
    let mut connections = a.max_connections.max(b.max_connections);
    if config.postgresql.raise_max_connections
        && let Some(needed) = config.postgresql.connections_needed()
    {
        connections = connections.max(needed);
    }
    vec![
        ("max_connections", connections),
        (
            "max_worker_processes",
            a.max_worker_processes.max(b.max_worker_processes),
        ),
        (
            "max_prepared_transactions",
            a.max_prepared_transactions.max(b.max_prepared_transactions),
        ),
        (
            "max_locks_per_transaction",
            a.max_locks_per_transaction.max(b.max_locks_per_transaction),
        ),
    ]
    .into_iter()
    // A value the server did not report (0) is not written: the server's own stays.
    .filter(|(name, value)| *value > 0 || *name == "max_prepared_transactions")
    .collect()
}

fn running_value(server: &Server, name: &str) -> u32 {
    match name {
        "max_connections" => server.max_connections,
        "max_worker_processes" => server.max_worker_processes,
        "max_prepared_transactions" => server.max_prepared_transactions,
        _ => server.max_locks_per_transaction,
    }
}

fn on(value: bool) -> String {
    if value { "on" } else { "off" }.to_owned()
}

/// The address part of a pg_hba line for a node: an IP address as a single-host network,
/// a name as it is (PostgreSQL resolves it both ways).
pub fn hba_address(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => format!("{ip}/32"),
        Ok(IpAddr::V6(ip)) => format!("{ip}/128"),
        Err(_) => address.to_owned(),
    }
}

/// `pg_hba.conf` with ha-setup's block at the top (first match wins, so no rule of the
/// operator's further down shadows it), replacing the block an earlier run wrote; the
/// operator's lines stay as they are.
pub fn hba_with_block(current: &str, lines: &[String]) -> String {
    let mut out = String::new();
    out.push_str(HBA_BEGIN);
    out.push('\n');
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(HBA_END);
    out.push('\n');
    let mut inside = false;
    for line in current.lines() {
        if line == HBA_BEGIN {
            inside = true;
            continue;
        }
        if inside {
            if line == HBA_END {
                inside = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The block's lines: the replication role from every other node, and the rewind role to
/// the `postgres` database, by password (SCRAM), over TLS when it is on.
pub fn hba_lines(config: &Config, on: &NodeName) -> Vec<String> {
    let kind = if config.replication.tls {
        "hostssl"
    } else {
        "host"
    };
    config
        .nodes
        .iter()
        .filter(|(name, _)| *name != on)
        .flat_map(|(_, node)| {
            let address = hba_address(node.replication_address());
            [
                format!(
                    "{kind} replication {} {address} scram-sha-256",
                    config.replication.user
                ),
                format!("{kind} postgres {REWIND_ROLE} {address} scram-sha-256"),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_named_after_the_standby() {
        assert_eq!(slot_name(&NodeName::new("secondary")), "ha_setup_secondary");
        assert_eq!(slot_name(&NodeName::new("DB-2.x")), "ha_setup_db_2_x");
    }

    #[test]
    fn the_hba_block_goes_first_and_replaces_the_last_one() {
        let operator = "# comment\nlocal all all peer\n";
        let once = hba_with_block(
            operator,
            &["hostssl replication r 10.0.0.2/32 scram-sha-256".into()],
        );
        assert!(once.starts_with(HBA_BEGIN));
        assert!(once.ends_with(operator));
        let twice = hba_with_block(
            &once,
            &["host replication r 10.0.0.3/32 scram-sha-256".into()],
        );
        assert_eq!(twice.matches(HBA_BEGIN).count(), 1);
        assert!(!twice.contains("10.0.0.2"));
        assert!(twice.contains("10.0.0.3/32"));
        assert!(twice.ends_with(operator));
    }

    #[test]
    fn conninfo_names_the_password_file_never_the_password() {
        let up = Upstream {
            host: "198.51.100.11".into(),
            port: 5432,
            user: "ha repl".into(),
            tls: true,
            application_name: "secondary".into(),
            slot: "ha_setup_secondary".into(),
        };
        let text = up.conninfo();
        assert!(text.contains("user='ha repl'"), "{text}");
        assert!(text.contains(&format!("passfile={PGPASS}")));
        assert!(text.contains("sslmode=verify-full"));
        assert!(!text.contains("password="));
    }

    #[test]
    fn staging_stays_on_the_datas_filesystem() {
        let mut c = Cluster {
            version: "15".into(),
            name: "main".into(),
            datadir: "/var/lib/postgresql/15/main".into(),
            ..Cluster::default()
        };
        assert_eq!(
            c.incoming_dir(),
            "/var/lib/postgresql/15/.ha-setup-incoming-15-main"
        );
        c.datadir_mount = true;
        assert_eq!(
            c.incoming_dir(),
            "/var/lib/postgresql/15/main/.ha-setup-incoming-15-main"
        );
    }

    fn server(max_connections: u32, workers: u32) -> Server {
        let text = format!(
            r#"{{"version_num": 150018, "version": "15.18", "in_recovery": false, "replay_paused": false, "datadir": "/d", "port": 5432, "listen_addresses": "localhost", "wal_level": "replica", "max_wal_senders": 10, "max_replication_slots": 10, "wal_log_hints": true, "data_checksums": false, "ssl": true, "max_connections": {max_connections}, "max_worker_processes": {workers}, "max_prepared_transactions": 0, "max_locks_per_transaction": 64, "system_identifier": "1", "timeline": 1, "current_lsn": "0/1", "receive_lsn": null, "replay_lsn": null, "replay_age": null, "primary_conninfo": "", "primary_slot_name": "", "pending_restart": [], "receiving": false, "receiver": null, "replicas": [], "slots": []}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    fn config(extra: &str) -> Config {
        Config::parse(
            &format!(
                "engine = \"postgresql\"\n[primary]\nhost = \"10.0.0.1\"\n[secondary]\nhost = \"10.0.0.2\"\n{extra}"
            ),
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn a_standby_runs_with_at_least_its_primarys_limits() {
        let config = config("");
        let name = NodeName::new("secondary");
        let standby = Settings::new(&config, &name, &server(100, 16), None)
            .at_least(&server(300, 8), &config);
        let text = standby.render();
        assert!(text.contains("max_connections = 300\n"), "{text}");
        assert!(text.contains("max_worker_processes = 16\n"), "{text}");
        // Running with less, it needs a restart; the primary's own values need none.
        assert!(
            standby
                .needs_restart(&server(100, 16))
                .iter()
                .any(|(n, _, _)| *n == "max_connections")
        );
        let primary = Settings::new(&config, &NodeName::new("primary"), &server(300, 8), None);
        assert!(
            primary
                .needs_restart(&server(300, 8))
                .iter()
                .all(|(n, _, _)| *n == "listen_addresses")
        );
    }

    #[test]
    fn the_applications_connections_are_raised_only_when_asked() {
        let asked = config("[postgresql]\napp_instances = 4\nraise_max_connections = true\n");
        assert_eq!(asked.postgresql.connections_needed(), Some(165));
        let settings = Settings::new(&asked, &NodeName::new("primary"), &server(100, 8), None);
        assert!(settings.render().contains("max_connections = 165\n"));
        let warned = config("[postgresql]\napp_instances = 4\n");
        let settings = Settings::new(&warned, &NodeName::new("primary"), &server(100, 8), None);
        assert!(settings.render().contains("max_connections = 100\n"));
    }
}
