#!/usr/bin/env bash
# Provision the Debian 13 (trixie) VM image that the booted-cluster tests run under qemu
# (tests/support/vm_cloud.py, issue 26), and the host tools they need (qemu-system-x86,
# genisoimage). Run as root; idempotent: a complete image directory is marked by
# $DIR/.elastiq-provisioned (written last, so an interrupted run is redone from scratch).
#
#   .ci/provision-vm-image.sh            # DIR defaults to /var/lib/elastiq-ci/debian13-vm
#   ELASTIQ_CI_VM_DIR=/some/dir .ci/provision-vm-image.sh
#
# DIR gets: debian13.qcow2 (ext4 on the whole disk, /dev/vda, no partition table: the tests
# boot it with its kernel directly, on a copy-on-write overlay per VM), vmlinuz and initrd.img;
# and apt-repo/, the local apt repository the tests serve to the VMs: Debian's own signed index
# of trixie main and the .deb files that $REPO_PACKAGES need beyond what the image holds
# (fetched on the host with apt-get download).
# Inside: systemd, cloud-init (NoCloud, then None: no two-minute probe of metadata services),
# systemd-networkd (cloud-init renders the seed's network-config for it, with a short
# wait-online), curl, python3-venv; no apt source that the VMs could not reach anyway (their
# user-data names the test's own repository). The Debian mirror is read at run time from this
# machine's own apt sources, as .ci/provision-htcondor-root.sh does.
set -euo pipefail

DIR=${ELASTIQ_CI_VM_DIR:-/var/lib/elastiq-ci/debian13-vm}
SUITE=trixie
MARKER=$DIR/.elastiq-provisioned
HOST_PACKAGES="qemu-system-x86 qemu-utils genisoimage debootstrap e2fsprogs"
VM_PACKAGES="systemd-sysv udev dbus cloud-init linux-image-cloud-amd64 initramfs-tools zstd
iproute2 netbase curl ca-certificates python3-venv sudo gpg"
# What the debian13 templates install (ecm/templates/lib.sh.j2, without recommended packages).
REPO_PACKAGES="htcondor docker.io docker-cli apparmor nftables python3 python3-venv curl ca-certificates"

log() { echo "provision-vm-image: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
[ -r /etc/debian_version ] || { log "not a Debian host (no /etc/debian_version)"; exit 1; }

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

# The index the VMs' apt reads: Debian's own Packages.xz and Translation-en.xz of $SUITE main
# (~16 MB; apt in a TCG VM spent minutes on the 91 MB uncompressed files), checked against the
# signed InRelease, each also at its by-hash path (the InRelease says Acquire-By-Hash: apt asks
# there first).  apt-get update fails on a missing Translation-en that the InRelease lists.
# Version 3 of the index; a directory provisioned with an older one gets just this step.
INDEX_VERSION=3
repo_index() {
    local dists=$1/dists/$SUITE rel sha
    for rel in main/binary-amd64/Packages.xz main/i18n/Translation-en.xz; do
        sha=$(awk -v f="$rel" '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == f { print $1 }' \
            "$dists/InRelease")
        [ -n "$sha" ] || { log "no SHA256 of $rel in $dists/InRelease"; exit 1; }
        mkdir -p "$(dirname "$dists/$rel")/by-hash/SHA256"
        rm -f "${dists:?}/${rel%.xz}"
        /usr/lib/apt/apt-helper download-file "$MIRROR/dists/$SUITE/$rel" "$dists/$rel" "SHA256:$sha" \
            >/dev/null || { log "$MIRROR has no $rel matching the InRelease of $DIR (newer point release? remove $DIR and provision again)"; exit 1; }
        ln -f "$dists/$rel" "$(dirname "$dists/$rel")/by-hash/SHA256/$sha"
    done
    echo "$INDEX_VERSION" >"$1/.index-version"
}

if [ -e "$MARKER" ]; then
    if [ "$(cat "$DIR/apt-repo/.index-version" 2>/dev/null)" != "$INDEX_VERSION" ]; then
        log "$DIR: updating the apt repository's index to version $INDEX_VERSION"
        repo_index "$DIR/apt-repo"
    fi
    log "$DIR already provisioned ($(cat "$MARKER")); nothing to do"
    exit 0
fi

start=$(date +%s)
missing=
for p in $HOST_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    log "installing on the host:$missing"
    apt-get update -q
    # shellcheck disable=SC2086 # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# An unfinished directory (no marker) is redone from scratch; refuse one with mounts in it.
if [ -e "$DIR" ]; then
    if grep -q " $DIR/" /proc/mounts; then
        log "$DIR is incomplete and has mounts inside; unmount them first:"
        grep " $DIR/" /proc/mounts >&2
        exit 1
    fi
    log "removing the incomplete $DIR"
    rm -rf --one-file-system "$DIR"
fi
mkdir -p "$DIR"
ROOT=$DIR/root

log "debootstrap $SUITE from $MIRROR into $ROOT"
t0=$(date +%s)
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$DIR/debootstrap.log" 2>&1 \
    || { log "debootstrap failed, see $DIR/debootstrap.log"; tail -n 20 "$DIR/debootstrap.log" >&2; exit 1; }
t1=$(date +%s)

# The rest with apt inside the root (debootstrap's own resolver misses virtual packages).
log "installing the VM's packages"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"
cleanup() { umount "$ROOT/proc" 2>/dev/null || true; }
trap cleanup EXIT
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$DIR/debootstrap.log"
# shellcheck disable=SC2086 # a list of package names
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    $VM_PACKAGES >>"$DIR/debootstrap.log" 2>&1 \
    || { log "apt-get install failed, see $DIR/debootstrap.log"; tail -n 20 "$DIR/debootstrap.log" >&2; exit 1; }
chroot "$ROOT" apt-get clean
umount "$ROOT/proc"
rm -f "$ROOT/usr/sbin/policy-rc.d" "$ROOT/etc/resolv.conf"
t1b=$(date +%s)

log "configuring the image"
echo debian13 >"$ROOT/etc/hostname"
echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" >"$ROOT/etc/fstab"
# The VMs reach only the test's own network: no apt source by default.
: >"$ROOT/etc/apt/sources.list"
rm -f "$ROOT"/etc/apt/sources.list.d/*
cat >"$ROOT/etc/cloud/cloud.cfg.d/90-elastiq-ci.cfg" <<'EOF'
# elastiq CI image (.ci/provision-vm-image.sh): the seed ISO only, networkd renders the network.
datasource_list: [NoCloud, None]
# The disk is the image's size, and the image has no ssh server: nothing to resize, no host keys.
resize_rootfs: false
ssh_genkeytypes: []
# The test network has no DNS: the VM's name resolves through /etc/hosts, as a cloud's resolver
# would answer it (HTCondor retries an unresolvable own name: ~2 minutes per daemon or tool).
manage_etc_hosts: true
system_info:
  network:
    renderers: [networkd]
EOF
mkdir -p "$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat >"$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d/elastiq-ci.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/usr/lib/systemd/systemd-networkd-wait-online --any --timeout=20
EOF
chroot "$ROOT" systemctl enable systemd-networkd.service >/dev/null 2>&1
chroot "$ROOT" passwd -l root >/dev/null
log "fetching the local apt repository's packages"
# apt on the host, on its own directories: the image's package status, trixie's index checked
# with the image's Debian keyring; not this machine's apt.conf.d (it may keep indexes
# compressed or skip translations: the VMs' apt wants both as Debian publishes them).
HOSTAPT=$DIR/host-apt
mkdir -p "$HOSTAPT/state/lists/partial" "$HOSTAPT/cache/archives/partial"
cp "$ROOT/var/lib/dpkg/status" "$HOSTAPT/state/status"
cp "$ROOT/usr/share/keyrings/debian-archive-keyring.gpg" "$HOSTAPT/keyring.gpg"
echo "deb [signed-by=$HOSTAPT/keyring.gpg] $MIRROR $SUITE main" >"$HOSTAPT/sources.list"
# (APT_CONFIG is read before apt.conf.d, so it can move that folder away; -o comes too late.)
echo 'Dir::Etc::Parts "/nonexistent";' >"$HOSTAPT/apt.conf"
hostapt() {
    APT_CONFIG=$HOSTAPT/apt.conf apt-get -q -o "Dir::Etc::SourceList=$HOSTAPT/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
        -o "Dir::State=$HOSTAPT/state" -o "Dir::State::status=$HOSTAPT/state/status" \
        -o "Dir::Cache=$HOSTAPT/cache" -o APT::Architecture=amd64 -o APT::Architectures::=amd64 \
        -o Debug::NoLocking=1 "$@"
}
hostapt update >>"$DIR/debootstrap.log"
REPO=$DIR/apt-repo
# shellcheck disable=SC2086 # a list of package names
hostapt install --print-uris -y --no-install-recommends $REPO_PACKAGES | sed -n "s/^'\([^']*\)'.*/\1/p" \
    >"$HOSTAPT/uris"
while read -r uri; do
    rel=${uri#"$MIRROR"}; rel=${rel#/}
    rel=$(printf '%b' "${rel//%/\\x}")  # the URI's %-escapes (+ ~ :) decoded
    file=$(basename "$rel")
    name=${file%%_*}; version=${file#*_}; version=${version%_*}
    mkdir -p "$REPO/$(dirname "$rel")"
    (cd "$REPO/$(dirname "$rel")" && hostapt download "$name=$version" >>"$DIR/debootstrap.log" 2>&1)
    [ -s "$REPO/$rel" ] || { log "apt-get download $name=$version did not give $rel"; exit 1; }
done <"$HOSTAPT/uris"
mkdir -p "$REPO/dists/$SUITE"
cp "$(ls "$HOSTAPT/state/lists"/*_dists_"${SUITE}"_InRelease)" "$REPO/dists/$SUITE/InRelease"
repo_index "$REPO"
rm -rf "$HOSTAPT"
t1c=$(date +%s)

kernel=$(find "$ROOT/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n1)
initrd=$(find "$ROOT/boot" -maxdepth 1 -name 'initrd.img-*' | sort | tail -n1)
[ -n "$kernel" ] && [ -n "$initrd" ] || { log "no kernel or initrd in $ROOT/boot"; exit 1; }
cp "$kernel" "$DIR/vmlinuz"
cp "$initrd" "$DIR/initrd.img"

log "making the disk image"
truncate -s 4G "$DIR/debian13.raw"
mkfs.ext4 -q -L root -d "$ROOT" "$DIR/debian13.raw"
qemu-img convert -O qcow2 "$DIR/debian13.raw" "$DIR/debian13.qcow2"
rm -f "$DIR/debian13.raw"
rm -rf --one-file-system "$ROOT"
t2=$(date +%s)

version=$(basename "$kernel")
echo "$SUITE $(date -u +%Y-%m-%dT%H:%M:%SZ) $version $(du -m "$DIR/debian13.qcow2" | cut -f1)MB, apt-repo $(du -sm "$REPO" | cut -f1)MB" >"$MARKER.tmp"
mv "$MARKER.tmp" "$MARKER"
log "done in $(($(date +%s) - start)) s (debootstrap $((t1 - t0)) s, packages $((t1b - t1)) s, apt repository $((t1c - t1b)) s ($(find "$REPO/pool" -name "*.deb" | wc -l) .deb), image $((t2 - t1c)) s): $(cat "$MARKER")"
