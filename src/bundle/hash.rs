//! The first pass: every file's size, SHA-256 and CRC-32. Nothing can be streamed until the
//! manifest is complete, so this runs on several threads, largest files first.

use std::cmp::Reverse;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::anyhow;
use sha2::{Digest, Sha256};

use super::CHUNK;

/// A primary that is serving keeps most of its cores, and few disks feed more readers.
const MAX_THREADS: usize = 4;

/// What the first pass learns of a file.
pub(super) struct Hashed {
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// For the second pass to notice a change at a fraction of the cost of SHA-256: the
    /// receiver checks the SHA-256 anyway.
    pub crc: u32,
}

/// Each of `files` (path under `dir`, size when listed), in order.
pub(super) fn hash_all(dir: &Path, files: &[(&str, u64)]) -> anyhow::Result<Vec<Hashed>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(files.len());
    // One large file started last would leave the other threads idle while it finishes.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| Reverse(files[i].1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<OnceLock<io::Result<Hashed>>> = files.iter().map(|_| OnceLock::new()).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut buf = vec![0; CHUNK];
                while !failed.load(Ordering::Relaxed) {
                    let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let result = hash_file(&dir.join(files[i].0), &mut buf);
                    failed.fetch_or(result.is_err(), Ordering::Relaxed);
                    let _ = slots[i].set(result);
                }
            });
        }
    });
    let mut hashed = Vec::with_capacity(files.len());
    for (slot, (path, _)) in slots.into_iter().zip(files) {
        match slot.into_inner() {
            Some(Ok(one)) => hashed.push(one),
            Some(Err(err)) => {
                let path = dir.join(path);
                return Err(anyhow!(err).context(format!("cannot read {}", path.display())));
            }
            // Left undone after another file failed; that error comes first or later.
            None => {}
        }
    }
    debug_assert_eq!(hashed.len(), files.len());
    Ok(hashed)
}

fn hash_file(path: &Path, buf: &mut [u8]) -> io::Result<Hashed> {
    let mut file = File::open(path)?;
    let mut sha256 = Sha256::new();
    let mut crc = crc32fast::Hasher::new();
    let mut size = 0;
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            return Ok(Hashed {
                size,
                sha256: hex::encode(sha256.finalize()),
                crc: crc.finalize(),
            });
        }
        sha256.update(&buf[..n]);
        crc.update(&buf[..n]);
        size += n as u64;
    }
}
