#!/usr/bin/env bash
# make run: writes a demo registry store with blobfs's own storage layer, mounts it read-only in
# the foreground, prints what to try, and on Ctrl-C unmounts and removes everything it made.
# BLOBFS=<path> runs another build (default: .build/release/blobfs).
set -euo pipefail
cd "$(dirname "$0")/.."

blobfs=${BLOBFS:-.build/release/blobfs}
if [[ ! -x $blobfs ]]; then
    echo "demo: $blobfs is missing: build it with 'swift build -c release' (make run does)" >&2
    exit 1
fi
blobfs=$(cd "$(dirname "$blobfs")" && pwd)/$(basename "$blobfs")  # absolute, for the hints

work=$(mktemp -d /tmp/blobfs-demo.XXXXXX)
store=$work/store
mnt=$work/mnt
pid=""

# However the script ends: stop blobfs, make sure nothing is left mounted, remove the temporaries
# (never while a mount is still in there).
cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if mountpoint -q "$mnt" 2>/dev/null; then
        echo "demo: $mnt is still mounted: unmounting it" >&2
        fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || umount -l "$mnt" || true
    fi
    if mountpoint -q "$mnt" 2>/dev/null; then
        echo "demo: could not unmount $mnt; leaving $work in place" >&2
        status=1
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
# Ctrl-C reaches blobfs too (same process group); SIGTERM covers a signal sent to the script only.
trap 'if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; fi' INT TERM HUP

"$blobfs" create-demo-store "$store"
mkdir "$mnt"
echo
"$blobfs" mount "$store" "$mnt" --oci &
pid=$!

# Wait for the mount itself, not for a guessed time: poll the mount table until a deadline.
deadline=$((SECONDS + 30))
until mountpoint -q "$mnt"; do
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || true
        pid=""
        echo "demo: blobfs exited before the mount was ready" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "demo: no mount at $mnt after 30 s" >&2
        exit 1
    fi
    sleep 0.05  # the polling interval
done

blobs=$mnt/repo/library/alpine/blobs
by_size=($(ls -Sr "$blobs"))
hello=${by_size[0]}  # the smallest blob: a text file
cat <<EOF

The demo store $store is mounted read-only at $mnt.
Try, in another terminal:

  ls -R $mnt/repo
  ls -l $mnt/repo/library/alpine/tags                  # tags: symbolic links to manifests
  cat $mnt/repo/library/alpine/tags/latest             # the manifest, byte for byte
  skopeo copy oci:$mnt/oci/library/alpine:latest dir:$work/alpine   # the OCI layout view (--oci)
  cat $blobs/$hello
  sha256sum $mnt/repo/team/app/web/blobs/sha256:*      # each file hashes to its name
  cp $mnt/repo/library/ubuntu/blobs/* $work/
  getfattr -d $blobs/$hello
  df -h $mnt
  rsync -a $mnt/ $work/backup/
  $blobfs verify --images $store

Press Ctrl-C to unmount and clean up.
EOF

# Until blobfs ends: an interrupted wait (a trapped signal) is retried until it has exited.
status=0
while kill -0 "$pid" 2>/dev/null; do
    if wait "$pid"; then status=0; else status=$?; fi
done
pid=""
if mountpoint -q "$mnt"; then
    echo "demo: blobfs exited with status $status but $mnt is still mounted" >&2
    exit 1
fi
echo "demo: unmounted (blobfs exited with status $status); removing $work"
exit "$status"
