//! Reading `ha-setup verify --format json` in the lab tests of every engine and topology.

use std::process::{Child, Stdio};

use serde_json::Value;

use super::lab::{Host, Lab};

/// `verify --format json` with its own state directory: the exit code, the report and
/// what it printed on stderr.
pub fn verify_json(lab: &Lab, state: &str, config: &str) -> (Option<i32>, Value, String) {
    let run = lab.ha_setup_with(
        &[("HA_SETUP_STATE_DIR", state)],
        &["verify", "-c", config, "--format", "json"],
    );
    let report = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|err| panic!("verify --format json printed no JSON ({err}): {run:?}"));
    (run.code, report, run.stderr)
}

/// The report's entry for `table` on the node `node`.
pub fn table<'a>(report: &'a Value, node: &str, table: &str) -> &'a Value {
    report["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["name"] == node))
        .and_then(|n| n["tables"].as_array())
        .and_then(|tables| tables.iter().find(|t| t["table"] == table))
        .unwrap_or_else(|| panic!("no {table} on {node} in {report:#}"))
}

/// The table was not compared on `node`, and the first reason given says `why`.
#[track_caller]
pub fn not_compared_because(report: &Value, node: &str, name: &str, why: &str) {
    let found = table(report, node, name);
    assert_eq!(found["result"], "not_compared", "{found}");
    assert!(
        found["not_compared"][0]["why"]
            .as_str()
            .is_some_and(|said| said.contains(why)),
        "{found}"
    );
}

/// Whether one of the table's differing ranges holds the single-column key `key`.
pub fn range_holds(table: &Value, key: i64) -> bool {
    let bound = |v: &Value| {
        v.as_array()
            .and_then(|a| a[0].as_str()?.parse::<i64>().ok())
    };
    table["differing"].as_array().is_some_and(|ranges| {
        ranges.iter().any(|r| {
            bound(&r["lower"]).is_none_or(|lower| lower < key)
                && bound(&r["upper"]).is_none_or(|upper| key <= upper)
        })
    })
}

/// Single-row updates of app.items (`id`, `v INT`) on one host, about fifty a second,
/// until [`Updates::stop`] or a minute at most: `v = v + 1` on ids `offset`, `offset + 2`,
/// … up to 2 × `span`, spread over the table. Two hosts with offsets 1 and 2 never write
/// the same row, but write the same chunks.
pub struct Updates {
    host: Host,
    child: Child,
}

impl Updates {
    pub fn start(lab: &Lab, host: Host, offset: u32, span: u32) -> Updates {
        let script = format!(
            "rm -f /run/ha-lab-updates.stop; end=$(( $(date +%s) + 60 )); i=0; \
             while [ ! -e /run/ha-lab-updates.stop ] && [ \"$(date +%s)\" -lt \"$end\" ]; do \
               i=$((i + 1)); \
               echo \"UPDATE app.items SET v = v + 1 WHERE id = $(( (i * 37) % {span} * 2 + {offset} ));\"; \
               sleep 0.02; \
             done | mariadb"
        );
        let child = lab
            .command()
            .args(["exec", host.name(), "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the updates start");
        Updates { host, child }
    }

    /// Stops the updates; each must have succeeded.
    pub fn stop(mut self, lab: &Lab) {
        lab.exec_ok(self.host, "touch /run/ha-lab-updates.stop");
        let status = self.child.wait().expect("the updates end");
        assert!(
            status.success(),
            "the updates on {:?} failed: {status}",
            self.host
        );
    }
}

/// The sum of app.items.v on `host`: it grows with every update.
pub fn updated(lab: &Lab, host: Host) -> u64 {
    lab.sql_ok(host, "SELECT SUM(v) FROM app.items")
        .parse()
        .expect("a number")
}
