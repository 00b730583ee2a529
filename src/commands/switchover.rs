//! `ha-setup switchover`.

use std::path::Path;

use crate::cli::SwitchoverArgs;
use crate::error::ExitCode;
use crate::ops::recover::{RecoverOptions, Recovery, recover};
use crate::ui::Ui;

pub fn run(config_path: &Path, args: &SwitchoverArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    recover(
        config_path,
        Recovery::Switchover {
            to: args.to.clone(),
        },
        RecoverOptions {
            force: false,
            dry_run: args.dry_run,
            yes: args.yes,
        },
        ui,
    )
}
