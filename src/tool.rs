//! ha-setup's own binary on a database host: the hidden commands that stream a backup on
//! the primary and receive it on a replica run there, as root, from a path of this
//! version's own, placed once and checked by SHA-256.

use std::io::Read;
use std::sync::OnceLock;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::config::Node;
use crate::host::{Cmd, Host, HostExt, quote};
use crate::node::NodeName;
use crate::plan::Action;

/// The tool's own directory on a host: its binary, the bundle work directory, the seed record.
pub const TOOL_DIR: &str = "/var/lib/ha-setup";
/// Where `bundle stream` lets the backup tool keep its own temporary files on the primary
/// (emptied first, removed afterwards).
pub const STREAM_DIR: &str = "/var/lib/ha-setup/stream";

/// The path of this version of ha-setup on a host.
pub fn tool_path() -> String {
    format!("{TOOL_DIR}/bin/ha-setup-{}", env!("CARGO_PKG_VERSION"))
}

/// This program's SHA-256, to tell whether a host already has the same binary.
fn own_sha256() -> anyhow::Result<&'static str> {
    static SHA: OnceLock<String> = OnceLock::new();
    if let Some(sha) = SHA.get() {
        return Ok(sha);
    }
    let path = std::env::current_exe().context("cannot find this program's binary")?;
    let mut file = std::fs::File::open(&path)
        .with_context(|| format!("cannot read this program's binary {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(SHA.get_or_init(|| hex::encode(hasher.finalize())))
}

/// The action that places this binary on `on`, unless the same bytes are there already.
/// On this machine (`host = "local"`) the running binary itself is used.
pub fn tool_on(
    host: &mut dyn Host,
    node: &Node,
    on: &NodeName,
) -> anyhow::Result<(String, Option<Action>)> {
    let local = std::env::current_exe().context("cannot find this program's binary")?;
    if node.is_local() {
        return Ok((local.to_string_lossy().into_owned(), None));
    }
    let remote = tool_path();
    let there =
        host.run(&Cmd::new(format!("sha256sum -- {} 2>/dev/null", quote(&remote))).as_root())?;
    let same = there.stdout_text().split_whitespace().next() == Some(own_sha256()?);
    let action = (!same).then(|| Action::PlaceTool {
        on: on.clone(),
        local,
        remote: remote.clone(),
    });
    Ok((remote, action))
}
