#!/usr/bin/env bash
# Makes Docker usable on a Debian machine where it may be missing (a fresh CI machine), so
# that tests/conformance/test_container.py runs. When `docker info` already works, it does
# nothing. Otherwise, as root: installs Debian's docker.io when `docker` or `dockerd` is
# missing, starts dockerd in the background (log: /tmp/imageplane-dockerd.log) unless one
# is already starting, and waits up to IMAGEPLANE_DOCKER_WAIT seconds (60) for `docker info`.
# dockerd's defaults (overlay2, iptables, the docker0 bridge) work on such a machine; if it
# dies at start, it is started once more with vfs and without iptables (`docker run -p`
# then goes through docker-proxy). Exits non-zero, saying why, when Docker stays unusable.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

log=/tmp/imageplane-dockerd.log
wait_seconds=${IMAGEPLANE_DOCKER_WAIT:-60}

fail() {
    echo "ensure-docker: $*" >&2
    exit 1
}

docker info >/dev/null 2>&1 && exit 0
[[ $(id -u) == 0 ]] || fail "Docker is not usable (docker info fails) and only root may install or start it"

if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; then
    command -v apt-get >/dev/null || fail "docker or dockerd is missing and there is no apt-get to install docker.io"
    echo "== installing docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

# Waits until `docker info` works (0), or dockerd $1 exits (1), or time runs out (2).
wait_for_daemon() {
    local deadline=$((SECONDS + wait_seconds))
    until docker info >/dev/null 2>&1; do
        kill -0 "$1" 2>/dev/null || return 1
        ((SECONDS < deadline)) || return 2
        sleep 1
    done
}

# A dockerd that is already running (its pid file names a live process) may be starting:
# wait for it rather than start a second one; start one below only if it exits.
if pid=$(cat /var/run/docker.pid 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
    status=0
    wait_for_daemon "$pid" || status=$?
    ((status != 0)) || exit 0
    ((status == 1)) || fail "the running dockerd (pid $pid) does not answer docker info within ${wait_seconds}s"
fi

status=1
for options in "" "--storage-driver=vfs --iptables=false"; do
    echo "== starting dockerd${options:+ $options} (log: $log)"
    # Its own session, no terminal, and no pipe of ours held open: it outlives this script.
    # shellcheck disable=SC2086 # $options is a list of words
    setsid dockerd $options </dev/null >>"$log" 2>&1 &
    pid=$!
    status=0
    wait_for_daemon "$pid" || status=$?
    ((status == 1)) || break # up, or still starting after the wait: no second try
done
case $status in
    0) docker info --format 'ensure-docker: Docker {{.ServerVersion}}, storage driver {{.Driver}}' ;;
    1) fail "dockerd exited at start; the end of $log:"$'\n'"$(tail -n 20 "$log")" ;;
    *) fail "dockerd did not answer docker info within ${wait_seconds}s; the end of $log:"$'\n'"$(tail -n 20 "$log")" ;;
esac
