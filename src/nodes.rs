//! Reaching the two nodes of the config: one connection per node per run, over SSH or to
//! this machine, opened in parallel (each SSH handshake is a few round trips).

use crate::config::{Config, Node};
use crate::host::{Host, HostError, LocalHost, SshHost, SshTarget};
use crate::plan::NodeName;
use crate::prompt::Prompter;

/// Opens one node's host.
pub fn connect(
    name: NodeName,
    node: &Node,
    config: &Config,
    prompter: &dyn Prompter,
) -> Result<Box<dyn Host>, HostError> {
    if node.is_local() {
        return Ok(Box::new(LocalHost::new(name.as_str())));
    }
    let target = SshTarget::resolve(name.as_str(), node, &config.ssh);
    Ok(Box::new(SshHost::connect(target, prompter)?))
}

pub type Connected = Result<Box<dyn Host>, HostError>;

/// Connects to both nodes at once; each result stands alone, so a caller such as
/// `status` can report an unreachable node instead of failing.
pub fn connect_both(config: &Config, prompter: &dyn Prompter) -> (Connected, Connected) {
    std::thread::scope(|scope| {
        let secondary =
            scope.spawn(|| connect(NodeName::Secondary, &config.secondary, config, prompter));
        let primary = connect(NodeName::Primary, &config.primary, config, prompter);
        let secondary = secondary
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (primary, secondary)
    })
}
