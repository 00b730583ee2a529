//! Starting and stopping a database service the way the host does it: systemd when it
//! runs, otherwise `service` (init scripts); `service = "…"` in a node's config overrides
//! the unit name.

use crate::host::{Cmd, quote};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
        }
    }
}

/// The command that does `verb` to `unit`, as root; it does not wait beyond what the
/// service manager waits for.
pub fn control(unit: &str, verb: Verb, systemd: bool) -> Cmd {
    let unit = quote(unit);
    let verb = verb.as_str();
    // Decided on the host too, in case a plan made elsewhere runs after a reboot.
    let script = if systemd {
        format!("systemctl {verb} {unit}")
    } else {
        format!(
            "if [ -d /run/systemd/system ]; then systemctl {verb} {unit}; else service {unit} {verb} </dev/null; fi"
        )
    };
    Cmd::new(script).as_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_or_init_scripts() {
        assert_eq!(
            control("mariadb", Verb::Restart, true).script,
            "systemctl restart mariadb"
        );
        assert!(
            control("mariadb", Verb::Stop, false)
                .script
                .contains("service mariadb stop")
        );
    }
}
