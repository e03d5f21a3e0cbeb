//! Publishing to a real Apache httpd with mod_dav_fs (plain HTTP and TLS, basic auth), and
//! verifying and replaying the release by its URL.

mod common;
mod dav;

use common::*;
use dav::*;
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
