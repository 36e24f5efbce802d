/*
 * fuse.h - binary fuse filter (3-wise) over 64-bit key hashes
 *
 * After Graf & Lemire, "Binary Fuse Filters: Fast and Smaller Than Xor
 * Filters" (2022).  A static set of keys is mapped to an array of w-bit
 * fingerprints (w = 8, 16 or 32) such that for every member key the xor of
 * its three cells equals its fingerprint.  contains() is exact for members
 * and wrong for a non-member with probability about 2^-w.  Space is about
 * 1.125 * w bits per key at large n (more for small sets).
 *
 * Serialized form (native byte order, little-endian on every platform we
 * build for): a 48-byte header then the fingerprint array.  A view reads it
 * in place (e.g. from an mmap'd segment); the buffer must be 8-byte aligned
 * and must outlive the view.
 */
#ifndef SR_FUSE_H
#define SR_FUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memalloc.h"

typedef struct SrFuse SrFuse;

/*
 * Build a filter over keys[0..n).  Duplicates are allowed (they are removed
 * on a private copy).  width is 8, 16 or 32.  On success *out is set.
 */
extern SrMemStatus SrFuseBuild(const uint64_t *keys, size_t n, int width,
							   const SrMemAllocator *alloc, SrFuse **out);
extern bool SrFuseContains(const SrFuse *f, uint64_t key);

/* distinct keys it was built on, fingerprint width, bytes of the array */
extern size_t SrFuseCount(const SrFuse *f);
extern int	SrFuseWidth(const SrFuse *f);
extern size_t SrFuseMemory(const SrFuse *f);

extern size_t SrFuseSerializedSize(const SrFuse *f);
/* buf must hold SrFuseSerializedSize() bytes; returns the bytes written */
extern size_t SrFuseSerialize(const SrFuse *f, void *buf);
/* validate and view buf[0..len) in place; no copy of the array is made */
extern SrMemStatus SrFuseView(const void *buf, size_t len,
							  const SrMemAllocator *alloc, SrFuse **out);
extern void SrFuseFree(SrFuse *f);

#endif							/* SR_FUSE_H */
