#!/usr/bin/env bash
# Install what the local stack (python -m streams.localstack) needs:
#   * Kafka broker runtime jars from Maven Central into deploy/kafka/lib/ (git-ignored);
#   * Debian packages prometheus and prometheus-alertmanager, when their binaries are missing.
# Idempotent: a complete lib/ (marker file) and present binaries are left alone.
# Needs Java 17+, Maven and (for the apt part) root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/kafka/pom.xml"
lib="$here/kafka/lib"
marker="$lib/.complete"

# The marker records the pom's hash, so editing the pom (e.g. a version bump) re-fetches.
pom_hash="$(sha256sum "$pom" | cut -d' ' -f1)"
if [[ -f "$marker" && "$(cat "$marker")" == "$pom_hash" ]]; then
  echo "kafka jars: up to date in $lib"
else
  command -v mvn >/dev/null || { echo "install.sh: mvn not found (apt-get install -y maven)" >&2; exit 1; }
  command -v java >/dev/null || { echo "install.sh: java not found (need Java 17+)" >&2; exit 1; }
  echo "kafka jars: fetching into $lib"
  tmp="$lib.tmp.$$"
  rm -rf "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  mvn -q -B -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp"
  ls "$tmp"/kafka_2.13-*.jar >/dev/null
  rm -rf "$lib"
  mv "$tmp" "$lib"
  trap - EXIT
  echo "$pom_hash" > "$marker"
  echo "kafka jars: $(ls "$lib"/*.jar | wc -l) jars in $lib"
fi

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
if ((${#missing[@]})); then
  echo "apt: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  # The packages' init scripts would start system-wide daemons on :9090/:9093;
  # the stack runs its own, so forbid service starts during the install.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod +x "$policy"
    trap '"${sudo_cmd[@]}" rm -f "$policy"' EXIT
  fi
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "apt: prometheus and prometheus-alertmanager already installed"
fi
