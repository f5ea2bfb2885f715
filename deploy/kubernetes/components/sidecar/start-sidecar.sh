#!/bin/sh
# Finds this pod's cgroup on the node's cgroup v2 tree (mounted read-only at $HOST_CGROUP) from the
# pod's UID, exports it as INFERSIGHT_POD_CGROUP (the config's resources.cgroup_dir), then runs the
# sidecar with the arguments given. The systemd cgroup driver names the group
# kubepods[-<qos>]-pod<uid with _ for ->.slice, the cgroupfs driver pod<uid>; no match (cgroup v1,
# another layout, no mount) leaves it empty and the sidecar reads its own cgroup.
set -eu
HOST_CGROUP="${HOST_CGROUP:-/host/cgroup}"
INFERSIGHT_POD_CGROUP=""
if [ -n "${POD_UID:-}" ]; then
    uid_="$(printf '%s' "$POD_UID" | tr '-' '_')"
    for dir in \
        "$HOST_CGROUP/kubepods.slice/kubepods-pod$uid_.slice" \
        "$HOST_CGROUP"/kubepods.slice/kubepods-*.slice/kubepods-*-pod"$uid_".slice \
        "$HOST_CGROUP/kubepods/pod$POD_UID" \
        "$HOST_CGROUP"/kubepods/*/pod"$POD_UID"; do
        if [ -f "$dir/cgroup.controllers" ]; then
            INFERSIGHT_POD_CGROUP="$dir"
            break
        fi
    done
fi
export INFERSIGHT_POD_CGROUP
exec infersight sidecar --config "${INFERSIGHT_CONFIG:-/etc/infersight-sidecar/sidecar.yaml}" "$@"
