# shellcheck shell=bash
# Shared by the .ci/provision-*.sh scripts that work inside the provisioned trixie root; source
# it after setting ROOT (the root) and HERE (this directory).

# Run a command inside $ROOT, in a private mount namespace with the container mounts
# (.ci/mount-container-root.sh): nothing stays mounted on the host afterwards.
# shellcheck disable=SC2016 # the quoted script is expanded by the inner sh
in_root() {
    unshare --mount --propagation private sh -c \
        '"$1" "$2" && root=$2 && shift 2 && exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"' \
        sh "$HERE/mount-container-root.sh" "$ROOT" "$@"
}
