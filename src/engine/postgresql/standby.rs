//! configure-standbys, start: each standby gets its settings (where its primary is, by
//! its slot, over TLS checked against the primary's CA, the password from a file), the
//! same access lines and certificate as the primary (any node may become primary), the
//! fence file, and is started; one already running reloads its settings.

use super::client;
use super::layout::{self, Settings, Upstream};
use super::observe;
use super::primary::{certificates, fence_file, hba, pgpass, settings_file};
use super::service;
use crate::host::FileMode;
use crate::node::NodeName;
use crate::password::{PASSWORD_FILE, read_optional};
use crate::plan::{Action, Ctx, Input, SECRET_MARK, Step, Verdict};

/// Run in the same session right after a promotion, which removes `standby.signal`: the
/// server writes it again in its own data directory, so a restart still comes up fenced.
pub const FENCE_AGAIN_SQL: &str = "DO $$ BEGIN EXECUTE format('COPY (SELECT 1 WHERE false) TO %L', current_setting('data_directory') || '/standby.signal'); END $$;";

pub struct ConfigureStandbys;

impl Step for ConfigureStandbys {
    fn name(&self) -> &'static str {
        "configure-standbys"
    }

    fn purpose(&self) -> &'static str {
        "each standby's settings: its primary, its slot, TLS, the password file"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let source = cx.roles.source.clone();
        let primary_port = cx
            .node(&source)
            .db_port
            .unwrap_or(layout::cluster(cx, &source)?.port);
        let (secret, _) = crate::password::password(cx)?;
        let mut actions = Vec::new();
        for target in cx.roles.targets.clone() {
            actions.extend(configure(cx, &source, &target, primary_port, &secret)?);
        }
        let mut members = vec![source.clone()];
        members.extend(cx.roles.targets.iter().cloned());
        if cx.config.replication.tls
            && (!actions.is_empty() || !crate::tls::cas_shared(cx, &members, layout::DIR)?)
        {
            actions.push(crate::tls::share_cas(members, layout::DIR));
        }
        Ok(if actions.is_empty() {
            Verdict::Done("every standby has its settings".into())
        } else {
            Verdict::Todo(actions)
        })
    }
}

/// What one standby lacks to stream from `primary`.
pub fn configure(
    cx: &mut Ctx<'_>,
    primary: &NodeName,
    target: &NodeName,
    primary_port: u16,
    secret: &crate::secret::Secret,
) -> anyhow::Result<Vec<Action>> {
    let cluster = layout::cluster(cx, target)?;
    let seen = cx.observe(target);
    let mut actions = Vec::new();
    if cx.config.replication.tls {
        let address = cx.node(target).replication_address().to_owned();
        actions.extend(certificates(cx.host(target), target, &address, &cluster)?);
    }
    actions.extend(hba(cx, target, &cluster)?);
    // Kept here too: when this node is promoted, the others' password is read from it.
    if read_optional(cx.host(target), PASSWORD_FILE)?.as_deref() != Some(secret.expose().as_bytes())
    {
        actions.push(Action::Write {
            on: target.clone(),
            why: "keep the replication password (root only)".into(),
            path: PASSWORD_FILE.into(),
            contents: Input::WithSecret(SECRET_MARK.into(), secret.clone()),
            mode: FileMode::private(),
        });
    }
    actions.extend(pgpass(cx, target, secret)?);
    let upstream = Upstream::new(cx.config, primary, target, primary_port);
    // The settings follow the server's own values where it has raised them; a node whose
    // server is down (just seeded) takes the primary's, which its copy came with.
    let Some(primary_server) = observe::server(&cx.observe(primary)).cloned() else {
        anyhow::bail!("PostgreSQL on {primary} does not answer");
    };
    let base = observe::server(&seen)
        .cloned()
        .unwrap_or_else(|| primary_server.clone());
    // A hot standby does not start with less of some settings than its primary has.
    let settings = Settings::new(cx.config, target, &base, Some(upstream))
        .at_least(&primary_server, cx.config);
    let changed = settings_file(cx, target, &cluster, &settings)?;
    let reload = !actions.is_empty() || changed.is_some();
    actions.extend(changed);
    if seen.answers() && !cx.predicting() {
        actions.extend(fence_file(cx, target, &cluster)?);
        if reload {
            actions.push(Action::Run {
                on: target.clone(),
                why: "reload PostgreSQL's settings (primary_conninfo and its slot take effect without a restart)".into(),
                cmd: client::command(&cluster.id()),
                input: Input::Text("SELECT pg_reload_conf();\n".into()),
            });
        }
    }
    Ok(actions)
}

pub struct Start;

impl Step for Start {
    fn name(&self) -> &'static str {
        "start"
    }

    fn purpose(&self) -> &'static str {
        "start PostgreSQL on each standby"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let mut actions = Vec::new();
        let mut running = Vec::new();
        for target in cx.roles.targets.clone() {
            let seen = cx.observe(&target);
            if seen.answers() && !cx.predicting() {
                running.push(format!("{target} runs"));
                continue;
            }
            let cluster = layout::cluster(cx, &target)?;
            actions.push(Action::Run {
                on: target.clone(),
                why: format!("start PostgreSQL {} as a standby", cluster.id()),
                cmd: service::start(&cluster),
                input: Input::None,
            });
        }
        Ok(if actions.is_empty() {
            Verdict::Done(running.join("; "))
        } else {
            Verdict::Todo(actions)
        })
    }
}
