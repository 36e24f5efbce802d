/*
 * membint.h - internals shared by memb.c, mpart.c and membfile.c
 *
 * Not for callers: membership.h is the module's API.
 */
#ifndef SR_MEMBINT_H
#define SR_MEMBINT_H

#include "membership.h"

typedef unsigned __int128 MId;	/* the SR_MEMB_ID_BITS kept of a key */

#define MID_LO_BITS		(SR_MEMB_ID_BITS - 64)	/* bits of key.lo kept */
#define MPART_BUCKET	32		/* mean keys per bucket, at most */
#define MPART_MAX_DEPTH 32
#define MPART_KEYBITS	20		/* key start in a bucket word */
#define MPART_KEYMASK	((UINT64_C(1) << MPART_KEYBITS) - 1)
#define MPART_SLACK		16		/* bytes after the entries, for 16-byte reads */
#define MVAL_EMPTY		UINT32_C(0xFFFFFFFE)	/* overlay: free slot */
#define MVAL_GONE		UINT32_C(0xFFFFFFFF)	/* overlay: key removed */
#define MVAL_ARENA		UINT32_C(0x80000000)	/* overlay: arena index */
#define MLOCAL_MAX		UINT32_C(0x7FFFFFF0)

typedef struct MOvlEntry
{
	uint64_t	hi;
	uint16_t	lo;
	uint16_t	pad;
	uint32_t	val;
} MOvlEntry;

/*
 * One partition: the keys whose leading `depth` bits are `prefix`.  The
 * base (bucket, entries, pool) is immutable, heap-allocated in mem or
 * mapped from a segment (mem == NULL).  Entry i is rbits of remainder then
 * vbits of value at bit i * (rbits + vbits): value's top bit clear means a
 * single local shape id, set means a pool set whose offset from the
 * bucket's pool start is the rest (all ones: too far, scan the bucket).
 */
typedef struct MPart
{
	uint32_t	prefix;
	uint8_t		depth;
	uint8_t		bbits;
	uint8_t		rbits;
	uint8_t		vbits;
	uint32_t	nkeys;
	uint32_t	pool_bytes;
	size_t		entries_bytes;
	const uint64_t *bucket;		/* 2^bbits + 1 words: start | pool << 20 */
	const uint8_t *entries;
	const uint8_t *pool;
	uint64_t   *bloom;			/* MBloomWords(nkeys) words, after the pool */
	uint32_t	bloom_words;
	uint64_t   *bloom_mem;		/* a mapped base's filter, copied to the heap */
	void	   *mem;
	size_t		mem_bytes;

	/* the overlay: linear probing, keyed by the id */
	MOvlEntry  *ovl;
	uint32_t	ovl_cap;
	uint32_t	ovl_n;
	uint32_t   *arena;			/* sets of >1 id: count, then locals */
	uint32_t	arena_n;
	uint32_t	arena_cap;
	uint32_t	changes;		/* since the base was built */
	uint32_t	live;			/* keys with a stored set, base + overlay */
	uint64_t	epoch;			/* SrMemb.epoch when built */
} MPart;

/*
 * The filter: a register-blocked Bloom filter, one 64-bit word per key
 * with 4 bits set, about 8 bits a key (sized for the keys plus the
 * overlay's share), false positive rate about 3 %.  Overlay keys are
 * added as they arrive, so a negative answer is final; removed keys stay
 * until the next rebuild.  Its words are part of the base, so it is
 * written in segments; a mapped base's filter is copied to the heap.
 */
static inline uint32_t
MBloomWords(uint32_t nkeys)
{
	return (uint32_t) (((uint64_t) nkeys + nkeys / 16 + 64) / 8);
}

static inline size_t
MBloomIndex(MId id, uint32_t words)
{
	return (size_t) (((uint64_t) (uint32_t) id * words) >> 32);
}

static inline uint64_t
MBloomMask(MId id)
{
	uint64_t	h = (uint64_t) id * UINT64_C(0x9E3779B97F4A7C15);

	return (UINT64_C(1) << (h >> 58)) | (UINT64_C(1) << ((h >> 52) & 63)) |
		(UINT64_C(1) << ((h >> 46) & 63)) | (UINT64_C(1) << ((h >> 40) & 63));
}

/*
 * A partition is rebuilt when the changes since its build reach this: 5 %
 * of its keys, at least 64.
 */
static inline uint32_t
MRebuildAt(uint32_t nkeys)
{
	return nkeys / 20 > 64 ? nkeys / 20 : 64;
}

/*
 * Replaced multi-id sets stay in the arena until the next rebuild; a hot
 * key in many shapes would grow it without bound, so past this the
 * partition is rebuilt early.
 */
#define MOvlNeedsCompaction(p) \
	((p)->arena_n > 8u * MRebuildAt((p)->nkeys) + 65536u)

/* keys with their local sets, sorted by id, as a rebuild collects them */
typedef struct MBuild
{
	const SrMemAllocator *alloc;
	MId		   *ids;
	uint32_t   *start;			/* n + 1 entries into locals */
	uint32_t   *locals;
	size_t		n;
	size_t		cap;			/* of ids */
	size_t		stcap;			/* of start */
	size_t		nloc;
	size_t		loccap;
	bool		failed;
} MBuild;

typedef struct MDictEntry
{
	int64_t		global;
	uint32_t	local;
	uint32_t	used;
} MDictEntry;

typedef struct MDrop
{
	uint32_t	local;
	uint64_t	epoch;
} MDrop;

struct SrMemb
{
	const SrMemAllocator *alloc;
	MPart	  **dir;
	int			dirbits;
	uint64_t	nkeys;
	uint64_t	epoch;
	uint64_t	rebuilds;
	double		max_pause_ms;

	/* shape ids: local -> global, global -> local, dropped, free list */
	int64_t    *globals;		/* INT64_MIN: unused local */
	uint32_t	nlocal;
	uint32_t	localcap;
	uint64_t   *dropped;		/* bitmap over locals */
	MDictEntry *dict;
	uint32_t	dictcap;
	uint32_t	nlive;
	uint32_t   *freelocals;
	uint32_t	nfree;
	uint32_t	freecap;
	MDrop	   *drops;			/* dropped, not reclaimed yet */
	uint32_t	ndrops;
	uint32_t	dropcap;

	/* a loaded segment the partitions may point into */
	void	   *map;
	size_t		maplen;
	uint32_t	mapped_parts;

	SrMembRedo *redo;

	/* lookups decode into this; grown when a set is larger */
	uint32_t   *scratch;
	uint32_t	scratchcap;
};

/* keys */
extern MId	MIdFromKey(SrMembKey key);
extern SrMembKey MIdToKey(MId id);

static inline uint32_t
MIdPrefix(MId id, int depth)
{
	return depth == 0 ? 0 : (uint32_t) (id >> (SR_MEMB_ID_BITS - depth));
}

static inline bool
MLocalDropped(const SrMemb *m, uint32_t local)
{
	return local >= m->nlocal || (m->dropped[local / 64] >> (local % 64)) & 1;
}

/* mpart.c: pool sets (n >= 2 sorted distinct locals) */
extern size_t MPoolLen(const uint32_t *locals, int n);
extern uint8_t *MPoolPut(uint8_t *p, const uint32_t *locals, int n);
extern int	MPoolGet(const uint8_t *p, const uint8_t *end, uint32_t *locals, int max,
					 const uint8_t **next);

/* mpart.c: partitions */
extern bool MBuildAppend(MBuild *b, MId id, const uint32_t *locals, int n);
extern void MBuildFree(MBuild *b);
extern SrMemStatus MPartEncode(const SrMemAllocator *alloc, uint32_t prefix,
							   int depth, uint32_t nlocal, const MBuild *b,
							   size_t from, size_t to, MPart **out);
extern int	MPartLookupBase(const MPart *p, MId id, uint32_t *locals, int max);
extern int	MPartLookup(const MPart *p, MId id, uint32_t *locals, int max);
extern bool MPartCollect(const MPart *p, const SrMemb *m, MBuild *out);
extern SrMemStatus MOvlPut(const SrMemAllocator *alloc, MPart *p, MId id,
						   const uint32_t *locals, int n, bool base_has);
extern void MPartFree(const SrMemAllocator *alloc, MPart *p);
extern size_t MPartOverlayBytes(const MPart *p);
extern bool MPartCheckGeometry(const MPart *p);
extern size_t MPartBaseBytes(uint32_t nkeys, int bbits, int rbits, int vbits,
							 uint32_t pool_bytes, size_t *entries_bytes);

/* memb.c */
extern int	MembValueBits(uint32_t nlocal);
extern uint32_t MembDictFind(const SrMemb *m, int64_t g);
extern bool MembDictAdd(SrMemb *m, int64_t g, uint32_t local);
/* membfile.c: unmap a loaded segment no partition points into any more */
extern void MembUnmap(SrMemb *m);

/* membfile.c: the redo log's record of one change */
extern SrMemStatus MRedoNote(SrMembRedo *redo, int op, SrMembKey key,
							 const int64_t *ids, int n);
/* the buffered length, and going back to it (a change that failed) */
extern size_t MRedoMark(SrMembRedo *redo);
extern void MRedoRewind(SrMembRedo *redo, size_t mark);

#define MREDO_SET	1
#define MREDO_DROP	2
#define MREDO_CLEAR 3
#define MREDO_COMMIT 4

#endif							/* SR_MEMBINT_H */
