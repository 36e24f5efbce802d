/*
 * membership.h - which keys of one table are in which shapes
 *
 * One SrMemb per stream and table.  A key is identified by a 128-bit hash
 * of its canonical bytes (keycanon.h) under a per-slot seed; the index
 * keeps SR_MEMB_ID_BITS of it.  A member's answer is exact.  A non-member
 * is taken for a member with probability n * 2^-75 <= 2^-48 per lookup
 * for up to n = 2^27 keys (134M) in one table; two member keys are
 * confused with probability 2^-75 per pair (docs/membership.md).
 *
 * Layout: the keys are split by their leading bits into partitions of at
 * most SR_MEMB_PART_MAX keys (extendible hashing).  Each partition is an
 * immutable sorted array of packed (hash remainder, value) entries behind
 * a bucket directory, plus a ULEB128 shape-id pool, plus a small mutable
 * overlay of the keys changed since it was built, plus a one-word-a-key
 * Bloom filter over both that turns most non-members away in one load.  A partition is rebuilt,
 * which merges its overlay, once the changes since its build reach 5 % of
 * its keys, so that no single pause exceeds a few milliseconds.
 *
 * Shape ids are the catalog's bigint ids; inside, each is given a dense
 * local number.  Lookups return the ids sorted ascending.
 *
 * Functions return SR_MEM_OK or an error status; on an error the index is
 * unchanged (NOMEM: the operation did not happen).
 */
#ifndef SR_MEMBERSHIP_H
#define SR_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memalloc.h"

#define SR_MEMB_ID_BITS		75
#define SR_MEMB_PART_MAX	32768
#define SR_MEMB_MAX_SET		65535	/* shape ids of one key */

typedef struct SrMembKey
{
	uint64_t	hi;
	uint64_t	lo;
} SrMembKey;

typedef struct SrMemb SrMemb;
typedef struct SrMembRedo SrMembRedo;

typedef struct SrMembStats
{
	uint64_t	keys;			/* keys with a stored set (after a drop, ones
								 * of dropped shapes only count until their
								 * partition is rebuilt) */
	uint64_t	partitions;
	uint64_t	overlay_entries;
	uint64_t	rebuilds;
	uint64_t	shapes;			/* distinct live shape ids */
	size_t		bytes_base;		/* buckets + entries + pool */
	size_t		bytes_pool;		/* (part of bytes_base) */
	size_t		bytes_filter;	/* (part of bytes_base) */
	size_t		bytes_overlay;
	size_t		bytes_other;	/* directory, dictionary, headers */
	size_t		bytes_total;
	double		max_pause_ms;	/* longest rebuild since creation */
} SrMembStats;

/* the 128-bit identity of a canonical key */
extern SrMembKey SrMembKeyHash(const void *canon, size_t len, uint64_t seed);

extern SrMemStatus SrMembCreate(const SrMemAllocator *alloc, SrMemb **out);
extern void SrMembFree(SrMemb *m);

/*
 * The sorted shape ids of key: returns how many (0 for a non-member) and
 * stores up to max of them in ids; -1 if memory ran out (a key in more
 * than 8 shapes needs scratch space).
 */
extern int	SrMembLookup(SrMemb *m, SrMembKey key, int64_t *ids, int max);

/* replace key's set (n == 0 removes the key); ids in any order, no dups */
extern SrMemStatus SrMembSet(SrMemb *m, SrMembKey key, const int64_t *ids, int n);
extern SrMemStatus SrMembAdd(SrMemb *m, SrMembKey key, int64_t id);
extern SrMemStatus SrMembRemove(SrMemb *m, SrMembKey key, int64_t id);
extern SrMemStatus SrMembRemoveKey(SrMemb *m, SrMembKey key);
/* drop a shape from every key (lazily: lookups skip it from now on) */
extern SrMemStatus SrMembDropShape(SrMemb *m, int64_t id);
/* every key leaves every shape (TRUNCATE) */
extern SrMemStatus SrMembClear(SrMemb *m);

/*
 * Bulk load: replaces the contents with keys[i] -> the distinct
 * ids[start[i] .. start[i+1]).  Builds the partitions directly.  On an
 * error (a key twice, an id twice in a set: BADARG) the index is empty.
 */
extern SrMemStatus SrMembLoad(SrMemb *m, const SrMembKey *keys, size_t n,
							  const uint64_t *start, const int64_t *ids);

/*
 * Call fn for every member key (with only the SR_MEMB_ID_BITS the index
 * keeps: key.lo's low bits are zero) in no particular order; stops early
 * when fn returns false.
 */
typedef bool (*SrMembIterFn) (SrMembKey key, const int64_t *ids, int n, void *arg);
extern SrMemStatus SrMembIterate(SrMemb *m, SrMembIterFn fn, void *arg);

/*
 * Bounded background work: rebuilds one partition, the oldest while
 * dropped shapes await reclaiming, else the one with the most changes.
 * Returns true if it did something.
 */
extern bool SrMembMaintain(SrMemb *m);
/* merge every overlay now (tests, benchmarks) */
extern SrMemStatus SrMembRebuildAll(SrMemb *m);

extern void SrMembGetStats(SrMemb *m, SrMembStats *st);

/*
 * Persistence (membfile.c).  A segment holds the whole index as of lsn;
 * it is written to path.tmp, fsynced, renamed over path, and the directory
 * fsynced.  Loading maps it read-only and checks every checksum and the
 * geometry before using it.  errbuf (256 bytes) gets a message on error.
 */
#define SR_MEMB_ERRLEN 256
/* how segment and redo files are fsynced: fsync(2) unless set otherwise */
extern int	(*SrMembFsync) (int fd);
extern SrMemStatus SrMembWriteSegment(SrMemb *m, const char *path,
									  uint32_t table_oid, uint64_t lsn,
									  char *errbuf);
extern SrMemStatus SrMembLoadSegment(const char *path, uint32_t table_oid,
									 const SrMemAllocator *alloc,
									 SrMemb **out, uint64_t *lsn,
									 char *errbuf);

/*
 * The redo log: every change made to m while a log is attached is buffered
 * and written (one write and fsync) by SrMembRedoCommit at the commit LSN.
 * Replay applies, in order, the transactions committed in (after, upto] to
 * m; a torn tail (a crash mid-write) is cut off, and with discard_after so
 * is everything past upto.  Damage before the last transaction is an error
 * (m is then partly replayed: throw it away).  Damage inside the last one
 * cannot be told from a torn write and cuts it off too: a caller that knows
 * it confirmed a later LSN than *last_lsn must not trust the result.
 */
extern SrMemStatus SrMembRedoOpen(const char *path, uint32_t table_oid,
								  const SrMemAllocator *alloc,
								  SrMembRedo **out, char *errbuf);
extern void SrMembRedoAttach(SrMemb *m, SrMembRedo *redo);
extern SrMemStatus SrMembRedoCommit(SrMembRedo *redo, uint64_t lsn, char *errbuf);
/* SrMembRedoCommit in two steps: the write, and the fsync (of all so far) */
extern SrMemStatus SrMembRedoWrite(SrMembRedo *redo, uint64_t lsn, char *errbuf);
extern SrMemStatus SrMembRedoSync(SrMembRedo *redo, char *errbuf);
/* forget the buffered changes of an aborted transaction */
extern void SrMembRedoAbort(SrMembRedo *redo);
extern void SrMembRedoClose(SrMembRedo *redo);
/* bytes in the log file (committed transactions) */
extern uint64_t SrMembRedoSize(const SrMembRedo *redo);
/* empty the log (after a segment that covers it is written) */
extern SrMemStatus SrMembRedoReset(SrMembRedo *redo, char *errbuf);
extern SrMemStatus SrMembRedoReplay(const char *path, uint32_t table_oid,
									SrMemb *m, uint64_t after, uint64_t upto,
									bool discard_after, uint64_t *last_lsn,
									char *errbuf);

/*
 * The same, and *torn: bytes after the last complete transaction were cut
 * off, and no transaction committed past upto precedes them; they may be a
 * transaction at or before upto (damage, not a torn write, if the caller
 * knows it was fsynced).
 */
extern SrMemStatus SrMembRedoReplayTorn(const char *path, uint32_t table_oid,
										SrMemb *m, uint64_t after,
										uint64_t upto, bool discard_after,
										uint64_t *last_lsn, bool *torn,
										char *errbuf);

#endif							/* SR_MEMBERSHIP_H */
