/*-------------------------------------------------------------------------
 *
 * invallog.h
 *	  A slot's invalidation log: which shapes were invalidated, at which
 *	  commit LSN, kept in the slot's directory.
 *
 * An invalidation is a fact about the WAL: once a shape has been
 * invalidated at a commit LSN, it stays invalid for the slot, even if a
 * later stream finds its table fitting again.  Records are buffered per
 * transaction and written, with one fsync, at its commit.  A reset record
 * (the shape catalog was dropped) voids every record before it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_INVALLOG_H
#define SR_INVALLOG_H

#include "access/xlogdefs.h"

typedef struct SrInvalLog SrInvalLog;

extern SrInvalLog *SrInvalLogCreate(const char *slot_name, MemoryContext cxt);
extern void SrInvalLogAdd(SrInvalLog *log, XLogRecPtr lsn, int64 shape_id);
extern void SrInvalLogAddReset(SrInvalLog *log, XLogRecPtr lsn);
extern void SrInvalLogFlush(SrInvalLog *log);
extern void SrInvalLogDiscard(SrInvalLog *log);
extern int64 *SrInvalLogRead(SrInvalLog *log, XLogRecPtr before, int *n);

#endif							/* SR_INVALLOG_H */
