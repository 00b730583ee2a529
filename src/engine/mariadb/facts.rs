//! What ha-setup reads from a MariaDB host: what is installed, the running server's
//! settings and GTID state, and its replica threads. Parsing is separate from fetching so
//! the parsers are unit-tested on real server output.

use std::collections::HashMap;

use anyhow::Context;

use super::client;
use crate::host::{Cmd, Host, HostExt, quote};

/// A MariaDB version, compared by its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// From `10.11.6-MariaDB-0+deb12u1` or `mariadbd  Ver 10.11.6-MariaDB… for …`.
    pub fn parse(text: &str) -> Option<Version> {
        let start = text.find(|c: char| c.is_ascii_digit())?;
        let numbers: Vec<u32> = text[start..]
            .split(|c: char| !c.is_ascii_digit() && c != '.')
            .next()?
            .split('.')
            .filter_map(|n| n.parse().ok())
            .collect();
        match numbers[..] {
            [major, minor, patch, ..] => Some(Version(major, minor, patch)),
            [major, minor] => Some(Version(major, minor, 0)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// What is installed on a host, found without logging in to the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// `mariadbd --version`'s version, if the server is installed.
    pub server: Option<Version>,
    pub server_text: String,
    /// Path of mariadb-backup (or the older mariabackup), if installed.
    pub backup_tool: Option<String>,
    /// systemd runs the services (else `service`/init scripts).
    pub systemd: bool,
    /// The server answers on its socket.
    pub running: bool,
}

const SURVEY: &str = "\
printf 'server=%s\\n' \"$(mariadbd --version 2>/dev/null | head -n 1)\"
printf 'backup=%s\\n' \"$(command -v mariadb-backup || command -v mariabackup)\"
printf 'systemd=%s\\n' \"$([ -d /run/systemd/system ] && echo yes)\"
if mariadb-admin --connect-timeout=5 ping >/dev/null 2>&1; then echo running=yes; else echo running=; fi";

pub fn survey(host: &mut dyn Host) -> anyhow::Result<Installed> {
    let text = host.run_ok(&Cmd::new(SURVEY).as_root())?;
    Ok(parse_survey(&text))
}

pub fn parse_survey(text: &str) -> Installed {
    let values: HashMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    let get = |key| values.get(key).copied().unwrap_or("").trim();
    let server_text = get("server").to_owned();
    Installed {
        server: Version::parse(server_text.split(" Ver ").nth(1).unwrap_or(&server_text)),
        server_text,
        backup_tool: Some(get("backup").to_owned()).filter(|s| !s.is_empty()),
        systemd: get("systemd") == "yes",
        running: get("running") == "yes",
    }
}

/// The running server's settings and replication state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub version_text: String,
    pub version: Version,
    pub server_id: u32,
    pub log_bin: bool,
    pub log_bin_basename: Option<String>,
    pub binlog_format: String,
    pub log_slave_updates: bool,
    pub read_only: bool,
    pub datadir: String,
    pub port: u16,
    pub bind_address: String,
    pub gtid_binlog_pos: String,
    pub gtid_slave_pos: String,
    pub gtid_current_pos: String,
    pub have_ssl: bool,
    /// The GTID domain this server's own transactions get (global value: what a new
    /// session takes).
    pub gtid_domain_id: u32,
    pub auto_increment_increment: u32,
    pub auto_increment_offset: u32,
    pub gtid_strict_mode: bool,
    pub gtid_ignore_duplicates: bool,
}

const SERVER_SQL: &str = "SELECT @@version, @@server_id, @@log_bin, @@log_bin_basename, \
    @@binlog_format, @@log_slave_updates, @@read_only, @@datadir, @@port, \
    IFNULL(@@bind_address, ''), @@gtid_binlog_pos, @@gtid_slave_pos, @@gtid_current_pos, @@have_ssl, \
    @@global.gtid_domain_id, @@global.auto_increment_increment, @@global.auto_increment_offset, \
    @@gtid_strict_mode, @@gtid_ignore_duplicates";

pub fn server(host: &mut dyn Host) -> anyhow::Result<Server> {
    let row = client::row(host, SERVER_SQL)?;
    parse_server(&row)
        .with_context(|| format!("unexpected answer from MariaDB on {}", host.label()))
}

pub fn parse_server(row: &[Option<String>]) -> anyhow::Result<Server> {
    let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let flag = |i: usize| field(i) == "1" || field(i).eq_ignore_ascii_case("ON");
    let version_text = field(0);
    Ok(Server {
        version: Version::parse(&version_text)
            .with_context(|| format!("cannot read the version {version_text:?}"))?,
        version_text,
        server_id: field(1).parse().context("server_id")?,
        log_bin: flag(2),
        log_bin_basename: row.get(3).cloned().flatten(),
        binlog_format: field(4),
        log_slave_updates: flag(5),
        read_only: flag(6),
        datadir: field(7).trim_end_matches('/').to_owned(),
        port: field(8).parse().context("port")?,
        bind_address: field(9),
        gtid_binlog_pos: field(10),
        gtid_slave_pos: field(11),
        gtid_current_pos: field(12),
        have_ssl: field(13) == "YES",
        gtid_domain_id: field(14).parse().unwrap_or(0),
        auto_increment_increment: field(15).parse().unwrap_or(1),
        auto_increment_offset: field(16).parse().unwrap_or(1),
        gtid_strict_mode: flag(17),
        gtid_ignore_duplicates: flag(18),
    })
}

/// A node's server and its replica connection, as one reading: the engine's detail in
/// [`crate::topology::Observed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub server: Server,
    pub replica: Option<Replica>,
}

/// The SQL that reads a node's settings and replica connection in one go.
pub fn state_sql() -> String {
    format!("{SERVER_SQL};\nSHOW SLAVE STATUS")
}

/// The server and its replica connection, read in one round trip: the roles are judged
/// from both, on every node, at every step of a recovery, where each command to a host
/// costs a login's worth of time.
pub fn state(host: &mut dyn Host) -> anyhow::Result<(Server, Option<Replica>)> {
    let text = client::text_with_names(host, &state_sql())?;
    parse_state(&text)
        .with_context(|| format!("unexpected answer from MariaDB on {}", host.label()))
}

/// The server's header and row, then `SHOW SLAVE STATUS`'s header and row if it has one.
pub fn parse_state(text: &str) -> anyhow::Result<(Server, Option<Replica>)> {
    let mut lines = text.lines();
    lines.next().context("no answer to the settings query")?;
    let row = lines.next().context("no row for the settings query")?;
    let server = parse_server(&client::parse_rows(row).concat())?;
    let rest: Vec<&str> = lines.collect();
    let replica = client::parse_named(&rest.join("\n"))
        .first()
        .map(parse_replica);
    Ok((server, replica))
}

/// One replica connection, from `SHOW SLAVE STATUS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replica {
    pub master_host: String,
    pub master_port: u16,
    pub master_user: String,
    pub using_gtid: String,
    /// `Yes`, `No` or `Connecting`.
    pub io_running: String,
    pub sql_running: String,
    pub last_io_error: String,
    pub last_sql_error: String,
    pub seconds_behind: Option<u64>,
    pub gtid_io_pos: String,
    pub master_ssl: bool,
}

impl Replica {
    pub fn io_ok(&self) -> bool {
        self.io_running == "Yes"
    }

    pub fn sql_ok(&self) -> bool {
        self.sql_running == "Yes"
    }

    /// The error the threads report, IO's first.
    pub fn last_error(&self) -> Option<String> {
        [&self.last_io_error, &self.last_sql_error]
            .into_iter()
            .find(|e| !e.is_empty())
            .cloned()
    }
}

/// The default replica connection, or None when the server replicates from nowhere.
pub fn replica(host: &mut dyn Host) -> anyhow::Result<Option<Replica>> {
    let rows = client::named_rows(host, "SHOW SLAVE STATUS")?;
    Ok(rows.first().map(parse_replica))
}

pub fn parse_replica(row: &HashMap<String, String>) -> Replica {
    let get = |key: &str| row.get(key).cloned().unwrap_or_default();
    Replica {
        master_host: get("Master_Host"),
        master_port: get("Master_Port").parse().unwrap_or(0),
        master_user: get("Master_User"),
        using_gtid: get("Using_Gtid"),
        io_running: get("Slave_IO_Running"),
        sql_running: get("Slave_SQL_Running"),
        last_io_error: get("Last_IO_Error"),
        last_sql_error: get("Last_SQL_Error"),
        seconds_behind: get("Seconds_Behind_Master").parse().ok(),
        gtid_io_pos: get("Gtid_IO_Pos"),
        master_ssl: get("Master_SSL_Allowed") == "Yes",
    }
}

/// Where MariaDB lives on a host, as the host itself says (read by scripts/observe.sh in
/// the same round trip as the server's state). Empty when nothing was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The directory for ha-setup's settings file: the config's `config_dir`, else the last
    /// `!includedir` of the option files MariaDB reads.
    pub config_dir: String,
    /// The option file that names it (`config` when the config's key gave it).
    pub config_dir_from: String,
    /// The service: the config's `service`, else the systemd unit or init script found.
    pub service: String,
    /// How it was found: `systemd unit mariadb.service`, `/etc/init.d/mariadb`, `config`.
    pub service_from: String,
    pub systemd: bool,
    /// When the server does not answer: the datadir it would start with (`mariadbd
    /// --verbose --help`: its option files, else the built-in default).
    pub datadir_configured: String,
}

impl HostFacts {
    /// From observe.sh's `key=value` lines (those before the server's answer).
    pub fn parse(head: &str) -> HostFacts {
        let values: HashMap<&str, &str> = head
            .lines()
            .filter_map(|line| line.split_once('='))
            .collect();
        let get = |key| values.get(key).copied().unwrap_or("").trim().to_owned();
        HostFacts {
            config_dir: get("config_dir").trim_end_matches('/').to_owned(),
            config_dir_from: get("config_dir_from"),
            service: get("service"),
            service_from: get("service_from"),
            systemd: get("systemd") == "yes",
            datadir_configured: get("datadir_configured").trim_end_matches('/').to_owned(),
        }
    }
}

pub use crate::host::room::{Room, room};

/// Bytes free for new files in the filesystem holding `path` (or its nearest existing
/// ancestor, for a directory not yet made).
pub fn free_bytes(host: &mut dyn Host, path: &str) -> anyhow::Result<u64> {
    let script = format!(
        "p={}\nwhile [ ! -e \"$p\" ]; do p=$(dirname -- \"$p\"); done\ndf -P -B1 -- \"$p\" | awk 'NR==2 {{print $4}}'",
        quote(path)
    );
    let text = host.run_ok(&Cmd::new(script).as_root())?;
    text.trim().parse().with_context(|| {
        format!(
            "cannot read the free space of {path} on {}: {text:?}",
            host.label()
        )
    })
}

/// Bytes used by a directory tree; in a datadir, ha-setup's own directories (an incoming
/// copy, replaced data) and a filesystem's lost+found do not count.
pub fn used_bytes(host: &mut dyn Host, path: &str) -> anyhow::Result<u64> {
    used_bytes_but(host, path, &[])
}

/// What a backup of the server copies: its datadir without the binary and relay logs that
/// may live there (mariadb-backup copies neither; a week of binary logs can be far larger
/// than the data).
pub fn backup_bytes(host: &mut dyn Host, server: &Server) -> anyhow::Result<u64> {
    let mut logs = vec!["*-relay-bin.*".to_owned()];
    if let Some(base) = &server.log_bin_basename {
        let name = base.rsplit('/').next().unwrap_or(base);
        logs.push(format!("{name}.*"));
    }
    used_bytes_but(host, &server.datadir, &logs)
}

fn used_bytes_but(host: &mut dyn Host, path: &str, also: &[String]) -> anyhow::Result<u64> {
    let also: String = also
        .iter()
        .map(|pattern| format!(" --exclude={}", quote(pattern)))
        .collect();
    let text = host.run_ok(
        &Cmd::new(format!(
            "du -s -B1 --exclude={} --exclude={} --exclude=lost+found{also} -- {} | cut -f1",
            super::layout::INCOMING_NAME,
            super::layout::MOVED_ASIDE_NAME,
            quote(path)
        ))
        .as_root(),
    )?;
    text.trim().parse().with_context(|| {
        format!(
            "cannot read the size of {path} on {}: {text:?}",
            host.label()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_server_and_binary() {
        assert_eq!(
            Version::parse("10.11.6-MariaDB-0+deb12u1"),
            Some(Version(10, 11, 6))
        );
        assert_eq!(
            Version::parse(
                "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64"
            ),
            Some(Version(10, 11, 19))
        );
        assert_eq!(Version::parse("8.0.36"), Some(Version(8, 0, 36)));
        assert_eq!(Version::parse("none"), None);
        assert!(Version(10, 11, 6) < Version(11, 4, 2));
    }

    #[test]
    fn survey_of_a_host() {
        let installed = parse_survey(
            "server=mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)\n\
             backup=/usr/bin/mariadb-backup\nsystemd=\nrunning=yes\n",
        );
        assert_eq!(installed.server, Some(Version(10, 11, 19)));
        assert_eq!(
            installed.backup_tool.as_deref(),
            Some("/usr/bin/mariadb-backup")
        );
        assert!(!installed.systemd && installed.running);
        let bare = parse_survey("server=\nbackup=\nsystemd=yes\nrunning=\n");
        assert_eq!(bare.server, None);
        assert_eq!(bare.backup_tool, None);
    }

    #[test]
    fn where_mariadb_lives_on_a_host() {
        let found = HostFacts::parse(
            "config_dir=/etc/mysql/mariadb.conf.d/\nconfig_dir_from=/etc/mysql/my.cnf\n\
             service=mariadb\nservice_from=/etc/init.d/mariadb\nsystemd=no\n\
             member=yes\nseeded=no\ndatadir_configured=/srv/mysql/\n",
        );
        assert_eq!(found.config_dir, "/etc/mysql/mariadb.conf.d");
        assert_eq!(found.config_dir_from, "/etc/mysql/my.cnf");
        assert_eq!(found.service, "mariadb");
        assert!(!found.systemd);
        assert_eq!(found.datadir_configured, "/srv/mysql");
        let nothing = HostFacts::parse("config_dir=\nservice=\nsystemd=yes\n");
        assert!(nothing.config_dir.is_empty() && nothing.service.is_empty() && nothing.systemd);
    }

    #[test]
    fn server_row() {
        let row: Vec<Option<String>> = [
            Some("10.11.19-MariaDB-0+deb12u1"),
            Some("1"),
            Some("0"),
            None,
            Some("MIXED"),
            Some("0"),
            Some("0"),
            Some("/var/lib/mysql/"),
            Some("3306"),
            Some("127.0.0.1"),
            Some(""),
            Some(""),
            Some(""),
            Some("DISABLED"),
        ]
        .into_iter()
        .map(|v| v.map(str::to_owned))
        .collect();
        let server = parse_server(&row).unwrap();
        assert_eq!(server.datadir, "/var/lib/mysql");
        assert!(!server.log_bin && !server.have_ssl);
        assert_eq!(server.log_bin_basename, None);
        assert_eq!(server.port, 3306);
    }

    #[test]
    fn replica_row() {
        let text = "Slave_IO_State\tMaster_Host\tMaster_User\tMaster_Port\tSlave_IO_Running\tSlave_SQL_Running\tLast_IO_Error\tLast_SQL_Error\tSeconds_Behind_Master\tUsing_Gtid\tGtid_IO_Pos\tMaster_SSL_Allowed\n\
            Waiting for master to send event\t198.51.100.11\tha_repl\t3306\tYes\tYes\t\t\t0\tSlave_Pos\t0-1-7\tYes\n";
        let replica = parse_replica(&client::parse_named(text)[0]);
        assert!(replica.io_ok() && replica.sql_ok());
        assert_eq!(replica.seconds_behind, Some(0));
        assert_eq!(replica.last_error(), None);
        assert!(replica.master_ssl);
        let broken = "Slave_IO_Running\tSlave_SQL_Running\tLast_IO_Error\tLast_SQL_Error\tSeconds_Behind_Master\n\
            Connecting\tYes\terror connecting to master\t\tNULL\n";
        let replica = parse_replica(&client::parse_named(broken)[0]);
        assert!(!replica.io_ok());
        assert_eq!(replica.seconds_behind, None);
        assert_eq!(
            replica.last_error().as_deref(),
            Some("error connecting to master")
        );
    }

    #[test]
    fn server_and_replica_from_one_round_trip() {
        let server = "@@version\t@@server_id\t@@log_bin\t@@log_bin_basename\t@@binlog_format\t@@log_slave_updates\t@@read_only\t@@datadir\t@@port\tIFNULL(@@bind_address, '')\t@@gtid_binlog_pos\t@@gtid_slave_pos\t@@gtid_current_pos\t@@have_ssl\n\
            10.11.6-MariaDB-0+deb12u1-log\t2\t1\t/var/lib/mysql/mysql-bin\tROW\t1\t1\t/var/lib/mysql/\t3306\t127.0.0.1,198.51.100.12\t\t0-1-7\t0-1-7\tYES\n";
        let (alone, none) = parse_state(server).unwrap();
        assert_eq!((alone.server_id, none), (2, None));
        let replica = "Slave_IO_Running\tSlave_SQL_Running\tMaster_Host\tMaster_Port\n\
            Yes\tYes\t198.51.100.11\t3306\n";
        let (server, replica) = parse_state(&format!("{server}{replica}")).unwrap();
        assert!(server.read_only && server.have_ssl);
        assert_eq!(server.gtid_current_pos, "0-1-7");
        let replica = replica.expect("the replica connection");
        assert!(replica.io_ok() && replica.sql_ok());
        assert_eq!(replica.master_host, "198.51.100.11");
        assert!(parse_state("").is_err());
    }
}
