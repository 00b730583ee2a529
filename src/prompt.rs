//! Every question ha-setup asks a person. Code that may ask takes a [`Prompter`], so it
//! runs the same with a terminal, in scripts (where nothing may be asked), and in tests.
#![allow(clippy::print_stderr)]

use std::io::IsTerminal;

pub trait Prompter: Sync {
    /// Asks for a secret (a key passphrase, a password) without echoing it. None when no
    /// one can be asked.
    fn secret(&self, question: &str) -> Option<String>;
}

/// Never asks: scripted runs (`--yes`, no terminal), where a missing value is an error.
pub struct NoPrompt;

impl Prompter for NoPrompt {
    fn secret(&self, _question: &str) -> Option<String> {
        None
    }
}

/// Asks on the terminal, when there is one.
pub struct Terminal;

impl Prompter for Terminal {
    fn secret(&self, question: &str) -> Option<String> {
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return None;
        }
        dialoguer::Password::new()
            .with_prompt(question)
            .allow_empty_password(true)
            .interact()
            .ok()
    }
}
