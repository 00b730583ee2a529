//! `ha-setup bundle …` as a script and the hosts use it: pack to a file, inspect, verify,
//! unpack from stdin, and refusals with exit 1 and a message that names the problem.

use std::fs;
use std::path::Path;
use std::process::Command;

use ha_setup::bundle::{Manifest, UNPACKED_MANIFEST};

use crate::util::{HaSetup, Run, binary};

/// `sh -c SCRIPT` in `cwd` with the same clean environment as `HaSetup`, and `$HA` set to
/// the binary: the bundle stream is binary, so it goes through shell redirection.
fn sh(cwd: &Path, script: &str) -> Run {
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", cwd)
        .env("HA", binary())
        .current_dir(cwd)
        .output()
        .expect("sh runs");
    Run::from(output)
}

/// Bytes in which no window repeats, so a test can find a file's data in the bundle.
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

/// A small backup directory: nested and empty directories, an empty file, a binlog position.
fn backup(root: &Path) {
    let src = root.join("src");
    fs::create_dir_all(src.join("shop/archive")).unwrap();
    fs::create_dir_all(src.join("empty_db")).unwrap();
    fs::write(src.join("ibdata1"), noise(300_000, 1)).unwrap();
    fs::write(src.join("shop/t.ibd"), noise(70_000, 2)).unwrap();
    fs::write(src.join("shop/archive/old.ibd"), b"").unwrap();
    fs::write(
        src.join("xtrabackup_binlog_info"),
        "mariadb-bin.000003\t385\t0-1-42,1-2-7\n",
    )
    .unwrap();
}

const PACK: &str = "\"$HA\" bundle pack --dir src --engine mariadb \
    --server-version 10.11.6-MariaDB-0+deb12u1 --source-host db1.example.net > bundle.bundle";

fn packed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    backup(dir.path());
    sh(dir.path(), PACK).expect_code(0);
    dir
}

fn files_under(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .display()
            .to_string();
        let data = if entry.file_type().is_file() {
            fs::read(entry.path()).unwrap()
        } else {
            Vec::new()
        };
        files.push((rel, data));
    }
    files
}

#[test]
fn inspect_shows_where_the_bundle_comes_from() {
    let dir = packed();
    let run = HaSetup::new(dir.path())
        .args(["bundle", "inspect", "bundle.bundle"])
        .run();
    run.expect_code(0);
    for line in [
        "engine:       mariadb 10.11.6-MariaDB-0+deb12u1",
        "source host:  db1.example.net",
        "position:     binlog_file mariadb-bin.000003, binlog_pos 385, gtid 0-1-42,1-2-7",
        "files:        4 in 3 directories, 361.4 KiB (370036 bytes)",
        "ibdata1",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in\n{}", run.stdout);
    }

    let run = HaSetup::new(dir.path())
        .args(["bundle", "inspect", "bundle.bundle", "--format", "json"])
        .run();
    run.expect_code(0);
    let manifest: Manifest = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(manifest.engine, "mariadb");
    assert_eq!(manifest.position["binlog_pos"], "385");
    assert_eq!(manifest.dirs, ["empty_db", "shop", "shop/archive"]);
    assert_eq!(manifest.files.len(), 4);
}

#[test]
fn verify_passes_and_unpack_reproduces_the_tree() {
    let dir = packed();
    let run = HaSetup::new(dir.path())
        .args(["bundle", "verify", "bundle.bundle"])
        .run();
    run.expect_code(0);
    assert_eq!(
        run.stdout.trim(),
        "bundle.bundle: 4 files, 370036 bytes (361.4 KiB), all match the manifest"
    );

    let run = sh(
        dir.path(),
        "\"$HA\" bundle unpack --into out/new < bundle.bundle",
    );
    run.expect_code(0);
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "one line of JSON: {}",
        run.stdout
    );
    let manifest: Manifest = serde_json::from_str(&run.stdout).unwrap();
    let out = dir.path().join("out/new");
    let marked = fs::read_to_string(out.join(UNPACKED_MANIFEST)).unwrap();
    assert_eq!(Manifest::from_toml(&marked).unwrap(), manifest);
    fs::remove_file(out.join(UNPACKED_MANIFEST)).unwrap();
    assert_eq!(files_under(&out), files_under(&dir.path().join("src")));

    // Again into the same, now full, directory: refused.
    let run = sh(
        dir.path(),
        "\"$HA\" bundle unpack --into out/new < bundle.bundle",
    );
    run.expect_code(1);
    assert!(run.stderr.contains("is not empty"), "{}", run.stderr);
}

#[test]
fn a_truncated_bundle_fails_verify_and_unpack() {
    let dir = packed();
    let bytes = fs::read(dir.path().join("bundle.bundle")).unwrap();
    fs::write(dir.path().join("short.bundle"), &bytes[..bytes.len() / 2]).unwrap();
    let run = HaSetup::new(dir.path())
        .args(["bundle", "verify", "short.bundle"])
        .run();
    run.expect_code(1);
    assert!(
        run.stderr.contains("short.bundle failed verification")
            && run.stderr.contains("the bundle is cut short"),
        "{}",
        run.stderr
    );
    let run = sh(
        dir.path(),
        "\"$HA\" bundle unpack --into out < short.bundle",
    );
    run.expect_code(1);
    assert!(run.stderr.contains("cut short"), "{}", run.stderr);
    assert!(!dir.path().join("out").join(UNPACKED_MANIFEST).exists());
}

#[test]
fn an_altered_bundle_names_the_file() {
    let dir = packed();
    let mut bytes = fs::read(dir.path().join("bundle.bundle")).unwrap();
    let start = noise(64, 2);
    let t_ibd = bytes.windows(64).position(|w| w == start).unwrap();
    bytes[t_ibd + 5000] ^= 0x20;
    fs::write(dir.path().join("altered.bundle"), &bytes).unwrap();
    let run = HaSetup::new(dir.path())
        .args(["bundle", "verify", "altered.bundle"])
        .run();
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("`shop/t.ibd` does not match what was sent"),
        "{}",
        run.stderr
    );
}

#[test]
fn pack_refuses_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    backup(dir.path());
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("src/passwd")).unwrap();
    let run = sh(dir.path(), PACK);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("passwd is a symbolic link (to /etc/passwd)"),
        "{}",
        run.stderr
    );
}

#[test]
fn pack_and_unpack_are_not_in_the_help() {
    let dir = tempfile::tempdir().unwrap();
    let run = HaSetup::new(dir.path()).args(["bundle", "--help"]).run();
    run.expect_code(0);
    assert!(!run.stdout.contains("pack"), "{}", run.stdout);
}

/// A config whose hosts are never reached: `bundle create` must stop before connecting.
fn unreachable_config(dir: &Path) -> String {
    let path = dir.join("ha-setup.toml");
    fs::write(
        &path,
        "engine = \"mariadb\"\n[primary]\nhost = \"192.0.2.1\"\n[secondary]\nhost = \"192.0.2.2\"\n\
         [ssh]\nconnect_timeout_secs = 1\n",
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn create_refuses_a_planted_partial_symlink_before_any_host() {
    let dir = tempfile::tempdir().unwrap();
    let config = unreachable_config(dir.path());
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("db.partial")).unwrap();
    let started = std::time::Instant::now();
    let run = HaSetup::new(dir.path())
        .args(["bundle", "create", "-c", &config, "--out", "db.bundle"])
        .run();
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains("db.partial exists already (a symbolic link)"),
        "{run:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "it connected first"
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!dir.path().join("db.bundle").exists());
    assert!(
        fs::symlink_metadata(dir.path().join("db.partial"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the planted link is left for the operator to look at"
    );
}

#[test]
fn create_removes_its_partial_file_when_it_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = unreachable_config(dir.path());
    let run = HaSetup::new(dir.path())
        .args(["bundle", "create", "-c", &config, "--out", "db.bundle"])
        .run();
    assert_ne!(run.code, Some(0), "{run:?}");
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["ha-setup.toml"], "{run:?}");
}

#[test]
#[ignore = "needs the lab"]
fn create_writes_a_file_only_its_owner_can_read() {
    use std::os::unix::fs::PermissionsExt;

    use crate::util::lab::lab;

    let lab = lab();
    lab.reset();
    let config = lab.write_config("bundle-mode", "");
    let out = format!("{}/private-bundle.bundle", lab.var("HA_LAB_ROOT"));
    let _ = fs::remove_file(&out);
    // Under the most permissive umask, as a careless shell might have.
    let run = Run::from(
        lab.command()
            .args(["exec", "operator", "sh", "-c"])
            .arg("umask 000; exec \"$0\" \"$@\"")
            .arg(binary())
            .args(["bundle", "create", "-c", &config, "--out", &out])
            .output()
            .unwrap(),
    );
    run.expect_code(0);
    let mode = fs::metadata(&out).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "{out} has mode {mode:o}");
    assert!(!Path::new(&out).with_extension("partial").exists());
    let _ = fs::remove_file(&out);
}
