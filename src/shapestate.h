/*-------------------------------------------------------------------------
 *
 * shapestate.h
 *	  The set of shapes a decoding stream routes to, following the WAL.
 *
 * Loaded from shape_router.shapes under the historic snapshot of the first
 * decoded transaction, then kept current one shape at a time by decoding
 * the changes to that catalog.  Tables' compiled shapes are built lazily,
 * cached by relid, and rebuilt after relcache invalidation; shapes that no
 * longer fit their table become invalid and route nothing more.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_SHAPESTATE_H
#define SR_SHAPESTATE_H

#include "access/xlogdefs.h"
#include "jsonout.h"
#include "memkey.h"
#include "nodes/pg_list.h"
#include "replication/reorderbuffer.h"
#include "replication/snapbuild.h"
#include "router.h"
#include "slotmemb.h"

typedef enum SrEventKind
{
	SR_EVENT_ADDED,
	SR_EVENT_REMOVED,
	SR_EVENT_INVALIDATED,
	SR_EVENT_UNSYNCED,			/* no membership for it: routes nothing */
	SR_EVENT_SYNCED				/* its members arrived (resync_shapes) */
} SrEventKind;

/* An "S" record to write */
typedef struct SrShapeEvent
{
	SrEventKind kind;
	int64		shape_id;
	char	   *schema;			/* NULL if the table is gone */
	char	   *table;
	char	   *reason;			/* SR_EVENT_INVALIDATED and _UNSYNCED */
} SrShapeEvent;

/* Which shapes this stream routes to: the shapes and shard options */
typedef struct SrShapeFilter
{
	int			nids;			/* 0 = every shape */
	int64	   *ids;			/* ascending */
	int			shard_count;	/* 0 = no sharding */
	int			shard_index;
} SrShapeFilter;

/* A table with shapes */
/* opaque: what a stream knows about one table (see shapestate.c) */
typedef struct SrRelState SrRelState;

extern SrTableRouter *SrRelRouter(const SrRelState *rs);
extern const SrJsonTable *SrRelJson(const SrRelState *rs);
/* the "key" columns, 1-based */
extern const Bitmapset *SrRelKeyAttrs(const SrRelState *rs);
/* the highest column any shape reads */
extern AttrNumber SrRelMaxAttno(const SrRelState *rs);
/* REPLICA IDENTITY FULL: the old row is in the WAL */
extern bool SrRelFull(const SrRelState *rs);
/* the membership index (NULL: none) and its key columns */
extern SrTableMemb *SrRelMemb(const SrRelState *rs);
extern const SrKeyInfo *SrRelKeyInfo(const SrRelState *rs);
/* drop from ids (ascending) the shapes the stream has no members of */
extern int	SrRelKeepSynced(SrRelState *rs, int64 *ids, int n);
/*
 * What the membership index is to hold for a row whose new version is in
 * the shapes ids (ascending, all of them): the synced ones, and for each
 * shape pending in add_shape_concurrently() that the stream tracks, its id
 * or its tombstone.  *out is ids or a buffer of the change.
 */
extern int	SrRelStoredSet(SrRelState *rs, const int64 *ids, int n,
						   int64 **out);
/* ... for a row key that is gone (0: remove the key) */
extern int	SrRelGoneSet(SrRelState *rs, int64 **out);
/*
 * key's shapes in the membership index that still route, ascending, in a
 * buffer valid until the next lookup; *nstored: how many the index holds
 * (0: the key is not a member)
 */
extern int	SrRelMembers(SrRelState *rs, SrMembKey key, int64 **ids,
						 int *nstored);

typedef struct SrShapeState SrShapeState;

/* drop from ids the shapes still pending (they get no records yet) */
extern int	SrRelDropPending(SrShapeState *st, SrRelState *rs, int64 *ids,
							 int n);

extern SrShapeState *SrStateCreate(MemoryContext parent,
								   const SrShapeFilter *filter,
								   const char *slot_name);
extern void SrStateBeginTxn(SrShapeState *st, ReorderBufferTXN *txn,
							struct SnapBuild *builder);
extern bool SrStateIsCatalog(SrShapeState *st, Relation rel);
extern void SrStateCatalogChange(SrShapeState *st, Relation rel,
								 ReorderBufferChange *change, List **events);
extern SrRelState *SrStateGetRel(SrShapeState *st, Relation rel,
								 List **events);
extern void SrStateInvalidateRel(SrShapeState *st, SrRelState *rs,
								 const char *reason, List **events);
extern void SrStateShapeFailed(SrShapeState *st, int64 shape_id,
							   const char *reason, List **events);
extern void SrStateCommitTxn(SrShapeState *st, List **events);
/* the tables' routers count candidates and evaluations in counters */
struct SrPathCounters;
extern void SrStateSetCounters(SrShapeState *st,
							   struct SrPathCounters *counters);
/* the stream ends: what it saved goes to disk */
extern void SrStateShutdown(SrShapeState *st);
extern void SrStateMessage(SrShapeState *st, const char *prefix, Size size,
						   const char *message);
extern SrMembKey SrStateKeyHash(SrShapeState *st, const SrKeyBuf *kb);
/* SrStateShapeFailed without the "evaluation failed" */
extern void SrStateShapeInvalid(SrShapeState *st, SrRelState *rs,
								int64 shape_id, const char *reason,
								List **events);

#endif							/* SR_SHAPESTATE_H */
