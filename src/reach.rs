//! Whether one node reaches another's database port, tested from the node itself.

use crate::host::{Cmd, HostExt, quote};
use crate::node::NodeName;
use crate::plan::{Ctx, Finding};

/// Whether `target` reaches the source's database port at `address`. When the source's
/// server does not listen there yet (`listening` false: Debian binds 127.0.0.1), a
/// short-lived listener on the source takes its place for the test, so firewalls show up
/// before anything changes; `until` says why it does not listen yet.
pub fn check(
    cx: &mut Ctx<'_>,
    target: &NodeName,
    address: &str,
    port: u16,
    listening: bool,
    until: &str,
) -> Finding {
    let source = cx.roles.source.clone();
    let what = format!("{target} reaches {source}'s database at {address}:{port}");
    let endpoint = format!("{} {port}", quote(address));
    let probe = Cmd::new(format!(
        "exec perl -MIO::Socket::INET -e 'for (1..20) {{ exit 0 if IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], Proto => \"tcp\", Timeout => 3); select(undef, undef, undef, 0.25) }} exit 1' {endpoint}"
    ));
    let result = if listening {
        cx.host(target)
            .run(&probe)
            .map(|o| (o.success(), String::new()))
    } else {
        let listen = Cmd::new(format!(
            "exec perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => $ARGV[0], LocalPort => $ARGV[1], Listen => 1, ReuseAddr => 1, Proto => \"tcp\") or do {{ print STDERR \"cannot listen: $!\\n\"; exit 3 }}; $SIG{{ALRM}} = sub {{ exit 2 }}; alarm 8; exit($s->accept ? 0 : 1)' {endpoint}"
        ))
        .as_root();
        let (primary, replica) = cx.pair(&source, target);
        std::thread::scope(|scope| {
            let listener = scope.spawn(|| primary.run(&listen));
            std::thread::sleep(std::time::Duration::from_millis(300));
            let probed = replica.run(&probe);
            let listened = listener
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            match (probed, listened) {
                (Ok(p), Ok(l)) if l.status == Some(3) => Ok((p.success(), "untestable".to_owned())),
                (Ok(p), Ok(_)) => Ok((
                    p.success(),
                    format!(" (tested with a stand-in listener: {until})"),
                )),
                (Err(err), _) | (_, Err(err)) => Err(err),
            }
        })
    };
    match result {
        Ok((true, note)) => Finding::ok(format!("{what}{note}")),
        Ok((false, note)) if note == "untestable" => Finding::ok(format!(
            "{what}: not tested ({address} is not an address of {source} itself; a NAT or proxy in between?)"
        )),
        Ok((false, _)) => Finding::failed(
            format!("{what}: no connection"),
            format!(
                "open TCP port {port} from {target} to {address} (firewall, security group), or set {} to an address {target} can reach",
                cx.config.key(source.as_str(), "replication_host")
            ),
        ),
        Err(err) => Finding::failed(
            format!("{what}: could not test: {err}"),
            "check that perl (perl-base) is installed on both hosts",
        ),
    }
}
