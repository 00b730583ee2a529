//! `[[sync_files]]` on the lab's MariaDB pair: init copies them, status tells when they
//! drift, `sync` restores them keeping the drifted copy, and bad input is refused before
//! anything is copied. The secrets carry a marker that must never show in what ha-setup
//! prints or records.

use crate::util::Run;
use crate::util::lab::{Host, Lab, lab};

/// In every secret, and never in ha-setup's output or state.
const MARKER: &str = "SECRET-MARKER-7f3a";

fn fresh_state(lab: &Lab, name: &str) -> String {
    let dir = format!("{}/state-{name}", lab.var("HA_LAB_ROOT"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The application's user on both hosts, with a different uid on each: owners go by name.
fn app_user(lab: &Lab) {
    for (host, id) in [(Host::Primary, 990), (Host::Secondary, 991)] {
        lab.exec_ok(
            host,
            &format!(
                "getent group piapp >/dev/null || groupadd -r -g {id} piapp; \
                 getent passwd piapp >/dev/null || useradd -r -M -u {id} -g piapp -s /usr/sbin/nologin piapp"
            ),
        );
    }
}

/// What a path is on a host, everything a copy must keep: type, mode, owner by name, the
/// bytes (by digest), entry by entry.
fn fingerprint(lab: &Lab, host: Host, paths: &str) -> String {
    lab.exec_ok(
        host,
        &format!(
            "cd /srv/pi && find {paths} -printf '%y %m %u %g %p\\n' | sort && \
             find {paths} -type f -exec sha256sum {{}} + | sort"
        ),
    )
}

#[track_caller]
fn assert_no_secret(run: &Run, what: &str) {
    assert!(
        !run.stdout.contains(MARKER) && !run.stderr.contains(MARKER),
        "{what} printed the secret: {run:?}"
    );
}

/// Nothing under the state directory (journal, event history) holds the secret.
#[track_caller]
fn assert_state_clean(state: &str) {
    let found = std::process::Command::new("grep")
        .args(["-r", "-l", MARKER, state])
        .output()
        .expect("grep runs");
    assert!(
        found.stdout.is_empty(),
        "the secret is in {}",
        String::from_utf8_lossy(&found.stdout)
    );
}

fn kept(lab: &Lab, host: Host, prefix: &str) -> Vec<String> {
    lab.exec_ok(
        host,
        &format!("ls -d /srv/pi/{prefix}.ha-setup-old-* 2>/dev/null || true"),
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

#[test]
#[ignore = "needs the lab"]
fn init_copies_the_files_status_sees_drift_and_sync_restores_them() {
    let lab = lab();
    lab.reset();
    app_user(&lab);
    lab.exec_ok(
        Host::Primary,
        &format!(
            "set -e; mkdir -p /srv/pi/keys/old; \
             printf '{MARKER} pepper\\n' > /srv/pi/enckey; chown piapp:piapp /srv/pi/enckey; chmod 0400 /srv/pi/enckey; \
             {{ head -c 3000 /dev/urandom; echo {MARKER}; }} > /srv/pi/keys/private.pem; \
             echo public > /srv/pi/keys/public.pem; echo {MARKER} > /srv/pi/keys/old/private.pem; \
             chown -R piapp:piapp /srv/pi/keys; chmod 0750 /srv/pi/keys; chmod 0600 /srv/pi/keys/private.pem /srv/pi/keys/old/private.pem; \
             chmod 0644 /srv/pi/keys/public.pem; chown root:piapp /srv/pi/keys/public.pem"
        ),
    );
    // The secondary holds another key already (kept aside by init), and no keys.
    lab.exec_ok(
        Host::Secondary,
        "mkdir -p /srv/pi && echo another-key > /srv/pi/enckey && chmod 0644 /srv/pi/enckey",
    );
    let config = lab.write_config(
        "sync",
        "\n[[sync_files]]\npath = \"/srv/pi/enckey\"\n\n[[sync_files]]\npath = \"/srv/pi/keys/\"\n",
    );
    let state = fresh_state(&lab, "sync");
    let env = [("HA_SETUP_STATE_DIR", state.as_str())];

    // The dry run shows the check and the copies, and copies nothing.
    let plan = lab.ha_setup_with(&env, &["init", "-c", &config, "--dry-run"]);
    plan.expect_code(0);
    assert_no_secret(&plan, "init --dry-run");
    assert!(
        plan.stdout
            .contains("/srv/pi/enckey: a file, 0400 piapp:piapp")
            && plan.stdout.contains("differs on secondary"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("sync-files")
            && plan.stdout.contains("copy /srv/pi/keys as a tar stream"),
        "{}",
        plan.stdout
    );
    assert_eq!(
        lab.exec_ok(Host::Secondary, "cat /srv/pi/enckey; ls /srv/pi"),
        "another-key\nenckey\n"
    );

    let init = lab.ha_setup_with(&env, &["init", "-c", &config, "--yes", "-vv"]);
    init.expect_code(0);
    assert_no_secret(&init, "init -vv");
    let paths = "enckey keys";
    let on_primary = fingerprint(&lab, Host::Primary, paths);
    assert!(
        on_primary.contains("f 400 piapp piapp enckey"),
        "{on_primary}"
    );
    assert_eq!(fingerprint(&lab, Host::Secondary, paths), on_primary);
    // By name: piapp is uid 991 on the secondary.
    assert_eq!(
        lab.exec_ok(Host::Secondary, "stat -c '%u %U' /srv/pi/keys/private.pem"),
        "991 piapp\n"
    );
    let old = kept(&lab, Host::Secondary, "enckey");
    assert_eq!(old.len(), 1, "{old:?}");
    assert_eq!(
        lab.exec_ok(Host::Secondary, &format!("cat {}", old[0])),
        "another-key\n"
    );
    lab.exec(Host::Secondary, "test ! -e /srv/pi/keys.ha-setup-new")
        .expect_code(0);

    // Again: nothing changes, nothing more is kept.
    let again = lab.ha_setup_with(&env, &["init", "-c", &config, "--yes"]);
    again.expect_code(0);
    assert!(again.stdout.contains("nothing to change"), "{again:?}");
    assert_eq!(kept(&lab, Host::Secondary, "enckey").len(), 1);
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{status}");
    assert_eq!(
        status["files"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );
    assert_eq!(status["files"][0]["same"], true, "{status}");
    assert_eq!(status["files"][1]["path"], "/srv/pi/keys", "{status}");

    // Drift on the secondary: a byte of a key, the mode of the other.
    lab.exec_ok(
        Host::Secondary,
        "printf X | dd of=/srv/pi/keys/private.pem bs=1 seek=10 conv=notrunc status=none; chmod 0644 /srv/pi/enckey",
    );
    let drifted = fingerprint(&lab, Host::Secondary, paths);
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(4), "{status}");
    let files = &status["files"];
    assert_eq!(files[0]["same"], false, "{status}");
    assert_eq!(files[0]["differs_on"], serde_json::json!(["secondary"]));
    assert_eq!(files[0]["differences"]["secondary"], "mode 0644, not 0400");
    assert_eq!(files[1]["differs_on"], serde_json::json!(["secondary"]));
    assert_eq!(
        files[1]["differences"]["secondary"],
        "private.pem: contents differ"
    );
    let text = lab.ha_setup_with(&env, &["status", "-c", &config, "--no-canary"]);
    text.expect_code(4);
    assert!(
        text.stdout
            .contains("/srv/pi/enckey  differs on secondary (mode 0644, not 0400)"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("ha-setup sync"), "{}", text.stdout);
    let nagios = lab.ha_setup_with(
        &env,
        &["status", "-c", &config, "--format", "nagios", "--no-canary"],
    );
    nagios.expect_code(1);
    assert!(
        nagios.stdout.starts_with("HA-SETUP WARNING - link alive")
            && nagios
                .stdout
                .contains(": files: /srv/pi/enckey differs on secondary"),
        "{}",
        nagios.stdout
    );

    // sync --dry-run: the plan, and nothing changes.
    let dry = lab.ha_setup_with(&env, &["sync", "-c", &config, "--dry-run"]);
    dry.expect_code(0);
    assert_no_secret(&dry, "sync --dry-run");
    assert!(
        dry.stdout
            .contains("keep what secondary holds there (mode 0644, not 0400)"),
        "{}",
        dry.stdout
    );
    let plan = lab.ha_setup_with(&env, &["plan", "-c", &config, "sync"]);
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains("[primary → secondary] copy /srv/pi/keys as a tar stream"),
        "{}",
        plan.stdout
    );
    assert_eq!(fingerprint(&lab, Host::Secondary, paths), drifted);

    let sync = lab.ha_setup_with(&env, &["sync", "-c", &config, "--yes", "-vv"]);
    sync.expect_code(0);
    assert_no_secret(&sync, "sync -vv");
    assert_eq!(fingerprint(&lab, Host::Secondary, paths), on_primary);
    assert_eq!(kept(&lab, Host::Secondary, "enckey").len(), 2);
    let old_keys = kept(&lab, Host::Secondary, "keys");
    assert_eq!(old_keys.len(), 1, "{old_keys:?}");
    assert_eq!(
        lab.exec_ok(
            Host::Secondary,
            &format!("head -c 11 {}/private.pem | tail -c 1", old_keys[0])
        ),
        "X"
    );
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{status}");

    let again = lab.ha_setup_with(&env, &["sync", "-c", &config, "--yes"]);
    again.expect_code(0);
    assert!(again.stdout.contains("nothing to change"), "{again:?}");
    assert_eq!(kept(&lab, Host::Secondary, "enckey").len(), 2);
    assert_eq!(kept(&lab, Host::Secondary, "keys").len(), 1);

    // What an interrupted run leaves: a staging directory, and a directory moved aside
    // before the copy took its place. The next sync removes the one and copies again.
    lab.exec_ok(
        Host::Secondary,
        "mkdir -m 0700 /srv/pi/enckey.ha-setup-new && echo partial > /srv/pi/enckey.ha-setup-new/enckey && \
         mv /srv/pi/keys /srv/pi/keys.ha-setup-old-20000101T000000Z",
    );
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(4), "{status}");
    assert_eq!(status["files"][1]["differences"]["secondary"], "missing");
    assert!(
        status["problems"]
            .to_string()
            .contains("an interrupted copy left /srv/pi/enckey.ha-setup-new on secondary"),
        "{status}"
    );
    let resumed = lab.ha_setup_with(&env, &["sync", "-c", &config, "--yes"]);
    resumed.expect_code(0);
    assert_eq!(fingerprint(&lab, Host::Secondary, paths), on_primary);
    lab.exec(Host::Secondary, "test ! -e /srv/pi/enckey.ha-setup-new")
        .expect_code(0);
    assert_eq!(kept(&lab, Host::Secondary, "keys").len(), 2);
    let (code, status) = lab.status_json(&config, &state);
    assert_eq!(code, Some(0), "{status}");
    assert_state_clean(&state);
}

/// A small file system on the secondary's /srv/small, unmounted again however the test ends.
struct Small<'a>(&'a Lab);

impl Drop for Small<'_> {
    fn drop(&mut self) {
        let _ = self.0.exec(Host::Secondary, "umount /srv/small");
        let _ = self.0.exec(Host::Primary, "userdel pionly");
    }
}

#[test]
#[ignore = "needs the lab"]
fn bad_input_is_refused_before_anything_is_copied() {
    let lab = lab();
    lab.reset();
    app_user(&lab);
    let _small = Small(&lab);
    // A user on the primary alone: the hosts have /etc/passwd files of their own.
    lab.exec_ok(
        Host::Primary,
        "getent passwd pionly >/dev/null || useradd -r -M -s /usr/sbin/nologin pionly",
    );
    lab.exec(Host::Secondary, "getent passwd pionly")
        .expect_code(2);
    lab.exec_ok(
        Host::Primary,
        &format!(
            "set -e; mkdir -p /srv/pi /srv/small; echo {MARKER} > /srv/pi/enckey; ln -s enckey /srv/pi/link; \
             echo {MARKER} > /srv/pi/owned; chown pionly /srv/pi/owned; head -c 1M /dev/urandom > /srv/small/blob"
        ),
    );
    lab.exec_ok(
        Host::Secondary,
        "mkdir -p /srv/pi /srv/small && mount -t tmpfs -o size=16k tmpfs /srv/small",
    );
    let state = fresh_state(&lab, "sync-bad");
    let env = [("HA_SETUP_STATE_DIR", state.as_str())];
    let cases = [
        ("/srv/pi/nothing", "/srv/pi/nothing is missing on primary"),
        ("/srv/pi/link", "/srv/pi/link on primary is a symbolic link"),
        (
            "/srv/pi/owned",
            "/srv/pi/owned belongs to the user pionly, which does not exist on secondary",
        ),
        (
            "/srv/small/blob",
            "no room for /srv/small/blob on secondary: the copy needs 1.0 MiB",
        ),
    ];
    for (path, said) in cases {
        let config = lab.write_config(
            "sync-bad",
            &format!(
                "\n[[sync_files]]\npath = \"/srv/pi/enckey\"\n\n[[sync_files]]\npath = \"{path}\"\n"
            ),
        );
        let run = lab.ha_setup_with(&env, &["sync", "-c", &config, "--yes"]);
        run.expect_code(1);
        assert!(run.stderr.contains(said), "{path}: {run:?}");
        assert!(
            run.stderr.contains("nothing was changed"),
            "{path}: {run:?}"
        );
        assert_no_secret(&run, path);
        // Not even the good path was copied.
        assert_eq!(
            lab.exec_ok(Host::Secondary, "ls -A /srv/pi /srv/small"),
            "/srv/pi:\n\n/srv/small:\n",
            "{path}"
        );
    }

    // init stops at its check, before the databases are touched.
    let config = lab.write_config("sync-bad", "\n[[sync_files]]\npath = \"/srv/pi/link\"\n");
    let init = lab.ha_setup_with(&env, &["init", "-c", &config, "--yes"]);
    init.expect_code(1);
    assert!(
        init.stderr.contains("check-files: 1 check(s) failed"),
        "{init:?}"
    );
    lab.exec(
        Host::Primary,
        "test ! -e /etc/mysql/mariadb.conf.d/90-ha-setup.cnf",
    )
    .expect_code(0);

    // Before any init, the config's primary is the one copied from; relayed through this
    // machine when asked (the other tests go host to host).
    let config = lab.write_config(
        "sync-bad",
        "\n[transfer]\nroute = \"relay\"\n\n[[sync_files]]\npath = \"/srv/pi/enckey\"\n",
    );
    let sync = lab.ha_setup_with(&env, &["sync", "-c", &config, "--yes"]);
    sync.expect_code(0);
    assert!(sync.stderr.contains("through this machine"), "{sync:?}");
    assert_no_secret(&sync, "sync");
    assert_eq!(
        lab.exec_ok(Host::Secondary, "cat /srv/pi/enckey"),
        format!("{MARKER}\n")
    );
    assert_state_clean(&state);
}
