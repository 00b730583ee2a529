//! The frames of a bundle stream (see the module's layout), and the writer that makes them
//! from whatever produces the files: a directory walk, or a backup tool's own stream.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use sha2::{Digest, Sha256};

use super::manifest::{FORMAT, check_path};
use super::{CHUNK, FileEntry, Manifest, Source};

pub(super) const MAGIC: &[u8; 16] = b"HA-SETUP BUNDLE\n";
pub(super) const CHUNK_TAG: u8 = b'C';
pub(super) const ZSTD_CHUNK_TAG: u8 = b'c';
pub(super) const END_TAG: u8 = b'E';
pub(super) const DIR_TAG: u8 = b'D';
pub(super) const MANIFEST_TAG: u8 = b'M';
pub(super) const FINAL_TAG: u8 = b'Z';
/// The `Z` frame: its tag, the stream's CRC-32, the manifest's offset.
pub(super) const FINAL_LEN: u64 = 1 + 4 + 8;
/// A chunk's data is at most this long: a reader may bound what it trusts by it.
pub(super) const MAX_CHUNK: u32 = 64 << 20;
/// Far more than any real manifest (about 200 bytes a file), small enough to hold in memory.
pub(super) const MAX_MANIFEST: u32 = 256 << 20;
/// More files open at once than any backup tool keeps (mariadb-backup: its parallel
/// threads and the redo log).
pub(super) const MAX_OPEN: usize = 1024;
/// Zeros hashed for a hole, a piece at a time.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// zstd's level for chunks: its fastest levels; a link slow enough to want compression is
/// far slower than this.
const ZSTD_LEVEL: i32 = 1;
/// `auto` judges the link over windows of this many bytes of file data.
const WINDOW: u64 = 32 << 20;
/// A chunk that zstd shrinks by less than this share goes as it is (already compressed
/// pages, random data).
const WORTH: f64 = 0.95;

/// Whether the chunks of a bundle are compressed on the way (`[transfer] compress`,
/// `bundle stream --compress`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Compress {
    /// Never.
    None,
    /// Every chunk that zstd shrinks.
    Zstd,
    /// Only while the link is slower than the compressor: when writing the bundle spends
    /// most of its time waiting for the output to drain, compression starts, and stops
    /// again if it does not carry more data per second. Never on a fast LAN.
    #[default]
    Auto,
}

impl Compress {
    pub fn name(self) -> &'static str {
        match self {
            Compress::None => "none",
            Compress::Zstd => "zstd",
            Compress::Auto => "auto",
        }
    }
}

/// Writes a bundle: `chunk` and `end` as the files come, `finish` with where they came from.
/// Dropped without `finish`, the stream stays cut short, and every reader refuses it.
pub struct Writer<'a> {
    out: Counting<BufWriter<&'a mut dyn Write>>,
    open: HashMap<String, Open>,
    ended: HashSet<String>,
    files: Vec<FileEntry>,
    dirs: BTreeMap<String, u32>,
    data: u64,
    compress: Compress,
    judge: Judge,
    packed: Vec<u8>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    progress: Option<&'a mut dyn FnMut(u64)>,
}

/// What `auto` measures: per window, the time spent waiting on the output and the rate.
struct Judge {
    compressing: bool,
    start: Instant,
    bytes: u64,
    blocked: Duration,
    /// The rate of file data without compression, when compression was turned on.
    plain_rate: f64,
    /// Compression did not help: no new try before this much more data.
    retry_after: u64,
}

impl Judge {
    fn new(now: Instant) -> Judge {
        Judge {
            compressing: false,
            start: now,
            bytes: 0,
            blocked: Duration::ZERO,
            plain_rate: 0.0,
            retry_after: 0,
        }
    }

    /// After `bytes` more of file data, `blocked` of it waiting on the output, at `now`
    /// (given, so that the judgement can be tested without a clock).
    fn saw(&mut self, bytes: u64, blocked: Duration, total: u64, now: Instant) {
        self.bytes += bytes;
        self.blocked += blocked;
        if self.bytes < WINDOW {
            return;
        }
        let elapsed = now.duration_since(self.start).as_secs_f64().max(1e-6);
        let rate = self.bytes as f64 / elapsed;
        let waiting = self.blocked.as_secs_f64() / elapsed;
        if !self.compressing && waiting > 0.5 && total >= self.retry_after {
            self.compressing = true;
            self.plain_rate = rate;
        } else if self.compressing && rate < self.plain_rate {
            self.compressing = false;
            self.retry_after = total + 32 * WINDOW;
        }
        self.bytes = 0;
        self.blocked = Duration::ZERO;
        self.start = now;
    }
}

struct Open {
    size: u64,
    sha: Sha256,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut dyn Write, compress: Compress) -> anyhow::Result<Writer<'a>> {
        let mut out = Counting::new(BufWriter::with_capacity(CHUNK, out));
        out.put(MAGIC)?;
        out.put(&FORMAT.to_le_bytes())?;
        Ok(Writer {
            out,
            open: HashMap::new(),
            ended: HashSet::new(),
            files: Vec::new(),
            dirs: BTreeMap::new(),
            data: 0,
            compress,
            judge: Judge::new(Instant::now()),
            packed: Vec::new(),
            compressor: None,
            progress: None,
        })
    }

    /// `progress` gets the file bytes written so far, after each chunk.
    pub fn with_progress(mut self, progress: &'a mut dyn FnMut(u64)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The file bytes written so far.
    pub fn data_bytes(&self) -> u64 {
        self.data
    }

    /// The next piece of `path`, at `offset`: not before what was already written of it; a
    /// gap is a hole of zeros.
    pub fn chunk(&mut self, path: &str, offset: u64, data: &[u8]) -> anyhow::Result<()> {
        if !self.open.contains_key(path) {
            self.start(path)?;
        }
        let open = self.open.get_mut(path).expect("started above");
        ensure!(
            offset >= open.size,
            "`{path}` came with a piece at offset {offset}, before its end {} so far: a backup \
             stream rewrites no file",
            open.size
        );
        hash_zeros(&mut open.sha, offset - open.size);
        open.size = offset;
        let blocked_before = self.out.blocked;
        for (n, piece) in data.chunks(MAX_CHUNK as usize).enumerate() {
            let at = offset + (n * MAX_CHUNK as usize) as u64;
            let squeeze = match self.compress {
                Compress::None => false,
                Compress::Zstd => true,
                Compress::Auto => self.judge.compressing,
            };
            if squeeze {
                if self.compressor.is_none() {
                    self.compressor = Some(
                        zstd::bulk::Compressor::new(ZSTD_LEVEL)
                            .context("cannot start the compressor")?,
                    );
                }
                let compressor = self.compressor.as_mut().expect("made above");
                self.packed.clear();
                self.packed
                    .reserve(zstd::zstd_safe::compress_bound(piece.len()));
                compressor
                    .compress_to_buffer(piece, &mut self.packed)
                    .context("cannot compress a chunk of the bundle")?;
                if (self.packed.len() as f64) < piece.len() as f64 * WORTH {
                    self.out.put(&[ZSTD_CHUNK_TAG])?;
                    put_path(&mut self.out, path)?;
                    self.out.put(&at.to_le_bytes())?;
                    self.out.put(&(piece.len() as u32).to_le_bytes())?;
                    self.out.put(&(self.packed.len() as u32).to_le_bytes())?;
                    self.out.put(&self.packed)?;
                    continue;
                }
            }
            self.out.put(&[CHUNK_TAG])?;
            put_path(&mut self.out, path)?;
            self.out.put(&at.to_le_bytes())?;
            self.out.put(&(piece.len() as u32).to_le_bytes())?;
            self.out.put(piece)?;
        }
        let open = self.open.get_mut(path).expect("started above");
        open.sha.update(data);
        open.size += data.len() as u64;
        self.data += data.len() as u64;
        if self.compress == Compress::Auto {
            let blocked = self.out.blocked - blocked_before;
            self.judge
                .saw(data.len() as u64, blocked, self.data, Instant::now());
        }
        if let Some(progress) = &mut self.progress {
            progress(self.data);
        }
        Ok(())
    }

    /// `path` is complete (it may have had no chunk: an empty file).
    pub fn end(&mut self, path: &str, mode: u32) -> anyhow::Result<&FileEntry> {
        if !self.open.contains_key(path) {
            self.start(path)?;
        }
        let open = self.open.remove(path).expect("started above");
        ensure!(
            mode <= 0o7777,
            "`{path}`: mode {mode:o} has more than permission bits"
        );
        let sha: [u8; 32] = open.sha.finalize().into();
        self.out.put(&[END_TAG])?;
        put_path(&mut self.out, path)?;
        self.out.put(&open.size.to_le_bytes())?;
        self.out.put(&sha)?;
        self.out.put(&mode.to_le_bytes())?;
        self.ended.insert(path.to_owned());
        self.files.push(FileEntry {
            path: path.to_owned(),
            size: open.size,
            sha256: hex::encode(sha),
            mode,
        });
        Ok(self.files.last().expect("pushed above"))
    }

    /// A directory of its own (an empty one would otherwise not arrive).
    pub fn dir(&mut self, path: &str, mode: u32) -> anyhow::Result<()> {
        check_path(path).with_context(|| format!("directory `{path}`"))?;
        ensure!(
            mode <= 0o7777,
            "`{path}`: mode {mode:o} has more than permission bits"
        );
        self.out.put(&[DIR_TAG])?;
        put_path(&mut self.out, path)?;
        self.out.put(&mode.to_le_bytes())?;
        add_parents(&mut self.dirs, path);
        self.dirs.insert(path.to_owned(), mode);
        Ok(())
    }

    /// The manifest and the end: only once every file has ended.
    pub fn finish(mut self, source: Source) -> anyhow::Result<Manifest> {
        if let Some(path) = self.open.keys().min() {
            bail!("`{path}` never ended: the backup stream stopped in the middle of it");
        }
        let manifest = Manifest {
            format: FORMAT,
            engine: source.engine,
            server_version: source.server_version,
            source_host: source.source_host,
            created_at: jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())?,
            position: source.position,
            dirs: self.dirs.keys().cloned().collect(),
            files: std::mem::take(&mut self.files),
        };
        let text = manifest.to_toml();
        let at = self.out.count;
        self.out.put(&[MANIFEST_TAG])?;
        self.out.put(&(text.len() as u32).to_le_bytes())?;
        self.out.put(text.as_bytes())?;
        self.out.put(&[FINAL_TAG])?;
        let crc = self.out.crc.clone().finalize();
        self.out.put(&crc.to_le_bytes())?;
        self.out.put(&at.to_le_bytes())?;
        self.out.inner.flush().context("cannot write the bundle")?;
        Ok(manifest)
    }

    fn start(&mut self, path: &str) -> anyhow::Result<()> {
        check_path(path).with_context(|| format!("file `{path}`"))?;
        ensure!(
            !self.ended.contains(path),
            "`{path}` came again after it ended: a bundle holds each file once"
        );
        ensure!(
            self.open.len() < MAX_OPEN,
            "more than {MAX_OPEN} files are being written at once"
        );
        add_parents(&mut self.dirs, path);
        self.open.insert(
            path.to_owned(),
            Open {
                size: 0,
                sha: Sha256::new(),
            },
        );
        Ok(())
    }
}

/// Every directory above `path` (the manifest lists them, parents first).
pub(super) fn add_parents(dirs: &mut BTreeMap<String, u32>, path: &str) {
    let mut end = 0;
    while let Some(slash) = path[end..].find('/') {
        end += slash;
        dirs.entry(path[..end].to_owned()).or_insert(0o750);
        end += 1;
    }
}

pub(super) fn hash_zeros(sha: &mut Sha256, mut len: u64) {
    while len > 0 {
        let n = len.min(ZEROS.len() as u64) as usize;
        sha.update(&ZEROS[..n]);
        len -= n as u64;
    }
}

fn put_path(out: &mut Counting<impl Write>, path: &str) -> anyhow::Result<()> {
    let len = u16::try_from(path.len())
        .with_context(|| format!("the path `{path}` is too long for a bundle"))?;
    out.put(&len.to_le_bytes())?;
    out.put(path.as_bytes())
}

/// A writer that checksums and counts what goes through it (the `Z` frame's CRC and the
/// manifest's offset).
struct Counting<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
    count: u64,
    /// Time spent in writes (waiting for the output to drain, mostly).
    blocked: Duration,
}

impl<W: Write> Counting<W> {
    fn new(inner: W) -> Self {
        Counting {
            inner,
            crc: crc32fast::Hasher::new(),
            count: 0,
            blocked: Duration::ZERO,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let started = Instant::now();
        self.inner
            .write_all(bytes)
            .context("cannot write the bundle")?;
        self.blocked += started.elapsed();
        self.crc.update(bytes);
        self.count += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One window of file data that took `secs`, `waiting` of them on the output.
    fn window(judge: &mut Judge, clock: &mut Instant, total: &mut u64, secs: f64, waiting: f64) {
        *clock += Duration::from_secs_f64(secs);
        *total += WINDOW;
        judge.saw(WINDOW, Duration::from_secs_f64(waiting), *total, *clock);
    }

    #[test]
    fn auto_compresses_only_while_the_output_is_the_bottleneck() {
        let mut clock = Instant::now();
        let mut total = 0;
        let mut judge = Judge::new(clock);
        // The output takes everything at once: no compression.
        window(&mut judge, &mut clock, &mut total, 1.0, 0.1);
        assert!(!judge.compressing);
        // The link is the bottleneck: compression goes on.
        window(&mut judge, &mut clock, &mut total, 4.0, 3.5);
        assert!(judge.compressing);
        // Compressed, the data goes faster than it did plain: it stays on.
        window(&mut judge, &mut clock, &mut total, 2.0, 0.5);
        assert!(judge.compressing);
        // Compressed, slower than plain (the CPU is now the bottleneck): off again, and no
        // new try for a while even though the output waits again.
        window(&mut judge, &mut clock, &mut total, 8.0, 1.0);
        assert!(!judge.compressing);
        window(&mut judge, &mut clock, &mut total, 4.0, 3.5);
        assert!(!judge.compressing);
        for _ in 0..32 {
            window(&mut judge, &mut clock, &mut total, 4.0, 3.5);
        }
        assert!(judge.compressing, "tried again after 32 windows");
    }
}
