//! The fuzz corpus keeps passing: every file in `fuzz/corpus/<target>/` goes through its target
//! ([`relgate::fuzzing`]), the same function the libFuzzer target calls, on the stable
//! toolchain. A crash or hang found by fuzzing is fixed with its input kept here, in the corpus
//! (docs/fuzzing.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use relgate::fuzzing::TARGETS;

use crate::common;

/// A debug build is slower than the fuzzing build; an input taking this long hangs.
const PER_INPUT: Duration = Duration::from_secs(10);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn run_corpus(name: &str) {
    let (_, target) = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    let dir = fuzz_dir().join("corpus").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no seed", dir.display());
    for f in files {
        let data = std::fs::read(&f).expect("read a corpus file");
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| target(&data));
        assert!(outcome.is_ok(), "{name}: {} fails", f.display());
        let took = started.elapsed();
        assert!(took < PER_INPUT, "{name}: {} took {took:?}", f.display());
    }
}

macro_rules! corpus {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_corpus(stringify!($name));
            }
        )*

        /// Every target has a test above, a corpus and a libFuzzer target, and nothing else
        /// does.
        #[test]
        fn every_target_has_a_corpus_and_a_fuzz_target() {
            let mut tested = vec![$(stringify!($name)),*];
            tested.sort();
            let mut named: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            named.sort();
            assert_eq!(tested, named, "tests/it/fuzz_corpus.rs lists every target");
            let list = |dir: &str, ext: &str| {
                let mut v: Vec<String> = std::fs::read_dir(fuzz_dir().join(dir))
                    .expect("fuzz folder")
                    .filter_map(|e| {
                        let name = e.expect("entry").file_name().into_string().ok()?;
                        Some(name.strip_suffix(ext)?.to_string())
                    })
                    .collect();
                v.sort();
                v
            };
            assert_eq!(list("corpus", ""), named, "fuzz/corpus/<target> for every target");
            assert_eq!(list("fuzz_targets", ".rs"), named, "fuzz/fuzz_targets/<target>.rs");
        }
    };
}

corpus!(
    allowed_signers,
    approval,
    checkpoint,
    clamd,
    cvss,
    git_log,
    junit,
    log_reader,
    pipeline,
    register,
    replay,
    sarif,
    sshsig,
    sums,
);

/// The seed record replays as it is (the replay target's baseline).
#[test]
fn the_seed_record_replays() {
    relgate::fuzzing::replay_record(&[]);
}

/// Make the seed record again: a small release with one regression gate, signed with the fixed
/// fuzzing key, into `fixtures/fuzz-record/record`
/// (`cargo test --test it fuzz_corpus::make_seed_record -- --ignored`). Its log, checkpoints
/// and evidence change; the corpus of the `replay` target (mutation programs) stays valid.
#[test]
#[ignore]
fn make_seed_record() {
    let p = common::Project::new();
    p.write("keys/release", relgate::fuzzing::release_key_openssh());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            p.join("keys/release"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
    }
    p.write("keys/allowed_signers", relgate::fuzzing::release_signers());
    p.write("dist/a.txt", b"a\n");
    p.write(
        "pipeline.yaml",
        common::pipeline("  unit-tests:\n    kind: regression\n    run: echo hello\n"),
    );
    common::expect_code(&p.relgate(&["run", "1.0.0"]), relgate::exit::SUCCESS);
    let to = Path::new(relgate::fuzzing::MUTATION_BASE_DIR).join("record");
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(&to).expect("mkdir");
    common::copy_dir(&p.record("1.0.0"), &to);
}
