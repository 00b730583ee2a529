//! Making a bundle: list and hash every file (the manifest must go first), then stream.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use walkdir::WalkDir;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, PreparedZipFile, System, ZipWriter};

use super::manifest::{FORMAT, check_path};
use super::{CHUNK, FileEntry, MANIFEST_NAME, Manifest, Source, hash};

/// Files of at least `zip64_from` bytes get ZIP64 headers (the real limit is 4 GiB; tests
/// lower it to reach that code with small files).
pub(super) fn pack(
    dir: &Path,
    source: Source,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
    zip64_from: u64,
) -> anyhow::Result<Manifest> {
    let tree = scan(dir)?;
    let listed: Vec<(&str, u64)> = tree
        .files
        .iter()
        .map(|file| (file.path.as_str(), file.len))
        .collect();
    let hashed = hash::hash_all(dir, &listed)?;
    let crcs: Vec<u32> = hashed.iter().map(|one| one.crc).collect();
    let files = tree
        .files
        .iter()
        .zip(hashed)
        .map(|(file, one)| FileEntry {
            path: file.path.clone(),
            size: one.size,
            sha256: one.sha256,
            mode: file.mode,
        })
        .collect();
    let manifest = Manifest {
        format: FORMAT,
        engine: source.engine,
        server_version: source.server_version,
        source_host: source.source_host,
        // Whole seconds: the zip timestamps cannot hold more, and people read this one.
        created_at: jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())?,
        position: source.position,
        dirs: tree.dirs.iter().map(|(path, _)| path.clone()).collect(),
        files,
    };

    let open = Cell::new(true);
    let gate = Gate {
        out: BufWriter::with_capacity(CHUNK, out),
        open: &open,
    };
    let mut zip = ZipWriter::new_stream(gate);
    let mut buf = vec![0; CHUNK];
    let stream = Stream {
        dir,
        manifest: &manifest,
        crcs: &crcs,
        time: zip_time(manifest.created_at),
        zip64_from,
    };
    if let Err(err) = stream.entries(&mut zip, &tree.dirs, &mut buf, progress) {
        // Dropping the writer finishes the archive; the far side must see a stream cut short
        // instead, not a well-formed bundle with a bad file in it.
        open.set(false);
        return Err(err);
    }
    let mut gate = zip
        .finish()
        .context("cannot finish the bundle's zip directory")?
        .into_inner();
    gate.out.flush().context("cannot write the bundle")?;
    Ok(manifest)
}

struct Tree {
    /// With their permission bits, for `unzip` users.
    dirs: Vec<(String, u32)>,
    files: Vec<Listed>,
}

struct Listed {
    path: String,
    /// Permission bits.
    mode: u32,
    len: u64,
}

/// Lists `dir` in a stable order, refusing what a database backup never holds and a bundle
/// could not restore faithfully.
fn scan(dir: &Path) -> anyhow::Result<Tree> {
    let meta = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut tree = Tree {
        dirs: Vec::new(),
        files: Vec::new(),
    };
    let walk = WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for entry in walk {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let full = entry.path();
        let path = relative(dir, full)?;
        check_path(&path).with_context(|| format!("cannot pack {}", full.display()))?;
        let kind = entry.file_type();
        let meta = || {
            entry
                .metadata()
                .with_context(|| format!("cannot read {}", full.display()))
        };
        if kind.is_dir() {
            tree.dirs
                .push((path, meta()?.permissions().mode() & 0o7777));
        } else if kind.is_file() {
            let meta = meta()?;
            tree.files.push(Listed {
                path,
                mode: meta.permissions().mode() & 0o7777,
                len: meta.len(),
            });
        } else if kind.is_symlink() {
            let target = std::fs::read_link(full).unwrap_or_default();
            bail!(
                "{} is a symbolic link (to {}): a bundle holds only regular files and \
                 directories; replace it with what it points to, or take it out of the backup",
                full.display(),
                target.display()
            );
        } else {
            bail!(
                "{} is not a regular file or directory (a socket, pipe or device): a bundle \
                 cannot hold it; take it out of the backup",
                full.display()
            );
        }
    }
    Ok(tree)
}

fn relative(dir: &Path, full: &Path) -> anyhow::Result<String> {
    let rel = full
        .strip_prefix(dir)
        .with_context(|| format!("{} is not under {}", full.display(), dir.display()))?;
    let parts: Option<Vec<&str>> = rel.iter().map(|part| part.to_str()).collect();
    match parts {
        Some(parts) => Ok(parts.join("/")),
        None => bail!(
            "{}: the name is not UTF-8, which a bundle's manifest cannot name; rename it",
            full.display()
        ),
    }
}

/// The second pass: the zip entries, every file read again and checked against what the
/// first pass found.
struct Stream<'a> {
    dir: &'a Path,
    manifest: &'a Manifest,
    /// Of each file in the first pass, in manifest order.
    crcs: &'a [u32],
    time: DateTime,
    zip64_from: u64,
}

impl Stream<'_> {
    fn entries<W: Write>(
        &self,
        zip: &mut ZipWriter<zip::write::StreamWriter<W>>,
        dirs: &[(String, u32)],
        buf: &mut [u8],
        progress: &mut dyn FnMut(u64),
    ) -> anyhow::Result<()> {
        let manifest = self.manifest.to_toml();
        zip.add_prepared_file(manifest_entry(manifest.as_bytes(), self.time)?)
            .context("cannot write the bundle's manifest")?;
        for (path, mode) in dirs {
            let options = SimpleFileOptions::default()
                .unix_permissions(*mode)
                .last_modified_time(self.time);
            zip.add_directory(format!("{path}/"), options)
                .with_context(|| format!("cannot write the bundle entry for `{path}/`"))?;
        }
        let mut written = 0;
        for (entry, &crc) in self.manifest.files.iter().zip(self.crcs) {
            let full = self.dir.join(&entry.path);
            let mut file =
                File::open(&full).with_context(|| format!("cannot read {}", full.display()))?;
            let options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Stored)
                .unix_permissions(entry.mode)
                .last_modified_time(self.time)
                .large_file(entry.size >= self.zip64_from);
            zip.start_file(entry.path.as_str(), options)
                .with_context(|| format!("cannot write the bundle entry for `{}`", entry.path))?;
            let mut hasher = crc32fast::Hasher::new();
            let mut left = entry.size;
            while left > 0 {
                let want = usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len()));
                let n = file
                    .read(&mut buf[..want])
                    .with_context(|| format!("cannot read {}", full.display()))?;
                if n == 0 {
                    return Err(changed(&full, "it got shorter"));
                }
                hasher.update(&buf[..n]);
                zip.write_all(&buf[..n])
                    .context("cannot write the bundle")?;
                left -= n as u64;
                written += n as u64;
                progress(written);
            }
            if file.read(&mut buf[..1]).unwrap_or(0) != 0 {
                return Err(changed(&full, "it got longer"));
            }
            if hasher.finalize() != crc {
                return Err(changed(&full, "its content changed"));
            }
        }
        Ok(())
    }
}

fn changed(path: &Path, how: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{} changed while the bundle was being made ({how} since it was first read): \
         something is still writing to the backup directory; make the backup again",
        path.display()
    )
}

/// The manifest entry, with its sizes and CRC in the local header, so that a stream reader
/// can take it without knowing its size first. The zip writer puts a data descriptor after
/// every entry whose Unix mode it knows, since it cannot rewind a stream; an entry that is
/// complete in advance (a prepared file) and has no mode (MS-DOS origin, no attributes)
/// gets a plain header instead. `unzip` extracts it with the default permissions.
pub(super) fn manifest_entry(text: &[u8], time: DateTime) -> anyhow::Result<PreparedZipFile> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(time)
        .system(System::Dos)
        .external_attributes(0);
    PreparedZipFile::from_data(MANIFEST_NAME, options, text)
        .context("cannot write the bundle's manifest")
}

/// The manifest's creation time as a zip timestamp (UTC, whole seconds, from 1980).
fn zip_time(at: jiff::Timestamp) -> DateTime {
    let at = at.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let narrow = |n: i8| u8::try_from(n).unwrap_or(0);
    u16::try_from(at.year())
        .ok()
        .and_then(|year| {
            DateTime::from_date_and_time(
                year,
                narrow(at.month()),
                narrow(at.day()),
                narrow(at.hour()),
                narrow(at.minute()),
                narrow(at.second()),
            )
            .ok()
        })
        .unwrap_or_default()
}

/// Passes writes through until closed, then swallows them: after an error, whatever the zip
/// writer still wants to write (it finishes the archive when dropped) must not go out.
struct Gate<'a, W: Write> {
    out: W,
    open: &'a Cell<bool>,
}

impl<W: Write> Write for Gate<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.open.get() {
            self.out.write(buf)
        } else {
            Ok(buf.len())
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.open.get() {
            self.out.flush()
        } else {
            Ok(())
        }
    }
}
