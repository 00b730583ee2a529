//! All output: data on stdout, human notes and errors on stderr, and the log setup.
//! Nothing else in the crate prints (clippy's print_stdout/print_stderr lints guard it).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;

use anyhow::Context;
use serde::Serialize;

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
            eprintln!("{text}");
        }
    }

    /// A warning on stderr; shown even with `--quiet`.
    pub fn warn(&self, text: &str) {
        eprintln!("warning: {text}");
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
    eprintln!("{text}");
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
        .with_writer(io::stderr)
        .with_target(false)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}
