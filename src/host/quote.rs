//! Shell quoting, in this one place: every value that goes into a remote command does so
//! through [`quote`].

/// Quotes `value` as one POSIX shell word. A NUL byte cannot be passed through a shell at
/// all, so it is dropped rather than letting the word end early.
pub fn quote(value: &str) -> String {
    let clean: std::borrow::Cow<'_, str> = if value.contains('\0') {
        value.replace('\0', "").into()
    } else {
        value.into()
    };
    shlex::try_quote(&clean)
        .expect("a string without NUL bytes always quotes")
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every hostile string must come back unchanged from a real shell.
    #[test]
    fn hostile_strings_survive_a_real_shell() {
        let hostile = [
            "plain",
            "",
            "with space",
            "it's",
            "\"double\"",
            "$(touch /tmp/ha-setup-pwned)",
            "`id`",
            "a;b&&c||d|e",
            "line\nbreak",
            "tab\there",
            "back\\slash",
            "*?[glob]~",
            "-n",
            "$HOME ${PATH}",
            "unicode ünïcødé ✓",
            "'\"'\"'",
        ];
        for value in hostile {
            let script = format!("printf %s {}", quote(value));
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .expect("sh runs");
            assert!(out.status.success(), "{script}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                value,
                "script: {script}"
            );
        }
        assert!(!std::path::Path::new("/tmp/ha-setup-pwned").exists());
    }

    #[test]
    fn nul_bytes_are_dropped() {
        assert_eq!(quote("a\0b"), "ab");
    }
}
