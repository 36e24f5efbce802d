/*-------------------------------------------------------------------------
 *
 * shapestate_int.h
 *	  The structs of a stream's shape state, shared by shapestate.c (the
 *	  shapes), streammemb.c (their membership) and slotstats.c (their
 *	  statistics); nothing else includes it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_SHAPESTATE_INT_H
#define SR_SHAPESTATE_INT_H

#include "common/hashfn.h"
#include "utils/hsearch.h"

#include "invallog.h"
#include "members.h"
#include "shapestate.h"

typedef struct ShapeEntry
{
	int64		shape_id;		/* hash key */
	Oid			relid;
	bool		invalid;
	bool		pending;		/* add_shape_concurrently() is not done */
	char		status;			/* simplehash's */
} ShapeEntry;

/* ids are sequential; slots must not be */
#define ShapeIdHash(id) murmurhash32((uint32) ((id) ^ ((id) >> 32)))

/*
 * shape_id -> ShapeEntry: simplehash keeps 16-byte entries in one array
 * (dynahash spends about 40 bytes per entry).  Entries move on insert and
 * delete: no pointer to one is kept across either.
 */
#define SH_DECLARE
#include "shapemap.h"

struct SrRelState
{
	Oid			relid;			/* hash key */
	int			nshapes;		/* shapes on the table, valid or not */
	int			ninvalid;		/* ... of them invalid */
	bool		valid;			/* router and json match the relcache */
	bool		recheck;		/* relcache changed: look again at commit */
	SrTableRouter *router;
	MemoryContext layoutcxt;	/* json, keyattrs, names; reset on refresh */
	SrJsonTable *json;
	Bitmapset  *keyattrs;		/* "key" columns, 1-based */
	AttrNumber	maxattno;		/* highest column any shape reads */
	char	   *schema;			/* names when last seen, for S records */
	char	   *table;
	Relation	loading;		/* open while the catalog is first read */
	bool		gone;			/* found dropped then */
	/* without REPLICA IDENTITY FULL, the old side comes from membership */
	bool		full;			/* REPLICA IDENTITY FULL */
	SrKeyInfo	keyinfo;		/* membership key columns (layoutcxt) */
	SrTableMemb *memb;			/* NULL: none (FULL, never had one) */
	bool		memb_pending;	/* memb to (re)attach before use */
	uint64		synced_epoch;	/* of memb when unsynced was computed */
	bool		unsynced_known;
	bool		reported;		/* every unsynced shape has had its S */
	int64	   *unsynced;		/* valid shapes without members, sorted */
	int			nunsynced;
	int64	   *tracking;		/* of those, pending and tracked */
	int			ntracking;
	int			npending;		/* shapes pending on the table */
};

/* Initial members of a shape, from this transaction's messages */
typedef struct PendingMembers
{
	int64		shape_id;
	Oid			relid;
	SrMembersKind kind;
	uint32		keysig;
	bool		final;			/* the last chunk was seen */
	bool		tainted;		/* the transaction changed the table after */
	int			nkeys;
	int			maxkeys;
	SrMembKey  *keys;
} PendingMembers;

struct SrShapeState
{
	MemoryContext cxt;
	MemoryContextCallback forget;	/* clears callback_state on deletion */
	MemoryContext txncxt;		/* pending additions; reset at commit */
	SrShapeFilter filter;
	shapemap_hash *shapes;		/* shape_id -> ShapeEntry */
	HTAB	   *rels;			/* relid -> SrRelState */
	SrRelState *lastrel;		/* of the last SrStateGetRel() */
	Oid			shapes_relid;
	bool		loaded;
	List	   *pending;		/* SrShapeDef *, added by this transaction */
	XLogRecPtr	txn_lsn;		/* commit LSN of the transaction decoded */
	Snapshot	snapshot;		/* the catalog as of that commit, without the
								 * transaction's own changes */
	Snapshot	commit_snapshot;	/* ... and with them, for its commit */
	List	   *leaving;		/* ShapeEntry copies removed by this
								 * transaction, S record not yet written */
	SrInvalLog *invallog;		/* the slot's invalidation log */
	char	   *slot_name;		/* NULL: no slot (matching_shapes) */
	bool		dropping;		/* this transaction drops the catalog */
	bool		taken_up;		/* ... or created it (SrStateIsCatalog) */
	Snapshot	builder_snapshot;	/* the builder's at this commit */
	SrSlotMemb *memb;			/* the stream's membership indexes */
	bool		started;		/* a transaction was decoded */
	List	   *members;		/* PendingMembers *, in txncxt */
	List	   *activating;		/* int64 *: shapes the transaction took out
								 * of pending, in txncxt */
	struct SrPathCounters *counters;	/* the routers count here; NULL: no */
};

extern SrRelState *SrStateRelEntry(SrShapeState *st, Oid relid);
extern bool SrStateSelected(const SrShapeFilter *f, int64 shape_id);
extern void SrStateAddEvent(SrShapeState *st, List **events, SrEventKind kind,
							int64 shape_id, Oid relid, const char *reason);
extern void SrStateEnsureRouter(SrShapeState *st, SrRelState *rs,
								Relation rel, List **events);

/* streammemb.c */
extern void SrStateAttachMembership(SrShapeState *st, SrRelState *rs,
									Relation rel, List **events);
extern void SrStateUseMembership(SrShapeState *st, SrRelState *rs);
extern void SrStateTaintMembers(SrShapeState *st, Oid relid);
extern void SrStateReportUnsynced(SrShapeState *st, SrRelState *rs,
								  List **events);
extern void SrStateApplyMembers(SrShapeState *st, List **events);
extern void SrStateTrackPending(SrShapeState *st, int64 shape_id, Oid relid,
								List **events);
extern void SrStateActivate(SrShapeState *st, List **events);

#endif							/* SR_SHAPESTATE_INT_H */
