#!/bin/bash
# Two builds' daemon CPU per cold lookup, compared under the same load: both mounted on one store
# (bench/mkstore.py, one repository of N blobs), each name stat(2)ed through one mount and then
# the other, CPU from /proc/<pid>/stat; fresh mounts every round, then the same rounds with the
# builds' places swapped, since the mount stat'ed second is cheaper (its data is hot):
#   bash bench/lookup-pair.sh 10000 6 .build/release/blobfs /path/to/old/blobfs
# Prints each round and the estimate (first − second, µs per lookup) with the place's bias taken
# out: ½ (median of first−second in order 1 − median in order 2). Needs root (FUSE), python3, cc.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=$1 rounds=$2 first=$3 second=$4
work=$(mktemp -d /tmp/blobfs-lookup-pair.XXXXXX)
mkdir -p "$work/ma" "$work/mb"
trap 'fusermount3 -u "$work/ma" 2>/dev/null || true; fusermount3 -u "$work/mb" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 "$here/mkstore.py" "$work/store" 1 "$n" "$work/names" >/dev/null
cat >"$work/alternate.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
/* alternate <dirA> <dirB> <names>: stat(2) of dirA/<name>, then dirB/<name>, for each name. */
int main(int argc, char **argv) {
    FILE *f = fopen(argv[3], "r");
    char line[512], a[1024], b[1024];
    struct stat st;
    int bad = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        snprintf(a, sizeof a, "%s/%s", argv[1], line);
        snprintf(b, sizeof b, "%s/%s", argv[2], line);
        bad += stat(a, &st) != 0;
        bad += stat(b, &st) != 0;
    }
    return bad != 0;
}
C
cc -O2 -o "$work/alternate" "$work/alternate.c"

# One round: prints the CPU per lookup of the daemon in place A and of the one in place B.
round() {
    "$1" mount "$work/store" "$work/ma" 2>>"$work/log" & local pa=$!
    "$2" mount "$work/store" "$work/mb" 2>>"$work/log" & local pb=$!
    for _ in $(seq 600); do grep -q " $work/ma " /proc/mounts && grep -q " $work/mb " /proc/mounts && break; sleep 0.05; done
    ls "$work/ma/repo/bench/many-00/" "$work/mb/repo/bench/many-00/" >/dev/null  # only blob names stay cold
    local ua0 sa0 ub0 sb0 ua1 sa1 ub1 sb1
    read -r ua0 sa0 < <(awk '{print $14, $15}' "/proc/$pa/stat")
    read -r ub0 sb0 < <(awk '{print $14, $15}' "/proc/$pb/stat")
    "$work/alternate" "$work/ma/repo/bench/many-00/blobs" "$work/mb/repo/bench/many-00/blobs" "$work/names/blobs.names"
    read -r ua1 sa1 < <(awk '{print $14, $15}' "/proc/$pa/stat")
    read -r ub1 sb1 < <(awk '{print $14, $15}' "/proc/$pb/stat")
    fusermount3 -u "$work/ma"
    fusermount3 -u "$work/mb"
    wait "$pa" "$pb" || true
    awk -v n="$n" -v a=$((ua1 - ua0 + sa1 - sa0)) -v b=$((ub1 - ub0 + sb1 - sb0)) 'BEGIN { printf "%.1f %.1f\n", a * 1e4 / n, b * 1e4 / n }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$work/order1"
: >"$work/order2"
for _ in $(seq "$rounds"); do
    read -r a b < <(round "$first" "$second")
    echo "$first first: $a µs, $second second: $b µs per lookup"
    echo "$a - $b" | bc -l >>"$work/order1"
    read -r a b < <(round "$second" "$first")
    echo "$second first: $a µs, $first second: $b µs per lookup"
    echo "$a - $b" | bc -l >>"$work/order2"
done
m1=$(median <"$work/order1")
m2=$(median <"$work/order2")
awk -v m1="$m1" -v m2="$m2" -v f="$first" -v s="$second" \
    'BEGIN { printf "%s − %s: %+.1f µs of daemon CPU per cold lookup (the second place saves %.1f µs)\n", f, s, (m1 - m2) / 2, (m1 + m2) / 2 }'
