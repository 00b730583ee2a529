//! switchover: a planned role swap that loses no transaction. The primary is fenced
//! within a bound (`[replication] fence_timeout_secs`: when running writes hold it up
//! longer, it stops with nothing changed and names them), the chosen replica waits until
//! it has applied the primary's last GTID, the replica is promoted (bounded too), and the
//! old primary and every other replica replicate from it. Any failure after the fence and
//! before the promotion undoes the fence (and a failed promotion relinks the replica);
//! after the promotion the old primary stays fenced. At every point where it can stop,
//! at most one node takes writes, and the error says which.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use super::client::{self, literal};
use super::facts;
use super::link::{change_master, source_port};
use super::primary::password;
use super::recover::{Fenced, fence, promotion};
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
                "fence {old} (read_only=ON, waiting at most {}s for running writes, else stop with nothing changed), \
                 wait up to {}s until {new} has applied its last transaction (else reopen {old} and stop), \
                 promote {new} (else undo both), make {old}{} its replica{}",
                cx.config.replication.fence_timeout_secs,
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
    let secs = cx.config.replication.fence_timeout_secs;
    // Everything that could fail without changing anything comes first.
    let secret = Secret::new(client::escape(password(cx)?.0.expose()));
    let port = source_port(cx, new)?;
    let old_port = source_port(cx, old)?;
    let mut report = Vec::new();
    match fence(cx.host(old), secs) {
        Ok(Fenced::Yes) => {}
        Ok(Fenced::TimedOut(why)) => {
            bail!("switchover stopped: {why}\n{old} takes writes as before; nothing was swapped.")
        }
        // Whether the fence took is unknown: undo it to be sure.
        Err(err) => return Err(reopen(cx, old, err)),
    }
    let position = match caught_up(cx, old, new) {
        Ok(position) => position,
        Err(err) => return Err(reopen(cx, old, err)),
    };
    report.push(format!("{old} is read-only at GTID {position}"));
    report.push(format!("{new} has applied {position}"));
    if let Err(err) = client::execute(cx.host(new), &Input::Text(promotion(secs))) {
        unpromote(cx, old, new, old_port, &secret, err)?;
        report.push(format!(
            "promoting {new} reported an error, but it takes writes: going on"
        ));
    }
    report.push(format!("{new} takes writes"));
    // From here on the new primary takes writes: the old one stays fenced whatever fails.
    let sql = format!(
        "STOP SLAVE;\nRESET SLAVE ALL;\nSET GLOBAL gtid_slave_pos = {};\n{}\nSTART SLAVE;\n",
        literal(&position),
        change_master(cx.config, new, port)
    );
    client::execute(cx.host(old), &Input::WithSecret(sql, secret.clone())).with_context(|| {
        format!(
            "making {old} a replica ({new} takes writes; {old} stays fenced; finish with `ha-setup recover rejoin`)"
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

/// After an error between the fence and the promotion: the old primary takes writes
/// again, and the error says so (or how it was left).
fn reopen(cx: &mut Ctx<'_>, old: &NodeName, err: anyhow::Error) -> anyhow::Error {
    match client::execute(cx.host(old), &Input::Text(UNFENCE.into())) {
        Ok(()) => anyhow!(
            "switchover stopped: {err:#}\nThe fence was undone: {old} takes writes again; nothing was swapped."
        ),
        Err(undo) => anyhow!(
            "switchover stopped: {err:#}\nAND undoing the fence failed: {undo:#}\n\
             {old} is fenced (read-only) and nothing was swapped: reopen it with `ha-setup recover unfence`."
        ),
    }
}

const UNFENCE: &str = "SET GLOBAL read_only = OFF;\n";

/// After the promotion failed: if the new primary took writes after all, go on (Ok);
/// if it is read-only, it replicates from the old primary again and the old one takes
/// writes again; if it cannot be read, the old one stays fenced (two primaries are
/// worse than none). The error says which.
fn unpromote(
    cx: &mut Ctx<'_>,
    old: &NodeName,
    new: &NodeName,
    old_port: u16,
    secret: &Secret,
    err: anyhow::Error,
) -> anyhow::Result<()> {
    let stopped = format!("switchover stopped while promoting {new}: {err:#}");
    let seen = facts::server(cx.host(new)).and_then(|server| {
        let replica = facts::replica(cx.host(new))?;
        Ok((server, replica))
    });
    let (server, replica) = match seen {
        Ok(seen) => seen,
        Err(read) => bail!(
            "{stopped}\n{old} stays fenced (read-only): whether {new} takes writes cannot be read ({read:#}), \
             and reopening {old} could make two primaries. Look at {new}: if it takes writes, \
             `ha-setup recover rejoin` makes {old} its replica; if it is read-only, reopen {old} \
             (SET GLOBAL read_only = OFF there), then `ha-setup recover rejoin` makes {new} its replica again."
        ),
    };
    if !server.read_only {
        return Ok(());
    }
    let address = cx.config.node(old).replication_address().to_owned();
    let linked = replica.is_some_and(|r| r.master_host == address && r.master_port == old_port);
    let relink = if linked {
        "START SLAVE;\n".to_owned()
    } else {
        // RESET SLAVE ALL keeps gtid_slave_pos: it carries on from what it applied.
        format!(
            "STOP SLAVE;\n{}\nSTART SLAVE;\n",
            change_master(cx.config, old, old_port)
        )
    };
    let relinked = client::execute(cx.host(new), &Input::WithSecret(relink, secret.clone()));
    let reopened = client::execute(cx.host(old), &Input::Text(UNFENCE.into()));
    match (relinked, reopened) {
        (Ok(()), Ok(())) => bail!(
            "{stopped}\nUndone: {new} is read-only and replicates from {old} again, and {old} takes writes again; nothing was swapped."
        ),
        (Err(relink), Ok(())) => bail!(
            "{stopped}\nThe fence was undone: {old} takes writes again. {new} is read-only but does not replicate \
             ({relink:#}): make it {old}'s replica again with `ha-setup recover rejoin`."
        ),
        (_, Err(reopen)) => bail!(
            "{stopped}\n{new} is read-only, AND reopening {old} failed: {reopen:#}\n\
             No node takes writes: reopen {old} with `ha-setup recover unfence`."
        ),
    }
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
