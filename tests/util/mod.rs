//! Helpers shared by the integration tests.

pub mod lab;
pub mod verify;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The built binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ha-setup"))
}

/// The repository root, for committed files such as completions/.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A run of `ha-setup` with a clean environment, in a directory of the test's choosing, so
/// nothing from the developer's shell (HA_SETUP_CONFIG, HOME, a terminal) leaks in.
pub struct HaSetup {
    command: Command,
}

impl HaSetup {
    pub fn new(cwd: &Path) -> Self {
        let mut command = Command::new(binary());
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", cwd)
            .current_dir(cwd)
            .stdin(Stdio::null());
        HaSetup { command }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn run(mut self) -> Run {
        let output = self.command.output().expect("ha-setup runs");
        Run::from(output)
    }
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing everything the command printed when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}
