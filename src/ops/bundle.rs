//! `ha-setup bundle create`: the same bundle init streams to the replicas, written to a
//! local file instead, for offline transfer, from whichever node is the primary now. The
//! engine takes the snapshot and packs it there (`Engine::bundle_to`).
//!
//! The bundle is the whole database, so only its owner may read it: `<out>.partial` is
//! created new (O_EXCL: whatever is already at that name, a planted symlink included, is
//! refused, never followed or overwritten) with mode 0600 before any host is touched, and
//! becomes `<out>` by a rename that does not replace an existing file.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

use crate::error::{Exit, ExitCode};
use crate::node::Hosts;
use crate::prompt::NoPrompt;
use crate::runner::human_bytes;
use crate::ui::Ui;

pub fn create(config_path: &Path, out: &Path, ui: &Ui) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let engine = crate::engine::for_config(&config)?;
    if out.exists() {
        return Err(Exit::usage(format!(
            "{} exists already; ha-setup does not overwrite a bundle: choose another --out or move it away",
            out.display()
        ))
        .into());
    }
    let partial = out.with_extension("partial");
    let file = create_private(&partial)?;
    // The bundle comes from the primary now, whichever node the config calls what. The
    // lock keeps a second run (or a rebuild) from clearing the work directory under it.
    let result = (|| {
        let mut hosts = Hosts::connect(&config, &NoPrompt);
        let held = super::lock(&mut hosts, "bundle-create", false, ui)?;
        let result = create_from(&config, engine, &mut hosts, file, &partial, out, ui);
        super::unlock(&mut hosts, held);
        result
    })();
    if result.is_err() {
        // Ours (created new above); removing a name never follows a link.
        let _ = fs::remove_file(&partial);
    }
    result
}

/// Creates `path` new, 0600, never following or replacing what is there.
fn create_private(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let what = match fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => "a symbolic link",
                Ok(meta) if meta.is_dir() => "a directory",
                _ => "a file",
            };
            return Err(Exit::usage(format!(
                "{} exists already ({what}): ha-setup writes the bundle there first and never follows or overwrites what it finds. A killed `bundle create` leaves that file; if it is not yours, someone else may have put it there. Look at it, remove it, and run again",
                path.display()
            ))
            .into());
        }
        Err(err) => {
            return Err(err).with_context(|| format!("cannot create {}", path.display()));
        }
    };
    // Exactly 0600 whatever the umask; the bundle is the whole database.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", path.display()))?;
    Ok(file)
}

/// Renames `from` to `to` unless `to` exists (then an error): a bundle is never replaced.
fn rename_new(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |path: &Path| {
        std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths that live across the call.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if done == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        // A filesystem without RENAME_NOREPLACE: check, then an ordinary rename.
        Some(libc::EINVAL | libc::ENOSYS) => match fs::symlink_metadata(to) {
            Err(missing) if missing.kind() == std::io::ErrorKind::NotFound => fs::rename(from, to),
            _ => Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists)),
        },
        _ => Err(err),
    }
}

fn create_from(
    config: &crate::config::Config,
    engine: &dyn crate::engine::Engine,
    hosts: &mut Hosts,
    file: File,
    partial: &Path,
    out: &Path,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    let topology = crate::topology::observe(engine, config, hosts);
    let untouched = topology.untouched();
    // Two writers hold the same data: the config's first node, else the other.
    let writer = topology.two_writers().then(|| {
        let first = config.starting_primary();
        topology
            .nodes
            .iter()
            .map(|n| &n.name)
            .filter(|n| topology.get(n).answers())
            .min_by_key(|n| *n != first)
            .cloned()
    });
    let source = match writer.flatten().or_else(|| topology.provable_primary()) {
        Some(primary) if topology.get(&primary).answers() => primary,
        // Before the first init, the node the config starts from.
        None if untouched && topology.get(config.starting_primary()).answers() => {
            config.starting_primary().clone()
        }
        _ => {
            return Err(Exit::refused(format!(
                "no node is provably the primary that answers, so ha-setup cannot tell whose data to bundle{}",
                topology.table()
            ))
            .into());
        }
    };
    let node = config.node(&source).clone();
    let host = hosts.host(&source);
    let result = (|| -> anyhow::Result<u64> {
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let mut count = CountingWriter {
            inner: &mut writer,
            bytes: 0,
        };
        engine.bundle_to(
            host,
            &source,
            &node,
            &mut count,
            config.transfer.compress,
            ui,
        )?;
        let bytes = count.bytes;
        writer.flush()?;
        writer.get_ref().sync_all()?;
        Ok(bytes)
    })();
    let bytes =
        result.map_err(|err| err.context(format!("no bundle was written to {}", out.display())))?;
    rename_new(partial, out)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
    // The rename itself survives a crash once the directory is synced.
    if let Some(dir) = out.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|dir| dir.sync_all());
    }
    ui.out(&format!(
        "{}: bundle of {source} ({}), {}; check it with `ha-setup bundle verify {}`",
        out.display(),
        node.host,
        human_bytes(bytes),
        out.display()
    ))?;
    Ok(ExitCode::Ok)
}

struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partial_file_is_new_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.partial");
        let mut file = create_private(&path).unwrap();
        file.write_all(b"data").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A second run finds it and stops.
        let err = create_private(&path).unwrap_err().to_string();
        assert!(err.contains("exists already (a file)"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"data");
    }

    #[test]
    fn a_planted_symlink_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        for (name, target) in [
            ("b.partial", victim.clone()),
            ("c.partial", dir.path().join("none")),
        ] {
            let path = dir.path().join(name);
            std::os::unix::fs::symlink(&target, &path).unwrap();
            let err = create_private(&path).unwrap_err().to_string();
            assert!(err.contains("exists already (a symbolic link)"), "{err}");
            assert!(
                fs::symlink_metadata(&path)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
        }
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(
            !dir.path().join("none").exists(),
            "a dangling link was followed"
        );
    }

    #[test]
    fn the_rename_never_replaces_a_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("b.partial"), dir.path().join("b.bundle"));
        fs::write(&from, "new").unwrap();
        fs::write(&to, "old").unwrap();
        assert_eq!(
            rename_new(&from, &to).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
        assert_eq!(fs::read_to_string(&to).unwrap(), "old");
        fs::remove_file(&to).unwrap();
        rename_new(&from, &to).unwrap();
        assert_eq!(fs::read_to_string(&to).unwrap(), "new");
        assert!(!from.exists());
    }
}
