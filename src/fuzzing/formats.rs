//! Targets for the formats read from files and sockets: each parses the input, checks what the
//! result promises, and writes then reads again where relgate has a writer.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::OnceLock;

use ssh_key::PrivateKey;

use super::{split2, text};
use crate::approval::{self, Statement};
use crate::config::{self, SourceFile};
use crate::gates::regression::report;
use crate::gates::regression::tally::Counter;
use crate::gates::security_review::{matching, pentest, register as reg, severity};
use crate::sarif::{self, Finding, Level};
use crate::signers::{self, AllowedSigners};
use crate::sshsig::{self, NS_APPROVAL, NS_FILE};
use crate::{clamd as clam, git, verify};

/// The principal the fixed fuzzing key signs as.
const PRINCIPAL: &str = "fuzz@relgate.test";

/// A fixed Ed25519 key (seed 0x42…), so that a crash reproduces from its input alone.
pub(crate) fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[0x42; 32])))
}

/// allowed_signers naming [`key`] for [`PRINCIPAL`], every namespace.
fn signers_text() -> String {
    format!("{PRINCIPAL} {}\n", sshsig::public_line(key().public_key()))
}

fn allowed() -> &'static AllowedSigners {
    static SIGNERS: OnceLock<AllowedSigners> = OnceLock::new();
    SIGNERS.get_or_init(|| match signers::parse(&signers_text()) {
        Ok(s) => s,
        Err(e) => panic!("the fuzzing key's allowed_signers does not parse: {e:?}"),
    })
}

/// `pipeline.yaml` through validation, with no disk: the input is the pipeline; after a line
/// `#@file NAME` the text is the `uses:` file NAME instead. A valid pipeline records its
/// sources verbatim, validates again from them to the same pipeline (what replay does), and
/// survives the JSON round trip the log puts it through.
pub fn pipeline(data: &[u8]) {
    let input = text(data);
    let mut parts = input.split("\n#@file ");
    let main = parts.next().unwrap_or_default();
    let uses: Vec<SourceFile> = parts
        .map(|p| {
            let (name, body) = p.split_once('\n').unwrap_or((p, ""));
            SourceFile {
                path: name.to_string(),
                text: body.to_string(),
            }
        })
        .collect();
    // The principals the seeds name, and a few more.
    let signers = format!(
        "release@acme.test,release@relgate.example,alice@acme.test,bob@acme.test,\
         carol@acme.test,{PRINCIPAL} {}\n",
        sshsig::public_line(key().public_key())
    );
    let Ok(loaded) = config::validate_offline(main, &uses, Some(&signers)) else {
        return;
    };
    assert_eq!(
        loaded.sources[0].text, main,
        "the pipeline source is recorded verbatim"
    );
    for s in &loaded.sources[1..] {
        assert!(
            uses.iter().any(|u| u.text == s.text),
            "uses file {:?} is recorded verbatim",
            s.path
        );
    }
    let again = match config::validate_offline(main, &loaded.sources[1..], Some(&signers)) {
        Ok(l) => l,
        Err(d) => panic!("valid once, invalid from its own recorded sources: {d:?}"),
    };
    assert_eq!(
        again.pipeline, loaded.pipeline,
        "validation is deterministic"
    );
    assert_eq!(again.sources, loaded.sources);
    let json = serde_json::to_string(&loaded.pipeline).expect("a pipeline serialises");
    let back: crate::model::Pipeline = serde_json::from_str(&json).expect("and reads back");
    assert_eq!(back, loaded.pipeline, "JSON round trip");
    let _ = config::plan_text(&loaded.pipeline);
}

/// `allowed_signers`: every entry's principals are non-empty and its key passes the key
/// policy; lookups by each principal find the entry. The input after a NUL is a
/// `string\npattern` pair for OpenSSH's `match_pattern`, checked against a plain
/// dynamic-programming matcher.
pub fn allowed_signers(data: &[u8]) {
    let (file, pair) = split2(data);
    if let Ok(parsed) = signers::parse(&text(file)) {
        for e in &parsed.entries {
            assert!(!e.principals.is_empty());
            assert!(e.principals.iter().all(|p| !p.is_empty() && p != "!"));
            assert!(
                sshsig::key_policy(&e.key).is_ok(),
                "an entry's key type is accepted"
            );
            assert_eq!(e.fingerprint, sshsig::fingerprint(&e.key));
            let negates = e.principals.iter().any(|p| p.starts_with('!'));
            for p in &e.principals {
                if !negates && !p.contains(['*', '?']) {
                    assert!(parsed.names_principal(p), "{p:?} is named");
                }
            }
        }
        let _ = parsed.principals();
    }
    let pair = text(pair);
    let (s, pattern) = pair.split_once('\n').unwrap_or((&pair, "*"));
    assert_eq!(
        signers::match_pattern(s, pattern),
        glob_reference(s, pattern),
        "match_pattern({s:?}, {pattern:?})"
    );
}

/// `*` any sequence, `?` any one character: the textbook table.
fn glob_reference(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // row[j]: does p[..i] match s[..j]?
    let mut row = vec![false; s.len() + 1];
    row[0] = true;
    for &pc in &p {
        let mut next = vec![false; s.len() + 1];
        next[0] = row[0] && pc == '*';
        for j in 1..=s.len() {
            next[j] = match pc {
                '*' => next[j - 1] || row[j],
                '?' => row[j - 1],
                c => row[j - 1] && c == s[j - 1],
            };
        }
        row = next;
    }
    row[s.len()]
}

/// SSHSIG armour and signatures. The input as armour: a key comes out only of a signature that
/// parses, and it never verifies over a message the fixed key signed unless it is that key's
/// own valid signature. The input as a message: signed with the fixed key it verifies, and
/// not under another namespace or over another message.
pub fn sshsig(data: &[u8]) {
    let armored = text(data);
    let msg = b"relgate fuzzing message\n";
    if let Ok(k) = sshsig::signature_key(&armored) {
        let _ = sshsig::fingerprint(&k);
        let _ = sshsig::public_line(&k);
        if let Ok(d) = sshsig::verify_detailed(&k, NS_FILE, msg, &armored) {
            assert_eq!(d.fingerprint, sshsig::fingerprint(&k));
            if let Some(sk) = d.sk {
                assert!(sk.flags & sshsig::SK_USER_PRESENT != 0);
            }
        }
    }
    let _ = sshsig::verify_with_key(key().public_key(), NS_FILE, msg, &armored);
    let sig = match sshsig::sign(key(), NS_FILE, data) {
        Ok(s) => s,
        Err(e) => panic!("the fixed key cannot sign: {e}"),
    };
    let pk = key().public_key();
    assert_eq!(sshsig::signature_key(&sig).ok().as_ref(), Some(pk));
    assert!(sshsig::verify_with_key(pk, NS_FILE, data, &sig).is_ok());
    assert!(sshsig::verify_with_key(pk, NS_APPROVAL, data, &sig).is_err());
    let mut other = data.to_vec();
    other.push(b'\n');
    assert!(sshsig::verify_with_key(pk, NS_FILE, &other, &sig).is_err());
}

/// Approval statements: a statement that parses is canonical (its bytes are exactly what
/// `to_bytes` writes) and reads back equal. Re-addressed to the fixed key and signed, it
/// verifies as a pair; one byte more and it does not. The input after a NUL is taken as the
/// signature of the part before it, which must never verify unless the fixed key made it.
pub fn approval(data: &[u8]) {
    let (statement, signature) = split2(data);
    if let Ok(st) = approval::parse_statement(statement) {
        let fields = serde_json::from_slice::<serde_json::Value>(statement)
            .ok()
            .and_then(|v| v.as_object().map(serde_json::Map::len));
        // Extra keys are allowed but not kept: only a statement of the known fields alone is
        // written back byte for byte.
        if fields == Some(11) {
            assert_eq!(st.to_bytes(), statement, "a parsed statement is canonical");
        }
        assert_eq!(approval::parse_statement(&st.to_bytes()).as_ref(), Ok(&st));
        let mine = Statement {
            signer: PRINCIPAL.into(),
            key: sshsig::fingerprint(key().public_key()),
            ..st
        };
        let bytes = mine.to_bytes();
        let sig = match sshsig::sign(key(), NS_APPROVAL, &bytes) {
            Ok(s) => s,
            Err(e) => panic!("the fixed key cannot sign: {e}"),
        };
        let at = mine.unix_time().expect("a parsed statement has a time");
        match approval::verify_pair(&bytes, sig.as_bytes(), allowed(), at) {
            Ok(v) => assert_eq!(v.statement, mine),
            Err(e) => panic!("a statement signed by an allowed key fails: {e}"),
        }
        let mut longer = bytes.clone();
        longer.push(b' ');
        assert!(approval::verify_pair(&longer, sig.as_bytes(), allowed(), at).is_err());
    }
    if let Ok(v) = approval::verify_pair(statement, signature, allowed(), 0) {
        assert_eq!(v.key, sshsig::fingerprint(key().public_key()));
        assert_eq!(v.statement.key, v.key);
    }
}

/// SARIF: findings come out in file order, each with a severity whose score is a score; the
/// report survives the JSON round trip evidence puts it through.
pub fn sarif(data: &[u8]) {
    let Ok(report) = sarif::parse(data) else {
        return;
    };
    let mut prev: Option<(usize, usize)> = None;
    for f in &report.findings {
        assert!(prev < Some((f.run, f.index)), "findings in file order");
        prev = Some((f.run, f.index));
        let _ = f.label();
        check_assessed(&severity::assess(f));
    }
    let json = serde_json::to_string(&report.findings).expect("findings serialise");
    let back: Vec<Finding> = serde_json::from_str(&json).expect("and read back");
    assert_eq!(back.len(), report.findings.len());
    for (a, b) in back.iter().zip(&report.findings) {
        assert_eq!(severity::assess(a).severity, severity::assess(b).severity);
    }
}

fn check_assessed(a: &severity::Assessed) {
    if let Some(s) = a.score {
        assert!((0.0..=10.0).contains(&s), "score {s}");
        assert_eq!(a.severity, severity::Severity::from_score(s), "{a:?}");
    }
    let _ = a.describe();
}

/// JUnit XML: nesting stays within the limit, and the tally of a report adds up (each distinct
/// test case counted once, as passed, failed or skipped).
pub fn junit(data: &[u8]) {
    let Ok(r) = report::read(data) else {
        return;
    };
    fn depth(s: &report::Suite) -> usize {
        1 + s.suites.iter().map(depth).max().unwrap_or(0)
    }
    assert!(r.suites.iter().map(depth).max().unwrap_or(0) <= report::MAX_DEPTH + 1);
    let mut c = Counter::default();
    c.add(&r);
    let t = c.finish();
    assert!(t.passed <= t.executed, "{t:?}");
    assert!(t.failed.len() as u64 <= t.executed, "{t:?}");
    assert!(t.flaky.len() as u64 <= t.passed, "{t:?}");
}

/// CVSS vectors, as a SARIF property: a vector that parses scores within 0–10 and prints as
/// a vector that parses to the same score; the severity relgate assesses follows the score.
pub fn cvss(data: &[u8]) {
    let vector = text(data).into_owned();
    if let Ok(c) = cvss::Cvss::from_str(vector.trim()) {
        let score = c.score();
        assert!((0.0..=10.0).contains(&score), "{vector:?} scores {score}");
        let shown = c.to_string();
        match cvss::Cvss::from_str(&shown) {
            Ok(again) => assert_eq!(again.score(), score, "{vector:?} printed {shown:?}"),
            Err(e) => panic!("{vector:?} printed as {shown:?}, which does not parse: {e}"),
        }
    }
    let mut props = BTreeMap::new();
    props.insert("cvssV3_1".to_string(), serde_json::Value::String(vector));
    let f = Finding {
        run: 0,
        index: 0,
        tool: "fuzz".into(),
        rule_id: Some("R1".into()),
        rule_name: None,
        message: "m".into(),
        level: Level::Warning,
        stated_levels: Vec::new(),
        kind: "fail".into(),
        locations: Vec::new(),
        guid: None,
        fingerprints: Vec::new(),
        result_properties: props,
        rule_properties: BTreeMap::new(),
        other_rule_properties: Vec::new(),
    };
    let a = severity::assess(&f);
    check_assessed(&a);
    assert!(a.vector.is_some() || !a.unreadable.is_empty(), "{a:?}");
}

/// The remediation register and pentest records (the same YAML read as both): parsing is
/// deterministic, an unparsed file yields no entries, and matching against the register's own
/// finding ids and the pentests' ids keeps within bounds.
pub fn register(data: &[u8]) {
    let r = reg::parse_register("remediations.yaml", data);
    assert_eq!(r, reg::parse_register("remediations.yaml", data));
    if !r.parsed {
        assert!(r.entries.is_empty());
        assert!(!r.diagnostics.is_empty(), "an unread register says why");
    }
    for e in &r.entries {
        let _ = e.label("remediations.yaml");
        let _ = e.missing_assignment();
    }
    let p = pentest::parse_pentests("pentests.yaml", data);
    if !p.parsed {
        assert!(p.records.is_empty());
        assert!(!p.diagnostics.is_empty(), "unread pentests say why");
    }
    let _ = p.newest();
    let ids: Vec<&str> = p
        .records
        .iter()
        .flat_map(|t| t.findings.iter().map(|(id, _)| id.as_str()))
        .collect();
    let m = matching::match_register(&r, &[], &ids);
    assert_eq!(m.used.len(), r.entries.len());
}

/// `SHA256SUMS`: a file without problems is exactly the lines it lists, written back the way
/// relgate writes it (sorted, two spaces, LF).
pub fn sums(data: &[u8]) {
    let (lines, problems) = verify::parse_sums(data);
    for w in lines.windows(2) {
        assert!(w[0].line < w[1].line);
    }
    for l in &lines {
        assert!(l.sha256.len() == 64 && l.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(
            crate::names::check_release_path(&l.path).is_ok(),
            "{:?}",
            l.path
        );
    }
    if problems.is_empty() {
        let artefacts: Vec<crate::stage::StagedArtefact> = lines
            .iter()
            .map(|l| crate::stage::StagedArtefact {
                release_path: l.path.clone(),
                sha256: l.sha256.clone(),
                size: 0,
            })
            .collect();
        assert_eq!(
            crate::stage::sums_text(&artefacts),
            data,
            "written back identically"
        );
    }
}

/// clamd replies. The input is a reply body: as an INSTREAM and as a FILDES reply it reads
/// the same; `OK` is clean and only a well-formed name `FOUND` is a find. As a VERSION reply,
/// a version that parses prints its engine and reads back from the same line.
pub fn clamd(data: &[u8]) {
    let raw = text(data);
    let _ = clam::parse_scan_reply(&raw);
    let _ = clam::parse_fildes_reply(&raw);
    let body = raw.trim_end_matches('\0');
    let stream = clam::parse_scan_reply(&format!("stream: {body}\0"));
    let fildes = clam::parse_fildes_reply(&format!("fd[7]: {body}\0"));
    match (&stream, &fildes) {
        (clam::ScanReply::Clean, clam::ScanReply::Clean) => assert_eq!(body, "OK"),
        (clam::ScanReply::Found(a), clam::ScanReply::Found(b)) => {
            assert_eq!(a, b);
            assert_eq!(body, format!("{a} FOUND"));
            assert!(!a.is_empty() && !a.contains(char::is_whitespace));
        }
        (clam::ScanReply::NotClean(_), clam::ScanReply::NotClean(_)) => {}
        _ => panic!("INSTREAM and FILDES disagree on {body:?}: {stream:?} / {fildes:?}"),
    }
    assert!(!matches!(
        clam::parse_scan_reply(&format!("stream: {body}")),
        clam::ScanReply::Clean | clam::ScanReply::Found(_)
    ));
    let _ = clam::reply::shown(&raw);
    if let Ok(v) = clam::parse_version(&raw) {
        let _ = v.db_date;
        if !raw.contains(['\0', '\n']) {
            for end in ["\0", "\n"] {
                let ended = format!("{raw}{end}");
                assert_eq!(clam::parse_version(&ended).as_ref(), Ok(&v), "{ended:?}");
            }
        }
    }
    let _ = clam::version::parse_ctime(&raw);
}

/// The token the git log target writes and reads with.
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// `git log` output. Raw input: commits that parse have commit ids and parents that are ids.
/// Structured: commits built from the input (any text but NUL in names, messages and files)
/// written as `git log` prints them read back identically, trailers included.
pub fn git_log(data: &[u8]) {
    if let Ok(commits) = git::parse_log(data, TOKEN) {
        for c in &commits {
            assert!(git::is_object_id(&c.hash));
            assert!(c.parents.iter().all(|p| git::is_object_id(p)));
            assert!(c.files.iter().all(|f| !f.is_empty()));
            check_trailers(&c.message);
        }
    }
    let input = text(data);
    if input.contains(TOKEN) {
        return;
    }
    // Commits separated by RS; fields by US: name, email, message, then file names.
    let mut commits = Vec::new();
    for (i, rec) in input.split('\x1e').take(8).enumerate() {
        let clean = rec.replace('\0', "");
        let mut f = clean.split('\x1f');
        let mut next = || f.next().unwrap_or_default().to_string();
        let (name, email, message) = (next(), next(), next());
        let files: Vec<String> = clean
            .split('\x1f')
            .skip(3)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let parents: Vec<String> = (0..(i % 3))
            .map(|p| format!("{:040x}", 100 + i * 10 + p))
            .collect();
        commits.push(git::Commit {
            hash: format!("{:040x}", i + 1),
            parents,
            author_name: name.clone(),
            author_email: email.clone(),
            date: "2026-01-01T00:00:00Z".into(),
            committer_name: name,
            committer_email: email,
            message,
            files,
        });
    }
    let raw = git_log_bytes(&commits);
    match git::parse_log(&raw, TOKEN) {
        Ok(back) => assert_eq!(back, commits, "git log round trip"),
        Err(e) => panic!("written git log does not read back: {e}"),
    }
    for c in &commits {
        check_trailers(&c.message);
    }
}

/// What `git log -z --name-only` prints for `commits` with [`TOKEN`].
fn git_log_bytes(commits: &[git::Commit]) -> Vec<u8> {
    let mut out = Vec::new();
    let end = format!("\x1f{TOKEN}");
    for c in commits {
        out.extend_from_slice(format!("\x1e{TOKEN}").as_bytes());
        for field in [
            c.hash.clone(),
            c.parents.join(" "),
            c.author_name.clone(),
            c.author_email.clone(),
            c.date.clone(),
            c.committer_name.clone(),
            c.committer_email.clone(),
            c.message.clone(),
        ] {
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(end.as_bytes());
        }
        out.push(0);
        if !c.files.is_empty() {
            out.push(if c.is_merge() { 0 } else { b'\n' });
            for f in &c.files {
                out.extend_from_slice(f.as_bytes());
                out.push(0);
            }
        }
    }
    out
}

/// Trailers have git's token shape and are written in the message.
fn check_trailers(message: &str) {
    for (token, _) in git::trailers(message) {
        assert!(!token.is_empty());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        );
        assert!(
            message.contains(&format!("{token}:")),
            "{token:?} in {message:?}"
        );
    }
}
