//! A secret (the replication password) that cannot be printed by accident: its Debug and
//! Display say `<secret>`, and the text is reachable only through [`Secret::expose`]. Its
//! memory is overwritten with zeros when it is dropped (the `zeroize` crate, whose writes
//! the compiler may not optimise away), and so is every buffer this module hands out
//! ([`Secret::substitute`], [`Zeroizing`]).
//!
//! While the process holds secrets it is not dumpable ([`protect_process`]): no core
//! file, and no other process of the same user may attach to it or read its memory.

use std::fmt;

pub use zeroize::{Zeroize, Zeroizing};

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Takes ownership of `value`: a `String` is moved in, not copied, so no copy of it is
    /// left behind unzeroized.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// A strong random password: 32 characters from letters and digits (190 bits), so it
    /// needs no quoting in SQL or shell.
    pub fn generate() -> Self {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        let mut text = String::with_capacity(32);
        for _ in 0..32 {
            // rand's thread generator is a CSPRNG seeded from the OS.
            text.push(ALPHABET[rand::random_range(0..ALPHABET.len())] as char);
        }
        Secret::new(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every `mark` replaced by the secret, as bytes that are zeroized when
    /// dropped. The buffer is sized once, so no reallocation leaves a copy behind.
    pub fn substitute(&self, text: &str, mark: &str) -> Zeroizing<Vec<u8>> {
        let count = if mark.is_empty() {
            0
        } else {
            text.matches(mark).count()
        };
        let len = text.len() - count * mark.len() + count * self.0.len();
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        let mut rest = text;
        while !mark.is_empty()
            && let Some(at) = rest.find(mark)
        {
            out.extend_from_slice(&rest.as_bytes()[..at]);
            out.extend_from_slice(self.0.as_bytes());
            rest = &rest[at + mark.len()..];
        }
        out.extend_from_slice(rest.as_bytes());
        debug_assert_eq!(out.len(), len);
        out
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// Makes this process not dumpable (`prctl(PR_SET_DUMPABLE, 0)`): no core dump is written
/// if it crashes, and processes of the same user can no longer ptrace it or read its
/// memory through /proc, so the passwords and passphrases it holds stay in it. Programs it
/// starts (`ssh`, `sh`) are dumpable again after their exec, as usual. Called first thing in
/// [`crate::run`]; a failure is logged, not fatal (the kernel always allows it).
pub fn protect_process() {
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integers and touches no memory.
    let done = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if done != 0 {
        tracing::warn!(
            "cannot make this process non-dumpable: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Whether this process is dumpable (see [`protect_process`]).
pub fn process_is_dumpable() -> bool {
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) != 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "<secret> <secret>");
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let (a, b) = (Secret::generate(), Secret::generate());
        assert_eq!(a.expose().len(), 32);
        assert_ne!(a, b);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn substitutes_every_mark_in_one_buffer() {
        let secret = Secret::new("pä55'");
        let bytes = secret.substitute("a <s> b <s>", "<s>");
        assert_eq!(&bytes[..], "a pä55' b pä55'".as_bytes());
        assert_eq!(bytes.capacity(), bytes.len());
        assert_eq!(&secret.substitute("none here", "<s>")[..], b"none here");
        assert_eq!(&secret.substitute("x", "")[..], b"x");
    }

    #[test]
    fn the_text_is_zeroed_in_place_on_request() {
        // What Drop does, observed without reading freed memory: zeroize clears the bytes
        // where they are (and the length).
        let mut buffer = Zeroizing::new(b"s3cr3t".to_vec());
        let at = buffer.as_ptr();
        buffer.zeroize();
        assert!(buffer.is_empty());
        // SAFETY: zeroize keeps the allocation; its first 6 bytes are still ours to read.
        let old = unsafe { std::slice::from_raw_parts(at, 6) };
        assert_eq!(old, [0; 6]);
    }

    #[test]
    fn the_process_is_made_non_dumpable() {
        protect_process();
        assert!(!process_is_dumpable());
    }
}
