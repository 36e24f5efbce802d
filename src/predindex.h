/*-------------------------------------------------------------------------
 *
 * predindex.h
 *	  A table's predicate index: from a row to the shapes that may match it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_PREDINDEX_H
#define SR_PREDINDEX_H

#include "indexkey.h"
#include "executor/tuptable.h"

typedef struct SrPredIndex SrPredIndex;

extern SrPredIndex *SrPredIndexCreate(void);
extern void SrPredIndexInsert(SrPredIndex *index, int64 shape_id,
							  const SrIndexKey *keys, int nkeys);
extern void SrPredIndexReserve(SrPredIndex *index, const SrIndexKey *keys,
							   int nkeys);
extern void SrPredIndexPrepare(SrPredIndex *index);
extern int	SrPredIndexLoad(SrPredIndex *index, const SrIndexKey *keys,
							int nkeys, int64 *peers, int max, int *npeers);
extern void SrPredIndexDelete(SrPredIndex *index, int64 shape_id,
							  const SrIndexKey *keys, int nkeys);

/* Candidate shape ids, grown in cxt as a lookup needs */
typedef struct SrIdBuf
{
	int64	   *ids;
	int			n;
	int			cap;
	MemoryContext cxt;
} SrIdBuf;

extern void SrIdBufReserve(SrIdBuf *buf, int more);

/*
 * Append to buf the ids of the shapes that may match the row.  Unsorted;
 * an id may repeat (once per row looked up, or per OR branch).
 */
extern void SrPredIndexLookup(SrPredIndex *index, TupleTableSlot *slot,
							  SrIdBuf *buf);

#endif							/* SR_PREDINDEX_H */
