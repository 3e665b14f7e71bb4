# Sourced by scripts/kube-test.sh and scripts/compose-test.sh: reuse the podman state and the
# image scripts/container-test.sh built, so no test after it builds the certgate image again.
# Needs REPO, BIN, WORK (container-test's directory) and die().

CERTGATE_IMAGE=localhost/certgate:container-test

# The podman configuration container-test.sh wrote (it picks the storage driver).
use_podman_dir() {
    local d
    for d in "$WORK"/podman-overlay "$WORK"/podman-vfs; do
        if [ -f "$d/conf/containers.conf" ]; then
            export CONTAINERS_CONF=$d/conf/containers.conf CONTAINERS_STORAGE_CONF=$d/conf/storage.conf
            return 0
        fi
    done
    return 1
}

# The image exists and is newer than BIN (a stale image would test old code).
image_is_current() {
    use_podman_dir && podman image exists "$CERTGATE_IMAGE" || return 1
    local created
    created=$(podman image inspect "$CERTGATE_IMAGE" --format '{{.Created.Unix}}' 2>/dev/null) || return 1
    [ "$created" -ge "$(stat -c %Y "$BIN")" ]
}

# Runs container-test.sh first when the image for BIN is not there yet.
ensure_certgate_image() {
    if ! image_is_current; then
        log "no image for this binary yet: running scripts/container-test.sh first"
        CERTGATE_KEEP_IMAGE=1 bash "$REPO/scripts/container-test.sh" "$BIN" >&2 || die "container-test.sh failed"
        image_is_current || die "container-test.sh did not leave $CERTGATE_IMAGE with this binary"
    fi
}
