//! relgate's own release pipeline and the README's example stay valid.

use std::path::Path;

use crate::common::*;
use relgate::exit;

#[test]
fn relgates_own_pipeline_checks_once_artefacts_are_built() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Project::new();
    std::fs::copy(root.join("pipeline.yaml"), p.join("pipeline.yaml")).expect("copy");
    for dir in ["release", "stages", "security"] {
        copy_dir(&root.join(dir), &p.join(dir));
    }
    p.write(
        "dist/relgate-0.1.0-x86_64-linux.tar.gz",
        b"built by scripts/dist.sh",
    );
    let out = p.relgate(&["check"]);
    expect_code(&out, exit::SUCCESS);
    let plan = p.relgate(&["plan"]);
    expect_code(&plan, exit::SUCCESS);
    assert!(stdout(&plan).contains("virus-scan"), "{}", stdout(&plan));
}

#[test]
fn the_example_pipeline_checks_once_release_sh_prepared_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Project::new();
    // Only what the repository holds: release.sh's own output may sit beside it.
    for part in ["pipeline.yaml", "src", "tests", "reports"] {
        let from = root.join("examples/acme").join(part);
        if from.is_dir() {
            copy_dir(&from, &p.join(part));
        } else {
            std::fs::copy(&from, p.join(part)).expect("copy");
        }
    }
    // What release.sh makes: keys, artefacts, the signature folder, the register.
    let release = p.keygen("release");
    let alice = p.keygen("alice");
    let bob = p.keygen("bob");
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\nalice@acme.test {alice}\nbob@acme.test {bob}\n"),
    );
    p.write("dist/acme-widget-1.0.0.tar.gz", b"tarball");
    copy_dir(&root.join("fixtures/clamav/db"), &p.join("clamav-db"));
    p.write("security/remediations.yaml", "[]\n");
    p.write("security/pentests.yaml", "[]\n");
    let out = p.relgate(&["check"]);
    expect_code(&out, exit::SUCCESS);
}
