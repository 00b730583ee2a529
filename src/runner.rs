//! Runs a plan: each step is checked, then (unless done) its actions run in order. The
//! journal records finished steps and the event history every outcome, so a re-run after
//! a failure says where it resumes, and a re-run on a finished setup changes nothing.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::Timestamp;

use crate::host::{FileMode, Host, HostExt, HostFiles, quote};
use crate::journal::{Event, Journal, Store};
use crate::node::NodeName;
use crate::plan::{Action, Ctx, Finding, Plan, Verdict};
use crate::ui::{StepProgress, Transfer};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Steps that had something to do (in a dry run: would have).
    pub changed: Vec<&'static str>,
    /// Failed findings of a dry run's checks.
    pub failed_checks: usize,
}

pub struct Runner<'a> {
    pub store: &'a Store,
}

impl Runner<'_> {
    pub fn run(&self, plan: &Plan, cx: &mut Ctx<'_>) -> anyhow::Result<Outcome> {
        let ui = cx.ui;
        let total = plan.steps.len();
        let previous = if cx.dry_run {
            None
        } else {
            self.store.journal(plan.operation)?
        };
        if let Some(previous) = previous.as_ref().filter(|journal| !journal.complete) {
            let at = previous
                .failed
                .as_deref()
                .unwrap_or("the step after the last finished one");
            ui.note(&format!(
                "Resuming {}: {} step(s) finished in the previous run, which stopped at {at}. \
                 Every step is checked again before it acts.",
                plan.operation,
                previous.finished.len()
            ));
        }
        let mut journal = Journal {
            operation: plan.operation.to_owned(),
            started_at: Some(Timestamp::now()),
            ..Journal::default()
        };
        let mut outcome = Outcome {
            changed: Vec::new(),
            failed_checks: 0,
        };
        for (index, step) in plan.steps.iter().enumerate() {
            let name = step.name();
            let header = format!("[{}/{total}] {name}: {}", index + 1, step.purpose());
            // The spinner runs from the check on: a preflight takes seconds too.
            let progress = (!cx.dry_run).then(|| {
                let progress = ui.step(&header);
                progress.status("checking");
                progress
            });
            cx.findings.clear();
            // A refusal is the message itself; anything else says which check failed.
            let verdict = step.check(cx).map_err(|err| {
                if err.downcast_ref::<crate::error::Exit>().is_some() {
                    err
                } else {
                    err.context(format!("{name}: the check failed"))
                }
            });
            let findings = std::mem::take(&mut cx.findings);
            let failed: Vec<&Finding> = findings.iter().filter(|f| !f.ok).collect();
            let verdict = match verdict {
                Ok(verdict) => verdict,
                Err(err) => {
                    self.event(plan, name, "", "failed", &format!("{err:#}"), cx.dry_run);
                    self.save_failed(&mut journal, name, cx.dry_run);
                    return Err(err);
                }
            };
            if cx.dry_run {
                let mut text = header;
                text.push_str(&findings_text(&findings));
                match &verdict {
                    Verdict::Done(why) if findings.is_empty() => {
                        text.push_str(&format!("\n      nothing to do: {why}"))
                    }
                    Verdict::Done(why) => text.push_str(&format!("\n      {why}")),
                    Verdict::Todo(actions) => {
                        for action in actions {
                            text.push_str("\n      ");
                            text.push_str(
                                &action.describe(ui.verbose() > 0).replace('\n', "\n      "),
                            );
                        }
                        cx.after_pending = true;
                        outcome.changed.push(name);
                    }
                }
                ui.out(&text)?;
                outcome.failed_checks += failed.len();
                continue;
            }
            let Some(progress) = progress else {
                unreachable!("a step has its progress line outside a dry run")
            };
            let shown = findings_text(&findings);
            if !shown.is_empty() {
                progress.line(shown.trim_start_matches('\n'));
            }
            if !failed.is_empty() {
                drop(progress);
                let detail = failed
                    .iter()
                    .map(|f| format!("{} ({})", f.what, f.fix.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("; ");
                self.event(plan, name, "", "failed", &detail, false);
                self.save_failed(&mut journal, name, false);
                bail!(
                    "{name}: {} check(s) failed; nothing was changed. Fix what is listed above and run `ha-setup {}` again.",
                    failed.len(),
                    plan.operation
                );
            }
            match verdict {
                Verdict::Done(why) => {
                    if findings.is_empty() {
                        progress.finish(&format!("nothing to do: {why}"));
                    } else {
                        progress.finish(&why);
                    }
                    self.event(plan, name, "", "already done", &why, false);
                }
                Verdict::Todo(actions) => {
                    let started = Instant::now();
                    let hosts = hosts_of(&actions);
                    for action in &actions {
                        progress.doing(&format!(
                            "      {}",
                            action.describe(ui.verbose() > 0).replace('\n', "\n      ")
                        ));
                        let applied = self.apply(action, cx, &progress);
                        // Whatever happened, what was seen of these nodes no longer holds.
                        for name in nodes_of(action) {
                            cx.forget(&name);
                        }
                        if let Err(err) = applied {
                            drop(progress);
                            let err = err.context(format!("{name} failed"));
                            self.event(plan, name, &hosts, "failed", &format!("{err:#}"), false);
                            self.save_failed(&mut journal, name, false);
                            return Err(err);
                        }
                    }
                    let elapsed = started.elapsed();
                    progress.finish(&format!("done in {}", seconds(elapsed)));
                    self.event(plan, name, &hosts, "done", &seconds(elapsed), false);
                    outcome.changed.push(name);
                }
            }
            journal.finished.push(name.to_owned());
            self.store.save_journal(&journal)?;
        }
        if !cx.dry_run {
            journal.complete = true;
            self.store.save_journal(&journal)?;
        }
        Ok(outcome)
    }

    fn save_failed(&self, journal: &mut Journal, step: &str, dry_run: bool) {
        if dry_run {
            return;
        }
        journal.failed = Some(step.to_owned());
        if let Err(err) = self.store.save_journal(journal) {
            tracing::warn!("{err:#}");
        }
    }

    fn event(
        &self,
        plan: &Plan,
        step: &str,
        host: &str,
        result: &str,
        detail: &str,
        dry_run: bool,
    ) {
        if dry_run {
            return;
        }
        let event = Event {
            at: Timestamp::now(),
            operation: plan.operation.to_owned(),
            step: step.to_owned(),
            host: host.to_owned(),
            result: result.to_owned(),
            detail: detail.to_owned(),
        };
        // The history is a record, not the operation: failing to write it only warns.
        if let Err(err) = self.store.record(&event) {
            tracing::warn!("{err:#}");
        }
    }

    fn apply(
        &self,
        action: &Action,
        cx: &mut Ctx<'_>,
        progress: &StepProgress,
    ) -> anyhow::Result<()> {
        match action {
            Action::Run { on, cmd, input, .. } => {
                let host = cx.host(on);
                tracing::info!("[{}] {}", host.label(), cmd.script);
                if let Err(err) = host.run_ok_with_input(cmd, &input.bytes()) {
                    // A server may quote its input back in an error ("near '…'").
                    return Err(anyhow::anyhow!(redact(&err.to_string(), input)));
                }
            }
            Action::Write {
                on,
                path,
                contents,
                mode,
                ..
            } => write_with_backup(cx.host(on), path, &contents.bytes(), mode)?,
            Action::PlaceTool { on, local, remote } => place_tool(cx.host(on), local, remote)?,
            Action::Send {
                local, to, receive, ..
            } => {
                let mut file = std::fs::File::open(local)
                    .with_context(|| format!("cannot read {}", local.display()))?;
                let host = cx.host(to);
                let mut stdout = Vec::new();
                let finished = host.exec(receive, &mut file, &mut stdout)?;
                if !finished.success() {
                    bail!(
                        "receiving {} on {to} failed: {}",
                        local.display(),
                        finished.stderr.trim()
                    );
                }
            }
            Action::Copy {
                from,
                path,
                to,
                to_path,
                mode,
                ..
            } => {
                let contents = cx.host(from).read_file(path)?;
                write_with_backup(cx.host(to), to_path, &contents, mode)?;
            }
            Action::Relay {
                from,
                send,
                to,
                receive,
                bytes,
                ..
            } => {
                let started = Instant::now();
                let transfer = progress.transfer(*bytes);
                let went = crate::route::transfer(
                    cx,
                    from,
                    send,
                    to,
                    receive,
                    &|n| transfer.add(n),
                    &mut |cx| relay(cx, from, send, to, receive, &transfer),
                )?;
                transfer.done();
                for line in &went.lines {
                    progress.line(&format!("      {line}"));
                }
                if let Some(sent) = went.relayed {
                    let elapsed = started.elapsed().max(Duration::from_millis(1));
                    progress.line(&format!(
                        "      sent {} in {} ({}/s)",
                        human_bytes(sent),
                        seconds(elapsed),
                        human_bytes((sent as f64 / elapsed.as_secs_f64()) as u64)
                    ));
                }
            }
            Action::Call { call, .. } => {
                for line in (call.0)(cx)? {
                    progress.line(&format!("      {line}"));
                }
            }
        }
        Ok(())
    }
}

/// The text with the input's secret, if any, replaced by the mark.
fn redact(text: &str, input: &crate::plan::Input) -> String {
    match input {
        crate::plan::Input::WithSecret(_, secret) if !secret.expose().is_empty() => {
            text.replace(secret.expose(), crate::plan::SECRET_MARK)
        }
        _ => text.to_owned(),
    }
}

fn findings_text(findings: &[Finding]) -> String {
    let mut text = String::new();
    for finding in findings {
        let verdict = match (finding.ok, finding.warning) {
            (true, false) => "ok  ",
            (true, true) => "WARN",
            (false, _) => "FAIL",
        };
        text.push_str(&format!("\n      {verdict}  {}", finding.what));
        if let Some(fix) = &finding.fix {
            text.push_str(&format!("\n            → {fix}"));
        }
    }
    text
}

/// The nodes an action works on.
fn nodes_of(action: &Action) -> Vec<NodeName> {
    match action {
        Action::Send { to: on, .. }
        | Action::Run { on, .. }
        | Action::Write { on, .. }
        | Action::PlaceTool { on, .. } => vec![on.clone()],
        Action::Relay { from, to, .. } | Action::Copy { from, to, .. } => {
            vec![from.clone(), to.clone()]
        }
        Action::Call { on, .. } => on.clone(),
    }
}

fn hosts_of(actions: &[Action]) -> String {
    let mut names: Vec<NodeName> = Vec::new();
    for name in actions.iter().flat_map(nodes_of) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes `path` unless it already holds `contents`; a different file there is copied to
/// `<path>.ha-setup-bak-<UTC time>` first, so nothing an operator wrote is lost.
fn write_with_backup(
    host: &mut dyn Host,
    path: &str,
    contents: &[u8],
    mode: &FileMode,
) -> anyhow::Result<()> {
    let target = quote(path);
    let current =
        host.run(&crate::host::Cmd::new(format!("cat -- {target} 2>/dev/null")).as_root())?;
    if current.success() {
        if current.stdout == contents {
            return Ok(());
        }
        let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
        let backup = quote(&format!("{path}.ha-setup-bak-{stamp}"));
        host.run_ok(&crate::host::Cmd::new(format!("cp -p -- {target} {backup}")).as_root())?;
    }
    let dir = std::path::Path::new(path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    host.run_ok(&crate::host::Cmd::new(format!("mkdir -p -- {}", quote(&dir))).as_root())?;
    host.write_file(path, contents, mode)?;
    Ok(())
}

/// Places this binary on the host unless the same bytes are already there.
pub fn place_tool(
    host: &mut dyn Host,
    local: &std::path::Path,
    remote: &str,
) -> anyhow::Result<()> {
    let mut file = std::fs::File::open(local)
        .with_context(|| format!("cannot read this program's binary {}", local.display()))?;
    let dir = std::path::Path::new(remote)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    host.run_ok(&crate::host::Cmd::new(format!("mkdir -p -m 0755 -- {}", quote(&dir))).as_root())?;
    host.stream_in(&mut file, remote, &FileMode::new(0o755), &mut |_| {})?;
    let version = host.run_ok(&crate::host::Cmd::new(format!(
        "{} --version",
        quote(remote)
    )))?;
    if !version.contains(env!("CARGO_PKG_VERSION")) {
        bail!(
            "the ha-setup placed at {remote} on {} does not run there (it printed {version:?}); \
             the host needs the same architecture and a compatible libc and libssl",
            host.label()
        );
    }
    Ok(())
}

/// Counts the bytes going through, for the summary and progress.
struct Counting<'a, W> {
    inner: W,
    count: &'a AtomicU64,
    progress: &'a Transfer<'a>,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        self.progress.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Runs `send` on one host and `receive` on the other, the first's stdout piped into the
/// second's stdin through this machine; each on its own thread with its own session.
fn relay(
    cx: &mut Ctx<'_>,
    from: &NodeName,
    send: &crate::host::Cmd,
    to: &NodeName,
    receive: &crate::host::Cmd,
    progress: &Transfer<'_>,
) -> anyhow::Result<u64> {
    if from == to {
        bail!("a relay needs two different nodes");
    }
    let (sender, receiver) = cx.pair(from, to);
    let (pipe_out, pipe_in) = io::pipe().context("cannot create a pipe")?;
    let count = AtomicU64::new(0);
    let (sent, received) = std::thread::scope(|scope| {
        let sending = scope.spawn(|| {
            let mut sink = Counting {
                inner: io::BufWriter::with_capacity(1 << 20, pipe_in),
                count: &count,
                progress,
            };
            let finished = sender.exec(send, &mut io::empty(), &mut sink);
            // Closing our end is the receiver's end of input.
            drop(sink);
            finished
        });
        let mut source: Box<dyn Read + Send> = Box::new(pipe_out);
        let mut stdout = Vec::new();
        let received = receiver.exec(receive, &mut source, &mut stdout);
        drop(source);
        let sent = sending
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (sent, received.map(|finished| (finished, stdout)))
    });
    let sent = sent.with_context(|| format!("sending from {from} failed"))?;
    let (received, _stdout) = received.with_context(|| format!("receiving on {to} failed"))?;
    if !received.success() {
        bail!(
            "receiving on {to} failed (exit {}): {}",
            received
                .status
                .map_or("by signal".into(), |s| s.to_string()),
            received.stderr.trim()
        );
    }
    if !sent.success() {
        bail!(
            "sending from {from} failed (exit {}): {}",
            sent.status.map_or("by signal".into(), |s| s.to_string()),
            sent.stderr.trim()
        );
    }
    Ok(count.load(Ordering::Relaxed))
}

pub fn seconds(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_carry_the_secret() {
        let input = crate::plan::Input::WithSecret("x".into(), crate::secret::Secret::new("pw1"));
        assert_eq!(
            redact("ERROR 1064: near 'pw1' at line 2", &input),
            "ERROR 1064: near '<secret>' at line 2"
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
