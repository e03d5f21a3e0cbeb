//! Bounded capture of an output stream: keep its head and tail, hash all of it.
//!
//! A test suite can print gigabytes; the release record must not. We keep the first
//! [`HEAD_BYTES`] (where build errors usually are) and the last [`TAIL_BYTES`] (where the test
//! summary is), and hash the full stream so the record still pins exactly what was printed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bytes kept from the start of a stream.
pub const HEAD_BYTES: usize = 1 << 20;
/// Bytes kept from the end of a stream (of what follows the head).
pub const TAIL_BYTES: usize = 64 << 10;

/// What the record holds about one output stream.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamCapture {
    /// sha256 (hex) of the full stream, every byte read, kept or not.
    pub sha256: String,
    /// Length of the full stream in bytes.
    pub len: u64,
    /// Evidence digest of the first `min(len, HEAD_BYTES)` bytes.
    pub head: String,
    /// Evidence digest of the last bytes, when the stream was longer than the head.
    pub tail: Option<String>,
    /// Bytes between head and tail that were hashed but not kept.
    pub omitted: u64,
    /// False when reading stopped before end of file (a process outside the group kept the
    /// pipe open, or a read failed): `sha256` and `len` then cover only what was read.
    pub complete: bool,
    /// Secret values cut from the stored bytes (see `redact`); `sha256` and `len` still
    /// describe the stream as printed.
    #[serde(default)]
    pub redacted: u32,
}

/// Accumulates a stream chunk by chunk.
pub struct Bounded {
    hasher: Sha256,
    len: u64,
    head: Vec<u8>,
    tail: Vec<u8>,
    head_cap: usize,
    tail_cap: usize,
}

/// The finished capture, before its bytes are stored.
pub struct Finished {
    pub sha256: String,
    pub len: u64,
    pub head: Vec<u8>,
    pub tail: Option<Vec<u8>>,
    pub omitted: u64,
}

impl Default for Bounded {
    fn default() -> Self {
        Bounded::with_caps(HEAD_BYTES, TAIL_BYTES)
    }
}

impl Bounded {
    pub fn with_caps(head_cap: usize, tail_cap: usize) -> Self {
        Bounded {
            hasher: Sha256::new(),
            len: 0,
            head: Vec::new(),
            tail: Vec::new(),
            head_cap,
            tail_cap,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.len += data.len() as u64;
        let room = self.head_cap.saturating_sub(self.head.len());
        let (to_head, rest) = data.split_at(room.min(data.len()));
        self.head.extend_from_slice(to_head);
        self.tail.extend_from_slice(rest);
        // Trim only when the buffer doubles, so trimming costs O(1) per byte amortised.
        if self.tail.len() > 2 * self.tail_cap.max(1) {
            let cut = self.tail.len() - self.tail_cap;
            self.tail.drain(..cut);
        }
    }

    pub fn finish(mut self) -> Finished {
        if self.tail.len() > self.tail_cap {
            let cut = self.tail.len() - self.tail_cap;
            self.tail.drain(..cut);
        }
        let kept = (self.head.len() + self.tail.len()) as u64;
        Finished {
            sha256: hex::encode(self.hasher.finalize()),
            len: self.len,
            omitted: self.len - kept,
            head: self.head,
            tail: (!self.tail.is_empty()).then_some(self.tail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_hex;

    #[test]
    fn short_stream_is_kept_whole() {
        let mut b = Bounded::with_caps(8, 4);
        b.push(b"hello");
        let f = b.finish();
        assert_eq!(f.head, b"hello");
        assert_eq!(f.tail, None);
        assert_eq!(f.omitted, 0);
        assert_eq!(f.sha256, sha256_hex(b"hello"));
    }

    #[test]
    fn long_stream_keeps_head_and_tail_and_hashes_everything() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut b = Bounded::with_caps(100, 50);
        for chunk in data.chunks(7) {
            b.push(chunk);
        }
        let f = b.finish();
        assert_eq!(f.head, &data[..100]);
        assert_eq!(f.tail.as_deref(), Some(&data[data.len() - 50..]));
        assert_eq!(f.omitted, 10_000 - 150);
        assert_eq!(f.len, 10_000);
        assert_eq!(f.sha256, sha256_hex(&data));
    }

    #[test]
    fn stream_just_past_the_head_keeps_a_short_tail() {
        let mut b = Bounded::with_caps(4, 10);
        b.push(b"abcdef");
        let f = b.finish();
        assert_eq!(f.head, b"abcd");
        assert_eq!(f.tail.as_deref(), Some(&b"ef"[..]));
        assert_eq!(f.omitted, 0);
    }
}
