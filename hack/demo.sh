#!/usr/bin/env bash
# The main job (`make demo`): on the embedded default, start the VPC API emulator, a local
# Kubernetes control plane (etcd + kube-apiserver) and the controller; apply the sample
# BgpPeer; wait until it is Ready; show it from both sides; keep running until Ctrl-C.
#
# Usage: hack/demo.sh [--once]     --once: exit (and tear down) after the first success
# Everything it starts is stopped on exit. Logs: $ABO_DEMO_DIR (default: a temp dir).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

once=false
for arg in "$@"; do
  case "$arg" in
    --once) once=true ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
demo_dir="${ABO_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/abo-demo.XXXXXX")}"
mkdir -p "$demo_dir"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  hack/controlplane.sh stop "$demo_dir/cp" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Building the operator (cargo build)"
cargo build -q --bin alicloud-bgp-operator
bin="$PWD/target/debug/alicloud-bgp-operator"

say "Building kube-apiserver, etcd and kubectl from the Go module proxy (cached after the first run)"
tools="$(hack/build-tools.sh | tail -n 1)"
export ABO_TOOLS_BIN="$tools"
kubectl="$tools/kubectl"

say "Starting the VPC API emulator (embedded demo configuration)"
"$bin" emulator --listen 127.0.0.1:0 --print-endpoint >"$demo_dir/emulator.out" 2>"$demo_dir/emulator.log" &
pids+=($!)
for _ in $(seq 1 100); do
  endpoint="$(head -n 1 "$demo_dir/emulator.out" 2>/dev/null || true)"
  [[ "$endpoint" == http://* ]] && break
  sleep 0.1
done
[[ "${endpoint:-}" == http://* ]] || { echo "emulator did not start:"; tail -n 20 "$demo_dir/emulator.log"; exit 1; }
echo "emulator: $endpoint (log: $demo_dir/emulator.log)"

say "Starting a local Kubernetes control plane"
hack/controlplane.sh start "$demo_dir/cp" --watch-pid $$ >&2
export KUBECONFIG="$demo_dir/cp/kubeconfig"

say "Installing the BgpPeer CRD"
"$kubectl" apply --server-side -f crds/
"$kubectl" wait --for=condition=Established crd/bgppeers.vpc.alicloud.dev --timeout=60s
# The BgpGroup controller starts only if its CRD is served when the controller starts.
"$kubectl" wait --for=condition=Established crd/bgpgroups.vpc.alicloud.dev --timeout=60s

say "Starting the controller"
# The emulator's well-known demo key (emulator-only; a real install uses a Secret or RRSA).
export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tEmulatorDemoKey01
export ALIBABA_CLOUD_ACCESS_KEY_SECRET=EmulatorDemoSecretNotForProduction01
"$bin" run --endpoint "$endpoint" --sts-endpoint "$endpoint" --resync-period 60s --poll-interval 1s --metrics-addr 127.0.0.1:0 \
  --log-format json >"$demo_dir/controller.log" 2>&1 &
pids+=($!)
metrics=""
for _ in $(seq 1 100); do
  metrics="$(grep -o '"addr":"[0-9.:]*"' "$demo_dir/controller.log" 2>/dev/null | head -n 1 | cut -d'"' -f4 || true)"
  [[ -n "$metrics" ]] && break
  sleep 0.1
done
echo "controller log (JSON): $demo_dir/controller.log; metrics: http://${metrics:-?}/metrics"

say "Applying deploy/samples/bgppeer.yaml"
"$kubectl" apply -f deploy/samples/bgppeer.yaml
if ! "$kubectl" wait --for=condition=Ready bgppeer/onprem-router-a --timeout=120s; then
  echo "the sample did not become Ready; controller log:" >&2
  tail -n 40 "$demo_dir/controller.log" >&2
  "$kubectl" get bgppeer onprem-router-a -o yaml >&2 || true
  exit 1
fi

say "Applying deploy/samples/bgpgroup.yaml (a BgpGroup with an MD5 key Secret, and 3 BgpPeers in it)"
"$kubectl" apply -f deploy/samples/bgpgroup.yaml
for obj in bgpgroup/onprem-dc1 bgppeer/dc1-router-a bgppeer/dc1-router-b bgppeer/dc1-router-c; do
  if ! "$kubectl" wait --for=condition=Ready "$obj" --timeout=120s; then
    echo "$obj did not become Ready; controller log:" >&2
    tail -n 40 "$demo_dir/controller.log" >&2
    "$kubectl" get "$obj" -o yaml >&2 || true
    exit 1
  fi
done

say "kubectl get bgpgroups,bgppeers -o wide"
"$kubectl" get bgpgroups -o wide
"$kubectl" get bgppeers -o wide

say "The cloud's view (DescribeBgpPeers through the emulator)"
"$bin" cloud describe-bgp-peers --region cn-shanghai --endpoint "$endpoint"

if [[ -n "$metrics" ]]; then
  say "Controller metrics (excerpt of http://$metrics/metrics)"
  curl -fsS "http://$metrics/metrics" | grep -E '^alicloud_bgp_operator_(cloud_api_calls_total|bgppeers)' || true
fi

say "Status conditions"
"$kubectl" get bgppeer onprem-router-a -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'

if $once; then
  say "Demo succeeded (--once): tearing down"
  exit 0
fi
say "Running. Try: KUBECONFIG=$KUBECONFIG $kubectl edit bgppeer onprem-router-a   (Ctrl-C to stop)"
wait
