#!/usr/bin/env bash
# shellcheck disable=SC2016 # the 'sh -c' scripts are expanded by the inner shell
# Provision the docker part of the trixie root (after .ci/provision-htcondor-root.sh): rootful
# podman stands in for the docker engine, which does not start in this sandbox.  Run as root;
# idempotent: done when $ROOT/.elastiq-docker-provisioned exists (written last).
#
#   .ci/provision-docker.sh            # ROOT defaults to /var/lib/elastiq-ci/trixie
#
# Inside the root: podman, podman-docker (/usr/bin/docker), crun, conmon, catatonit (docker run
# --init), sudo; /etc/containers for a nested container (vfs storage, no cgroups, host network);
# /usr/local/bin/elastiq-docker, the docker CLI HTCondor's condor user runs in the tests
# (sudo -n /usr/bin/podman: root's podman, as a docker group member reaches root's dockerd);
# and the image localhost/debian:trixie, imported from a debootstrapped minbase tree (no
# registry is reachable).  The Debian mirror is the one the root was bootstrapped from.
set -euo pipefail

ROOT=${ELASTIQ_CI_ROOT:-/var/lib/elastiq-ci/trixie}
MARKER=$ROOT/.elastiq-docker-provisioned
IMAGE=localhost/debian:trixie
# libnss-myhostname: sudo resolves the host name, which the root's /etc/hosts does not know.
PACKAGES=(podman podman-docker crun conmon catatonit sudo libnss-myhostname)
HERE=$(cd "$(dirname "$0")" && pwd)

log() { echo "provision-docker: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
[ -e "$ROOT/.elastiq-provisioned" ] || { log "$ROOT is not provisioned: run .ci/provision-htcondor-root.sh first"; exit 1; }
if [ -e "$MARKER" ]; then
    log "$ROOT already has docker ($(cat "$MARKER")); nothing to do"
    exit 0
fi
MIRROR=${ELASTIQ_CI_MIRROR:-$(awk '$1 == "deb" { print $2; exit }' "$ROOT/etc/apt/sources.list" 2>/dev/null || true)}
[ -n "$MIRROR" ] || { log "no mirror in $ROOT/etc/apt/sources.list (set ELASTIQ_CI_MIRROR)"; exit 1; }

# shellcheck disable=SC1091 # .ci/lib.sh, checked on its own
. "$HERE/lib.sh"

start=$(date +%s)
log "installing podman inside $ROOT"
in_root apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" \
    || { in_root apt-get update -q && in_root apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"; }
in_root apt-get clean
t1=$(date +%s)

install -d -m 0755 "$ROOT/etc/containers"
cat > "$ROOT/etc/containers/storage.conf" <<'EOF'
# elastiq CI: podman nested in a chroot (no overlay on overlay).
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
# utsns stays private: HTCondor always passes --hostname.
cat > "$ROOT/etc/containers/containers.conf" <<'EOF'
# elastiq CI: podman nested in a chroot on a cgroup v1 host.
[containers]
cgroupns = "host"
cgroups = "disabled"
netns = "host"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
EOF
cat > "$ROOT/usr/local/bin/elastiq-docker" <<'EOF'
#!/bin/sh
# The docker CLI of the elastiq tests: root's podman, as a member of the docker group reaches
# root's docker engine.  HTCondor reads stdout and stderr together: no cgroup v1 warning.
export PODMAN_IGNORE_CGROUPSV1_WARNING=1
exec sudo -n /usr/bin/podman "$@"
EOF
chmod 0755 "$ROOT/usr/local/bin/elastiq-docker"
printf '%s\n' 'Defaults:condor env_keep += "PODMAN_IGNORE_CGROUPSV1_WARNING"' \
    'condor ALL=(root) NOPASSWD: /usr/bin/podman' > "$ROOT/etc/sudoers.d/elastiq-podman"
chmod 0440 "$ROOT/etc/sudoers.d/elastiq-podman"

log "debootstrap --variant=minbase trixie from $MIRROR, for $IMAGE"
tree=$(mktemp -d "$(dirname "$ROOT")/image-XXXXXX")
trap 'rm -rf --one-file-system "$tree"' EXIT
chmod 0755 "$tree"  # the image's / (mktemp made it 0700: no job user could run anything)
debootstrap --variant=minbase trixie "$tree" "$MIRROR" >"$(dirname "$ROOT")/debootstrap-image.log" 2>&1 \
    || { log "debootstrap failed, see $(dirname "$ROOT")/debootstrap-image.log"; exit 1; }
t2=$(date +%s)
tar -C "$tree" -c . | unshare --mount --propagation private sh -c \
    '"$1" "$2" && exec chroot "$2" env -i PATH=/usr/bin:/bin HOME=/root podman import - "$3"' \
    sh "$HERE/mount-container-root.sh" "$ROOT" "$IMAGE" >/dev/null
in_root podman image exists "$IMAGE" || { log "$IMAGE missing after the import"; exit 1; }
end=$(date +%s)

echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $IMAGE $(in_root podman --version)" >"$MARKER.tmp"
mv "$MARKER.tmp" "$MARKER"
log "done in $((end - start)) s (packages $((t1 - start)) s, debootstrap $((t2 - t1)) s, import $((end - t2)) s)"
