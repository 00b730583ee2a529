//! `ha-setup bundle create`: the same bundle init streams to the secondary, written to a
//! local file instead, for offline transfer. The snapshot is taken on the primary in a work
//! directory of its own (removed afterwards) and packed there by ha-setup itself.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, bail};

use crate::engine::mariadb::{facts, layout, seed};
use crate::error::{Exit, ExitCode};
use crate::host::{Cmd, HostExt, quote};
use crate::nodes;
use crate::plan::{Action, NodeName};
use crate::prompt::NoPrompt;
use crate::runner::{human_bytes, place_tool};
use crate::ui::Ui;

const CREATE_DIR: &str = "/var/lib/ha-setup/bundle-create";

pub fn create(config_path: &Path, out: &Path, ui: &Ui) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    crate::engine::for_config(&config)?;
    if out.exists() {
        return Err(Exit::usage(format!(
            "{} exists already; ha-setup does not overwrite a bundle: choose another --out or move it away",
            out.display()
        ))
        .into());
    }
    let mut primary = nodes::connect(NodeName::Primary, &config.primary, &config, &NoPrompt)
        .context("cannot reach the primary")?;
    let server = facts::server(primary.as_mut())?;
    let host = primary.as_mut();
    let (tool, place) = seed::tool_on(host, &config.primary, NodeName::Primary)?;
    if let Some(Action::PlaceTool { local, remote, .. }) = place {
        ui.note(&format!("placing ha-setup on the primary at {remote}"));
        place_tool(host, &local, &remote)?;
    }
    ui.note(&format!(
        "taking a snapshot with mariadb-backup in {CREATE_DIR} on the primary"
    ));
    host.run_ok(&seed::snapshot(CREATE_DIR))?;

    let partial = out.with_extension("partial");
    let result = (|| -> anyhow::Result<u64> {
        let file = File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let pack = Cmd::new(format!(
            "exec {} bundle pack --dir {} --engine mariadb --server-version {} --source-host {}",
            quote(&tool),
            quote(CREATE_DIR),
            quote(&server.version_text),
            quote(&config.primary.host)
        ))
        .as_root()
        .bulk();
        let mut count = CountingWriter {
            inner: &mut writer,
            bytes: 0,
        };
        let finished = host.exec(&pack, &mut std::io::empty(), &mut count)?;
        let bytes = count.bytes;
        if !finished.success() {
            bail!("packing on the primary failed: {}", finished.stderr.trim());
        }
        writer.flush()?;
        writer.get_ref().sync_all()?;
        Ok(bytes)
    })();
    let cleanup = host.run_ok(
        &Cmd::new(format!(
            "rm -rf -- {} {}.complete",
            quote(CREATE_DIR),
            quote(CREATE_DIR)
        ))
        .as_root(),
    );
    let bytes = match result {
        Ok(bytes) => bytes,
        Err(err) => {
            let _ = fs::remove_file(&partial);
            return Err(err.context(format!("no bundle was written to {}", out.display())));
        }
    };
    fs::rename(&partial, out)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
    if let Err(err) = cleanup {
        ui.warn(&format!(
            "could not remove {CREATE_DIR} on the primary: {err}"
        ));
    }
    ui.out(&format!(
        "{}: bundle of {} ({}), {}; check it with `ha-setup bundle verify {}`",
        out.display(),
        config.primary.host,
        layout::DEFAULT_SERVICE,
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
