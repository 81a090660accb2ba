#ifndef BLOBFS_CCRYPTO_SHIM_H
#define BLOBFS_CCRYPTO_SHIM_H
#include <openssl/evp.h>
#include <openssl/sha.h>
#endif
