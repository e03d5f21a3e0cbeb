//! A small ssh-agent client: list the keys an agent holds and ask it to sign, over the Unix
//! socket in `SSH_AUTH_SOCK` (the agent protocol, draft-ietf-sshm-ssh-agent, messages 11–14).
//!
//! This is all relgate needs of an agent so that a release key or an approver's key that sits
//! in `ssh-agent`, `gpg-agent` or on a token behind one never touches disk. Written here rather
//! than taken from a crate (docs/dependencies.md): the two requests are a few dozen lines, the
//! maintained crates bring an async server framework with them, and every byte read is
//! length-checked before it is used.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh_key::{PublicKey, Signature};

/// `SSH_AGENT_FAILURE`: the agent refused (no such key, a confirmation denied, a token absent).
const FAILURE: u8 = 5;
const REQUEST_IDENTITIES: u8 = 11;
const IDENTITIES_ANSWER: u8 = 12;
const SIGN_REQUEST: u8 = 13;
const SIGN_RESPONSE: u8 = 14;

/// Sign-request flags for RSA keys: the hash the agent signs with (`rsa-sha2-256`/`-512`).
/// Without one an agent makes an `ssh-rsa` (SHA-1) signature, which relgate never accepts.
pub const RSA_SHA2_256: u32 = 2;
pub const RSA_SHA2_512: u32 = 4;

/// The largest reply read: an identities list of a few hundred keys, or one signature.
const MAX_MESSAGE: usize = 256 << 10;

/// How long one request may take. Long enough for a person to confirm a key added with
/// `ssh-add -c` or to touch a token; a dead agent still cannot hang a release forever.
const TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("SSH_AUTH_SOCK is not set: signing with a public key needs a running ssh-agent")]
    NoSocket,
    #[error("cannot reach the ssh-agent at {}: {source}", .socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the ssh-agent at {}: {source}", .socket.display())]
    Io {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the ssh-agent at {} answered something else than the protocol allows: {why}", .socket.display())]
    Protocol { socket: PathBuf, why: String },
    #[error("the ssh-agent refused to sign with {fingerprint} (key not confirmed, token absent?)")]
    Refused { fingerprint: String },
}

/// An agent reached through its socket.
#[derive(Clone, Debug)]
pub struct Agent {
    socket: PathBuf,
}

impl Agent {
    /// The agent `SSH_AUTH_SOCK` names.
    pub fn from_env() -> Result<Agent, AgentError> {
        match std::env::var_os("SSH_AUTH_SOCK") {
            Some(s) if !s.is_empty() => Ok(Agent::at(Path::new(&s))),
            _ => Err(AgentError::NoSocket),
        }
    }

    pub fn at(socket: &Path) -> Agent {
        Agent {
            socket: socket.to_path_buf(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The public keys the agent holds (certificates and keys of types `ssh-key` cannot
    /// decode are left out: relgate could not use them).
    pub fn identities(&self) -> Result<Vec<PublicKey>, AgentError> {
        let reply = self.request(&[REQUEST_IDENTITIES])?;
        let mut r = Reader {
            buf: &reply,
            agent: self,
        };
        if r.byte()? != IDENTITIES_ANSWER {
            return Err(self.protocol("expected an identities answer"));
        }
        let n = r.u32()?;
        let mut keys = Vec::new();
        for _ in 0..n {
            let blob = r.string()?;
            let _comment = r.string()?;
            if let Ok(k) = PublicKey::from_bytes(blob) {
                keys.push(k);
            }
        }
        r.end()?;
        Ok(keys)
    }

    /// Does the agent hold `key`?
    pub fn holds(&self, key: &PublicKey) -> Result<bool, AgentError> {
        Ok(self
            .identities()?
            .iter()
            .any(|k| k.key_data() == key.key_data()))
    }

    /// Ask the agent to sign `data` with `key` (`flags`: [`RSA_SHA2_256`] or [`RSA_SHA2_512`]
    /// for RSA keys, else 0). Returns the signature as the agent made it, unchecked: the caller
    /// verifies it, as it would any signature.
    pub fn sign(&self, key: &PublicKey, data: &[u8], flags: u32) -> Result<Signature, AgentError> {
        let blob = key
            .to_bytes()
            .map_err(|e| self.protocol(&format!("cannot encode the key: {e}")))?;
        let mut msg = vec![SIGN_REQUEST];
        put_string(&mut msg, &blob)?;
        put_string(&mut msg, data)?;
        msg.extend_from_slice(&flags.to_be_bytes());
        let reply = self.request(&msg)?;
        let mut r = Reader {
            buf: &reply,
            agent: self,
        };
        match r.byte()? {
            SIGN_RESPONSE => {}
            FAILURE => {
                return Err(AgentError::Refused {
                    fingerprint: crate::sshsig::fingerprint(key),
                });
            }
            other => return Err(self.protocol(&format!("unexpected message {other}"))),
        }
        let sig = r.string()?;
        r.end()?;
        Signature::try_from(sig).map_err(|e| self.protocol(&format!("malformed signature: {e}")))
    }

    /// Send one message and read its reply (each framed by a 4-byte length).
    fn request(&self, body: &[u8]) -> Result<Vec<u8>, AgentError> {
        let io = |source| AgentError::Io {
            socket: self.socket.clone(),
            source,
        };
        let mut s = UnixStream::connect(&self.socket).map_err(|source| AgentError::Connect {
            socket: self.socket.clone(),
            source,
        })?;
        s.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
        s.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
        let len = u32::try_from(body.len()).map_err(|_| self.protocol("request too large"))?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(body);
        s.write_all(&framed).map_err(io)?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).map_err(io)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_MESSAGE {
            return Err(self.protocol(&format!("a reply of {len} bytes")));
        }
        let mut reply = vec![0u8; len];
        s.read_exact(&mut reply).map_err(io)?;
        Ok(reply)
    }

    fn protocol(&self, why: &str) -> AgentError {
        AgentError::Protocol {
            socket: self.socket.clone(),
            why: why.to_string(),
        }
    }
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), AgentError> {
    let len = u32::try_from(bytes.len()).map_err(|_| AgentError::Protocol {
        socket: PathBuf::new(),
        why: "a field over 4 GiB".into(),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Reads a reply's fields, each bounded by what is left.
struct Reader<'a> {
    buf: &'a [u8],
    agent: &'a Agent,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AgentError> {
        if n > self.buf.len() {
            return Err(self.agent.protocol("a reply shorter than its fields"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, AgentError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, AgentError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<&'a [u8], AgentError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn end(&self) -> Result<(), AgentError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.agent.protocol("trailing bytes after the reply"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A fake agent answering one connection with `reply` (already framed or not).
    fn fake(reply: Vec<u8>) -> (tempfile::TempDir, Agent, std::thread::JoinHandle<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let l = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut len = [0u8; 4];
            s.read_exact(&mut len).unwrap();
            let mut req = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut req).unwrap();
            s.write_all(&reply).unwrap();
            req
        });
        (dir, Agent::at(&path), h)
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn a_failure_is_a_refusal_naming_the_key() {
        let key = crate::sshsig::throwaway_key().unwrap();
        let (_d, agent, h) = fake(framed(&[FAILURE]));
        let e = agent.sign(key.public_key(), b"x", 0).unwrap_err();
        assert!(matches!(e, AgentError::Refused { .. }), "{e}");
        let req = h.join().unwrap();
        assert_eq!(req[0], SIGN_REQUEST);
    }

    #[test]
    fn lengths_past_the_reply_and_oversized_replies_are_refused() {
        // An identities answer claiming one key whose blob is longer than the reply.
        let (_d, agent, _h) = fake(framed(&[IDENTITIES_ANSWER, 0, 0, 0, 1, 0, 0, 1, 0]));
        assert!(matches!(
            agent.identities(),
            Err(AgentError::Protocol { .. })
        ));
        let (_d, agent, _h) = fake(((MAX_MESSAGE as u32) + 1).to_be_bytes().to_vec());
        assert!(matches!(
            agent.identities(),
            Err(AgentError::Protocol { .. })
        ));
    }

    #[test]
    fn no_socket_says_so() {
        let agent = Agent::at(Path::new("/nonexistent/agent.sock"));
        assert!(matches!(
            agent.identities(),
            Err(AgentError::Connect { .. })
        ));
    }
}
