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

/// A node that could not be reached, standing in for its host so that operations which
/// must go on without it (`recover promote`) see every command fail with the reason.
pub struct Unreachable {
    label: String,
    reason: String,
}

impl Unreachable {
    pub fn new(name: NodeName, node: &Node, error: &HostError) -> Self {
        Unreachable {
            label: format!("{name} ({})", node.host),
            reason: error.to_string(),
        }
    }
}

impl Host for Unreachable {
    fn label(&self) -> &str {
        &self.label
    }

    fn login_is_root(&self) -> bool {
        true
    }

    fn exec(
        &mut self,
        cmd: &crate::host::Cmd,
        _stdin: &mut (dyn std::io::Read + Send),
        _stdout: &mut (dyn std::io::Write + Send),
    ) -> Result<crate::host::Finished, HostError> {
        Err(HostError::Ssh {
            host: self.label.clone(),
            during: format!("running `{}`", cmd.summary()),
            detail: format!("the host could not be reached: {}", self.reason),
        })
    }
}

/// Both nodes, an unreachable one standing in as [`Unreachable`].
pub fn connect_both_or_stand_in(
    config: &Config,
    prompter: &dyn Prompter,
) -> (Box<dyn Host>, Box<dyn Host>) {
    let (primary, secondary) = connect_both(config, prompter);
    let stand_in = |name, node: &Node, connected: Connected| -> Box<dyn Host> {
        connected.unwrap_or_else(|err| Box::new(Unreachable::new(name, node, &err)))
    };
    (
        stand_in(NodeName::Primary, &config.primary, primary),
        stand_in(NodeName::Secondary, &config.secondary, secondary),
    )
}
