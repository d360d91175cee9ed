#!/usr/bin/env bash
# Crash-chaos run (issue #8): >= 500 BgpPeers created and a share deleted while the
# controller process is kill -9'ed at >= 50 seeded random moments and restarted; the
# apiserver is restarted once; the emulator answers 503 to ~30 % of calls for a period and
# throttles for another. Then it heals, waits for convergence and checks: every surviving
# object Ready, the emulator holds exactly the expected peers, 0 duplicates, 0 leaks,
# 0 stuck finalizers. Exits non-zero on any violation. See benches/harness/chaos.rs.
#
# Usage: hack/chaos.sh [--seed S] [--peers 500] [--kills 50] [--window SECONDS] ...
# Results: benches/results/chaos-seed<S>.md; logs: target/chaos/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
ABO_TOOLS_BIN="$(hack/build-tools.sh | tail -n 1)"
export ABO_TOOLS_BIN
exec cargo bench --bench chaos -- "$@"
