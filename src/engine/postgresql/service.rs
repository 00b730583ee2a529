//! Starting, stopping and promoting a cluster the way Debian does it (`pg_ctlcluster`,
//! which goes through systemd where it runs), each bounded.

use super::layout::Cluster;
use crate::host::{Cmd, quote};

/// Promotes a server in recovery and waits for it (bounded); an error when it did not
/// happen, so a plan never goes on believing it did.
pub const PROMOTE_SQL: &str = "DO $$ BEGIN IF NOT pg_promote(true, 60) THEN RAISE EXCEPTION 'PostgreSQL did not finish promoting within 60 seconds'; END IF; END $$;";

/// How long a start, stop or restart may take.
const BOUND_SECS: u64 = 120;

fn answers(cluster: &Cluster) -> String {
    format!(
        "(cd / && runuser -u postgres -- psql --cluster {} -X -q -A -t -c 'SELECT 1' >/dev/null 2>&1)",
        quote(&cluster.id())
    )
}

fn wait_answering(cluster: &Cluster, what: &str) -> String {
    format!(
        "end=$(($(date +%s) + {BOUND_SECS}))\n\
         until {answers}; do\n\
         \tif [ \"$(date +%s)\" -ge \"$end\" ]; then\n\
         \t\techo 'PostgreSQL {id} did not answer within {BOUND_SECS} seconds of {what}; see {log}' >&2\n\
         \t\texit 1\n\
         \tfi\n\
         \tsleep 0.2\n\
         done",
        answers = answers(cluster),
        id = cluster.id(),
        log = if cluster.log.is_empty() {
            "its log in /var/log/postgresql"
        } else {
            &cluster.log
        }
    )
}

/// Restarts the cluster and waits until it answers.
pub fn restart(cluster: &Cluster) -> Cmd {
    Cmd::new(format!(
        "timeout {BOUND_SECS} {} </dev/null\n{}",
        cluster.control_fast("restart"),
        wait_answering(cluster, "restarting")
    ))
    .as_root()
}

/// Restarts the cluster, waits until it answers, then runs the SQL on stdin in it.
pub fn restart_then(cluster: &Cluster) -> Cmd {
    Cmd::new(format!(
        "{}\ncd / && exec runuser -u postgres -- psql --cluster {} -X -q -A -t -v ON_ERROR_STOP=1",
        restart(cluster).script,
        quote(&cluster.id())
    ))
    .as_root()
}

/// Starts the cluster (if it is not running) and waits until it answers.
pub fn start(cluster: &Cluster) -> Cmd {
    Cmd::new(format!(
        "if ! {answers}; then timeout {BOUND_SECS} {start} </dev/null || true; fi\n{wait}",
        answers = answers(cluster),
        start = cluster.control("start"),
        wait = wait_answering(cluster, "starting")
    ))
    .as_root()
}

/// Stops the cluster if it runs (fast: sessions are ended, nothing is lost) and waits
/// until it is down.
pub fn stop(cluster: &Cluster) -> Cmd {
    Cmd::new(format!(
        "if {answers}; then timeout {BOUND_SECS} {stop} </dev/null; fi\n\
         for i in $(seq {BOUND_SECS}); do\n\
         \t{answers} || exit 0\n\
         \tsleep 1\n\
         done\n\
         echo 'PostgreSQL {id} still answers {BOUND_SECS} seconds after stop' >&2\nexit 1",
        answers = answers(cluster),
        stop = cluster.control_fast("stop"),
        id = cluster.id(),
    ))
    .as_root()
}
