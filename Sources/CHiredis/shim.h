#ifndef BLOBFS_CHIREDIS_SHIM_H
#define BLOBFS_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
