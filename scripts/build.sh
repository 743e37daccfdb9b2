#!/usr/bin/env bash
# Configures and builds runnel into build/ (or $1 with extra CMake flags after).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRUNNEL_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
