#!/usr/bin/env bash
# Provision the Debian trixie root with real HTCondor daemons that the test suite's pool runs
# from (tests/support/condor_pool.py). Run as root; idempotent: a complete root is marked by
# $ROOT/.elastiq-provisioned (written last, so an interrupted run is redone from scratch).
#
#   .ci/provision-htcondor-root.sh            # ROOT defaults to /var/lib/elastiq-ci/trixie
#   ELASTIQ_CI_ROOT=/some/dir .ci/provision-htcondor-root.sh
#
# The Debian mirror is read at run time from this machine's own apt sources; the unprivileged
# test user (jobs owned by root are refused by the schedd) is created with the same uid/gid on
# the host and inside the root.
set -euo pipefail

ROOT=${ELASTIQ_CI_ROOT:-/var/lib/elastiq-ci/trixie}
SUITE=trixie
MARKER=$ROOT/.elastiq-provisioned
TEST_USER=${ELASTIQ_CI_USER:-elastiq-ci}

log() { echo "provision-htcondor-root: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
[ -r /etc/debian_version ] || { log "not a Debian host (no /etc/debian_version)"; exit 1; }

if [ -e "$MARKER" ]; then
    log "$ROOT already provisioned ($(cat "$MARKER")); nothing to do"
    exit 0
fi

# The first enabled 'deb' mirror of the machine's apt sources that is not a security archive.
apt_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk 'BEGIN { RS=""; FS="\n" }
             {
               types=""; uris=""; suites=""; enabled="yes"
               for (i = 1; i <= NF; i++) {
                 if ($i ~ /^Types:/)   { types = $i }
                 if ($i ~ /^URIs:/)    { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
                 if ($i ~ /^Suites:/)  { suites = $i }
                 if ($i ~ /^Enabled:[ \t]*no/) { enabled = "no" }
               }
               if (enabled == "yes" && types ~ /(^|[ \t])deb([ \t]|$)/ && suites !~ /-security/ && uris != "") {
                 split(uris, u, /[ \t]+/); print u[1]; exit
               }
             }' "$f"
    done | head -n1
    if [ -r /etc/apt/sources.list ]; then
        awk '$1 == "deb" && $0 !~ /-security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
            /etc/apt/sources.list
    fi
}

MIRROR=${ELASTIQ_CI_MIRROR:-$(apt_mirror | head -n1)}
[ -n "$MIRROR" ] || { log "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"; exit 1; }

start=$(date +%s)
if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap on the host"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
fi

# An unfinished root (no marker) is redone from scratch; refuse to remove one with mounts in it.
if [ -e "$ROOT" ]; then
    if grep -q " $ROOT/" /proc/mounts; then
        log "$ROOT is incomplete and has mounts inside; unmount them first:"
        grep " $ROOT/" /proc/mounts >&2
        exit 1
    fi
    log "removing the incomplete $ROOT"
    rm -rf --one-file-system "$ROOT"
fi
mkdir -p "$(dirname "$ROOT")"

log "debootstrap $SUITE from $MIRROR into $ROOT"
t0=$(date +%s)
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$(dirname "$ROOT")/debootstrap.log" 2>&1 \
    || { log "debootstrap failed, see $(dirname "$ROOT")/debootstrap.log"; tail -n 20 "$(dirname "$ROOT")/debootstrap.log" >&2; exit 1; }
t1=$(date +%s)

log "installing htcondor inside the root"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
# No daemon may start inside the root while packages are installed.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
mounted_proc=
if ! grep -q " $ROOT/proc " /proc/mounts; then
    mount -t proc proc "$ROOT/proc" && mounted_proc=1
fi
cleanup() { [ -z "$mounted_proc" ] || umount "$ROOT/proc" || true; }
trap cleanup EXIT
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get update -q
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends htcondor
chroot "$ROOT" apt-get clean
t2=$(date +%s)

# The unprivileged test user: same uid/gid on the host and inside the root.
if ! getent passwd "$TEST_USER" >/dev/null; then
    log "creating the host user $TEST_USER"
    useradd --user-group --create-home --shell /bin/sh "$TEST_USER"
fi
uid=$(id -u "$TEST_USER")
gid=$(id -g "$TEST_USER")
if ! chroot "$ROOT" getent group "$gid" >/dev/null; then
    chroot "$ROOT" groupadd --gid "$gid" "$TEST_USER"
fi
if ! chroot "$ROOT" getent passwd "$TEST_USER" >/dev/null; then
    chroot "$ROOT" useradd --uid "$uid" --gid "$gid" --create-home --shell /bin/sh "$TEST_USER"
fi
[ "$(chroot "$ROOT" id -u "$TEST_USER")" = "$uid" ] \
    || { log "$TEST_USER has another uid inside the root than on the host ($uid)"; exit 1; }

version=$(chroot "$ROOT" /usr/sbin/condor_master -version 2>/dev/null | head -n1 || true)
echo "$SUITE $(date -u +%Y-%m-%dT%H:%M:%SZ) user=$TEST_USER uid=$uid $version" >"$MARKER.tmp"
mv "$MARKER.tmp" "$MARKER"
end=$(date +%s)
log "done in $((end - start)) s (debootstrap $((t1 - t0)) s, htcondor $((t2 - t1)) s): $version"
