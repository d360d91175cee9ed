#!/usr/bin/env bash
# Cross-tests of the VPC emulator with the official Alibaba Cloud SDKs.
#
#   1. hack/sdk-setup.sh installs the pinned SDKs (target/sdk, cached);
#   2. the operator binary is built (skipped when ABO_BIN is set);
#   3. pytest runs tests/sdk/python, then `node --test` runs tests/sdk/node.
#
# Exits non-zero if anything fails. A missing tool (python3, node, npm, cargo)
# is an error, never a skip. Extra arguments go to pytest.
#
# Environment: ABO_BIN (emulator binary), ABO_SDK_DIR (SDK install dir),
# ABO_SDK_PENDING_DELAY (emulator --pending-delay, default 1s).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_DIR"

log() { echo "sdk-tests: $*" >&2; }
die() { echo "sdk-tests: ERROR: $*" >&2; exit 1; }

for tool in python3 node npm; do
  command -v "$tool" >/dev/null 2>&1 || die "required tool '$tool' is not on PATH"
done

sdk_dir="$(hack/sdk-setup.sh | tail -n1)" || die "hack/sdk-setup.sh failed"
[[ -x "$sdk_dir/venv/bin/python" ]] || die "no Python venv in $sdk_dir"
export ABO_SDK_DIR="$sdk_dir"

if [[ -z "${ABO_BIN:-}" ]]; then
  command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH (or set ABO_BIN)"
  log "building the operator binary"
  cargo build --quiet --bin alicloud-bgp-operator || die "cargo build failed"
  export ABO_BIN="$REPO_DIR/target/debug/alicloud-bgp-operator"
fi
[[ -x "$ABO_BIN" ]] || die "emulator binary $ABO_BIN is missing"

status=0
log "pytest tests/sdk/python"
(cd tests/sdk/python && "$sdk_dir/venv/bin/python" -m pytest "$@") || status=1

log "node --test tests/sdk/node"
shopt -s nullglob
node_tests=(tests/sdk/node/*.test.mjs)
((${#node_tests[@]} > 0)) || die "no tests/sdk/node/*.test.mjs found"
node --test "${node_tests[@]}" || status=1

if ((status != 0)); then
  log "FAILED"
else
  log "all SDK cross-tests passed"
fi
exit "$status"
