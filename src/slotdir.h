/*-------------------------------------------------------------------------
 *
 * slotdir.h
 *	  shape_router's files in a replication slot's directory,
 *	  pg_replslot/<slot>/: the invalidation log and, per table, the
 *	  membership segments and redo logs.  They go with the directory when
 *	  the slot is dropped.
 *
 * A table's membership files come in generations named by the commit LSN
 * their segment is valid at: shape_router.<relid>.<LSN>.seg and .redo.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_SLOTDIR_H
#define SR_SLOTDIR_H

#include "access/xlogdefs.h"

/* "pg_replslot/<slot>", palloc'd; NULL without a slot */
extern char *SrSlotDir(const char *slot_name);
extern char *SrSlotDirFile(const char *dir, const char *name);

/* a generation's file: suffix "seg" or "redo" */
extern char *SrMembFilePath(const char *dir, Oid relid, XLogRecPtr gen,
							const char *suffix);

/*
 * The generations of relid's files in dir, ascending (palloc'd), with
 * whether each has its segment.  Leftover temporary files are removed.
 */
extern XLogRecPtr *SrMembListGenerations(const char *dir, Oid relid, int *n);
/* is name a membership segment or redo log (of any table)? */
extern bool SrMembIsFile(const char *name);
/* remove a generation's files (those that exist) */
extern void SrMembRemoveGeneration(const char *dir, Oid relid, XLogRecPtr gen);
/*
 * The slot's restart_lsn (0 without a slot): always on disk as it is, and
 * at or before every position a stream can start from
 */
extern XLogRecPtr SrSlotRestartLsn(void);

#endif							/* SR_SLOTDIR_H */
