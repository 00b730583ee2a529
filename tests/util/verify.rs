//! Reading `ha-setup verify --format json` in the lab tests of every engine and topology.

use serde_json::Value;

use super::lab::Lab;

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
