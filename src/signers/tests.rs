//! Unit tests of `crate::signers`, beside it to keep the module readable.

use super::*;
use std::process::Command;

/// A fresh key made by the real `ssh-keygen`: (private key path holder, public line,
/// fingerprint as `ssh-keygen -l` prints it).
fn keygen(dir: &std::path::Path, name: &str, kind: &str) -> (String, String) {
    let path = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "c@x", "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(path.with_extension("pub"))
        .output()
        .unwrap();
    let fp = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    (public.trim().to_string(), fp)
}

/// `ssh-keygen -f name` writes `name.pub`; `with_extension` on `name` gives that.
fn key_line(public: &str) -> String {
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn parses_real_keys_of_every_type_with_options_and_comments() {
    let t = tempfile::tempdir().unwrap();
    let (ed, ed_fp) = keygen(t.path(), "ed", "ed25519");
    let (rsa, rsa_fp) = keygen(t.path(), "rsa", "rsa");
    let (ec, ec_fp) = keygen(t.path(), "ec", "ecdsa");
    let text = format!(
        "# release keys\n\
         \n\
         \t  # indented comment\n\
         release@acme.test,*@ops.acme.test NAMESPACES=\"file,relgate-*\",valid-after=\"20260101Z\" {ed}\n\
         alice@acme.test {rsa}\r\n\
         \"bob@acme.test\" valid-before=\"202701011230UTC\" {ec}\n"
    );
    let s = parse(&text).unwrap();
    assert_eq!(s.entries.len(), 3);
    let e = &s.entries[0];
    assert_eq!(e.line, 4);
    assert_eq!(e.principals, ["release@acme.test", "*@ops.acme.test"]);
    assert_eq!(
        e.namespaces.as_deref(),
        Some(&["file".to_string(), "relgate-*".to_string()][..])
    );
    assert_eq!(e.valid_after, Some(1_767_225_600));
    assert_eq!(e.fingerprint, ed_fp);
    assert_eq!(e.comment.as_deref(), Some("c@x"));
    let k = &e.key;
    assert_eq!(crate::sshsig::fingerprint(k), ed_fp);
    assert_eq!(s.entries[1].fingerprint, rsa_fp);
    assert_eq!(crate::sshsig::fingerprint(&s.entries[1].key), rsa_fp);
    assert_eq!(s.entries[2].fingerprint, ec_fp);
    assert_eq!(crate::sshsig::fingerprint(&s.entries[2].key), ec_fp);
    assert_eq!(s.entries[2].principals, ["bob@acme.test"]);
    assert_eq!(s.entries[2].valid_before, Some(1_798_806_600));

    // Lookups: patterns, namespaces and validity windows.
    let at = 1_780_000_000; // 2026-05-28
    assert_eq!(s.keys_for("release@acme.test", "file", at).len(), 1);
    assert_eq!(
        s.keys_for("x@ops.acme.test", "relgate-approval", at).len(),
        1
    );
    assert!(s.keys_for("release@acme.test", "git", at).is_empty());
    assert!(
        s.keys_for("release@acme.test", "file", 1_700_000_000)
            .is_empty()
    );
    assert!(s.keys_for("nobody@acme.test", "file", at).is_empty());
    assert_eq!(
        s.principals_for_key(k, "file", at),
        ["release@acme.test", "*@ops.acme.test"]
    );
    assert!(s.principals_for_key(k, "git", at).is_empty());
    assert!(s.allows("release@acme.test", k, "file", at));
    assert!(!s.allows("alice@acme.test", k, "file", at));
    assert!(s.names_principal("bob@acme.test"));
    assert!(!s.names_principal("carol@acme.test"));
}

#[test]
fn every_bad_line_is_reported_with_its_number() {
    let t = tempfile::tempdir().unwrap();
    let (ed, _) = keygen(t.path(), "ed", "ed25519");
    let kl = key_line(&ed);
    let text = [
        format!("ok@x {kl}"),                                                   // 1 fine
        format!("ca@x cert-authority {kl}"),                                    // 2
        format!("u@x no-touch-required {kl}"),                                  // 3
        format!("q@x namespaces=file {kl}"),                                    // 4 unquoted
        format!("t@x valid-after=\"2026130\" {kl}"),                            // 5 bad time
        format!("t@x valid-after=\"20261301\" {kl}"),                           // 6 month 13
        "lonely@x".to_string(),                                                 // 7
        "k@x ssh-ed25519 AAAA!!!!".to_string(),                                 // 8 bad base64
        format!("w@x valid-after=\"20270101\",valid-before=\"20260101\" {kl}"), // 9
        format!("m@x namespaces=\"a\",namespaces=\"b\" {kl}"),                  // 10
        "f@x ssh-foo AAAAC3NzaC1lZDI1NTE5".to_string(),                         // 11
        format!("e@x namespaces=\"file\", {kl}"),                               // 12 trailing comma
        format!("r@x {}", kl.replace("ssh-ed25519", "ssh-rsa")),                // 13 type mismatch
        format!("n@x namespaces=\"file {kl}"), // 14 missing end quote
    ]
    .join("\n");
    let errs = parse(&text).unwrap_err();
    let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, (2..=14).collect::<Vec<_>>(), "{errs:#?}");
    assert!(
        errs[0]
            .message
            .contains("certificate authorities are not supported yet")
    );
    assert!(
        errs[1].message.contains("unsupported option"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2].message.contains("missing start quote"),
        "{}",
        errs[2]
    );
    assert!(
        errs[9].message.contains("unsupported key type"),
        "{}",
        errs[9]
    );
    assert_eq!(errs[0].to_string().split(':').next(), Some("line 2"));
}

/// `ssh-keygen -t TYPE -b BITS` (an empty `bits` for the default).
fn keygen_bits(dir: &std::path::Path, name: &str, kind: &str, bits: &str) -> String {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", "", "-C", "c@x", "-f"])
        .arg(&path);
    if !bits.is_empty() {
        cmd.args(["-b", bits]);
    }
    assert!(cmd.status().unwrap().success());
    key_line(&std::fs::read_to_string(path.with_extension("pub")).unwrap())
}

#[test]
fn ecdsa_and_rsa_lines_hold_keys_and_unsupported_types_are_refused_by_name() {
    let t = tempfile::tempdir().unwrap();
    let p256 = keygen_bits(t.path(), "p256", "ecdsa", "256");
    let p384 = keygen_bits(t.path(), "p384", "ecdsa", "384");
    let rsa = keygen_bits(t.path(), "rsa", "rsa", "3072");
    let ok = parse(&format!("a@x {p256}\nb@x {p384}\nc@x {rsa}\n")).unwrap();
    assert_eq!(ok.entries.len(), 3);
    let p521 = keygen_bits(t.path(), "p521", "ecdsa", "521");
    let small = keygen_bits(t.path(), "small", "rsa", "1024");
    let errs = parse(&format!("d@x {p521}\ne@x {small}\n")).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].message.contains("nistp521 is not supported"),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].message.contains("1024 bits is too small"),
        "{}",
        errs[1]
    );
    // DSA, where this ssh-keygen still makes it.
    let dsa = t.path().join("dsa");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "dsa", "-N", "", "-f"])
        .arg(&dsa)
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let line = key_line(&std::fs::read_to_string(dsa.with_extension("pub")).unwrap());
        let errs = parse(&format!("f@x {line}\n")).unwrap_err();
        assert!(errs[0].message.contains("ssh-dss (DSA)"), "{}", errs[0]);
    }
}

#[test]
fn pattern_lists_follow_openssh() {
    let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(match_pattern("alice@acme.test", "*@acme.test"));
    assert!(match_pattern("ab", "a?"));
    assert!(!match_pattern("abc", "a?"));
    assert!(match_pattern("", "*"));
    assert!(match_pattern("a*b", "a*b"));
    assert!(match_pattern("axxbyyb", "a*b"));
    assert!(!match_pattern("axxbyyc", "a*b"));
    assert!(!match_pattern("Alice@acme.test", "alice@acme.test"));
    assert!(match_pattern_list("a@x", &l(&["b@x", "a@*"])));
    assert!(!match_pattern_list("a@x", &l(&["*@x", "!a@x"])));
    assert!(!match_pattern_list("a@x", &l(&["!b@x"])));
}

/// Found by fuzzing: a `*` in the string was taken as a literal match for the pattern's `*`
/// and the wildcard was lost, so `*x` did not match `*` (OpenSSH tries the wildcard first).
#[test]
fn a_star_in_the_string_does_not_use_up_the_pattern_star() {
    assert!(match_pattern("*x", "*"));
    assert!(match_pattern("*\0\0\0\u{2}\0 nal", "*"));
    assert!(match_pattern("*x@acme.test", "*@acme.test"));
    assert!(match_pattern("a*b*c", "a*c"));
    assert!(!match_pattern("*x", "*y"));
}

#[test]
fn times_are_utc_with_or_without_suffix() {
    assert_eq!(parse_time("19700101"), Some(0));
    assert_eq!(parse_time("19700101Z"), Some(0));
    assert_eq!(parse_time("197001010001"), Some(60));
    assert_eq!(parse_time("19700101000001utc"), Some(1));
    assert_eq!(parse_time("20260230"), None);
    assert_eq!(parse_time("2026010"), None);
    assert_eq!(parse_time("20260101246000"), None);
    assert_eq!(parse_time("2026-1-01"), None);
}

/// Found by fuzzing: a time ending inside a multi-byte character was sliced there, and the
/// whole allowed_signers file (a trust root) made relgate panic instead of being refused.
#[test]
fn a_time_ending_in_a_multibyte_character_is_refused_not_a_panic() {
    assert_eq!(parse_time("2026010\u{fffd}"), None);
    assert_eq!(parse_time("\u{20ac}"), None);
    assert_eq!(parse_time("20260101\u{e9}tc"), None);
    let line = "alice valid-after=\"2026\u{20ac}\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2Fl7rmN3X+S9zH1ZzKZ5zkZ9dJhG9Q3Xx4Yk1QW3E9\n";
    let errs = parse(line).expect_err("a bad time is refused");
    assert_eq!(errs[0].line, 1);
    let input = include_bytes!("../../fuzz/corpus/allowed_signers/regress-time-multibyte-suffix");
    assert!(parse(&String::from_utf8_lossy(input)).is_err());
}

#[test]
fn base64_roundtrip_and_strictness() {
    for n in 0..10 {
        let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
        let mut enc = base64_encode_unpadded(&data);
        while !enc.len().is_multiple_of(4) {
            enc.push('=');
        }
        if n > 0 {
            assert_eq!(base64_decode(&enc).unwrap(), data);
        }
    }
    assert!(base64_decode("QQ").is_none());
    assert!(base64_decode("QR==").is_none(), "non-zero trailing bits");
    assert!(base64_decode("Q===").is_none());
}

/// Found by fuzzing: an Ed25519 blob with a wrong length prefix decoded, and the line's
/// fingerprint (of the blob) then differed from its key's, so it could never match. It is
/// refused as malformed, as ssh-keygen refuses it.
#[test]
fn a_malformed_key_blob_is_refused() {
    let line =
        "a@x ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAVAICFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS\n";
    let errs = parse(line).expect_err("refused");
    assert!(
        errs[0].message.contains("not a well-formed key"),
        "{errs:?}"
    );
    let input = include_bytes!("../../fuzz/corpus/allowed_signers/regress-key-length-prefix");
    let (file, _) = input.split_at(input.iter().position(|&b| b == 0).unwrap_or(input.len()));
    assert!(parse(&String::from_utf8_lossy(file)).is_err());
}
