//! `ha-setup bundle create`: the same bundle init streams to the replicas, written to a
//! local file instead, for offline transfer, from whichever node is the primary now. The
//! engine takes the snapshot and packs it there (`Engine::bundle_to`).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;

use crate::error::{Exit, ExitCode};
use crate::node::Hosts;
use crate::prompt::NoPrompt;
use crate::runner::human_bytes;
use crate::ui::Ui;

pub fn create(config_path: &Path, out: &Path, ui: &Ui) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let engine = crate::engine::for_config(&config)?;
    if out.exists() {
        return Err(Exit::usage(format!(
            "{} exists already; ha-setup does not overwrite a bundle: choose another --out or move it away",
            out.display()
        ))
        .into());
    }
    // The bundle comes from the primary now, whichever node the config calls what. The
    // lock keeps a second run (or a rebuild) from clearing the work directory under it.
    let mut hosts = Hosts::connect(&config, &NoPrompt);
    let held = super::lock(&mut hosts, "bundle-create", false, ui)?;
    let result = create_from(&config, engine, &mut hosts, out, ui);
    super::unlock(&mut hosts, held);
    result
}

fn create_from(
    config: &crate::config::Config,
    engine: &dyn crate::engine::Engine,
    hosts: &mut Hosts,
    out: &Path,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    let topology = crate::topology::observe(engine, config, hosts);
    let untouched = topology.untouched();
    let source = match topology.provable_primary() {
        Some(primary) if topology.get(&primary).answers() => primary,
        // Before the first init, the node the config starts from.
        None if untouched && topology.get(config.starting_primary()).answers() => {
            config.starting_primary().clone()
        }
        _ => {
            return Err(Exit::refused(format!(
                "no node is provably the primary that answers, so ha-setup cannot tell whose data to bundle{}",
                topology.table()
            ))
            .into());
        }
    };
    let node = config.node(&source).clone();
    let host = hosts.host(&source);
    let partial = out.with_extension("partial");
    let result = (|| -> anyhow::Result<u64> {
        let file = File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let mut count = CountingWriter {
            inner: &mut writer,
            bytes: 0,
        };
        engine.bundle_to(host, &source, &node, &mut count, ui)?;
        let bytes = count.bytes;
        writer.flush()?;
        writer.get_ref().sync_all()?;
        Ok(bytes)
    })();
    let bytes = match result {
        Ok(bytes) => bytes,
        Err(err) => {
            let _ = fs::remove_file(&partial);
            return Err(err.context(format!("no bundle was written to {}", out.display())));
        }
    };
    fs::rename(&partial, out)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
    ui.out(&format!(
        "{}: bundle of {source} ({}), {}; check it with `ha-setup bundle verify {}`",
        out.display(),
        node.host,
        human_bytes(bytes),
        out.display()
    ))?;
    Ok(ExitCode::Ok)
}

struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
