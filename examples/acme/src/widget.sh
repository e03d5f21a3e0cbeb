#!/bin/sh
# acme-widget: the example project's "product".
case "${1:-}" in
  greet) echo "hello, widget" ;;
  add) echo $(($2 + $3)) ;;
  version) echo "acme-widget ${ACME_VERSION:-dev}" ;;
  *) echo "usage: widget.sh greet|add A B|version" >&2; exit 2 ;;
esac
