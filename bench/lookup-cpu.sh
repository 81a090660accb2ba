#!/bin/bash
# What cold lookups cost the daemon, finer than bench/cold-lookup.sh's: N cold stat(2)s of blob
# names through bench/iobench on a fresh mount per round, the daemon's user and system CPU from
# /proc/<pid>/stat (10 ms ticks: 1 µs per lookup at N = 10,000), builds interleaved:
#   bash bench/lookup-cpu.sh 10000 5 .build/release/blobfs /path/to/old/blobfs
# Needs root (FUSE), python3 and cc. Compare medians: the machine is shared.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=$1 rounds=$2
shift 2
work=$(mktemp -d /tmp/blobfs-lookup-cpu.XXXXXX)
mkdir -p "$work/mnt"
trap 'fusermount3 -u "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 "$here/mkstore.py" "$work/store" 1 "$n" "$work/names" >/dev/null
cc -O2 -o "$work/iobench" "$here/iobench.c"
for _ in $(seq "$rounds"); do
    for binary in "$@"; do
        "$binary" mount "$work/store" "$work/mnt" 2>>"$work/log" &
        pid=$!
        for _ in $(seq 600); do grep -q " $work/mnt " /proc/mounts && break; sleep 0.05; done
        ls "$work/mnt/repo/bench/many-00/" >/dev/null  # the directories and the census: only blob names stay cold
        read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
        wall=$("$work/iobench" stat "$work/mnt/repo/bench/many-00/blobs" "$work/names/blobs.names")
        read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
        fusermount3 -u "$work/mnt"
        wait "$pid" || true
        awk -v b="$binary" -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v w="$wall" \
            'BEGIN { printf "%s: wall %.1f µs/op, daemon user %.1f µs, system %.1f µs per lookup\n", b, w * 1e6 / n, u * 1e4 / n, s * 1e4 / n }'
    done
done
