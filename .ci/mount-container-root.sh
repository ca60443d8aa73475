#!/bin/sh
# Mount what rootful podman needs inside the provisioned trixie root ROOT ($1).  Run it only in
# a private mount namespace (unshare --mount --propagation private): nothing is mounted on the
# host, and everything goes away with the namespace.  Used by .ci/provision-docker.sh and by the
# docker tests (tests/support/docker_pool.py).
#
# - the root bound onto itself: else 'podman import' fails ("remount /, flags: 0x44000");
# - proc, /dev and /dev/pts;
# - a fresh sysfs with a tmpfs on /sys/fs/cgroup holding only the host's cgroup v1 hierarchies:
#   crun refuses the host's hybrid layout (its cgroup2 'unified' mount).
set -eu
root=$1
[ -d "$root/proc" ] || { echo "mount-container-root: $root is not a root file system" >&2; exit 1; }
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t sysfs sysfs "$root/sys"
mount -t tmpfs -o mode=0755 cgroup "$root/sys/fs/cgroup"
awk '{ for (i = 7; i < NF; i++) if ($i == "-") break }
     $(i + 1) == "cgroup" && $5 ~ "^/sys/fs/cgroup/" { print $5 }' /proc/self/mountinfo |
while read -r hierarchy; do
    mkdir -p "$root$hierarchy"
    mount --bind "$hierarchy" "$root$hierarchy"
done
