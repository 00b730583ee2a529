//! Every question ha-setup asks a person. Code that may ask takes a [`Prompter`], so it
//! runs the same with a terminal, in scripts (where nothing may be asked), and in tests.
#![allow(clippy::print_stderr)]

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::Mutex;

/// The person pressed Ctrl-C (or Esc) at a question: the caller stops and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted at a question")]
pub struct Interrupted;

/// An answer, or `None` when no one can be asked (a script, `--yes`, no terminal).
pub type Answer<T> = Result<Option<T>, Interrupted>;

pub trait Prompter: Sync {
    /// Asks for a secret (a key passphrase, a password) without echoing it. None when no
    /// one can be asked.
    fn secret(&self, question: &str) -> Option<String>;

    /// Asks for a line of text, offering `default` (Enter takes it).
    fn input(&self, question: &str, default: Option<&str>) -> Answer<String> {
        let _ = (question, default);
        Ok(None)
    }

    /// Asks yes or no.
    fn confirm(&self, question: &str, default: bool) -> Answer<bool> {
        let _ = (question, default);
        Ok(None)
    }

    /// Asks to pick one of `items`; the answer is its index.
    fn select(&self, question: &str, items: &[String], default: usize) -> Answer<usize> {
        let _ = (question, items, default);
        Ok(None)
    }

    /// Shows a line to the person being asked (a detected version, why an answer was
    /// refused). Scripts have no one to show it to.
    fn say(&self, text: &str) {
        let _ = text;
    }
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

impl Terminal {
    fn available() -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }
}

/// dialoguer reports Ctrl-C as an I/O error of kind `Interrupted`, leaving the cursor as
/// the prompt left it; put it back so the shell gets a clean terminal.
fn interrupted(err: dialoguer::Error) -> Interrupted {
    let term = dialoguer::console::Term::stderr();
    let _ = term.show_cursor();
    let _ = term.write_line("");
    let dialoguer::Error::IO(err) = err;
    tracing::debug!("prompt ended: {err}");
    Interrupted
}

impl Prompter for Terminal {
    fn secret(&self, question: &str) -> Option<String> {
        if !Self::available() {
            return None;
        }
        dialoguer::Password::new()
            .with_prompt(question)
            .allow_empty_password(true)
            .interact()
            .ok()
    }

    fn input(&self, question: &str, default: Option<&str>) -> Answer<String> {
        if !Self::available() {
            return Ok(None);
        }
        let mut prompt = dialoguer::Input::<String>::new()
            .with_prompt(question)
            .allow_empty(default.is_none());
        if let Some(default) = default {
            prompt = prompt.default(default.to_owned());
        }
        prompt
            .interact_text()
            .map(|text| Some(text.trim().to_owned()))
            .map_err(interrupted)
    }

    fn confirm(&self, question: &str, default: bool) -> Answer<bool> {
        if !Self::available() {
            return Ok(None);
        }
        dialoguer::Confirm::new()
            .with_prompt(question)
            .default(default)
            .wait_for_newline(true)
            .interact()
            .map(Some)
            .map_err(interrupted)
    }

    fn select(&self, question: &str, items: &[String], default: usize) -> Answer<usize> {
        if !Self::available() {
            return Ok(None);
        }
        dialoguer::Select::new()
            .with_prompt(question)
            .items(items)
            .default(default)
            .interact()
            .map(Some)
            .map_err(interrupted)
    }

    fn say(&self, text: &str) {
        eprintln!("  {text}");
    }
}

/// Answers from a script, in order, for tests: each question must match the next answer's
/// question (by substring), so a test fails when the wizard asks something else.
#[derive(Debug, Default)]
pub struct Scripted {
    answers: Mutex<VecDeque<(String, Reply)>>,
    /// Everything asked and said, in order.
    pub transcript: Mutex<Vec<String>>,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Text; empty takes the default.
    Text(String),
    Yes,
    No,
    /// The item whose text contains this.
    Pick(String),
    /// Ctrl-C.
    Interrupt,
}

impl Scripted {
    pub fn new(answers: &[(&str, Reply)]) -> Self {
        Scripted {
            answers: Mutex::new(
                answers
                    .iter()
                    .map(|(q, a)| ((*q).to_owned(), a.clone()))
                    .collect(),
            ),
            transcript: Mutex::default(),
        }
    }

    /// Whether every scripted answer was used.
    pub fn finished(&self) -> bool {
        self.answers.lock().expect("not poisoned").is_empty()
    }

    pub fn transcript(&self) -> Vec<String> {
        self.transcript.lock().expect("not poisoned").clone()
    }

    fn next(&self, question: &str) -> Reply {
        self.transcript
            .lock()
            .expect("not poisoned")
            .push(format!("? {question}"));
        let (expected, answer) = self
            .answers
            .lock()
            .expect("not poisoned")
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected question: {question:?}"));
        assert!(
            question.contains(&expected),
            "asked {question:?}, but the script expected {expected:?}"
        );
        answer
    }
}

impl Prompter for Scripted {
    fn secret(&self, question: &str) -> Option<String> {
        match self.next(question) {
            Reply::Text(text) => Some(text),
            other => panic!("a secret question got {other:?}"),
        }
    }

    fn input(&self, question: &str, default: Option<&str>) -> Answer<String> {
        match self.next(question) {
            Reply::Text(text) if text.is_empty() => {
                Ok(Some(default.unwrap_or_default().to_owned()))
            }
            Reply::Text(text) => Ok(Some(text)),
            Reply::Interrupt => Err(Interrupted),
            other => panic!("{question:?} wants text, the script has {other:?}"),
        }
    }

    fn confirm(&self, question: &str, default: bool) -> Answer<bool> {
        match self.next(question) {
            Reply::Yes => Ok(Some(true)),
            Reply::No => Ok(Some(false)),
            Reply::Text(text) if text.is_empty() => Ok(Some(default)),
            Reply::Interrupt => Err(Interrupted),
            other => panic!("{question:?} wants yes or no, the script has {other:?}"),
        }
    }

    fn select(&self, question: &str, items: &[String], default: usize) -> Answer<usize> {
        match self.next(question) {
            Reply::Pick(part) => Ok(Some(
                items
                    .iter()
                    .position(|item| item.contains(&part))
                    .unwrap_or_else(|| panic!("no item of {items:?} contains {part:?}")),
            )),
            Reply::Text(text) if text.is_empty() => Ok(Some(default)),
            Reply::Interrupt => Err(Interrupted),
            other => panic!("{question:?} wants a choice, the script has {other:?}"),
        }
    }

    fn say(&self, text: &str) {
        self.transcript
            .lock()
            .expect("not poisoned")
            .push(text.to_owned());
    }
}

/// While it lives, Ctrl-C outside a prompt's raw-mode read (connecting to a host, or a
/// key pressed a moment before the prompt took the terminal) ends ha-setup the same way
/// as at a prompt: terminal settings and cursor restored, one line, exit 130. Dropped
/// before anything changes on the hosts, where Ctrl-C is left to its default.
pub struct QuestionsGuard {
    previous: libc::sighandler_t,
}

/// The terminal's settings when the questions began, for the handler to restore (a
/// passphrase prompt turns echo off).
static mut SAVED_TERMIOS: Option<libc::termios> = None;

const INTERRUPTED_LINE: &[u8] = b"\x1b[?25h\nerror: interrupted: nothing on the hosts changed\n";

extern "C" fn on_interrupt(_: libc::c_int) {
    // SAFETY: only async-signal-safe calls (tcsetattr, write, _exit) on values set before
    // the handler was installed.
    unsafe {
        #[allow(static_mut_refs)]
        if let Some(termios) = SAVED_TERMIOS.as_ref() {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, termios);
        }
        libc::write(
            libc::STDERR_FILENO,
            INTERRUPTED_LINE.as_ptr().cast(),
            INTERRUPTED_LINE.len(),
        );
        libc::_exit(130);
    }
}

impl QuestionsGuard {
    pub fn new() -> Self {
        // SAFETY: tcgetattr into a zeroed termios; the static is written before the
        // handler that reads it is installed, from the one thread asking questions.
        unsafe {
            let mut termios: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut termios) == 0 {
                SAVED_TERMIOS = Some(termios);
            }
            let handler = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
            QuestionsGuard {
                previous: libc::signal(libc::SIGINT, handler),
            }
        }
    }
}

impl Default for QuestionsGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for QuestionsGuard {
    fn drop(&mut self) {
        // SAFETY: puts back the disposition that was there before.
        unsafe {
            libc::signal(libc::SIGINT, self.previous);
        }
    }
}
