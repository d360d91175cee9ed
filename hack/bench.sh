#!/usr/bin/env bash
# Scale benchmark (issues #8, #18): a local control plane, the VPC API emulator with per-call
# latency, a Pending duration, read-after-write lag and the account's API quotas, the
# controller as its own process; N BgpPeers created, Ready-timed, steady state measured,
# deleted. See benches/scale.rs.
#
# Usage: hack/bench.sh [args of benches/scale.rs]      (default: --n 100 --n 1000)
#   hack/bench.sh --n 1000 --n 5000                      (fleet: groups of 4, 3 regions, 2 accounts)
#   hack/bench.sh --n 1000 --quota-model shared          (one 20 calls/s quota for all operations)
#   hack/bench.sh --n 1000 --topology groups --groups 4  (the older topology, for comparison)
#   hack/bench.sh --n 100 --single 20                    (and 20 single objects, one at a time)
# Topologies: fleet (default), groups, quota-layout. Quota models: per-operation (default), shared.
# Results: benches/results/{summary.md,scale-<topology>-<model>-n<N>.json,ready-…csv,ready-over-time.png}
# Logs: target/bench/ (control plane, controller). N = 1,000 takes ~6 min, N = 5,000 ~25 min on
# 2 cores; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
args=("$@")
((${#args[@]})) || args=(--n 100 --n 1000)

echo "== control plane binaries" >&2
ABO_TOOLS_BIN="$(hack/build-tools.sh | tail -n 1)"
export ABO_TOOLS_BIN

echo "== plotting environment (matplotlib in target/bench-venv)" >&2
venv=target/bench-venv
if ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'matplotlib>=3.8'
fi

echo "== cargo bench --bench scale -- ${args[*]}" >&2
cargo bench --bench scale -- "${args[@]}"

echo "== plot" >&2
"$venv/bin/python" benches/plot.py benches/results
