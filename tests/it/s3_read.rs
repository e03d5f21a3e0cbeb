//! Reading a release in a bucket (moto's server, a fault proxy in front of it where a request
//! must be watched or held): `verify`, `replay` and `report` of an `s3://` URL stream the
//! artefacts and hash several at once, with no copy of them on disk; a changed object, an
//! object beside the release and a key that is not a plain path are refused, the last by name.

use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::common::*;
use crate::s3_common::*;
use relgate::exit;

const BUCKET: &str = "releases";
const PREFIX: &str = "rel/acme/1.0.0";
const URL: &str = "s3://releases/rel/acme/1.0.0";
const ARTEFACTS: [&str; 3] = ["a.txt", "b.tar.gz", "big.bin"];
/// Large beside the rest of the release, small enough for moto.
const BIG: usize = 6 << 20;

/// A project publishing to `endpoint`, its release published there.
fn published(endpoint: &str) -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    p.write("dist/b.tar.gz", b"tarball\n");
    let big: Vec<u8> = (0..BIG).map(|i| (i * 13 % 251) as u8).collect();
    p.write("dist/big.bin", &big);
    let text = pipeline("  unit:\n    kind: regression\n    run: \"true\"\n").replace(
        "publish:\n  to: published/{project}/{version}\n",
        &format!(
            "publish:\n  to: s3://{BUCKET}/rel/{{project}}/{{version}}\n  endpoint: {endpoint}\n  \
             region: us-east-1\n"
        ),
    );
    p.write("pipeline.yaml", text);
    expect_code(&p.relgate_env(&["run", "1.0.0"], &aws_env()), exit::SUCCESS);
    p
}

/// Run relgate with the test credentials and `extra` in its environment.
fn relgate(p: &Project, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
    p.relgate_env(args, &[aws_env(), extra.to_vec()].concat())
}

/// Files by their path relative to a folder, with their sizes.
type Listing = Vec<(String, u64)>;

/// Every file below `dir`.
fn files_below(dir: &std::path::Path) -> Listing {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap_or(e.path());
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            (rel.display().to_string(), size)
        })
        .collect()
}

/// Is this a GET of one of the release's artefacts?
fn artefact_get(r: &Seen) -> Option<&'static str> {
    let path = r.target.split('?').next().unwrap_or("");
    (r.method == "GET")
        .then(|| {
            ARTEFACTS
                .into_iter()
                .find(|a| path.ends_with(&format!("/{a}")))
        })
        .flatten()
}

#[test]
fn verify_and_replay_hash_the_artefacts_as_they_stream_with_no_copy_on_disk() {
    let moto = Moto::start();
    let _b = moto.bucket(BUCKET);
    let p = published(&moto.endpoint());
    // While the largest artefact is asked for, look at what relgate keeps in its temporary
    // folder: a whole-release download has the smaller artefacts there by then.
    let snapshots: Arc<Mutex<Vec<Listing>>> = Arc::default();
    let tmp = p.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let rule: Rule = {
        let (snapshots, tmp) = (snapshots.clone(), tmp.clone());
        Arc::new(move |r: &Seen| {
            if artefact_get(r) == Some("big.bin") {
                snapshots.lock().unwrap().push(files_below(&tmp));
            }
            Action::Forward
        })
    };
    let proxy = Proxy::start(moto.port, rule);
    let env = [
        ("AWS_ENDPOINT_URL_S3", proxy.endpoint()),
        ("TMPDIR", tmp.display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let out = relgate(&p, &["verify", URL], &env);
    expect_code(&out, exit::SUCCESS);
    assert!(stdout(&out).contains("3 files"), "{}", stdout(&out));
    let seen = std::mem::take(&mut *snapshots.lock().unwrap());
    assert!(!seen.is_empty(), "big.bin was never asked for");
    // verify keeps nothing on disk at all.
    assert!(seen.iter().all(Vec::is_empty), "{seen:?}");

    let out = relgate(&p, &["replay", URL], &env);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stdout(&out).contains("the published files are exactly the gated ones"),
        "{}",
        stdout(&out)
    );
    let seen = std::mem::take(&mut *snapshots.lock().unwrap());
    assert!(!seen.is_empty(), "big.bin was never asked for");
    // replay keeps only its private copy of the record: no artefact, nothing near big.bin's
    // size.
    for (name, size) in seen.iter().flatten() {
        let base = name.rsplit('/').next().unwrap_or(name);
        assert!(!ARTEFACTS.contains(&base), "{name} on disk: {seen:?}");
        assert!(*size < (BIG as u64) / 2, "{name} ({size} bytes) on disk");
    }
    // And nothing is left behind.
    assert_eq!(files_below(&tmp), Listing::new());
}

#[test]
fn verify_by_url_streams_several_artefacts_at_once() {
    let moto = Moto::start();
    let _b = moto.bucket(BUCKET);
    let p = published(&moto.endpoint());
    // Each artefact's GET is answered only once another artefact's GET is under way too (a
    // retry of the same one is no partner); alone, it is refused.
    let gets: Arc<(Mutex<std::collections::BTreeSet<String>>, Condvar)> = Arc::default();
    let rule: Rule = {
        let gets = gets.clone();
        Arc::new(move |r: &Seen| {
            let Some(name) = artefact_get(r) else {
                return Action::Forward;
            };
            let (seen, arrived) = &*gets;
            let mut set = seen.lock().unwrap();
            set.insert(name.to_string());
            arrived.notify_all();
            let (set, wait) = arrived
                .wait_timeout_while(set, Duration::from_secs(5), |s| s.len() < 2)
                .unwrap();
            drop(set);
            if wait.timed_out() {
                Action::Answer(
                    403,
                    "<Error><Code>AccessDenied</Code><Message>alone</Message></Error>".into(),
                )
            } else {
                Action::Forward
            }
        })
    };
    let proxy = Proxy::start(moto.port, rule);
    let endpoint = proxy.endpoint();
    let out = relgate(&p, &["verify", URL], &[("AWS_ENDPOINT_URL_S3", &endpoint)]);
    expect_code(&out, exit::SUCCESS);
    assert_eq!(gets.0.lock().unwrap().len(), 3);
}

/// Replace the object `rel` of the release with `bytes`.
fn replace(b: &relgate::s3::Bucket, rel: &str, bytes: &[u8]) {
    let key = format!("{PREFIX}/{rel}");
    block_on(b.delete(&key)).expect("delete");
    block_on(relgate::s3::upload::put_create(
        b,
        &key,
        relgate::s3::body::Payload::bytes(bytes.to_vec()),
    ))
    .expect("put");
}

#[test]
fn a_changed_object_and_an_object_beside_the_release_are_refused() {
    let moto = Moto::start();
    let b = moto.bucket(BUCKET);
    let p = published(&moto.endpoint());
    // The same size, other bytes; and a file the release does not list.
    replace(&b, "a.txt", b"b\n");
    replace(&b, "extra.txt", b"x\n");
    let out = relgate(&p, &["verify", URL], &[]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(err.contains("a.txt: checksum mismatch"), "{err}");
    assert!(err.contains("extra.txt: not listed in SHA256SUMS"), "{err}");
    assert!(
        err.contains(&format!("error: {URL}: 2 problem(s)")),
        "{err}"
    );
    let out = relgate(&p, &["replay", URL], &[]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));

    // Put right, the release verifies again; a file added to its record is caught by replay
    // and named at its URL.
    replace(&b, "a.txt", b"a\n");
    block_on(b.delete(&format!("{PREFIX}/extra.txt"))).expect("delete");
    expect_code(&relgate(&p, &["verify", URL], &[]), exit::SUCCESS);
    expect_code(&relgate(&p, &["replay", URL], &[]), exit::SUCCESS);
    replace(&b, "audit/notes.txt", b"x\n");
    let out = relgate(&p, &["replay", URL], &[]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains(&format!(
            "{URL}/audit: audit/notes.txt is not accounted for"
        )),
        "{}",
        stderr(&out)
    );
    // An artefact of another size is refused by replay before it is read.
    block_on(b.delete(&format!("{PREFIX}/audit/notes.txt"))).expect("delete");
    replace(&b, "b.tar.gz", b"longer tarball\n");
    let out = relgate(&p, &["replay", URL], &[]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("b.tar.gz: 15 bytes where the gated artefact had 8"),
        "{}",
        stderr(&out)
    );
}

/// PUT `body` at `path` exactly as written (no signing, no normalising of `..`): moto takes it.
fn raw_put(port: u16, path: &str, body: &[u8]) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .expect("write");
    s.write_all(body).expect("body");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_key_that_is_not_a_plain_path_is_refused_by_name() {
    for (raw, shown, why) in [
        (
            "../x",
            format!("{URL}/../x"),
            "an empty, `.` or `..` part in the key",
        ),
        (
            "a%01b",
            format!("{URL}/a\\u{{1}}b"),
            "a control character (U+0001) in the key",
        ),
        (
            "linux/",
            format!("{URL}/linux/"),
            "a folder placeholder object",
        ),
    ] {
        let moto = Moto::start();
        let _b = moto.bucket(BUCKET);
        let p = published(&moto.endpoint());
        raw_put(
            moto.port,
            &format!("/{BUCKET}/{PREFIX}/{raw}"),
            b"not a release file\n",
        );
        for cmd in ["verify", "replay", "report"] {
            let out = relgate(&p, &[cmd, URL], &[]);
            expect_code(&out, exit::REFUSED);
            let err = stderr(&out);
            assert!(
                err.contains(&format!("{shown}: {why}")),
                "{cmd} {raw}: {err}"
            );
            assert!(
                !err.contains('\u{1}'),
                "{cmd} {raw}: a raw control character"
            );
        }
    }
}

#[test]
fn report_and_what_if_of_a_release_in_a_bucket() {
    let moto = Moto::start();
    let b = moto.bucket(BUCKET);
    let p = published(&moto.endpoint());
    let out = relgate(&p, &["report", URL, "--format", "markdown"], &[]);
    expect_code(&out, exit::SUCCESS);
    let from_bucket = stdout(&out);
    // The same report as of a copy of the release on disk, evidence and all.
    let copy = p.join("copy/1.0.0");
    for l in keys(&b, &format!("{PREFIX}/")) {
        let rel = l.key.strip_prefix(&format!("{PREFIX}/")).expect("under");
        let dst = copy.join(rel);
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::write(&dst, get(&b, &l.key).expect("object")).expect("write");
    }
    let copy_arg = copy.display().to_string();
    let out = relgate(&p, &["report", &copy_arg, "--format", "markdown"], &[]);
    expect_code(&out, exit::SUCCESS);
    let from_disk = stdout(&out).replace(&copy_arg, URL);
    assert_eq!(from_bucket, from_disk);
    assert!(from_bucket.contains("unit"), "{from_bucket}");

    // What-if under the pipeline it ran under: no verdict changes.
    let out = relgate(&p, &["replay", URL, "--policy", "pipeline.yaml"], &[]);
    expect_code(&out, exit::SUCCESS);
}

#[test]
fn a_release_without_its_record_is_not_copied_for_replay() {
    let moto = Moto::start();
    let b = moto.bucket(BUCKET);
    let p = published(&moto.endpoint());
    for l in keys(&b, &format!("{PREFIX}/audit/")) {
        block_on(b.delete(&l.key)).expect("delete");
    }
    // Without audit/ the prefix is no record: replay must not take the artefacts for one and
    // copy them into its private folder.
    let snapshots: Arc<Mutex<Vec<Listing>>> = Arc::default();
    let tmp = p.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let rule: Rule = {
        let (snapshots, tmp) = (snapshots.clone(), tmp.clone());
        Arc::new(move |r: &Seen| {
            if artefact_get(r).is_some() {
                snapshots.lock().unwrap().push(files_below(&tmp));
            }
            Action::Forward
        })
    };
    let proxy = Proxy::start(moto.port, rule);
    let env = [
        ("AWS_ENDPOINT_URL_S3", proxy.endpoint()),
        ("TMPDIR", tmp.display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = relgate(&p, &["replay", URL], &env);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("no record here: neither audit/"),
        "{}",
        stderr(&out)
    );
    let seen = snapshots.lock().unwrap();
    assert!(seen.is_empty(), "artefacts were fetched: {seen:?}");
}
