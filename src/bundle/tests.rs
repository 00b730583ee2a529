use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::*;

const BIG: usize = (3 << 20) + 17;

/// Not random, but not compressible or repetitive either: every window is unique.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A small mariadb-backup target: nested and empty directories, an empty file, a file of
/// several chunks, odd permissions.
fn backup_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["mysql", "shop/orders", "empty", "shop/orders/deep/er"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    fs::write(root.join("ibdata1"), noise(BIG, 1)).unwrap();
    fs::write(root.join("zero"), b"").unwrap();
    fs::write(root.join("mysql/user.MAD"), noise(4000, 2)).unwrap();
    fs::write(root.join("shop/orders/t.ibd"), noise(70_000, 3)).unwrap();
    fs::write(root.join("shop/orders/deep/er/x.frm"), b"frm").unwrap();
    fs::write(
        root.join("xtrabackup_binlog_info"),
        "mariadb-bin.000003\t385\t0-1-42\n",
    )
    .unwrap();
    fs::set_permissions(
        root.join("mysql/user.MAD"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    dir
}

fn source() -> Source {
    Source {
        engine: "mariadb".into(),
        server_version: "10.11.6-MariaDB-0+deb12u1".into(),
        source_host: "db1.example.net".into(),
        position: [
            ("gtid", "0-1-42"),
            ("binlog_file", "mariadb-bin.000003"),
            ("binlog_pos", "385"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    }
}

fn pack_to_vec(dir: &Path) -> (Vec<u8>, Manifest) {
    let mut out = Vec::new();
    let manifest = pack(dir, source(), &mut out, &mut |_| {}).unwrap();
    (out, manifest)
}

fn verify_err(bytes: &[u8]) -> String {
    format!("{:#}", verify(&mut &bytes[..]).unwrap_err())
}

/// Every directory, and every file with its mode and content, relative to `root`.
fn tree(root: &Path) -> Vec<(String, u32, Option<Vec<u8>>)> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o7777;
        let data = entry
            .file_type()
            .is_file()
            .then(|| fs::read(entry.path()).unwrap());
        // Directory modes are the receiving side's business.
        let mode = if data.is_some() { mode } else { 0 };
        found.push((rel, mode, data));
    }
    found
}

#[test]
fn round_trip_reproduces_the_tree() {
    let dir = backup_dir();
    let (bytes, manifest) = pack_to_vec(dir.path());
    assert_eq!(
        manifest.dirs,
        [
            "empty",
            "mysql",
            "shop",
            "shop/orders",
            "shop/orders/deep",
            "shop/orders/deep/er"
        ]
    );
    assert_eq!(manifest.files.len(), 6);
    assert_eq!(
        manifest.total_bytes(),
        (BIG + 4000 + 70_000 + 3 + 30) as u64
    );

    let scratch = tempfile::tempdir().unwrap();
    let into = scratch.path().join("staging/new");
    let mut seen = Vec::new();
    let unpacked = unpack(&mut &bytes[..], &into, &mut |n| seen.push(n)).unwrap();
    assert_eq!(unpacked, manifest);
    assert_eq!(seen.last(), Some(&manifest.total_bytes()));
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress only grows");

    let marker = into.join(UNPACKED_MANIFEST);
    let marked = Manifest::from_toml(&fs::read_to_string(&marker).unwrap()).unwrap();
    assert_eq!(marked, manifest);
    fs::remove_file(marker).unwrap();
    assert_eq!(tree(&into), tree(dir.path()));
    assert_eq!(verify(&mut &bytes[..]).unwrap(), manifest);
}

#[test]
fn large_files_get_zip64_entries_and_still_round_trip() {
    let dir = backup_dir();
    let mut bytes = Vec::new();
    let manifest = pack::pack(dir.path(), source(), &mut bytes, &mut |_| {}, 0).unwrap();
    assert_eq!(verify(&mut &bytes[..]).unwrap(), manifest);
    let scratch = tempfile::tempdir().unwrap();
    unpack(&mut &bytes[..], scratch.path(), &mut |_| {}).unwrap();
    fs::remove_file(scratch.path().join(UNPACKED_MANIFEST)).unwrap();
    assert_eq!(tree(scratch.path()), tree(dir.path()));
    unzip_accepts(&bytes);
}

#[test]
fn manifest_comes_first_with_its_size_in_the_local_header() {
    let dir = backup_dir();
    let (bytes, manifest) = pack_to_vec(dir.path());
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    assert_eq!(u16_at(6) & 0x08, 0, "no data descriptor flag");
    let name_len = usize::from(u16_at(26));
    assert_eq!(&bytes[30..30 + name_len], MANIFEST_NAME.as_bytes());
    let text = manifest.to_toml();
    assert_eq!(u32_at(18) as usize, text.len(), "compressed size");
    assert_eq!(u32_at(22) as usize, text.len(), "uncompressed size");
    assert_eq!(u32_at(14), crc32fast::hash(text.as_bytes()));
    // A reader that gets nothing but the manifest's bytes has all it needs.
    let data_start = 30 + name_len + usize::from(u16_at(28));
    let only_manifest = &bytes[..data_start + text.len()];
    assert_eq!(read_manifest(&mut &only_manifest[..]).unwrap(), manifest);
}

#[test]
fn a_truncated_stream_is_refused_wherever_it_is_cut() {
    let dir = backup_dir();
    let (bytes, _) = pack_to_vec(dir.path());
    let mut cuts: Vec<usize> = (0..bytes.len()).step_by(bytes.len() / 41).collect();
    cuts.extend([
        1,
        29,
        31,
        bytes.len() - 1,
        bytes.len() - 22,
        bytes.len() - 23,
    ]);
    // Just before and inside the data descriptor after ibdata1, the first big file.
    let data = find(&bytes, &noise(64, 1));
    cuts.extend([data + BIG, data + BIG + 3]);
    for cut in cuts {
        let err = verify_err(&bytes[..cut]);
        assert!(err.contains("truncated"), "cut at {cut}: {err}");
    }
    let err = verify_err(&bytes[..data + (1 << 20)]);
    assert!(
        err.contains("stream ended inside `ibdata1` after 1048576 of 3145745 bytes"),
        "{err}"
    );
}

#[test]
fn a_truncated_stream_leaves_no_completion_marker() {
    let dir = backup_dir();
    let (bytes, _) = pack_to_vec(dir.path());
    let scratch = tempfile::tempdir().unwrap();
    let err = unpack(&mut &bytes[..bytes.len() - 30], scratch.path(), &mut |_| {}).unwrap_err();
    assert!(
        format!("{err:#}").contains("zip directory is incomplete"),
        "{err:#}"
    );
    assert!(!scratch.path().join(UNPACKED_MANIFEST).exists());
}

#[test]
fn a_flipped_byte_names_the_file() {
    let dir = backup_dir();
    let (mut bytes, manifest) = pack_to_vec(dir.path());
    let data = find(&bytes, &noise(64, 3));
    bytes[data + 1000] ^= 0x01;
    let err = verify_err(&bytes);
    let expected = &manifest
        .files
        .iter()
        .find(|f| f.path == "shop/orders/t.ibd")
        .unwrap()
        .sha256;
    assert!(
        err.contains("`shop/orders/t.ibd` does not match the manifest: SHA-256 ")
            && err.contains(&format!("expected {expected}")),
        "{err}"
    );
}

#[test]
fn a_flipped_byte_in_the_manifest_is_refused() {
    let dir = backup_dir();
    let (mut bytes, _) = pack_to_vec(dir.path());
    let at = find(&bytes, b"db1.example.net");
    bytes[at] = b'x';
    let err = verify_err(&bytes);
    assert!(err.contains("manifest.toml"), "{err}");
}

#[test]
fn unzip_accepts_a_bundle() {
    let dir = backup_dir();
    let (bytes, _) = pack_to_vec(dir.path());
    unzip_accepts(&bytes);
}

/// `unzip -t`, and an extraction that matches the source, when unzip is installed.
fn unzip_accepts(bytes: &[u8]) {
    if Command::new("unzip").arg("-v").output().is_err() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("bundle.zip");
    fs::write(&file, bytes).unwrap();
    let test = Command::new("unzip")
        .arg("-tq")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "unzip -t: {}",
        String::from_utf8_lossy(&test.stdout)
    );
    let out = scratch.path().join("out");
    let run = Command::new("unzip")
        .arg("-q")
        .arg(&file)
        .arg("-d")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "unzip: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let manifest = read_manifest(&mut &bytes[..]).unwrap();
    assert_eq!(
        fs::read_to_string(out.join(MANIFEST_NAME)).unwrap(),
        manifest.to_toml()
    );
    for file in &manifest.files {
        let data = fs::read(out.join(&file.path)).unwrap();
        assert_eq!(data.len() as u64, file.size, "{}", file.path);
    }
}

/// A bundle made by hand: this manifest, then these entries, whatever they are.
fn craft(manifest: &Manifest, entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut zip = ZipWriter::new_stream(&mut out);
    let text = manifest.to_toml();
    zip.add_prepared_file(pack::manifest_entry(text.as_bytes(), DateTime::default()).unwrap())
        .unwrap();
    for (name, data) in entries {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .unix_permissions(0o644);
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
    out
}

fn manifest_of(files: &[(&str, &[u8])]) -> Manifest {
    use sha2::{Digest, Sha256};
    Manifest {
        format: super::manifest::FORMAT,
        engine: "mariadb".into(),
        server_version: "10.11.6".into(),
        source_host: "db1".into(),
        created_at: jiff::Timestamp::UNIX_EPOCH,
        position: Position::default(),
        dirs: Vec::new(),
        files: files
            .iter()
            .map(|(path, data)| FileEntry {
                path: (*path).into(),
                size: data.len() as u64,
                sha256: hex::encode(Sha256::digest(data)),
                mode: 0o644,
            })
            .collect(),
    }
}

#[test]
fn crafted_bundle_round_trips() {
    let files: [(&str, &[u8]); 2] = [("a", b"one"), ("b", b"two")];
    let bytes = craft(&manifest_of(&files), &files);
    verify(&mut &bytes[..]).unwrap();
}

#[test]
fn an_entry_not_in_the_manifest_is_refused() {
    let files: [(&str, &[u8]); 1] = [("a", b"one")];
    let bytes = craft(&manifest_of(&files), &[("a", b"one"), ("extra", b"x")]);
    assert!(verify_err(&bytes).contains("`extra` is in the bundle but not in its manifest"));
}

#[test]
fn a_missing_entry_is_refused() {
    let files: [(&str, &[u8]); 3] = [("a", b"one"), ("b", b"two"), ("c", b"six")];
    let at_end = craft(&manifest_of(&files), &files[..2]);
    let err = verify_err(&at_end);
    assert!(err.contains("incomplete: it ends without `c`"), "{err}");
    let in_between = craft(&manifest_of(&files), &[files[0], files[2]]);
    let err = verify_err(&in_between);
    assert!(
        err.contains("`b` is missing from the bundle (`c` came in its place)"),
        "{err}"
    );
}

#[test]
fn a_duplicate_entry_is_refused() {
    let files: [(&str, &[u8]); 2] = [("a", b"one"), ("b", b"one")];
    let mut bytes = craft(&manifest_of(&files), &files);
    // The zip writer refuses duplicate names; rename `b` to `a` in its local header.
    let header = find_all(&bytes, b"PK\x03\x04")[2];
    assert_eq!(bytes[header + 30], b'b');
    bytes[header + 30] = b'a';
    let err = verify_err(&bytes);
    assert!(err.contains("`a` appears twice in the bundle"), "{err}");
}

#[test]
fn paths_that_leave_the_target_are_refused() {
    for path in [
        "../evil",
        "/etc/evil",
        "a/../../evil",
        "a//b",
        "./a",
        "manifest.toml",
        UNPACKED_MANIFEST,
        "a\\b",
    ] {
        // The manifest is refused before any entry is read.
        let bytes = craft(&manifest_of(&[(path, b"boom")]), &[]);
        let scratch = tempfile::tempdir().unwrap();
        let into = scratch.path().join("into");
        let err = format!(
            "{:#}",
            unpack(&mut &bytes[..], &into, &mut |_| {}).unwrap_err()
        );
        assert!(
            err.contains(&format!("manifest.toml is not valid: file `{path}`")),
            "{path}: {err}"
        );
        assert!(
            !scratch.path().join("evil").exists() && !into.exists(),
            "{path}"
        );
    }
    // An entry whose name escapes is never the one the (checked) manifest expects.
    let files: [(&str, &[u8]); 1] = [("a", b"boom")];
    let bytes = craft(&manifest_of(&files), &[("../a", b"boom")]);
    let err = verify_err(&bytes);
    assert!(
        err.contains("`a` is missing from the bundle (`../a` came in its place)")
            || err.contains("`../a` is in the bundle but not in its manifest"),
        "{err}"
    );
}

#[test]
fn unpack_wants_an_empty_directory() {
    let dir = backup_dir();
    let (bytes, _) = pack_to_vec(dir.path());
    let err = unpack(&mut &bytes[..], dir.path(), &mut |_| {}).unwrap_err();
    assert!(format!("{err:#}").contains("is not empty"), "{err:#}");
}

#[test]
fn not_a_bundle() {
    assert!(verify_err(b"").contains("not a bundle"));
    let files: [(&str, &[u8]); 3] = [("a", b"one"), ("b", b"two"), ("c", b"six")];
    let err = verify_err(&craft(&manifest_of(&files), &files[..1]));
    assert!(
        err.contains("it ends without `b` and 1 more entries of its manifest"),
        "{err}"
    );
    assert!(verify_err(b"hello, this is text").contains("not a bundle"));
    let files: [(&str, &[u8]); 1] = [("a", b"one")];
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("a", SimpleFileOptions::default()).unwrap();
    zip.write_all(b"one").unwrap();
    let other = zip.finish().unwrap().into_inner();
    let err = verify_err(&other);
    assert!(
        err.contains("its first entry is `a`, not `manifest.toml`"),
        "{err}"
    );
    let mut newer = manifest_of(&files);
    newer.format = 3;
    let err = verify_err(&craft(&newer, &files));
    assert!(err.contains("bundle format 3 is not supported"), "{err}");
    // A bundle of the first format (a single GTID position, before engines had their own).
    let mut older = manifest_of(&files);
    older.format = 1;
    let err = verify_err(&craft(&older, &files));
    assert!(err.contains("bundle format 1 is not supported"), "{err}");
}

#[test]
fn pack_refuses_links_and_special_files() {
    let dir = backup_dir();
    std::os::unix::fs::symlink("ibdata1", dir.path().join("link")).unwrap();
    let err = pack(dir.path(), source(), &mut Vec::new(), &mut |_| {}).unwrap_err();
    assert!(
        format!("{err:#}").contains("link is a symbolic link (to ibdata1)"),
        "{err:#}"
    );

    let dir = backup_dir();
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("mysql.sock")).unwrap();
    let err = pack(dir.path(), source(), &mut Vec::new(), &mut |_| {}).unwrap_err();
    assert!(
        format!("{err:#}").contains("mysql.sock is not a regular file"),
        "{err:#}"
    );

    let dir = backup_dir();
    fs::write(dir.path().join(MANIFEST_NAME), "").unwrap();
    let err = pack(dir.path(), source(), &mut Vec::new(), &mut |_| {}).unwrap_err();
    assert!(
        format!("{err:#}").contains("a name the bundle itself uses"),
        "{err:#}"
    );
}

#[test]
fn a_file_that_changes_while_packing_stops_the_stream() {
    let dir = backup_dir();
    let victim = dir.path().join("zero");
    let mut out = Vec::new();
    let mut touched = false;
    let err = pack(dir.path(), source(), &mut out, &mut |_| {
        if !touched {
            fs::write(&victim, b"late").unwrap();
            touched = true;
        }
    })
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("zero changed while the bundle was being made (it got longer"),
        "{err}"
    );
    let err = verify_err(&out);
    assert!(err.contains("truncated"), "{err}");

    // Same size, other bytes: ibdata1 streams first, x.frm after it.
    let dir = backup_dir();
    let victim = dir.path().join("shop/orders/deep/er/x.frm");
    let mut touched = false;
    let err = pack(dir.path(), source(), &mut Vec::new(), &mut |_| {
        if !touched {
            fs::write(&victim, b"FRM").unwrap();
            touched = true;
        }
    })
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("x.frm changed while the bundle was being made (its content changed"),
        "{err}"
    );
}

#[test]
fn pack_wants_a_directory() {
    let dir = backup_dir();
    let err = pack(
        &dir.path().join("zero"),
        source(),
        &mut Vec::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("zero is not a directory"),
        "{err:#}"
    );
    let err = pack(
        &dir.path().join("nowhere"),
        source(),
        &mut Vec::new(),
        &mut |_| {},
    );
    assert!(format!("{:#}", err.unwrap_err()).contains("cannot read"));
}

#[test]
fn manifest_toml_round_trip() {
    let full = Manifest {
        position: source().position,
        dirs: vec!["db".into()],
        ..manifest_of(&[("db/t.ibd", b"x"), ("ibdata1", b"")])
    };
    let text = full.to_toml();
    assert_eq!(Manifest::from_toml(&text).unwrap(), full);
    let bare = manifest_of(&[]);
    assert_eq!(Manifest::from_toml(&bare.to_toml()).unwrap(), bare);
    assert!(
        !bare.to_toml().contains("gtid"),
        "absent fields are left out"
    );

    let mut twice = manifest_of(&[("a", b"x"), ("a", b"y")]);
    assert!(
        format!("{:#}", Manifest::from_toml(&twice.to_toml()).unwrap_err())
            .contains("`a` is listed twice")
    );
    twice.files.pop();
    twice.files[0].sha256 = "ABC".into();
    assert!(
        format!("{:#}", Manifest::from_toml(&twice.to_toml()).unwrap_err())
            .contains("64 lower-case hex")
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the bytes are in the bundle")
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}
