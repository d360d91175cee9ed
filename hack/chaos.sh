#!/usr/bin/env bash
# Crash-chaos run (issues #8, #12, #16, #18): >= 500 BgpPeers created and a share deleted while
# the controller process is kill -9'ed at >= 50 seeded random moments and restarted; the
# apiserver is restarted once; the emulator answers 503 to ~30 % of calls for a period and
# lowers its quotas to 5 calls/s for another. The cloud has a 3 s read-after-write lag (--lag)
# and the real 8-peers-per-VBR quota. Default --topology fleet (issue 18): groups of 4 on a VBR
# each, 3 regions, account A (operator-wide key) in two and account B (per-object Secrets) in
# the third, 20 % other owners' peers, 20 calls/s per operation and account; --topology
# quota-layout is the older one (one region and account, 2 groups x (2 + 1 foreign) per VBR,
# 50 calls/s per key). A second controller runs next to the first for 30 % of the window
# (--second-controller); 40 objects use a credentials Secret switched to another account's
# keys for 35 % of the window and back (--switch-objects, --switch-period; on the fleet, A's
# objects to B's keys and B's to A's). Then it heals, waits for convergence and checks: every
# surviving object Ready, the emulator holds exactly the expected peers, 0 duplicates, 0 leaks,
# 0 stuck finalizers, foreign peers untouched, 0 writes with the other account's keys,
# deletions held while switched, AccountMismatch seen. Exits non-zero on any violation.
# See benches/harness/chaos.rs.
#
# Usage: hack/chaos.sh [--topology fleet|quota-layout] [--seed S] [--peers 500] [--kills 50] ...
# Results: benches/results/chaos-fleet-seed<S>.md (quota-layout: chaos-seed<S>.md); logs:
# target/chaos/ (controller-fleet-seed<S>.log, controller-fleet-seed<S>.second.log, and the
# end state as .emulator.json / .objects.json next to them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
ABO_TOOLS_BIN="$(hack/build-tools.sh | tail -n 1)"
export ABO_TOOLS_BIN
exec cargo bench --bench chaos -- "$@"
