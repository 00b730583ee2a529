//! Which way a bundle goes from the primary to a replica (`[transfer] route`): straight
//! from host to host when the primary can log in to the replica over SSH, else relayed
//! through this machine.
//!
//! The direct route, for one transfer:
//! 1. the primary makes a one-time ed25519 key in [`KEY_DIR`] (`key.sh`); its private half
//!    never leaves the primary. The replica's host key, as this machine checked it, goes
//!    into a known_hosts file there, so the primary's `ssh` accepts no other key;
//! 2. the replica's login user gets the public half in its authorized_keys, restricted:
//!    `restrict`, `from=` the primary's address towards it, an `expiry-time` an hour away
//!    by the replica's clock, and a forced command that only answers a probe or runs the receiving command
//!    (`authorize.sh`);
//! 3. a probe logs in (`send.sh probe`): a changed host key is refused, any other failure
//!    means no direct route, and `auto` relays instead, saying why;
//! 4. `send.sh send` pipes the sending command into `ssh … receive` on the primary;
//! 5. the line is removed from authorized_keys and the key from the primary, whatever
//!    happened. Every transfer first removes what a killed run left (each line ha-setup adds
//!    carries [`MARK`] in its comment; the key directory is emptied).

use anyhow::{Context, bail};

use crate::config::Route;
use crate::error::Exit;
use crate::host::{Cmd, Host, HostExt, SshEndpoint, quote};
use crate::node::NodeName;
use crate::plan::{Action, Ctx, Input};

const KEY_SH: &str = include_str!("key.sh");
const AUTHORIZE_SH: &str = include_str!("authorize.sh");
const SEND_SH: &str = include_str!("send.sh");

/// On the sending host: the one-time key, the replica's known_hosts line, the send status.
pub const KEY_DIR: &str = "/var/lib/ha-setup/direct";
/// In the comment of every authorized_keys line ha-setup adds.
pub const MARK: &str = "ha-setup-direct";
/// The probe's answer.
const PROBED: &str = "ha-setup-direct-ok";
/// How long the one-time key can log in at all, should its removal fail.
const EXPIRY_HOURS: u32 = 1;

/// What a killed run left of a direct route on `nodes` (a one-time key on a primary, its
/// line in a replica's authorized_keys), as the actions that remove it.
pub fn leftovers(cx: &mut Ctx<'_>, nodes: &[NodeName]) -> anyhow::Result<Vec<Action>> {
    let mut actions = Vec::new();
    for node in nodes {
        let host = cx.host(node);
        let key = host
            .run(&Cmd::new(format!("test -e {}", quote(KEY_DIR))).as_root())?
            .success();
        if key {
            actions.push(Action::Run {
                on: node.clone(),
                why: format!("remove the one-time key an interrupted run left in {KEY_DIR}"),
                cmd: Cmd::new(format!("rm -rf -- {}", quote(KEY_DIR))).as_root(),
                input: Input::None,
            });
        }
        let Some(endpoint) = host.ssh_endpoint() else {
            continue;
        };
        let line =
            host.run(&Cmd::script(AUTHORIZE_SH, &["check", &endpoint.user, MARK]).as_root())?;
        if line.stdout_text().contains("present") {
            actions.push(Action::Run {
                on: node.clone(),
                why: format!(
                    "remove the one-time key an interrupted run left in ~{}/.ssh/authorized_keys",
                    endpoint.user
                ),
                cmd: Cmd::script(AUTHORIZE_SH, &["remove", &endpoint.user, MARK]).as_root(),
                input: Input::None,
            });
        }
    }
    Ok(actions)
}

/// How a transfer went: the lines for the operator, and the bytes this machine carried
/// (None on the direct route: it carried none).
pub struct Went {
    pub lines: Vec<String>,
    pub relayed: Option<u64>,
}

/// Carries `send`'s output on `from` into `receive` on `to`, the way the config asks.
/// `relay` does it through this machine.
pub fn transfer(
    cx: &mut Ctx<'_>,
    from: &NodeName,
    send: &Cmd,
    to: &NodeName,
    receive: &Cmd,
    progress: &(dyn Fn(u64) + Sync),
    relay: &mut dyn FnMut(&mut Ctx<'_>) -> anyhow::Result<u64>,
) -> anyhow::Result<Went> {
    let route = cx.config.transfer.route;
    let why_relay = match route {
        Route::Relay => "[transfer] route = \"relay\"".to_owned(),
        Route::Auto | Route::Direct => match direct(cx, from, send, to, receive, progress)? {
            Direct::Sent(lines) => {
                return Ok(Went {
                    lines,
                    relayed: None,
                });
            }
            Direct::Unavailable(why) if route == Route::Direct => {
                return Err(Exit::refused(format!(
                    "no direct route from {from} to {to}: {why}.\n\
                     Make it possible (the primary needs openssh-client, and must reach the replica's sshd and log \
                     in as its user with a key), or set [transfer] route = \"auto\" or \"relay\" to go through this machine."
                ))
                .into());
            }
            Direct::Unavailable(why) => why,
        },
    };
    let sent = relay(cx)?;
    Ok(Went {
        lines: vec![format!("through this machine: {why_relay}")],
        relayed: Some(sent),
    })
}

enum Direct {
    Sent(Vec<String>),
    Unavailable(String),
}

fn direct(
    cx: &mut Ctx<'_>,
    from: &NodeName,
    send: &Cmd,
    to: &NodeName,
    receive: &Cmd,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Direct> {
    let Some(endpoint) = cx.host(to).ssh_endpoint() else {
        return Ok(Direct::Unavailable(format!(
            "{to} is this machine (host = \"local\")"
        )));
    };
    if endpoint.host_key.is_empty() {
        return Ok(Direct::Unavailable(format!(
            "the host key of {to} is not known here"
        )));
    }
    let comment = format!("{MARK}-{:016x}", rand::random::<u64>());
    let made = cx.host(from).run(
        &Cmd::script(
            KEY_SH,
            &[
                KEY_DIR,
                &comment,
                &endpoint.host,
                &endpoint.known_hosts_line(),
            ],
        )
        .as_root(),
    )?;
    let result = (|| {
        if !made.success() {
            return Ok(Direct::Unavailable(format!(
                "{from} could not make a one-time key: {}",
                made.stderr.trim()
            )));
        }
        let text = made.stdout_text();
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let (public, source_addr) = (value("pub="), value("from="));
        if source_addr.is_empty() {
            return Ok(Direct::Unavailable(format!(
                "{from} has no route to {} (the address {to} is reached at from here)",
                endpoint.host
            )));
        }
        let command = forced_command(receive, cx.host(to));
        let added = cx.host(to).run(
            &Cmd::script(
                AUTHORIZE_SH,
                &["add", &endpoint.user, MARK, &source_addr, &command, &public],
            )
            .as_root(),
        )?;
        if !added.success() {
            return Ok(Direct::Unavailable(format!(
                "the one-time key could not be added for {} on {to}: {}",
                endpoint.user,
                added.stderr.trim()
            )));
        }
        let probe = send_cmd(&endpoint, &["probe"]);
        let probed = cx.host(from).run(&probe)?;
        if !probed.success() || !probed.stdout_text().contains(PROBED) {
            let said = probed.stderr.trim();
            if said.contains("Host key verification failed")
                || said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            {
                return Err(Exit::refused(format!(
                    "refusing the direct route: the host key {from} sees at {}:{} is not the key of {to} that this \
                     machine checked ({}). Something else answers there, or {to}'s key changed: find out which \
                     before going on. Set [transfer] route = \"relay\" to send through this machine meanwhile.",
                    endpoint.host,
                    endpoint.port,
                    endpoint.host_key.split(' ').next().unwrap_or("?"),
                ))
                .into());
            }
            return Ok(Direct::Unavailable(format!(
                "{from} cannot log in to {}@{}:{} ({})",
                endpoint.user,
                endpoint.host,
                endpoint.port,
                said.lines().last().unwrap_or("no answer")
            )));
        }
        let mut sending = send_cmd(&endpoint, &["send", &send.command_line(true)]);
        sending.bulk = true;
        let mut stdout = Lines {
            partial: Vec::new(),
            kept: Vec::new(),
            sent: 0,
            progress,
        };
        let started = std::time::Instant::now();
        let finished = cx
            .host(from)
            .exec(&sending, &mut std::io::empty(), &mut stdout)?;
        let mut kept = stdout.kept;
        kept.extend_from_slice(&stdout.partial);
        let stdout = kept;
        if !finished.success() {
            bail!(
                "the direct transfer from {from} to {to} failed ({}): {}",
                match finished.status {
                    Some(20) => "sending failed".to_owned(),
                    Some(code) => format!("receiving failed, exit {code}"),
                    // send.sh's 255 is ssh's: the bulk lane reads it as a signal.
                    None => format!(
                        "the SSH connection from {from} to {to} broke, or the receiving command on {to} was ended"
                    ),
                },
                finished.stderr.trim()
            );
        }
        let bytes = String::from_utf8_lossy(&stdout)
            .lines()
            .find_map(|line| serde_json::from_str::<crate::bundle::Manifest>(line).ok())
            .map(|manifest| manifest.total_bytes());
        let elapsed = started.elapsed().as_secs_f64().max(0.001);
        Ok(Direct::Sent(vec![format!(
            "straight from {from} to {to} over SSH (a one-time key, removed again){}",
            bytes
                .map(|b| format!(
                    ": {} in {elapsed:.1}s ({}/s)",
                    crate::runner::human_bytes(b),
                    crate::runner::human_bytes((b as f64 / elapsed) as u64)
                ))
                .unwrap_or_default()
        )]))
    })();
    let mut cleanup = Vec::new();
    let removed = cx
        .host(to)
        .run(&Cmd::script(AUTHORIZE_SH, &["remove", &endpoint.user, MARK]).as_root());
    if !removed.as_ref().is_ok_and(|out| out.success()) {
        cleanup.push(format!(
            "could not remove the one-time key from ~{}/.ssh/authorized_keys on {to}: remove the line ending `{comment}` \
             there (it expires within {EXPIRY_HOURS}h and logs in only from {from} anyway)",
            endpoint.user
        ));
    }
    let dropped = cx
        .host(from)
        .run(&Cmd::new(format!("rm -rf -- {}", quote(KEY_DIR))).as_root());
    if !dropped.as_ref().is_ok_and(|out| out.success()) {
        cleanup.push(format!(
            "could not remove the one-time key {KEY_DIR} on {from}: remove it there"
        ));
    }
    match (result, cleanup.is_empty()) {
        (Ok(Direct::Sent(mut lines)), _) => {
            lines.extend(cleanup.into_iter().map(|c| format!("warning: {c}")));
            Ok(Direct::Sent(lines))
        }
        (Ok(other), true) => Ok(other),
        (Ok(_), false) => bail!("{}", cleanup.join("; ")),
        (Err(err), true) => Err(err),
        (Err(err), false) => Err(err.context(cleanup.join("; "))),
    }
    .with_context(|| format!("sending straight from {from} to {to} over SSH"))
}

/// The forced command of the one-time key, escaped for authorized_keys: the probe, or the
/// receiving command, and nothing else.
fn forced_command(receive: &Cmd, target: &mut dyn Host) -> String {
    // sshd runs it with the user's shell; the value of the case word is not split.
    let command = format!(
        "case $SSH_ORIGINAL_COMMAND in probe) echo {PROBED};; receive) exec {};; *) echo 'this key only receives a transfer from ha-setup' >&2; exit 1;; esac",
        receive.command_line(target.login_is_root())
    );
    command.replace('"', "\\\"")
}

/// `send.sh send`'s output: `progress N` lines (bytes sent so far) go to the progress
/// display, every other line is kept (the receiver's manifest).
struct Lines<'a> {
    partial: Vec<u8>,
    kept: Vec<u8>,
    sent: u64,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl std::io::Write for Lines<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            match text.trim().strip_prefix("progress ").map(str::parse::<u64>) {
                Some(Ok(sent)) => {
                    if sent > self.sent {
                        (self.progress)(sent - self.sent);
                        self.sent = sent;
                    }
                }
                Some(Err(_)) => {}
                None => self.kept.extend_from_slice(&line),
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn send_cmd(endpoint: &SshEndpoint, args: &[&str]) -> Cmd {
    let port = endpoint.port.to_string();
    let mut all = vec![
        KEY_DIR,
        endpoint.user.as_str(),
        endpoint.host.as_str(),
        port.as_str(),
        crate::host::CIPHERS,
    ];
    all.extend_from_slice(args);
    Cmd::script(SEND_SH, &all).as_root()
}
