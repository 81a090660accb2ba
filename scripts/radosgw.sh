#!/usr/bin/env bash
# A throw-away Ceph cluster of one monitor, one OSD and one radosgw on 127.0.0.1, for the tests and
# for `make bench`: radosgw is the S3 server here that checks AWS Signature V4 as AWS does and has
# real multipart and ETag semantics (moto checks neither), and it is fast enough to benchmark.
#
#   scripts/radosgw.sh start <dir> [<watched-pid>]   start it in <dir> (must not exist or be empty);
#                                                    prints the lines of <dir>/env when S3 answers
#   scripts/radosgw.sh stop <dir>                    stop every process it started, remove <dir>
#
# <dir>/env holds S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY and S3_REGION (shell syntax, one per
# line). With <watched-pid>, the cluster also stops when that process ends however it ended (a
# test process killed by a signal leaves no Ceph behind). Needs root for nothing but the packages:
# radosgw ceph-mon ceph-osd ceph-common (the Makefile installs them). Starting takes 20–90 s,
# mostly the OSD's mkfs and the first pools radosgw creates.
#
# radosgw's beast frontend runs with Nagle's algorithm unless told otherwise (tcp_nodelay=1): it
# then writes a small answer's body only after the client acknowledged its headers, which a client
# on a reused connection delays by 40 ms — every link read and HEAD cost 44 ms (measured with one
# libcurl keep-alive handle; a listing of 10,000 blobs took 250 s). Production RGW deployments set
# it (or sit behind a proxy that does); so does this one.
set -euo pipefail

usage() { echo "usage: $0 start <dir> [<watched-pid>] | stop <dir>" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
command=$1 dir=$2 watched=${3:-}

stop_cluster() {
    local d=$1
    [[ -f $d/pids ]] || { rm -rf "$d"; return 0; }
    # Reverse order: radosgw, the OSD, the monitor; then the watcher, unless it is the one stopping.
    local pids
    pids=$(tac "$d/pids"; [[ -f $d/watcher ]] && cat "$d/watcher")
    pids=$(grep -vx "$$" <<<"$pids" || true)
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $pids; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$d"
}

case $command in
stop) stop_cluster "$dir"; exit 0 ;;
start) ;;
*) usage ;;
esac

for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool uuidgen curl ss; do
    command -v "$tool" >/dev/null || { echo "radosgw.sh: $tool is missing (make deps installs it)" >&2; exit 1; }
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
[[ -z $(ls -A "$dir") ]] || { echo "radosgw.sh: $dir is not empty" >&2; exit 1; }
D=$dir
mkdir -p "$D"/{mon,osd0,run,log,crash}
: > "$D/pids"
fail() {
    echo "radosgw.sh: $*" >&2
    for f in "$D"/log/*.log "$D"/*.out; do [[ -s $f ]] && { echo "--- $f" >&2; tail -5 "$f" >&2; }; done
    stop_cluster "$D"
    exit 1
}
trap 'fail "interrupted"' INT TERM

used=" "
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 12000))
        [[ $used == *" $p "* ]] && continue
        [[ -z $(ss -Htan "sport = :$p") ]] || continue
        used+="$p "; echo "$p"; return 0
    done
    return 1
}
# spawn NAME CMD...: in its own session, so a terminal's signals do not reach it; its pid is recorded.
spawn() {
    local name=$1; shift
    setsid "$@" >>"$D/$name.out" 2>&1 </dev/null &
    echo $! >> "$D/pids"
    spawned=$!
}

mon_v2=$(free_port) mon_v1=$(free_port) s3_port=$(free_port) || fail "no free port"
fsid=$(uuidgen)
access_key=blobfs$(uuidgen | tr -d - | head -c 12)
secret_key=$(uuidgen | tr -d -)$(uuidgen | tr -d - | head -c 8)
cat > "$D/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
public network = 127.0.0.1/32
ms bind ipv6 = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
keyring = $D/\$name.keyring
crash dir = $D/crash
[mon]
mon data = $D/mon
mon data avail crit = 1
mon data avail warn = 2
[osd]
osd data = $D/osd0
osd objectstore = bluestore
bluestore block path = $D/osd0/block.file
bluestore block create = true
bluestore block size = 21474836480
osd memory target = 1073741824
bluestore cache autotune = false
bluestore cache size = 268435456
osd op num shards = 1
osd op num threads per shard = 2
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$s3_port tcp_nodelay=1
rgw data = $D/rgw
EOF

if [[ -n $watched ]]; then
    # Stops the cluster when the watched process ends, however it ended.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop "$3"' \
        radosgw-watch "$watched" "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" "$D" \
        >/dev/null 2>&1 </dev/null &
    echo $! > "$D/watcher"
fi

C=(-c "$D/ceph.conf")
admin() { timeout 20 ceph "${C[@]}" -n client.admin --connect-timeout 10 "$@"; }
ceph-authtool --create-keyring "$D/mon.a.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$D/client.admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$D/mon.a.keyring" --import-keyring "$D/client.admin.keyring" >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]" --fsid "$fsid" "$D/monmap" >/dev/null
timeout 60 ceph-mon "${C[@]}" --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.a.keyring" \
    >>"$D/mkfs.out" 2>&1 || fail "ceph-mon --mkfs failed"
spawn mon ceph-mon "${C[@]}" -i a -f
mon=$spawned
for _ in $(seq 120); do
    kill -0 "$mon" 2>/dev/null || fail "ceph-mon died"
    admin mon stat >/dev/null 2>&1 && break
    sleep 0.5
done
osd_uuid=$(uuidgen)
[[ $(admin osd new "$osd_uuid") == 0 ]] || fail "ceph osd new did not return id 0"
ceph-authtool --create-keyring "$D/osd.0.keyring" --gen-key -n osd.0 >/dev/null
admin auth add osd.0 osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' -i "$D/osd.0.keyring" \
    >/dev/null 2>&1 || fail "ceph auth add osd.0 failed"
timeout 180 ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$D/mkfs.out" 2>&1 || fail "ceph-osd --mkfs failed"
spawn osd ceph-osd "${C[@]}" -i 0 -f
osd=$spawned
for _ in $(seq 240); do
    kill -0 "$osd" 2>/dev/null || fail "ceph-osd died"
    admin osd stat 2>/dev/null | grep -q '1 up' && break
    sleep 0.5
done
admin auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' mgr 'allow rw' \
    -o "$D/client.rgw.a.keyring" >/dev/null 2>&1 || fail "ceph auth get-or-create client.rgw.a failed"
spawn rgw radosgw "${C[@]}" -n client.rgw.a -f
rgw=$spawned
up=false
for _ in $(seq 1800); do
    kill -0 "$rgw" 2>/dev/null || fail "radosgw died"
    if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$s3_port/"; then up=true; break; fi
    sleep 0.1
done
$up || fail "radosgw did not answer on 127.0.0.1:$s3_port within 180 s"
timeout 60 radosgw-admin "${C[@]}" -n client.admin user create --uid=blobfs --display-name=blobfs \
    --access-key="$access_key" --secret="$secret_key" >/dev/null 2>>"$D/mkfs.out" \
    || fail "radosgw-admin user create failed"
cat > "$D/env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$s3_port
S3_ACCESS_KEY=$access_key
S3_SECRET_KEY=$secret_key
S3_REGION=us-east-1
EOF
trap - INT TERM
cat "$D/env"
