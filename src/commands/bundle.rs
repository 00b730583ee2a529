//! `ha-setup bundle …`: the replication bundle as a file, and the hidden `pack`/`unpack`
//! that ha-setup runs on the hosts themselves.

use std::fs::File;
use std::io::{self, BufReader};
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::Context;

use crate::bundle::{self, Manifest, Source};
use crate::cli::{BundleCommand, Format};
use crate::error::ExitCode;
use crate::runner::human_bytes;
use crate::ui::Ui;

/// `bundle create`: a snapshot of the primary, written to a local file.
pub fn create(config_path: &Path, out: &Path, ui: &Ui) -> anyhow::Result<ExitCode> {
    crate::ops::bundle::create(config_path, out, ui)
}

/// Every other `bundle` subcommand works on local files and streams only.
pub fn run(command: BundleCommand, ui: &Ui) -> anyhow::Result<ExitCode> {
    let streaming = matches!(
        command,
        BundleCommand::Pack { .. } | BundleCommand::Stream { .. }
    );
    run_one(command, ui).map_err(|err| {
        // A closed stdout is no failure for a command whose output a person reads
        // (`| head`); for a bundle it means the receiving side stopped, and the bundle is
        // cut short.
        if streaming && crate::error::is_broken_pipe(&err) {
            anyhow::anyhow!(
                "the receiving side closed the stream before the bundle's end (it stopped or failed): the bundle is cut short"
            )
        } else {
            err
        }
    })
}

fn run_one(command: BundleCommand, ui: &Ui) -> anyhow::Result<ExitCode> {
    match command {
        BundleCommand::Create { .. } => unreachable!("dispatched to `create`"),
        BundleCommand::Inspect { path, format } => {
            let mut file =
                File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
            let manifest = bundle::read_manifest(&mut file)
                .with_context(|| format!("cannot read the bundle {}", path.display()))?;
            match format {
                Format::Text => ui.out(&describe(&manifest))?,
                Format::Json => ui.json(&manifest)?,
            }
        }
        BundleCommand::Verify { path } => {
            let manifest = bundle::verify(&mut open(&path)?)
                .with_context(|| format!("{} failed verification", path.display()))?;
            let bytes = manifest.total_bytes();
            ui.out(&format!(
                "{}: {} files, {bytes} bytes ({}), all match the manifest",
                path.display(),
                manifest.files.len(),
                human_bytes(bytes)
            ))?;
        }
        BundleCommand::Pack {
            dir,
            engine,
            server_version,
            source_host,
            compress,
        } => {
            let position = crate::engine::backup_position(&engine, &dir)?;
            let source = Source {
                engine,
                server_version,
                source_host,
                position,
            };
            bundle::pack(&dir, source, &mut ui.raw_stdout()?, compress, &mut |_| {})
                .with_context(|| format!("cannot pack {}", dir.display()))?;
        }
        BundleCommand::Stream {
            engine,
            server_version,
            source_host,
            work,
            compress,
        } => {
            let source = Source {
                engine,
                server_version,
                source_host,
                position: Default::default(),
            };
            let mut out = ui.raw_stdout()?;
            let mut saver =
                std::env::var_os(PROGRESS_FILE).map(|path| ProgressFile::new(path.into()));
            let mut progress = |bytes: u64| {
                if let Some(saver) = &mut saver {
                    saver.saw(bytes);
                }
            };
            crate::engine::stream_backup(source, &work, &mut out, compress, &mut progress)?;
            if let Some(saver) = &mut saver {
                saver.save();
            }
        }
        BundleCommand::Unpack { into } => {
            let stdin = io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .context("cannot read standard input")?;
            let manifest = bundle::unpack(&mut File::from(stdin), &into, &mut |_| {})
                .with_context(|| format!("cannot unpack the bundle into {}", into.display()))?;
            let line = serde_json::to_string(&manifest).context("cannot render JSON")?;
            ui.out(&line)?;
        }
    }
    Ok(ExitCode::Ok)
}

/// Where `bundle stream` keeps the count of file bytes it streamed, for a caller that cannot
/// see its output (the direct route: `route/send.sh` reads it).
pub const PROGRESS_FILE: &str = "HA_SETUP_PROGRESS_FILE";

/// Writes the count of file bytes streamed so far to a file, about once a second.
struct ProgressFile {
    path: std::path::PathBuf,
    count: u64,
    saved: std::time::Instant,
}

impl ProgressFile {
    fn new(path: std::path::PathBuf) -> Self {
        ProgressFile {
            path,
            count: 0,
            saved: std::time::Instant::now(),
        }
    }

    fn saw(&mut self, count: u64) {
        self.count = count;
        if self.saved.elapsed() >= std::time::Duration::from_secs(1) {
            self.save();
        }
    }

    /// Only a progress display reads it: a failure to write it is no failure.
    fn save(&mut self) {
        let partial = self.path.with_extension("partial");
        if std::fs::write(&partial, self.count.to_string()).is_ok() {
            let _ = std::fs::rename(&partial, &self.path);
        }
        self.saved = std::time::Instant::now();
    }
}

fn open(path: &Path) -> anyhow::Result<BufReader<File>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(BufReader::with_capacity(1 << 20, file))
}

/// The manifest for people: where the bundle comes from, where replication starts, and
/// what takes the room.
fn describe(manifest: &Manifest) -> String {
    let start = if manifest.position.is_empty() {
        "none recorded".to_owned()
    } else {
        manifest
            .position
            .iter()
            .map(|(key, value)| format!("{key} {value}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let bytes = manifest.total_bytes();
    let mut text = format!(
        "engine:       {} {}\n\
         source host:  {}\n\
         created at:   {}\n\
         position:     {start}\n\
         files:        {} in {} directories, {} ({bytes} bytes)\n",
        manifest.engine,
        manifest.server_version,
        manifest.source_host,
        manifest.created_at,
        manifest.files.len(),
        manifest.dirs.len(),
        human_bytes(bytes),
    );
    let mut largest: Vec<_> = manifest.files.iter().collect();
    largest.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    if !largest.is_empty() {
        text.push_str("largest:\n");
        for file in largest.iter().take(10) {
            text.push_str(&format!(
                "  {:>10}  {}\n",
                human_bytes(file.size),
                file.path
            ));
        }
    }
    text
}
