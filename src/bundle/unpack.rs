//! Reading a bundle stream: the manifest first, then every entry checked against it as it
//! arrives, in the manifest's order, which is what lets a stream reader know each stored
//! entry's size before its data.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, BufReader, Read};
use std::path::Path;

use anyhow::{Context, anyhow, bail, ensure};
use sha2::{Digest, Sha256};
use zip::read::{ZipFile, read_zipfile_from_stream_with_options};
use zip::result::ZipError;
use zip::{CompressionMethod, ExtraField, ZipReadOptions};

use super::target::{Target, TargetFile};
use super::{CHUNK, FileEntry, MANIFEST_NAME, Manifest};

/// Far more than any real manifest (about 200 bytes a file), small enough to hold in memory.
const MAX_MANIFEST: u64 = 256 << 20;

pub(super) fn read_manifest(input: &mut dyn Read) -> anyhow::Result<Manifest> {
    manifest_entry(&mut BufReader::with_capacity(CHUNK, input))
}

/// Unpacks into `into`, or only checks when there is none.
pub(super) fn read(
    input: &mut dyn Read,
    into: Option<&Path>,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Manifest> {
    let blown = Cell::new(false);
    let mut input = Fuse {
        inner: BufReader::with_capacity(CHUNK, input),
        blown: &blown,
    };
    let manifest = manifest_entry(&mut input)?;
    let target = match into {
        Some(into) => Some(Target::create(into)?),
        None => None,
    };
    let mut entries = Entries {
        target: target.as_ref(),
        buf: vec![0; CHUNK],
        bytes: 0,
        progress,
    };
    let order = Order::of(&manifest);
    entries.all(&order, &mut input, &blown)?;
    tail(&mut input, order.names.len())?;
    if let Some(target) = target {
        target.finish(&manifest)?;
    }
    Ok(manifest)
}

fn manifest_entry<R: Read>(input: &mut R) -> anyhow::Result<Manifest> {
    let mut entry = match read_zipfile_from_stream_with_options(input, ZipReadOptions::new()) {
        Ok(Some(entry)) => entry,
        Ok(None) => bail!("not a bundle: the zip archive is empty"),
        Err(err) if is_eof(&err) => {
            bail!("not a bundle: the stream ended before the manifest (empty or truncated)")
        }
        Err(err) => {
            return Err(anyhow!(err).context(
                "not a bundle, or truncated: it does not start with a complete zip entry",
            ));
        }
    };
    if entry.name_raw() != MANIFEST_NAME.as_bytes() {
        bail!(
            "not a bundle made by ha-setup: its first entry is `{}`, not `{MANIFEST_NAME}`",
            String::from_utf8_lossy(entry.name_raw())
        );
    }
    ensure!(
        entry.size() <= MAX_MANIFEST,
        "not a bundle made by ha-setup: its manifest is {} bytes long",
        entry.size()
    );
    let mut text = String::new();
    (&mut entry)
        .take(MAX_MANIFEST)
        .read_to_string(&mut text)
        .context("cannot read the bundle's manifest.toml: the bundle is truncated or damaged")?;
    Manifest::from_toml(&text)
}

/// What the manifest says of an entry.
#[derive(Clone, Copy)]
enum Expected<'a> {
    Dir,
    File(&'a FileEntry),
}

/// The entries after the manifest, in stream order, by zip name.
struct Order<'a> {
    manifest: &'a Manifest,
    names: Vec<(String, Expected<'a>)>,
    position: HashMap<String, usize>,
}

impl<'a> Order<'a> {
    fn of(manifest: &'a Manifest) -> Self {
        let dirs = manifest
            .dirs
            .iter()
            .map(|dir| (format!("{dir}/"), Expected::Dir));
        let files = manifest
            .files
            .iter()
            .map(|file| (file.path.clone(), Expected::File(file)));
        let names: Vec<_> = dirs.chain(files).collect();
        let position = names
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), i))
            .collect();
        Order {
            manifest,
            names,
            position,
        }
    }

    /// The entry named `name` must be the one the manifest lists next.
    fn check(&self, next: usize, name: &str) -> anyhow::Result<Expected<'a>> {
        let at = self.position.get(name).copied();
        let Some((expected_name, expected)) = self.names.get(next) else {
            bail!("{}", unexpected(name, at));
        };
        if name != expected_name {
            match at {
                Some(at) if at > next => bail!(
                    "`{expected_name}` is missing from the bundle (`{name}` came in its place)"
                ),
                _ => bail!("{}", unexpected(name, at)),
            }
        }
        Ok(*expected)
    }

    fn truncated_before(&self, next: usize) -> String {
        let files = self.manifest.files.len();
        let arrived = next.saturating_sub(self.manifest.dirs.len()).min(files);
        match self.names.get(next) {
            Some((name, _)) => format!(
                "the bundle is truncated: the stream ended after {arrived} of {files} files, \
                 before `{name}`"
            ),
            None => "the bundle is truncated: the stream ended after the last file, before \
                     the zip directory"
                .to_owned(),
        }
    }

    fn damaged_after(&self, next: usize) -> String {
        match next.checked_sub(1).and_then(|i| self.names.get(i)) {
            Some((name, _)) => format!("the bundle is truncated or damaged after `{name}`"),
            None => "the bundle is truncated or damaged after its manifest".to_owned(),
        }
    }
}

fn unexpected(name: &str, at: Option<usize>) -> String {
    match at {
        Some(_) => format!("`{name}` appears twice in the bundle"),
        None if name == MANIFEST_NAME => "the bundle has a second manifest".to_owned(),
        None => format!("`{name}` is in the bundle but not in its manifest"),
    }
}

struct Entries<'a, 'p> {
    target: Option<&'a Target>,
    buf: Vec<u8>,
    /// File bytes so far, for `progress`.
    bytes: u64,
    progress: &'p mut dyn FnMut(u64),
}

impl<'a> Entries<'a, '_> {
    fn all<R: Read>(
        &mut self,
        order: &Order<'_>,
        input: &mut R,
        blown: &Cell<bool>,
    ) -> anyhow::Result<()> {
        for next in 0.. {
            let expected = order.names.get(next);
            // Stored entries written to a stream have their size only after the data; the
            // manifest has it before. A directory's header has it, and ignores this.
            let size = match expected {
                Some((_, Expected::File(file))) => file.size,
                _ => 0,
            };
            let options = ZipReadOptions::new()
                .override_compressed_size(size)
                // Checked here instead, against the data descriptor the zip reader skips.
                .ignore_crc32(true);
            let mut entry = match read_zipfile_from_stream_with_options(input, options) {
                Ok(Some(entry)) => entry,
                Ok(None) => match expected {
                    None => return Ok(()),
                    Some((name, _)) => match order.names.len() - next - 1 {
                        0 => bail!("the bundle is incomplete: it ends without `{name}`"),
                        more => bail!(
                            "the bundle is incomplete: it ends without `{name}` and {more} \
                             more entries of its manifest"
                        ),
                    },
                },
                Err(err) if is_eof(&err) => bail!("{}", order.truncated_before(next)),
                Err(err) => return Err(anyhow!(err).context(order.damaged_after(next))),
            };
            let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            let result = order
                .check(next, &name)
                .and_then(|expected| match expected {
                    Expected::Dir => self.dir(&entry, &name),
                    Expected::File(file) => self.file(&mut entry, file),
                });
            // The entry drains its data when dropped; after an error, stop reading instead.
            blown.set(result.is_err());
            drop(entry);
            if let Some(done) = result? {
                done.finish(input)?;
            }
        }
        unreachable!("the loop returns")
    }

    fn dir<R: Read>(&self, entry: &ZipFile<'_, R>, name: &str) -> anyhow::Result<Option<Done<'a>>> {
        ensure!(
            entry.is_dir() && entry.compressed_size() == 0,
            "`{name}` should be a directory but the bundle has data for it"
        );
        if let Some(target) = self.target {
            target.dir(name.trim_end_matches('/'))?;
        }
        Ok(None)
    }

    /// Copies one file's data, hashing it; what is left to check comes after the data.
    fn file<R: Read>(
        &mut self,
        entry: &mut ZipFile<'_, R>,
        expected: &FileEntry,
    ) -> anyhow::Result<Option<Done<'a>>> {
        let path = &expected.path;
        ensure!(
            entry.compression() == CompressionMethod::Stored && !entry.encrypted(),
            "`{path}` is compressed or encrypted in the bundle; ha-setup writes neither"
        );
        let descriptor = entry.flags().is_using_data_descriptor();
        // Without a data descriptor the header has the size and the CRC.
        let header = (!descriptor).then(|| (entry.crc32(), entry.compressed_size()));
        if let Some((_, size)) = header {
            ensure!(
                size == expected.size,
                "`{path}` holds {size} bytes in the bundle but {} in its manifest",
                expected.size
            );
        }
        let zip64 = entry
            .extra_data_fields()
            .any(|field| matches!(field, ExtraField::Zip64ExtendedInformation(_)));
        let mut out = match self.target {
            Some(target) => Some(target.file(expected)?),
            None => None,
        };
        let mut sha256 = Sha256::new();
        let mut crc = crc32fast::Hasher::new();
        let mut got = 0;
        loop {
            let n = read_full(entry, &mut self.buf).map_err(|err| {
                anyhow!(err).context(format!(
                    "the bundle is damaged inside `{path}` after {got} bytes"
                ))
            })?;
            if n == 0 {
                break;
            }
            let data = &self.buf[..n];
            sha256.update(data);
            crc.update(data);
            if let Some(out) = &mut out {
                out.write(data)?;
            }
            got += n as u64;
            self.bytes += n as u64;
            (self.progress)(self.bytes);
        }
        ensure!(
            got == expected.size,
            "the bundle is truncated: the stream ended inside `{path}` after {got} of {} bytes",
            expected.size
        );
        Ok(Some(Done {
            expected: expected.clone(),
            sha256: hex::encode(sha256.finalize()),
            crc: crc.finalize(),
            descriptor: descriptor.then_some(zip64),
            header,
            out,
        }))
    }
}

/// A file whose data has all arrived: the checks that need the bytes after it.
struct Done<'a> {
    expected: FileEntry,
    sha256: String,
    crc: u32,
    /// Whether a data descriptor follows, and whether it is the ZIP64 kind.
    descriptor: Option<bool>,
    header: Option<(u32, u64)>,
    out: Option<TargetFile<'a>>,
}

impl Done<'_> {
    fn finish<R: Read>(self, input: &mut R) -> anyhow::Result<()> {
        let path = &self.expected.path;
        let (crc, size) = match self.descriptor {
            Some(zip64) => read_descriptor(input, zip64).map_err(|err| {
                anyhow!(err).context(format!(
                    "the bundle is truncated or damaged right after the data of `{path}`"
                ))
            })?,
            None => self.header.unwrap_or_default(),
        };
        ensure!(
            self.sha256 == self.expected.sha256,
            "`{path}` does not match the manifest: SHA-256 {} expected {}",
            self.sha256,
            self.expected.sha256
        );
        ensure!(
            crc == self.crc,
            "`{path}` does not match its zip checksum: CRC-32 {:08x} expected {crc:08x}",
            self.crc
        );
        ensure!(
            size == self.expected.size,
            "`{path}`: the zip entry says {size} bytes, the manifest {}",
            self.expected.size
        );
        if let Some(out) = self.out {
            out.finish()?;
        }
        Ok(())
    }
}

/// The data descriptor after a streamed entry: signature, CRC-32, then both sizes, 4 bytes
/// each or, for ZIP64, 8.
fn read_descriptor<R: Read>(input: &mut R, zip64: bool) -> io::Result<(u32, u64)> {
    const SIGNATURE: [u8; 4] = *b"PK\x07\x08";
    let mut bytes = [0; 24];
    let bytes = &mut bytes[..if zip64 { 24 } else { 16 }];
    input.read_exact(bytes)?;
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if bytes[..4] != SIGNATURE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no data descriptor where one belongs",
        ));
    }
    let (compressed, uncompressed) = if zip64 {
        let long = |at: usize| u64::from(word(at)) | (u64::from(word(at + 4)) << 32);
        (long(8), long(16))
    } else {
        (u64::from(word(8)), u64::from(word(12)))
    };
    if compressed != uncompressed {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a stored entry's two sizes differ",
        ));
    }
    Ok((word(4), uncompressed))
}

/// After the last entry: the rest of the zip directory, which must end in a complete
/// end-of-directory record counting every entry. Only a stream that was finished has one.
fn tail<R: Read>(input: &mut R, entries: usize) -> anyhow::Result<()> {
    const END: [u8; 4] = *b"PK\x05\x06";
    const END_LEN: usize = 22;
    let mut last = Vec::with_capacity(2 * CHUNK);
    let mut buf = vec![0; CHUNK];
    loop {
        let n = input
            .read(&mut buf)
            .context("cannot read the bundle's zip directory")?;
        if n == 0 {
            break;
        }
        last.extend_from_slice(&buf[..n]);
        let keep = last.len().saturating_sub(END_LEN);
        last.drain(..keep);
    }
    // Past 65535 entries the count lives in the ZIP64 record and this one says 0xffff.
    let count = u16::try_from(entries + 1).unwrap_or(u16::MAX);
    let complete = last.len() == END_LEN
        && last[..4] == END
        && last[10..12] == count.to_le_bytes()
        && last[20..22] == [0, 0];
    ensure!(
        complete,
        "the bundle is truncated: every file arrived, but its zip directory is incomplete"
    );
    Ok(())
}

/// Reads until `buf` is full or the entry ends: pipes deliver 64 KiB at a time, and whole
/// chunks make fewer, larger writes.
fn read_full<R: Read>(entry: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match entry.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

fn is_eof(err: &ZipError) -> bool {
    matches!(err, ZipError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof)
}

/// Reads through until blown, then reports the end: a zip entry dropped after an error
/// would otherwise read the rest of its data, gigabytes perhaps, before the error is seen.
struct Fuse<'a, R> {
    inner: R,
    blown: &'a Cell<bool>,
}

impl<R: Read> Read for Fuse<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.blown.get() {
            Ok(0)
        } else {
            self.inner.read(buf)
        }
    }
}
