#ifndef BLOBFS_CFUSE_SHIM_H
#define BLOBFS_CFUSE_SHIM_H
// libfuse3's low-level API. At 312, fuse_session_loop_mt is a real function taking the opaque
// fuse_loop_cfg config (at 31/35 it is a macro Swift cannot import).
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <sys/statvfs.h>

/// fuse_args has no initializer Swift can call (FUSE_ARGS_INIT is a macro).
static inline struct fuse_args blobfs_fuse_args_empty(void) {
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    return args;
}
#endif
