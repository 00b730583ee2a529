//! Config errors that point at the file, line, column and key, with the offending line
//! shown and a hint on how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::locate;

/// Something wrong with one key, before it is placed in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A problem placed in the file.
#[derive(Debug, Clone)]
struct Located {
    key: Option<String>,
    message: String,
    help: Option<String>,
    place: Option<Place>,
}

#[derive(Debug, Clone)]
struct Place {
    line: usize,
    column: usize,
    source_line: String,
    width: usize,
}

/// A config file that cannot be used. Exit code 2.
#[derive(Debug, Clone)]
pub struct ConfigError {
    file: PathBuf,
    problems: Vec<Located>,
}

impl ConfigError {
    pub(super) fn unreadable(file: &Path, err: std::io::Error) -> Self {
        let help = if err.kind() == std::io::ErrorKind::NotFound {
            "pass the config file with -c FILE or HA_SETUP_CONFIG, or start one with `ha-setup config example > ha-setup.toml`"
                .to_owned()
        } else {
            format!("check that {} is a readable file", file.display())
        };
        ConfigError {
            file: file.to_path_buf(),
            problems: vec![Located {
                key: None,
                message: format!("cannot read the config file: {err}"),
                help: Some(help),
                place: None,
            }],
        }
    }

    pub(super) fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> Self {
        let message = plain_types(err.message().trim());
        let span = err.span();
        let mut key = span
            .as_ref()
            .and_then(|span| locate::key_at(text, span.start));
        // serde names a missing key but places the error on its table: name the key itself.
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            key = Some(match key {
                Some(table) => format!("{table}.{missing}"),
                None => missing.to_owned(),
            });
        }
        let help = toml_help(&message, key.as_deref());
        ConfigError {
            file: file.to_path_buf(),
            problems: vec![Located {
                key,
                message,
                help,
                place: span.map(|span| place(text, span)),
            }],
        }
    }

    pub(super) fn from_problems(file: &Path, text: &str, problems: Vec<Problem>) -> Self {
        let problems = problems
            .into_iter()
            .map(|problem| Located {
                place: locate::span_of(text, &problem.key).map(|span| place(text, span)),
                key: Some(problem.key),
                message: problem.message,
                help: problem.help,
            })
            .collect();
        ConfigError {
            file: file.to_path_buf(),
            problems,
        }
    }

    /// The dotted keys the problems are about, in order (for tests and JSON output).
    pub fn keys(&self) -> Vec<&str> {
        self.problems
            .iter()
            .filter_map(|p| p.key.as_deref())
            .collect()
    }
}

fn place(text: &str, span: std::ops::Range<usize>) -> Place {
    let (line, column) = locate::line_column(text, span.start);
    let source_line = text.lines().nth(line - 1).unwrap_or("").to_owned();
    let rest = source_line.chars().count().saturating_sub(column - 1);
    let spanned = text
        .get(span.clone())
        .map_or(1, |s| s.lines().next().unwrap_or("").chars().count());
    Place {
        line,
        column,
        source_line,
        width: spanned.clamp(1, rest.max(1)),
    }
}

/// serde names Rust types; an operator reads "a whole number".
fn plain_types(message: &str) -> String {
    [
        ("expected u16", "expected a whole number from 1 to 65535"),
        (
            "expected u32",
            "expected a whole number from 1 to 4294967295",
        ),
        ("expected u64", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
    ]
    .iter()
    .fold(message.to_owned(), |text, (from, to)| {
        text.replace(from, to)
    })
}

fn toml_help(message: &str, key: Option<&str>) -> Option<String> {
    if message.starts_with("unknown field") {
        Some(
            "remove the key or fix its spelling; `ha-setup config example` lists every key"
                .to_owned(),
        )
    } else if message.starts_with("missing field") {
        Some(format!("add `{}` to the file", key.unwrap_or("the key")))
    } else if message.starts_with("unknown variant") || message.starts_with("invalid type") {
        Some("`ha-setup config example` shows every key with its allowed values".to_owned())
    } else {
        None
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match self.problems.len() {
            1 => write!(f, "invalid config {file}")?,
            n => write!(f, "invalid config {file}: {n} problems")?,
        }
        for problem in &self.problems {
            write!(f, "\n\n  {file}")?;
            if let Some(place) = &problem.place {
                write!(f, ":{}:{}", place.line, place.column)?;
            }
            if let Some(key) = &problem.key {
                write!(f, ": {key}")?;
            }
            write!(f, ": {}", problem.message)?;
            if let Some(place) = &problem.place {
                let gutter = place.line.to_string().len();
                write!(
                    f,
                    "\n  {:gutter$} |\n  {} | {}\n  {:gutter$} | {}{}",
                    "",
                    place.line,
                    place.source_line,
                    "",
                    " ".repeat(place.column - 1),
                    "^".repeat(place.width)
                )?;
            }
            if let Some(help) = &problem.help {
                write!(f, "\n  help: {help}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
