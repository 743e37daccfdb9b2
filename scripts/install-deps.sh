#!/usr/bin/env bash
# Installs what runnel needs to build and test on Debian 12, skipping what is
# already there. Run as root (or with sudo available).
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libyaml-dev libuv1-dev librocksdb-dev librdkafka-dev libopenblas-dev
      libhttp-parser-dev libyajl-dev libxxhash-dev uthash-dev
      rocksdb-tools curl procps python3 kcat cppcheck
      clang-14 libclang-rt-14-dev   # clang-14: the libFuzzer harnesses (scripts/fuzz.sh)
      chromium fonts-dejavu-core)   # the web UI's browser tests (tests/integration/test_webui*.sh)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
