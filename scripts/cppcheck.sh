#!/usr/bin/env bash
# Static analysis of the engine and the operators with cppcheck (Debian's cppcheck 2.10):
# warnings, performance and portability checks, zero findings allowed. False positives are
# suppressed narrowly, with the reason: scripts/cppcheck.supp for a whole class, an inline
# "cppcheck-suppress" comment for a single line. Exits 1 on any finding.
#   bash scripts/cppcheck.sh            # runtime/ and operators/
#   bash scripts/cppcheck.sh FILE...    # just these
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cppcheck >/dev/null; then
  echo "cppcheck is not installed (apt-get install cppcheck)" >&2
  exit 1
fi
if [ $# -eq 0 ]; then set -- runtime operators; fi
cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
  --std=c11 -D_GNU_SOURCE -D__GNUC__ -Iinclude/runnel -Iruntime \
  --inline-suppr --suppressions-list=scripts/cppcheck.supp \
  --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
  -j"$(nproc)" "$@"
echo "cppcheck: no findings"
