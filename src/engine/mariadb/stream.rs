//! The seed as a stream: mariadb-backup's hot backup (`--stream=xbstream`) turned into a
//! bundle while it runs, on the primary, by the hidden `ha-setup bundle stream`. Nothing
//! is kept on the primary's disk but what mariadb-backup itself keeps in its temporary
//! directory.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::position::{BINLOG_INFO, parse_binlog_info};
use super::xbstream::{Chunk, Reader};
use crate::bundle::{Compress, Manifest, Source, Writer};

/// mariadb-backup's copy threads. One: the stream is bound by hashing and the network, not
/// by reading, and a second thread only took CPU from them (docs/BENCHMARKS.md).
const PARALLEL: u32 = 1;
/// The mode files get on the replica, where they belong to mysql once in place.
const FILE_MODE: u32 = 0o640;
/// The lines of mariadb-backup's log an error quotes.
const LOG_TAIL: usize = 12;

pub fn stream_backup(
    source: Source,
    work: &Path,
    out: &mut dyn Write,
    compress: Compress,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Manifest> {
    let log_path = work.join("mariadb-backup.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut child = Command::new("mariadb-backup")
        .args(["--backup", "--stream=xbstream", "--user=root"])
        .arg(format!("--tmpdir={}", work.display()))
        .arg(format!("--parallel={PARALLEL}"))
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context(
            "cannot start mariadb-backup: install it on this host (apt-get install \
             mariadb-backup, the same version as the server)",
        )?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut writer = Writer::new(out, compress)?.with_progress(progress);
    let copied = copy(stdout, &mut writer);
    if copied.is_err() {
        // The far side is gone, or the stream is damaged: mariadb-backup must not go on
        // holding its backup locks on the primary.
        let _ = child.kill();
    }
    let status = child.wait().context("cannot wait for mariadb-backup")?;
    let info = copied?;
    if !status.success() {
        bail!(
            "mariadb-backup failed ({status}); the bundle was cut short, so no replica will \
             use it. Its last lines:\n{}",
            tail(&log_path)
        );
    }
    let position = BINLOG_INFO
        .iter()
        .find_map(|name| info.get(*name))
        .map(|text| parse_binlog_info(&String::from_utf8_lossy(text)))
        .transpose()
        .context("the start position mariadb-backup recorded is not readable")?
        .unwrap_or_default();
    writer.finish(Source { position, ..source })
}

/// Every chunk into the bundle; returns the files that record the start position.
fn copy(stdout: impl Read, writer: &mut Writer<'_>) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut reader = Reader::new(std::io::BufReader::with_capacity(1 << 20, stdout));
    let mut info = BTreeMap::new();
    while let Some(chunk) = reader.next_chunk()? {
        match chunk {
            Chunk::Payload { path, offset, data } => {
                if BINLOG_INFO.contains(&path) {
                    let kept: &mut Vec<u8> = info.entry(path.to_owned()).or_default();
                    kept.extend_from_slice(data);
                }
                writer.chunk(path, offset, data)?;
            }
            Chunk::End { path } => {
                writer.end(path, FILE_MODE)?;
            }
        }
    }
    Ok(info)
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}
