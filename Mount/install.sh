#!/usr/bin/env bash
# Installs blobfs for mount(8), /etc/fstab and systemd: the release binary as
# $PREFIX/bin/blobfs (default /usr/local), and with --systemd the unit as
# /etc/systemd/system/blobfs.service (installed, not enabled). DESTDIR stages into a directory.
# Build first: swift build -c release
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${BLOBFS:-.build/release/blobfs}
prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}
with_unit=false
for argument in "$@"; do
    case $argument in
    --systemd) with_unit=true ;;
    *) echo "usage: [PREFIX=/usr/local] [DESTDIR=] $0 [--systemd]" >&2; exit 2 ;;
    esac
done
if [[ ! -x $binary ]]; then
    echo "install: $binary is missing: build it with 'swift build -c release'" >&2
    exit 1
fi

install -D -m 0755 "$binary" "$destdir$prefix/bin/blobfs"
echo "installed $destdir$prefix/bin/blobfs"
# mount(8) runs helpers without PATH: mount.fuse3's /bin/sh then searches only its default path.
case $prefix/bin in
/usr/local/sbin | /usr/local/bin | /usr/sbin | /usr/bin | /sbin | /bin) ;;
*) echo "install: note: mount -t fuse.blobfs and /etc/fstab find blobfs only in /usr/local/bin, /usr/bin and the like, not in $prefix/bin" >&2 ;;
esac

if $with_unit; then
    install -D -m 0644 Mount/blobfs.service "$destdir/etc/systemd/system/blobfs.service"
    if [[ $prefix != /usr/local ]]; then
        sed -i "s|/usr/local/bin/blobfs|$prefix/bin/blobfs|" "$destdir/etc/systemd/system/blobfs.service"
    fi
    echo "installed $destdir/etc/systemd/system/blobfs.service (edit the paths, then: systemctl daemon-reload && systemctl enable --now blobfs)"
fi
