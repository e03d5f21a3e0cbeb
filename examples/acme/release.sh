#!/usr/bin/env bash
# A real release of the example project, end to end, on a fresh Debian machine:
# prerequisites, keys (example-only, made here), artefacts, then
#   check -> plan -> dry run -> run (awaits QA) -> approve -> run (publishes) -> verify -> replay
#   -> report -> what-if
# -> the attestation checked by Python securesystemslib and cryptography
# It leaves the published release in examples/acme/published/acme-widget/VERSION/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
version=${1:-1.0.0}

"$repo/scripts/install-prereqs.sh"
cargo build --release --locked --quiet --manifest-path "$repo/Cargo.toml"
relgate="$repo/target/release/relgate"
cd "$here"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "prepare: example keys, artefacts, signature database, register"
. "$here/prepare.sh"
rm -f strict.yaml
mkdir -p build

export ACME_RELEASE_KEY="$here/keys/release"
export RELGATE_OPERATOR=rel-eng@acme.test

step "relgate check"
"$relgate" check
step "relgate plan"
"$relgate" plan
step "relgate run $version --dry-run   (never publishes; awaited sign-offs are not failures)"
"$relgate" run "$version" --dry-run
step "relgate run $version   (exit 3: the QA sign-off is awaited)"
set +e
"$relgate" run "$version"
rc=$?
set -e
if [ "$rc" -ne 3 ]; then
  echo "expected exit 3 (sign-off awaited), got $rc" >&2
  exit 1
fi
step "relgate status $version"
"$relgate" status "$version"
step "relgate approve   (alice, QA, signs the staged subject)"
"$relgate" approve "$version" --gate manual-regression --key keys/alice --as alice@acme.test \
  --comment "manual regression checklist passed"
step "relgate run $version   (publishes)"
"$relgate" run "$version"
out="published/acme-widget/$version"
step "relgate verify $out"
"$relgate" verify "$out"
step "relgate replay $out"
"$relgate" replay "$out"
step "relgate report $out   (the auditor's report; the release carries it as audit/report.html)"
"$relgate" report "$out" -o build/report.html
"$relgate" report "$out" --format markdown | head -n 30
step "relgate replay $out --policy   (what-if: a quorum of two QA sign-offs)"
sed 's/    quorum: 1/    quorum: 2/' pipeline.yaml > strict.yaml
set +e
"$relgate" replay "$out" --policy strict.yaml
rc=$?
set -e
if [ "$rc" -ne 1 ]; then
  echo "expected exit 1 (a verdict would change under quorum 2), got $rc" >&2
  exit 1
fi
step "from an unrelated folder: the trust root is given, never taken from the folder"
elsewhere=$(mktemp -d)
trap 'rm -rf "$elsewhere"' EXIT
published="$here/$out"
fingerprint=$(ssh-keygen -l -E sha256 -f keys/release.pub | cut -d' ' -f2)
(
  cd "$elsewhere"
  "$relgate" verify "$published" --signers "$here/keys/allowed_signers" --signer release@acme.test
  "$relgate" verify "$published" --trust-key "$fingerprint"
  "$relgate" replay "$published" --signers "$here/keys/allowed_signers" --signer release@acme.test
  cp "$here/.relgate/releases/$version/checkpoint" "$here/.relgate/releases/$version/checkpoint.sig" .
  "$relgate" replay "$here/.relgate/releases/$version" --trust-key "$fingerprint" --checkpoint checkpoint
  for cmd in verify replay; do
    set +e
    "$relgate" "$cmd" "$published" 2>"$elsewhere/refusal"
    rc=$?
    set -e
    if [ "$rc" -ne 2 ]; then
      echo "expected $cmd without a trust root to refuse with exit 2, got $rc" >&2
      exit 1
    fi
    echo "relgate $cmd without a trust root: exit 2, as it must:"
    sed 's/^/    /' "$elsewhere/refusal"
  done
)
step "stock tools: sha256sum -c and ssh-keygen -Y verify"
(cd "$out" && sha256sum -c --strict SHA256SUMS)
ssh-keygen -Y verify -f keys/allowed_signers -I release@acme.test -n file \
  -s "$out/SHA256SUMS.sig" < "$out/SHA256SUMS"
step "the attestation, checked by securesystemslib and cryptography (not relgate's code)"
python=python3
[ -x /usr/local/bin/relgate-sslib-python3 ] && python=/usr/local/bin/relgate-sslib-python3
"$python" "$repo/tests/vsa_check.py" "$out/attestation.intoto.jsonl" keys/release.pub \
  "$out/release.pub.pem" "$fingerprint" > "$elsewhere/vsa.json"
"$python" - "$elsewhere/vsa.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["sslib"] and r["crypto"] and r["pem_matches_ssh"], r
st = r["statement"]
print("  securesystemslib: verified; cryptography: verified (PAE recomputed, release.pub.pem)")
print("  %s, %s, %s" % (st["predicate"]["verificationResult"], st["predicate"]["verifiedLevels"],
                        ", ".join(s["name"] for s in st["subject"])))
PY
step "done: $here/$out"
ls -la "$out"
