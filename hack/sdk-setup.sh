#!/usr/bin/env bash
# Install the pinned official Alibaba Cloud SDKs used by the emulator
# cross-tests (tests/sdk) into a project-local environment outside git:
#
#   ${ABO_SDK_DIR:-<repo>/target/sdk}/venv   Python venv: tests/sdk/python/requirements.txt
#   ${ABO_SDK_DIR:-<repo>/target/sdk}/node   npm ci of tests/sdk/node/package{,-lock}.json
#
# Everything comes from the package registries (PyPI, npm) through pip and npm.
# A stamp file keyed by the SHA-256 of the pin files and the interpreter
# versions makes a second run return at once; any change reinstalls from
# scratch. Every failure is fatal (a missing python3/node/npm too).
#
# Usage:
#   hack/sdk-setup.sh            install if needed; last stdout line = SDK dir
#   hack/sdk-setup.sh --check    exit 0 if installed and current, 1 if not
#   hack/sdk-setup.sh --force    reinstall even if current
#
# Progress goes to stderr; stdout carries only the SDK dir. The time of the
# last install is kept in <SDK dir>/install-time.txt.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY_PINS="$REPO_DIR/tests/sdk/python/requirements.txt"
NODE_PKG="$REPO_DIR/tests/sdk/node/package.json"
NODE_LOCK="$REPO_DIR/tests/sdk/node/package-lock.json"
SDK_DIR="${ABO_SDK_DIR:-$REPO_DIR/target/sdk}"
PYTHON="${ABO_SDK_PYTHON:-python3}"

mode=install
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  --force) mode=force ;;
  -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "sdk-setup.sh: unknown argument: $1" >&2; exit 2 ;;
esac

log() { echo "sdk-setup: $*" >&2; }
die() { echo "sdk-setup: ERROR: $*" >&2; exit 1; }

for tool in "$PYTHON" node npm sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "required tool '$tool' is not on PATH"
done
for f in "$PY_PINS" "$NODE_PKG" "$NODE_LOCK"; do
  [[ -f "$f" ]] || die "missing pin file $f"
done

py_version="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" ||
  die "cannot run $PYTHON"
node_version="$(node --version)"
key="$(
  {
    cat "$PY_PINS" "$NODE_PKG" "$NODE_LOCK"
    echo "python=$py_version node=$node_version"
  } | sha256sum | cut -d' ' -f1
)"
stamp="$SDK_DIR/.stamp"

if [[ "$mode" != force && -f "$stamp" && "$(cat "$stamp")" == "$key" &&
      -x "$SDK_DIR/venv/bin/python" && -d "$SDK_DIR/node/node_modules" ]]; then
  [[ "$mode" == check ]] || log "SDKs already installed (key ${key:0:12}) in $SDK_DIR"
  echo "$SDK_DIR"
  exit 0
fi
[[ "$mode" != check ]] || { log "SDKs not installed or out of date in $SDK_DIR"; exit 1; }

start=$SECONDS
rm -f "$stamp"
mkdir -p "$SDK_DIR"

# --- Python ---
log "creating venv with $PYTHON $py_version in $SDK_DIR/venv"
rm -rf "$SDK_DIR/venv"
"$PYTHON" -m venv "$SDK_DIR/venv" || die "python3 -m venv failed (is the venv module installed?)"
venv_py="$SDK_DIR/venv/bin/python"
log "pip install --no-deps -r tests/sdk/python/requirements.txt"
"$venv_py" -m pip install --quiet --disable-pip-version-check --no-input --no-deps \
  -r "$PY_PINS" >&2 || die "pip install of the pinned Python SDKs failed"
# --no-deps above installs exactly the pins; pip check proves the closure is complete.
"$venv_py" -m pip check >&2 || die "pinned Python packages are inconsistent (pip check)"
"$venv_py" - <<'EOF' >&2 || die "installed Python SDKs do not import"
import importlib.metadata as md
import alibabacloud_vpc20160428.client, alibabacloud_tea_openapi.models  # noqa: F401
import aliyunsdkcore.client, aliyunsdkvpc.request.v20160428.CreateBgpPeerRequest  # noqa: F401
import alibabacloud_sts20150401.client, pytest  # noqa: F401
for name in ("alibabacloud-vpc20160428", "alibabacloud-tea-openapi", "alibabacloud-credentials",
             "darabonba-core", "aliyun-python-sdk-core", "aliyun-python-sdk-vpc",
             "alibabacloud-sts20150401", "pytest"):
    print("sdk-setup:   %s %s" % (name, md.version(name)))
EOF

# --- Node ---
log "npm ci (tests/sdk/node/package-lock.json) in $SDK_DIR/node"
rm -rf "$SDK_DIR/node"
mkdir -p "$SDK_DIR/node"
cp "$NODE_PKG" "$NODE_LOCK" "$SDK_DIR/node/"
# --ignore-scripts: the only install script in the tree (@alicloud/openapi-core
# postinstall) installs an old TypeScript on Node 10/12 and is a no-op elsewhere.
(cd "$SDK_DIR/node" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) ||
  die "npm ci of the pinned Node SDKs failed"
(cd "$SDK_DIR/node" && node -e '
  for (const name of ["@alicloud/pop-core", "@alicloud/vpc20160428", "@alicloud/openapi-core"]) {
    require(name);
    console.error(`sdk-setup:   ${name} ${require(name + "/package.json").version}`);
  }') || die "installed Node SDKs do not load"

elapsed=$((SECONDS - start))
printf 'installed %s in %ss (python %s, node %s, key %s)\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$elapsed" "$py_version" "$node_version" "$key" \
  >"$SDK_DIR/install-time.txt"
echo "$key" >"$stamp"
log "installed in ${elapsed}s"
echo "$SDK_DIR"
