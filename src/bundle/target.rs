//! Where `unpack` writes: a new or empty directory, filled with regular files and
//! directories only, so no path inside it can lead out of it.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};

use super::{Manifest, UNPACKED_MANIFEST};

pub(super) struct Target {
    root: PathBuf,
}

impl Target {
    pub(super) fn create(root: &Path) -> anyhow::Result<Target> {
        fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
        let mut listing =
            fs::read_dir(root).with_context(|| format!("cannot read {}", root.display()))?;
        ensure!(
            listing.next().is_none(),
            "{} is not empty: a bundle unpacks only into a new or empty directory",
            root.display()
        );
        Ok(Target {
            root: root.to_owned(),
        })
    }

    /// `path` was checked: it cannot leave the root.
    pub(super) fn dir(&self, path: &str, mode: u32) -> anyhow::Result<()> {
        let full = self.root.join(path);
        fs::create_dir_all(&full)
            .and_then(|()| fs::set_permissions(&full, Permissions::from_mode(mode)))
            .with_context(|| format!("cannot create {}", full.display()))
    }

    /// `path` was checked: it cannot leave the root.
    pub(super) fn file(&self, path: &str) -> anyhow::Result<TargetFile<'_>> {
        let path = self.root.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // create_new: a file that is already there was not written by this unpack.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TargetFile {
            file,
            path,
            _target: std::marker::PhantomData,
        })
    }

    /// Makes every file and directory durable, then marks the directory complete: a crash
    /// before this leaves no marker, and a half-written marker never has the final name.
    /// One `syncfs` for the whole copy: an fsync per file costs a journal commit each, which
    /// on a copy of many files took longer than writing the data.
    pub(super) fn finish(self, manifest: &Manifest) -> anyhow::Result<()> {
        let root = File::open(&self.root)
            .with_context(|| format!("cannot open {}", self.root.display()))?;
        // SAFETY: syncfs on a descriptor this function owns; it touches no memory.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&root)) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| {
                format!("cannot sync the file system of {}", self.root.display())
            });
        }
        let partial = self.root.join(format!(".{UNPACKED_MANIFEST}.partial"));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        file.write_all(manifest.to_toml().as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", partial.display()))?;
        let done = self.root.join(UNPACKED_MANIFEST);
        fs::rename(&partial, &done).with_context(|| {
            format!("cannot rename {} to {}", partial.display(), done.display())
        })?;
        sync_dir(&self.root)
    }
}

pub(super) struct TargetFile<'a> {
    file: File,
    path: PathBuf,
    _target: std::marker::PhantomData<&'a Target>,
}

impl TargetFile<'_> {
    pub(super) fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.file
            .write_all(data)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// A hole: the next write lands at `offset` (the file is extended to it, sparse).
    pub(super) fn skip_to(&mut self, offset: u64) -> anyhow::Result<()> {
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.set_len(offset))
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }

    /// Only for a file that matched its end frame (it is made durable by `Target::finish`).
    pub(super) fn finish(self, mode: u32) -> anyhow::Result<()> {
        self.file
            .set_permissions(Permissions::from_mode(mode))
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

fn sync_dir(path: &Path) -> anyhow::Result<()> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
}
