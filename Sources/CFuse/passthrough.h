#ifndef BLOBFS_CFUSE_PASSTHROUGH_H
#define BLOBFS_CFUSE_PASSTHROUGH_H
// The pieces of the kernel's FUSE protocol 7.40 that kernel passthrough needs and that libfuse
// 3.14's headers and Debian 12's <linux/fuse.h> (7.38) lack. Layouts as in the kernel's
// include/uapi/linux/fuse.h; the asserts pin every offset the hooks read or write
// (docs/architecture.md, "Passthrough").
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>

/// Opcodes of the requests the hooks look at (enum fuse_opcode).
static const uint32_t BLOBFS_FUSE_INIT = 26;

/// INIT flags: FUSE_INIT_EXT (flags2 is meaningful), FUSE_WRITEBACK_CACHE (excludes passthrough).
static const uint32_t BLOBFS_FUSE_INIT_EXT = 1u << 30;
static const uint32_t BLOBFS_FUSE_WRITEBACK_CACHE = 1u << 16;
/// FUSE_PASSTHROUGH is 1ULL << 37: bit 5 of the upper word, flags2.
static const uint32_t BLOBFS_FUSE_PASSTHROUGH_FLAGS2 = 1u << 5;
/// FILESYSTEM_MAX_STACK_DEPTH: the most max_stack_depth the kernel accepts.
static const uint32_t BLOBFS_FUSE_MAX_STACK_DEPTH = 2;
/// OPEN reply flags: FOPEN_PASSTHROUGH.
static const uint32_t BLOBFS_FOPEN_PASSTHROUGH = 1u << 7;
/// statfs f_type of overlayfs (OVERLAYFS_SUPER_MAGIC): a store there needs stack depth 2.
static const long BLOBFS_OVERLAYFS_SUPER_MAGIC = 0x794c7630;

struct blobfs_fuse_in_header {
    uint32_t len, opcode;
    uint64_t unique, nodeid;
    uint32_t uid, gid, pid;
    uint16_t total_extlen, padding;
};

struct blobfs_fuse_out_header {
    uint32_t len;
    int32_t error;
    uint64_t unique;
};

struct blobfs_fuse_init_in {
    uint32_t major, minor, max_readahead, flags;
    uint32_t flags2;  /* read only when flags has FUSE_INIT_EXT */
    uint32_t unused[11];
};

struct blobfs_fuse_init_out {
    uint32_t major, minor, max_readahead, flags;
    uint16_t max_background, congestion_threshold;
    uint32_t max_write, time_gran;
    uint16_t max_pages, map_alignment;
    uint32_t flags2;
    uint32_t max_stack_depth;  /* 7.40; "unused[0]" before, so libfuse 3.14 sends it as 0 */
    uint16_t request_timeout;
    uint16_t unused[11];
};

struct blobfs_fuse_open_out {
    uint64_t fh;
    uint32_t open_flags;
    int32_t backing_id;  /* 7.40; "padding" before */
};

struct blobfs_fuse_backing_map {
    int32_t fd;
    uint32_t flags;  /* must be 0 */
    uint64_t padding;  /* must be 0 */
};

_Static_assert(sizeof(struct blobfs_fuse_in_header) == 40, "fuse_in_header");
_Static_assert(sizeof(struct blobfs_fuse_out_header) == 16, "fuse_out_header");
_Static_assert(sizeof(struct blobfs_fuse_init_in) == 64 && offsetof(struct blobfs_fuse_init_in, flags2) == 16, "fuse_init_in");
_Static_assert(sizeof(struct blobfs_fuse_init_out) == 64 && offsetof(struct blobfs_fuse_init_out, flags2) == 32
                   && offsetof(struct blobfs_fuse_init_out, max_stack_depth) == 36, "fuse_init_out");
_Static_assert(sizeof(struct blobfs_fuse_open_out) == 16 && offsetof(struct blobfs_fuse_open_out, backing_id) == 12, "fuse_open_out");
_Static_assert(sizeof(struct blobfs_fuse_backing_map) == 16, "fuse_backing_map");

/// FUSE_DEV_IOC_BACKING_OPEN on the connection's /dev/fuse descriptor: registers `fd` as a
/// backing file and returns its id (≥ 1), or -1 with errno. ioctl(2) is variadic, which Swift
/// cannot call.
static inline int blobfs_fuse_backing_open(int device, int fd) {
    struct blobfs_fuse_backing_map map = { .fd = fd };
    return ioctl(device, _IOW(229, 1, struct blobfs_fuse_backing_map), &map);
}

/// FUSE_DEV_IOC_BACKING_CLOSE: forgets a backing id (the kernel keeps the file while files opened
/// with it are open).
static inline int blobfs_fuse_backing_close(int device, int32_t id) {
    return ioctl(device, _IOW(229, 2, uint32_t), &id);
}

/// A BACKING_OPEN that registers nothing: its flags are invalid, so the kernel answers EINVAL
/// where backing files are allowed and EPERM where they are not (it checks permission first).
static inline int blobfs_fuse_backing_probe(int device) {
    struct blobfs_fuse_backing_map map = { .fd = -1, .flags = 1 };
    return ioctl(device, _IOW(229, 1, struct blobfs_fuse_backing_map), &map);
}

/// statfs(2)'s f_type of `path` (the struct and the function share a name Swift cannot tell apart).
static inline int blobfs_filesystem_type(const char *path, long *type) {
    struct statfs info;
    if (statfs(path, &info) != 0) return -1;
    *type = (long)info.f_type;
    return 0;
}
#endif
