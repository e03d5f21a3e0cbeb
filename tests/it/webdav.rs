//! Publishing to a real Apache httpd with mod_dav_fs (plain HTTP and TLS, basic auth), and
//! verifying and replaying the release by its URL.

use crate::common::*;
use crate::dav;
use crate::dav::*;
use relgate::exit;

const REL: &str = "rel/{project}/{version}";

fn published(a: &Apache) -> String {
    a.url("rel/acme/1.0.0")
}

#[test]
fn a_release_published_over_http_verifies_and_replays_by_its_url() {
    let a = Apache::start();
    let p = project_to(&a.url(REL), "");
    let env = env(&p);
    let out = dav::relgate(&p, &["run", "1.0.0"], &env);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stderr(&out).contains(&format!("published {}", published(&a))),
        "{}",
        stderr(&out)
    );
    let tree = a.tree("rel/acme");
    assert!(tree.contains(&"1.0.0/a.txt".to_string()), "{tree:?}");
    assert!(tree.contains(&"1.0.0/linux/b.bin".to_string()), "{tree:?}");
    assert!(
        tree.contains(&"1.0.0/SHA256SUMS.sig".to_string()),
        "{tree:?}"
    );
    assert!(
        tree.contains(&"1.0.0/audit/log.jsonl".to_string()),
        "{tree:?}"
    );
    assert!(
        tree.iter().all(|f| f.starts_with("1.0.0/")),
        "nothing beside the release: {tree:?}"
    );
    // The bytes on the server are the release: the stock tools agree.
    let st = std::process::Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(a.disk("rel/acme/1.0.0"))
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");

    // Inside the project (trust root: the pipeline's signers), then from an unrelated folder.
    let url = published(&a);
    let out = dav::relgate(&p, &["verify", &url], &env);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stdout(&out).contains("verified: 2 files"),
        "{}",
        stdout(&out)
    );
    let out = dav::relgate(&p, &["replay", &url], &env);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stdout(&out).contains("the published files are exactly the gated ones"),
        "{}",
        stdout(&out)
    );
    let elsewhere = Project::new();
    let signers = p.join("keys/allowed_signers");
    let signers = signers.to_str().unwrap();
    for cmd in ["verify", "replay"] {
        let out = dav::relgate(
            &elsewhere,
            &[
                cmd,
                &url,
                "--signers",
                signers,
                "--signer",
                "release@acme.test",
            ],
            &env,
        );
        expect_code(&out, exit::SUCCESS);
        // Without a trust root: refused, as for a folder.
        let out = dav::relgate(&elsewhere, &[cmd, &url], &env);
        expect_code(&out, exit::CONFIG);
    }
}

#[test]
fn a_release_published_over_tls_with_an_in_house_ca() {
    let a = Apache::start_tls();
    let p = project_to(&a.url(REL), "  ca: keys/ca.pem\n");
    std::fs::copy(a.ca(), p.join("keys/ca.pem")).unwrap();
    let env = env(&p);
    expect_code(&dav::relgate(&p, &["run", "1.0.0"], &env), exit::SUCCESS);
    let url = published(&a);
    let ca = a.ca();
    let ca = ca.to_str().unwrap();
    for cmd in ["verify", "replay"] {
        expect_code(
            &dav::relgate(&p, &[cmd, &url, "--ca", ca], &env),
            exit::SUCCESS,
        );
        // Without the CA the server is not trusted: nothing is verified.
        let out = dav::relgate(&p, &[cmd, &url], &env);
        expect_code(&out, exit::REFUSED);
        assert!(
            stderr(&out).contains("cannot open the folder"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_server_the_ca_does_not_vouch_for_gets_nothing() {
    let a = Apache::start_tls();
    let p = project_to(&a.url(REL), "");
    let out = dav::relgate(&p, &["run", "1.0.0"], &env(&p));
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(err.contains(&a.url("rel/acme/1.0.0")), "{err}");
    assert!(
        err.contains("cannot connect") && err.contains("certificate"),
        "{err}"
    );
    assert_eq!(a.tree("rel"), Vec::<String>::new());
}

#[test]
fn an_existing_release_is_never_overwritten() {
    let a = Apache::start();
    let first = project_to(&a.url(REL), "");
    expect_code(
        &dav::relgate(&first, &["run", "1.0.0"], &env(&first)),
        exit::SUCCESS,
    );
    let before = a.tree("rel");
    let sums = std::fs::read(a.disk("rel/acme/1.0.0/SHA256SUMS")).unwrap();

    // Other bytes for the same version: refused, and the release stays as it was.
    let second = project_to(&a.url(REL), "");
    second.write("dist/a.txt", b"other bytes\n");
    let out = dav::relgate(&second, &["run", "1.0.0"], &env(&second));
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("already published") && stderr(&out).contains("never overwritten"),
        "{}",
        stderr(&out)
    );
    assert_eq!(a.tree("rel"), before);
    assert_eq!(
        std::fs::read(a.disk("rel/acme/1.0.0/SHA256SUMS")).unwrap(),
        sums
    );
    let out = dav::relgate(&first, &["verify", &published(&a)], &env(&first));
    expect_code(&out, exit::SUCCESS);
}

#[test]
fn an_empty_collection_at_the_target_is_not_replaced() {
    // An empty collection would be silently replaced by a rename: relgate never creates one,
    // and one made by someone else is "already there".
    let a = Apache::start();
    assert_eq!(a.curl(&["-X", "MKCOL", &a.url("rel/")]), "201");
    assert_eq!(a.curl(&["-X", "MKCOL", &a.url("rel/acme/")]), "201");
    assert_eq!(a.curl(&["-X", "MKCOL", &a.url("rel/acme/1.0.0/")]), "201");
    let p = project_to(&a.url(REL), "");
    let out = dav::relgate(&p, &["run", "1.0.0"], &env(&p));
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("already published"),
        "{}",
        stderr(&out)
    );
    assert_eq!(a.tree("rel/acme"), ["1.0.0/"]);
}

#[test]
fn two_publishers_of_one_version_at_once_exactly_one_wins() {
    let a = Apache::start();
    for (round, same_bytes) in [(1, false), (2, true), (3, false)] {
        let version = format!("{round}.0.0");
        let projects: Vec<Project> = (0..2)
            .map(|i| {
                let p = project_to(&a.url(REL), "");
                if !same_bytes {
                    p.write("dist/a.txt", format!("publisher {i}\n"));
                }
                p
            })
            .collect();
        let children: Vec<_> = projects
            .iter()
            .map(|p| {
                dav::command(p, &["run", &version], &env(p))
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let winners: Vec<usize> = (0..2).filter(|i| code(&outs[*i]) == 0).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {:?}",
            outs.iter().map(shown).collect::<Vec<_>>()
        );
        let (w, l) = (winners[0], 1 - winners[0]);
        expect_code(&outs[l], exit::REFUSED);
        let lost = stderr(&outs[l]);
        // Lost before the run (its probe), before the upload (the probe in put), or at the
        // MOVE: each says the release there was not overwritten.
        assert!(
            lost.contains("never overwritten") || lost.contains("was not overwritten"),
            "round {round}: {lost}"
        );
        // The winner's release is whole, and only it is there.
        let url = a.url(&format!("rel/acme/{version}"));
        let winner = &projects[w];
        expect_code(
            &dav::relgate(winner, &["verify", &url], &env(winner)),
            exit::SUCCESS,
        );
        expect_code(
            &dav::relgate(winner, &["replay", &url], &env(winner)),
            exit::SUCCESS,
        );
        let beside: Vec<String> = a
            .tree("rel/acme")
            .into_iter()
            .filter(|f| !f.contains('/') || f.matches('/').count() == 1 && f.ends_with('/'))
            .collect();
        assert!(
            beside.iter().all(|f| !f.starts_with('.')),
            "round {round}: leftovers {beside:?}"
        );
    }
}

#[test]
fn a_run_killed_after_any_log_line_converges_on_the_server() {
    let a = Apache::start();
    let clean = project_to(&a.url("clean/{project}/{version}"), "");
    expect_code(
        &dav::relgate(&clean, &["run", "1.0.0"], &env(&clean)),
        exit::SUCCESS,
    );
    let lines = clean.log("1.0.0").lines().count();
    for k in 1..=lines {
        let base = format!("k{k}");
        let p = project_to(&a.url(&format!("{base}/{{project}}/{{version}}")), "");
        let env = env(&p);
        let mut crash = env.clone();
        crash.push(("RELGATE_CRASH_AFTER_LINES".into(), k.to_string()));
        let out = dav::relgate(&p, &["run", "1.0.0"], &crash);
        assert_eq!(
            out.status.code(),
            None,
            "line {k}: not stopped: {}",
            shown(&out)
        );
        let url = a.url(&format!("{base}/acme/1.0.0"));
        // A reader sees no release, or a whole one.
        if a.disk(&format!("{base}/acme/1.0.0")).exists() {
            expect_code(&dav::relgate(&p, &["verify", &url], &env), exit::SUCCESS);
        }
        let out = dav::relgate(&p, &["run", "1.0.0"], &env);
        expect_code(&out, exit::SUCCESS);
        expect_code(&dav::relgate(&p, &["verify", &url], &env), exit::SUCCESS);
        expect_code(&dav::relgate(&p, &["replay", &url], &env), exit::SUCCESS);
        let r = replay_in(&p, &p.record("1.0.0"));
        assert!(r.ok, "line {k}: the local record: {:?}", r.problem);
        // Published once, never twice; nothing beside it.
        expect_code(&dav::relgate(&p, &["run", "1.0.0"], &env), exit::REFUSED);
        assert!(
            a.tree(&format!("{base}/acme"))
                .iter()
                .all(|f| f.starts_with("1.0.0/")),
            "line {k}: {:?}",
            a.tree(&format!("{base}/acme"))
        );
    }
}

/// Every file below `dir`, read as bytes.
fn all_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn credentials_are_never_shown_or_recorded() {
    let a = Apache::start();
    let p = project_to(&a.url(REL), "");
    let env = env(&p);
    let basic = base64(&format!("{USER}:{PASSWORD}"));
    let secrets = [PASSWORD, basic.as_str()];
    let url = published(&a);
    let mut outputs = vec![
        dav::relgate(&p, &["run", "1.0.0"], &env),
        dav::relgate(&p, &["verify", &url], &env),
        dav::relgate(&p, &["replay", &url, "--format", "json"], &env),
    ];
    expect_code(&outputs[0], exit::SUCCESS);
    // Refusals and failures too: a wrong password, a bearer token the server refuses.
    let mut wrong = env.clone();
    wrong[1].1 = format!("{PASSWORD}-wrong");
    let out = dav::relgate(&p, &["run", "2.0.0"], &wrong);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("HTTP 401") && stderr(&out).contains(&a.url("rel/acme/2.0.0")),
        "{}",
        stderr(&out)
    );
    outputs.push(out);
    let token = "tok-9f8e7d6c5b4a-secret";
    let bearer = vec![
        ("RELGATE_PUBLISH_TOKEN".to_string(), token.to_string()),
        ("HOME".into(), p.path().display().to_string()),
    ];
    let out = dav::relgate(&p, &["run", "3.0.0"], &bearer);
    expect_code(&out, exit::REFUSED);
    outputs.push(out);
    outputs.push(dav::relgate(&p, &["verify", &url], &bearer));
    for out in &outputs {
        let text = shown(out);
        for s in secrets.iter().chain([&token]) {
            assert!(!text.contains(s), "{s} shown:\n{text}");
        }
    }
    // Nothing in the project, its record, or the published release holds them.
    let mut files = all_bytes(p.path());
    files.extend(all_bytes(&a.disk("rel")));
    assert!(files.len() > 10);
    for (path, bytes) in files {
        for s in secrets.iter().chain([&token]) {
            assert!(!contains(&bytes, s), "{s} in {path}");
        }
    }
    assert_eq!(
        a.tree("rel/acme")
            .iter()
            .filter(|f| f.ends_with('/') && !f.contains("/.") && f.matches('/').count() == 1)
            .count(),
        1
    );
}

/// Standard base64 (what a basic-auth header carries).
fn base64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn credentials_come_from_netrc_when_the_environment_has_none() {
    let a = Apache::start();
    let p = project_to(&a.url(REL), "");
    p.write(
        ".netrc",
        format!("machine elsewhere.example login x password y\nmachine 127.0.0.1\n  login {USER}\n  password {PASSWORD}\n"),
    );
    let home = vec![("HOME".to_string(), p.path().display().to_string())];
    expect_code(&dav::relgate(&p, &["run", "1.0.0"], &home), exit::SUCCESS);
    expect_code(
        &dav::relgate(&p, &["verify", &published(&a)], &home),
        exit::SUCCESS,
    );
    // Half the pair in the environment is a mistake, not a fallback to .netrc.
    let half = vec![
        ("HOME".to_string(), p.path().display().to_string()),
        ("RELGATE_PUBLISH_USER".to_string(), USER.to_string()),
    ];
    let out = dav::relgate(&p, &["run", "2.0.0"], &half);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("RELGATE_PUBLISH_PASSWORD"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_old_upload_left_by_a_killed_run_is_removed_and_a_young_one_kept() {
    let a = Apache::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = format!(".1.0.0.partial-{}-dead", now - 7200);
    let young = format!(".1.0.0.partial-{now}-live");
    for c in ["rel/", "rel/acme/"] {
        assert_eq!(a.curl(&["-X", "MKCOL", &a.url(c)]), "201");
    }
    for c in [&old, &young] {
        assert_eq!(
            a.curl(&["-X", "MKCOL", &a.url(&format!("rel/acme/{c}/"))]),
            "201"
        );
        let f = a.url(&format!("rel/acme/{c}/a.txt"));
        assert_eq!(a.curl(&["-T", "/etc/hostname", &f]), "201");
    }
    let p = project_to(&a.url(REL), "");
    expect_code(
        &dav::relgate(&p, &["run", "1.0.0"], &env(&p)),
        exit::SUCCESS,
    );
    let tree = a.tree("rel/acme");
    assert!(!tree.iter().any(|f| f.starts_with(&old)), "{tree:?}");
    // Possibly another publisher's upload in progress: left alone.
    assert!(tree.contains(&format!("{young}/a.txt")), "{tree:?}");
}

#[test]
fn verify_and_replay_by_url_refuse_a_tampered_release() {
    let a = Apache::start();
    let p = project_to(&a.url(REL), "");
    let env = env(&p);
    expect_code(&dav::relgate(&p, &["run", "1.0.0"], &env), exit::SUCCESS);
    let url = published(&a);
    std::fs::write(a.disk("rel/acme/1.0.0/a.txt"), b"b\n").unwrap();
    std::fs::write(a.disk("rel/acme/1.0.0/extra.txt"), b"x\n").unwrap();
    let out = dav::relgate(&p, &["verify", &url], &env);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(err.contains("a.txt: checksum mismatch"), "{err}");
    assert!(err.contains("extra.txt: not listed in SHA256SUMS"), "{err}");
    assert!(
        err.contains(&format!("error: {url}: 2 problem(s)")),
        "{err}"
    );
    let out = dav::relgate(&p, &["replay", &url], &env);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));
    // An edited record is caught by replay, and named at its URL.
    std::fs::write(a.disk("rel/acme/1.0.0/a.txt"), b"a\n").unwrap();
    std::fs::remove_file(a.disk("rel/acme/1.0.0/extra.txt")).unwrap();
    expect_code(&dav::relgate(&p, &["replay", &url], &env), exit::SUCCESS);
    std::fs::write(a.disk("rel/acme/1.0.0/audit/notes.txt"), b"x\n").unwrap();
    let out = dav::relgate(&p, &["replay", &url], &env);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains(&format!(
            "{url}/audit: audit/notes.txt is not accounted for"
        )),
        "{}",
        stderr(&out)
    );
    // Nothing there at all.
    let out = dav::relgate(&p, &["verify", &a.url("rel/acme/9.9.9")], &env);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));
}

#[test]
fn a_staged_byte_changed_before_the_upload_aborts_it() {
    // A gate flips one byte deep inside the staged copy (the size stays): the upload hashes what
    // it sends and stops before the server has the whole file.
    let a = Apache::start();
    let p = project_to(&a.url(REL), "");
    p.write("dist/big.bin", vec![1u8; 3 << 20]);
    let text = p.read("pipeline.yaml").replace(
        "    run: \"true\"\n",
        "    run: for f in \"$RELGATE_RECORD\"/staged/*/big.bin; do printf X | dd of=\"$f\" bs=1 seek=2500000 conv=notrunc status=none; done\n",
    );
    p.write("pipeline.yaml", text);
    let out = dav::relgate(&p, &["run", "1.0.0"], &env(&p));
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(err.contains("publish failed: PUT "), "{err}");
    assert!(
        err.contains("big.bin no longer matches its digest"),
        "{err}"
    );
    assert_eq!(a.tree("rel/acme"), Vec::<String>::new(), "{err}");
}

#[test]
fn publishers_creating_the_same_parent_collections_at_once_both_get_on() {
    // Regression: the loser of two MKCOLs of one missing parent got Apache's 403 and gave up.
    let a = Apache::start();
    for round in 0..3 {
        let to = format!("p{round}/{{project}}/{{version}}");
        let projects: Vec<Project> = (0..2).map(|_| project_to(&a.url(&to), "")).collect();
        let children: Vec<_> = projects
            .iter()
            .enumerate()
            .map(|(i, p)| {
                dav::command(p, &["run", &format!("{i}.0.0")], &env(p))
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            expect_code(&out, exit::SUCCESS);
        }
    }
}

#[test]
fn report_by_url_reads_the_evidence_of_the_private_copy() {
    // Regression: report (and what-if) took the record folder out of replay's answer and let
    // the private copy it lives in go, so the evidence was gone before the report read it.
    let a = Apache::start();
    let p = project_to(&a.url(REL), "");
    let env = env(&p);
    expect_code(&dav::relgate(&p, &["run", "1.0.0"], &env), exit::SUCCESS);
    let url = published(&a);
    let out = dav::relgate(&p, &["report", &url, "--format", "markdown"], &env);
    expect_code(&out, exit::SUCCESS);
    let by_url = stdout(&out);
    let disk = a.disk("rel/acme/1.0.0").display().to_string();
    let out = dav::relgate(&p, &["report", &disk, "--format", "markdown"], &env);
    expect_code(&out, exit::SUCCESS);
    assert_eq!(by_url, stdout(&out).replace(&disk, &url));
    let out = dav::relgate(&p, &["replay", &url, "--policy", "pipeline.yaml"], &env);
    expect_code(&out, exit::SUCCESS);
}
