#!/usr/bin/env bash
# Make the seed corpora in fuzz/corpus/<target>/ again from fixtures/, the project's own
# files, the seed record (fixtures/fuzz-record) and a few inputs written here. Files that
# fuzzing added to a corpus (regressions, merged finds) are kept: this only (re)writes the
# seed-* files.
set -euo pipefail
cd "$(dirname "$0")/.."
c=fuzz/corpus
rec=fixtures/fuzz-record/record
seed() { # seed TARGET NAME < content
  mkdir -p "$c/$1"
  cat >"$c/$1/seed-$2"
}
file() { # file TARGET NAME PATH
  seed "$1" "$2" <"$3"
}

# pipeline: the project's own, the example's, and the seed record's; `#@file NAME` lines
# append the `uses:` files.
{
  cat pipeline.yaml
  for f in stages/*.yaml; do printf '\n#@file %s\n' "$f"; cat "$f"; done
} | seed pipeline own
file pipeline acme examples/acme/pipeline.yaml
python3 - "$rec/log.jsonl" >"$c/pipeline/seed-record" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    v = json.loads(line)
    if v.get("type") == "run-started":
        srcs = v["body"]["sources"]
        out = srcs[0]["text"]
        for s in srcs[1:]:
            out += "\n#@file %s\n%s" % (s["path"], s["text"])
        sys.stdout.write(out)
        break
EOF

# allowed_signers, then after a NUL a string and a pattern for match_pattern.
{ cat fixtures/sk/allowed_signers; printf '\0release@acme.test\n*@acme.test'; } | seed allowed_signers sk
{ cat release/allowed_signers; printf '\0a?c*x\n*?*?*x'; } | seed allowed_signers release
{ cat "$rec/allowed_signers"; printf '\0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\n*a*a*a*a*a*a*c'; } | seed allowed_signers record
printf 'alice,!bob namespaces="file,relgate-*",valid-after="20260101",valid-before="20270101Z" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2Fl7rmN3X+S9zH1ZzKZ5zkZ9dJhG9Q3Xx4Yk1QW3E9 c\n' | seed allowed_signers options

# SSHSIG armour: security keys, the seed record's checkpoint and SHA256SUMS signatures.
for f in fixtures/sk/*.sig; do file sshsig "$(basename "$f")" "$f"; done
file sshsig checkpoint "$rec/checkpoint.sig"
file sshsig sums "$(ls "$rec"/staged/*/SHA256SUMS.sig)"

# approval statements (canonical JSON), one with a signature after a NUL.
st='{"comment":"by hand","decision":"approve","gate":"manual","key":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","policy":"sha256:0000000000000000000000000000000000000000000000000000000000000000","project":"acme","signer":"alice@acme.test","subject":"sha256:1111111111111111111111111111111111111111111111111111111111111111","time":"2026-01-01T00:00:00Z","type":"relgate-approval/v1","version":"1.0.0"}'
printf '%s' "$st" | seed approval approve
printf '%s' "${st/approve/reject}" | seed approval reject
{ printf '%s\0' "$st"; cat fixtures/sk/message.ed25519.approval.sig; } | seed approval signed
printf '%s' "${st/\"comment\"/\"extra\":1,\"comment\"}" | seed approval extra-key

# SARIF, JUnit, the register and pentests, from fixtures/.
for f in fixtures/sarif/*.sarif; do file sarif "$(basename "$f")" "$f"; done
for f in fixtures/junit/*.xml; do file junit "$(basename "$f")" "$f"; done
file register remediations fixtures/security/remediations.yaml
file register pentests fixtures/security/pentests.yaml
file register own security/remediations.yaml

# CVSS vectors of every version.
printf 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' | seed cvss v31
printf 'CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:C/C:L/I:N/A:N' | seed cvss v30
printf 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N' | seed cvss v40
printf 'AV:N/AC:L/Au:N/C:P/I:P/A:P' | seed cvss v20
printf '  CVSS:3.1/AV:P/AC:H/PR:L/UI:R/S:C/C:N/I:N/A:N/E:U ' | seed cvss spaced

# SHA256SUMS: the seed record's, and a longer sorted one.
file sums record "$(ls "$rec"/staged/*/SHA256SUMS)"
printf '%064d  a.txt\n%064d  dir/b.bin\n%064d  z\n' 1 2 3 | seed sums three

# clamd replies: scan results and VERSION lines.
printf 'OK' | seed clamd ok
printf 'Eicar-Test-Signature FOUND' | seed clamd found
printf 'INSTREAM size limit exceeded. ERROR\0' | seed clamd error
printf 'stream: Win.Test.EICAR_HDB-1 FOUND\0' | seed clamd stream
printf 'fd[12]: OK\0' | seed clamd fildes
printf 'ClamAV 1.4.3/27512/Mon Dec  1 09:27:02 2026\n' | seed clamd version
printf 'ClamAV 1.0.7\0' | seed clamd version-bare

# git log: a small history made here (a commit with trailers, a branch, a merge with a change
# of its own) as relgate asks git for it, and the structured form (RS between commits; US
# between name, email, message and file names).
tok=0123456789abcdef0123456789abcdef
g=$(mktemp -d)
trap 'rm -rf "$g"' EXIT
(
  cd "$g"
  export GIT_AUTHOR_NAME=Ann GIT_AUTHOR_EMAIL=ann@acme.test GIT_COMMITTER_NAME=Ann \
    GIT_COMMITTER_EMAIL=ann@acme.test GIT_AUTHOR_DATE=2026-01-01T00:00:00Z \
    GIT_COMMITTER_DATE=2026-01-01T00:00:00Z GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
  git init -q -b main .
  echo a >a.txt && git add a.txt && git commit -qm 'Add a'
  git checkout -qb side && echo b >'b c.txt' && git add . &&
    git commit -qm $'Add b\n\nReviewed-by: Bob <bob@acme.test>\nTest: unit\n  and more'
  git checkout -q main && echo a2 >a.txt && git commit -qam 'Change a'
  git merge -q --no-ff --no-commit side >/dev/null && echo m >m.txt && git add m.txt && git commit -qm 'Merge side'
  git log --no-color --no-mailmap --no-renames --diff-merges=combined --name-only -z \
    "--format=%x1e${tok}%H%x1f${tok}%P%x1f${tok}%an%x1f${tok}%ae%x1f${tok}%aI%x1f${tok}%cn%x1f${tok}%ce%x1f${tok}%B%x1f${tok}"
) | seed git_log history
printf 'Ann\x1fann@acme.test\x1fFix it\n\nReviewed-by: Bob <b@x>\nTest: unit\n  and more\n\x1fsrc/a.rs\x1ftests/b.rs\x1eBob\x1fb@x\x1fMerge\x1fevil' | seed git_log structured

# The release log and the checkpoint, from the seed record; the checkpoint with its
# signature after a NUL.
file log_reader record "$rec/log.jsonl"
head -n 3 "$rec/log.jsonl" | seed log_reader head
file checkpoint plain "$rec/checkpoint"
{ cat "$rec/checkpoint"; printf '\0'; cat "$rec/checkpoint.sig"; } | seed checkpoint signed
for f in "$rec"/checkpoints/*[0-9a-f]; do
  { cat "$f"; printf '\0'; cat "$f.sig"; } | seed checkpoint "history-$(basename "$f" | cut -c1-12)"
done

# replay: mutation programs (fuzzing/replay.rs): the byte of flags, then operations.
printf '' | seed replay untouched
printf '\x01' | seed replay rechain-only
printf '\x03' | seed replay resign-only
printf '\x00\x00\x00\x02' | seed replay delete-line
printf '\x01\x04\x00\x03\x00\x05\x00' | seed replay json-edit-rechained
printf '\x03\x04\x00\x03\x00\x05\x00' | seed replay json-edit-resigned
printf '\x07\x02\x00\x01\x00\x04' | seed replay swap-resigned-alone
printf '\x00\x08\x00\x01\x00\x00\x07' | seed replay evidence-flip
printf '\x03\x07\x00\x50' | seed replay cut-resigned
printf '\x01\x06\x00\x02\x10{"v":1,"type":"x"}' | seed replay insert-line
echo "seeds in $c: $(find "$c" -type f | wc -l) files, $(du -sh "$c" | cut -f1)"
