#!/usr/bin/env bash
# Provision Slurm in the trixie root (after .ci/provision-htcondor-root.sh): Debian 13's
# slurmctld, slurmd, slurm-client and munge, which the test suite's Slurm cluster runs from
# (tests/support/slurm_cluster.py). Run as root; idempotent: done when
# $ROOT/.elastiq-slurm-provisioned exists (written last).
#
#   .ci/provision-slurm.sh            # ROOT defaults to /var/lib/elastiq-ci/trixie
#
# The packages come from the mirror the root was bootstrapped from (its own apt sources). No
# daemon starts while they are installed (the root's policy-rc.d); no key or slurm.conf is made
# here: the tests make their own per session.
set -euo pipefail

ROOT=${ELASTIQ_CI_ROOT:-/var/lib/elastiq-ci/trixie}
MARKER=$ROOT/.elastiq-slurm-provisioned
PACKAGES=(slurmctld slurmd slurm-client munge)
HERE=$(cd "$(dirname "$0")" && pwd)

log() { echo "provision-slurm: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
[ -e "$ROOT/.elastiq-provisioned" ] || { log "$ROOT is not provisioned: run .ci/provision-htcondor-root.sh first"; exit 1; }
if [ -e "$MARKER" ]; then
    log "$ROOT already has slurm ($(cat "$MARKER")); nothing to do"
    exit 0
fi
# shellcheck disable=SC1091 # .ci/lib.sh, checked on its own
. "$HERE/lib.sh"

start=$(date +%s)
log "installing ${PACKAGES[*]} inside $ROOT"
in_root apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" \
    || { in_root apt-get update -q && in_root apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"; }
in_root apt-get clean
# The packages' own key and state are not used by the tests; a stray one must not be mistaken
# for theirs.
rm -f "$ROOT/etc/munge/munge.key"
end=$(date +%s)

version=$(in_root slurmctld -V)
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $version $(in_root munged --version 2>&1 | head -n1)" >"$MARKER.tmp"
mv "$MARKER.tmp" "$MARKER"
log "done in $((end - start)) s: $version"
