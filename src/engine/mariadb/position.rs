//! The replication start position that mariadb-backup recorded in its target directory,
//! as the bundle manifest's `[position]` table: `gtid`, `binlog_file`, `binlog_pos`.

use std::path::Path;

use anyhow::{Context, bail};

use crate::bundle::Position;

/// The manifest key of the GTID position replication starts after.
pub const GTID: &str = "gtid";

/// MariaDB 10.11's mariadb-backup still uses the xtrabackup name; 11.x renamed it. When both
/// are present the new name is the one the running tool wrote.
pub const BINLOG_INFO: [&str; 2] = ["mariadb_backup_binlog_info", "xtrabackup_binlog_info"];

/// Reads `file<TAB>pos[<TAB>gtid]`. No file means the binary log was off: no position.
pub fn backup_position(dir: &Path) -> anyhow::Result<Position> {
    for name in BINLOG_INFO {
        let path = dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        return parse_binlog_info(&text).with_context(|| {
            format!(
                "{} is not what mariadb-backup writes (`file<TAB>position<TAB>gtid`)",
                path.display()
            )
        });
    }
    Ok(Position::default())
}

pub fn parse_binlog_info(text: &str) -> anyhow::Result<Position> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Position::default());
    }
    let mut fields = text.splitn(3, '\t');
    let file = fields.next().unwrap_or_default().trim();
    let pos = fields.next().map(str::trim);
    // A long GTID list may be wrapped over lines after its commas.
    let gtid: String = fields
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if file.is_empty() || file.contains(char::is_whitespace) {
        bail!("the binary log file name is missing");
    }
    let Some(pos) = pos else {
        bail!("the position after `{file}` is missing");
    };
    let pos: u64 = pos
        .parse()
        .with_context(|| format!("`{pos}` is not a binary log position"))?;
    let mut position = Position::new();
    if !gtid.is_empty() {
        position.insert(GTID.to_owned(), gtid);
    }
    position.insert("binlog_file".to_owned(), file.to_owned());
    position.insert("binlog_pos".to_owned(), pos.to_string());
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(position: &'a Position, key: &str) -> Option<&'a str> {
        position.get(key).map(String::as_str)
    }

    #[test]
    fn mariadb_position_parsing() {
        let parse = |text: &str| parse_binlog_info(text).unwrap();
        let with = parse("mariadb-bin.000003\t385\t0-1-42\n");
        assert_eq!(get(&with, GTID), Some("0-1-42"));
        assert_eq!(get(&with, "binlog_file"), Some("mariadb-bin.000003"));
        assert_eq!(get(&with, "binlog_pos"), Some("385"));
        let without = parse("mariadb-bin.000001\t4\n");
        assert_eq!(
            (get(&without, GTID), get(&without, "binlog_pos")),
            (None, Some("4"))
        );
        assert_eq!(get(&parse("mariadb-bin.000001\t4\t\n"), GTID), None);
        assert_eq!(
            get(&parse("b.000009\t1234\t0-1-42,1-2-7\n"), GTID),
            Some("0-1-42,1-2-7")
        );
        assert_eq!(
            get(&parse("b.000009\t1234\t0-1-42,\n1-2-7\n"), GTID),
            Some("0-1-42,1-2-7")
        );
        assert_eq!(parse(""), Position::default());
        assert!(parse_binlog_info("b.000009\tlots\n").is_err());
        assert!(parse_binlog_info("b.000009\n").is_err());

        let dir = tempfile::tempdir().unwrap();
        assert_eq!(backup_position(dir.path()).unwrap(), Position::default());
        std::fs::write(
            dir.path().join("xtrabackup_binlog_info"),
            "old.000001\t4\t0-1-1\n",
        )
        .unwrap();
        assert_eq!(
            get(&backup_position(dir.path()).unwrap(), "binlog_file"),
            Some("old.000001")
        );
        std::fs::write(
            dir.path().join("mariadb_backup_binlog_info"),
            "new.000002\t8\t0-1-2\n",
        )
        .unwrap();
        assert_eq!(
            get(&backup_position(dir.path()).unwrap(), "binlog_file"),
            Some("new.000002")
        );
        std::fs::write(dir.path().join("mariadb_backup_binlog_info"), "garbage").unwrap();
        let err = format!("{:#}", backup_position(dir.path()).unwrap_err());
        assert!(
            err.contains("mariadb_backup_binlog_info is not what mariadb-backup writes"),
            "{err}"
        );
    }
}
