//! SCRAM-SHA-256 verifiers (RFC 5802/7677, as PostgreSQL stores them in `pg_authid`):
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. The replication role is
//! set by a verifier made here, and an existing one is checked against the password here,
//! so the password never goes into SQL that the server could log or show.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::secret::Secret;

/// PostgreSQL's default (`scram_iterations`).
const ITERATIONS: u32 = 4096;

/// A new verifier for `password`, with a random salt.
pub fn verifier(password: &Secret) -> anyhow::Result<Secret> {
    let salt: [u8; 16] = rand::random();
    make(password, &salt, ITERATIONS)
}

/// Whether `stored` (from `pg_authid.rolpassword`) was made from `password`.
pub fn matches(stored: &str, password: &Secret) -> bool {
    let Some(rest) = stored.strip_prefix("SCRAM-SHA-256$") else {
        return false;
    };
    let Some((params, _keys)) = rest.split_once('$') else {
        return false;
    };
    let Some((iterations, salt)) = params.split_once(':') else {
        return false;
    };
    let (Ok(iterations), Ok(salt)) = (iterations.parse::<u32>(), STANDARD.decode(salt)) else {
        return false;
    };
    match make(password, &salt, iterations) {
        Ok(made) => made.expose() == stored,
        Err(_) => false,
    }
}

fn make(password: &Secret, salt: &[u8], iterations: u32) -> anyhow::Result<Secret> {
    // SASLprep is the identity on printable ASCII; anything else could be normalised
    // differently by the server, and the standby then be refused.
    anyhow::ensure!(
        password.expose().bytes().all(|b| (0x20..0x7f).contains(&b)),
        "the replication password must be printable ASCII for PostgreSQL (SCRAM normalises other characters)"
    );
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2::<Hmac<Sha256>>(password.expose().as_bytes(), salt, iterations, &mut salted)
        .map_err(|e| anyhow::anyhow!("cannot derive the SCRAM key: {e}"))?;
    let mut client_key = hmac(&salted, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let server_key = hmac(&salted, b"Server Key");
    salted.zeroize();
    client_key.zeroize();
    Ok(Secret::new(format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )))
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_checks_its_own_password_only() {
        let password = Secret::new("s3cr3t-'\\\"");
        let made = verifier(&password).unwrap();
        assert!(made.expose().starts_with("SCRAM-SHA-256$4096:"));
        assert!(matches(made.expose(), &password));
        assert!(!matches(made.expose(), &Secret::new("other")));
        assert!(!matches("md5abc", &password));
    }

    #[test]
    fn a_password_scram_would_normalise_is_refused() {
        assert!(verifier(&Secret::new("pässword")).is_err());
    }
}
