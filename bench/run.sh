#!/usr/bin/env bash
# make bench: blobfs side by side with native reads, bindfs and rclone mount, over the very same
# files, on one seeded registry store made for this run. Prints a table of ratios measured in this
# run and writes it, with the machine, the command and a chart, into docs/benchmarks.md.
#
# Usage: bench/run.sh                       (make bench runs it)
#   BLOBFS=path/to/blobfs                   the binary to measure (default .build/release/blobfs)
#   BENCH_RUNS=5 BENCH_HEAVY_RUNS=3         runs per figure: light figures / heavy ones
#   BENCH_REPOS=10 BENCH_BLOBS_PER_REPO=10000   the many-blob tree (figure 3)
#   BENCH_IMAGE_REVISIONS=10000 BENCH_IMAGE_TAGS=1000   the manifests and tags of figure 7
#   BENCH_LARGE_MIB=1024                    the large blob (figures 1, 2, 5, 6)
#   BENCH_RANDOM_READS=5000                 4 KiB reads per pass in figure 2
#   BENCH_DOC=docs/benchmarks.md            where the results go (BENCH_DOC= to skip the doc)
#   BENCH_RESULTS_DIR=dir                   also keep the raw results (results.tsv, meta.env, s3-*) there
#   BENCH_S3=off                            skip the S3 section (bench/s3.sh: blobfs, rclone mount and
#                                           s3fs over radosgw; its BENCH_S3_* settings are its own,
#                                           BENCH_S3_RUNS defaults to BENCH_HEAVY_RUNS)
#   TMPDIR                                  where the store and the mountpoints are made
#
# Nothing here asserts a time: it measures, and reports. Every mount and the temporary directory
# are removed on exit, on error and on Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
BLOBFS=${BLOBFS:-$repo/.build/release/blobfs}
RUNS=${BENCH_RUNS:-5}
HEAVY_RUNS=${BENCH_HEAVY_RUNS:-3}
REPOS=${BENCH_REPOS:-10}
BLOBS_PER_REPO=${BENCH_BLOBS_PER_REPO:-10000}
IMAGE_REVISIONS=${BENCH_IMAGE_REVISIONS:-10000}
IMAGE_TAGS=${BENCH_IMAGE_TAGS:-1000}
LARGE_MIB=${BENCH_LARGE_MIB:-1024}
RANDOM_READS=${BENCH_RANDOM_READS:-5000}
RANDOM_SEED=20240605
DOC=${BENCH_DOC-$repo/docs/benchmarks.md}
PYTHON=${BENCH_PYTHON:-/usr/bin/python3}  # Debian's: python3-matplotlib is installed for it
MOUNT_DEADLINE_SECONDS=30
export LC_ALL=C

say() { printf 'bench [%3ds]: %s\n' "$SECONDS" "$*" >&2; }
die() { say "$*"; exit 1; }
# shellcheck source=bench/mounting.sh
source "$here/mounting.sh"

[[ -x $BLOBFS ]] || die "no blobfs binary at $BLOBFS (make release, or set BLOBFS=)"
blobfs_shown=${BLOBFS#"$repo"/}
BLOBFS=$(realpath "$BLOBFS")
for tool in bindfs rclone fusermount3 mountpoint openssl sha256sum cc; do
    command -v "$tool" >/dev/null || die "$tool is missing: run make bench-deps"
done
[[ -x $PYTHON ]] || die "$PYTHON is missing: run make bench-deps"

# ---------------------------------------------------------------------------------------------
# Cleanup: every daemon this script started is stopped by its pid, every mountpoint it made is
# unmounted (lazily if need be), and the temporary directory is removed, whatever happens.

work=""
daemon_pid=""      # the FUSE daemon of the current mount, if any
daemon_mnt=""      # its mountpoint
started_pids=()    # every daemon started, for the last sweep

# Mountpoints under a directory, from the kernel's table (a mount whose daemon died fails
# stat(2), so `mountpoint -q` is not asked here).
mounts_under() { awk -v dir="$1/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo; }

any_alive() {
    local pid
    for pid in "${started_pids[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done
    return 1
}

cleanup() {
    local status=$? pid m attempt
    trap - EXIT INT TERM
    set +e
    if [[ -n $daemon_pid ]]; then unmount_current; fi
    for pid in "${started_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    done
    for attempt in $(seq 100); do # up to 5 s for them to unmount and exit
        any_alive || break
        sleep 0.05
    done
    for pid in "${started_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    if [[ -n $work ]]; then
        # A daemon stopped while it was mounting can leave its mount behind it, late: look a few times.
        for attempt in $(seq 10); do
            for m in $(mounts_under "$work"); do
                fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
            done
            sleep 0.1
            [[ -z $(mounts_under "$work") ]] && break
        done
        if [[ -n $(mounts_under "$work") ]]; then
            say "still mounted, left in place: $(mounts_under "$work" | tr '\n' ' ')"
        elif [[ -d $work ]]; then
            say "removing $work"
            rm -rf --one-file-system "$work"
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say terminated; exit 143' TERM

work=$(mktemp -d "${TMPDIR:-/tmp}/blobfs-bench.XXXXXX")
mkdir -p "$work/mnt" "$work/names"
store=$work/store
v2=$store/docker/registry/v2
results=$work/results.tsv
printf 'figure\tcontender\trun\tseconds\tdaemon_cpu\tclient_cpu\tvalue\n' >"$results"
bench_start=$EPOCHREALTIME
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# Timing helpers. Wall time from $EPOCHREALTIME (microseconds); the daemon's CPU time (user +
# system, all threads, in clock ticks of 10 ms) from /proc/<pid>/stat; the measured command's own
# CPU time (its children included) from the shell's `times`.


daemon_ticks() {
    [[ -n $daemon_pid && -r /proc/$daemon_pid/stat ]] || return 0
    # Fields 14 and 15 (utime, stime); counted after the ") " that closes the command name.
    sed 's/^.*) //' "/proc/$daemon_pid/stat" | awk '{ print $12 + $13 }'
}

# CPU seconds of this shell's waited-for children, from a `times` output saved in a file.
children_cpu() {
    awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.3f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1"
}

cpu_seconds() { # <ticks before> <ticks after>: empty when there is no daemon
    [[ -n $1 && -n $2 ]] || return 0
    awk -v a="$1" -v b="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f\n", (b - a) / hz }'
}

CLK_TCK=$(getconf CLK_TCK)

# measure <figure> <contender> <run> <command...>: times the command (its standard output
# discarded) and appends one row: wall seconds, the daemon's CPU seconds, the command's CPU seconds.
measure() {
    local figure=$1 contender=$2 run=$3
    shift 3
    local t0 t1 d0 d1
    d0=$(daemon_ticks)
    t0=$(usec)
    times >"$work/times.0"  # a builtin: no child process between here and the command
    "$@" >/dev/null
    times >"$work/times.1"
    t1=$(usec)
    d1=$(daemon_ticks)
    record "$figure" "$contender" "$run" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e6 }')" \
        "$(cpu_seconds "$d0" "$d1")" \
        "$(awk -v a="$(children_cpu "$work/times.0")" -v b="$(children_cpu "$work/times.1")" 'BEGIN { printf "%.3f", b - a }')" ""
}

# measure_inner <figure> <contender> <run> <command...>: for a command that prints its own elapsed
# seconds (iobench), so that process start-up is not in the figure.
measure_inner() {
    local figure=$1 contender=$2 run=$3
    shift 3
    local d0 d1 out
    d0=$(daemon_ticks)
    out=$("$@")
    d1=$(daemon_ticks)
    record "$figure" "$contender" "$run" "$out" "$(cpu_seconds "$d0" "$d1")" "" ""
}

record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"; }

# ---------------------------------------------------------------------------------------------
# Mounts. Each contender is started in the foreground as a background job of this script, so its
# pid is known; the mount is ready when `mountpoint -q` says so (polled, with a deadline).

# wait_mounted and wait_readahead: bench/mounting.sh.

# mount_contender <contender>: mounts a fresh instance at $work/mnt/<contender>.
mount_contender() {
    local contender=$1 mnt=$work/mnt/$1 log=$work/$1.log
    mkdir -p "$mnt"
    case $contender in
    blobfs) "$BLOBFS" mount "$store" "$mnt" 2>>"$log" & ;;
    blobfs-noverify) "$BLOBFS" mount "$store" "$mnt" --no-verify 2>>"$log" & ;;
    blobfs-ptoff) "$BLOBFS" mount "$store" "$mnt" --passthrough off 2>>"$log" & ;;
    blobfs-metrics) "$BLOBFS" mount "$store" "$mnt" --metrics-address "127.0.0.1:$METRICS_PORT" 2>>"$log" & ;;
    blobfs-noverify-ptoff) "$BLOBFS" mount "$store" "$mnt" --no-verify --passthrough off 2>>"$log" & ;;
    blobfs-remembered) "$BLOBFS" mount "$store" "$mnt" --remember-verified "$work/verified.ledger" 2>>"$log" & ;;
    blobfs-rw) "$BLOBFS" mount "$store" "$mnt" --read-write 2>>"$log" & ;;
    blobfs-images) "$BLOBFS" mount "$images_store" "$mnt" --oci 2>>"$log" & ;;
    bindfs) bindfs -f -r "$store" "$mnt" 2>>"$log" & ;;
    rclone) RCLONE_CONFIG=/dev/null rclone mount "$store" "$mnt" --read-only --vfs-cache-mode off 2>>"$log" & ;;
    *) die "unknown contender $contender" ;;
    esac
    daemon_pid=$!
    daemon_mnt=$mnt
    started_pids+=("$daemon_pid")
    wait_mounted "$mnt" "$daemon_pid" "$log"
    if [[ $contender == blobfs* ]]; then wait_readahead "$mnt"; fi
}

# Stops the current daemon with SIGTERM (each of them unmounts on it) and makes sure the mount is
# gone: a lazy fusermount3 -u -z if it is not, SIGKILL if the daemon hangs.
unmount_current() {
    local pid=$daemon_pid mnt=$daemon_mnt deadline=$(($(usec) + 10000000))
    daemon_pid=""
    daemon_mnt=""
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && (($(usec) < deadline)); do sleep 0.02; done
    if kill -0 "$pid" 2>/dev/null; then
        say "daemon $pid did not stop on SIGTERM; unmounting $mnt and killing it"
        fusermount3 -u -z "$mnt" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    if [[ -n $(awk -v m="$mnt" '$5 == m' /proc/self/mountinfo) ]]; then fusermount3 -u -z "$mnt" || true; fi
}

peak_rss_mib() {
    awk '/^VmHWM:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$daemon_pid/status"
}

# ---------------------------------------------------------------------------------------------
# The store: one seeded large blob in bench/large and REPOS repositories of BLOBS_PER_REPO small
# blobs (bench/many-NN), laid out as the registry lays them out.

say "building iobench"
cc -O2 -Wall -o "$work/iobench" "$here/iobench.c"
iobench=$work/iobench

say "writing the store in $store"
t0=$(usec)
mkdir -p "$v2/blobs/sha256"
large_bytes=$((LARGE_MIB * 1024 * 1024))
# AES-CTR of zeros with a fixed key: seeded, incompressible, a few GB/s. head closes the pipe, so
# openssl dies of SIGPIPE: pipefail off in this subshell only.
(
    set +o pipefail
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 0 -in /dev/zero 2>/dev/null \
        | head -c "$large_bytes" >"$work/large.data"
)
[[ $(stat -c %s "$work/large.data") == "$large_bytes" ]] || die "could not write the large blob"
large_hex=$(openssl dgst -sha256 -r "$work/large.data" | cut -c1-64)
large_dir=$v2/blobs/sha256/${large_hex:0:2}/$large_hex
mkdir -p "$large_dir" "$v2/repositories/bench/large/_layers/sha256/$large_hex"
mv "$work/large.data" "$large_dir/data"
printf 'sha256:%s' "$large_hex" >"$v2/repositories/bench/large/_layers/sha256/$large_hex/link"
"$PYTHON" "$here/mkstore.py" "$store" "$REPOS" "$BLOBS_PER_REPO" "$work/names"
# Figure 7's store, apart so that it changes none of the other figures: a repository of manifest
# revisions and tags.
images_store=$work/images-store
"$PYTHON" "$here/mkimages.py" "$images_store" "$IMAGE_REVISIONS" "$IMAGE_TAGS"
echo "bench/large/blobs/sha256:$large_hex" >>"$work/names/all-blobs.names"
echo "bench/large/_layers/sha256/$large_hex" >>"$work/names/all-layers.names"
total_blobs=$(wc -l <"$work/names/all-blobs.names")
# A store holding only the large blob (a hard link: the same file, the same page cache), for the
# throughput of `blobfs verify` (figure 6a).
large_store=$work/large-store
mkdir -p "$large_store/docker/registry/v2/blobs/sha256/${large_hex:0:2}/$large_hex" \
    "$large_store/docker/registry/v2/repositories/bench/large/_layers/sha256/$large_hex"
ln "$large_dir/data" "$large_store/docker/registry/v2/blobs/sha256/${large_hex:0:2}/$large_hex/data"
cp "$v2/repositories/bench/large/_layers/sha256/$large_hex/link" \
    "$large_store/docker/registry/v2/repositories/bench/large/_layers/sha256/$large_hex/link"
store_seconds=$(awk -v a="$t0" -v b="$(usec)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
say "store written in ${store_seconds}s: $total_blobs blobs ($LARGE_MIB MiB + $((REPOS * BLOBS_PER_REPO)) small)"

# Paths of the same files as each contender shows them.
large_rel=docker/registry/v2/blobs/sha256/${large_hex:0:2}/$large_hex/data
layers_rel=docker/registry/v2/repositories/bench/many-00/_layers/sha256
repos_rel=docker/registry/v2/repositories
large_path() { # <contender>
    case $1 in
    native) echo "$store/$large_rel" ;;
    blobfs*) echo "$work/mnt/$1/repo/bench/large/blobs/sha256:$large_hex" ;;
    *) echo "$work/mnt/$1/$large_rel" ;;
    esac
}
blobs_dir() { # the 10,000-blob repository's listing, and the names to stat in it
    case $1 in
    native) echo "$store/$layers_rel" ;;
    blobfs*) echo "$work/mnt/$1/repo/bench/many-00/blobs" ;;
    *) echo "$work/mnt/$1/$layers_rel" ;;
    esac
}
blob_names() { case $1 in blobfs*) echo "$work/names/blobs.names" ;; *) echo "$work/names/layers.names" ;; esac; }
tree_root() { # what `find | wc -l` walks, and the base of the all-blob name lists
    case $1 in
    native) echo "$store/$repos_rel" ;;
    blobfs*) echo "$work/mnt/$1/repo" ;;
    *) echo "$work/mnt/$1/$repos_rel" ;;
    esac
}
all_names() { case $1 in blobfs*) echo "$work/names/all-blobs.names" ;; *) echo "$work/names/all-layers.names" ;; esac; }

read_large() { dd if="$1" of=/dev/null bs=1M status=none; }
count_tree() { find "$1" | wc -l >"$work/count"; }

can_drop_caches=yes
drop_caches() { echo 3 >/proc/sys/vm/drop_caches; }
if ! { [[ -w /proc/sys/vm/drop_caches ]] && drop_caches 2>/dev/null; }; then can_drop_caches=""; fi

# The host caches that a figure assumes are warmed right before it: this machine's kernel runs a
# DAMON "pageout" scheme (/sys/kernel/mm/damon) that evicts page-cache pages left untouched for
# about a minute, so "in the host's page cache" holds only if the file was read just before.
warm_file() { read_large "$1"; }
warm_repo() { # the 10,000-blob repository: its link files and its blobs' data
    (cd "$v2" && xargs -a "$work/names/data.paths" cat >/dev/null)
    find "$store/$layers_rel" -name link -print0 | xargs -0 cat >/dev/null
}
warm_tree() { # every directory and link file of the store
    find "$store/docker" >/dev/null
    find "$v2/repositories" -name link -print0 | xargs -0 cat >/dev/null
}
warm_tree

file_contenders=(native blobfs blobfs-noverify bindfs rclone)
# What this binary offers (read whole: `grep -q` in a pipe can kill the writer with SIGPIPE, and
# pipefail then reads that as "not offered").
mount_help=$("$BLOBFS" mount --help 2>&1 || true)
# blobfs --remember-verified reads through a fresh mount a blob that an earlier mount verified:
# one mount reads the large blob first, and every later mount of it finds it in the ledger.
if [[ $mount_help == *--remember-verified* ]]; then
    say "priming the verification ledger: one mount reads the large blob"
    mount_contender blobfs-remembered
    read_large "$(large_path blobfs-remembered)"
    unmount_current
    file_contenders=(native blobfs blobfs-noverify blobfs-remembered bindfs rclone)
fi
# Where blobfs serves reads through the kernel's FUSE passthrough (issue 13), the same figures with
# it off, side by side: the daemon-served path must stay as it was.
if [[ $mount_help == *--passthrough* ]]; then
    file_contenders+=(blobfs-ptoff blobfs-noverify-ptoff)
fi
meta_contenders=(native blobfs bindfs rclone)
# With Prometheus metrics on (issue 15: at most 3% slower than off on the read and stat figures),
# where this binary offers them; the port is one of the script's own, free or the mount says so.
METRICS_PORT=${BENCH_METRICS_PORT:-19464}
if [[ $mount_help == *--metrics-address* ]]; then
    file_contenders+=(blobfs-metrics)
    meta_contenders+=(blobfs-metrics)
fi

# ---------------------------------------------------------------------------------------------
# Figure 1a/1b: sequential read of the 1 GiB blob in 1 MiB blocks, the data file in the host's
# page cache: first read through a fresh mount, then a second read in the same mount. The
# contenders take turns within each run, so that a noisy neighbour hits them alike. Figure 5a is
# the daemon's peak RSS after that first read.
for run in $(seq "$RUNS"); do
    say "figure 1a/1b: sequential read, run $run/$RUNS"
    for c in "${file_contenders[@]}"; do
        warm_file "$store/$large_rel"
        [[ $c == native ]] || mount_contender "$c"
        measure 1a "$c" "$run" read_large "$(large_path "$c")"
        [[ $c == native ]] || record 5a "$c" "$run" "" "" "" "$(peak_rss_mib)"
        measure 1b "$c" "$run" read_large "$(large_path "$c")"
        [[ $c == native ]] || unmount_current
    done
done

# Figure 1c: cold, after dropping the host's caches (with the mount already up).
if [[ -n $can_drop_caches ]]; then
    for run in $(seq "$HEAVY_RUNS"); do
        say "figure 1c: sequential read after drop_caches, run $run/$HEAVY_RUNS"
        for c in "${file_contenders[@]}"; do
            [[ $c == native ]] || mount_contender "$c"
            drop_caches
            measure 1c "$c" "$run" read_large "$(large_path "$c")"
            [[ $c == native ]] || unmount_current
        done
    done
else
    say "figure 1c skipped: /proc/sys/vm/drop_caches is not writable (run as root)"
    record 1c skipped 0 "" "" "" "needs root to write /proc/sys/vm/drop_caches"
fi

# Figure 2: 4 KiB reads at seeded random offsets of the 1 GiB blob; first pass through a fresh
# mount, then the same offsets again (warm).
for run in $(seq "$HEAVY_RUNS"); do
    say "figure 2: $RANDOM_READS random 4 KiB reads, run $run/$HEAVY_RUNS"
    for c in "${file_contenders[@]}"; do
        warm_file "$store/$large_rel"
        [[ $c == native ]] || mount_contender "$c"
        measure_inner 2a "$c" "$run" "$iobench" randread "$(large_path "$c")" "$RANDOM_READS" "$RANDOM_SEED"
        measure_inner 2b "$c" "$run" "$iobench" randread "$(large_path "$c")" "$RANDOM_READS" "$RANDOM_SEED"
        [[ $c == native ]] || unmount_current
    done
done

# Figure 3: metadata of the 10,000-blob repository. stat(2) of every blob through a fresh mount,
# twice, then open(2)+close(2) of each (3g: the names are held, so this is what an open costs:
# blobfs checks the repository's link and the data file's version at every open); `ls -l` of its
# listing through another fresh mount, twice.
for run in $(seq "$RUNS"); do
    say "figure 3: stat and ls -l of $BLOBS_PER_REPO blobs, run $run/$RUNS"
    warm_repo
    for c in "${meta_contenders[@]}"; do
        [[ $c == native ]] || mount_contender "$c"
        measure_inner 3a "$c" "$run" "$iobench" stat "$(blobs_dir "$c")" "$(blob_names "$c")"
        measure_inner 3b "$c" "$run" "$iobench" stat "$(blobs_dir "$c")" "$(blob_names "$c")"
        measure_inner 3g "$c" "$run" "$iobench" open "$(blobs_dir "$c")" "$(blob_names "$c")"
        [[ $c == native ]] || unmount_current
        [[ $c == native ]] || mount_contender "$c"
        measure 3c "$c" "$run" ls -l "$(blobs_dir "$c")"
        measure 3d "$c" "$run" ls -l "$(blobs_dir "$c")"
        [[ $c == native ]] || unmount_current
    done
done

# Figure 7: a repository's manifests and tags. `ls -l` of its 10,000 manifest revisions and of its
# 1,000 tags through a fresh mount, against native `ls -l` of `_manifests/revisions/sha256` and
# `_manifests/tags`; then reading the OCI view's generated index.json of those tags (no native
# counterpart: it exists only as blobfs writes it).
images_manifests=$images_store/docker/registry/v2/repositories/bench/images/_manifests
for run in $(seq "$RUNS"); do
    say "figure 7: ls -l of $IMAGE_REVISIONS manifests and $IMAGE_TAGS tags, run $run/$RUNS"
    find "$images_store/docker" >/dev/null
    find "$images_manifests" -name link -print0 | xargs -0 cat >/dev/null
    measure 7a native "$run" ls -l "$images_manifests/revisions/sha256"
    measure 7b native "$run" ls -l "$images_manifests/tags"
    mount_contender blobfs-images
    measure 7a blobfs "$run" ls -l "$work/mnt/blobfs-images/repo/bench/images/manifests"
    unmount_current
    mount_contender blobfs-images
    measure 7b blobfs "$run" ls -l "$work/mnt/blobfs-images/repo/bench/images/tags"
    measure 7c blobfs "$run" cat "$work/mnt/blobfs-images/oci/bench/images/index.json"
    unmount_current
done

# Figure 3e: `find | wc -l` over the whole tree through a fresh mount. bindfs and rclone take
# tens of seconds per walk here, so they walk once; native and blobfs walk HEAVY_RUNS times.
warm_tree
for c in "${meta_contenders[@]}"; do
    runs=$HEAVY_RUNS
    [[ $c == bindfs || $c == rclone ]] && runs=1
    for run in $(seq "$runs"); do
        say "figure 3e: find | wc -l over $total_blobs blobs, $c, run $run/$runs"
        [[ $c == native ]] || mount_contender "$c"
        measure 3e "$c" "$run" count_tree "$(tree_root "$c")"
        record 3e-entries "$c" "$run" "" "" "" "$(tr -d ' ' <"$work/count")"
        [[ $c == native ]] || unmount_current
    done
done

# Figures 3f and 5b: stat(2) of every blob of the store through a fresh mount (once), then the
# daemon's peak RSS.
warm_tree
for c in "${meta_contenders[@]}"; do
    say "figure 3f/5b: stat of all $total_blobs blobs, $c"
    [[ $c == native ]] || mount_contender "$c"
    measure_inner 3f "$c" 1 "$iobench" stat "$(tree_root "$c")" "$(all_names "$c")"
    [[ $c == native ]] || record 5b "$c" 1 "" "" "" "$(peak_rss_mib)"
    [[ $c == native ]] || unmount_current
done

# Figure 4: writes. `cp` of a 1 GiB file (not in the store, in the host's page cache) into
# `blobs/sha256:<hex>` of a fresh read-write mount, which verifies it against the digest and commits
# it at close, against native `cp` plus `sha256sum` of the copy. `sync` (not timed) before each
# run, so that neither starts with the other's dirty pages; the committed blob is removed after
# each run, so that every run stores it anew. Figure 5c is the daemon's peak RSS after the write.
if [[ $mount_help == *--read-write* ]]; then
    say "writing the 1 GiB source of figure 4"
    (
        set +o pipefail
        openssl enc -aes-128-ctr -nosalt -K 0f0e0d0c0b0a09080706050403020100 -iv 0 -in /dev/zero 2>/dev/null \
            | head -c "$large_bytes" >"$work/write.src"
    )
    write_hex=$(openssl dgst -sha256 -r "$work/write.src" | cut -c1-64)
    write_copy=$work/write.copy
    native_write() { cp "$1" "$2" && sha256sum "$2"; }
    for run in $(seq "$HEAVY_RUNS"); do
        say "figure 4: write 1 GiB, run $run/$HEAVY_RUNS"
        for c in native blobfs-rw; do
            read_large "$work/write.src"
            sync
            if [[ $c == native ]]; then
                measure 4 native "$run" native_write "$work/write.src" "$write_copy"
                rm -f "$write_copy"
            else
                mount_contender "$c"
                mkdir -p "$work/mnt/$c/repo/bench/write/blobs"
                measure 4 blobfs "$run" cp "$work/write.src" "$work/mnt/$c/repo/bench/write/blobs/sha256:$write_hex"
                record 5c blobfs "$run" "" "" "" "$(peak_rss_mib)"
                unmount_current
                [[ -f $v2/blobs/sha256/${write_hex:0:2}/$write_hex/data ]] || die "figure 4: the written blob was not committed"
                rm -rf "$v2/blobs/sha256/${write_hex:0:2}/$write_hex" "$v2/repositories/bench/write"
            fi
        done
    done
    rm -f "$work/write.src"
else
    say "figure 4 skipped: $BLOBFS has no read-write mounts (blobfs mount --read-write)"
    record 4 skipped 0 "" "" "" "read-write mounts have not landed in this blobfs ($blobfs_shown has no --read-write)"
fi

# Figure 6: `blobfs verify` against sha256sum over the same files, in the host's page cache:
# (a) a store holding only the 1 GiB blob, (b) the 10,000-blob repository (its links and blobs).
# `openssl dgst -sha256` is shown beside them: the hashing speed of this CPU.
for run in $(seq "$HEAVY_RUNS"); do
    say "figure 6: blobfs verify and sha256sum, run $run/$HEAVY_RUNS"
    warm_file "$store/$large_rel"
    warm_repo
    measure 6a blobfs "$run" "$BLOBFS" verify "$large_store"
    measure 6a sha256sum "$run" sha256sum "$store/$large_rel"
    measure 6a openssl "$run" openssl dgst -sha256 "$store/$large_rel"
    measure 6b blobfs "$run" "$BLOBFS" verify "$store" --repository bench/many-00
    measure 6b sha256sum "$run" bash -c 'cd "$1" && xargs -a "$2" sha256sum' _ "$v2" "$work/names/data.paths"
done

# ---------------------------------------------------------------------------------------------
# The S3 section (issue 14): bench/s3.sh starts its own radosgw, uploads its own objects and
# mounts each contender over them; it cleans up after itself. A failure there is reported in the
# doc rather than losing the figures above.
s3_dir=""
if [[ ${BENCH_S3:-on} != off ]]; then
    s3_dir=$work/s3
    mkdir -p "$s3_dir"
    say "S3 section: bench/s3.sh (radosgw; blobfs, rclone mount, s3fs)"
    s3_status=0
    BENCH_S3_RUNS=${BENCH_S3_RUNS:-$HEAVY_RUNS} BENCH_PYTHON=$PYTHON bash "$here/s3.sh" "$BLOBFS" "$s3_dir" \
        >"$work/s3.out" 2> >(tee "$work/s3.err" >&2) || s3_status=$?
    if ((s3_status != 0)); then
        say "bench/s3.sh failed (status $s3_status): the report says so"
        echo "bench/s3.sh exited with status $s3_status: $(grep -v '^\s*$' "$work/s3.err" | tail -n 1)" >"$s3_dir/s3-failed.txt"
    fi
fi

# ---------------------------------------------------------------------------------------------
# Report.

bench_seconds=$(awk -v a="${bench_start/./}" -v b="$(usec)" 'BEGIN { printf "%.0f", (b - a) / 1e6 }')
# What was measured: the commit checked out, and whether Sources/ differed from it when the bench
# ran (the binary may include such changes). BENCH_BLOBFS_DESCRIPTION replaces this when known.
git_rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$repo" status --porcelain -- Sources Package.swift 2>/dev/null) ]] \
    || git_rev+=", Sources/ had uncommitted changes during the run"
git_rev="${BENCH_BLOBFS_DESCRIPTION:-$git_rev}; binary built $(date -u -r "$BLOBFS" '+%Y-%m-%d %H:%M UTC')"
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "command=${BENCH_COMMAND:-bench/run.sh} (BLOBFS=$blobfs_shown)"
    echo "nproc=$(nproc)"
    echo "cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "memory=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    echo "libfuse=$(dpkg-query -W -f '${Version}' libfuse3-3 2>/dev/null || echo unknown)"
    echo "bindfs=$(bindfs --version | awk '{ print $2; exit }')"
    echo "rclone=$(rclone version | awk 'NR == 1 { print $2 }')"
    echo "coreutils=$(sha256sum --version | awk 'NR == 1 { print $NF }')"
    echo "blobfs=$git_rev"
    echo "filesystem=$(df -T "$store" | awk 'NR == 2 { print $2 " on " $1 }')"
    echo "load_start=$load_start"
    echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "runs=$RUNS"
    echo "heavy_runs=$HEAVY_RUNS"
    echo "large_mib=$LARGE_MIB"
    echo "repos=$REPOS"
    echo "blobs_per_repo=$BLOBS_PER_REPO"
    echo "image_revisions=$IMAGE_REVISIONS"
    echo "image_tags=$IMAGE_TAGS"
    echo "total_blobs=$total_blobs"
    echo "random_reads=$RANDOM_READS"
    echo "store_seconds=$store_seconds"
    echo "bench_seconds=$bench_seconds"
} >"$work/meta.env"

if [[ -n ${BENCH_RESULTS_DIR:-} ]]; then
    mkdir -p "$BENCH_RESULTS_DIR"
    cp "$results" "$work/meta.env" "$BENCH_RESULTS_DIR/"
    [[ -z $s3_dir ]] || cp "$s3_dir"/s3-* "$BENCH_RESULTS_DIR/" 2>/dev/null || true
fi
report_args=("$results" "$work/meta.env")
[[ -n $s3_dir ]] && report_args+=(--s3 "$s3_dir")
[[ -n $DOC ]] && report_args+=(--doc "$DOC" --chart "${DOC%.md}.png")
"$PYTHON" "$here/report.py" "${report_args[@]}"
