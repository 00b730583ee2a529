//! `ha-setup history`: the event history of the pair the config describes.

use std::path::Path;

use crate::cli::Format;
use crate::error::ExitCode;
use crate::journal::{Store, state_dir};
use crate::ops::load_config;
use crate::ui::Ui;

pub fn run(config_path: &Path, format: Format, ui: &Ui) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let store = Store::open(state_dir(&config));
    let events = store.events()?;
    match format {
        Format::Json => {
            let lines: Vec<String> = events
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<_, _>>()?;
            if !lines.is_empty() {
                ui.out(&lines.join("\n"))?;
            }
        }
        Format::Text if events.is_empty() => ui.note(&format!(
            "no events yet for this pair (kept in {})",
            store.dir().display()
        )),
        Format::Text => {
            let text: Vec<String> = events
                .iter()
                .map(|e| {
                    let host = if e.host.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", e.host)
                    };
                    let detail = if e.detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", e.detail)
                    };
                    format!(
                        "{} {:<8} {:<20} {}{host}{detail}",
                        e.at.strftime("%Y-%m-%d %H:%M:%S"),
                        e.operation,
                        e.step,
                        e.result
                    )
                })
                .collect();
            ui.out(&text.join("\n"))?;
        }
    }
    Ok(ExitCode::Ok)
}
