use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::frame::{CHUNK_TAG, END_TAG, FINAL_TAG, MAGIC};
use super::manifest::FORMAT;
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
    let manifest = pack(dir, source(), &mut out, Compress::None, &mut |_| {}).unwrap();
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

/// A bundle written frame by frame, as a backup tool's stream makes one.
fn streamed(build: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = Writer::new(&mut out, Compress::None).unwrap();
    build(&mut writer);
    writer.finish(source()).unwrap();
    out
}

fn unpacked(bytes: &[u8]) -> (tempfile::TempDir, anyhow::Result<Manifest>) {
    let scratch = tempfile::tempdir().unwrap();
    let result = unpack(&mut &bytes[..], &scratch.path().join("new"), &mut |_| {});
    (scratch, result)
}

#[test]
fn interleaved_files_and_holes_arrive_whole() {
    let log = noise(5000, 7);
    let bytes = streamed(|w| {
        w.chunk("ibdata1", 0, b"first").unwrap();
        w.chunk("ib_logfile0", 0, &log[..3000]).unwrap();
        w.chunk("shop/t.ibd", 0, b"table").unwrap();
        w.chunk("ibdata1", 5, b"-second").unwrap();
        w.end("ibdata1", 0o640).unwrap();
        // A hole: bytes 5..100 are zeros.
        w.chunk("shop/t.ibd", 100, b"end").unwrap();
        w.end("shop/t.ibd", 0o640).unwrap();
        w.end("empty", 0o600).unwrap();
        w.chunk("ib_logfile0", 3000, &log[3000..]).unwrap();
        w.end("ib_logfile0", 0o640).unwrap();
    });
    let (scratch, result) = unpacked(&bytes);
    let manifest = result.unwrap();
    let into = scratch.path().join("new");
    assert_eq!(fs::read(into.join("ibdata1")).unwrap(), b"first-second");
    assert_eq!(fs::read(into.join("ib_logfile0")).unwrap(), log);
    let mut table = b"table".to_vec();
    table.resize(100, 0);
    table.extend(b"end");
    assert_eq!(fs::read(into.join("shop/t.ibd")).unwrap(), table);
    assert_eq!(fs::read(into.join("empty")).unwrap(), b"");
    let order: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(order, ["ibdata1", "shop/t.ibd", "empty", "ib_logfile0"]);
    assert_eq!(manifest.dirs, ["shop"]);
    assert_eq!(manifest.files[1].size, 103);
    assert_eq!(manifest.position, source().position);
    let mode = fs::metadata(into.join("empty"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o600);
    assert!(into.join(UNPACKED_MANIFEST).exists());
}

#[test]
fn compressed_chunks_arrive_as_they_were_and_incompressible_ones_go_as_they_are() {
    let dir = backup_dir();
    fs::write(dir.path().join("text.ibd"), "row of text, ".repeat(200_000)).unwrap();
    let mut plain = Vec::new();
    let manifest = pack(
        dir.path(),
        source(),
        &mut plain,
        Compress::None,
        &mut |_| {},
    )
    .unwrap();
    let mut packed = Vec::new();
    let same = pack(
        dir.path(),
        source(),
        &mut packed,
        Compress::Zstd,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(same.files, manifest.files);
    // The text shrinks; the noise (3 MiB of ibdata1) is sent as it is.
    assert!(
        packed.len() < plain.len() - 2_000_000,
        "{} vs {}",
        packed.len(),
        plain.len()
    );
    assert!(packed.len() > BIG, "{}", packed.len());
    let (scratch, result) = unpacked(&packed);
    assert_eq!(result.unwrap().files, manifest.files);
    let into = scratch.path().join("new");
    assert_eq!(
        fs::read(into.join("text.ibd")).unwrap(),
        fs::read(dir.path().join("text.ibd")).unwrap()
    );
    // A damaged compressed chunk is refused, never written as garbage.
    let at = find(&packed, b"text.ibd") + 8 + 8 + 4 + 4 + 10;
    let mut bad = packed.clone();
    bad[at] ^= 0x55;
    assert!(verify(&mut &bad[..]).is_err());
}

#[test]
fn progress_counts_file_bytes_also_when_compressed() {
    let dir = backup_dir();
    fs::write(dir.path().join("text.ibd"), "row of text, ".repeat(100_000)).unwrap();
    for compress in [Compress::None, Compress::Zstd] {
        let mut seen = Vec::new();
        let manifest = pack(dir.path(), source(), &mut Vec::new(), compress, &mut |n| {
            seen.push(n)
        })
        .unwrap();
        assert_eq!(seen.last(), Some(&manifest.total_bytes()), "{compress:?}");
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{compress:?}");
    }
}

#[test]
fn the_writer_refuses_what_a_bundle_cannot_hold() {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out, Compress::None).unwrap();
    w.chunk("a", 0, b"abc").unwrap();
    let err = format!("{:#}", w.chunk("a", 1, b"x").unwrap_err());
    assert!(err.contains("before its end 3 so far"), "{err}");
    w.end("a", 0o640).unwrap();
    let err = format!("{:#}", w.chunk("a", 3, b"x").unwrap_err());
    assert!(err.contains("`a` came again after it ended"), "{err}");
    let err = format!("{:#}", w.chunk("../etc/passwd", 0, b"x").unwrap_err());
    assert!(err.contains("`..` component"), "{err}");
    w.chunk("open", 0, b"x").unwrap();
    let err = format!("{:#}", w.finish(source()).unwrap_err());
    assert!(err.contains("`open` never ended"), "{err}");
}

#[test]
fn a_stream_cut_anywhere_is_refused_and_leaves_no_marker() {
    let dir = backup_dir();
    let (bytes, _) = pack_to_vec(dir.path());
    let step = (bytes.len() / 97).max(1);
    let mut cuts: Vec<usize> = (0..bytes.len()).step_by(step).collect();
    cuts.extend([
        bytes.len() - 1,
        bytes.len() - 13,
        bytes.len() - 14,
        15,
        16,
        19,
        20,
    ]);
    for cut in cuts {
        let err = verify_err(&bytes[..cut]);
        assert!(
            err.contains("cut short") || err.contains("not a bundle made by ha-setup"),
            "cut at {cut}: {err}"
        );
    }
    let (scratch, result) = unpacked(&bytes[..bytes.len() - 1]);
    assert!(result.is_err());
    assert!(!scratch.path().join("new").join(UNPACKED_MANIFEST).exists());
}

#[test]
fn a_flipped_byte_is_refused_and_a_damaged_file_named() {
    let dir = backup_dir();
    let (bytes, _) = pack_to_vec(dir.path());
    // Inside t.ibd's data: the file is named when it ends.
    let mut bad = bytes.clone();
    let at = find(&bad, &noise(70_000, 3)[..64]) + 1000;
    bad[at] ^= 0x20;
    let err = verify_err(&bad);
    assert!(
        err.contains("`shop/orders/t.ibd` does not match what was sent"),
        "{err}"
    );
    // Every single byte flipped somewhere is refused, whatever it hits.
    let step = (bytes.len() / 211).max(1);
    for at in (16..bytes.len()).step_by(step) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        assert!(
            verify(&mut &bad[..]).is_err(),
            "a flipped byte at {at} of {} went unnoticed",
            bytes.len()
        );
    }
}

/// Frames crafted by hand, as a damaged or hostile bundle would have them.
fn frame_path(out: &mut Vec<u8>, path: &str) {
    out.extend((path.len() as u16).to_le_bytes());
    out.extend(path.as_bytes());
}

fn crafted(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(FORMAT.to_le_bytes());
    for frame in frames {
        out.extend(frame);
    }
    out
}

fn chunk_frame(path: &str, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut out = vec![CHUNK_TAG];
    frame_path(&mut out, path);
    out.extend(offset.to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(data);
    out
}

#[test]
fn paths_that_leave_the_target_are_refused_before_anything_is_written() {
    for path in [
        "../escape",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "a\\b",
        UNPACKED_MANIFEST,
        "",
    ] {
        let bytes = crafted(&[chunk_frame(path, 0, b"x")]);
        let (scratch, result) = unpacked(&bytes);
        let err = format!("{:#}", result.unwrap_err());
        assert!(err.contains("which is refused"), "{path}: {err}");
        let written: Vec<_> = fs::read_dir(scratch.path().join("new")).unwrap().collect();
        assert!(written.is_empty(), "{path}: {written:?}");
    }
    assert!(!Path::new("/escape").exists());
}

#[test]
fn a_file_sent_twice_or_unlisted_is_refused() {
    let mut end = vec![END_TAG];
    frame_path(&mut end, "a");
    end.extend(1u64.to_le_bytes());
    end.extend(<[u8; 32]>::from(sha2::Sha256::digest(b"x")));
    end.extend(0o640u32.to_le_bytes());
    let twice = crafted(&[
        chunk_frame("a", 0, b"x"),
        end.clone(),
        chunk_frame("a", 1, b"y"),
    ]);
    assert!(verify_err(&twice).contains("`a` comes again after it ended"));

    // The manifest of another bundle after these files: they are not what it lists.
    let other = streamed(|w| {
        w.chunk("b", 0, b"x").unwrap();
        w.end("b", 0o640).unwrap();
    });
    let at = find(&other, b"M");
    let mut frames = vec![chunk_frame("a", 0, b"x"), end];
    frames.push(other[at..other.len() - 13].to_vec());
    let err = verify_err(&crafted(&frames));
    assert!(
        err.contains("`a` arrived but the manifest does not list it"),
        "{err}"
    );

    let unknown = crafted(&[vec![b'Q', 0, 0]]);
    assert!(verify_err(&unknown).contains("starts no frame (0x51)"));
}

use sha2::Digest as _;

#[test]
fn unpack_wants_an_empty_directory() {
    let dir = backup_dir();
    let (bytes, _) = pack_to_vec(dir.path());
    let scratch = tempfile::tempdir().unwrap();
    fs::write(scratch.path().join("there"), b"").unwrap();
    let err = unpack(&mut &bytes[..], scratch.path(), &mut |_| {}).unwrap_err();
    assert!(format!("{err:#}").contains("is not empty"), "{err:#}");
}

#[test]
fn not_a_bundle_and_older_formats_say_so() {
    assert!(verify_err(b"").contains("empty or cut short"));
    assert!(verify_err(b"hello, this is not a bundle").contains("not a bundle made by ha-setup"));
    let err = verify_err(b"PK\x03\x04\x14\x00\x08\x00rest of a zip");
    assert!(err.contains("format 2 or older"), "{err}");
    assert!(err.contains("ha-setup bundle create"), "{err}");
    let mut newer = MAGIC.to_vec();
    newer.extend(9u32.to_le_bytes());
    let err = verify_err(&newer);
    assert!(err.contains("bundle format 9 is not supported"), "{err}");
    assert!(
        err.contains("use the ha-setup version that made the bundle"),
        "{err}"
    );
}

#[test]
fn the_manifest_is_read_from_the_end_of_a_file() {
    let dir = backup_dir();
    let (bytes, manifest) = pack_to_vec(dir.path());
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("b.bundle");
    fs::write(&path, &bytes).unwrap();
    let read = read_manifest(&mut fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(read, manifest);
    assert_eq!(bytes[bytes.len() - 13], FINAL_TAG);

    fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let err = format!(
        "{:#}",
        read_manifest(&mut fs::File::open(&path).unwrap()).unwrap_err()
    );
    assert!(err.contains("cut short"), "{err}");
}

fn manifest_of(files: &[(&str, &[u8])]) -> Manifest {
    Manifest {
        format: FORMAT,
        engine: "mariadb".into(),
        server_version: "10.11.6".into(),
        source_host: "db1".into(),
        created_at: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        position: Position::default(),
        dirs: Vec::new(),
        files: files
            .iter()
            .map(|(path, data)| FileEntry {
                path: (*path).to_owned(),
                size: data.len() as u64,
                sha256: hex::encode(sha2::Sha256::digest(data)),
                mode: 0o640,
            })
            .collect(),
    }
}

#[test]
fn pack_refuses_links_and_special_files() {
    let dir = backup_dir();
    std::os::unix::fs::symlink("ibdata1", dir.path().join("link")).unwrap();
    let err = pack(
        dir.path(),
        source(),
        &mut Vec::new(),
        Compress::None,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("link is a symbolic link (to ibdata1)"),
        "{err:#}"
    );

    let dir = backup_dir();
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("mysql.sock")).unwrap();
    let err = pack(
        dir.path(),
        source(),
        &mut Vec::new(),
        Compress::None,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("mysql.sock is not a regular file"),
        "{err:#}"
    );

    let dir = backup_dir();
    fs::write(dir.path().join(MANIFEST_NAME), "").unwrap();
    let err = pack(
        dir.path(),
        source(),
        &mut Vec::new(),
        Compress::None,
        &mut |_| {},
    )
    .unwrap_err();
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
    let err = pack(dir.path(), source(), &mut out, Compress::None, &mut |_| {
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
    assert!(err.contains("cut short"), "{err}");
}

#[test]
fn pack_wants_a_directory() {
    let dir = backup_dir();
    let err = pack(
        &dir.path().join("zero"),
        source(),
        &mut Vec::new(),
        Compress::None,
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
        Compress::None,
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
