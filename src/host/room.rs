//! Room on a host's filesystems: checked before a copy of the data is sent anywhere.

use std::collections::HashMap;

use anyhow::Context;

use super::{Cmd, Host, HostExt};

/// The filesystem a path is on (or would be on: its nearest existing ancestor's), and how
/// much of it the path itself takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Room {
    /// Bytes free for new files.
    pub free: u64,
    /// What is mounted: a device, or a name such as `tmpfs`.
    pub device: String,
    /// Where that filesystem is mounted.
    pub mount: String,
    /// Bytes the path itself takes (0 when it does not exist).
    pub used: u64,
}

const ROOM: &str = include_str!("room.sh");

pub fn room(host: &mut dyn Host, path: &str) -> anyhow::Result<Room> {
    let text = host.run_ok(&Cmd::script(ROOM, &[path]).as_root())?;
    parse_room(&text).with_context(|| {
        format!(
            "cannot read the free space at {path} on {}: {text:?}",
            host.label()
        )
    })
}

pub fn parse_room(text: &str) -> Option<Room> {
    let values: HashMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    Some(Room {
        free: values.get("free")?.trim().parse().ok()?,
        device: values.get("device")?.trim().to_owned(),
        mount: values.get("mount")?.trim().to_owned(),
        used: values
            .get("used")
            .and_then(|u| u.trim().parse().ok())
            .unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_on_a_filesystem() {
        let room = parse_room("free=1048576\ndevice=/dev/loop0\nmount=/var/lib/mysql\nused=4096\n")
            .unwrap();
        assert_eq!(room.free, 1 << 20);
        assert_eq!(room.mount, "/var/lib/mysql");
        assert_eq!(room.used, 4096);
        assert_eq!(parse_room("free=\n"), None);
    }
}
