#!/usr/bin/env bash
# A throwaway Kubernetes control plane (etcd + kube-apiserver, no controllers,
# no nodes) on 127.0.0.1, for tests. Binaries come from hack/build-tools.sh.
#
# Usage:
#   hack/controlplane.sh start  <dir> [--watch-pid PID] [--purge-on-exit]
#   hack/controlplane.sh stop   <dir> [--purge]
#   hack/controlplane.sh status <dir>
#   hack/controlplane.sh restart-apiserver <dir>   # stop kube-apiserver, start it again
#   hack/controlplane.sh env    <dir>      # prints: export KUBECONFIG=<dir>/kubeconfig ...
#
# start: picks free ports, makes a CA, serving cert, admin client cert
#   (O=system:masters) and service-account keys under <dir>/pki, starts etcd
#   and kube-apiserver (RBAC, ServiceAccount admission off), waits for /readyz
#   and writes <dir>/kubeconfig (certs embedded). Logs: <dir>/etcd.log,
#   <dir>/apiserver.log; pids: <dir>/etcd.pid, <dir>/apiserver.pid.
#   With --watch-pid PID a detached watchdog stops the control plane (and with
#   --purge-on-exit deletes <dir>) once process PID is gone.
#   The admin identity may impersonate any user/group (kubectl --as/--as-group).
# stop: SIGTERM, then SIGKILL after 10 s; --purge also deletes <dir>.
# status: exit 0 when both processes run and /readyz answers ok.
# restart-apiserver: SIGTERM kube-apiserver (SIGKILL after 10 s), start it again with
#   the same command line and port (etcd keeps running), wait for /readyz. The pid file
#   stays in place throughout, so a watchdog keeps watching.
#
# Environment:
#   ABO_TOOLS_BIN         directory with etcd, kube-apiserver, kubectl (default:
#                         output of hack/build-tools.sh, which builds if needed)
#   ABO_CP_START_TIMEOUT  seconds to wait for /readyz (default 90)
#   ABO_CP_APISERVER_ARGS extra kube-apiserver flags (space separated)
# Several control planes may run at once in different dirs.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HACK_DIR/$(basename "${BASH_SOURCE[0]}")"

log() { echo "controlplane: $*" >&2; }
die() { echo "controlplane: ERROR: $*" >&2; exit 1; }
usage() { sed -n '2,34p' "$SELF" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cmd="${1:-}"; dir_arg="${2:-}"
[[ -n "$cmd" && -n "$dir_arg" ]] || usage
shift 2

# ---------------------------------------------------------------- helpers
# pid from file $1 if that process is alive and was started for this dir
live_pid() {
  local f="$DIR/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  # guard against pid reuse: the command line must mention our dir
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DIR" || return 1
  echo "$pid"
}

free_ports() { # prints N distinct free loopback ports, one a line
  local n="$1" py
  for py in /usr/bin/python3 python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    "$py" -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
' "$n" 2>/dev/null && return 0
  done
  # fallback: random ports that nothing listens on
  local p i got=" "
  for i in $(seq 1 500); do
    (( n > 0 )) || return 0
    p=$((20000 + RANDOM % 30000))
    [[ "$got" == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; got+="$p "; n=$((n - 1)); fi
  done
  return 1
}

readyz() { # prints the body of /readyz, non-zero if not "ok"
  local port; port="$(cat "$DIR/apiserver.port" 2>/dev/null)" || return 1
  local body
  body="$(curl -sS --max-time 3 --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key" \
    "https://127.0.0.1:$port/readyz" 2>&1)" || { echo "$body"; return 1; }
  echo "$body"
  [[ "$body" == ok ]]
}

stop_pid() { # name
  local name="$1" pid i
  pid="$(live_pid "$name")" || { rm -f "$DIR/$name.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) did not exit after SIGTERM; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$DIR/$name.pid"
}

do_stop() {
  local purge="$1" wd
  # the watchdog first (unless we are it), so that it does not race us
  if wd="$(live_pid watchdog)" && [[ "$wd" != "$$" && "$wd" != "${ABO_CP_WATCHDOG_SELF:-}" ]]; then
    kill -TERM "$wd" 2>/dev/null || true
  fi
  rm -f "$DIR/watchdog.pid"
  stop_pid apiserver
  stop_pid etcd
  if [[ "$purge" == 1 ]]; then
    rm -rf "$DIR"
  fi
}

gen_pki() {
  local pki="$DIR/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    umask 077
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=abo-test-ca" -out ca.crt \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null

    sign() { # name subject extfile-content
      openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
      printf '%b\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    sign apiserver "/CN=kube-apiserver" \
      "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1"
    sign admin "/O=system:masters/CN=abo-admin" \
      "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  ) || die "generating certificates with openssl failed"
}

write_kubeconfig() {
  local port="$1" pki="$DIR/pki" tmp="$DIR/kubeconfig.tmp"
  b64() { base64 -w0 <"$1"; }
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: abo-test
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: abo-admin
  user:
    client-certificate-data: $(b64 "$pki/admin.crt")
    client-key-data: $(b64 "$pki/admin.key")
contexts:
- name: abo-test
  context:
    cluster: abo-test
    user: abo-admin
    namespace: default
current-context: abo-test
EOF
  chmod 600 "$tmp"
  mv -f "$tmp" "$DIR/kubeconfig"
}

tail_logs() {
  local f
  for f in etcd.log apiserver.log; do
    [[ -f "$DIR/$f" ]] || continue
    echo "----- tail -n 40 $DIR/$f -----" >&2
    tail -n 40 "$DIR/$f" >&2
  done
}

# one attempt; returns 0 when ready, 1 on failure (processes stopped), 3 if a
# port was taken (caller may retry)
start_once() {
  local bin="$1" timeout="$2"
  local etcd_port peer_port api_port
  local ports
  ports="$(free_ports 3)" || die "cannot find free ports"
  { read -r etcd_port; read -r peer_port; read -r api_port; } <<<"$ports"
  echo "$etcd_port" >"$DIR/etcd.port"
  echo "$api_port" >"$DIR/apiserver.port"
  rm -rf "$DIR/etcd-data"
  : >"$DIR/etcd.log"; : >"$DIR/apiserver.log"

  local etcd_url="http://127.0.0.1:$etcd_port" peer_url="http://127.0.0.1:$peer_port"
  setsid "$bin/etcd" \
    --name=abo-test \
    --data-dir="$DIR/etcd-data" \
    --listen-client-urls="$etcd_url" --advertise-client-urls="$etcd_url" \
    --listen-peer-urls="$peer_url" --initial-advertise-peer-urls="$peer_url" \
    --initial-cluster="abo-test=$peer_url" \
    --unsafe-no-fsync=true \
    </dev/null >>"$DIR/etcd.log" 2>&1 &
  echo $! >"$DIR/etcd.pid"

  # shellcheck disable=SC2206
  local extra=(${ABO_CP_APISERVER_ARGS:-})
  setsid "$bin/kube-apiserver" \
    --etcd-servers="$etcd_url" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --cert-dir="$DIR/pki" \
    --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" \
    --client-ca-file="$DIR/pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$DIR/pki/sa.pub" \
    --service-account-signing-key-file="$DIR/pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --authorization-mode=RBAC \
    --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    --allow-privileged=true \
    "${extra[@]}" \
    </dev/null >>"$DIR/apiserver.log" 2>&1 &
  echo $! >"$DIR/apiserver.pid"

  local deadline=$((SECONDS + timeout)) last=""
  while ((SECONDS < deadline)); do
    if last="$(readyz)"; then
      return 0
    fi
    if ! live_pid etcd >/dev/null || ! live_pid apiserver >/dev/null; then
      if grep -qiE "address already in use" "$DIR/etcd.log" "$DIR/apiserver.log" 2>/dev/null; then
        do_stop 0; return 3
      fi
      log "etcd or kube-apiserver exited during start-up"
      tail_logs; do_stop 0; return 1
    fi
    sleep 0.2
  done
  log "kube-apiserver not ready after ${timeout}s; last /readyz: $last"
  tail_logs; do_stop 0; return 1
}

# ---------------------------------------------------------------- commands
case "$cmd" in
  start)
    watch_pid="" purge_on_exit=0
    while (($#)); do
      case "$1" in
        --watch-pid) watch_pid="${2:?--watch-pid needs a pid}"; shift 2 ;;
        --purge-on-exit) purge_on_exit=1; shift ;;
        *) usage ;;
      esac
    done
    mkdir -p "$dir_arg"
    DIR="$(cd "$dir_arg" && pwd)"
    if live_pid apiserver >/dev/null || live_pid etcd >/dev/null; then
      die "a control plane is already running in $DIR (hack/controlplane.sh stop $DIR)"
    fi
    command -v openssl >/dev/null || die "openssl not found"
    command -v curl >/dev/null || die "curl not found"
    if [[ -n "${ABO_TOOLS_BIN:-}" ]]; then
      bin="$ABO_TOOLS_BIN"
    else
      bin="$("$HACK_DIR/build-tools.sh" | tail -n1)" || die "hack/build-tools.sh failed"
    fi
    for b in etcd kube-apiserver; do [[ -x "$bin/$b" ]] || die "$bin/$b missing (run hack/build-tools.sh)"; done

    t0=$(date +%s.%N)
    trap 'do_stop 0; exit 130' INT TERM
    gen_pki
    timeout="${ABO_CP_START_TIMEOUT:-90}"
    rc=3
    for attempt in 1 2 3; do
      set +e; start_once "$bin" "$timeout"; rc=$?; set -e
      [[ $rc == 3 ]] || break
      log "port collision; retrying (attempt $attempt)"
    done
    if [[ $rc != 0 ]]; then
      [[ $rc == 3 ]] && tail_logs
      die "failed to start control plane in $DIR"
    fi
    trap - INT TERM
    write_kubeconfig "$(cat "$DIR/apiserver.port")"
    ln -sf "$bin" "$DIR/bin"

    if [[ -n "$watch_pid" ]]; then
      purge_flag=""; [[ $purge_on_exit == 1 ]] && purge_flag="--purge"
      # detached; stdio closed so it never holds a caller's pipe open
      setsid bash -c '
        export ABO_CP_WATCHDOG_SELF=$$
        while kill -0 "$2" 2>/dev/null; do
          [[ -f "$1/apiserver.pid" ]] || exit 0
          sleep 1
        done
        exec "$0" stop "$1" $3
      ' "$SELF" "$DIR" "$watch_pid" "$purge_flag" </dev/null >>"$DIR/watchdog.log" 2>&1 &
      echo $! >"$DIR/watchdog.pid"
    fi
    t1=$(date +%s.%N)
    log "ready in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')s: https://127.0.0.1:$(cat "$DIR/apiserver.port") (etcd $(cat "$DIR/etcd.port"))"
    echo "$DIR/kubeconfig"
    ;;
  stop)
    purge=0
    [[ "${1:-}" == --purge ]] && purge=1
    [[ -d "$dir_arg" ]] || exit 0
    DIR="$(cd "$dir_arg" && pwd)"
    do_stop "$purge"
    ;;
  status)
    [[ -d "$dir_arg" ]] || { echo "not running (no $dir_arg)"; exit 1; }
    DIR="$(cd "$dir_arg" && pwd)"
    rc=0
    for p in etcd apiserver watchdog; do
      if pid="$(live_pid $p)"; then echo "$p: running (pid $pid)"; else
        echo "$p: not running"; [[ $p == watchdog ]] || rc=1
      fi
    done
    if body="$(readyz)"; then echo "readyz: ok (https://127.0.0.1:$(cat "$DIR/apiserver.port"))"; else
      echo "readyz: not ready: ${body:-no answer}"; rc=1
    fi
    echo "kubeconfig: $DIR/kubeconfig"
    exit $rc
    ;;
  restart-apiserver)
    DIR="$(cd "$dir_arg" && pwd)"
    pid="$(live_pid apiserver)" || die "no kube-apiserver of $DIR is running"
    mapfile -d '' argv <"/proc/$pid/cmdline"
    ((${#argv[@]} > 0)) || die "cannot read the command line of kube-apiserver (pid $pid)"
    t0=$(date +%s.%N)
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "kube-apiserver (pid $pid) did not exit after SIGTERM; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    setsid "${argv[@]}" </dev/null >>"$DIR/apiserver.log" 2>&1 &
    echo $! >"$DIR/apiserver.pid"
    deadline=$((SECONDS + ${ABO_CP_START_TIMEOUT:-90}))
    until readyz >/dev/null; do
      live_pid apiserver >/dev/null || { tail_logs; die "kube-apiserver exited during restart"; }
      ((SECONDS < deadline)) || { tail_logs; die "kube-apiserver not ready after restart"; }
      sleep 0.2
    done
    log "kube-apiserver restarted in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
    ;;
  env)
    DIR="$(cd "$dir_arg" && pwd)"
    echo "export KUBECONFIG=$DIR/kubeconfig"
    [[ -e "$DIR/bin" ]] && echo "export PATH=$(readlink -f "$DIR/bin"):\$PATH"
    ;;
  *) usage ;;
esac
