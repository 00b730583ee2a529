//! Reading a Galera node in the same one round trip as any MariaDB node: the server's
//! wsrep state when it answers, and what the host shows when it does not (the position a
//! crashed node saved in grastate.dat, whether mariadbd runs at all: a joiner answers only
//! once its state transfer is done). An arbitrator is read for its garbd.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::super::{client, facts, layout, observe as base};
use crate::config::Config;
use crate::host::{Host, HostExt};
use crate::node::NodeName;
use crate::topology::Observed;

const SCRIPT: &str = concat!(
    include_str!("../scripts/observe.sh"),
    include_str!("scripts/observe.sh")
);

/// ha-setup's record of the cluster on each data node: which node the application writes
/// to (the one whose data the cluster started from, unless the config marks another), so
/// that state transfers keep off it.
pub const RECORD: &str = "/var/lib/ha-setup/galera.json";

/// The marker column of the wsrep query, the last result of the round trip.
const MARKER: &str = "ha_setup_wsrep";

/// Status and settings read from the server, all strings as the server gives them.
const STATUS: &[&str] = &[
    "WSREP_LOCAL_STATE_COMMENT",
    "WSREP_CLUSTER_STATUS",
    "WSREP_CLUSTER_SIZE",
    "WSREP_FLOW_CONTROL_PAUSED",
    "WSREP_LAST_COMMITTED",
    "WSREP_CLUSTER_STATE_UUID",
    "WSREP_LOCAL_STATE_UUID",
    "WSREP_READY",
    "WSREP_CONNECTED",
];
const VARIABLES: &[&str] = &[
    "WSREP_ON",
    "WSREP_CLUSTER_NAME",
    "WSREP_NODE_NAME",
    "WSREP_CLUSTER_ADDRESS",
    "WSREP_SST_DONOR",
    "WSREP_DESYNC",
];

/// Databases that are the server's or ha-setup's own, never the application's.
pub const SYSTEM_SCHEMAS: &[&str] = &[
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    layout::SCHEMA,
];

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SQL of the round trip (read-only): the MariaDB node's reading, then one row with the wsrep
/// status and settings (`name=value`, separated by `|`, which none of the values holds;
/// information_schema, so a server built without
/// wsrep answers too) and the application's databases (`#mysql50#` names are directories
/// such as lost+found, not databases).
pub fn sql() -> String {
    // A node outside the primary component refuses reads unless dirty reads are allowed:
    // this session reads only settings and status, which are the node's own.
    format!(
        "SET SESSION wsrep_dirty_reads = ON;\n{};\nSELECT (SELECT GROUP_CONCAT(CONCAT(LOWER(VARIABLE_NAME), '=', VARIABLE_VALUE) SEPARATOR '|') FROM (\
         SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ({}) UNION ALL \
         SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME IN ({})) AS w) AS {MARKER}, \
         (SELECT GROUP_CONCAT(SCHEMA_NAME ORDER BY SCHEMA_NAME SEPARATOR ',') FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME NOT IN ({}) AND SCHEMA_NAME NOT LIKE '#mysql50#%') AS app_databases",
        facts::state_sql(),
        quoted_list(STATUS),
        quoted_list(VARIABLES),
        quoted_list(SYSTEM_SCHEMAS),
    )
}

/// What the server says of its place in the cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wsrep {
    /// `wsrep_on`: Galera replication is on in this server.
    pub on: bool,
    pub cluster_name: String,
    pub node_name: String,
    pub cluster_address: String,
    pub sst_donor: String,
    pub desync: bool,
    /// `wsrep_local_state_comment`: Synced, Donor/Desynced, Joining, Joined, Initialized…
    pub state: String,
    /// `wsrep_cluster_status`: Primary, non-Primary or Disconnected.
    pub cluster_status: String,
    pub cluster_size: u32,
    /// `wsrep_flow_control_paused`: the fraction of time replication was paused since the
    /// status was last flushed.
    pub flow_control_paused: f64,
    pub last_committed: i64,
    pub cluster_uuid: String,
    pub local_uuid: String,
    pub ready: bool,
    pub connected: bool,
}

impl Wsrep {
    fn parse(text: &str) -> Wsrep {
        let values: HashMap<&str, &str> = text
            .split('|')
            .filter_map(|line| line.split_once('='))
            .collect();
        let get = |key: &str| values.get(key).copied().unwrap_or("").trim().to_owned();
        let flag = |key: &str| matches!(get(key).as_str(), "ON" | "1" | "on");
        Wsrep {
            on: flag("wsrep_on"),
            cluster_name: get("wsrep_cluster_name"),
            node_name: get("wsrep_node_name"),
            cluster_address: get("wsrep_cluster_address"),
            sst_donor: get("wsrep_sst_donor"),
            desync: flag("wsrep_desync"),
            state: get("wsrep_local_state_comment"),
            cluster_status: get("wsrep_cluster_status"),
            cluster_size: get("wsrep_cluster_size").parse().unwrap_or(0),
            flow_control_paused: get("wsrep_flow_control_paused").parse().unwrap_or(0.0),
            last_committed: get("wsrep_last_committed").parse().unwrap_or(-1),
            cluster_uuid: get("wsrep_cluster_state_uuid"),
            local_uuid: get("wsrep_local_state_uuid"),
            ready: flag("wsrep_ready"),
            connected: flag("wsrep_connected"),
        }
    }

    /// Synced in a primary component: a full member that takes writes.
    pub fn synced(&self) -> bool {
        self.on && self.state == "Synced" && self.cluster_status == "Primary"
    }

    /// In the primary component at all (Synced, Donor, Joined…).
    pub fn primary(&self) -> bool {
        self.on && self.cluster_status == "Primary"
    }
}

/// A node's saved state (`grastate.dat`), written when it stops cleanly; after a crash
/// its seqno is -1 and the position must be recovered from InnoDB (`--wsrep-recover`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grastate {
    pub uuid: String,
    pub seqno: i64,
    pub safe_to_bootstrap: bool,
}

/// ha-setup's record of the cluster, kept on every data node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub cluster: String,
    /// The node the application writes to: state transfers keep off it.
    pub write_node: NodeName,
}

/// The Galera engine's reading of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// What any MariaDB node shows (where MariaDB lives, the server's state).
    pub base: base::Reading,
    /// The server's wsrep state, when it answered.
    pub wsrep: Option<Wsrep>,
    /// The application's databases, when the server answered.
    pub app_databases: Vec<String>,
    /// The datadir the server's option files name (or the config's).
    pub datadir: String,
    pub grastate: Option<Grastate>,
    /// A state transfer into this node has begun and not finished.
    pub sst_in_progress: bool,
    /// The Galera library (libgalera_smm.so) on the host, if installed.
    pub provider: Option<String>,
    /// mariadbd runs, whether or not it answers yet.
    pub mariadbd_running: bool,
    pub garbd_running: bool,
    /// The cluster name and addresses in /etc/default/garb.
    pub garb: Option<(String, String)>,
    pub record: Option<Record>,
}

impl Reading {
    /// Synced in a primary component.
    pub fn synced(&self) -> bool {
        self.wsrep.as_ref().is_some_and(Wsrep::synced)
    }
}

pub fn observe(host: &mut dyn Host, name: &NodeName, config: &Config) -> Observed {
    let label = host.label().to_owned();
    let node = config.node(name);
    let datadir = node
        .datadir
        .as_ref()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cmd = base::look_around(SCRIPT, node, &sql(), &[&datadir, RECORD]);
    let output = match host.run(&cmd) {
        Ok(output) if output.success() => output.stdout_text(),
        Ok(output) => {
            return Observed {
                problem: Some(format!(
                    "cannot look around as root: {}",
                    output.stderr.trim()
                )),
                ..Observed::reached(name, &label)
            };
        }
        Err(err) => return Observed::unreachable(name, &label, &err.to_string()),
    };
    parse(name, &label, &output, node.is_arbitrator())
}

pub fn parse(name: &NodeName, label: &str, output: &str, arbitrator: bool) -> Observed {
    let (mariadb, galera) = output.rsplit_once("--- galera\n").unwrap_or((output, ""));
    // The wsrep row is the last result of the round trip: taken off before the MariaDB
    // reading parses the rest.
    let mut lines: Vec<&str> = mariadb.lines().collect();
    let mut wsrep_row = None;
    if lines.len() >= 2 && lines[lines.len() - 2].starts_with(MARKER) {
        wsrep_row = lines.pop();
        lines.pop();
    }
    let mut rest = lines.join("\n");
    rest.push('\n');
    let mut observed = base::parse(name, label, &rest);
    let values: HashMap<&str, &str> = galera
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    let get = |key: &str| values.get(key).copied().unwrap_or("").trim().to_owned();
    let (wsrep, app_databases) = match (wsrep_row, observed.db.is_some()) {
        (Some(row), true) => {
            let fields = client::parse_rows(row).concat();
            let field = |i: usize| fields.get(i).cloned().flatten().unwrap_or_default();
            let databases = field(1)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect();
            (Some(Wsrep::parse(&field(0))), databases)
        }
        _ => (None, Vec::new()),
    };
    let grastate = (!get("grastate_uuid").is_empty()).then(|| Grastate {
        uuid: get("grastate_uuid"),
        seqno: get("grastate_seqno").parse().unwrap_or(-1),
        safe_to_bootstrap: get("grastate_safe_to_bootstrap") == "1",
    });
    let base_reading = observed
        .detail::<base::Reading>()
        .cloned()
        .unwrap_or_else(|| base::Reading {
            host: facts::HostFacts::default(),
            state: None,
            stuck: None,
        });
    let reading = Reading {
        base: base_reading,
        wsrep,
        app_databases,
        datadir: get("datadir"),
        grastate,
        sst_in_progress: get("sst_in_progress") == "yes",
        provider: Some(get("provider")).filter(|p| !p.is_empty()),
        mariadbd_running: !get("mariadbd_pid").is_empty(),
        garbd_running: !get("garbd_pid").is_empty(),
        garb: values
            .contains_key("garb_group")
            .then(|| (get("garb_group"), get("garb_nodes"))),
        record: values
            .get("record")
            .and_then(|text| serde_json::from_str(text).ok()),
    };
    if arbitrator {
        // No database: what matters is garbd.
        observed.db = None;
        observed.member = reading.garb.is_some();
        observed.problem = Some(if reading.garbd_running {
            "an arbitrator: garbd runs".to_owned()
        } else {
            "an arbitrator: garbd is not running".to_owned()
        });
    } else if let (Some(db), Some(wsrep)) = (observed.db.as_mut(), reading.wsrep.as_ref())
        && wsrep.on
    {
        db.position = format!("{}:{}", wsrep.local_uuid, wsrep.last_committed);
        // A node outside the primary component refuses the application's queries.
        db.writable = db.writable && wsrep.ready;
    } else if observed.db.is_none() && reading.mariadbd_running {
        observed.problem = Some(if reading.sst_in_progress {
            "mariadbd runs and receives a state transfer (SST)".to_owned()
        } else if observed
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("ERROR 1047"))
        {
            "outside the primary component: it refuses queries (WSREP has not yet prepared node for application use)"
                .to_owned()
        } else if false {
            "mariadbd runs and receives a state transfer (SST)".to_owned()
        } else {
            format!(
                "mariadbd runs but does not answer ({})",
                observed.problem.as_deref().unwrap_or("starting, or stuck")
            )
        });
    }
    observed.detail = Some(Arc::new(reading));
    observed
}

/// The Galera reading of a node, when it was reached.
pub fn reading(observed: &Observed) -> Option<&Reading> {
    observed.detail::<Reading>()
}

/// The node's wsrep state, when its server answered.
pub fn wsrep(observed: &Observed) -> Option<&Wsrep> {
    reading(observed)?.wsrep.as_ref()
}

/// A node's last committed position in the cluster's history: (history UUID, seqno), from
/// the running server, else from grastate.dat when it holds one (a clean stop; a crash
/// leaves -1 there, and the position is in InnoDB: `recover bootstrap` reads it).
pub fn position(observed: &Observed) -> Option<(String, i64)> {
    let reading = reading(observed)?;
    if let Some(wsrep) = reading.wsrep.as_ref().filter(|w| w.on) {
        return Some((wsrep.local_uuid.clone(), wsrep.last_committed));
    }
    reading
        .grastate
        .as_ref()
        .filter(|g| g.seqno >= 0)
        .map(|g| (g.uuid.clone(), g.seqno))
}

/// Orders two nodes by their position in one history; None when their histories differ or
/// either position is unknown.
pub fn compare(a: &Observed, b: &Observed) -> Option<Ordering> {
    let (ua, sa) = position(a)?;
    let (ub, sb) = position(b)?;
    (ua == ub).then(|| sa.cmp(&sb))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "config_dir=/etc/mysql/mariadb.conf.d\nconfig_dir_from=/etc/mysql/my.cnf\n\
        service=mariadb\nservice_from=/etc/init.d/mariadb\nsystemd=no\nmember=yes\nseeded=no\n";

    const SERVER: &str = "@@version\t@@server_id\t@@log_bin\t@@log_bin_basename\t@@binlog_format\t@@log_slave_updates\t@@read_only\t@@datadir\t@@port\tIFNULL(@@bind_address, '')\t@@gtid_binlog_pos\t@@gtid_slave_pos\t@@gtid_current_pos\t@@have_ssl\n\
        10.11.19-MariaDB-0+deb12u1\t1\t0\tNULL\tROW\t0\t0\t/var/lib/mysql/\t3306\t127.0.0.1,198.51.100.11\t\t\t\tYES\n";

    #[test]
    fn a_synced_member_read_in_one_round_trip() {
        let output = format!(
            "{HEAD}--- answered\n{SERVER}{MARKER}\tapp_databases\n\
             wsrep_on=ON|wsrep_cluster_name=ha-setup|wsrep_local_state_comment=Synced|wsrep_cluster_status=Primary|\
             wsrep_cluster_size=3|wsrep_flow_control_paused=0.012|wsrep_last_committed=42|\
             wsrep_cluster_state_uuid=2db78333-eba5-11f1-9263-b349f342e4e6|wsrep_local_state_uuid=2db78333-eba5-11f1-9263-b349f342e4e6|\
             wsrep_ready=ON|wsrep_connected=ON\tapp,shop\n\
             --- galera\ndatadir=/var/lib/mysql\nprovider=/usr/lib/galera/libgalera_smm.so\nmariadbd_pid=12\ngarbd_pid=\n\
             record={{\"cluster\":\"ha-setup\",\"write_node\":\"db1\"}}\n"
        );
        let seen = parse(&NodeName::new("db1"), "db1 (h)", &output, false);
        let db = seen.db.as_ref().expect("answered");
        assert!(db.writable);
        assert_eq!(db.position, "2db78333-eba5-11f1-9263-b349f342e4e6:42");
        assert!(db.upstream.is_none());
        let reading = reading(&seen).unwrap();
        let wsrep = reading.wsrep.as_ref().unwrap();
        assert!(wsrep.synced());
        assert_eq!(wsrep.cluster_size, 3);
        assert!((wsrep.flow_control_paused - 0.012).abs() < 1e-9);
        assert_eq!(reading.app_databases, ["app", "shop"]);
        assert_eq!(
            reading.record.as_ref().map(|r| r.write_node.as_str()),
            Some("db1")
        );
        // The MariaDB reading is there for everything that reads any MariaDB node.
        assert_eq!(
            base::state(&seen).map(|s| s.server.datadir.as_str()),
            Some("/var/lib/mysql")
        );
        assert_eq!(
            base::host_facts(&seen).map(|h| h.service.as_str()),
            Some("mariadb")
        );
    }

    #[test]
    fn a_crashed_node_shows_its_saved_state() {
        let output = format!(
            "{HEAD}datadir_configured=/var/lib/mysql/\n--- failed\nERROR 2002 (HY000): Can't connect to local server through socket\n\
             --- galera\ndatadir=/var/lib/mysql\ngrastate_uuid=2db78333-eba5-11f1-9263-b349f342e4e6\ngrastate_seqno=-1\n\
             grastate_safe_to_bootstrap=0\nmariadbd_pid=\ngarbd_pid=\n"
        );
        let seen = parse(&NodeName::new("db2"), "db2 (h)", &output, false);
        assert!(!seen.answers());
        assert_eq!(seen.problem.as_deref(), Some("MariaDB is not running"));
        let reading = reading(&seen).unwrap();
        let state = reading.grastate.as_ref().unwrap();
        assert_eq!((state.seqno, state.safe_to_bootstrap), (-1, false));
        assert_eq!(position(&seen), None);
        let joining = output.replace("mariadbd_pid=\n", "mariadbd_pid=7\nsst_in_progress=yes\n");
        let seen = parse(&NodeName::new("db2"), "db2 (h)", &joining, false);
        assert!(seen.problem.unwrap().contains("state transfer"));
    }

    #[test]
    fn positions_order_within_one_history_only() {
        let node = |uuid: &str, seqno: i64| {
            let output = format!(
                "{HEAD}--- failed\nCan't connect to local server\n--- galera\ngrastate_uuid={uuid}\ngrastate_seqno={seqno}\n"
            );
            parse(&NodeName::new("n"), "n", &output, false)
        };
        assert_eq!(
            compare(&node("a", 9), &node("a", 7)),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(&node("a", 9), &node("b", 7)), None);
        assert_eq!(compare(&node("a", -1), &node("a", 7)), None);
    }

    #[test]
    fn an_arbitrator_is_read_for_its_garbd() {
        let output = format!(
            "{HEAD}--- failed\nCan't connect to local server\n--- galera\ngarbd_pid=31\ngarb_group=ha-setup\ngarb_nodes=198.51.100.11:4567 198.51.100.12:4567\n"
        );
        let seen = parse(&NodeName::new("witness"), "witness (h)", &output, true);
        assert!(seen.db.is_none() && seen.member);
        let reading = reading(&seen).unwrap();
        assert!(reading.garbd_running);
        assert_eq!(reading.garb.as_ref().unwrap().0, "ha-setup");
    }
}
