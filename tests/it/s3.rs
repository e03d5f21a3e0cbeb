//! Publishing to S3 against moto's server: a release lands whole and verifies by URL, nothing is
//! ever overwritten, two racing publishes have exactly one winner, an interrupted upload
//! resumes, a prefix without its commit marker is not a release, large files go up in parts,
//! and the credentials appear nowhere.
//!
//! moto (PyPI `moto[server]`) honours `If-None-Match: *`, also when requests race; that is what
//! lets these tests claim create-only behaviour. The rclone and s3rver S3 servers silently
//! overwrite and must not be used for that.

use crate::common::*;
use crate::s3_common::*;
use relgate::exit;

const BUCKET: &str = "releases";
const PREFIX: &str = "rel/acme/1.0.0";
const URL: &str = "s3://releases/rel/acme/1.0.0";

/// A project publishing to `endpoint`, with one regression gate and the sign gate.
fn project(endpoint: &str) -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    p.write("dist/b.tar.gz", b"tarball\n");
    write_pipeline(&p, endpoint);
    p
}

fn write_pipeline(p: &Project, endpoint: &str) {
    let text = pipeline("  unit:\n    kind: regression\n    run: \"true\"\n").replace(
        "publish:\n  to: published/{project}/{version}\n",
        &format!(
            "publish:\n  to: s3://{BUCKET}/rel/{{project}}/{{version}}\n  endpoint: {endpoint}\n  \
             region: us-east-1\n"
        ),
    );
    p.write("pipeline.yaml", text);
}

fn run(p: &Project, version: &str) -> std::process::Output {
    p.relgate_env(&["run", version], &aws_env())
}

fn verify(p: &Project, url: &str) -> std::process::Output {
    p.relgate_env(&["verify", url], &aws_env())
}

fn replay(p: &Project, url: &str) -> std::process::Output {
    p.relgate_env(&["replay", url], &aws_env())
}

fn names(b: &relgate::s3::Bucket, prefix: &str) -> Vec<String> {
    keys(b, prefix).into_iter().map(|l| l.key).collect()
}

#[test]
fn a_release_lands_whole_and_verifies_by_url() {
    let moto = Moto::start();
    let b = moto.bucket(BUCKET);
    let p = project(&moto.endpoint());
    let out = run(&p, "1.0.0");
    expect_code(&out, exit::SUCCESS);
    assert!(
        stdout(&out).contains(URL) || stderr(&out).contains(URL),
        "{out:?}"
    );

    let listed = names(&b, "rel/");
    for want in [
        "a.txt",
        "b.tar.gz",
        "SHA256SUMS",
        "SHA256SUMS.sig",
        "audit/log.jsonl",
    ] {
        assert!(
            listed.contains(&format!("{PREFIX}/{want}")),
            "{want} missing from {listed:?}"
        );
    }
    // The claim is gone, and nothing but the release is under its prefix.
    assert!(
        listed.iter().all(|k| k.starts_with(&format!("{PREFIX}/"))),
        "{listed:?}"
    );
    assert_eq!(
        get(&b, &format!("{PREFIX}/SHA256SUMS")).expect("sums"),
        staged_sums(&p)
    );

    let out = verify(&p, URL);
    expect_code(&out, exit::SUCCESS);
    assert!(stdout(&out).contains("verified"), "{}", stdout(&out));
    expect_code(&replay(&p, URL), exit::SUCCESS);
    // The local record agrees: a publish, then published.
    let log = p.log("1.0.0");
    assert!(
        log.contains("\"published\"") || log.contains("published"),
        "{log}"
    );
}

/// The staged SHA256SUMS of the project's one release.
fn staged_sums(p: &Project) -> Vec<u8> {
    let staged = p.record("1.0.0").join("staged");
    let dir = std::fs::read_dir(&staged)
        .expect("staged")
        .flatten()
        .find(|e| e.path().is_dir())
        .expect("a subject folder");
    std::fs::read(dir.path().join("SHA256SUMS")).expect("sums")
}

#[test]
fn a_published_release_is_never_overwritten() {
    let moto = Moto::start();
    let b = moto.bucket(BUCKET);
    let first = project(&moto.endpoint());
    expect_code(&run(&first, "1.0.0"), exit::SUCCESS);
    let before: Vec<_> = keys(&b, "rel/");
    let sums = get(&b, &format!("{PREFIX}/SHA256SUMS"));

    // Another record, other bytes, the same version.
    let second = project(&moto.endpoint());
    second.write("dist/a.txt", b"other\n");
    let out = run(&second, "1.0.0");
    assert_ne!(code(&out), exit::SUCCESS, "{out:?}");
    assert!(
        stderr(&out).contains("already published"),
        "{}",
        stderr(&out)
    );
    assert_eq!(keys(&b, "rel/"), before);
    assert_eq!(get(&b, &format!("{PREFIX}/SHA256SUMS")), sums);
    expect_code(&verify(&first, URL), exit::SUCCESS);
}

#[test]
fn other_content_in_an_unpublished_prefix_is_refused_not_overwritten() {
    let moto = Moto::start();
    let b = moto.bucket(BUCKET);
    let key = format!("{PREFIX}/a.txt");
    block_on(relgate::s3::upload::put_create(
        &b,
        &key,
        relgate::s3::body::Payload::bytes(b"someone else's\n".to_vec()),
    ))
    .expect("put");
    let p = project(&moto.endpoint());
    let out = run(&p, "1.0.0");
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("s3://{BUCKET}/{key}")) && err.contains("other content"),
        "{err}"
    );
    assert_eq!(get(&b, &key).expect("kept"), b"someone else's\n");
    assert!(get(&b, &format!("{PREFIX}/SHA256SUMS.sig")).is_none());
    // An object that is not part of the release at all is refused as well.
    let moto2 = Moto::start();
    let b2 = moto2.bucket(BUCKET);
    block_on(relgate::s3::upload::put_create(
        &b2,
        &format!("{PREFIX}/stray.bin"),
        relgate::s3::body::Payload::bytes(b"x".to_vec()),
    ))
    .expect("put");
    let p2 = project(&moto2.endpoint());
    let out = run(&p2, "1.0.0");
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("stray.bin"), "{}", stderr(&out));
    assert!(get(&b2, &format!("{PREFIX}/SHA256SUMS.sig")).is_none());
}

#[test]
fn two_publishes_racing_for_one_version_have_exactly_one_winner() {
    let moto = Moto::start();
    let b = moto.bucket(BUCKET);
    for round in 0..3 {
        let version = format!("1.0.{round}");
        let a = project(&moto.endpoint());
        let c = project(&moto.endpoint());
        let spawn = |p: &Project| {
            let mut cmd = std::process::Command::new(BIN);
            cmd.current_dir(p.path())
                .args(["run", &version])
                .env_remove("RELGATE_OPERATOR")
                .envs(aws_env())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().expect("spawn")
        };
        let (ca, cc) = (spawn(&a), spawn(&c));
        let (oa, oc) = (
            ca.wait_with_output().expect("a"),
            cc.wait_with_output().expect("c"),
        );
        let wins = [&oa, &oc]
            .iter()
            .filter(|o| code(o) == exit::SUCCESS)
            .count();
        assert_eq!(wins, 1, "round {round}:\n{oa:?}\n{oc:?}");
        let (winner, loser, lost) = if code(&oa) == exit::SUCCESS {
            (&a, &c, &oc)
        } else {
            (&c, &a, &oa)
        };
        assert_eq!(code(lost), exit::REFUSED, "{lost:?}");
        let url = format!("s3://{BUCKET}/rel/acme/{version}");
        expect_code(&verify(winner, &url), exit::SUCCESS);
        expect_code(&replay(winner, &url), exit::SUCCESS);
        // The published record is the winner's, not a mixture.
        let log = get(&b, &format!("rel/acme/{version}/audit/log.jsonl")).expect("log");
        let winner_log = winner.log(&version);
        assert!(winner_log.as_bytes().starts_with(&log), "round {round}");
        assert!(
            !loser.log(&version).as_bytes().starts_with(&log),
            "round {round}"
        );
    }
}

#[test]
fn an_interrupted_upload_resumes_and_a_markerless_prefix_is_not_a_release() {
    let moto = Moto::start();
    let b = moto.bucket(BUCKET);
    // How many objects a release holds: count them on a clean publish first.
    let clean = project(&moto.endpoint());
    expect_code(&run(&clean, "9.9.9"), exit::SUCCESS);
    let total = keys(&b, "rel/acme/9.9.9/").len() as u64;
    assert!(total >= 6, "{total}");

    for k in [1, 2, total - 1, total] {
        let version = format!("1.0.{k}");
        let url = format!("s3://{BUCKET}/rel/acme/{version}");
        let p = project(&moto.endpoint());
        let killed = p.relgate_env(
            &["run", &version],
            &[
                aws_env(),
                vec![("RELGATE_CRASH_AFTER_OBJECTS", &k.to_string())],
            ]
            .concat(),
        );
        assert_eq!(killed.status.code(), None, "k={k}: not stopped: {killed:?}");
        let there = keys(&b, &format!("rel/acme/{version}/")).len() as u64;
        assert_eq!(there, k, "k={k}");
        if k < total {
            // No marker: not published, whatever is there.
            let out = verify(&p, &url);
            expect_code(&out, exit::REFUSED);
            assert!(stderr(&out).contains("not published"), "{}", stderr(&out));
        }
        let out = run(&p, &version);
        expect_code(&out, exit::SUCCESS);
        expect_code(&verify(&p, &url), exit::SUCCESS);
        expect_code(&replay(&p, &url), exit::SUCCESS);
        let r = replay_in(&p, &p.record(&version));
        assert!(r.ok, "k={k}: {:?}", r.problem);
    }
}

#[test]
fn a_killed_run_after_any_log_line_converges() {
    let moto = Moto::start();
    let _b = moto.bucket(BUCKET);
    let clean = project(&moto.endpoint());
    expect_code(&run(&clean, "9.9.9"), exit::SUCCESS);
    let lines = clean.log("9.9.9").lines().count();
    // The lines around the publish: the decision, its checkpoint, the outcome.
    for k in (lines.saturating_sub(4))..=lines {
        let version = format!("2.0.{k}");
        let url = format!("s3://{BUCKET}/rel/acme/{version}");
        let p = project(&moto.endpoint());
        let killed = p.relgate_env(
            &["run", &version],
            &[
                aws_env(),
                vec![("RELGATE_CRASH_AFTER_LINES", &k.to_string())],
            ]
            .concat(),
        );
        assert_eq!(killed.status.code(), None, "line {k}: not stopped");
        expect_code(&run(&p, &version), exit::SUCCESS);
        expect_code(&verify(&p, &url), exit::SUCCESS);
        expect_code(&replay(&p, &url), exit::SUCCESS);
    }
}

#[test]
fn a_file_over_the_part_size_goes_up_in_parts() {
    let moto = Moto::start();
    let b = moto.bucket(BUCKET);
    let p = project(&moto.endpoint());
    let size = relgate::s3::upload::PART_SIZE as usize + 4096;
    let big: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    p.write("dist/big.bin", &big);
    expect_code(&run(&p, "1.0.0"), exit::SUCCESS);
    let head = block_on(b.head(&format!("{PREFIX}/big.bin")))
        .expect("head")
        .expect("there");
    assert_eq!(head.size, size as u64);
    // A multipart object's ETag is the digest of its parts' digests and their count.
    assert!(
        head.etag.as_deref().is_some_and(|e| e.ends_with("-2\"")),
        "{head:?}"
    );
    expect_code(&verify(&p, URL), exit::SUCCESS);
}

#[test]
fn credentials_are_never_shown_or_recorded() {
    let moto = Moto::start();
    let b = moto.bucket(BUCKET);
    let p = project(&moto.endpoint());
    let mut outputs = vec![run(&p, "1.0.0"), verify(&p, URL), replay(&p, URL)];
    outputs.push(p.relgate_env(&["status", "1.0.0"], &aws_env()));
    let secrets = [KEY_ID, SECRET, TOKEN];
    for out in &outputs {
        for s in secrets {
            assert!(
                !stdout(out).contains(s) && !stderr(out).contains(s),
                "{s} shown: {out:?}"
            );
        }
    }
    // Nowhere in the project folder (state, record) ...
    for e in walkdir::WalkDir::new(p.path()).into_iter().flatten() {
        if e.file_type().is_file() {
            let bytes = std::fs::read(e.path()).expect("read");
            for s in secrets {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{s} in {}",
                    e.path().display()
                );
            }
        }
    }
    // ... nor in any object of the bucket.
    for l in keys(&b, "") {
        let bytes = get(&b, &l.key).expect("object");
        for s in secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s} in {}",
                l.key
            );
        }
    }
}

#[test]
fn a_staged_byte_changed_before_the_upload_stores_nothing() {
    let moto = Moto::start();
    let b = moto.bucket(BUCKET);
    for (file, size) in [
        ("a.txt", 2usize),
        ("big.bin", relgate::s3::upload::PART_SIZE as usize + 10),
    ] {
        let p = project(&moto.endpoint());
        p.write(&format!("dist/{file}"), vec![b'a'; size]);
        // A gate that rewrites one byte of the staged copy after staging hashed it.
        let gate = format!(
            "  tamper:\n    kind: regression\n    run: \"for f in \\\"$RELGATE_RECORD\\\"/staged/*/{file}; do \
             chmod u+w \\\"$f\\\"; printf b | dd of=\\\"$f\\\" bs=1 seek=1 conv=notrunc 2>/dev/null; done\"\n"
        );
        let text = std::fs::read_to_string(p.join("pipeline.yaml")).expect("pipeline");
        p.write(
            "pipeline.yaml",
            text.replace("gates:\n", &format!("gates:\n{gate}")),
        );
        let out = run(&p, "1.0.0");
        expect_code(&out, exit::REFUSED);
        assert!(
            stderr(&out).contains(&format!("staged {file} no longer matches its digest")),
            "{}",
            stderr(&out)
        );
        assert!(
            get(&b, &format!("{PREFIX}/{file}")).is_none(),
            "{file} was stored"
        );
        assert!(get(&b, &format!("{PREFIX}/SHA256SUMS.sig")).is_none());
        // Clean up for the next file: the claim and whatever landed belong to this record.
        for l in keys(&b, "") {
            block_on(b.delete(&l.key)).expect("delete");
        }
    }
}
