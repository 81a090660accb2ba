#ifndef BLOBFS_CLINUX_SHIM_H
#define BLOBFS_CLINUX_SHIM_H
// Linux interfaces that Swift cannot call directly: openat2(2) has no glibc wrapper on
// Debian 12, and syscall(2) is variadic.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

// O_PATH needs _GNU_SOURCE, which the Glibc module is not built with.
#ifndef O_PATH
#define O_PATH 010000000
#endif
// O_NOATIME too (the same value on every Linux architecture Swift supports).
#ifndef O_NOATIME
#define O_NOATIME 01000000
#endif

/// openat2(2) confined to `dirfd`: no symlinks anywhere on the path, no escape by "..".
static inline int blobfs_openat_beneath(int dirfd, const char *path, int flags, unsigned int mode) {
    struct open_how how = {0};
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/// getdents64(2): a directory's entries as the kernel packs them, many per call (glibc declares
/// its wrapper only with _GNU_SOURCE).
static inline long blobfs_getdents64(int fd, void *buffer, unsigned long size) {
    return syscall(SYS_getdents64, fd, buffer, size);
}
/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE: starts writing a range of a file back to disk
/// without waiting for it (glibc declares it only with _GNU_SOURCE).
int sync_file_range(int fd, long long offset, long long nbytes, unsigned int flags);
static inline int blobfs_start_writeback(int fd, long long offset, long long length) {
    return sync_file_range(fd, offset, length, 2 /* SYNC_FILE_RANGE_WRITE */);
}

#endif
