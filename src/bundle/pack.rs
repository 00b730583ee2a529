//! Making a bundle from a directory: list it, then stream each file, hashed as it is sent.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use walkdir::WalkDir;

use super::manifest::check_path;
use super::{CHUNK, Compress, Manifest, Source, Writer};

pub(super) fn pack(
    dir: &Path,
    source: Source,
    out: &mut dyn Write,
    compress: Compress,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Manifest> {
    let tree = scan(dir)?;
    let mut writer = Writer::new(out, compress)?.with_progress(progress);
    for (path, mode) in &tree.dirs {
        writer.dir(path, *mode)?;
    }
    let mut buf = vec![0; CHUNK];
    for listed in &tree.files {
        let full = dir.join(&listed.path);
        let mut file =
            File::open(&full).with_context(|| format!("cannot read {}", full.display()))?;
        let mut offset = 0;
        loop {
            let n = file
                .read(&mut buf)
                .with_context(|| format!("cannot read {}", full.display()))?;
            if n == 0 {
                break;
            }
            if offset + n as u64 > listed.len {
                return Err(changed(&full, "it got longer"));
            }
            writer.chunk(&listed.path, offset, &buf[..n])?;
            offset += n as u64;
        }
        if offset < listed.len {
            return Err(changed(&full, "it got shorter"));
        }
        writer.end(&listed.path, listed.mode)?;
    }
    writer.finish(source)
}

struct Tree {
    /// With their permission bits.
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

fn changed(path: &Path, how: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{} changed while the bundle was being made ({how} since it was listed): \
         something is still writing to the backup directory; make the backup again",
        path.display()
    )
}
