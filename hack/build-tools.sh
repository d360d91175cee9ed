#!/usr/bin/env bash
# Build the test tool binaries (kube-apiserver, etcd, kubectl, helm, promtool) from
# the Go module proxy, into a cache outside the clone:
#
#   ${ABO_TOOLS_DIR:-$HOME/.cache/alicloud-bgp-operator/tools/<key>}/bin
#
# <key> holds the pinned versions and a hash of hack/tools/{,helm/}go.{mod,sum},
# the Go version and the build flags, so any change rebuilds. promtool (its own
# module, hack/tools/promtool) has its own key inside that dir, so pinning another
# Prometheus rebuilds only promtool. When the binaries are already there it
# returns at once.
#
# Usage:
#   hack/build-tools.sh              build if needed; last stdout line = bin dir
#   hack/build-tools.sh --print-dir  only print the bin dir (no build)
#   hack/build-tools.sh --check      exit 0 if everything is built, 1 if not
#   hack/build-tools.sh --force      rebuild even if present
#
# All progress goes to stderr; stdout carries only the bin dir.
# Cold build on 2 cores takes roughly 15-20 min (kube-apiserver alone ~10;
# promtool, cold module download and build, ~6 min);
# go's build cache (~/.cache/go-build) stays at its default place.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS_DIR="$HACK_DIR/tools"
HELM_MOD_DIR="$TOOLS_DIR/helm"
PROMTOOL_MOD_DIR="$TOOLS_DIR/promtool"

mode=build
case "${1:-}" in
  "") ;;
  --print-dir) mode=print ;;
  --check) mode=check ;;
  --force) mode=force ;;
  -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "build-tools.sh: unknown argument: $1" >&2; exit 2 ;;
esac

log() { echo "build-tools: $*" >&2; }
die() { echo "build-tools: ERROR: $*" >&2; exit 1; }

# version of module $2 in go.mod $1 (a require line: "<mod> <ver>")
modver() { awk -v m="$2" '($1==m && $2 ~ /^v/){print $2; exit} ($1=="require" && $2==m){print $3; exit}' "$1"; }

K8S_VERSION="$(modver "$TOOLS_DIR/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(modver "$TOOLS_DIR/go.mod" go.etcd.io/etcd/server/v3)"
HELM_VERSION="$(modver "$HELM_MOD_DIR/go.mod" helm.sh/helm/v3)"
HELM_K8S_VERSION="$(modver "$HELM_MOD_DIR/go.mod" k8s.io/client-go)"
PROM_VERSION="$(modver "$PROMTOOL_MOD_DIR/go.mod" github.com/prometheus/prometheus)"
[[ -n "$K8S_VERSION" && -n "$ETCD_VERSION" && -n "$HELM_VERSION" && -n "$HELM_K8S_VERSION" ]] ||
  die "cannot read pinned versions from hack/tools/go.mod / hack/tools/helm/go.mod (k8s='$K8S_VERSION' etcd='$ETCD_VERSION' helm='$HELM_VERSION' helm-client-go='$HELM_K8S_VERSION')"
[[ "$K8S_VERSION" =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "unexpected k8s.io/kubernetes version $K8S_VERSION"
K8S_MAJOR="${BASH_REMATCH[1]}" K8S_MINOR="${BASH_REMATCH[2]}"
[[ "$HELM_K8S_VERSION" =~ ^v0\.([0-9]+)\. ]] || die "unexpected helm client-go version $HELM_K8S_VERSION"
HELM_K8S_MINOR="${BASH_REMATCH[1]}"
# Prometheus 3.x is published as module versions v0.3MM.P (v0.316.0 = 3.16.0).
[[ "$PROM_VERSION" =~ ^v0\.3([0-9][0-9])\.([0-9]+)$ ]] || die "unexpected github.com/prometheus/prometheus version '$PROM_VERSION' in hack/tools/promtool/go.mod"
PROMTOOL_RELEASE="3.$((10#${BASH_REMATCH[1]})).${BASH_REMATCH[2]}"

K8S_LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$K8S_MAJOR -X $pkg.gitMinor=$K8S_MINOR -X $pkg.gitTreeState=clean"
done
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.metadata="
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  HELM_LDFLAGS+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
done

PROMTOOL_LDFLAGS="-s -w -X github.com/prometheus/common/version.Version=$PROMTOOL_RELEASE -X github.com/prometheus/common/version.Branch=release -X github.com/prometheus/common/version.Revision=$PROM_VERSION"

# name | module dir | package | ldflags
TARGETS=(
  "kube-apiserver|$TOOLS_DIR|k8s.io/kubernetes/cmd/kube-apiserver|$K8S_LDFLAGS"
  "etcd|$TOOLS_DIR|go.etcd.io/etcd/server/v3|-s -w"
  "kubectl|$TOOLS_DIR|k8s.io/kubernetes/cmd/kubectl|$K8S_LDFLAGS"
  "helm|$HELM_MOD_DIR|helm.sh/helm/v3/cmd/helm|$HELM_LDFLAGS"
)
# Built into the same dir under their own key (below).
EXTRA_TARGETS=(
  "promtool|$PROMTOOL_MOD_DIR|github.com/prometheus/prometheus/cmd/promtool|$PROMTOOL_LDFLAGS"
)

go_version="$(go env GOVERSION 2>/dev/null)" || die "go not found in PATH"
hash="$(
  {
    cat "$TOOLS_DIR/go.mod" "$TOOLS_DIR/go.sum" "$HELM_MOD_DIR/go.mod" "$HELM_MOD_DIR/go.sum"
    echo "$go_version $(go env GOOS GOARCH)"
    printf '%s\n' "${TARGETS[@]}"
  } | sha256sum | cut -c1-12
)"
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_${hash}"
OUT_DIR="${ABO_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/alicloud-bgp-operator/tools/$KEY}"
BIN_DIR="$OUT_DIR/bin"
STAMP="$BIN_DIR/.stamp"
PROMTOOL_KEY="${KEY}_promtool-${PROM_VERSION}_$(
  {
    cat "$PROMTOOL_MOD_DIR/go.mod" "$PROMTOOL_MOD_DIR/go.sum"
    echo "$go_version $(go env GOOS GOARCH)"
    printf '%s\n' "${EXTRA_TARGETS[@]}"
  } | sha256sum | cut -c1-12
)"

# the key a target's binary must have been built with
key_of() { case "$1" in promtool) echo "$PROMTOOL_KEY" ;; *) echo "$KEY" ;; esac; }

built() {
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$KEY" ]] || return 1
  local t name
  for t in "${TARGETS[@]}"; do [[ -x "$BIN_DIR/${t%%|*}" ]] || return 1; done
  for t in "${EXTRA_TARGETS[@]}"; do
    name="${t%%|*}"
    [[ -x "$BIN_DIR/$name" && -f "$BIN_DIR/.$name.key" && "$(cat "$BIN_DIR/.$name.key")" == "$(key_of "$name")" ]] || return 1
  done
}

case "$mode" in
  print) echo "$BIN_DIR"; exit 0 ;;
  check) built; exit $? ;;
  build) if built; then echo "$BIN_DIR"; exit 0; fi ;;
esac

mkdir -p "$OUT_DIR"
# One builder at a time per cache dir (parallel test binaries may all call us).
exec 9>"$OUT_DIR/.lock"
if ! flock -n 9; then
  log "another build-tools.sh is building into $OUT_DIR; waiting for it"
  flock 9
fi
if [[ "$mode" != force ]] && built; then echo "$BIN_DIR"; exit 0; fi

log "building into $BIN_DIR"
log "k8s.io/kubernetes $K8S_VERSION, go.etcd.io/etcd/server/v3 $ETCD_VERSION, helm.sh/helm/v3 $HELM_VERSION, prometheus $PROM_VERSION (promtool $PROMTOOL_RELEASE), $go_version"
mkdir -p "$BIN_DIR"
rm -f "$STAMP"
export CGO_ENABLED=0
# keep flags from `go env -w GOFLAGS=...`; -mod=mod lets go fill in a missing go.sum line
GOFLAGS="$(go env GOFLAGS)"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
total_start=$SECONDS
for t in "${TARGETS[@]}" "${EXTRA_TARGETS[@]}"; do
  IFS='|' read -r name moddir pkg ldflags <<<"$t"
  tkey="$(key_of "$name")"
  if [[ "$mode" != force && -x "$BIN_DIR/$name" && -f "$BIN_DIR/.$name.key" && "$(cat "$BIN_DIR/.$name.key")" == "$tkey" ]]; then
    log "$name: already built"
    continue
  fi
  modpath="$(awk '$1=="module"{print $2; exit}' "$moddir/go.mod")"
  log "$name: go build $pkg (module $modpath) ..."
  start=$SECONDS
  tmp="$BIN_DIR/.$name.tmp.$$"
  if ! (cd "$moddir" && go build -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg"); then
    rm -f "$tmp"
    die "failed to build $name: package $pkg in wrapper module $modpath ($moddir; k8s.io/kubernetes $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION, prometheus $PROM_VERSION, $go_version). See go's error above."
  fi
  mv -f "$tmp" "$BIN_DIR/$name"
  echo "$tkey" >"$BIN_DIR/.$name.key"
  log "$name: built in $((SECONDS - start))s ($(du -h "$BIN_DIR/$name" | cut -f1))"
done
echo "$KEY" >"$STAMP"
log "all tools built in $((SECONDS - total_start))s"
echo "$BIN_DIR"
