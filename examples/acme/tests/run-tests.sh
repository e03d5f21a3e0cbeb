#!/bin/sh
# The example's automated regression suite: four checks of src/widget.sh, reported as JUnit.
set -u
mkdir -p build
pass=0
fail=0
cases=""
check() {
  name=$1
  shift
  if "$@" >/dev/null 2>&1; then
    pass=$((pass + 1))
    cases="$cases<testcase classname=\"widget\" name=\"$name\"/>"
  else
    fail=$((fail + 1))
    cases="$cases<testcase classname=\"widget\" name=\"$name\"><failure message=\"failed\"/></testcase>"
  fi
}
check greets sh -c 'sh src/widget.sh greet | grep -q "hello, widget"'
check adds sh -c 'test "$(sh src/widget.sh add 2 3)" = 5'
check rejects-unknown sh -c '! sh src/widget.sh frobnicate'
check version sh -c 'sh src/widget.sh version | grep -q "^acme-widget "'
total=$((pass + fail))
printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="widget" tests="%d" failures="%d" errors="0">%s</testsuite>\n' \
  "$total" "$fail" "$cases" > build/junit.xml
echo "$pass passed, $fail failed"
test "$fail" -eq 0
