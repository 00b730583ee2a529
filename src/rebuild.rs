//! What `recover rebuild` does before init's steps, for every engine.

use crate::error::Exit;
use crate::host::{Cmd, HostExt, quote};
use crate::plan::{Action, Ctx, Input, Step, Verdict};

/// rebuild's first step: the target's copy is to be replaced, so its seed record (at
/// `record`, the engine's) is set aside; the steps after it then send a new copy, and an
/// interrupted rebuild resumes from the new record.
pub struct DiscardSeed {
    pub record: &'static str,
}

impl Step for DiscardSeed {
    fn name(&self) -> &'static str {
        "discard-seed"
    }

    fn purpose(&self) -> &'static str {
        "the copy is to be replaced: set the seed record aside"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let mut actions = Vec::new();
        for target in cx.roles.targets.clone() {
            if cx.observe(&target).writable_primary() {
                return Err(Exit::refused(format!(
                    "refusing to rebuild {target}: it takes writes (it is a primary).{}",
                    cx.topology().table()
                ))
                .into());
            }
            let record = self.record;
            let present = cx
                .host(&target)
                .run(&Cmd::new(format!("test -e {}", quote(record))).as_root())?
                .success();
            if !present {
                continue;
            }
            let stamp = jiff::Timestamp::now()
                .strftime("%Y%m%dT%H%M%SZ")
                .to_string();
            actions.push(Action::Run {
                on: target.clone(),
                why: format!("set the seed record aside ({record}.replaced-{stamp})"),
                cmd: Cmd::new(format!("mv -- {r} {r}.replaced-{stamp}", r = quote(record)))
                    .as_root(),
                input: Input::None,
            });
        }
        Ok(if actions.is_empty() {
            Verdict::Done("no seed record: the next steps seed it".into())
        } else {
            Verdict::Todo(actions)
        })
    }
}
