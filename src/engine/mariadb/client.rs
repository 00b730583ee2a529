//! The `mariadb` client on a host, as root over its socket (Debian's root logs in by
//! unix_socket, so no password is needed or sent). SQL goes in on stdin; results come back
//! in batch mode: one row per line, tab-separated, with `\t`, `\n`, `\\` escaped.

use std::collections::HashMap;

use anyhow::{Context, bail};

use crate::host::{Cmd, Host, HostExt};
use crate::plan::Input;

/// The client command, for plans and for running.
pub fn command() -> Cmd {
    Cmd::new("mariadb --batch --skip-column-names --connect-timeout=10").as_root()
}

fn command_with_names() -> Cmd {
    Cmd::new("mariadb --batch --connect-timeout=10").as_root()
}

/// Runs SQL through `cmd`; a refusal is an error with the server's own words.
fn run(host: &mut dyn Host, cmd: &Cmd, sql: &str) -> anyhow::Result<String> {
    let output = host.run_with_input(cmd, sql.as_bytes())?;
    if !output.success() {
        bail!(
            "MariaDB on {} refused `{}`: {}",
            host.label(),
            first_line(sql),
            server_message(&output.stderr)
        );
    }
    Ok(output.stdout_text())
}

/// Runs SQL whose results do not matter; fails with the server's message.
pub fn execute(host: &mut dyn Host, sql: &Input) -> anyhow::Result<()> {
    let cmd = command();
    let output = host.run_with_input(&cmd, &sql.bytes())?;
    if !output.success() {
        bail!(
            "MariaDB on {} refused: {}",
            host.label(),
            server_message(&output.stderr)
        );
    }
    Ok(())
}

/// Rows of a query, each a list of fields (`None` for NULL).
pub fn rows(host: &mut dyn Host, sql: &str) -> anyhow::Result<Vec<Vec<Option<String>>>> {
    Ok(parse_rows(&run(host, &command(), sql)?))
}

/// The single row of a query; an error when there is none.
pub fn row(host: &mut dyn Host, sql: &str) -> anyhow::Result<Vec<Option<String>>> {
    rows(host, sql)?
        .into_iter()
        .next()
        .with_context(|| format!("`{}` returned no row on {}", first_line(sql), host.label()))
}

/// Rows keyed by column name (for `SHOW SLAVE STATUS`, whose columns vary by version).
pub fn named_rows(host: &mut dyn Host, sql: &str) -> anyhow::Result<Vec<HashMap<String, String>>> {
    Ok(parse_named(&text_with_names(host, sql)?))
}

/// A query's raw batch output with column names: for several statements in one round trip.
pub fn text_with_names(host: &mut dyn Host, sql: &str) -> anyhow::Result<String> {
    run(host, &command_with_names(), sql)
}

pub fn parse_rows(text: &str) -> Vec<Vec<Option<String>>> {
    text.lines()
        .map(|line| line.split('\t').map(unescape).collect())
        .collect()
}

pub fn parse_named(text: &str) -> Vec<HashMap<String, String>> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let names: Vec<&str> = header.split('\t').collect();
    lines
        .map(|line| {
            names
                .iter()
                .zip(line.split('\t'))
                .map(|(name, value)| ((*name).to_owned(), unescape(value).unwrap_or_default()))
                .collect()
        })
        .collect()
}

fn unescape(field: &str) -> Option<String> {
    if field == "NULL" {
        return None;
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The server's own words from the client's stderr: `ERROR 1045 (28000): Access denied…`.
pub fn server_message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.iter().find(|l| l.starts_with("ERROR")) {
        Some(line) => (*line).to_owned(),
        None if lines.is_empty() => "no message (is MariaDB running?)".to_owned(),
        None => lines[lines.len().saturating_sub(3)..].join(" "),
    }
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}

/// A string as an SQL literal (single quotes, backslash and quote escaped).
pub fn literal(value: &str) -> String {
    format!("'{}'", escape(value))
}

/// A string escaped to go between single quotes in SQL.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_rows_with_nulls_and_escapes() {
        let rows = parse_rows("10.11.6\t1\tNULL\ta\\tb\\nc\n");
        assert_eq!(
            rows,
            vec![vec![
                Some("10.11.6".into()),
                Some("1".into()),
                None,
                Some("a\tb\nc".into())
            ]]
        );
    }

    #[test]
    fn named_rows_follow_the_header() {
        let rows = parse_named("Slave_IO_Running\tLast_IO_Error\nYes\t\n");
        assert_eq!(rows[0]["Slave_IO_Running"], "Yes");
        assert_eq!(rows[0]["Last_IO_Error"], "");
        assert!(parse_named("").is_empty());
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(literal("it's"), "'it\\'s'");
        assert_eq!(literal("a\\b"), "'a\\\\b'");
    }

    #[test]
    fn server_message_prefers_the_error_line() {
        assert_eq!(
            server_message("Warning: x\nERROR 1045 (28000): Access denied\n"),
            "ERROR 1045 (28000): Access denied"
        );
        assert_eq!(server_message(""), "no message (is MariaDB running?)");
    }
}
