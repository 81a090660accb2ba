#!/bin/bash
# What one cold lookup costs the daemon: its system calls (strace -c, exact) and its CPU time
# (/proc/<pid>/stat, noisy), for 1,000 stat(2)s of blob names of a fresh mount. Used to compare two
# builds side by side, interleaved:
#   bash bench/cold-lookup.sh .build/release/blobfs /path/to/old/blobfs
# Needs root (FUSE, strace -p), python3 and strace.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/blobfs-cold-lookup.XXXXXX)
trap 'fusermount3 -u "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/mnt"
python3 "$here/mkstore.py" "$work/store" 1 2000 "$work/names" >/dev/null
head -1000 "$work/names/all-blobs.names" | sed "s|^|$work/mnt/repo/|" >"$work/paths"

mount_blobfs() {
    "$1" mount "$work/store" "$work/mnt" 2>>"$work/log" &
    for _ in $(seq 100); do grep -q " $work/mnt " /proc/mounts && return 0; sleep 0.1; done
    echo "cold-lookup: $1 did not mount (see $work/log)" >&2
    exit 1
}

# One fresh mount: the daemon's system calls for the 1,000 stats, traced.
syscalls() {
    local binary=$1
    mount_blobfs "$binary"
    local pid
    pid=$(pgrep -f "mount $work/store $work/mnt" | head -1)
    ls "$work/mnt/repo/bench/many-00/" >/dev/null  # the directories, so that only blob names are cold
    strace -f -c -o "$work/strace" -p "$pid" 2>/dev/null &
    local tracer=$!
    sleep 1  # strace attaches to every thread before the first stat
    xargs stat -c %s <"$work/paths" >/dev/null
    kill -INT "$tracer"
    wait "$tracer" 2>/dev/null || true
    fusermount3 -u "$work/mnt"
    wait
    # strace -c columns: % time, seconds, usecs/call, calls, [errors], syscall.
    awk '$NF ~ /^(openat2|openat|newfstatat|fstat|statx|pread64|read|close)$/ {printf "%s %.1f  ", $NF, $4 / 1000}' "$work/strace"
}

# Another fresh mount, not traced: the daemon's CPU time for the 1,000 stats (clock ticks of
# 10 ms: one tick is 10 µs per lookup, so this is coarse and noisy; compare medians).
cpu() {
    local binary=$1
    mount_blobfs "$binary"
    local pid
    pid=$(pgrep -f "mount $work/store $work/mnt" | head -1)
    ls "$work/mnt/repo/bench/many-00/" >/dev/null
    read -r user0 system0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    xargs stat -c %s <"$work/paths" >/dev/null
    read -r user1 system1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    fusermount3 -u "$work/mnt"
    wait
    echo "user $(( (user1 - user0) * 10 )) µs, system $(( (system1 - system0) * 10 )) µs"
}

for binary in "$@"; do echo "$binary: system calls per lookup: $(syscalls "$binary")"; done
for round in 1 2 3 4 5; do
    for binary in "$@"; do echo "$binary: daemon CPU per lookup: $(cpu "$binary")"; done
done
