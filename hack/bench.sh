#!/usr/bin/env bash
# Scale benchmark (issue #8): a local control plane, the VPC API emulator with per-call
# latency, a Pending duration and an account QPS limit, the controller as its own process;
# N BgpPeers created, Ready-timed, steady state measured, deleted. See benches/scale.rs.
#
# Usage: hack/bench.sh [args of benches/scale.rs]      (default: --n 100 --n 1000)
#   hack/bench.sh --n 100 --n 1000 --n 5000
#   hack/bench.sh --n 1000 --account-qps 20 --cloud-qps 20 --pending 3
# Results: benches/results/{summary.md,scale-n<N>.json,ready-n<N>.csv,ready-over-time.png}
# Logs: target/bench/ (control plane, controller). Takes ~4 min for N = 1,000 and
# ~25-30 min for N = 5,000 on 2 cores; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0
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
