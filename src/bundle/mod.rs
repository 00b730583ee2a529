//! The replication bundle, format 3: a stream of frames written while the backup tool
//! produces its files, each file's size and SHA-256 computed on the way and checked on
//! arrival, and the manifest at the end. Nothing waits for the whole backup: the primary
//! keeps no copy, and the replica writes each chunk as it comes.
//!
//! Layout (integers little-endian, paths as a u16 length and UTF-8 bytes):
//! - header: `HA-SETUP BUNDLE\n` (16 bytes), then the format number (u32);
//! - `C`, a chunk of a file: path, offset (u64), length (u32), the bytes. A file's chunks come
//!   in order; files may interleave (a backup tool copies several at once, and the redo log
//!   alongside them). A gap before an offset is a hole of zeros;
//! - `E`, the end of a file: path, size (u64), SHA-256 (32 bytes), permission bits (u32). The
//!   reader checks it at once, so a damaged file is named when it arrives;
//! - `c`, a chunk compressed with zstd (`[transfer] compress`): path, offset, length as it
//!   is (u32), length compressed (u32), the zstd frame;
//! - `D`, a directory (needed only for an empty one): path, permission bits;
//! - `M`, the manifest: a u32 length and `manifest.toml` (engine, versions, start position,
//!   every file with its size and digest, in the order the files ended);
//! - `Z`, the end: the CRC-32 of every byte before it (its own tag included: damage to the
//!   framing; the files have their SHA-256), then the offset of `M` (u64), so that `inspect`
//!   finds the manifest without reading the data.
//!
//! Nothing may follow `Z`. A stream with no complete `M` and `Z` is cut short, and is never
//! used: the unpacked directory's completion marker is written only after `Z` checked.

mod frame;
mod manifest;
mod pack;
mod target;
mod unpack;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::Read;
use std::path::Path;

pub use frame::{Compress, Writer};
pub use manifest::{FileEntry, Manifest, Position};

/// The name the manifest has where it is kept on its own (`inspect --format json` prints it).
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

/// Streams every file under `dir` as a bundle (one pass: each file is hashed as it is
/// sent). Refuses symlinks and special files; a file that grows or shrinks while it is read
/// is an error, and the stream then stops short, so the far side refuses it too.
/// `progress` gets the file bytes written so far.
pub fn pack(
    dir: &Path,
    source: Source,
    out: &mut dyn std::io::Write,
    compress: Compress,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Manifest> {
    pack::pack(dir, source, out, compress, progress)
}

/// Reads a bundle stream into `into` (created if missing; must be empty if it exists),
/// checking each file's size and SHA-256 as it ends; refuses files the manifest does not
/// list or lists differently, a file sent twice, paths that would leave `into`, and a
/// stream cut short. Files are fsynced; [`UNPACKED_MANIFEST`] is written last. On error
/// whatever was written stays: the caller owns `into` and removes it. `progress` gets the
/// file bytes read so far.
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

/// [`read_manifest`] of the bundle file at `path`, the path named in its errors.
pub fn read_manifest_file(path: &Path) -> anyhow::Result<Manifest> {
    use anyhow::Context;
    let mut file =
        File::open(path).with_context(|| format!("cannot open the bundle {}", path.display()))?;
    read_manifest(&mut file)
        .with_context(|| format!("{} is not a readable ha-setup bundle", path.display()))
}

/// Reads only the manifest of a bundle file: from its end, which says where the manifest
/// is. The data is not checked (that is `verify`).
pub fn read_manifest(file: &mut File) -> anyhow::Result<Manifest> {
    unpack::read_manifest(file)
}
