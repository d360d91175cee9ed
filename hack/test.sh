#!/usr/bin/env bash
# The whole test suite, as CI runs it (`make test`). Builds what it needs; a missing
# part is built or the run fails saying why, never skipped.
#   1. rustfmt, clippy (-D warnings), generated-file drift
#   2. the test control plane binaries (cached), one control plane for the run
#   3. cargo test: unit tests, then integration tests against the control plane + emulator
#   4. the official-SDK cross-tests of the emulator (Python, Node)
#   5. the GitOps health checks (Argo CD Lua, kstatus) and the Dockerfile lint
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS" >&2; }

step "lint"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings

step "generated files are current"
cargo run -q -- crd --output-dir crds
if ! git diff --exit-code -- crds/ || [[ -n "$(git ls-files --others --exclude-standard -- crds/)" ]]; then
  echo "crds/ is stale: run 'make crds' and commit the result" >&2
  exit 1
fi

step "control plane binaries"
bin_dir="$(hack/build-tools.sh | tail -n 1)"
export ABO_TOOLS_BIN="$bin_dir"

step "alert rules (promtool check/test rules on the rendered PrometheusRule) and the Grafana dashboard JSON"
# tests/alerts.rs; the dashboard's metric names are checked against a live /metrics in tests/metrics.rs.
[[ -x "$bin_dir/promtool" ]] || { echo "promtool missing in $bin_dir (hack/build-tools.sh)" >&2; exit 1; }
cargo test -q --test alerts

step "generated deploy files are current (chart CRD copy, manifests, argocd-cm patch; helm lint)"
HELM="$bin_dir/helm" hack/render-manifests.sh --check

step "start the test control plane"
cp_dir="$(mktemp -d "${TMPDIR:-/tmp}/abo-cp.XXXXXX")"
hack/controlplane.sh start "$cp_dir" --watch-pid $$ --purge-on-exit >&2
trap 'hack/controlplane.sh stop "$cp_dir" --purge >/dev/null 2>&1 || true' EXIT
export ABO_TEST_KUBECONFIG="$cp_dir/kubeconfig"

step "cargo test"
cargo build --all-targets
cargo test --all-targets -- --test-threads="${ABO_TEST_THREADS:-4}"

step "official SDK cross-tests"
export ABO_BIN="$PWD/target/debug/alicloud-bgp-operator"
tests/sdk/run.sh

step "GitOps health (Argo CD Lua, kstatus) and Dockerfile lint"
tests/health/run.sh

step "all tests passed"
