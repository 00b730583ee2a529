//! The replication password: named by the operator's environment, or generated once and
//! kept on the hosts (0600, root), the same on every node. Never on a command line, in a
//! log or in an error.

use anyhow::{Context, bail};

use crate::host::{Cmd, Host, HostExt, quote};
use crate::plan::Ctx;
use crate::secret::Secret;

/// The replication password, 0600 root, on every node.
pub const PASSWORD_FILE: &str = "/etc/ha-setup/replication-password";

/// A file's contents, or None when it does not exist.
pub fn read_optional(host: &mut dyn Host, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let output = host.run(&Cmd::new(format!("cat -- {} 2>/dev/null", quote(path))).as_root())?;
    Ok(output.success().then_some(output.stdout))
}

/// The replication password: from the environment variable the config names, else the
/// one already kept on the source (the primary now), else, when none is kept, a new one
/// (which init then gives the primary's user and every replica). A kept file that is empty
/// or cannot be read is an error: a new password made then would lock the replicas out.
pub fn password(cx: &mut Ctx<'_>) -> anyhow::Result<(Secret, bool)> {
    if let Some(var) = &cx.config.replication.password_env {
        let value = std::env::var(var).map_err(|_| {
            crate::error::Exit::usage(format!(
                "[replication] password_env names {var}, which is not set: export {var}=… \
                 (or remove password_env to let ha-setup generate and keep a password)"
            ))
        })?;
        if value.is_empty() {
            return Err(crate::error::Exit::usage(format!("{var} is empty")).into());
        }
        let kept = read_optional(cx.source(), PASSWORD_FILE)?;
        let same = kept.as_deref() == Some(value.as_bytes());
        return Ok((Secret::new(value), !same));
    }
    let source = cx.roles.source.clone();
    match kept_password(cx.source()).with_context(|| format!("on {source}"))? {
        Some(kept) => Ok((kept, false)),
        None => Ok((Secret::generate(), true)),
    }
}

const READ_KEPT: &str =
    "f=$1\nif [ ! -e \"$f\" ] && [ ! -L \"$f\" ]; then exit 3; fi\nexec cat -- \"$f\"";

/// The password kept on a node, or None when no file is there.
fn kept_password(host: &mut dyn Host) -> anyhow::Result<Option<Secret>> {
    let file = PASSWORD_FILE;
    let output = host.run(&Cmd::script(READ_KEPT, &[file]).as_root())?;
    let fix = "ha-setup will not make a new password while one is kept: the replicas still use it. \
               Put it back (each replica keeps a copy in the same file), or delete the file to have \
               init make a new one (it sets it on the primary and every replica), or name one with \
               [replication] password_env";
    match output.status {
        Some(0) => {}
        Some(3) => return Ok(None),
        _ => bail!("{file} cannot be read: {}. {fix}", output.stderr.trim()),
    }
    let text = String::from_utf8(output.stdout)
        .map_err(|_| anyhow::anyhow!("{file} is not text. {fix}"))?;
    if text.is_empty() {
        bail!("{file} is empty. {fix}");
    }
    Ok(Some(Secret::new(text)))
}
