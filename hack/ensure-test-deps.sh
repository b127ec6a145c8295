#!/usr/bin/env bash
# What `make test` needs outside Python: a real Prometheus server and its promtool (the Debian package `prometheus`),
# which the metrics tests start on 127.0.0.1. Nothing to do when both are on PATH; as root with apt-get, install the
# package (non-interactive, quiet); otherwise stop at once and print the one command that installs it.
set -euo pipefail

PACKAGE=prometheus
TOOLS=(prometheus promtool)

missing() {
  local tool
  for tool in "${TOOLS[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$tool"; return 0; }
  done
  return 1
}

# run a command with its output shown only when it fails (apt's and dpkg's progress is noise in a test run)
quiet() {
  local out
  if ! out=$("$@" 2>&1); then
    echo "$out" >&2
    echo "make test: \`$*\` failed" >&2
    exit 1
  fi
}

tool=$(missing) || exit 0

if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "make test: $tool is not on PATH; installing the Debian package $PACKAGE" >&2
  export DEBIAN_FRONTEND=noninteractive
  quiet apt-get update -qq
  quiet apt-get install -y -qq --no-install-recommends "$PACKAGE"
  if tool=$(missing); then
    echo "make test: $tool is still not on PATH after installing $PACKAGE" >&2
    exit 1
  fi
  exit 0
fi

echo "make test: the metrics tests need $tool (Debian package $PACKAGE), which is not on PATH. Install it with:" >&2
echo "  sudo apt-get update && sudo apt-get install -y $PACKAGE" >&2
exit 1
