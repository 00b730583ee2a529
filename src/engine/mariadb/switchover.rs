//! switchover: a planned role swap that loses no transaction. The primary is fenced, the
//! chosen replica waits until it has applied the primary's last GTID (any failure before
//! it is promoted unfences the primary again and stops), the replica is promoted, and the
//! old primary and every other replica replicate from it. At every point where it can
//! stop, one node takes writes.

use std::time::Duration;

use anyhow::{Context, bail};

use super::client::{self, literal};
use super::facts;
use super::link::{change_master, source_port};
use super::primary::password;
use crate::error::Exit;
use crate::node::NodeName;
use crate::plan::{Action, Call, Ctx, Input, Step, Verdict};
use crate::secret::Secret;

/// How long the replica may take to apply the primary's last transaction while the
/// primary is fenced: the application's writes wait that long at most.
const CATCH_UP: Duration = Duration::from_secs(30);

pub struct Switch;

impl Step for Switch {
    fn name(&self) -> &'static str {
        "switch"
    }

    fn purpose(&self) -> &'static str {
        "fence the primary, let the replica catch up, swap the roles"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let new = cx.roles.source.clone();
        let old = cx
            .roles
            .old
            .clone()
            .expect("a switchover has a primary to leave");
        let others = cx.roles.targets.clone();
        let topology = cx.topology();
        let (to, from) = (topology.get(&new), topology.get(&old));
        if to.writable_primary() && topology.source_of(&old) == Some(&new) {
            return Ok(Verdict::Done(format!(
                "{new} is the primary and {old} its replica already"
            )));
        }
        if !from.writable_primary() {
            return Err(Exit::refused(format!(
                "{old} is not a writable primary ({}): switchover swaps a healthy primary and replica; after a loss use `ha-setup recover promote`",
                from.describe()
            ))
            .into());
        }
        let up = to.upstream().filter(|up| up.node.as_ref() == Some(&old));
        let Some(up) = up else {
            return Err(Exit::refused(format!(
                "{new} does not replicate from {old} ({}); see `ha-setup status`",
                to.describe()
            ))
            .into());
        };
        if up.receiving != crate::topology::LinkState::Running
            || up.applying != crate::topology::LinkState::Running
        {
            return Err(Exit::refused(format!(
                "{new}'s replication is not running ({}): fix the link first (`ha-setup status`)",
                up.error.clone().unwrap_or_else(|| "stopped".into())
            ))
            .into());
        }
        let mut on = vec![old.clone(), new.clone()];
        on.extend(others.iter().cloned());
        Ok(Verdict::Todo(vec![Action::Call {
            on,
            why: format!(
                "fence {old} (read_only=ON), wait up to {}s until {new} has applied its last transaction \
                 (else reopen {old} and stop), promote {new}, make {old}{} its replica{}",
                CATCH_UP.as_secs(),
                others.iter().map(|n| format!(", {n}")).collect::<String>(),
                if others.is_empty() { "" } else { "s" }
            ),
            call: Call::new(move |cx| switch(cx, &old, &new, &others)),
        }]))
    }
}

/// Runs the swap; returns lines for the operator.
fn switch(
    cx: &mut Ctx<'_>,
    old: &NodeName,
    new: &NodeName,
    others: &[NodeName],
) -> anyhow::Result<Vec<String>> {
    // Everything that could fail without changing anything comes first.
    let secret = Secret::new(client::escape(password(cx)?.0.expose()));
    let port = source_port(cx, new)?;
    let mut report = Vec::new();
    client::execute(
        cx.host(old),
        &Input::Text("SET GLOBAL read_only = ON;\n".into()),
    )
    .with_context(|| format!("fencing {old}"))?;
    let position = match caught_up(cx, old, new) {
        Ok(position) => position,
        Err(err) => {
            // Undo: the old primary takes writes again, nothing else changed.
            let undo = client::execute(
                cx.host(old),
                &Input::Text("SET GLOBAL read_only = OFF;\n".into()),
            );
            match undo {
                Ok(()) => bail!(
                    "switchover aborted: {err:#}; {old} takes writes again, nothing was swapped"
                ),
                Err(undo) => bail!(
                    "switchover aborted: {err:#}; AND reopening writes on {old} failed: {undo:#}. \
                     {old} is fenced (read-only) and nothing was swapped: run `ha-setup recover unfence` now"
                ),
            }
        }
    };
    report.push(format!("{old} is read-only at GTID {position}"));
    report.push(format!("{new} has applied {position}"));
    client::execute(
        cx.host(new),
        &Input::Text("STOP SLAVE;\nRESET SLAVE ALL;\nSET GLOBAL read_only = OFF;\n".into()),
    )
    .with_context(|| {
        format!("promoting {new} ({old} is still fenced: run `ha-setup recover promote` to finish)")
    })?;
    report.push(format!("{new} takes writes"));
    let sql = format!(
        "STOP SLAVE;\nRESET SLAVE ALL;\nSET GLOBAL gtid_slave_pos = {};\n{}\nSTART SLAVE;\n",
        literal(&position),
        change_master(cx.config, new, port)
    );
    client::execute(cx.host(old), &Input::WithSecret(sql, secret.clone())).with_context(|| {
        format!(
            "making {old} a replica ({new} takes writes; finish with `ha-setup recover rejoin`)"
        )
    })?;
    report.push(format!("{old} replicates from {new}"));
    for other in others {
        let sql = format!(
            "STOP SLAVE;\n{}\nSTART SLAVE;\n",
            change_master(cx.config, new, port)
        );
        client::execute(cx.host(other), &Input::WithSecret(sql, secret.clone())).with_context(
            || {
                format!(
                    "pointing {other} at {new} ({new} takes writes; finish with `ha-setup init`, which repairs its replicas)"
                )
            },
        )?;
        report.push(format!("{other} replicates from {new}"));
    }
    Ok(report)
}

/// The fenced primary's last position, once the new primary has applied it.
fn caught_up(cx: &mut Ctx<'_>, old: &NodeName, new: &NodeName) -> anyhow::Result<String> {
    let position = facts::server(cx.host(old))?.gtid_binlog_pos;
    let waited = client::row(
        cx.host(new),
        &format!(
            "SELECT MASTER_GTID_WAIT({}, {})",
            literal(&position),
            CATCH_UP.as_secs()
        ),
    )?;
    if waited.first().cloned().flatten().as_deref() != Some("0") {
        bail!(
            "{new} did not apply {position} within {}s",
            CATCH_UP.as_secs()
        );
    }
    Ok(position)
}
