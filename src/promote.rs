//! What every engine's `recover promote` starts with: the node to promote, the old
//! primary and the verdict on whether it lives (with its evidence), and the nodes that will
//! follow, as read from the servers.

use crate::plan::{Ctx, Step, Verdict};

pub struct CheckPrimary;

impl Step for CheckPrimary {
    fn name(&self) -> &'static str {
        "check-primary"
    }

    fn purpose(&self) -> &'static str {
        "what the old primary and the replicas show; the most advanced replica is promoted"
    }

    fn check(&self, cx: &mut Ctx<'_>) -> anyhow::Result<Verdict> {
        let target = cx.roles.source.clone();
        let seen = cx.observe(&target);
        let mut lines = vec![format!("{target} is promoted: {}", seen.describe())];
        if let Some(old) = cx.roles.old.clone() {
            let seen = cx.observe(&old);
            lines.push(format!("the old primary {old}: {}", seen.describe()));
            if !seen.answers() {
                // The verdict promote acts on (ops/resolve.rs refused if it were "alive"
                // without --force), with its evidence.
                let liveness = cx.topology().liveness(&old);
                lines.push(if liveness.alive() {
                    format!(
                        "verdict: {old} is ALIVE as seen from {}; promoting anyway (--force)",
                        crate::topology::and_list(
                            &liveness.heard_by.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
                        )
                    )
                } else {
                    format!("verdict: {old} is gone: neither this machine nor any replica reaches its database")
                });
                lines.extend(liveness.evidence.iter().map(|e| format!("  {e}")));
            }
        }
        for other in cx.roles.targets.clone() {
            lines.push(format!(
                "{other} follows {target}: {}",
                cx.observe(&other).describe()
            ));
        }
        Ok(Verdict::Done(lines.join("\n      ")))
    }
}
