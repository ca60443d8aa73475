#!/usr/bin/env bash
# Install a real OpenStack Zed (Debian 12 bookworm packages) on this host for
# tests/test_openstack_real.py: Keystone, Glance, Placement, Nova (api, conductor, scheduler and
# python3-nova for nova-compute with the fake driver), neutron-server (ML2, no agents), RabbitMQ
# and MariaDB.
#
# Only installs: no service is started, no database configured, no endpoint registered
# (policy-rc.d exits 101 while installing, debconf is preseeded). tests/support/openstack_cloud.py
# starts private instances of every service on 127.0.0.1 and stops them by pid.
#
# Idempotent: a finished run leaves $MARKER and a later run returns at once. Packages come from
# the machine's own apt sources (plain apt-get). Needs root on Debian 12; elsewhere it says why
# and exits 0 (the tests then skip with the same reason), unless ELASTIQ_REQUIRE_OPENSTACK=1.
set -euo pipefail

MARKER_DIR=/var/lib/elastiq-ci
MARKER=$MARKER_DIR/openstack-zed-neutron.provisioned
PACKAGES=(keystone glance-api placement-api nova-api nova-conductor nova-scheduler python3-nova
          neutron-server rabbitmq-server mariadb-server)

unavailable() {
    echo "provision-openstack: $1" >&2
    if [ "${ELASTIQ_REQUIRE_OPENSTACK:-0}" = 1 ]; then exit 1; fi
    exit 0
}

[ "$(id -u)" = 0 ] || unavailable "not root: the OpenStack test cloud is not installed"
# shellcheck source=/dev/null
. /etc/os-release
[ "${ID:-}" = debian ] && [ "${VERSION_ID:-}" = 12 ] \
    || unavailable "not Debian 12 (found ${PRETTY_NAME:-unknown}): the test cloud needs bookworm's OpenStack Zed"

# The packages' own units are never used (the tests run private instances under their own
# pids): mask them, so nothing starts them and `systemd-analyze verify` of other units does not
# load them (Debian's OpenStack units say After= themselves, which it reports).
mask_units() {
    local unit
    for unit in keystone glance-api placement-api nova-api nova-api-metadata nova-conductor \
                nova-scheduler neutron-api neutron-rpc-server; do
        if [ -e "/lib/systemd/system/$unit.service" ]; then
            ln -sfn /dev/null "/etc/systemd/system/$unit.service"
        fi
    done
}

if [ -e "$MARKER" ]; then
    mask_units
    echo "provision-openstack: already provisioned ($MARKER)"
    exit 0
fi

start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive

# No package may start or enable a service while it is installed.
policy=/usr/sbin/policy-rc.d
policy_was_ours=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    policy_was_ours=1
fi
cleanup() { if [ "$policy_was_ours" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

# No database set-up and no Keystone registration by the packages' maintainer scripts.
{
    for pkg in keystone glance-common glance-api placement-common placement-api nova-common \
               nova-api nova-conductor nova-scheduler neutron-common neutron-server \
               neutron-api neutron-rpc-server; do
        echo "$pkg $pkg/configure_db boolean false"
        echo "$pkg $pkg/register-endpoint boolean false"
        echo "$pkg $pkg/configure_rabbit boolean false"
        echo "$pkg $pkg/configure_ksat boolean false"
    done
    echo "keystone keystone/create-admin-tenant boolean false"
} | debconf-set-selections

apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=900)
if ! apt-get install "${apt_opts[@]}" "${PACKAGES[@]}"; then
    apt-get update -q -o DPkg::Lock::Timeout=900
    apt-get install "${apt_opts[@]}" "${PACKAGES[@]}"
fi

for unit in rabbitmq-server mariadb; do  # stopped if a running systemd started them
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
done
mask_units

mkdir -p "$MARKER_DIR"
echo "installed $(date -u +%FT%TZ) in $(( $(date +%s) - start )) s: ${PACKAGES[*]}" > "$MARKER"
echo "provision-openstack: done in $(( $(date +%s) - start )) s"
