/*-------------------------------------------------------------------------
 *
 * predindex.h
 *	  A table's predicate index: from a row to the shapes that may match it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_PREDINDEX_H
#define SR_PREDINDEX_H

#include "compile.h"
#include "executor/tuptable.h"

typedef struct SrPredIndex SrPredIndex;

extern SrPredIndex *SrPredIndexCreate(void);
extern void SrPredIndexInsert(SrPredIndex *index, int64 shape_id,
							  const SrIndexKey *keys, int nkeys);
extern void SrPredIndexDelete(SrPredIndex *index, int64 shape_id,
							  const SrIndexKey *keys, int nkeys);

extern int	SrPredIndexMaxCandidates(SrPredIndex *index);

/*
 * Append to ids (room for SrPredIndexMaxCandidates() more) the ids of the shapes
 * that may match the row; returns the new count.  Unsorted, may repeat.
 */
extern int	SrPredIndexLookup(SrPredIndex *index, TupleTableSlot *slot,
							  int64 *ids, int n);

#endif							/* SR_PREDINDEX_H */
