#!/usr/bin/env bash
# The example release as a team makes it: three "machines" meeting in a share, with no server
# of relgate's own (docs/team.md). Here the share is a local folder; a WebDAV or S3 URL works
# the same way.
#   CI: runs the unit tests of the commit and uploads its JUnit report, signed with CI's key
#   nightly CI: a dry run without the release key; its record stays on the share
#   release engineer: run (exit 3, the request goes onto the share)
#   alice, QA: only relgate, her key, the share and the release key's fingerprint -> approve --from
#   release engineer: run (takes alice's sign-off from the share, publishes)
#   auditor: relgate history
# Each machine has a home of its own; the engineer's project is this folder, with a pipeline
# of its own (pipeline-team.yaml, written here; record in .relgate-team, release in
# published-team/).
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
rm -rf .relgate-team published-team pipeline-team.yaml

machines=$(mktemp -d)
trap 'rm -rf "$machines"' EXIT
share="$machines/share"          # in real life: https://dav.acme.test/relgate, s3://…, a shared disk
mkdir -p "$share" "$machines"/{engineer,nightly,ci,alice,auditor}-home "$machines"/{ci,alice,auditor}
# Run relgate as machine $1 (its own HOME, so its own pinned checkpoints and credentials).
on() {
  local m=$1
  shift
  env -u RELGATE_PIN_DIR HOME="$machines/$m-home" XDG_STATE_HOME="$machines/$m-home/state" "$@"
}

sed -e "s#^project: acme-widget\$#project: acme-widget\nstate_dir: .relgate-team\nshare: $share#" \
  -e 's#^  to: published/{project}/{version}#  to: published-team/{project}/{version}#' \
  pipeline.yaml > pipeline-team.yaml
grep -q "^share: $share" pipeline-team.yaml
# CI's key, and a gate that takes the unit tests' evidence from the CI job on the share instead
# of running them here.
ssh-keygen -q -t ed25519 -N '' -C "ci@acme.test (example only)" -f keys/ci
echo "ci@acme.test $(cut -d' ' -f1,2 keys/ci.pub)" >> keys/allowed_signers
sed -i -e 's#^gates:$#gates:\n  unit-tests-ci:\n    kind: regression\n    from_share: {jobs: [linux], signed_by: [ci@acme.test]}#' \
  pipeline-team.yaml
grep -q "^  unit-tests-ci:" pipeline-team.yaml
rg() { "$relgate" -p pipeline-team.yaml "$@"; }

commit=$(git -C "$here" rev-parse HEAD)
cp -r src tests "$machines/ci/"
cp keys/ci "$machines/ci/ci.key"
step "CI, on its runner: the unit tests of $commit, and their report onto the share"
(
  cd "$machines/ci"
  on ci sh tests/run-tests.sh
  on ci "$relgate" ci-upload --share "$share" --project acme-widget --commit "$commit" \
    --job linux --key ci.key --as ci@acme.test build/junit.xml
)

step "nightly CI: a dry run, without the release key (it signs with a throwaway key)"
on nightly env -u ACME_RELEASE_KEY "$relgate" -p pipeline-team.yaml run "$version-nightly" --dry-run

export ACME_RELEASE_KEY="$here/keys/release"
export RELGATE_OPERATOR=rel-eng@acme.test

step "release engineer: relgate run $version   (exit 3; the request goes onto the share)"
set +e
on engineer "$relgate" -p pipeline-team.yaml run "$version"
rc=$?
set -e
if [ "$rc" -ne 3 ]; then
  echo "expected exit 3 (sign-off awaited), got $rc" >&2
  exit 1
fi

# What reaches alice out of band: the release key's fingerprint (the project's security page,
# a signed commit, a phone call; never the share). Her machine holds her key and nothing else.
fingerprint=$(ssh-keygen -l -E sha256 -f keys/release.pub | cut -d' ' -f2)
cp keys/alice "$machines/alice/alice.key"
step "alice, QA, on her own machine: approve --from the share"
(
  cd "$machines/alice"
  ls -A
  on alice env -u ACME_RELEASE_KEY -u RELGATE_OPERATOR "$relgate" approve \
    --from "$share" --release "acme-widget/$version" --gate manual-regression \
    --key alice.key --as alice@acme.test --trust-key "$fingerprint" \
    --comment "manual regression checklist passed" --yes
)

step "release engineer: relgate run $version   (takes the sign-off from the share, publishes)"
on engineer "$relgate" -p pipeline-team.yaml run "$version"

step "auditor, anywhere: relgate history (the trust root given, never taken from the share)"
(
  cd "$machines/auditor"
  on auditor "$relgate" history "$share" acme-widget --trust-key "$fingerprint"
)

step "the published release checks as ever"
rg verify "published-team/acme-widget/$version"
step "done: $here/published-team/acme-widget/$version; the share holds (evidence left out):"
(cd "$share" && find . -type f | grep -v /evidence/ | sort | sed 's/^/    /')
