# Sourced first by the podman tests (container-test.sh, kube-test.sh, compose-test.sh): timing,
# logging and failing in the caller's name, the root check, the binary under test, the shared
# podman state directory, missing Debian packages and free ports. Needs TEST_NAME; sets REPO
# and WORK (and BIN, through use_binary).

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything the podman tests keep (configuration, image storage, the base rootfs): shared, so
# only the first test of a run builds the image.
WORK=$(realpath -m "${CERTGATE_CONTAINER_DIR:-$REPO/target/container-test}")

T0=$(date +%s.%N)
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '%s: %s\n' "$TEST_NAME" "$*" >&2; }
die() {
    log "FAIL: $*"
    printf '%s: FAIL (%ss)\n' "$TEST_NAME" "$(elapsed "$T0")"
    exit 1
}

# require_root WHY
require_root() {
    [ "$(id -u)" -eq 0 ] || die "run as root ($1)"
}

# use_binary [PATH]: sets BIN to the binary under test (default target/debug/certgate), absolute.
use_binary() {
    local arg=${1:-target/debug/certgate}
    BIN=$(realpath -e "$arg" 2>/dev/null) || die "no binary at $arg (build it first: cargo build --bin certgate)"
    [ -x "$BIN" ] || die "$BIN is not executable"
}

# need COMMAND:PACKAGE...: installs the PACKAGE of every COMMAND (a command name or a path)
# that is missing, in one apt-get.
need() {
    local pair missing=()
    for pair in "$@"; do
        [ -e "${pair%%:*}" ] || command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] || install_packages "${missing[@]}"
}

# install_packages PACKAGE...
install_packages() {
    log "installing $*"
    apt-get update -qq >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 \
        --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

# free_port VAR: sets VAR to a TCP port nothing listens or connects on now, and that no earlier
# free_port of this script picked.
PICKED_PORTS=""
free_port() {
    local p used
    used=$(ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        grep -qx "$p" <<<"$used$PICKED_PORTS" && continue
        PICKED_PORTS+=$'\n'"$p"
        printf -v "$1" '%s' "$p"
        return 0
    done
    die "no free port found"
}
