//! Where `unpack` writes: a new or empty directory, filled with regular files and
//! directories only, so no path inside it can lead out of it.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, ensure};

use super::{FileEntry, Manifest, UNPACKED_MANIFEST};

/// Files waiting for their fsync; each holds a descriptor open until then.
const SYNC_QUEUE: usize = 64;

pub(super) struct Target {
    root: PathBuf,
    syncer: Option<Syncer>,
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
            syncer: Some(Syncer::start()),
        })
    }

    /// `path` was checked against the manifest, whose paths cannot leave the root.
    pub(super) fn dir(&self, path: &str) -> anyhow::Result<()> {
        let full = self.root.join(path);
        fs::create_dir_all(&full).with_context(|| format!("cannot create {}", full.display()))
    }

    pub(super) fn file(&self, entry: &FileEntry) -> anyhow::Result<TargetFile<'_>> {
        let path = self.root.join(&entry.path);
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
            mode: entry.mode,
            target: self,
        })
    }

    /// Waits for every file's fsync, makes the directory entries durable, then marks the
    /// directory complete: a crash before this leaves no marker, and a half-written marker
    /// never has the final name.
    pub(super) fn finish(mut self, manifest: &Manifest) -> anyhow::Result<()> {
        if let Some(syncer) = self.syncer.take() {
            syncer.finish()?;
        }
        for dir in manifest.dirs.iter().rev() {
            sync_dir(&self.root.join(dir))?;
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

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(syncer) = self.syncer.take() {
            let _ = syncer.finish();
        }
    }
}

pub(super) struct TargetFile<'a> {
    file: File,
    path: PathBuf,
    mode: u32,
    target: &'a Target,
}

impl TargetFile<'_> {
    pub(super) fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.file
            .write_all(data)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Only for a file that matched the manifest. The fsync happens on another thread while
    /// the next files arrive: one at a time here it would cost a disk flush per file.
    pub(super) fn finish(self) -> anyhow::Result<()> {
        self.file
            .set_permissions(Permissions::from_mode(self.mode))
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        match &self.target.syncer {
            Some(syncer) => syncer.sync(self.file, self.path),
            None => Ok(()),
        }
    }
}

/// A thread that fsyncs files in the order they are finished, and keeps the first error
/// for the next file, or the end, to report.
struct Syncer {
    queue: SyncSender<(File, PathBuf)>,
    failed: Arc<Mutex<Option<anyhow::Error>>>,
    thread: JoinHandle<()>,
}

impl Syncer {
    fn start() -> Syncer {
        let (queue, files) = sync_channel::<(File, PathBuf)>(SYNC_QUEUE);
        let failed = Arc::new(Mutex::new(None));
        let failure = Arc::clone(&failed);
        let thread = std::thread::spawn(move || {
            for (file, path) in files {
                if let Err(err) = file.sync_all() {
                    let err =
                        anyhow::Error::new(err).context(format!("cannot write {}", path.display()));
                    lock(&failure).get_or_insert(err);
                }
            }
        });
        Syncer {
            queue,
            failed,
            thread,
        }
    }

    fn sync(&self, file: File, path: PathBuf) -> anyhow::Result<()> {
        if let Some(err) = lock(&self.failed).take() {
            return Err(err);
        }
        self.queue
            .send((file, path))
            .map_err(|_| anyhow::anyhow!("the thread that syncs unpacked files has stopped"))
    }

    fn finish(self) -> anyhow::Result<()> {
        drop(self.queue);
        if let Err(panic) = self.thread.join() {
            std::panic::resume_unwind(panic);
        }
        match lock(&self.failed).take() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn sync_dir(path: &Path) -> anyhow::Result<()> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
}
