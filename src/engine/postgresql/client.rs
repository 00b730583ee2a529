//! `psql` on a host, as the `postgres` OS user over the cluster's socket (Debian's peer
//! authentication, so no password is needed or sent). SQL goes in on stdin; a query that
//! matters returns one row of JSON, so nothing depends on psql's text formatting.
//!
//! Every session first sets `standard_conforming_strings`, so a literal made by
//! [`literal`] means the same whatever the server's settings say.

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;

use crate::host::{Cmd, Host, HostExt, quote};
use crate::plan::Input;

/// The client for a cluster (`15/main`), for plans and for running. `cd /` first: root's
/// home is not the postgres user's to enter, and psql says so on every run otherwise.
pub fn command(cluster: &str) -> Cmd {
    Cmd::new(format!(
        "cd / && exec runuser -u postgres -- psql --cluster {} -X -q -A -t -v ON_ERROR_STOP=1",
        quote(cluster)
    ))
    .as_root()
}

/// What every session starts with.
const SESSION: &str = "SET standard_conforming_strings = on;\n";

/// Runs SQL whose results do not matter; fails with the server's message.
pub fn execute(host: &mut dyn Host, cluster: &str, sql: &Input) -> anyhow::Result<String> {
    let mut input = SESSION.as_bytes().to_vec();
    input.extend(sql.bytes());
    let output = host.run_with_input(&command(cluster), &input)?;
    if !output.success() {
        bail!(
            "PostgreSQL on {} refused{}: {}",
            host.label(),
            sql.shown()
                .map(|s| format!(" `{}`", first_line(s)))
                .unwrap_or_default(),
            server_message(&output.stderr)
        );
    }
    Ok(output.stdout_text())
}

/// A query that returns one JSON value (`SELECT json_build_object(…)`), read as `T`.
pub fn json<T: DeserializeOwned>(
    host: &mut dyn Host,
    cluster: &str,
    sql: &str,
) -> anyhow::Result<T> {
    let text = execute(host, cluster, &Input::Text(sql.to_owned()))?;
    // One value, which json_agg spreads over lines.
    let line = text.trim();
    serde_json::from_str(line).with_context(|| {
        format!(
            "unexpected answer from PostgreSQL on {} to `{}`: {line:?}",
            host.label(),
            first_line(sql)
        )
    })
}

/// The server's own words from psql's stderr: `ERROR:  role "x" does not exist`.
pub fn server_message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines
        .iter()
        .find(|l| l.contains("ERROR:") || l.contains("FATAL:"))
    {
        Some(line) => line
            .split_once("ERROR:")
            .or_else(|| line.split_once("FATAL:"))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_else(|| (*line).to_owned()),
        None if lines.is_empty() => "no message (is PostgreSQL running?)".to_owned(),
        None => lines[lines.len().saturating_sub(3)..].join(" "),
    }
}

fn first_line(sql: &str) -> &str {
    sql.trim()
        .lines()
        .find(|l| !l.starts_with("SET standard_conforming_strings"))
        .unwrap_or("")
}

/// A string as an SQL literal: single quotes doubled (the sessions of [`command`] keep
/// backslashes literal).
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A name as an SQL identifier: double quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_identifiers_are_quoted() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b"), r"'a\b'");
        assert_eq!(ident(r#"ha"repl"#), r#""ha""repl""#);
    }

    #[test]
    fn the_servers_words() {
        assert_eq!(
            server_message("psql:<stdin>:2: ERROR:  role \"x\" does not exist\n"),
            "role \"x\" does not exist"
        );
        assert_eq!(server_message(""), "no message (is PostgreSQL running?)");
    }

    #[test]
    fn every_session_runs_as_postgres_on_its_cluster() {
        let cmd = command("15/main");
        assert!(
            cmd.script
                .contains("runuser -u postgres -- psql --cluster 15/main")
        );
        assert!(cmd.script.contains("ON_ERROR_STOP=1"));
    }
}
