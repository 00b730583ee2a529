//! Reading a bundle stream: every file written and hashed as its chunks arrive, checked at
//! its end frame, the whole checked against the manifest and the final digest before the
//! completion marker is written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, bail, ensure};
use sha2::{Digest, Sha256};

use super::frame::{
    CHUNK_TAG, DIR_TAG, END_TAG, FINAL_LEN, FINAL_TAG, MAGIC, MANIFEST_TAG, MAX_CHUNK,
    MAX_MANIFEST, MAX_OPEN, ZSTD_CHUNK_TAG, add_parents, hash_zeros,
};
use super::manifest::{FORMAT, OLDER, check_path};
use super::target::{Target, TargetFile};
use super::{CHUNK, FileEntry, Manifest};

/// A zip file's first bytes: formats 1 and 2 were zip files.
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// Unpacks into `into`, or only checks when there is none.
pub(super) fn read(
    input: &mut dyn Read,
    into: Option<&Path>,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Manifest> {
    let mut input = Hashing::new(BufReader::with_capacity(CHUNK, input));
    header(&mut input)?;
    let target = match into {
        Some(into) => Some(Target::create(into)?),
        None => None,
    };
    let mut state = State {
        target: target.as_ref(),
        open: HashMap::new(),
        ended: HashSet::new(),
        files: Vec::new(),
        dirs: BTreeMap::new(),
        manifest: None,
        buf: vec![0; CHUNK],
        packed: Vec::new(),
        unpacked: Vec::new(),
        decompressor: None,
        data: 0,
        progress,
    };
    let manifest = state.frames(&mut input)?;
    if let Some(target) = target {
        target.finish(&manifest)?;
    }
    Ok(manifest)
}

pub(super) fn read_manifest(file: &mut File) -> anyhow::Result<Manifest> {
    header(&mut Hashing::new(BufReader::new(&mut *file)))?;
    let len = file
        .seek(SeekFrom::End(0))
        .context("cannot read the bundle")?;
    ensure!(
        len >= FINAL_LEN,
        "the bundle is cut short: it has no end (it is {len} bytes long)"
    );
    file.seek(SeekFrom::End(-(FINAL_LEN as i64)))
        .context("cannot read the bundle")?;
    let mut end = [0; FINAL_LEN as usize];
    file.read_exact(&mut end)
        .context("cannot read the bundle")?;
    ensure!(
        end[0] == FINAL_TAG,
        "the bundle is cut short: it does not end with its final frame (make it again)"
    );
    let at = u64::from_le_bytes(end[5..].try_into().expect("8 bytes"));
    ensure!(
        at < len - FINAL_LEN,
        "the bundle is damaged: its end points at byte {at}, past its manifest"
    );
    file.seek(SeekFrom::Start(at))
        .context("cannot read the bundle")?;
    let mut input = Hashing::new(BufReader::new(&mut *file));
    let tag = input.u8()?.unwrap_or(0);
    ensure!(
        tag == MANIFEST_TAG,
        "the bundle is damaged: its end points at byte {at}, which is not its manifest"
    );
    manifest_frame(&mut input)
}

fn header(input: &mut Hashing<impl Read>) -> anyhow::Result<()> {
    let mut magic = [0; 16];
    let got = input.fill(&mut magic)?;
    if got >= 4 && magic[..4] == *ZIP_MAGIC {
        bail!(
            "this bundle is a zip file, format 2 or older, made by an earlier ha-setup; this \
             version reads format {FORMAT} only: {OLDER}"
        );
    }
    ensure!(
        got == magic.len() && magic == *MAGIC,
        "not a bundle made by ha-setup: it does not start with `HA-SETUP BUNDLE`{}",
        if got < magic.len() {
            " (it is empty or cut short)"
        } else {
            ""
        }
    );
    let format = input.u32()?;
    ensure!(
        format == FORMAT,
        "bundle format {format} is not supported by this ha-setup (it knows format {FORMAT}); {}",
        if format < FORMAT {
            OLDER
        } else {
            "use the ha-setup version that made the bundle"
        }
    );
    Ok(())
}

struct State<'a, 't> {
    target: Option<&'t Target>,
    open: HashMap<String, Open<'t>>,
    ended: HashSet<String>,
    files: Vec<FileEntry>,
    dirs: BTreeMap<String, u32>,
    /// With the offset of its frame.
    manifest: Option<(Manifest, u64)>,
    buf: Vec<u8>,
    /// A compressed chunk as it came, and as it is.
    packed: Vec<u8>,
    unpacked: Vec<u8>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
    data: u64,
    progress: &'a mut dyn FnMut(u64),
}

struct Open<'t> {
    size: u64,
    sha: Sha256,
    file: Option<TargetFile<'t>>,
}

impl<'t> State<'_, 't> {
    fn frames(&mut self, input: &mut Hashing<impl Read>) -> anyhow::Result<Manifest> {
        loop {
            let at = input.count;
            let Some(tag) = input.u8()? else {
                bail!(
                    "the bundle is cut short after {at} bytes: it ends {}",
                    if self.manifest.is_some() {
                        "after its manifest, without its final frame"
                    } else {
                        "before its manifest"
                    }
                );
            };
            ensure!(
                self.manifest.is_none() || tag == FINAL_TAG,
                "the bundle is damaged: a frame follows its manifest (byte {at})"
            );
            match tag {
                CHUNK_TAG => self.chunk(input, false)?,
                ZSTD_CHUNK_TAG => self.chunk(input, true)?,
                END_TAG => self.end(input)?,
                DIR_TAG => self.dir(input)?,
                MANIFEST_TAG => {
                    ensure!(
                        self.manifest.is_none(),
                        "the bundle is damaged: a second manifest at byte {at}"
                    );
                    let manifest = manifest_frame(input)?;
                    self.check(&manifest)?;
                    self.manifest = Some((manifest, at));
                }
                FINAL_TAG => return self.finish(input),
                other => bail!(
                    "the bundle is damaged: byte {at} starts no frame (0x{other:02x}); make it again"
                ),
            }
        }
    }

    fn chunk(&mut self, input: &mut Hashing<impl Read>, zstd: bool) -> anyhow::Result<()> {
        let path = input.path()?;
        let offset = input.u64()?;
        let len = input.u32()?;
        ensure!(
            len <= MAX_CHUNK,
            "the bundle is damaged: a chunk of `{path}` claims {len} bytes"
        );
        if zstd {
            let packed_len = input.u32()?;
            ensure!(
                packed_len <= MAX_CHUNK,
                "the bundle is damaged: a compressed chunk of `{path}` claims {packed_len} bytes"
            );
            let mut packed = std::mem::take(&mut self.packed);
            packed.resize(packed_len as usize, 0);
            input.exact(&mut packed)?;
            self.unpacked.clear();
            self.unpacked.reserve(len as usize);
            let unpacked = self
                .decompressor
                .get_or_insert_with(|| {
                    zstd::bulk::Decompressor::new().expect("a zstd decompressor")
                })
                .decompress_to_buffer(&packed, &mut self.unpacked);
            self.packed = packed;
            ensure!(
                unpacked.is_ok_and(|n| n == len as usize),
                "the bundle is damaged: a compressed chunk of `{path}` does not decompress to its {len} bytes"
            );
        }
        if !self.open.contains_key(&path) {
            self.start(&path)?;
        }
        let open = self.open.get_mut(&path).expect("started above");
        ensure!(
            offset >= open.size,
            "the bundle is damaged: `{path}` has a piece at offset {offset}, before its end {} so far",
            open.size
        );
        if offset > open.size {
            hash_zeros(&mut open.sha, offset - open.size);
            if let Some(file) = &mut open.file {
                file.skip_to(offset)?;
            }
            open.size = offset;
        }
        if zstd {
            let data = &self.unpacked[..];
            open.sha.update(data);
            if let Some(file) = &mut open.file {
                file.write(data)?;
            }
            open.size += data.len() as u64;
            self.data += data.len() as u64;
            (self.progress)(self.data);
            return Ok(());
        }
        let mut left = len as usize;
        while left > 0 {
            let n = left.min(self.buf.len());
            input.exact(&mut self.buf[..n])?;
            open.sha.update(&self.buf[..n]);
            if let Some(file) = &mut open.file {
                file.write(&self.buf[..n])?;
            }
            left -= n;
            open.size += n as u64;
            self.data += n as u64;
            (self.progress)(self.data);
        }
        Ok(())
    }

    fn end(&mut self, input: &mut Hashing<impl Read>) -> anyhow::Result<()> {
        let path = input.path()?;
        let size = input.u64()?;
        let mut sha = [0; 32];
        input.exact(&mut sha)?;
        let mode = input.u32()?;
        ensure!(
            mode <= 0o7777,
            "the bundle is damaged: `{path}` has mode {mode:o}"
        );
        if !self.open.contains_key(&path) {
            self.start(&path)?;
        }
        let open = self.open.remove(&path).expect("started above");
        let got: [u8; 32] = open.sha.finalize().into();
        ensure!(
            open.size == size && got == sha,
            "`{path}` does not match what was sent ({} bytes with SHA-256 {} arrived; it was \
             {size} bytes with SHA-256 {}): the bundle was altered or damaged on the way",
            open.size,
            hex::encode(got),
            hex::encode(sha)
        );
        if let Some(file) = open.file {
            file.finish(mode)?;
        }
        self.ended.insert(path.clone());
        self.files.push(FileEntry {
            path,
            size,
            sha256: hex::encode(sha),
            mode,
        });
        Ok(())
    }

    fn dir(&mut self, input: &mut Hashing<impl Read>) -> anyhow::Result<()> {
        let path = input.path()?;
        let mode = input.u32()?;
        ensure!(
            mode <= 0o7777,
            "the bundle is damaged: directory `{path}` has mode {mode:o}"
        );
        if let Some(target) = self.target {
            target.dir(&path, mode)?;
        }
        add_parents(&mut self.dirs, &path);
        self.dirs.insert(path, mode);
        Ok(())
    }

    fn start(&mut self, path: &str) -> anyhow::Result<()> {
        ensure!(
            !self.ended.contains(path),
            "the bundle is damaged: `{path}` comes again after it ended"
        );
        ensure!(
            self.open.len() < MAX_OPEN,
            "the bundle is damaged: more than {MAX_OPEN} files are open at once"
        );
        let file = match self.target {
            Some(target) => Some(target.file(path)?),
            None => None,
        };
        add_parents(&mut self.dirs, path);
        self.open.insert(
            path.to_owned(),
            Open {
                size: 0,
                sha: Sha256::new(),
                file,
            },
        );
        Ok(())
    }

    /// The manifest must list exactly what arrived: every file, in the order it ended, with
    /// the same size, digest and mode, and every directory.
    fn check(&self, manifest: &Manifest) -> anyhow::Result<()> {
        if let Some(path) = self.open.keys().min() {
            bail!("the bundle is damaged: `{path}` never ended before the manifest");
        }
        let listed: HashMap<&str, &FileEntry> = manifest
            .files
            .iter()
            .map(|file| (file.path.as_str(), file))
            .collect();
        for file in &self.files {
            match listed.get(file.path.as_str()) {
                None => bail!(
                    "the bundle is damaged: `{}` arrived but the manifest does not list it",
                    file.path
                ),
                Some(entry) if *entry != file => bail!(
                    "the bundle is damaged: the manifest lists `{}` differently from what arrived",
                    file.path
                ),
                Some(_) => {}
            }
        }
        if manifest.files.len() != self.files.len() {
            let arrived: HashSet<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
            let missing: Vec<&str> = manifest
                .files
                .iter()
                .map(|f| f.path.as_str())
                .filter(|p| !arrived.contains(p))
                .take(5)
                .collect();
            bail!(
                "the bundle is damaged: the manifest lists files that never arrived: {}",
                missing.join(", ")
            );
        }
        let dirs: Vec<&String> = self.dirs.keys().collect();
        let listed: Vec<&String> = manifest.dirs.iter().collect();
        ensure!(
            dirs == listed,
            "the bundle is damaged: the manifest's directories are not those that arrived"
        );
        Ok(())
    }

    fn finish(&mut self, input: &mut Hashing<impl Read>) -> anyhow::Result<Manifest> {
        let crc = input.crc.clone().finalize();
        let sent = input.u32()?;
        let at = input.u64()?;
        let Some((manifest, manifest_at)) = self.manifest.take() else {
            bail!("the bundle is damaged: it ends without a manifest");
        };
        ensure!(
            crc == sent,
            "the bundle is damaged: its final checksum does not match what arrived"
        );
        ensure!(
            at == manifest_at,
            "the bundle is damaged: its end points at byte {at}, its manifest is at {manifest_at}"
        );
        ensure!(
            input.u8()?.is_none(),
            "the bundle is damaged: bytes follow its final frame"
        );
        Ok(manifest)
    }
}

fn manifest_frame(input: &mut Hashing<impl Read>) -> anyhow::Result<Manifest> {
    let len = input.u32()?;
    ensure!(
        len <= MAX_MANIFEST,
        "the bundle is damaged: its manifest claims {len} bytes"
    );
    let mut text = vec![0; len as usize];
    input.exact(&mut text)?;
    let text = String::from_utf8(text).context("the bundle's manifest is not UTF-8")?;
    Manifest::from_toml(&text)
}

/// A reader that checksums and counts what it hands out.
struct Hashing<R: Read> {
    inner: R,
    crc: crc32fast::Hasher,
    count: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            crc: crc32fast::Hasher::new(),
            count: 0,
        }
    }

    /// As many bytes as there are, up to `buf`'s length.
    fn fill(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err).context("cannot read the bundle"),
            }
        }
        self.crc.update(&buf[..got]);
        self.count += got as u64;
        Ok(got)
    }

    fn exact(&mut self, buf: &mut [u8]) -> anyhow::Result<()> {
        let got = self.fill(buf)?;
        ensure!(
            got == buf.len(),
            "the bundle is cut short: it ends at byte {} in the middle of a frame",
            self.count
        );
        Ok(())
    }

    /// None at the end of the stream.
    fn u8(&mut self) -> anyhow::Result<Option<u8>> {
        let mut byte = [0];
        Ok((self.fill(&mut byte)? == 1).then_some(byte[0]))
    }

    fn u32(&mut self) -> anyhow::Result<u32> {
        let mut bytes = [0; 4];
        self.exact(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn u64(&mut self) -> anyhow::Result<u64> {
        let mut bytes = [0; 8];
        self.exact(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn path(&mut self) -> anyhow::Result<String> {
        let mut len = [0; 2];
        self.exact(&mut len)?;
        let mut bytes = vec![0; u16::from_le_bytes(len) as usize];
        self.exact(&mut bytes)?;
        let path = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("the bundle is damaged: a path is not UTF-8"))?;
        check_path(&path)
            .with_context(|| format!("the bundle names `{path}`, which is refused"))?;
        Ok(path)
    }
}
