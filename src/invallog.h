/*-------------------------------------------------------------------------
 *
 * invallog.h
 *	  A slot's invalidation log: which shapes were invalidated, at which
 *	  commit LSN, kept in the slot's directory.
 *
 * An invalidation is a fact about the WAL: once a shape has been
 * invalidated at a commit LSN, it stays invalid for the slot, even if a
 * later stream finds its table fitting again.  Records are buffered per
 * transaction and written, with one fsync, at its commit.  Records name
 * the shape catalog's relid: a catalog created anew (DROP and CREATE
 * EXTENSION) hands out the same shape ids again.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_INVALLOG_H
#define SR_INVALLOG_H

#include "access/xlogdefs.h"

typedef struct SrInvalLog SrInvalLog;

extern SrInvalLog *SrInvalLogCreate(const char *slot_name, MemoryContext cxt);
extern void SrInvalLogAdd(SrInvalLog *log, XLogRecPtr lsn, Oid catalog,
						  int64 shape_id);
extern void SrInvalLogFlush(SrInvalLog *log);
extern void SrInvalLogDiscard(SrInvalLog *log);
extern int64 *SrInvalLogRead(SrInvalLog *log, XLogRecPtr before, Oid catalog,
							 int *n);

#endif							/* SR_INVALLOG_H */
