#!/usr/bin/env bash
# make bench's S3 section (issue 14): blobfs mounting a registry in an S3 bucket, side by side with
# rclone mount (S3 backend) and s3fs over the same bucket and the same objects, and native reads of
# a local copy of the same files. The server is Ceph's radosgw on 127.0.0.1 (scripts/radosgw.sh):
# the S3 server here that checks SigV4 as AWS does and serves ranges at about 0.9 GiB/s, which is
# therefore the ceiling of every contender (../shared/docs/s3.md, §5).
#
# Usage: bench/s3.sh <blobfs binary> <outdir>      (bench/run.sh calls it; runnable alone)
#   Writes <outdir>/s3-results.tsv (run.sh's columns plus server_cpu) and <outdir>/s3-meta.env, and
#   prints the S3 section of the report (bench/report.py --s3-only <outdir>).
#   BENCH_S3_RUNS=3                  interleaved rounds; the report shows medians
#   BENCH_S3_RANDOM_READS=5000       4 KiB reads at seeded offsets of the large blob
#   BENCH_S3_MEDIUM_MIB=64 BENCH_S3_LARGE_MIB=1024 BENCH_S3_BLOBS=10000
#   BENCH_S3_SMALL_CACHE=256M        the --cache-size of blobfs-smallcache: below the large blob,
#                                    which it therefore streams (the RSS bound)
#   BENCH_S3_CONTENDERS="native curl blobfs blobfs-smallcache rclone-off rclone-full s3fs"
#                                    (curl: one signed GET of each whole blob, the server's ceiling)
#   BENCH_S3_STEP_TIMEOUT=900        seconds one measured command may take; then it is recorded as failed
#   BENCH_S3_SERVER=<dir>            a radosgw already running (scripts/radosgw.sh start <dir>), left
#                                    running; the bucket must not exist yet. Default: start one here.
#   BENCH_S3_UPLOAD_TRANSFERS=16     rclone copy's parallel uploads
#   BENCH_S3_BUCKET=bench            the bucket (made here; with BENCH_S3_SERVER, a new name per run)
#   TMPDIR                           where the store, the server's data, the caches and mountpoints go
#
# Time: on this machine (2 shared cores, radosgw with its default Nagle on) one round took 21 min,
# most of it blobfs's two `ls -l` (about 4 min each), the streaming random reads of blobfs with the
# small cache and rclone --vfs-cache-mode off (about 5 min each); setup (start, store, upload of
# 30,004 objects) about 5 min. BENCH_S3_RUNS=1 for a quicker look.
#
# Every figure is taken on a fresh mount (a second read on the same one), every blobfs and
# rclone-full mount with a fresh, empty cache directory. Every mount is unmounted, every daemon
# stopped by its pid and the server stopped on every exit path; nothing is asserted about times.
set -euo pipefail

[[ $# -eq 2 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
BLOBFS=$(realpath "$1")
mkdir -p "$2"
out=$(cd "$2" && pwd)
RUNS=${BENCH_S3_RUNS:-3}
RANDOM_READS=${BENCH_S3_RANDOM_READS:-5000}
RANDOM_SEED=20240605
MEDIUM_MIB=${BENCH_S3_MEDIUM_MIB:-64}
LARGE_MIB=${BENCH_S3_LARGE_MIB:-1024}
BLOBS=${BENCH_S3_BLOBS:-10000}
SMALL_CACHE=${BENCH_S3_SMALL_CACHE:-256M}
CONTENDERS=(${BENCH_S3_CONTENDERS:-native curl blobfs blobfs-smallcache rclone-off rclone-full s3fs})
STEP_TIMEOUT=${BENCH_S3_STEP_TIMEOUT:-900}
TRANSFERS=${BENCH_S3_UPLOAD_TRANSFERS:-16}
PYTHON=${BENCH_PYTHON:-/usr/bin/python3}
MOUNT_DEADLINE_SECONDS=60
BUCKET=${BENCH_S3_BUCKET:-bench}
ROOT=registry  # the registry's rootdirectory in the bucket
export LC_ALL=C
# aws-sdk-go (rclone's S3 backend) refuses a custom CA bundle with its transport (s3.md, G1).
unset AWS_CA_BUNDLE

say() { printf 'bench s3 [%3ds]: %s\n' "$SECONDS" "$*" >&2; }
die() { say "$*"; exit 1; }
# shellcheck source=bench/mounting.sh
source "$here/mounting.sh"

[[ -x $BLOBFS ]] || die "no blobfs binary at $BLOBFS"
for tool in rclone s3fs fusermount3 mountpoint openssl cc curl; do
    command -v "$tool" >/dev/null || die "$tool is missing: run make bench-deps (and make deps for Ceph)"
done

# ---------------------------------------------------------------------------------------------
# Cleanup: the current mount and every daemon started (by pid), the server if this script started
# it, then the scratch directory (unless something is still mounted under it).

scratch=""
server_dir=""
own_server=""
daemon_pid="" daemon_mnt=""
started_pids=()

mounts_under() { awk -v dir="$1/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo; }

cleanup() {
    local status=$? pid m attempt
    trap - EXIT INT TERM
    set +e
    [[ -n $daemon_pid ]] && unmount_current
    for pid in "${started_pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null; done
    for attempt in $(seq 100); do
        alive=""
        for pid in "${started_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=yes; done
        [[ -z $alive ]] && break
        sleep 0.05
    done
    for pid in "${started_pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
    if [[ -n $scratch ]]; then
        for attempt in $(seq 10); do
            for m in $(mounts_under "$scratch"); do fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
            [[ -z $(mounts_under "$scratch") ]] && break
            sleep 0.1
        done
    fi
    if [[ -n $own_server ]]; then
        say "stopping radosgw"
        bash "$repo/scripts/radosgw.sh" stop "$server_dir"
    fi
    if [[ -n $scratch ]]; then
        if [[ -n $(mounts_under "$scratch") ]]; then
            say "still mounted, left in place: $(mounts_under "$scratch" | tr '\n' ' ')"
        else
            rm -rf --one-file-system "$scratch"
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say terminated; exit 143' TERM

scratch=$(mktemp -d "${TMPDIR:-/tmp}/blobfs-bench-s3.XXXXXX")
mkdir -p "$scratch/mnt" "$scratch/names" "$scratch/cache" "$scratch/logs"
results=$out/s3-results.tsv
printf 'figure\tcontender\trun\tseconds\tdaemon_cpu\tclient_cpu\tvalue\tserver_cpu\n' >"$results"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# The server. Its CPU time is that of every process radosgw.sh started (monitor, OSD, radosgw).

t0_server=$EPOCHREALTIME
if [[ -n ${BENCH_S3_SERVER:-} ]]; then
    server_dir=$(cd "$BENCH_S3_SERVER" && pwd)
    say "using the running radosgw in $server_dir"
else
    server_dir=$scratch/radosgw
    say "starting radosgw (scripts/radosgw.sh, stopped with this script's pid $$)"
    own_server=yes
    bash "$repo/scripts/radosgw.sh" start "$server_dir" "$$" >"$scratch/logs/radosgw-start.log" 2>&1 \
        || { own_server=""; cat "$scratch/logs/radosgw-start.log" >&2; die "radosgw did not start"; }
fi
server_start_seconds=$(awk -v a="$t0_server" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
# shellcheck disable=SC1091
source "$server_dir/env"
server_pids=$(cat "$server_dir/pids")
CLK_TCK=$(getconf CLK_TCK)

ticks_of() { # <pids...>: their utime + stime in clock ticks (0 for any gone)
    local pid sum=0 t
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        t=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }') || t=0
        sum=$((sum + t))
    done
    echo "$sum"
}
# shellcheck disable=SC2086
server_ticks() { ticks_of $server_pids; }
daemon_ticks() { [[ -n $daemon_pid ]] && ticks_of "$daemon_pid" || echo ""; }
cpu_seconds() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }' || true; }
children_cpu() {
    awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.3f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1"
}
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"; }

# measure <figure> <contender> <run> <check> <program...>: wall seconds of the program (no shell
# between: a program under `timeout`), the daemon's and the server's CPU seconds over it, the
# program's own CPU seconds; then `<check>` judges its output (step.out, step.err). A program that
# fails, outlives STEP_TIMEOUT or fails its check is recorded with no time and "failed (…)".
measure() {
    local figure=$1 contender=$2 run=$3 check=$4
    shift 4
    local t0 t1 d0 d1 s0 s1 status=0 why
    d0=$(daemon_ticks)
    s0=$(server_ticks)
    t0=$(usec)
    times >"$scratch/times.0"
    timeout -k 10 "$STEP_TIMEOUT" "$@" >"$scratch/step.out" 2>"$scratch/step.err" || status=$?
    times >"$scratch/times.1"
    t1=$(usec)
    s1=$(server_ticks)
    d1=$(daemon_ticks)
    if ((status != 0)); then
        why="status $status"
        ((status == 124)) && why="timed out after ${STEP_TIMEOUT}s"
    else
        why=$("$check") || true
    fi
    if [[ -n $why ]]; then
        say "$figure $contender run $run failed: $why: $(head -c 300 "$scratch/step.err")"
        record "$figure" "$contender" "$run" "" "" "" "failed ($why)" ""
        return 0
    fi
    record "$figure" "$contender" "$run" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e6 }')" \
        "$(cpu_seconds "$d0" "$d1")" \
        "$(awk -v a="$(children_cpu "$scratch/times.0")" -v b="$(children_cpu "$scratch/times.1")" 'BEGIN { printf "%.3f", b - a }')" \
        "" "$(cpu_seconds "$s0" "$s1")"
}

# Checks: each prints what is wrong with the last step's output, nothing when it is right.
expected=""  # what the check compares with: bytes read, entries listed
read_check() { # dd's summary on standard error names the bytes copied
    local got
    got=$(awk '/bytes/ { print $1 }' "$scratch/step.err")
    [[ $got == "$expected" ]] || echo "read $got of $expected bytes"
}
list_check() { # `ls -l`: one line per entry after "total"
    local n
    n=$(grep -c '^[-d]' "$scratch/step.out") || true
    [[ $n == "$expected" ]] || echo "ls -l showed $n entries, not $expected"
}
get_check() { # curl -w '%{size_download}'
    [[ $(<"$scratch/step.out") == "$expected" ]] || echo "GET gave $(<"$scratch/step.out") of $expected bytes"
}
no_check() { :; }

# warm <file>: reads a local file into the host's page cache, untimed.
warm() { cat "$1" >/dev/null; }

# ---------------------------------------------------------------------------------------------
# The objects: a registry store made here, with a medium and a large blob (seeded AES-CTR bytes)
# linked in `bench/large`, and a repository `bench/many-00` of BLOBS small blobs (bench/mkstore.py),
# uploaded with `rclone copy` to s3://bench/registry. The same small blobs' data also go, one
# object per blob, to the flat prefix s3://bench/flat/<hex>: the directory in which the peers list
# the 10,000 blobs (see the listing below).

say "building iobench"
cc -O2 -Wall -o "$scratch/iobench" "$here/iobench.c"
store=$scratch/store
v2=$store/docker/registry/v2
seeded() { # <key hex> <MiB> <file>
    (
        set +o pipefail
        openssl enc -aes-128-ctr -nosalt -K "$1" -iv 0 -in /dev/zero 2>/dev/null | head -c $(($2 << 20)) >"$3"
    )
}
add_blob() { # <file> <repository>: moves it into the store as a blob linked in the repository; prints its hex
    local hex
    hex=$(openssl dgst -sha256 -r "$1" | cut -c1-64)
    mkdir -p "$v2/blobs/sha256/${hex:0:2}/$hex" "$v2/repositories/$2/_layers/sha256/$hex"
    mv "$1" "$v2/blobs/sha256/${hex:0:2}/$hex/data"
    printf 'sha256:%s' "$hex" >"$v2/repositories/$2/_layers/sha256/$hex/link"
    echo "$hex"
}
say "writing the store: a $MEDIUM_MIB MiB and a $LARGE_MIB MiB blob, and $BLOBS small blobs"
mkdir -p "$v2/blobs/sha256"
seeded 101112131415161718191a1b1c1d1e1f "$MEDIUM_MIB" "$scratch/medium.data"
medium_hex=$(add_blob "$scratch/medium.data" bench/large)
seeded 000102030405060708090a0b0c0d0e0f "$LARGE_MIB" "$scratch/large.data"
large_hex=$(add_blob "$scratch/large.data" bench/large)
medium_bytes=$((MEDIUM_MIB << 20))
large_bytes=$((LARGE_MIB << 20))
"$PYTHON" "$here/mkstore.py" "$store" 1 "$BLOBS" "$scratch/names"
flat=$scratch/flat
mkdir -p "$flat"
while read -r path; do
    name=${path%/data}
    ln "$v2/$path" "$flat/${name##*/}"
done <"$scratch/names/data.paths"

# rclone's S3 remote, from the environment: `peer:` (uploads, warming and the rclone mounts).
export RCLONE_CONFIG_PEER_TYPE=s3 RCLONE_CONFIG_PEER_PROVIDER=Ceph RCLONE_CONFIG_PEER_ENDPOINT=$S3_ENDPOINT \
    RCLONE_CONFIG_PEER_ACCESS_KEY_ID=$S3_ACCESS_KEY RCLONE_CONFIG_PEER_SECRET_ACCESS_KEY=$S3_SECRET_KEY \
    RCLONE_CONFIG_PEER_REGION=$S3_REGION RCLONE_CONFIG_PEER_FORCE_PATH_STYLE=true
rc() { rclone --config /dev/null "$@"; }

say "uploading the store and the flat prefix with rclone copy --transfers $TRANSFERS"
t0=$EPOCHREALTIME
s0=$(server_ticks)
rc mkdir "peer:$BUCKET"
rc copy "$store" "peer:$BUCKET/$ROOT" --transfers "$TRANSFERS" --checkers "$TRANSFERS" --no-check-dest
rc copy "$flat" "peer:$BUCKET/flat" --transfers "$TRANSFERS" --checkers "$TRANSFERS" --no-check-dest
upload_seconds=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
upload_server_cpu=$(cpu_seconds "$s0" "$(server_ticks)")
upload_objects=$(($(find "$store" -type f | wc -l) + BLOBS))
say "uploaded $upload_objects objects in ${upload_seconds}s (server CPU ${upload_server_cpu}s)"
# The blobs read and the flat prefix listed once before the first figure (and checked against the
# local copies), so that the first contender does not meet a colder server than the others.
say "reading the two blobs and listing the flat prefix once over S3 (warms the server)"
rc cat "peer:$BUCKET/$ROOT/docker/registry/v2/blobs/sha256/${medium_hex:0:2}/$medium_hex/data" | cmp - "$v2/blobs/sha256/${medium_hex:0:2}/$medium_hex/data"
rc cat "peer:$BUCKET/$ROOT/docker/registry/v2/blobs/sha256/${large_hex:0:2}/$large_hex/data" | cmp - "$v2/blobs/sha256/${large_hex:0:2}/$large_hex/data"
rc lsl "peer:$BUCKET/flat" >/dev/null

# ---------------------------------------------------------------------------------------------
# Mounts.

printf '%s:%s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$scratch/s3fs.passwd"
chmod 600 "$scratch/s3fs.passwd"
mount_count=0

# wait_mounted and wait_readahead: bench/mounting.sh.

# mount_contender <contender>: a fresh mount at $scratch/mnt/<contender>, with a fresh cache.
mount_contender() {
    local c=$1 mnt=$scratch/mnt/$1 log=$scratch/logs/$1.log cache
    mount_count=$((mount_count + 1))
    cache=$scratch/cache/$c.$mount_count
    mkdir -p "$mnt"
    local blobfs_s3=("$BLOBFS" mount "s3://$BUCKET/$ROOT" "$mnt" --s3-endpoint "$S3_ENDPOINT" --s3-region "$S3_REGION" --cache-dir "$cache")
    case $c in
    blobfs) AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY "${blobfs_s3[@]}" 2>>"$log" & ;;
    blobfs-smallcache)
        AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY "${blobfs_s3[@]}" --cache-size "$SMALL_CACHE" 2>>"$log" & ;;
    rclone-off | rclone-full)
        rclone mount --config /dev/null --read-only --vfs-cache-mode "${c#rclone-}" --cache-dir "$cache" \
            "peer:$BUCKET" "$mnt" 2>>"$log" & ;;
    s3fs)
        s3fs "$BUCKET" "$mnt" -f -o "ro,url=$S3_ENDPOINT,use_path_request_style,passwd_file=$scratch/s3fs.passwd,endpoint=$S3_REGION,dbglevel=err" \
            >>"$log" 2>&1 & ;;
    *) die "unknown contender $c" ;;
    esac
    daemon_pid=$!
    daemon_mnt=$mnt
    started_pids+=("$daemon_pid")
    wait_mounted "$mnt" "$daemon_pid" "$log"
    if [[ $c == blobfs* ]]; then wait_readahead "$mnt"; fi
}

# Unmounts the current mount (each daemon exits when it is unmounted), SIGTERM then SIGKILL and a
# lazy unmount if it does not; removes its cache.
unmount_current() {
    local pid=$daemon_pid mnt=$daemon_mnt deadline=$(($(usec) + 10000000))
    daemon_pid="" daemon_mnt=""
    fusermount3 -u "$mnt" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && (($(usec) < deadline)); do sleep 0.02; done
    if kill -0 "$pid" 2>/dev/null; then
        say "daemon $pid did not stop after unmounting $mnt; SIGTERM, then SIGKILL"
        kill -TERM "$pid" 2>/dev/null || true
        sleep 2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    if [[ -n $(awk -v m="$mnt" '$5 == m' /proc/self/mountinfo) ]]; then fusermount3 -u -z "$mnt" || true; fi
    rm -rf "$scratch/cache/"*
}

peak_rss_mib() { awk '/^VmHWM:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$daemon_pid/status"; }
record_rss() { [[ $2 == native ]] || record "$1" "$2" "$3" "" "" "" "$(peak_rss_mib)" ""; }

# The same files as each contender shows them. blobfs lists a repository's blobs; the peers have no
# such directory (the registry keeps each blob's data in a directory of its own, and the
# repository's `_layers` holds 10,000 directories of one link each, with no sizes), so they list the
# flat prefix of the same 10,000 data objects: one paged listing gives them every name and size,
# the cheapest listing of those blobs an S3 mount can make. blobfs, for the same `ls -l`, lists the
# repository's links and finds each blob's size in the store.
data_key() { echo "docker/registry/v2/blobs/sha256/${1:0:2}/$1/data"; }
blob_path() { # <contender> <hex>
    case $1 in
    native) echo "$store/$(data_key "$2")" ;;
    blobfs*) echo "$scratch/mnt/$1/repo/bench/large/blobs/sha256:$2" ;;
    *) echo "$scratch/mnt/$1/$ROOT/$(data_key "$2")" ;;
    esac
}
listing_dir() {
    case $1 in
    native) echo "$flat" ;;
    blobfs*) echo "$scratch/mnt/$1/repo/bench/many-00/blobs" ;;
    *) echo "$scratch/mnt/$1/flat" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# The figures, contenders taking turns within each round:
#   s3-64a/s3-64b   dd bs=1M of the medium blob: first read on a fresh mount, then a second
#   s3-1ga/s3-1gb   the same for the large blob
#   s3-rand         RANDOM_READS preads of 4 KiB at seeded offsets of the large blob on a fresh
#                   mount (iobench; the wall time of the whole process, so that an open that
#                   fetches is in it)
#   s3-lsa/s3-lsb   ls -l of the 10,000 blobs: first on a fresh mount, then again (not for
#                   blobfs-smallcache: it lists as blobfs does)
#   s3-rss-*        the daemon's peak RSS (VmHWM) at the end of each of those mounts
# native reads the local copies, warmed into the host's page cache right before; curl GETs each
# blob once per round (first read only).

# One signed GET of an object (SigV4 by curl), the body discarded: what the server itself gives one
# stream in this run, the ceiling next to the mounts' figures.
curl_get=(curl -sS -f --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY"
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -o /dev/null -w '%{size_download}')

for run in $(seq "$RUNS"); do
    for size in medium large; do
        if [[ $size == medium ]]; then hex=$medium_hex expected=$medium_bytes f=s3-64; else hex=$large_hex expected=$large_bytes f=s3-1g; fi
        say "round $run/$RUNS: first and second read of the $size blob"
        for c in "${CONTENDERS[@]}"; do
            if [[ $c == curl ]]; then
                measure "${f}a" curl "$run" get_check "${curl_get[@]}" "$S3_ENDPOINT/$BUCKET/$ROOT/$(data_key "$hex")"
                continue
            fi
            if [[ $c == native ]]; then warm "$(blob_path native "$hex")"; else mount_contender "$c"; fi
            measure "${f}a" "$c" "$run" read_check dd if="$(blob_path "$c" "$hex")" of=/dev/null bs=1M
            measure "${f}b" "$c" "$run" read_check dd if="$(blob_path "$c" "$hex")" of=/dev/null bs=1M
            record_rss "s3-rss-${f#s3-}" "$c" "$run"
            [[ $c == native ]] || unmount_current
        done
    done
    say "round $run/$RUNS: $RANDOM_READS random 4 KiB reads of the large blob"
    for c in "${CONTENDERS[@]}"; do
        [[ $c == curl ]] && continue
        if [[ $c == native ]]; then warm "$(blob_path native "$large_hex")"; else mount_contender "$c"; fi
        measure s3-rand "$c" "$run" no_check "$scratch/iobench" randread "$(blob_path "$c" "$large_hex")" "$RANDOM_READS" "$RANDOM_SEED"
        record_rss s3-rss-rand "$c" "$run"
        [[ $c == native ]] || unmount_current
    done
    say "round $run/$RUNS: ls -l of $BLOBS blobs"
    expected=$BLOBS
    for c in "${CONTENDERS[@]}"; do
        # blobfs-smallcache lists exactly as blobfs does: the cache's size only changes data reads.
        [[ $c == curl || $c == blobfs-smallcache ]] && continue
        [[ $c == native ]] || mount_contender "$c"
        measure s3-lsa "$c" "$run" list_check ls -l "$(listing_dir "$c")"
        measure s3-lsb "$c" "$run" list_check ls -l "$(listing_dir "$c")"
        record_rss s3-rss-ls "$c" "$run"
        [[ $c == native ]] || unmount_current
    done
done

{
    echo "s3_server=radosgw $(radosgw --version 2>/dev/null | awk '{ print $3; exit }')"
    echo "s3_rclone=$(rclone version | awk 'NR == 1 { print $2 }')"
    echo "s3_s3fs=$(s3fs --version 2>/dev/null | sed -n '1s/.*File System V\([^ ]*\).*/\1/p')"
    echo "s3_bucket=$BUCKET"
    echo "s3_runs=$RUNS"
    echo "s3_medium_mib=$MEDIUM_MIB"
    echo "s3_large_mib=$LARGE_MIB"
    echo "s3_blobs=$BLOBS"
    echo "s3_random_reads=$RANDOM_READS"
    echo "s3_small_cache=$SMALL_CACHE"
    echo "s3_contenders=${CONTENDERS[*]}"
    echo "s3_server_start_seconds=$([[ -n $own_server ]] && echo "$server_start_seconds" || echo "already running")"
    echo "s3_upload_seconds=$upload_seconds"
    echo "s3_upload_server_cpu=$upload_server_cpu"
    echo "s3_upload_objects=$upload_objects"
    echo "s3_upload_transfers=$TRANSFERS"
    echo "s3_load_start=$load_start"
    echo "s3_load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "s3_seconds=$SECONDS"
} >"$out/s3-meta.env"
say "done in ${SECONDS}s; rows in $results"
"$PYTHON" "$here/report.py" --s3-only "$out"
