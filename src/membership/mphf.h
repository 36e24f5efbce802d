/*
 * mphf.h - minimal perfect hash function over distinct 64-bit key hashes
 *
 * A "hash and displace" construction in the manner of PTHash (Pibiri &
 * Trani, SIGIR 2021): keys fall into buckets (skewed: 60 % of the keys into
 * 30 % of the buckets), buckets are placed largest first, each by searching
 * the smallest pilot p whose displacement sends all of the bucket's keys to
 * free slots of a table of m = n / 0.99 slots; slots >= n are then remapped
 * onto the free slots below n, which makes the function minimal.
 *
 * Space: one byte per bucket (pilots >= 255 go to a small sorted exception
 * table), plus 4 bytes per slot in [n, m).  Lookup: one pilot byte, one
 * multiply-hash, and for about 1 % of keys one remap word.
 *
 * Keys must be distinct (SrMphfBuild reports SR_MEM_BADARG on a duplicate).
 * A key outside the set maps to some slot in [0, n) too.
 * Serialized form: native byte order, 64-byte header, 8-byte aligned views.
 */
#ifndef SR_MPHF_H
#define SR_MPHF_H

#include <stddef.h>
#include <stdint.h>

#include "memalloc.h"

typedef struct SrMphf SrMphf;

/* n < 2^32 distinct keys */
extern SrMemStatus SrMphfBuild(const uint64_t *keys, size_t n,
							   const SrMemAllocator *alloc, SrMphf **out);
/* a slot in [0, n) (0 when n == 0) */
extern uint32_t SrMphfLookup(const SrMphf *h, uint64_t key);

extern size_t SrMphfCount(const SrMphf *h);
extern size_t SrMphfMemory(const SrMphf *h);

extern size_t SrMphfSerializedSize(const SrMphf *h);
extern size_t SrMphfSerialize(const SrMphf *h, void *buf);
extern SrMemStatus SrMphfView(const void *buf, size_t len,
							  const SrMemAllocator *alloc, SrMphf **out);
extern void SrMphfFree(SrMphf *h);

#endif							/* SR_MPHF_H */
