//! What a node holds at each `[[sync_files]]` path, read in one round trip
//! (`scripts/describe.sh`): per entry its relative path, type, mode, owner and group by
//! name, size and SHA-256, never its contents. Two copies are the same when their
//! descriptions' digests are; what differs is said in words that carry no contents.

use std::collections::BTreeMap;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::host::{Cmd, Host, HostExt};

const DESCRIBE_SH: &str = include_str!("scripts/describe.sh");

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A device, a socket, a pipe: nothing ha-setup copies.
    Other,
}

impl Kind {
    fn from_find(letter: &str) -> Kind {
        match letter {
            "f" => Kind::File,
            "d" => Kind::Dir,
            "l" => Kind::Symlink,
            _ => Kind::Other,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink => "symbolic link",
            Kind::Other => "special file",
        }
    }
}

/// An owner or group as a copy carries it: by name. `named` is false when the id has no
/// name on that node (the name is then the number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id {
    pub name: String,
    pub named: bool,
}

impl Id {
    fn new(name: &str, id: &str) -> Id {
        Id {
            name: name.to_owned(),
            // find prints the number where the id has no name.
            named: name != id,
        }
    }

    fn shown(&self) -> String {
        if self.named {
            self.name.clone()
        } else {
            format!("#{}", self.name)
        }
    }
}

/// One entry of a path: the path itself (`rel` empty) or something inside a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub rel: String,
    pub kind: Kind,
    /// Permission bits, with setuid, setgid and sticky.
    pub mode: u32,
    pub owner: Id,
    pub group: Id,
    /// Bytes, for a file (a directory's size depends on the file system, so it is 0).
    pub size: u64,
    /// Lower-case hex, for a file.
    pub sha256: Option<String>,
}

impl Entry {
    /// Where it is, for people: the path itself or `PATH/REL`.
    pub fn at(&self, path: &str) -> String {
        if self.rel.is_empty() {
            path.to_owned()
        } else {
            format!("{path}/{}", self.rel)
        }
    }

    fn owners(&self) -> String {
        format!("{}:{}", self.owner.shown(), self.group.shown())
    }
}

/// What a node holds at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Nothing there; `parent`: its directory exists.
    Missing {
        parent: bool,
    },
    Symlink,
    /// Neither a file nor a directory.
    Other,
    /// A file or a directory: every entry, the path itself first.
    Present(Vec<Entry>),
}

impl State {
    pub fn entries(&self) -> Option<&[Entry]> {
        match self {
            State::Present(entries) => Some(entries),
            _ => None,
        }
    }

    /// The digest of the description: equal digests, identical copies (bytes, modes,
    /// owners and names, whatever the times).
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        match self {
            State::Present(entries) => {
                let mut sorted: Vec<&Entry> = entries.iter().collect();
                sorted.sort_by(|a, b| a.rel.cmp(&b.rel));
                for e in sorted {
                    hasher.update(
                        format!(
                            "{:?}\0{:o}\0{}\0{}\0{}\0{}\0{}\n",
                            e.kind,
                            e.mode,
                            e.owner.shown(),
                            e.group.shown(),
                            e.size,
                            e.sha256.as_deref().unwrap_or("-"),
                            e.rel
                        )
                        .as_bytes(),
                    );
                }
            }
            other => hasher.update(format!("{other:?}").as_bytes()),
        }
        hex::encode(hasher.finalize())
    }

    /// One line on what is there, for people: `a file (0600 pi:pi, 32 B)`.
    pub fn summary(&self) -> String {
        match self {
            State::Missing { .. } => "missing".into(),
            State::Symlink => "a symbolic link".into(),
            State::Other => "neither a file nor a directory".into(),
            State::Present(entries) => {
                let top = &entries[0];
                let bytes: u64 = entries.iter().map(|e| e.size).sum();
                let what = match top.kind {
                    Kind::Dir => format!("a directory of {} entries,", entries.len() - 1),
                    _ => "a file,".into(),
                };
                format!(
                    "{what} {:04o} {}, {}",
                    top.mode,
                    top.owners(),
                    crate::runner::human_bytes(bytes)
                )
            }
        }
    }
}

/// What one node showed of every listed path, and which of the asked names it knows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeFiles {
    /// In the order asked.
    pub paths: Vec<Seen>,
    pub users: BTreeMap<String, bool>,
    pub groups: BTreeMap<String, bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub state: State,
    /// `PATH.ha-setup-new` is there: an interrupted copy's staging directory.
    pub staged: bool,
}

/// Reads `paths` on a host in one round trip, and whether `users` and `groups` exist there.
pub fn read(
    host: &mut dyn Host,
    paths: &[String],
    users: &[String],
    groups: &[String],
) -> anyhow::Result<NodeFiles> {
    let args: Vec<String> = paths
        .iter()
        .map(|p| format!("p:{p}"))
        .chain(users.iter().map(|u| format!("u:{u}")))
        .chain(groups.iter().map(|g| format!("g:{g}")))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let label = host.label().to_owned();
    let output = host.run(&Cmd::script(DESCRIBE_SH, &args).as_root())?;
    if !output.success() {
        anyhow::bail!(
            "cannot read the [[sync_files]] on {label}: {}",
            output.stderr.trim()
        );
    }
    // The description holds digests: an error says where it broke, never what it read.
    parse(&output.stdout, paths.len())
        .with_context(|| format!("cannot read the [[sync_files]] on {label}"))
}

/// Parses describe.sh's records.
pub fn parse(bytes: &[u8], count: usize) -> anyhow::Result<NodeFiles> {
    let mut states: Vec<Option<State>> = vec![None; count];
    let mut staged = vec![false; count];
    let mut sums: Vec<BTreeMap<String, String>> = vec![BTreeMap::new(); count];
    let mut files = NodeFiles::default();
    let index = |field: &str| -> anyhow::Result<usize> {
        field
            .parse::<usize>()
            .ok()
            .filter(|i| *i < count)
            .with_context(|| format!("a record names path number {field:?}"))
    };
    for record in bytes.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let text = std::str::from_utf8(record).context("a name that is not UTF-8")?;
        let kind = text.split('\t').next().unwrap_or_default();
        match kind {
            "path" => {
                let fields: Vec<&str> = text.splitn(3, '\t').collect();
                let i = index(fields.get(1).copied().unwrap_or_default())?;
                states[i] = Some(match fields.get(2).copied() {
                    Some("present") => State::Present(Vec::new()),
                    Some("symlink") => State::Symlink,
                    Some("other") => State::Other,
                    Some("missing") => State::Missing { parent: true },
                    Some("noparent") => State::Missing { parent: false },
                    other => anyhow::bail!("a path in the unknown state {other:?}"),
                });
            }
            "entry" => {
                let f: Vec<&str> = text.splitn(10, '\t').collect();
                anyhow::ensure!(f.len() == 10, "an entry with {} fields", f.len());
                let i = index(f[1])?;
                let Some(State::Present(entries)) = &mut states[i] else {
                    anyhow::bail!("an entry before its path");
                };
                let kind = Kind::from_find(f[2]);
                entries.push(Entry {
                    rel: f[9].to_owned(),
                    kind,
                    mode: u32::from_str_radix(f[3], 8)
                        .with_context(|| format!("the mode {:?}", f[3]))?,
                    owner: Id::new(f[4], f[5]),
                    group: Id::new(f[6], f[7]),
                    size: if kind == Kind::File {
                        f[8].parse()
                            .with_context(|| format!("the size {:?}", f[8]))?
                    } else {
                        0
                    },
                    sha256: None,
                });
            }
            "sum" => {
                let f: Vec<&str> = text.splitn(4, '\t').collect();
                anyhow::ensure!(f.len() == 4, "a digest with {} fields", f.len());
                sums[index(f[1])?].insert(f[3].to_owned(), f[2].to_owned());
            }
            "staged" => {
                let f: Vec<&str> = text.splitn(2, '\t').collect();
                staged[index(f.get(1).copied().unwrap_or_default())?] = true;
            }
            "user" | "group" => {
                let f: Vec<&str> = text.splitn(3, '\t').collect();
                anyhow::ensure!(f.len() == 3, "a {kind} record with {} fields", f.len());
                let known = f[1] == "yes";
                let map = if kind == "user" {
                    &mut files.users
                } else {
                    &mut files.groups
                };
                map.insert(f[2].to_owned(), known);
            }
            other => anyhow::bail!("an unknown record {other:?}"),
        }
    }
    for (i, state) in states.into_iter().enumerate() {
        let Some(mut state) = state else {
            anyhow::bail!("no answer for path number {i}");
        };
        if let State::Present(entries) = &mut state {
            anyhow::ensure!(
                entries.first().is_some_and(|e| e.rel.is_empty()),
                "path number {i} has no entry of its own"
            );
            for entry in entries.iter_mut().filter(|e| e.kind == Kind::File) {
                entry.sha256 = Some(
                    sums[i]
                        .remove(&entry.rel)
                        .with_context(|| format!("no digest for a file of path number {i}"))?,
                );
            }
        }
        files.paths.push(Seen {
            state,
            staged: staged[i],
        });
    }
    Ok(files)
}

/// How `have` differs from `want`, in words that carry no contents; empty when they are
/// the same. At most `MAX_SHOWN` differences, then a count of the rest.
pub fn differences(want: &State, have: &State) -> Vec<String> {
    const MAX_SHOWN: usize = 4;
    let (Some(want), Some(have_entries)) = (want.entries(), have.entries()) else {
        return if want == have {
            Vec::new()
        } else {
            vec![have.summary()]
        };
    };
    let prefix = |rel: &str| {
        if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}: ")
        }
    };
    let theirs: BTreeMap<&str, &Entry> = have_entries.iter().map(|e| (e.rel.as_str(), e)).collect();
    let ours: BTreeMap<&str, &Entry> = want.iter().map(|e| (e.rel.as_str(), e)).collect();
    let mut found = Vec::new();
    for w in want {
        let at = prefix(&w.rel);
        let Some(h) = theirs.get(w.rel.as_str()) else {
            found.push(format!("{at}missing"));
            continue;
        };
        if h.kind != w.kind {
            found.push(format!("{at}a {}, not a {}", h.kind.word(), w.kind.word()));
            continue;
        }
        if h.mode != w.mode {
            found.push(format!("{at}mode {:04o}, not {:04o}", h.mode, w.mode));
        }
        if h.owner != w.owner || h.group != w.group {
            found.push(format!("{at}owner {}, not {}", h.owners(), w.owners()));
        }
        if h.size != w.size || h.sha256 != w.sha256 {
            found.push(format!("{at}contents differ"));
        }
    }
    for h in have_entries {
        if !ours.contains_key(h.rel.as_str()) {
            found.push(format!("{}not in the primary's copy", prefix(&h.rel)));
        }
    }
    if found.len() > MAX_SHOWN {
        let more = found.len() - MAX_SHOWN;
        found.truncate(MAX_SHOWN);
        found.push(format!("{more} more"));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> Vec<u8> {
        let mut bytes = fields.join("\t").into_bytes();
        bytes.push(0);
        bytes
    }

    fn described(mode: &str, sum: &str) -> Vec<u8> {
        [
            record(&["path", "0", "present"]),
            record(&[
                "entry", "0", "d", "750", "pi", "998", "pi", "997", "4096", "",
            ]),
            record(&[
                "entry",
                "0",
                "f",
                mode,
                "pi",
                "998",
                "pi",
                "997",
                "5",
                "keys/a\tb",
            ]),
            record(&[
                "entry", "0", "d", "700", "root", "0", "root", "0", "40", "keys",
            ]),
            record(&["sum", "0", sum, "keys/a\tb"]),
            record(&["path", "1", "symlink"]),
            record(&["staged", "1"]),
            record(&["user", "no", "pi"]),
            record(&["group", "yes", "pi"]),
        ]
        .concat()
    }

    #[test]
    fn a_description_parses_and_its_digest_ignores_what_does_not_count() {
        let files = parse(&described("600", "aa"), 2).unwrap();
        let entries = files.paths[0].state.entries().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].rel, "keys/a\tb");
        assert_eq!(entries[1].mode, 0o600);
        assert_eq!(entries[1].sha256.as_deref(), Some("aa"));
        // A directory's size is the file system's business.
        assert_eq!(entries[2].size, 0);
        assert_eq!(files.paths[1].state, State::Symlink);
        assert!(files.paths[1].staged && !files.paths[0].staged);
        assert!(!files.users["pi"]);
        assert!(files.groups["pi"]);

        // The same entries in another order: the same digest.
        let mut reordered = files.paths[0].state.clone();
        if let State::Present(entries) = &mut reordered {
            entries.swap(1, 2);
        }
        assert_eq!(reordered.digest(), files.paths[0].state.digest());

        let other = parse(&described("640", "bb"), 2).unwrap();
        assert_ne!(other.paths[0].state.digest(), files.paths[0].state.digest());
        assert_eq!(
            differences(&files.paths[0].state, &other.paths[0].state),
            [
                "keys/a\tb: mode 0640, not 0600",
                "keys/a\tb: contents differ"
            ]
        );
        assert!(differences(&files.paths[0].state, &files.paths[0].state).is_empty());
        assert_eq!(
            differences(&files.paths[0].state, &State::Missing { parent: true }),
            ["missing"]
        );
    }

    #[test]
    fn owners_are_compared_by_name_not_by_number() {
        let a = parse(&described("600", "aa"), 2).unwrap();
        let renumbered = String::from_utf8(described("600", "aa"))
            .unwrap()
            .replace("998", "1001");
        let b = parse(renumbered.as_bytes(), 2).unwrap();
        assert_eq!(a.paths[0].state.digest(), b.paths[0].state.digest());
        // An id without a name is shown as its number, and differs from any name.
        let nameless = String::from_utf8(described("600", "aa"))
            .unwrap()
            .replace("\tpi\t998", "\t998\t998");
        let c = parse(nameless.as_bytes(), 2).unwrap();
        assert!(!c.paths[0].state.entries().unwrap()[0].owner.named);
        assert_eq!(
            differences(&a.paths[0].state, &c.paths[0].state)[0],
            "owner #998:pi, not pi:pi"
        );
    }

    #[test]
    fn a_broken_description_is_an_error_without_its_text() {
        let err = parse(b"entry\t0\tf\0", 1).unwrap_err();
        assert!(format!("{err:#}").contains("fields"), "{err:#}");
        let err = parse(&record(&["path", "0", "present"]), 1).unwrap_err();
        assert!(
            format!("{err:#}").contains("no entry of its own"),
            "{err:#}"
        );
        assert!(parse(b"", 1).is_err());
    }
}
