//! Replay of a whole record folder, with structure-aware mutation of its log.
//!
//! The seed record (`fixtures/fuzz-record/record`, a release relgate made with the fixed
//! fuzzing key as its release key) is mutated by a small program read from the input: line
//! edits (delete, duplicate, swap, insert), byte edits, edits of one JSON value inside a line,
//! a cut, a flipped evidence byte; then, as the input asks, the chain is made whole again
//! (`seq` and `prev` recomputed, as anyone can) and the checkpoint signed again with the
//! release key (as only its holder can). Replay runs on the result in a temporary folder.
//!
//! Properties: without the key, replay passes only a record identical to the seed (a log
//! written by relgate and then changed is refused); with it, replay still refuses every
//! changed evidence file; either way it does not panic, hang or run out of memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::log::checkpoint::{self, Checkpoint};
use crate::log::{Entry, Head, read_log};
use crate::sshsig;
use crate::trust::TrustRoot;

/// The seed record and its trust root's allowed_signers principal.
pub const MUTATION_BASE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/fuzz-record");

/// The principal the seed record's release key signs as.
pub const RELEASE_SIGNER: &str = "release@acme.test";

/// The seed record, read once.
pub(crate) struct Base {
    /// Every file of the record by its path relative to the record.
    pub files: BTreeMap<String, Vec<u8>>,
    pub entries: Vec<Entry>,
    pub trust: TrustRoot,
    /// The text of every checkpoint the release key signed in the record.
    pub signed: Vec<String>,
}

/// The allowed_signers of the seed record's trust root: the fixed key as [`RELEASE_SIGNER`].
pub fn release_signers() -> String {
    format!(
        "{RELEASE_SIGNER} {}\n",
        sshsig::public_line(super::formats::key().public_key())
    )
}

pub(crate) fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = Path::new(MUTATION_BASE_DIR).join("record");
        let mut files = BTreeMap::new();
        for e in walkdir::WalkDir::new(&dir).sort_by_file_name() {
            let e = e.unwrap_or_else(|e| panic!("cannot read the seed record: {e}"));
            if e.file_type().is_file() {
                let rel = e.path().strip_prefix(&dir).expect("inside the record");
                let bytes = std::fs::read(e.path()).expect("a seed record file reads");
                files.insert(rel.to_string_lossy().replace('\\', "/"), bytes);
            }
        }
        let log = files.get("log.jsonl").expect("the seed record has a log");
        let (entries, _) = read_log(log).expect("the seed record's log reads");
        let trust = TrustRoot::from_signers_text(
            &release_signers(),
            Path::new("allowed_signers"),
            Some(RELEASE_SIGNER),
            "the fuzzing key".into(),
        )
        .expect("the fuzzing trust root");
        let signed = files
            .iter()
            .filter(|(name, _)| {
                (name.as_str() == "checkpoint" || name.starts_with("checkpoints/"))
                    && !name.ends_with(".sig")
            })
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect();
        Base {
            files,
            entries,
            trust,
            signed,
        }
    })
}

/// Read bytes off the front of the program; zero once it is used up.
struct Program<'a>(&'a [u8]);

impl Program<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn index(&mut self, len: usize) -> usize {
        let n = usize::from(self.byte()) << 8 | usize::from(self.byte());
        if len == 0 { 0 } else { n % len }
    }

    /// Up to `max` bytes of raw input.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = usize::from(self.byte()).min(max).min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken.to_vec()
    }

    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// Values worth putting into a log line.
const VALUES: &[&str] = &[
    "",
    "green",
    "red",
    "blocked",
    "published",
    "1.0.0",
    "1.0.1",
    "acme",
    "sign",
    "unit-tests",
    "gate-verdict",
    "run-started",
    "run-finished",
    "publish",
    "../x",
    "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "2026-01-01T00:00:00Z",
];

/// Replace, drop or add one value in a JSON tree: the `n`th node in document order.
fn edit_json(v: &mut Value, n: &mut usize, p: &mut Program<'_>) -> bool {
    if *n == 0 {
        let choice = p.byte();
        *v = match choice % 8 {
            0 => Value::String(VALUES[p.index(VALUES.len())].to_string()),
            1 => Value::String(String::from_utf8_lossy(&p.bytes(40)).into_owned()),
            2 => match v.as_u64() {
                Some(x) => Value::from(x.wrapping_add(1)),
                None => Value::from(0u64),
            },
            3 => Value::from(u64::MAX),
            4 => Value::Null,
            5 => Value::Bool(choice & 0x80 != 0),
            6 => Value::Array(Vec::new()),
            _ => match v {
                Value::Object(m) if !m.is_empty() => {
                    let k = p.index(m.len());
                    let key = m.keys().nth(k).cloned().unwrap_or_default();
                    m.remove(&key);
                    return true;
                }
                Value::Array(a) if !a.is_empty() => {
                    let k = p.index(a.len());
                    let dup = a[k].clone();
                    a.insert(k, dup);
                    return true;
                }
                _ => Value::Object(serde_json::Map::new()),
            },
        };
        return true;
    }
    *n -= 1;
    match v {
        Value::Object(m) => m.values_mut().any(|c| edit_json(c, n, p)),
        Value::Array(a) => a.iter_mut().any(|c| edit_json(c, n, p)),
        _ => false,
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Object(m) => m.values().map(count_nodes).sum(),
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Apply the program to the seed record; returns the mutated files.
fn mutate(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let base = base();
    let mut files = base.files.clone();
    let mut p = Program(data);
    let flags = p.byte();
    let log = files.get("log.jsonl").cloned().unwrap_or_default();
    let mut lines: Vec<Vec<u8>> = log
        .strip_suffix(b"\n")
        .unwrap_or(&log)
        .split(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let mut cut: Option<usize> = None;
    let mut steps = 0;
    while !p.done() && steps < 16 {
        steps += 1;
        let op = p.byte();
        let n = lines.len();
        match op % 9 {
            0 if n > 0 => {
                lines.remove(p.index(n));
            }
            1 if n > 0 => {
                let l = lines[p.index(n)].clone();
                lines.insert(p.index(n + 1), l);
            }
            2 if n > 0 => {
                let (a, b) = (p.index(n), p.index(n));
                lines.swap(a, b);
            }
            3 if n > 0 => {
                let i = p.index(n);
                let at = p.index(lines[i].len() + 1);
                let b = p.byte();
                match lines[i].get_mut(at) {
                    Some(x) => *x = b,
                    None => lines[i].push(b),
                }
            }
            4 | 5 if n > 0 => {
                let i = p.index(n);
                if let Ok(mut v) = serde_json::from_slice::<Value>(&lines[i]) {
                    let mut k = p.index(count_nodes(&v));
                    edit_json(&mut v, &mut k, &mut p);
                    lines[i] = serde_json::to_vec(&v).unwrap_or_default();
                }
            }
            6 => {
                let at = p.index(n + 1);
                let l = p.bytes(200);
                lines.insert(at, l);
            }
            7 => cut = Some(p.index(log.len() + 1)),
            8 => {
                let evidence: Vec<String> = files
                    .keys()
                    .filter(|k| k.starts_with("evidence/"))
                    .cloned()
                    .collect();
                if !evidence.is_empty() {
                    let name = &evidence[p.index(evidence.len())];
                    let f = files.get_mut(name).expect("listed");
                    let at = p.index(f.len().max(1));
                    let x = p.byte().max(1);
                    match f.get_mut(at) {
                        Some(b) => *b ^= x,
                        None => f.push(x),
                    }
                }
            }
            _ => {}
        }
    }
    if flags & 1 != 0 {
        rechain(&mut lines);
    }
    let mut log: Vec<u8> = lines
        .iter()
        .flat_map(|l| l.iter().chain(b"\n"))
        .copied()
        .collect();
    if let Some(c) = cut {
        log.truncate(c);
    }
    if flags & 2 != 0 {
        resign(&mut files, &log, flags & 4 != 0);
    }
    files.insert("log.jsonl".into(), log);
    files
}

/// Make `seq` and `prev` of every line that is a JSON object right again, in canonical form:
/// what anyone who can write the record can do.
fn rechain(lines: &mut [Vec<u8>]) {
    let mut head = Head::GENESIS;
    for (seq, line) in lines.iter_mut().enumerate() {
        if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(line) {
            m.insert("seq".into(), Value::from(seq as u64));
            m.insert("prev".into(), Value::String(head.hex()));
            if let Ok(text) = crate::digest::canonical_json(&Value::Object(m)) {
                *line = text.into_bytes();
            }
        }
        head = head.next(line);
    }
}

/// Sign a checkpoint over the whole of `log` with the release key, as `checkpoint` and in the
/// history; with `alone`, the older history goes.
fn resign(files: &mut BTreeMap<String, Vec<u8>>, log: &[u8], alone: bool) {
    let (size, head) = {
        let mut head = Head::GENESIS;
        let mut size = 0u64;
        for l in log.split_inclusive(|&b| b == b'\n') {
            if let Some(line) = l.strip_suffix(b"\n") {
                head = head.next(line);
                size += 1;
            }
        }
        (size, head)
    };
    let old = files
        .get("checkpoint")
        .and_then(|b| Checkpoint::parse(&String::from_utf8_lossy(b)).ok());
    let Some(old) = old else { return };
    let cp = Checkpoint {
        size,
        head: head.hex(),
        ..old
    };
    let text = cp.text();
    let Ok(sig) = sshsig::sign(
        super::formats::key(),
        sshsig::NS_CHECKPOINT,
        text.as_bytes(),
    ) else {
        return;
    };
    if alone {
        files.retain(|k, _| !k.starts_with("checkpoints/"));
    }
    let name = checkpoint::history_name(&cp);
    files.insert(format!("checkpoints/{name}"), text.clone().into_bytes());
    files.insert(format!("checkpoints/{name}.sig"), sig.clone().into_bytes());
    files.insert("checkpoint".into(), text.into_bytes());
    files.insert("checkpoint.sig".into(), sig.into_bytes());
}

fn write_record(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> PathBuf {
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir in the temporary record");
        }
        std::fs::write(&path, bytes).expect("write the temporary record");
    }
    dir.to_path_buf()
}

/// The replay target (module comment).
pub fn replay_record(data: &[u8]) {
    let base = base();
    let files = mutate(data);
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let dir = write_record(tmp.path(), &files);
    let report = crate::replay::replay(
        &dir,
        &crate::replay::ReplayOptions {
            trust: &base.trust,
            checkpoints: &[],
        },
    );
    if !report.ok {
        assert!(report.problem.is_some(), "a failed replay says why");
        return;
    }
    for (name, bytes) in &base.files {
        if name.starts_with("evidence/") {
            assert_eq!(
                files.get(name),
                Some(bytes),
                "replay passed with evidence {name} changed"
            );
        }
    }
    let resigned = data.first().is_some_and(|f| f & 2 != 0);
    if !resigned {
        assert!(
            files == base.files,
            "replay passed a changed record that the release key did not sign again: {:?}",
            report
        );
    }
}

/// The fixed fuzzing key as an OpenSSH private key file: the release key the seed record was
/// made with (tests/it/fuzz_corpus.rs makes it again).
pub fn release_key_openssh() -> String {
    super::formats::key()
        .to_openssh(ssh_key::LineEnding::LF)
        .map(|z| z.to_string())
        .expect("an Ed25519 key encodes")
}
