#!/usr/bin/env bash
# Crash-chaos run (issues #8, #12, #16): >= 500 BgpPeers created and a share deleted while
# the controller process is kill -9'ed at >= 50 seeded random moments and restarted; the
# apiserver is restarted once; the emulator answers 503 to ~30 % of calls for a period and
# throttles for another. The cloud has a 3 s read-after-write lag (--lag) and the real
# 8-peers-per-VBR quota (objects spread over 2 groups x 3 peers per VBR); a second controller
# runs next to the first for 30 % of the window (--second-controller); 40 objects use a
# credentials Secret switched to another account's keys for 35 % of the window and back
# (--switch-objects, --switch-period). Then it heals, waits for convergence and checks:
# every surviving object Ready, the emulator holds exactly the expected peers, 0 duplicates,
# 0 leaks, 0 stuck finalizers, foreign peers untouched, 0 writes with the other account's
# key, deletions held while switched, AccountMismatch seen. Exits non-zero on any violation.
# See benches/harness/chaos.rs.
#
# Usage: hack/chaos.sh [--seed S] [--peers 500] [--kills 50] [--window SECONDS] ...
# Results: benches/results/chaos-seed<S>.md; logs: target/chaos/ (controller-seed<S>.log,
# controller-seed<S>.second.log).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
ABO_TOOLS_BIN="$(hack/build-tools.sh | tail -n 1)"
export ABO_TOOLS_BIN
exec cargo bench --bench chaos -- "$@"
