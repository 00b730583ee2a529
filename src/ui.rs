//! All output: data on stdout, human notes and errors on stderr, and the log setup.
//! Nothing else in the crate prints (clippy's print_stdout/print_stderr lints guard it).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::runner::human_bytes;

/// How much the user asked to hear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ui {
    quiet: bool,
    verbose: u8,
}

impl Ui {
    pub fn new(quiet: bool, verbose: u8) -> Self {
        Ui { quiet, verbose }
    }

    /// Data the user asked for, on stdout; shown even with `--quiet`.
    pub fn out(&self, text: &str) -> anyhow::Result<()> {
        let mut stdout = io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| {
                if text.ends_with('\n') {
                    Ok(())
                } else {
                    stdout.write_all(b"\n")
                }
            })
            .and_then(|()| stdout.flush())
            .context("cannot write to standard output")
    }

    /// A value as pretty JSON on stdout.
    pub fn json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value).context("cannot render JSON")?;
        self.out(&text)
    }

    /// Standard output for a byte stream (a bundle): a duplicate of descriptor 1, without
    /// the line buffering of `io::stdout`, for the caller to buffer and flush.
    pub fn raw_stdout(&self) -> anyhow::Result<impl Write + use<>> {
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot use standard output")?;
        Ok(std::fs::File::from(fd))
    }

    /// A human note on stderr, hidden by `--quiet`.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            stderr_line(text);
        }
    }

    /// A warning on stderr; shown even with `--quiet`.
    pub fn warn(&self, text: &str) {
        stderr_line(&format!("warning: {text}"));
    }

    /// Whether progress is drawn as live spinners and bars: on a terminal, unless `--quiet`
    /// (or `TERM=dumb`). Otherwise it is plain timestamped lines, for logs and CI.
    pub fn live_progress(&self) -> bool {
        !self.quiet
            && io::stderr().is_terminal()
            && std::env::var("TERM").map_or(true, |term| term != "dumb")
    }

    /// Starts the progress line of one step: a spinner with the elapsed time on a terminal,
    /// a timestamped line otherwise.
    pub fn step(&self, header: &str) -> StepProgress {
        let bar = if self.live_progress() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                .with_style(spinner_style())
                .with_prefix(header.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
            Some(bar)
        } else {
            self.note(&format!("{} {header}", clock()));
            None
        };
        StepProgress {
            ui: *self,
            header: header.to_owned(),
            header_shown: Mutex::new(bar.is_none()),
            bar,
        }
    }

    pub fn verbose(&self) -> u8 {
        self.verbose
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Whether a person is at the terminal (progress bars and prompts only then).
    pub fn is_interactive(&self) -> bool {
        io::stderr().is_terminal() && io::stdin().is_terminal()
    }
}

/// The bar being drawn, if any: every line for stderr goes out through it, so a line never
/// tears a bar (indicatif clears the bar, the line is printed, the bar is drawn again).
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn stderr_line(text: &str) {
    // Cloned out of the lock: the bar's own drawing must never wait on it.
    let active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match active {
        Some(bar) => bar.suspend(|| eprintln!("{text}")),
        None => eprintln!("{text}"),
    }
}

fn clock() -> String {
    jiff::Zoned::now().strftime("%H:%M:%S").to_string()
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.cyan} {prefix} {elapsed:.dim}\n      {wide_msg:.dim}")
        .expect("a valid template")
}

fn bytes_style(known_total: bool) -> ProgressStyle {
    let template = if known_total {
        "{spinner:.cyan} {prefix}\n      [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
    } else {
        "{spinner:.cyan} {prefix}\n      {bytes} {bytes_per_sec} {elapsed}"
    };
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

/// The progress of one step, from [`Ui::step`]. Lines printed through it stay below the
/// step's header; the live spinner (if any) goes when it is finished or dropped.
pub struct StepProgress {
    ui: Ui,
    header: String,
    header_shown: Mutex<bool>,
    bar: Option<ProgressBar>,
}

impl StepProgress {
    /// A line that stays: a finding, a summary. Printed under the header.
    pub fn line(&self, text: &str) {
        self.show_header();
        self.ui.note(text);
    }

    /// What the step is doing now. With `-v`, or without a live spinner, it stays as a
    /// line; otherwise it is the spinner's message until the next one.
    pub fn doing(&self, text: &str) {
        match &self.bar {
            Some(bar) if self.ui.verbose == 0 => {
                let first = text.trim_start().lines().next().unwrap_or_default();
                bar.set_message(first.to_owned());
            }
            _ => self.line(text),
        }
    }

    /// A passing state, only ever on the spinner ("checking"); never a line.
    pub fn status(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_owned());
        }
    }

    /// A byte count going through this step (the bundle): a bar with bytes, throughput
    /// and ETA on a terminal; a line every ten seconds otherwise. `total` 0 = unknown.
    pub fn transfer(&self, total: u64) -> Transfer<'_> {
        if let Some(bar) = &self.bar {
            bar.set_style(bytes_style(total > 0));
            bar.set_length(total);
            bar.set_position(0);
            bar.reset_eta();
        }
        Transfer {
            step: self,
            total,
            count: std::sync::atomic::AtomicU64::new(0),
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// Ends the step with its result, a line that stays: on a terminal one line for the
    /// whole step when nothing was printed under it (`✓ [2/9] … — done in 3.2s`).
    pub fn finish(self, result: &str) {
        self.clear();
        if self.bar.is_none() {
            self.ui.note(&format!("{}       {result}", clock()));
            return;
        }
        let mut shown = self.header_shown.lock().unwrap_or_else(|p| p.into_inner());
        if *shown {
            self.ui.note(&format!("      ✓ {result}"));
        } else {
            *shown = true;
            self.ui.note(&format!("✓ {} — {result}", self.header));
        }
    }

    fn show_header(&self) {
        let mut shown = self.header_shown.lock().unwrap_or_else(|p| p.into_inner());
        if !*shown {
            *shown = true;
            self.ui.note(&self.header);
        }
    }

    fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

impl Drop for StepProgress {
    /// A step that ends by an error still leaves its header, so the error that follows
    /// reads under the step it belongs to.
    fn drop(&mut self) {
        if self.bar.as_ref().is_some_and(|bar| !bar.is_finished()) {
            self.clear();
            let mut shown = self.header_shown.lock().unwrap_or_else(|p| p.into_inner());
            if !*shown {
                *shown = true;
                self.ui.note(&format!("✗ {}", self.header));
            }
        }
    }
}

/// Bytes going through a step; see [`StepProgress::transfer`].
pub struct Transfer<'a> {
    step: &'a StepProgress,
    total: u64,
    count: std::sync::atomic::AtomicU64,
    started: Instant,
    last_line: Mutex<Instant>,
}

impl Transfer<'_> {
    /// `n` more bytes went through.
    pub fn add(&self, n: u64) {
        let count = self
            .count
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed)
            + n;
        if let Some(bar) = &self.step.bar {
            bar.set_position(count);
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= Duration::from_secs(10) {
            *last = Instant::now();
            let rate = count as f64 / self.started.elapsed().as_secs_f64().max(0.001);
            let of = if self.total > 0 {
                format!(
                    " of {} ({}%)",
                    human_bytes(self.total),
                    count * 100 / self.total.max(1)
                )
            } else {
                String::new()
            };
            self.step.ui.note(&format!(
                "{}       {}{of} at {}/s",
                clock(),
                human_bytes(count),
                human_bytes(rate as u64)
            ));
        }
    }

    /// Back to the step's spinner.
    pub fn done(self) {
        if let Some(bar) = &self.step.bar {
            bar.set_style(spinner_style());
        }
    }
}

/// A writer for log lines that goes through [`stderr_line`] once the line is complete,
/// so `-v` logs never tear a bar.
#[derive(Default)]
struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            stderr_line(String::from_utf8_lossy(&self.0).trim_end_matches('\n'));
        }
    }
}

/// Prints an error with its cause chain, the one place errors reach the user.
pub fn print_error(err: &anyhow::Error) {
    let mut text = format!("error: {err}");
    let causes: Vec<String> = err.chain().skip(1).map(|cause| cause.to_string()).collect();
    if !causes.is_empty() {
        text.push_str("\n\nCaused by:");
        for cause in causes {
            for (i, line) in cause.lines().enumerate() {
                let lead = if i == 0 { "  - " } else { "    " };
                text.push_str(&format!("\n{lead}{line}"));
            }
        }
    }
    stderr_line(&text);
}

/// Routes `tracing` to stderr: warnings by default, more with -v, nothing but errors with -q.
/// `HA_SETUP_LOG` (an env-filter directive) overrides the level.
pub fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HA_SETUP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("ha_setup={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogLine::default)
        .with_target(false)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}
