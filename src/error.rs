//! The one mapping from an error to the process exit code (SPEC.md, "Exit codes").

use std::fmt;

/// Exit codes that scripts depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok,
    /// The operation failed; the message says where and what to do next.
    Failed,
    /// Usage or configuration error.
    Usage,
    /// Refused for safety: a precondition was not met.
    Refused,
    /// (status) the pair is degraded.
    Degraded,
    /// Stopped by Ctrl-C (128 + SIGINT, as shells report it).
    Interrupted,
    /// `status --format nagios`: the monitoring-plugin convention (0 OK, 1 WARNING,
    /// 2 CRITICAL, 3 UNKNOWN) instead of the codes above.
    Plugin(PluginState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginState {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Failed => 1,
            ExitCode::Usage => 2,
            ExitCode::Refused => 3,
            ExitCode::Degraded => 4,
            ExitCode::Interrupted => 130,
            ExitCode::Plugin(state) => state as u8,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// An error that carries its own exit code. Anything else that reaches `main` is `Failed`.
#[derive(Debug)]
pub struct Exit {
    pub code: ExitCode,
    pub message: String,
}

impl Exit {
    pub fn usage(message: impl Into<String>) -> Self {
        Exit {
            code: ExitCode::Usage,
            message: message.into(),
        }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Exit {
            code: ExitCode::Refused,
            message: message.into(),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Picks the exit code for an error: the first link in its chain that knows one wins.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(exit) = cause.downcast_ref::<Exit>() {
            return exit.code;
        }
        if cause.is::<crate::config::ConfigError>() {
            return ExitCode::Usage;
        }
    }
    ExitCode::Failed
}

/// True when the error is only a closed stdout (`ha-setup status | head`), which is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn exit_code_is_found_anywhere_in_the_chain() {
        let err = anyhow::Error::new(Exit::refused("primary is alive")).context("recover promote");
        assert_eq!(exit_code(&err), ExitCode::Refused);
        let plain = anyhow::anyhow!("boom");
        assert_eq!(exit_code(&plain), ExitCode::Failed);
    }

    #[test]
    fn broken_pipe_is_recognised_behind_context() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let err = Err::<(), _>(io).context("writing status").unwrap_err();
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
