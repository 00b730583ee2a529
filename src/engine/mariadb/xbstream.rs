//! mariadb-backup's stream format (xbstream), read as it comes, so that its files become a
//! bundle's frames without landing on the primary's disk.
//!
//! A stream is a sequence of chunks (integers little-endian): the magic `XBSTCK01`, a flags
//! byte, a type byte, the path (u32 length, bytes), and for a payload chunk (`P`) its length
//! (u64), its offset in the file (u64), the CRC-32 of the payload (u32) and the payload. An
//! end chunk (`E`) closes a file and carries nothing more. Chunks of several files interleave
//! (parallel copy threads, and the redo log copied alongside); each file's come in order.

use std::io::Read;

use anyhow::{Context, bail, ensure};

const MAGIC: &[u8; 8] = b"XBSTCK01";
const PAYLOAD: u8 = b'P';
const END: u8 = b'E';
/// mariadb-backup writes at most 10 MiB a chunk; anything far larger is damage, and would
/// cost that much memory.
const MAX_PAYLOAD: u64 = 64 << 20;
/// Paths are a database's file names, never this long.
const MAX_PATH: u32 = 4096;

pub enum Chunk<'a> {
    Payload {
        path: &'a str,
        offset: u64,
        data: &'a [u8],
    },
    End {
        path: &'a str,
    },
}

pub struct Reader<R: Read> {
    inner: R,
    path: String,
    data: Vec<u8>,
    /// Bytes read so far, for errors.
    at: u64,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            path: String::new(),
            data: Vec::new(),
            at: 0,
        }
    }

    /// The next chunk, or None at the end of the stream (between chunks).
    pub fn next_chunk(&mut self) -> anyhow::Result<Option<Chunk<'_>>> {
        let start = self.at;
        let mut magic = [0; 8];
        if !self.fill(&mut magic)? {
            return Ok(None);
        }
        ensure!(
            magic == *MAGIC,
            "mariadb-backup's stream is not what this ha-setup reads: no chunk starts at byte \
             {start} (a version with another stream format?)"
        );
        let mut head = [0; 6];
        self.exact(&mut head)?;
        let kind = head[1];
        let len = u32::from_le_bytes(head[2..].try_into().expect("4 bytes"));
        ensure!(
            len <= MAX_PATH,
            "mariadb-backup's stream is damaged: a path of {len} bytes at byte {start}"
        );
        let mut path = vec![0; len as usize];
        self.exact(&mut path)?;
        self.path = String::from_utf8(path).map_err(|_| {
            anyhow::anyhow!(
                "mariadb-backup sent a file whose name is not UTF-8 (at byte {start}); rename it"
            )
        })?;
        match kind {
            END => Ok(Some(Chunk::End { path: &self.path })),
            PAYLOAD => {
                let mut fields = [0; 20];
                self.exact(&mut fields)?;
                let len = u64::from_le_bytes(fields[..8].try_into().expect("8 bytes"));
                let offset = u64::from_le_bytes(fields[8..16].try_into().expect("8 bytes"));
                let crc = u32::from_le_bytes(fields[16..].try_into().expect("4 bytes"));
                ensure!(
                    len <= MAX_PAYLOAD,
                    "mariadb-backup's stream is damaged: a chunk of {len} bytes for `{}`",
                    self.path
                );
                let mut data = std::mem::take(&mut self.data);
                data.resize(len as usize, 0);
                self.exact(&mut data)?;
                self.data = data;
                ensure!(
                    crc32fast::hash(&self.data) == crc,
                    "mariadb-backup's stream is damaged: a chunk of `{}` fails its checksum",
                    self.path
                );
                Ok(Some(Chunk::Payload {
                    path: &self.path,
                    offset,
                    data: &self.data,
                }))
            }
            other => bail!(
                "mariadb-backup sent a chunk of a kind this ha-setup does not know (`{}`) for `{}`",
                char::from(other).escape_default(),
                self.path
            ),
        }
    }

    /// Fills `buf`; false when the stream ended before its first byte.
    fn fill(&mut self, buf: &mut [u8]) -> anyhow::Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => bail!(
                    "mariadb-backup's stream ended in the middle of a chunk (at byte {})",
                    self.at + got as u64
                ),
                Ok(n) => got += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err).context("cannot read mariadb-backup's stream"),
            }
        }
        self.at += got as u64;
        Ok(true)
    }

    fn exact(&mut self, buf: &mut [u8]) -> anyhow::Result<()> {
        if !self.fill(buf)? {
            bail!(
                "mariadb-backup's stream ended in the middle of a chunk (at byte {})",
                self.at
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(path: &str, offset: u64, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([0, PAYLOAD]);
        out.extend((path.len() as u32).to_le_bytes());
        out.extend(path.as_bytes());
        out.extend((data.len() as u64).to_le_bytes());
        out.extend(offset.to_le_bytes());
        out.extend(crc32fast::hash(data).to_le_bytes());
        out.extend(data);
        out
    }

    fn end(path: &str) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([0, END]);
        out.extend((path.len() as u32).to_le_bytes());
        out.extend(path.as_bytes());
        out
    }

    fn read_all(bytes: &[u8]) -> anyhow::Result<Vec<String>> {
        let mut reader = Reader::new(bytes);
        let mut seen = Vec::new();
        while let Some(chunk) = reader.next_chunk()? {
            seen.push(match chunk {
                Chunk::Payload { path, offset, data } => {
                    format!("{path}@{offset}:{}", String::from_utf8_lossy(data))
                }
                Chunk::End { path } => format!("{path}!"),
            });
        }
        Ok(seen)
    }

    #[test]
    fn interleaved_files_come_out_as_they_went_in() {
        let stream = [
            payload("ibdata1", 0, b"abc"),
            payload("ib_logfile0", 0, b"log"),
            payload("ibdata1", 3, b"def"),
            end("ibdata1"),
            end("empty"),
            end("ib_logfile0"),
        ]
        .concat();
        assert_eq!(
            read_all(&stream).unwrap(),
            [
                "ibdata1@0:abc",
                "ib_logfile0@0:log",
                "ibdata1@3:def",
                "ibdata1!",
                "empty!",
                "ib_logfile0!"
            ]
        );
    }

    #[test]
    fn damage_is_named() {
        let mut bad_crc = payload("app/t.ibd", 0, b"data");
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        let err = format!("{:#}", read_all(&bad_crc).unwrap_err());
        assert!(err.contains("`app/t.ibd` fails its checksum"), "{err}");

        let whole = payload("app/t.ibd", 0, b"data");
        let err = format!("{:#}", read_all(&whole[..whole.len() - 2]).unwrap_err());
        assert!(err.contains("ended in the middle of a chunk"), "{err}");

        let err = format!("{:#}", read_all(b"PK\x03\x04 not a stream").unwrap_err());
        assert!(err.contains("no chunk starts at byte 0"), "{err}");

        let mut odd = end("x");
        odd[9] = b'S';
        let err = format!("{:#}", read_all(&odd).unwrap_err());
        assert!(err.contains("(`S`) for `x`"), "{err}");
    }
}
