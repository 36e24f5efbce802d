/*-------------------------------------------------------------------------
 *
 * memkey.h
 *	  The membership key of a row: the canonical bytes of its replica
 *	  identity columns (membership/keycanon.h), built the same way by
 *	  add_shape's search (from the table) and by the decoder (from the WAL).
 *
 * The key columns are the replica identity index's, else the primary
 * key's (a FULL table keeps a membership index only while it has one).
 * Their signature, a hash of the columns and types, tells a stream that
 * its saved keys were made from other columns.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_MEMKEY_H
#define SR_MEMKEY_H

#include "access/tupdesc.h"
#include "membership/keycanon.h"
#include "utils/relcache.h"

typedef struct SrKeyInfo
{
	int			nkeys;			/* 0: the table has no usable key */
	AttrNumber *attnums;		/* 1-based, ascending */
	Oid		   *types;			/* base types of the columns */
	int16	   *typlens;		/* and their length and by-value flag, */
	bool	   *typbyvals;		/* looked up once per relation */
	uint32		signature;		/* of attnums and types; 0 if nkeys == 0 */
} SrKeyInfo;

extern void SrKeyInfoForRel(Relation rel, SrKeyInfo *info);

/* an allocator hook for the pure-C membership code: memory of cxt */
extern const SrMemAllocator *SrMemAllocatorFor(MemoryContext cxt);

/*
 * The key of a row whose columns are in values/isnull (indexed by attno -
 * 1) into kb, reset first.  False if a key value is an on-disk TOAST
 * pointer (the decoder must not follow it) or the buffer ran out.
 */
extern bool SrKeyCanon(SrKeyBuf *kb, const SrKeyInfo *info,
					   const Datum *values, const bool *isnull);

#endif							/* SR_MEMKEY_H */
