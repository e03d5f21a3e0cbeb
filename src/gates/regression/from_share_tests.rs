//! Unit tests of the pure reading of CI evidence: which statement stands for a job.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::*;
use crate::digest::sha256_hex;
use crate::record::RecordError;
use crate::share::ci::{SignRequest, Upload};
use crate::signkey::RawSigner;

#[derive(Default)]
struct MemBlobs(HashMap<String, Vec<u8>>);

impl MemBlobs {
    fn put(&mut self, bytes: &[u8]) -> String {
        let d = sha256_hex(bytes);
        self.0.insert(d.clone(), bytes.to_vec());
        d
    }
}

impl Blobs for MemBlobs {
    fn get(&self, digest: &str) -> Result<Vec<u8>, RecordError> {
        self.0
            .get(digest)
            .cloned()
            .ok_or_else(|| RecordError::Read {
                dir: PathBuf::from("mem"),
                digest: digest.to_string(),
                source: std::io::ErrorKind::NotFound.into(),
            })
    }
}

const NOW: i64 = 1_800_000_000;
const REPORT: &[u8] = b"<testsuite name=\"s\" tests=\"1\"><testcase name=\"t\"/></testsuite>";

struct Fixture {
    key: crate::signkey::SignKey,
    signers: String,
    blobs: MemBlobs,
    ev: FromShareEvidence,
}

fn spec() -> FromShareSpec {
    FromShareSpec {
        jobs: vec!["linux".into(), "macos".into()],
        signed_by_as_written: vec!["ci".into()],
        signed_by: vec!["ci@acme.test".into()],
        min_tests: None,
    }
}

fn commit() -> String {
    "c".repeat(40)
}

impl Fixture {
    fn new() -> Fixture {
        let key = crate::signkey::throwaway().expect("key");
        let signers = format!(
            "ci@acme.test {}\n",
            crate::sshsig::public_line(key.public_key())
        );
        Fixture {
            key,
            signers,
            blobs: MemBlobs::default(),
            ev: FromShareEvidence {
                repo: PathBuf::from("/p"),
                rev: "HEAD".into(),
                commit: Some(commit()),
                commit_error: None,
                share: "mem".into(),
                share_error: None,
                statements: Vec::new(),
                passed_over: Vec::new(),
                read_at: NOW,
                notes: Vec::new(),
            },
        }
    }

    /// A statement of `job` for `commit`, signed at `at`, with one stored report.
    fn add(&mut self, job: &str, commit: &str, at: i64) -> String {
        let pair = crate::share::ci::sign(&SignRequest {
            project: "acme",
            commit,
            job,
            principal: "ci@acme.test",
            key: &self.key,
            now: at,
            run: BTreeMap::new(),
            reports: &[Upload {
                name: "r.xml".into(),
                bytes: REPORT.to_vec(),
            }],
        })
        .expect("sign");
        let sha = self.blobs.put(REPORT);
        let f = FetchedStatement {
            name: pair.name.clone(),
            statement: self.blobs.put(&pair.statement),
            signature: self.blobs.put(&pair.signature),
            fetched: true,
            reports: vec![FetchedReport {
                sha256: sha,
                state: FetchState::Stored,
            }],
        };
        self.ev.statements.push(f);
        pair.name
    }

    fn assess(&self) -> Assessment {
        assess(
            &spec(),
            &self.ev,
            "acme",
            Some(&self.signers),
            NOW,
            &self.blobs,
        )
    }
}

#[test]
fn the_latest_statement_of_a_job_stands_for_it() {
    let mut f = Fixture::new();
    let old = f.add("linux", &commit(), NOW - 100);
    let new = f.add("linux", &commit(), NOW - 10);
    f.add("macos", &commit(), NOW - 50);
    let a = f.assess();
    assert_eq!(a.problem, None);
    assert!(a.missing.is_empty(), "{a:?}");
    assert_eq!(a.counted[0].name, new);
    assert_eq!(a.superseded, vec![("linux".to_string(), old)]);
}

#[test]
fn another_commit_a_future_date_and_an_unnamed_job_are_ignored_with_their_codes() {
    let mut f = Fixture::new();
    f.add("linux", &"d".repeat(40), NOW - 10);
    f.add("macos", &commit(), NOW + CLOCK_SKEW_SECS + 60);
    f.add("windows", &commit(), NOW - 10);
    let a = f.assess();
    assert!(a.counted.is_empty());
    assert_eq!(a.missing, ["linux", "macos"]);
    let codes: Vec<&str> = a.ignored.iter().map(|i| i.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "ci-other-commit",
            "ci-statement-from-future",
            "ci-job-not-named"
        ]
    );
}

#[test]
fn a_statement_whose_reports_were_not_fetched_does_not_count() {
    let mut f = Fixture::new();
    f.add("linux", &commit(), NOW - 10);
    f.ev.statements[0].fetched = false;
    let a = f.assess();
    assert_eq!(a.ignored[0].code, "ci-report-missing");
    assert_eq!(a.missing, ["linux", "macos"]);
}

#[test]
fn without_recorded_signers_nothing_is_judged() {
    let mut f = Fixture::new();
    f.add("linux", &commit(), NOW - 10);
    let a = assess(&spec(), &f.ev, "acme", None, NOW, &f.blobs);
    assert_eq!(a.problem.map(|p| p.code), Some("ci-no-signers".to_string()));
}
