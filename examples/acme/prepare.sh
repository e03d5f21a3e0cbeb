# Sourced by release.sh and release-webdav.sh (in examples/acme, with $repo and $version set):
# example-only keys made here, the artefacts, the test signature database, and the remediation
# register and pentest records with dates relative to today.
rm -rf keys dist build clamav-db published .relgate security/remediations.yaml security/pentests.yaml
mkdir -p keys dist security
for who in release alice bob; do
  ssh-keygen -q -t ed25519 -N '' -C "$who@acme.test (example only)" -f "keys/$who"
done
{
  echo "release@acme.test $(cut -d' ' -f1,2 keys/release.pub)"
  echo "alice@acme.test $(cut -d' ' -f1,2 keys/alice.pub)"
  echo "bob@acme.test $(cut -d' ' -f1,2 keys/bob.pub)"
} > keys/allowed_signers
tar -czf "dist/acme-widget-$version.tar.gz" src tests
printf 'acme-widget %s\n' "$version" > dist/RELEASE-NOTES.txt
cp -r "$repo/fixtures/clamav/db" clamav-db
today=$(date -u +%F)
due=$(date -u -d '+30 days' +%F)
pentest=$(date -u -d '-60 days' +%F)
cat > security/remediations.yaml <<YAML
- finding: SH-001
  owner: dave@acme.test
  ticket: SEC-101
  plan: validate numeric arguments before arithmetic expansion
  opened: $today
  due: $due
  status: open
  target: 1.1.0
- finding: SH-002
  owner: dave@acme.test
  ticket: SEC-102
  plan: accepted risk, the usage text is public documentation
  opened: $today
  due: $due
  status: accepted
- finding: PT-EX-01
  owner: erin@acme.test
  ticket: SEC-090
  plan: rate-limit the widget API
  opened: $pentest
  due: $today
  status: fixed
YAML
cat > security/pentests.yaml <<YAML
- date: $pentest
  version: 0.9.0
  focus: widget command line and API
  findings: [PT-EX-01]
YAML
