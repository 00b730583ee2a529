//! The seed as a stream: `pg_basebackup`'s hot backup, as one tar on its stdout, turned
//! into a bundle while it runs, on the primary, by the hidden `ha-setup bundle stream`.
//! Nothing is kept on the primary's disk but the tools' two small logs in `work`.
//!
//! The tar is the data directory as the server sends it (`backup_label`, an empty
//! `tablespace_map`, every file and directory, `global/pg_control` near the end), then the
//! WAL the backup needs (`--wal-method=fetch`: `pg_wal/` segments and their
//! `archive_status/*.done`), then `backup_manifest` (appended to the tar when pg_basebackup
//! writes to stdout; seen with 15), which the bundle keeps as a file for `pg_verifybackup`.
//!
//! Memory is bounded whatever the data's size: one MiB of pipe buffer, one MiB piece of a
//! file, `backup_label` (at most 64 KiB) and the bundle writer's own bound (its output
//! buffer, a compressor, one hash state per open file: here one at a time).

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tar::EntryType;

use super::position::{self, BACKUP_LABEL};
use crate::bundle::{Compress, Manifest, Source, Writer};

/// The operating-system user the server runs as: the tools log in as it (peer
/// authentication over the socket, Debian's default for `postgres`).
const OS_USER: &str = "postgres";
/// The slot that keeps the backup's WAL: one per `bundle stream`, by its process id.
pub const SLOT_PREFIX: &str = "ha_setup_seed_";
/// Files go into the bundle in pieces of at most this.
const PIECE: usize = 1 << 20;
/// Far more than any `backup_label` (about 250 bytes), and all the memory it may take.
const MAX_LABEL: usize = 64 << 10;
/// The lines of a tool's log an error quotes.
const LOG_TAIL: usize = 12;
/// How long psql gets to end its session by itself before it is killed.
const GRACE: Duration = Duration::from_secs(5);
/// psql prints this once it has answered everything before it.
const READY: &str = "ha-setup-ready";

/// What to do about a tablespace (a symlink in `pg_tblspc/`): pg_basebackup writes each
/// one as a tar of its own, which one stream on stdout cannot carry.
const TABLESPACES: &str = "tablespaces are not supported yet: this cluster keeps data in a \
     tablespace outside its data directory (pg_tblspc/). Move its tables and indexes into \
     pg_default (ALTER TABLE ... SET TABLESPACE pg_default, ALTER DATABASE ... SET \
     TABLESPACE pg_default) and drop the tablespace, or seed the replica by hand with \
     pg_basebackup";

/// `pg_basebackup` as the `postgres` user, PGHOST and PGPORT taken from the environment
/// (the caller's choice of cluster), written to `out` as a bundle while it runs. The backup's
/// WAL is kept by a temporary replication slot for as long as it runs.
pub fn stream_backup(
    source: Source,
    work: &Path,
    out: &mut dyn Write,
    compress: Compress,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Manifest> {
    let user = OsUser::named(OS_USER)?;
    let mut session = Session::open(&user, work, &format!("{SLOT_PREFIX}{}", std::process::id()))?;
    let expected = major(&source.server_version);
    ensure!(
        expected == Some(session.major()),
        "the server at {} is PostgreSQL {}, not the {} this backup was asked of: PGHOST and \
         PGPORT lead to another cluster",
        cluster(),
        session.server_version,
        source.server_version
    );
    let mut writer = Writer::new(out, compress)?.with_progress(progress);

    let log_path = work.join("pg_basebackup.log");
    let log =
        File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut child = user.spawn(
        "pg_basebackup",
        &[
            "--pgdata=-",
            "--format=tar",
            "--wal-method=fetch",
            "--checkpoint=fast",
            "--no-password",
            "--label=ha-setup",
        ],
        |command| {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log)
        },
    )?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let copied = copy(&mut stdout, &mut writer);
    // The far side is gone, or the stream is not what it should be: pg_basebackup must not
    // go on holding a backup open on the primary (and its checkpoint's WAL with it). Its
    // stdout stays open until then, so that it dies of this kill, not of a broken pipe
    // that would look like a failure of its own.
    let killed = copied.is_err() && child.kill().is_ok();
    let status = child.wait().context("cannot wait for pg_basebackup")?;
    drop(stdout);
    // pg_basebackup has fetched its WAL: the slot may go.
    let _ = session.finish();

    let label = match copied {
        Err(err) if killed && status.signal() == Some(libc::SIGKILL) => return Err(err),
        _ if !status.success() => {
            let tail = tail(&log_path);
            if tail.contains("can only write single tablespace to stdout") {
                bail!("{TABLESPACES}");
            }
            bail!(
                "pg_basebackup failed ({status}); the bundle was cut short, so no replica will \
                 use it. Its last lines:\n{tail}"
            );
        }
        copied => copied?,
    };
    let label = label.context("pg_basebackup's stream held no backup_label")?;
    let (lsn, timeline) = position::parse_backup_label(&String::from_utf8_lossy(&label))
        .context("the backup_label pg_basebackup sent is not readable")?;
    writer.finish(Source {
        server_version: session.server_version.clone(),
        position: position::position(lsn, timeline, session.system_identifier),
        ..source
    })
}

/// Every entry of the tar into the bundle, as it comes; returns `backup_label`'s content.
fn copy(stdout: &mut impl Read, writer: &mut Writer<'_>) -> anyhow::Result<Option<Vec<u8>>> {
    let mut archive = tar::Archive::new(BufReader::with_capacity(PIECE, stdout));
    let mut buf = vec![0; PIECE];
    let mut label = None;
    let damaged = "pg_basebackup's tar stream is damaged";
    for entry in archive.entries().context(damaged)? {
        let mut entry = entry.context(damaged)?;
        let path = relative(&entry.path_bytes())?;
        let mode = entry.header().mode().context(damaged)? & 0o7777;
        match entry.header().entry_type() {
            EntryType::Directory if path.is_empty() || path == "." => {}
            EntryType::Directory => writer.dir(&path, mode)?,
            EntryType::Regular => {
                let mut kept = (path == BACKUP_LABEL).then(Vec::new);
                let mut offset = 0;
                loop {
                    let n = fill(&mut entry, &mut buf)
                        .with_context(|| format!("cannot read `{path}` from pg_basebackup"))?;
                    if n == 0 {
                        break;
                    }
                    if let Some(kept) = &mut kept {
                        ensure!(
                            kept.len() + n <= MAX_LABEL,
                            "pg_basebackup sent a backup_label of more than {MAX_LABEL} bytes"
                        );
                        kept.extend_from_slice(&buf[..n]);
                    }
                    writer.chunk(&path, offset, &buf[..n])?;
                    offset += n as u64;
                }
                ensure!(
                    offset == entry.size(),
                    "pg_basebackup's stream ended inside `{path}` ({offset} of {} bytes)",
                    entry.size()
                );
                writer.end(&path, mode)?;
                label = label.or(kept);
            }
            EntryType::Symlink if path.starts_with("pg_tblspc/") => bail!("{TABLESPACES}"),
            other => bail!(
                "pg_basebackup sent `{path}` as a {other:?}: a data directory holds only files \
                 and directories besides tablespaces, so this is not a backup ha-setup can carry"
            ),
        }
    }
    // The tar's end and any padding after it: pg_basebackup must be able to write them.
    io::copy(&mut archive.into_inner(), &mut io::sink()).context(damaged)?;
    Ok(label)
}

/// A tar path as the bundle has it: relative, '/'-separated, no `./`, no trailing '/'.
fn relative(raw: &[u8]) -> anyhow::Result<String> {
    let Ok(mut path) = std::str::from_utf8(raw) else {
        bail!(
            "pg_basebackup sent a path that is not UTF-8: `{}`",
            String::from_utf8_lossy(raw)
        );
    };
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    Ok(path.trim_end_matches('/').to_owned())
}

/// Reads until `buf` is full or the input ends: pipes hand out less than a piece at a time,
/// and bigger pieces make fewer frames.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(n)
}

/// The major version in a version text ("15", "15.18 (Debian 15.18-0+deb12u1)").
fn major(version: &str) -> Option<u32> {
    let digits = version.trim().split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// The cluster PGHOST and PGPORT name, for messages.
fn cluster() -> String {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| "(unset)".to_owned());
    format!("PGHOST={} PGPORT={}", var("PGHOST"), var("PGPORT"))
}

/// A psql session holding a temporary physical replication slot, which reserves WAL from
/// before the backup's start: on a busy primary with `wal_keep_size = 0` the segments the
/// backup needs could otherwise be recycled before pg_basebackup fetches them at its end.
/// The slot lives exactly as long as the session, and the session as long as psql's stdin
/// is open: when ha-setup ends, however it ends, the slot goes.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Kept open but never read again: a psql that could not write would end, and with it
    /// the slot.
    stdout: BufReader<ChildStdout>,
    server_version: String,
    server_version_num: u32,
    system_identifier: u64,
}

impl Session {
    fn open(user: &OsUser, work: &Path, slot: &str) -> anyhow::Result<Session> {
        let log_path = work.join("psql.log");
        let log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut child = user.spawn(
            "psql",
            &[
                "--no-psqlrc",
                "--no-password",
                "--quiet",
                "--no-align",
                "--tuples-only",
                "--field-separator=\t",
                "--set=ON_ERROR_STOP=1",
            ],
            |command| {
                command
                    .env("PGAPPNAME", "ha-setup seed")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(log)
            },
        )?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut session = Session {
            child,
            stdin,
            stdout,
            server_version: String::new(),
            server_version_num: 0,
            system_identifier: 0,
        };
        // The slot's name is ours (a prefix and a number): nothing to quote.
        let sql = format!(
            "SELECT 'slot', slot_name FROM pg_create_physical_replication_slot('{slot}', true, true);\n\
             SELECT 'system_identifier', system_identifier FROM pg_control_system();\n\
             SELECT 'server_version', current_setting('server_version');\n\
             SELECT 'server_version_num', current_setting('server_version_num');\n\
             \\echo {READY}\n"
        );
        let stdin = session.stdin.as_mut().expect("kept above");
        // A psql that failed at once has closed its stdin: its log says why.
        let _ = stdin.write_all(sql.as_bytes()).and_then(|()| stdin.flush());
        let answers = session.answers();
        let Some(answers) = answers else {
            let status = match session.finish() {
                Ok(status) => status.to_string(),
                Err(err) => err.to_string(),
            };
            let tail = tail(&log_path);
            if tail.contains("all replication slots are in use") {
                bail!(
                    "no replication slot is free on the server at {}: the backup needs one to \
                     keep its WAL until it ends. Drop one it no longer needs (SELECT slot_name, \
                     active FROM pg_replication_slots; SELECT pg_drop_replication_slot('NAME')) \
                     or raise max_replication_slots (a restart), then run again. psql said:\n{tail}",
                    cluster()
                );
            }
            bail!(
                "cannot open the session that keeps the backup's WAL on the server at {} (psql: \
                 {status}). Its last lines:\n{tail}",
                cluster()
            );
        };
        let get = |key: &str| {
            answers
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.as_str())
                .with_context(|| format!("psql gave no {key}"))
        };
        ensure!(get("slot")? == slot, "psql named another slot than {slot}");
        // pg_control_system() shows the unsigned identifier as a signed bigint.
        let identifier = get("system_identifier")?;
        session.system_identifier = identifier
            .parse::<i64>()
            .map(|id| id as u64)
            .with_context(|| format!("`{identifier}` is not a system identifier"))?;
        session.server_version = get("server_version")?.to_owned();
        let number = get("server_version_num")?;
        session.server_version_num = number
            .parse()
            .with_context(|| format!("`{number}` is not a server_version_num"))?;
        Ok(session)
    }

    /// The `name<TAB>value` lines psql printed before it said it was ready; None if it ended
    /// first.
    fn answers(&mut self) -> Option<Vec<(String, String)>> {
        let mut answers = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            match self.stdout.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let line = line.trim_end_matches('\n');
            if line == READY {
                return Some(answers);
            }
            if let Some((name, value)) = line.split_once('\t') {
                answers.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    /// PostgreSQL 10 and later: the major version is the number's ten-thousands.
    fn major(&self) -> u32 {
        self.server_version_num / 10_000
    }

    /// Ends the session, and so the slot (dropping the session does the same). psql, given the end of its input, disconnects; one that does not within the grace
    /// time is killed (its server backend then ends all the same, slot and all).
    fn finish(&mut self) -> io::Result<std::process::ExitStatus> {
        drop(self.stdin.take());
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Not yet finished: an error on the way.
        if self.stdin.is_some() {
            let _ = self.finish();
        }
    }
}

/// The operating-system user the tools run as.
struct OsUser {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
}

impl OsUser {
    fn named(name: &str) -> anyhow::Result<OsUser> {
        let c_name = CString::new(name).expect("a user name without NUL");
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        // SAFETY: an all-zero passwd is a valid value to be overwritten.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, the buffer for its length.
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc))
                .with_context(|| format!("cannot look up the user `{name}`"));
        }
        if result.is_null() {
            bail!(
                "this host has no user `{name}`, which PostgreSQL runs as: is PostgreSQL \
                 installed here?"
            );
        }
        let home = if pwd.pw_dir.is_null() {
            PathBuf::from("/")
        } else {
            // SAFETY: on success pw_dir points to a NUL-terminated string inside `buf`.
            let dir = unsafe { CStr::from_ptr(pwd.pw_dir) };
            PathBuf::from(OsStr::from_bytes(dir.to_bytes()))
        };
        Ok(OsUser {
            name: name.to_owned(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home,
        })
    }

    /// Starts `program` as this user, `set` giving its stdio. Not through `runuser`: it
    /// would stay in between as the tool's parent, so killing the child we hold would leave
    /// pg_basebackup running. Setting the ids here makes the tool itself our child; as
    /// root, std drops every supplementary group when it sets a uid. The environment is
    /// kept (PGHOST, PGPORT) but for what names the user, so that libpq finds the user's
    /// own files (`~/.pgpass`).
    fn spawn(
        &self,
        program: &str,
        args: &[&str],
        set: impl FnOnce(&mut Command) -> &mut Command,
    ) -> anyhow::Result<Child> {
        let mut command = Command::new(program);
        command
            .args(args)
            .uid(self.uid)
            .gid(self.gid)
            .current_dir("/")
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name);
        set(&mut command).spawn().map_err(|err| {
            let why = if err.kind() == io::ErrorKind::NotFound {
                format!("{program} is not installed on this host (Debian: postgresql-client)")
            } else {
                // EPERM: not run as root, which `bundle stream` is.
                format!("cannot start {program} as the user {}", self.name)
            };
            anyhow::Error::new(err).context(why)
        })
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_paths_become_bundle_paths() {
        assert_eq!(relative(b"base/1/2602").unwrap(), "base/1/2602");
        assert_eq!(
            relative(b"./pg_wal/archive_status/").unwrap(),
            "pg_wal/archive_status"
        );
        assert_eq!(relative(b"pg_wal/").unwrap(), "pg_wal");
        assert_eq!(relative(b"././global").unwrap(), "global");
        assert_eq!(relative(b"./").unwrap(), "");
        assert!(relative(b"base/\xff").is_err());
    }

    fn entry(kind: EntryType, path: &str, mode: u32, size: usize) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_path(path).unwrap();
        header.set_mode(mode);
        header.set_size(size as u64);
        header.set_cksum();
        header
    }

    /// A tar shaped like pg_basebackup's: directories, the label, an empty file, a file of
    /// several pieces, then `extra` entries.
    fn backup_tar(data: &[u8], extra: &[(tar::Header, &[u8])]) -> Vec<u8> {
        let label = b"START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\n\
                      START TIMELINE: 1\n";
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |header: tar::Header, body: &[u8]| builder.append(&header, body).unwrap();
        add(
            entry(EntryType::Regular, BACKUP_LABEL, 0o600, label.len()),
            label,
        );
        add(entry(EntryType::Regular, "tablespace_map", 0o600, 0), b"");
        add(entry(EntryType::Directory, "base/", 0o700, 0), b"");
        add(
            entry(EntryType::Directory, "pg_wal/archive_status/", 0o700, 0),
            b"",
        );
        add(
            entry(EntryType::Regular, "base/1/1259", 0o640, data.len()),
            data,
        );
        for (header, body) in extra {
            add(header.clone(), body);
        }
        builder.into_inner().unwrap()
    }

    fn stream(tar: &[u8]) -> anyhow::Result<(Option<Vec<u8>>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut writer = Writer::new(&mut out, Compress::None)?;
        let label = copy(&mut &*tar, &mut writer)?;
        writer.finish(Source {
            engine: "postgresql".into(),
            server_version: "15.18".into(),
            source_host: "db1".into(),
            position: Default::default(),
        })?;
        Ok((label, out))
    }

    #[test]
    fn the_tar_stream_becomes_a_bundle() {
        let data: Vec<u8> = (0..(PIECE * 5 / 2) as u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let (label, bundle) = stream(&backup_tar(&data, &[])).unwrap();
        let label = String::from_utf8(label.expect("the label was kept")).unwrap();
        assert_eq!(
            position::parse_backup_label(&label).unwrap(),
            (position::Lsn(0x0600_0028), 1)
        );
        let manifest = crate::bundle::verify(&mut bundle.as_slice()).unwrap();
        let files: Vec<_> = manifest
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.size, f.mode))
            .collect();
        assert_eq!(
            files,
            [
                (BACKUP_LABEL, label.len() as u64, 0o600),
                ("tablespace_map", 0, 0o600),
                ("base/1/1259", data.len() as u64, 0o640),
            ]
        );
        use sha2::Digest;
        assert_eq!(
            manifest.files[2].sha256,
            hex::encode(sha2::Sha256::digest(&data))
        );
        assert!(manifest.dirs.contains(&"pg_wal/archive_status".to_owned()));
        assert!(manifest.dirs.contains(&"base/1".to_owned()));
    }

    #[test]
    fn what_a_bundle_cannot_carry_is_refused() {
        let err = |extra: (tar::Header, &[u8])| {
            format!("{:#}", stream(&backup_tar(b"data", &[extra])).unwrap_err())
        };
        let mut link = entry(EntryType::Symlink, "pg_tblspc/16385", 0o777, 0);
        link.set_link_name("/srv/tablespace").unwrap();
        link.set_cksum();
        assert!(err((link, b"")).contains("tablespaces are not supported yet"));
        let fifo = entry(EntryType::Fifo, "base/1/fifo", 0o600, 0);
        assert!(err((fifo, b"")).contains("sent `base/1/fifo` as a Fifo"));

        // Cut short inside a file: never a bundle.
        let tar = backup_tar(&[7; 4096], &[]);
        let at = tar.len() - 1024 - 2048;
        let err = format!("{:#}", stream(&tar[..at]).unwrap_err());
        assert!(err.contains("base/1/1259"), "{err}");
    }

    #[test]
    fn major_versions() {
        assert_eq!(major("15"), Some(15));
        assert_eq!(major("15.18 (Debian 15.18-0+deb12u1)"), Some(15));
        assert_eq!(major(" 16.2"), Some(16));
        assert_eq!(major("9.6.24"), Some(9));
        assert_eq!(major("PostgreSQL 15"), None);
        assert_eq!(major(""), None);
    }
}
