//! `manifest.toml`: what a bundle holds, checked before a single data byte is trusted.

use std::collections::HashSet;

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};

use super::{MANIFEST_NAME, UNPACKED_MANIFEST};

/// The only format this build reads and writes. A reader that meets another refuses it
/// instead of guessing, so a newer bundle never half-works with an older ha-setup.
///
/// 3: frames written as the backup tool streams, the manifest at the end. Formats 1 and 2
/// were zip files with the manifest first (made from a full copy on the primary's disk);
/// they are refused with the command that makes a new bundle.
pub const FORMAT: u32 = 3;

/// What to do with a bundle of an older format.
pub const OLDER: &str =
    "make a new bundle with this version: ha-setup bundle create -c FILE --out PATH";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// "mariadb" or "postgresql".
    pub engine: String,
    /// As the server reports it, e.g. "10.11.6-MariaDB-0+deb12u1".
    pub server_version: String,
    pub source_host: String,
    pub created_at: jiff::Timestamp,
    #[serde(default)]
    pub position: Position,
    /// Every directory, relative and '/'-separated, parents before children, empty ones too.
    #[serde(default)]
    pub dirs: Vec<String>,
    /// In the order they ended in the stream.
    #[serde(default)]
    pub files: Vec<FileEntry>,
}

/// Where replication starts from, as the backup recorded it, in the engine's own terms
/// (MariaDB: `gtid`, `binlog_file`, `binlog_pos`; PostgreSQL: its start LSN, timeline and
/// system identifier). Empty when the backup recorded none (no binary log).
pub type Position = std::collections::BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative, '/'-separated.
    pub path: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// Permission bits only (e.g. 0o640); owners are the receiving side's business.
    #[serde(with = "octal")]
    pub mode: u32,
}

/// Modes as people write them, `"0640"`, not as the integer 416.
mod octal {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(mode: &u32, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{mode:04o}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        let text = String::deserialize(deserializer)?;
        u32::from_str_radix(&text, 8)
            .map_err(|_| D::Error::custom(format!("`{text}` is not an octal file mode")))
    }
}

impl Manifest {
    /// The bytes of all files: what a progress bar counts to.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }

    pub fn to_toml(&self) -> String {
        // Only strings, integers and tables: serialising cannot fail.
        toml::to_string(self).expect("a manifest always serialises to TOML")
    }

    /// Parses and checks a manifest: a path that could land outside the target directory,
    /// or a bundle from a newer ha-setup, is refused here, before anything is written.
    pub fn from_toml(text: &str) -> anyhow::Result<Manifest> {
        let manifest: Manifest = toml::from_str(text).context("manifest.toml is not valid")?;
        manifest.check().context("manifest.toml is not valid")?;
        Ok(manifest)
    }

    fn check(&self) -> anyhow::Result<()> {
        ensure!(
            self.format == FORMAT,
            "bundle format {} is not supported by this ha-setup (it knows format {FORMAT}); {}",
            self.format,
            if self.format < FORMAT {
                OLDER
            } else {
                "use the ha-setup version that made the bundle"
            }
        );
        let mut seen = HashSet::new();
        for dir in &self.dirs {
            check_path(dir).with_context(|| format!("directory `{dir}`"))?;
            ensure!(seen.insert(dir.as_str()), "`{dir}` is listed twice");
        }
        for file in &self.files {
            check_path(&file.path).with_context(|| format!("file `{}`", file.path))?;
            ensure!(
                seen.insert(file.path.as_str()),
                "`{}` is listed twice",
                file.path
            );
            ensure!(
                file.sha256.len() == 64
                    && file
                        .sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "`{}`: sha256 must be 64 lower-case hex digits, not `{}`",
                file.path,
                file.sha256
            );
            ensure!(
                file.mode <= 0o7777,
                "`{}`: mode {:o} has more than permission bits",
                file.path,
                file.mode
            );
        }
        Ok(())
    }
}

/// A bundle path must stay inside the directory it is unpacked into, whatever the reader:
/// relative, '/'-separated, no `.`/`..`/empty components, no backslash, and not one of the
/// names the bundle itself uses.
pub(crate) fn check_path(path: &str) -> anyhow::Result<()> {
    if path.is_empty() {
        bail!("the path is empty");
    }
    if path.starts_with('/') {
        bail!("the path is absolute");
    }
    if path.contains('\0') {
        bail!("the path contains a NUL byte");
    }
    // Windows takes it for a separator; no database names a file with one.
    if path.contains('\\') {
        bail!("the path contains a backslash");
    }
    for part in path.split('/') {
        match part {
            "" => bail!("the path has an empty component (`//` or a trailing `/`)"),
            "." | ".." => bail!("the path has a `{part}` component"),
            _ => {}
        }
    }
    if path == MANIFEST_NAME || path == UNPACKED_MANIFEST {
        bail!("`{path}` is a name the bundle itself uses");
    }
    Ok(())
}
