# Sourced by the deploy scripts and the container tests: make sure podman and buildah are
# installed (Debian packages; installed here when missing and running as root) and point
# them at a configuration that works on these machines (runc, cgroupfs, no network, rlimits
# within the host's). Sets CONTAINERS_CONF. Returns 77 when podman cannot be had.
# shellcheck shell=bash

sluice_podman_env() {
    if ! command -v podman >/dev/null || ! command -v buildah >/dev/null; then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
            echo "podman/buildah are not installed and cannot be installed here (needs root and apt-get)" >&2
            return 77
        fi
        echo "installing podman and buildah (Debian packages)" >&2
        local pkgs=(buildah podman runc conmon catatonit containernetworking-plugins)
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null; } ||
            { echo "could not install podman" >&2; return 77; }
    fi
    local conf_dir="${SLUICE_CACHE:-$HOME/.cache/sluice}/containers"
    mkdir -p "$conf_dir"
    local nofile
    nofile=$(ulimit -Hn)
    [ "$nofile" = unlimited ] && nofile=1048576
    # the packaged defaults fail here: crun with hybrid cgroups, rlimits above the host's
    cat >"$conf_dir/containers.conf.tmp.$$" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
    mv "$conf_dir/containers.conf.tmp.$$" "$conf_dir/containers.conf"
    export CONTAINERS_CONF="$conf_dir/containers.conf"
}
