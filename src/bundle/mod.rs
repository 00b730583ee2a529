//! The replication bundle: a zip stream with `manifest.toml` first, then every file of a
//! backup directory, stored (not compressed) so the network and the disks set the pace.
//!
//! It is made to be streamed: `pack` writes it without seeking, `unpack` checks every file
//! against the manifest as it arrives, so neither side needs room for a second copy.
//!
//! Layout, all readable by `unzip`:
//! - `manifest.toml`, with its sizes and CRC in the local header (see `pack::manifest_entry`),
//!   so a reader can take it before it knows anything else;
//! - one entry per directory (`name/`), in manifest order;
//! - one stored entry per file, in manifest order. A stream writer cannot go back to fill in
//!   sizes, so each is followed by a data descriptor; the reader knows the size from the
//!   manifest and checks the descriptor's size and CRC-32 after the data, and the SHA-256;
//! - the central directory, which the reader only checks for being there and complete.

mod hash;
mod manifest;
mod pack;
mod target;
mod unpack;

#[cfg(test)]
mod tests;

use std::io::{Read, Write};
use std::path::Path;

pub use manifest::{FileEntry, Manifest, Position};

pub const MANIFEST_NAME: &str = "manifest.toml";
/// Written last into an unpacked directory, after every file was verified and fsynced: its
/// presence means complete.
pub const UNPACKED_MANIFEST: &str = "ha-setup-manifest.toml";

/// Reads and writes go in chunks this large: fewer system calls, and whole pipe buffers.
const CHUNK: usize = 1 << 20;

/// Who made the backup and where replication starts: what the manifest says besides files.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub engine: String,
    pub server_version: String,
    pub source_host: String,
    pub position: Position,
}

/// Hashes every file under `dir` (first pass, so the manifest can go first), then writes the
/// zip stream. Refuses symlinks and special files. A file that changed between the passes is
/// an error, and the stream then stops short, so the far side refuses it too.
/// `progress` gets the file bytes written so far.
pub fn pack(
    dir: &Path,
    source: Source,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Manifest> {
    pack::pack(dir, source, out, progress, zip::ZIP64_BYTES_THR)
}

/// Reads a bundle stream into `into` (created if missing; must be empty if it exists),
/// checking each file's size, CRC-32 and SHA-256 as it arrives; refuses entries not in the
/// manifest, missing ones, duplicates, paths that would leave `into`, and a truncated stream.
/// Files are fsynced; [`UNPACKED_MANIFEST`] is written last. On error whatever was written
/// stays: the caller owns `into` and removes it. `progress` gets the file bytes read so far.
pub fn unpack(
    input: &mut dyn Read,
    into: &Path,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Manifest> {
    unpack::read(input, Some(into), progress)
}

/// Reads a whole bundle stream and checks it, writing nothing.
pub fn verify(input: &mut dyn Read) -> anyhow::Result<Manifest> {
    unpack::read(input, None, &mut |_| {})
}

/// Reads only the manifest (the first entry) of a bundle stream. Reads ahead: the input is
/// not left at the end of the manifest.
pub fn read_manifest(input: &mut dyn Read) -> anyhow::Result<Manifest> {
    unpack::read_manifest(input)
}
