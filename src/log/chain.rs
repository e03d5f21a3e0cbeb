//! The chain: `head_i = SHA-256("relgate/log/v1\0" || head_{i-1} || line_i)`, head_{-1} = 32 zero bytes.

use sha2::{Digest, Sha256};

/// Domain tag: a head can never be confused with any other SHA-256 relgate computes.
pub const LOG_DOMAIN: &[u8] = b"relgate/log/v1\0";

/// The chain head after some number of lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head(pub [u8; 32]);

impl Head {
    pub const GENESIS: Head = Head([0u8; 32]);

    /// The head after appending `line` (without its trailing newline).
    pub fn next(&self, line: &[u8]) -> Head {
        let mut h = Sha256::new();
        h.update(LOG_DOMAIN);
        h.update(self.0);
        h.update(line);
        Head(h.finalize().into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_depends_on_predecessor_and_line() {
        let a = Head::GENESIS.next(b"x");
        let b = Head::GENESIS.next(b"y");
        assert_ne!(a, b);
        assert_ne!(a.next(b"x"), a);
        // A head is not the plain SHA-256 of the line.
        assert_ne!(a.hex(), crate::digest::sha256_hex(b"x"));
    }
}
