//! The replication start position that mariadb-backup recorded in its target directory.

use std::path::Path;

use anyhow::{Context, bail};

use super::Position;

/// MariaDB 10.11's mariadb-backup still uses the xtrabackup name; 11.x renamed it. When both
/// are present the new name is the one the running tool wrote.
const BINLOG_INFO: [&str; 2] = ["mariadb_backup_binlog_info", "xtrabackup_binlog_info"];

/// Reads `file<TAB>pos[<TAB>gtid]`. No file means the binary log was off: no position.
pub fn mariadb_position(dir: &Path) -> anyhow::Result<Position> {
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

pub(crate) fn parse_binlog_info(text: &str) -> anyhow::Result<Position> {
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
    Ok(Position {
        gtid: (!gtid.is_empty()).then_some(gtid),
        binlog_file: Some(file.to_owned()),
        binlog_pos: Some(pos),
    })
}
