# Shared by bench/run.sh and bench/s3.sh (sourced): the clock and the waits for a FUSE daemon's
# mount. Each script defines say, die and MOUNT_DEADLINE_SECONDS before it sources this.

usec() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }

# wait_mounted <mountpoint> <pid> <log>: until `mountpoint -q` says so (polled, with a deadline);
# the daemon's log tail and exit when it died first.
wait_mounted() {
    local mnt=$1 pid=$2 log=$3 deadline=$(($(usec) + MOUNT_DEADLINE_SECONDS * 1000000))
    until mountpoint -q "$mnt"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "the daemon for $mnt exited before mounting; its log:"
            tail -n 20 "$log" >&2
            exit 1
        fi
        (($(usec) < deadline)) || die "$mnt was not mounted within ${MOUNT_DEADLINE_SECONDS}s (log: $log)"
        sleep 0.02
    done
}

# blobfs raises the mount's readahead to 1 MiB right after the kernel's INIT exchange, from a
# helper thread; wait (at most a second) until it shows, so that no read races that write.
wait_readahead() {
    local mnt=$1 device deadline=$(($(usec) + 1000000))
    device=$(awk -v m="$mnt" '$5 == m { print $3 }' /proc/self/mountinfo | tail -n 1)
    [[ -n $device && -r /sys/class/bdi/$device/read_ahead_kb ]] || return 0
    while (($(< "/sys/class/bdi/$device/read_ahead_kb") < 1024)) && (($(usec) < deadline)); do sleep 0.01; done
}
