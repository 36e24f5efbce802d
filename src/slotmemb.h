/*-------------------------------------------------------------------------
 *
 * slotmemb.h
 *	  A stream's membership indexes, one per table, and their persistence
 *	  in the slot's directory (design.md section 3).
 *
 * A stream starting before LSN P (its first decoded transaction) uses
 * exactly the state after the transactions committed before P: the newest
 * segment valid at an LSN before P, plus its redo log up to P.  Whatever a
 * stream wrote past P is discarded, since the transactions will be decoded
 * again.  Each transaction's changes reach the redo log, fsynced, at its
 * commit, before its C record is written: a receiver can only confirm, and
 * PostgreSQL only save, a position the log already covers.
 *
 * Besides row keys an index holds three kinds of marker keys, saved and
 * restored with the rows: which shapes the stream has the members of
 * ("synced"), which shapes it has reported unsynced, and the signature of
 * the key columns and stream options the keys were made under.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_SLOTMEMB_H
#define SR_SLOTMEMB_H

#include "access/xlogdefs.h"
#include "membership/keycanon.h"
#include "membership/membership.h"

typedef struct SrSlotMemb SrSlotMemb;

/* _PG_init: the module's settings */
extern void SrSlotMembInit(void);
typedef struct SrTableMemb SrTableMemb;

extern SrSlotMemb *SrSlotMembCreate(MemoryContext parent,
									const char *slot_name,
									uint32 options_sig);
/* the stream's start: its first transaction's commit LSN */
extern void SrSlotMembStart(SrSlotMemb *sm, XLogRecPtr before);

/*
 * The table's index, loaded from the slot's files at first use.  NULL if
 * there is none and create is false.  An index made under another key
 * signature is emptied (every shape unsynced).
 */
extern SrTableMemb *SrSlotMembTable(SrSlotMemb *sm, Oid relid, uint32 keysig,
									bool create);
/* write every table's changes of the transaction committed at lsn */
extern void SrSlotMembCommit(SrSlotMemb *sm, XLogRecPtr lsn);
/* relid was dropped: free its index after the current commit */
extern void SrSlotMembForget(SrSlotMemb *sm, Oid relid);
/* the stream ends: fsync what is not yet */
extern void SrSlotMembShutdown(SrSlotMemb *sm);

/* the identity of a canonical key in this slot's indexes */
extern SrMembKey SrSlotMembKey(SrSlotMemb *sm, const void *canon, size_t len);
/* the sorted shape ids of key, in a buffer of tm valid until the next call */
extern int	SrTableMembLookup(SrTableMemb *tm, SrMembKey key, int64 **ids);
extern void SrTableMembSet(SrTableMemb *tm, SrMembKey key, const int64 *ids,
						   int n);
extern void SrTableMembAdd(SrTableMemb *tm, SrMembKey key, int64 id);
extern void SrTableMembRemoveKey(SrTableMemb *tm, SrMembKey key);
extern void SrTableMembDropShape(SrTableMemb *tm, int64 id);
/* TRUNCATE: every row key goes; the markers of these shapes stay */
extern void SrTableMembTruncate(SrTableMemb *tm, const int64 *ids, int n);

extern bool SrTableMembSynced(SrTableMemb *tm, int64 id);
extern void SrTableMembSetSynced(SrTableMemb *tm, int64 id);
/*
 * A shape pending in add_shape_concurrently() is "tracked" if the stream
 * has seen every change since its registration: each row key a change
 * touched holds the shape's id if the new row is in the shape, else its
 * tombstone, an id no shape has (the signature marker's ids are above
 * -2^32).
 */
static inline int64
SrMembTombstone(int64 id)
{
	return PG_INT64_MIN + id;
}
extern bool SrTableMembTracked(SrTableMemb *tm, int64 id);
extern void SrTableMembSetTracked(SrTableMemb *tm, int64 id);
extern bool SrTableMembReported(SrTableMemb *tm, int64 id);
extern void SrTableMembSetReported(SrTableMemb *tm, int64 id);
/* why the saved state was discarded at load (corrupt, missing), or NULL */
extern const char *SrTableMembLost(SrTableMemb *tm);
/* bumped whenever a shape's synced state may have changed */
extern uint64 SrTableMembEpoch(SrTableMemb *tm);
extern void SrTableMembGetStats(SrTableMemb *tm, SrMembStats *stats);

#endif							/* SR_SLOTMEMB_H */
