//! switchover: a planned role swap that loses no transaction. The primary is fenced, the
//! replica waits until it has applied the primary's last GTID (a timeout unfences the
//! primary again and stops), the replica is promoted and the old primary replicates from
//! it. At every point where it can stop, one node takes writes.

use std::time::Duration;

use anyhow::{Context, bail};

use super::client::{self, literal};
use super::facts;
use super::link::change_master;
use super::primary::password;
use super::roles::{self, other};
use crate::config::Config;
use crate::error::Exit;
use crate::host::Host;
use crate::plan::{Action, Ctx, Input, NodeName, Step, Verdict};
use crate::secret::Secret;

pub struct Switch;

impl Step for Switch {
    fn name(&self) -> &'static str {
        "switch"
    }

    fn purpose(&self) -> &'static str {
        "fence the primary, let the replica catch up, swap the roles"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let a = roles::see(cx, NodeName::Primary);
        let b = roles::see(cx, NodeName::Secondary);
        let Some(replica) = roles::replica(&a, &b) else {
            return Err(Exit::refused(
                "switchover needs a primary and its replica; no node replicates from the other (see `ha-setup status`)",
            )
            .into());
        };
        let primary = other(replica);
        let (p, r) = if a.name == primary {
            (&a, &b)
        } else {
            (&b, &a)
        };
        if !p.writable_primary() {
            return Err(Exit::refused(format!(
                "the {primary} is not a writable primary ({}): switchover swaps a healthy pair; after a loss use `ha-setup recover promote`",
                p.describe()
            ))
            .into());
        }
        let link = r.replica.as_ref().expect("the replica replicates");
        if !(link.io_ok() && link.sql_ok()) {
            return Err(Exit::refused(format!(
                "the {replica}'s replication is not running ({}): fix the link first (`ha-setup status`)",
                link.last_error().unwrap_or_else(|| "stopped".into())
            ))
            .into());
        }
        Ok(Verdict::Todo(vec![Action::Switchover {
            primary,
            replica,
            timeout: Duration::from_secs(30),
        }]))
    }
}

/// Runs the swap; returns lines for the operator.
pub fn switch(
    config: &Config,
    primary_name: NodeName,
    primary: &mut dyn Host,
    replica: &mut dyn Host,
    timeout: Duration,
    secret: &Secret,
) -> anyhow::Result<Vec<String>> {
    let mut report = Vec::new();
    client::execute(primary, &Input::Text("SET GLOBAL read_only = ON;\n".into()))
        .context("fencing the primary")?;
    let position = facts::server(primary)?.gtid_binlog_pos;
    report.push(format!(
        "the {primary_name} is read-only at GTID {position}"
    ));
    let waited = client::row(
        replica,
        &format!(
            "SELECT MASTER_GTID_WAIT({}, {})",
            literal(&position),
            timeout.as_secs()
        ),
    );
    let caught_up =
        matches!(&waited, Ok(row) if row.first().cloned().flatten().as_deref() == Some("0"));
    if !caught_up {
        // Undo: the old primary takes writes again, nothing else changed.
        let undo = client::execute(
            primary,
            &Input::Text("SET GLOBAL read_only = OFF;\n".into()),
        );
        let why = match waited {
            Ok(_) => format!(
                "the replica did not apply {position} within {}s",
                timeout.as_secs()
            ),
            Err(err) => format!("{err:#}"),
        };
        match undo {
            Ok(()) => bail!(
                "switchover aborted: {why}; the {primary_name} takes writes again, nothing was swapped"
            ),
            Err(err) => bail!(
                "switchover aborted: {why}; AND reopening writes on the {primary_name} failed: {err:#}. \
                 Run `ha-setup recover unfence` now"
            ),
        }
    }
    report.push(format!("the replica has applied {position}"));
    client::execute(
        replica,
        &Input::Text("STOP SLAVE;\nRESET SLAVE ALL;\nSET GLOBAL read_only = OFF;\n".into()),
    )
    .context("promoting the replica (the old primary is still fenced: run `ha-setup recover promote` to finish)")?;
    report.push(format!("the {} takes writes", other(primary_name)));
    let port = match config_node(config, other(primary_name)).db_port {
        Some(port) => port,
        None => facts::server(replica)?.port,
    };
    let sql = format!(
        "STOP SLAVE;\nRESET SLAVE ALL;\nSET GLOBAL gtid_slave_pos = {};\n{}\nSTART SLAVE;\n",
        literal(&position),
        change_master(config, other(primary_name), port)
    );
    client::execute(
        primary,
        &Input::WithSecret(sql, Secret::new(client::escape(secret.expose()))),
    )
    .context("making the old primary a replica (the new primary takes writes; finish with `ha-setup recover rejoin`)")?;
    report.push(format!(
        "the {primary_name} replicates from the {}",
        other(primary_name)
    ));
    Ok(report)
}

fn config_node(config: &Config, name: NodeName) -> &crate::config::Node {
    match name {
        NodeName::Primary => &config.primary,
        NodeName::Secondary => &config.secondary,
    }
}

/// The replication password for a switchover, read before anything changes.
pub fn secret(cx: &mut Ctx<'_>) -> anyhow::Result<Secret> {
    Ok(password(cx)?.0)
}

pub struct VerifySwapped;

impl Step for VerifySwapped {
    fn name(&self) -> &'static str {
        "verify-link"
    }

    fn purpose(&self) -> &'static str {
        "the new replica's threads run and a canary arrives"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let a = roles::see(cx, NodeName::Primary);
        let b = roles::see(cx, NodeName::Secondary);
        let Some(replica) = roles::replica(&a, &b) else {
            bail!("no node replicates from the other: see `ha-setup status`");
        };
        // Before the switch (a dry run), today's replica is tomorrow's primary.
        let (from, to) = if cx.predicting() {
            (replica, other(replica))
        } else {
            (other(replica), replica)
        };
        Ok(Verdict::Todo(vec![Action::Canary {
            from,
            to,
            timeout: Duration::from_secs(60),
        }]))
    }
}
