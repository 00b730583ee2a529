//! Streams a local file to the lab's secondary through the Host layer and prints the
//! seconds it took. Driven by tests/bench/ssh-stream.sh, which runs it on the operator
//! beside OpenSSH's `ssh host 'cat > f'` and prints the ratio. Not a test: nothing here
//! asserts on time.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use ha_setup::config::Config;
use ha_setup::host::{Cmd, FileMode, HostFiles, SshHost, SshTarget};
use ha_setup::prompt::NoPrompt;

fn main() -> anyhow::Result<()> {
    let Some(source) = std::env::args().nth(1) else {
        // `cargo bench` runs every bench target with no arguments: nothing to do alone.
        println!("usage: stream FILE (run tests/bench/ssh-stream.sh)");
        return Ok(());
    };
    let var = |name: &str| {
        std::env::var(name).map_err(|_| {
            anyhow::anyhow!("{name} is not set: run through tests/bench/ssh-stream.sh")
        })
    };
    // HA_BENCH_LANE=libssh2 keeps bulk streams off OpenSSH, to measure libssh2 alone.
    let via_openssh = std::env::var("HA_BENCH_LANE").as_deref() != Ok("libssh2");
    let text = format!(
        "engine = \"mariadb\"\n[primary]\nhost = \"local\"\nreplication_host = \"{}\"\n\
         [secondary]\nhost = \"{}\"\nssh_user = \"root\"\nidentity_file = \"{}\"\n\
         [ssh]\nknown_hosts = \"{}\"\nconfig_file = \"/nonexistent\"\nbulk_via_openssh = {via_openssh}\n",
        var("HA_LAB_PRIMARY_ADDR")?,
        var("HA_LAB_SECONDARY_ADDR")?,
        var("HA_LAB_KEY")?,
        var("HA_LAB_KNOWN_HOSTS")?,
    );
    let config = Config::parse(&text, Path::new("bench.toml"))?;
    let target = SshTarget::resolve("secondary", &config.nodes["secondary"], &config.ssh);
    let mut host = SshHost::connect(target, &NoPrompt)?;
    // Log in over the bulk lane before the clock starts, as a run would have by then.
    ha_setup::host::HostExt::run(&mut host, &Cmd::new("true").bulk())?;
    let mut file = std::fs::File::open(&source)?;
    let started = Instant::now();
    if std::env::var_os("HA_BENCH_RAW").is_some() {
        // The channel alone, no digest: where the time goes.
        let cmd = Cmd::new("cat > /tmp/ha-bench-host.bin").bulk();
        ha_setup::host::Host::exec(&mut host, &cmd, &mut file, &mut std::io::sink())?;
        println!("{:.3} raw", started.elapsed().as_secs_f64());
        return Ok(());
    }
    let transfer = host.stream_in(
        &mut file,
        "/tmp/ha-bench-host.bin",
        &FileMode::private(),
        &mut |_| {},
    )?;
    let seconds = started.elapsed().as_secs_f64();
    println!("{seconds:.3} {} {}", transfer.bytes, transfer.sha256);
    Ok(())
}
