//! Where a base backup starts, as the bundle manifest's `[position]` table: the WAL
//! location and timeline `backup_label` records, and the cluster's system identifier
//! (a replica only replays WAL of the cluster its copy came from).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, bail};

use crate::bundle::Position;

/// The manifest key of the WAL location the backup starts at ("0/6000028").
pub const START_LSN: &str = "start_lsn";
/// The manifest key of the timeline the backup starts on ("1").
pub const TIMELINE: &str = "timeline";
/// The manifest key of the cluster's system identifier (decimal, as `pg_controldata`
/// prints it).
pub const SYSTEM_IDENTIFIER: &str = "system_identifier";

/// The file of a base backup that records where it starts.
pub const BACKUP_LABEL: &str = "backup_label";
/// The control file; `ControlFileData` starts with the system identifier.
pub const PG_CONTROL: &str = "global/pg_control";

/// A WAL location (PostgreSQL's `pg_lsn`): written `X/Y`, the high and low 32 bits in hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Lsn> {
        let half = |part: &str| {
            // from_str_radix takes a sign; a location has none.
            if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("`{text}` is not a WAL location (two hex numbers, `X/Y`)");
            }
            Ok(u64::from(u32::from_str_radix(part, 16)?))
        };
        let Some((high, low)) = text.split_once('/') else {
            bail!("`{text}` is not a WAL location (two hex numbers, `X/Y`)");
        };
        Ok(Lsn(half(high)? << 32 | half(low)?))
    }
}

impl fmt::Display for Lsn {
    /// As the server prints it, so that the manifest and `pg_current_wal_lsn()` read alike.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// The start position of the unpacked base backup in `dir` (`bundle pack --engine
/// postgresql --dir`).
pub fn backup_position(dir: &Path) -> anyhow::Result<Position> {
    let label = dir.join(BACKUP_LABEL);
    let text = std::fs::read_to_string(&label).with_context(|| {
        format!(
            "cannot read {}: a base backup has one (pg_basebackup writes it)",
            label.display()
        )
    })?;
    let (lsn, timeline) = parse_backup_label(&text)
        .with_context(|| format!("{} is not what pg_basebackup writes", label.display()))?;
    let control = dir.join(PG_CONTROL);
    let bytes =
        std::fs::read(&control).with_context(|| format!("cannot read {}", control.display()))?;
    let system_identifier = system_identifier(&bytes)
        .with_context(|| format!("{} is not a control file", control.display()))?;
    Ok(position(lsn, timeline, system_identifier))
}

/// The manifest's `[position]` table.
pub fn position(lsn: Lsn, timeline: u32, system_identifier: u64) -> Position {
    Position::from([
        (START_LSN.to_owned(), lsn.to_string()),
        (TIMELINE.to_owned(), timeline.to_string()),
        (SYSTEM_IDENTIFIER.to_owned(), system_identifier.to_string()),
    ])
}

/// The start location and timeline from `backup_label`'s text:
/// `START WAL LOCATION: 0/6000028 (file 000000010000000000000006)` and `START TIMELINE: 1`.
pub fn parse_backup_label(text: &str) -> anyhow::Result<(Lsn, u32)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .with_context(|| format!("it has no `{name}` line"))
    };
    let location = field("START WAL LOCATION")?;
    let lsn = location
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .parse()
        .context("its START WAL LOCATION")?;
    let timeline = field("START TIMELINE")?;
    let timeline = timeline
        .parse()
        .with_context(|| format!("its START TIMELINE `{timeline}` is not a timeline number"))?;
    Ok((lsn, timeline))
}

/// The system identifier from the start of a control file, in the byte order of the machine
/// that wrote it: this one, since a copy only ever runs on a server of the same architecture.
pub fn system_identifier(pg_control: &[u8]) -> anyhow::Result<u64> {
    let Some(first) = pg_control.first_chunk::<8>() else {
        bail!(
            "it is {} bytes long, too short to hold a system identifier",
            pg_control.len()
        );
    };
    Ok(u64::from_ne_bytes(*first))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL: &str = "START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\n\
                         CHECKPOINT LOCATION: 0/6000060\n\
                         BACKUP METHOD: streamed\n\
                         BACKUP FROM: primary\n\
                         START TIME: 2026-11-28 23:37:19 UTC\n\
                         LABEL: ha-setup\n\
                         START TIMELINE: 1\n";

    #[test]
    fn lsn_parses_prints_and_orders() {
        let lsn = |text: &str| text.parse::<Lsn>().unwrap();
        assert_eq!(lsn("0/6000028"), Lsn(0x0600_0028));
        assert_eq!(lsn("16/B374D848"), Lsn(0x16_B374_D848));
        assert_eq!(lsn("ffffffff/ffffffff"), Lsn(u64::MAX));
        assert_eq!(lsn("0/0"), Lsn(0));
        for text in ["0/6000028", "16/B374D848", "FFFFFFFF/FFFFFFFF", "0/0"] {
            assert_eq!(lsn(text).to_string(), text);
        }
        assert_eq!(lsn("00/06000028").to_string(), "0/6000028");
        // The high half counts more than any low half.
        assert!(lsn("1/0") > lsn("0/FFFFFFFF"));
        assert!(lsn("0/6000028") < lsn("0/6000060"));
        let mut list = vec![lsn("1/0"), lsn("0/10"), lsn("0/9")];
        list.sort();
        assert_eq!(list, vec![lsn("0/9"), lsn("0/10"), lsn("1/0")]);
        for bad in [
            "",
            "0",
            "/",
            "0/",
            "/0",
            "0/6000028/1",
            "g/0",
            "0/+1",
            "-1/0",
            "0/ 1",
            "100000000/0",
            "0/123456789",
            "0x1/0",
        ] {
            let err = bad.parse::<Lsn>().unwrap_err().to_string();
            assert!(err.contains("is not a WAL location"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn backup_label_parsing() {
        assert_eq!(parse_backup_label(LABEL).unwrap(), (Lsn(0x0600_0028), 1));
        let later = LABEL
            .replace("0/6000028", "2A/FF000028")
            .replace("TIMELINE: 1", "TIMELINE: 12");
        assert_eq!(
            parse_backup_label(&later).unwrap(),
            (Lsn(0x2A_FF00_0028), 12)
        );

        let err = |text: &str| format!("{:#}", parse_backup_label(text).unwrap_err());
        let no_location: String = LABEL
            .lines()
            .filter(|line| !line.starts_with("START WAL"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            err(&no_location).contains("no `START WAL LOCATION` line"),
            "{}",
            err(&no_location)
        );
        let no_timeline = LABEL.replace("START TIMELINE: 1\n", "");
        assert!(err(&no_timeline).contains("no `START TIMELINE` line"));
        assert!(err("").contains("no `START WAL LOCATION` line"));
        assert!(err("garbage\n\0\u{1}").contains("no `START WAL LOCATION` line"));
        let bad_lsn = LABEL.replace("0/6000028", "06000028");
        assert!(
            err(&bad_lsn).contains("`06000028` is not a WAL location"),
            "{}",
            err(&bad_lsn)
        );
        let bad_timeline = LABEL.replace("TIMELINE: 1", "TIMELINE: one");
        assert!(err(&bad_timeline).contains("`one` is not a timeline number"));
        assert!(err("START WAL LOCATION:\nSTART TIMELINE: 1\n").contains("START WAL LOCATION"));
    }

    #[test]
    fn position_of_an_unpacked_backup() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", backup_position(dir.path()).unwrap_err());
        assert!(err.contains("backup_label: a base backup has one"), "{err}");

        std::fs::write(dir.path().join(BACKUP_LABEL), LABEL).unwrap();
        std::fs::create_dir(dir.path().join("global")).unwrap();
        let err = format!("{:#}", backup_position(dir.path()).unwrap_err());
        assert!(err.contains("cannot read"), "{err}");
        assert!(err.contains("global/pg_control"), "{err}");

        std::fs::write(dir.path().join(PG_CONTROL), [1, 2, 3]).unwrap();
        let err = format!("{:#}", backup_position(dir.path()).unwrap_err());
        assert!(err.contains("3 bytes long"), "{err}");

        let mut control = 7_713_370_355_988_132_031_u64.to_ne_bytes().to_vec();
        control.resize(8192, 0);
        std::fs::write(dir.path().join(PG_CONTROL), control).unwrap();
        let position = backup_position(dir.path()).unwrap();
        assert_eq!(
            position,
            Position::from([
                (START_LSN.to_owned(), "0/6000028".to_owned()),
                (TIMELINE.to_owned(), "1".to_owned()),
                (
                    SYSTEM_IDENTIFIER.to_owned(),
                    "7713370355988132031".to_owned()
                ),
            ])
        );

        std::fs::write(dir.path().join(BACKUP_LABEL), "garbage").unwrap();
        let err = format!("{:#}", backup_position(dir.path()).unwrap_err());
        assert!(err.contains("is not what pg_basebackup writes"), "{err}");
    }
}
