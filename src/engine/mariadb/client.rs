//! The `mariadb` client on a host, as root over its socket (Debian's root logs in by
//! unix_socket, so no password is needed or sent). SQL goes in on stdin; results come back
//! in batch mode: one row per line, tab-separated, with `\t`, `\n`, `\\` escaped.
//!
//! Every session first takes `NO_BACKSLASH_ESCAPES` out of its own `sql_mode` (the
//! client's `--init-command`), so a literal made by [`literal`] means the same whatever
//! the server's global `sql_mode` says.

use std::collections::HashMap;

use anyhow::{Context, bail};

use crate::host::{Cmd, Host, HostExt};
use crate::plan::Input;

/// Run by the client as each session starts: backslashes in literals are escapes, as
/// [`escape`] writes them, whatever the server's global sql_mode.
const SESSION_MODE: &str = "--init-command=\"SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')\"";

/// The client command, for plans and for running.
pub fn command() -> Cmd {
    Cmd::new(format!(
        "mariadb --batch --skip-column-names --connect-timeout=10 {SESSION_MODE}"
    ))
    .as_root()
}

fn command_with_names() -> Cmd {
    Cmd::new(format!(
        "mariadb --batch --connect-timeout=10 {SESSION_MODE}"
    ))
    .as_root()
}

/// `sql` with each of its statements bounded to `secs` seconds: a lock wait
/// (`lock_wait_timeout`: `SET GLOBAL read_only = ON` takes the global read lock, which
/// waits for every running write statement while the application's new writes queue
/// behind it) and the statement as a whole (`max_statement_time`). A statement that runs
/// out fails with ER_LOCK_WAIT_TIMEOUT (1205) or ER_STATEMENT_TIMEOUT (1969) and changes
/// nothing.
pub fn bounded(sql: &str, secs: u64) -> String {
    format!(
        "SET SESSION lock_wait_timeout = {secs}, max_statement_time = {secs};\n{}",
        sql.trim_start()
    )
}

/// Whether a failure is a bound that ran out (see [`bounded`]).
pub fn timed_out(err: &anyhow::Error) -> bool {
    let text = format!("{err:#}");
    text.contains("ERROR 1205") || text.contains("ERROR 1969")
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

/// A string escaped to go between single quotes in SQL: a quote doubled (right in every
/// sql_mode), a backslash and the control characters with backslashes (right in the
/// sessions of [`command`], which turn `NO_BACKSLASH_ESCAPES` off).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
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
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\b"), "'a\\\\b'");
        assert_eq!(literal(r#"'\""#), r#"'''\\"'"#);
        assert_eq!(literal("a\nb\0"), r"'a\nb\0'");
    }

    #[test]
    fn every_session_turns_backslash_escapes_on() {
        for cmd in [command(), command_with_names()] {
            assert!(
                cmd.script
                    .contains("REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')"),
                "{}",
                cmd.script
            );
        }
    }

    #[test]
    fn bounded_statements() {
        assert_eq!(
            bounded("SET GLOBAL read_only = ON;\n", 5),
            "SET SESSION lock_wait_timeout = 5, max_statement_time = 5;\nSET GLOBAL read_only = ON;\n"
        );
        let err = anyhow::anyhow!(
            "MariaDB on db1 refused: ERROR 1205 (HY000) at line 2: Lock wait timeout exceeded; try restarting transaction"
        );
        assert!(timed_out(&err));
        assert!(!timed_out(&anyhow::anyhow!(
            "ERROR 1045 (28000): Access denied"
        )));
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
