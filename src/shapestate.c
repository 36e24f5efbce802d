/*-------------------------------------------------------------------------
 *
 * shapestate.c
 *	  The shapes a decoding stream routes to, following the WAL.
 *
 * Rules (design.md section 2): a shape routes exactly the changes of
 * transactions that commit after the one that added it, so additions are
 * held as pending until their transaction's commit is decoded; S records
 * are written where the catalog change stands in the WAL.  A shape whose
 * qual stops fitting its table (column dropped or retyped, table dropped,
 * replica identity no longer FULL) is invalidated once, with a reason, and
 * routes nothing more in this stream.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/transam.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "replication/snapbuild.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relmapper.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "invallog.h"
#include "shapestate.h"
#include "shapecache.h"
#include "shapestate_int.h"
#include "sortutil.h"

#define SH_DEFINE
#include "shapemap.h"

SrTableRouter *
SrRelRouter(const SrRelState *rs)
{
	return rs->router;
}

const SrJsonTable *
SrRelJson(const SrRelState *rs)
{
	return rs->json;
}

const Bitmapset *
SrRelKeyAttrs(const SrRelState *rs)
{
	return rs->keyattrs;
}

AttrNumber
SrRelMaxAttno(const SrRelState *rs)
{
	return rs->maxattno;
}


/* the reason of the S removed of a shape that never started */
#define PENDING_REMOVED "add_shape_concurrently() did not finish"

static void RemoveShape(SrShapeState *st, int64 shape_id, List **events);
static int64 ShapeIdOf(HeapTuple tup, TupleDesc desc);
static void ComputeMaxAttno(SrRelState *rs);

/* One decoding context per process: the relcache callback finds it here. */
static SrShapeState *callback_state = NULL;
static bool callback_registered = false;

static void
RelcacheCallback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	SrRelState *rs;

	if (callback_state == NULL || callback_state->rels == NULL)
		return;
	if (OidIsValid(relid))
	{
		rs = hash_search(callback_state->rels, &relid, HASH_FIND, NULL);
		if (rs)
			rs->valid = false, rs->recheck = true;
		return;
	}
	hash_seq_init(&status, callback_state->rels);
	while ((rs = hash_seq_search(&status)) != NULL)
		rs->valid = false, rs->recheck = true;
}

/*
 * A schema was renamed (or dropped, or its owner changed): the S, I, U, D
 * and T records of every table name it, so every table's names are read
 * again before its next record.  Only the names: the router is recompiled
 * only if the columns changed.
 */
static void
NamespaceCallback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS status;
	SrRelState *rs;

	if (callback_state == NULL || callback_state->rels == NULL)
		return;
	hash_seq_init(&status, callback_state->rels);
	while ((rs = hash_seq_search(&status)) != NULL)
		rs->valid = false;
}

/*
 * The state dies with its decoding context, also when decoding fails and
 * the context goes with the transaction: the relcache callback, registered
 * for the life of the process, must not find it then.
 */
static void
ForgetState(void *arg)
{
	if (callback_state == (SrShapeState *) arg)
		callback_state = NULL;
}

/*
 * The stream options that choose shapes: a slot's saved membership is for
 * the shapes of the options it was made under.
 */
static uint32
FilterSignature(const SrShapeFilter *f)
{
	uint32		h = f->nids ? hash_bytes((const unsigned char *) f->ids,
										 sizeof(int64) * f->nids) : 0;

	return h ^ (uint32) (f->shard_count * 65599 + f->shard_index);
}

SrShapeState *
SrStateCreate(MemoryContext parent, const SrShapeFilter *filter,
			  const char *slot_name)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "shape_router shapes",
											  ALLOCSET_DEFAULT_SIZES);
	SrShapeState *st = MemoryContextAllocZero(cxt, sizeof(SrShapeState));
	HASHCTL		ctl;

	st->cxt = cxt;
	st->txncxt = AllocSetContextCreate(cxt, "shape_router pending shapes",
									   ALLOCSET_SMALL_SIZES);
	st->filter = *filter;
	st->invallog = SrInvalLogCreate(slot_name, cxt);
	st->slot_name = slot_name ? MemoryContextStrdup(cxt, slot_name) : NULL;
	st->memb = SrSlotMembCreate(cxt, slot_name, FilterSignature(filter));

	st->shapes = shapemap_create(cxt, 1024, NULL);
	ctl.hcxt = cxt;
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(SrRelState);
	st->rels = hash_create("shape_router tables", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	st->forget.func = ForgetState;
	st->forget.arg = st;
	MemoryContextRegisterResetCallback(cxt, &st->forget);
	callback_state = st;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(RelcacheCallback, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, NamespaceCallback,
									  (Datum) 0);
		callback_registered = true;
	}
	return st;
}

bool
SrStateSelected(const SrShapeFilter *f, int64 shape_id)
{
	if (f->shard_count > 0 && shape_id % f->shard_count != f->shard_index)
		return false;
	if (f->nids > 0)
	{
		int			lo = 0,
					hi = f->nids - 1;

		while (lo <= hi)
		{
			int			mid = lo + (hi - lo) / 2;

			if (f->ids[mid] == shape_id)
				return true;
			if (f->ids[mid] < shape_id)
				lo = mid + 1;
			else
				hi = mid - 1;
		}
		return false;
	}
	return true;
}

/*
 * Queue an S record.  events == NULL means silently: what the catalog
 * already said when the stream started was reported by an earlier stream.
 */
void
SrStateAddEvent(SrShapeState *st, List **events, SrEventKind kind, int64 shape_id,
		 Oid relid, const char *reason)
{
	SrShapeEvent *ev;
	Oid			nsp;

	if (events == NULL)
		return;
	ev = palloc0(sizeof(SrShapeEvent));
	ev->kind = kind;
	ev->shape_id = shape_id;
	ev->reason = reason ? pstrdup(reason) : NULL;
	nsp = get_rel_namespace(relid);
	if (OidIsValid(nsp))
	{
		ev->table = get_rel_name(relid);
		ev->schema = get_namespace_name(nsp);
	}
	else
	{
		/* The table is gone; use the names it had when last seen. */
		SrRelState *rs = hash_search(st->rels, &relid, HASH_FIND, NULL);

		if (rs && rs->schema)
		{
			ev->schema = pstrdup(rs->schema);
			ev->table = pstrdup(rs->table);
		}
	}
	*events = lappend(*events, ev);
}

SrRelState *
SrStateRelEntry(SrShapeState *st, Oid relid)
{
	bool		found;
	SrRelState *rs = hash_search(st->rels, &relid, HASH_ENTER, &found);

	if (!found)
	{
		/* all zero but the key: no shapes, nothing built, FULL */
		memset(((char *) rs) + sizeof(Oid), 0, sizeof(SrRelState) - sizeof(Oid));
		rs->full = true;
	}
	return rs;
}

static void
InvalidateShape(SrShapeState *st, SrRelState *rs, SrShape *shape,
				ShapeEntry *entry, const char *reason, List **events)
{
	SrRelState *r = rs ? rs : hash_search(st->rels, &entry->relid,
										  HASH_FIND, NULL);

	if (entry->invalid)
		return;
	entry->invalid = true;
	if (r)
		r->ninvalid++;
	if (events != NULL)
	{
		SrInvalLogAdd(st->invallog, st->txn_lsn, st->shapes_relid,
					  entry->shape_id);
		if (r && r->memb)
			SrTableMembDropShape(r->memb, entry->shape_id);
	}
	if (shape)
		SrRouterDisableShape(rs->router, shape, reason);
	/* a pending shape has had no S added yet: SrStateActivate says it */
	if (!entry->pending)
		SrStateAddEvent(st, events, SR_EVENT_INVALIDATED, entry->shape_id,
						entry->relid, reason);
}

/* Every still-valid shape on the table becomes invalid. */
static int
CompareEntries(const void *a, const void *b)
{
	int64		x = (*(ShapeEntry *const *) a)->shape_id;
	int64		y = (*(ShapeEntry *const *) b)->shape_id;

	return (x > y) - (x < y);
}

void
SrStateInvalidateRel(SrShapeState *st, SrRelState *rs, const char *reason,
					 List **events)
{
	shapemap_iterator it;
	ShapeEntry *entry;
	ShapeEntry **found = palloc(sizeof(ShapeEntry *) * Max(rs->nshapes, 1));
	int			n = 0;

	uint32		nseen = 0;

	/* every shape of the stream: hundreds of thousands */
	shapemap_start_iterate(st->shapes, &it);
	while ((entry = shapemap_iterate(st->shapes, &it)) != NULL)
	{
		if ((++nseen & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		if (entry->relid == rs->relid && !entry->invalid && n < rs->nshapes)
			found[n++] = entry;
	}
	/* S records in ascending shape id */
	qsort(found, n, sizeof(ShapeEntry *), CompareEntries);
	for (int i = 0; i < n; i++)
		InvalidateShape(st, rs,
						rs->router ? SrRouterFindShape(rs->router, found[i]->shape_id) : NULL,
						found[i], reason, events);
	pfree(found);
}

/*
 * A shape's operators raised an error on a row (the router has already
 * stopped evaluating it): it routes nothing more in this stream.
 */
void
SrStateShapeFailed(SrShapeState *st, int64 shape_id, const char *reason,
				   List **events)
{
	ShapeEntry *entry = shapemap_lookup(st->shapes, shape_id);

	if (entry)
		InvalidateShape(st, NULL, NULL, entry,
						psprintf("evaluation failed: %s", reason), events);
}

void
SrStateShapeInvalid(SrShapeState *st, SrRelState *rs, int64 shape_id,
					const char *reason, List **events)
{
	ShapeEntry *entry = shapemap_lookup(st->shapes, shape_id);

	if (entry)
		InvalidateShape(st, rs,
						rs->router ? SrRouterFindShape(rs->router, shape_id) : NULL,
						entry, reason, events);
}

/*
 * Is an UPDATE that leaves (or a row version that had) this shape id the
 * end of the shape's pending state?  The UPDATE's new row says pending no
 * longer; the old row version, still pending, is the stream's own shape.
 */
static bool
IsActivation(SrShapeState *st, HeapTuple tup, Relation shapes)
{
	ShapeEntry *entry = shapemap_lookup(st->shapes,
										ShapeIdOf(tup, RelationGetDescr(shapes)));

	return entry != NULL && entry->pending;
}

/* Did txn (or one of its committed subtransactions) delete this tuple? */
static bool
DeletedBy(HeapTuple tup, ReorderBufferTXN *txn)
{
	HeapTupleHeader h = tup->t_data;
	TransactionId xmax;
	dlist_iter	iter;

	if (h->t_infomask & HEAP_XMAX_INVALID ||
		HEAP_XMAX_IS_LOCKED_ONLY(h->t_infomask))
		return false;
	xmax = (h->t_infomask & HEAP_XMAX_IS_MULTI) ?
		HeapTupleGetUpdateXid(h) : HeapTupleHeaderGetRawXmax(h);
	if (!TransactionIdIsValid(xmax))
		return false;
	if (TransactionIdEquals(xmax, txn->xid))
		return true;
	dlist_foreach(iter, &txn->subtxns)
	{
		ReorderBufferTXN *sub = dlist_container(ReorderBufferTXN, node, iter.cur);

		if (TransactionIdEquals(xmax, sub->xid))
			return true;
	}
	return false;
}

/*
 * The shape ids whose catalog rows txn (with its subtransactions) deletes,
 * read off the reorder buffer's own lists of its changes, which are all in
 * memory when the transaction has not spilled to disk: O(changes), not a
 * catalog scan per transaction that wrote some catalog (every add_shape(),
 * every DDL).  Returns false if the lists are incomplete, hold DDL, or hold
 * a change to the catalog other than INSERT and DELETE with its old key (an
 * UPDATE or TRUNCATE by hand).
 */
static bool
LeavingFromChanges(SrShapeState *st, ReorderBufferTXN *txn, Relation shapes,
				   List **ids, bool top)
{
	dlist_iter	iter;
	uint32		nseen = 0;
	Oid			pg_class_node = RelationMapOidToFilenode(RelationRelationId,
														 false);

	if (rbtxn_is_serialized(txn) || rbtxn_is_serialized_clear(txn))
		return false;
	dlist_foreach(iter, &txn->changes)
	{
		ReorderBufferChange *c = dlist_container(ReorderBufferChange, node,
												 iter.cur);
		int64	   *id;

		if ((++nseen & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		switch (c->action)
		{
			case REORDER_BUFFER_CHANGE_INSERT:
			case REORDER_BUFFER_CHANGE_UPDATE:
			case REORDER_BUFFER_CHANGE_DELETE:

				/*
				 * DDL (it writes pg_class) might give the catalog a new
				 * relfilenode within the transaction, which the relcache as
				 * of its start does not know: look in the catalog instead.
				 */
				if (c->data.tp.relnode.relNode == pg_class_node &&
					c->data.tp.relnode.dbNode == MyDatabaseId)
					return false;
				if (!RelFileNodeEquals(c->data.tp.relnode, shapes->rd_node))
					break;
				if (c->action == REORDER_BUFFER_CHANGE_INSERT)
					break;
				if (c->action == REORDER_BUFFER_CHANGE_UPDATE &&
					!SrShapePending(&c->data.tp.newtuple->tuple,
									RelationGetDescr(shapes)) &&
					IsActivation(st, &c->data.tp.newtuple->tuple, shapes))
					break;
				if (c->action == REORDER_BUFFER_CHANGE_UPDATE ||
					c->data.tp.oldtuple == NULL)
					return false;
				id = palloc(sizeof(int64));
				*id = ShapeIdOf(&c->data.tp.oldtuple->tuple,
								RelationGetDescr(shapes));
				*ids = lappend(*ids, id);
				break;
			case REORDER_BUFFER_CHANGE_TRUNCATE:
				for (Size i = 0; i < c->data.truncate.nrelids; i++)
					if (c->data.truncate.relids[i] == RelationGetRelid(shapes))
						return false;
				break;
			default:
				break;
		}
	}
	if (top)
	{
		dlist_foreach(iter, &txn->subtxns)
		{
			ReorderBufferTXN *sub = dlist_container(ReorderBufferTXN, node,
													iter.cur);

			if (!LeavingFromChanges(st, sub, shapes, ids, false))
				return false;
		}
	}
	return true;
}

/* The same, by scanning the catalog for rows whose xmax is txn's */
static void
LeavingFromCatalog(SrShapeState *st, ReorderBufferTXN *txn, Relation shapes,
				   Snapshot snapshot, List **ids)
{
	SysScanDesc scan;
	HeapTuple	tup;

	scan = systable_beginscan(shapes, InvalidOid, false, snapshot, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		int64	   *id;

		CHECK_FOR_INTERRUPTS();
		if (!DeletedBy(tup, txn))
			continue;
		/* updated, not deleted: add_shape_concurrently()'s last step */
		if (SrShapePending(tup, RelationGetDescr(shapes)) &&
			!ItemPointerEquals(&tup->t_self, &tup->t_data->t_ctid) &&
			IsActivation(st, tup, shapes))
			continue;
		id = palloc(sizeof(int64));
		*id = ShapeIdOf(tup, RelationGetDescr(shapes));
		*ids = lappend(*ids, id);
	}
	systable_endscan(scan);
}

/* The ids of every shape the stream has, ascending (palloc'd) */
static int64 *
AllShapeIds(SrShapeState *st, int *n)
{
	shapemap_iterator it;
	ShapeEntry *entry;
	int64	   *ids = palloc(sizeof(int64) * Max(st->shapes->members, 1));

	*n = 0;
	shapemap_start_iterate(st->shapes, &it);
	while ((entry = shapemap_iterate(st->shapes, &it)) != NULL)
	{
		if ((*n & 1023) == 1023)
			CHECK_FOR_INTERRUPTS();
		ids[(*n)++] = entry->shape_id;
	}
	if (*n > 1)
		qsort(ids, *n, sizeof(int64), SrCompareInt64);
	return ids;
}

/* Is there a pg_class row for relid under snap? */
static bool
ClassExists(Oid relid, Snapshot snap)
{
	Relation	pg_class = table_open(RelationRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	bool		found;

	ScanKeyInit(&key, Anum_pg_class_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(pg_class, ClassOidIndexId, true, snap, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(pg_class, AccessShareLock);
	return found;
}

/*
 * Is the shape catalog still there when txn commits?  DROP EXTENSION (or a
 * DROP TABLE of the catalog) deletes its pg_class row: looked up under the
 * snapshot of the commit, which counts txn as committed.
 */
static bool
CatalogSurvives(SrShapeState *st, struct SnapBuild *builder,
				ReorderBufferTXN *txn)
{
	return ClassExists(st->shapes_relid, st->commit_snapshot ?
					   st->commit_snapshot :
					   SnapBuildGetOrBuildSnapshot(builder, txn->xid));
}

/*
 * Historic snapshots see the catalog's rows only while its files exist: a
 * DROP EXTENSION committed later in the WAL than the stream has reached
 * truncates and then unlinks them, and a scan would find nothing (or fail
 * on a missing block).  A stream that lags behind such a DROP cannot know
 * its shapes: an error that says so, before any scan, rather than records
 * silently missing.  (The catalog is a user table, so SnapshotSelf is the
 * present state of pg_class.)
 */
static void
CheckCatalogReadable(SrShapeState *st)
{
	if (!ClassExists(st->shapes_relid, SnapshotSelf))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shape catalog was dropped after this stream's start point"),
				 errdetail("The extension shape_router was dropped by a transaction this slot has not consumed yet; the shapes of the transactions before it can no longer be read."),
				 errhint("Advance the slot past the DROP EXTENSION with pg_replication_slot_advance(), or drop and re-create the slot.")));
}

/*
 * The catalog was dropped by the transaction being committed: every shape
 * ends, with S removed and a reason, and the stream starts afresh, as if
 * the extension had never been created; a later CREATE EXTENSION is
 * found at the next transaction's start (or at its catalog's first row).
 * The invalidation log names the catalog, so what it said of the old
 * shapes' ids does not apply to the new catalog's.
 */
static void
EndAllShapes(SrShapeState *st, const char *reason, List **events)
{
	int			n;
	int64	   *ids = AllShapeIds(st, &n);
	ListCell   *lc;
	HASH_SEQ_STATUS status;
	SrRelState *rs;
	HASHCTL		ctl;

	foreach(lc, st->pending)
	{
		SrShapeDef *def = lfirst(lc);

		ids = repalloc(ids, sizeof(int64) * (n + 1));
		ids[n++] = def->shape_id;
	}
	if (n > 1)
		qsort(ids, n, sizeof(int64), SrCompareInt64);
	for (int i = 0; i < n; i++)
	{
		ShapeEntry *entry = shapemap_lookup(st->shapes, ids[i]);
		Oid			relid = InvalidOid;

		if (entry)
			relid = entry->relid;
		else
			foreach(lc, st->pending)
				if (((SrShapeDef *) lfirst(lc))->shape_id == ids[i])
					relid = ((SrShapeDef *) lfirst(lc))->relid;
		SrStateAddEvent(st, events, SR_EVENT_REMOVED, ids[i], relid, reason);
	}
	pfree(ids);

	hash_seq_init(&status, st->rels);
	while ((rs = hash_seq_search(&status)) != NULL)
	{
		if (rs->router)
			SrRouterDestroy(rs->router);
		if (rs->layoutcxt)
			MemoryContextDelete(rs->layoutcxt);
	}
	hash_destroy(st->rels);
	ctl.hcxt = st->cxt;
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(SrRelState);
	st->rels = hash_create("shape_router tables", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	shapemap_reset(st->shapes);
	st->lastrel = NULL;
	st->pending = NIL;
	st->leaving = NIL;
	st->loaded = false;
	st->dropping = false;
	st->shapes_relid = InvalidOid;
}

/*
 * A shape routes only transactions that commit before the one removing it,
 * so a removing transaction must not route to it even before its
 * remove_shape() is decoded.  Only transactions that wrote catalogs can
 * remove shapes: for those, find the catalog rows this transaction deletes
 * and take the shapes out now; their S records are written where the
 * deletions stand.
 */
static void
TakeOutLeavingShapes(SrShapeState *st, ReorderBufferTXN *txn)
{
	Relation	shapes;
	List	   *ids = NIL;
	ListCell   *lc;
	MemoryContext old;


	st->leaving = NIL;
	if (!rbtxn_has_catalog_changes(txn))
		return;
	shapes = table_open(st->shapes_relid, AccessShareLock);
	if (!LeavingFromChanges(st, txn, shapes, &ids, true))
	{
		list_free_deep(ids);
		ids = NIL;
		/* the historic snapshot at its start still sees the rows */
		CheckCatalogReadable(st);
		LeavingFromCatalog(st, txn, shapes, st->snapshot, &ids);
	}
	table_close(shapes, AccessShareLock);

	foreach(lc, ids)
	{
		int64		shape_id = *(int64 *) lfirst(lc);
		ShapeEntry *entry = shapemap_lookup(st->shapes, shape_id);
		SrRelState *rs;

		if (entry == NULL)
			continue;
		/* the list lives as long as the transaction's pending shapes */
		old = MemoryContextSwitchTo(st->txncxt);
		st->leaving = lappend(st->leaving,
							  memcpy(palloc(sizeof(ShapeEntry)),
									 entry, sizeof(ShapeEntry)));
		MemoryContextSwitchTo(old);
		rs = hash_search(st->rels, &entry->relid, HASH_FIND, NULL);
		if (rs)
		{
			rs->nshapes--;
			rs->npending -= entry->pending;
			rs->ninvalid -= entry->invalid;
			if (rs->router && SrRouterRemoveShape(rs->router, shape_id))
				ComputeMaxAttno(rs);
		}
		shapemap_delete(st->shapes, shape_id);
	}
	list_free_deep(ids);
}

static bool
IsTxnXid(ReorderBufferTXN *txn, TransactionId xid)
{
	dlist_iter	iter;

	if (TransactionIdEquals(xid, txn->xid))
		return true;
	dlist_foreach(iter, &txn->subtxns)
		if (TransactionIdEquals(xid,
								dlist_container(ReorderBufferTXN, node, iter.cur)->xid))
			return true;
	return false;
}

/*
 * The shape catalog as the transaction's commit sees it, minus its own
 * changes (which are decoded one by one).  The transaction's own historic
 * snapshot is the one of its first change: a stream starting between a
 * shape change and the commit of a transaction already open then would
 * miss that shape change.  The snapshot builder, at this commit, knows every
 * catalog change committed before it; we drop this transaction's xids from
 * its committed list.
 */
static Snapshot
CommittedBefore(struct SnapBuild *builder, ReorderBufferTXN *txn,
				MemoryContext cxt)
{
	Snapshot	base = SnapBuildGetOrBuildSnapshot(builder, txn->xid);
	Snapshot	snap;

	/* Its xmin horizon would treat our xid as committed. */
	if (TransactionIdPrecedes(txn->xid, base->xmin))
		return NULL;
	snap = MemoryContextAlloc(cxt, sizeof(SnapshotData));
	*snap = *base;
	snap->xip = MemoryContextAlloc(cxt, sizeof(TransactionId) * Max(base->xcnt, 1));
	snap->xcnt = 0;
	for (uint32 i = 0; i < base->xcnt; i++)
		if (!IsTxnXid(txn, base->xip[i]))
			snap->xip[snap->xcnt++] = base->xip[i];
	snap->subxip = NULL;
	snap->subxcnt = 0;
	snap->copied = true;
	snap->regd_count = 0;
	snap->active_count = 0;
	return snap;
}

static SrTableRouter *
RouterOf(Oid relid, void *arg)
{
	SrRelState *rs = hash_search(((SrShapeState *) arg)->rels, &relid,
								 HASH_FIND, NULL);

	return rs ? rs->router : NULL;
}

/* The compiled shapes for the next stream, and what this one took */
static void
SaveCache(SrShapeState *st, SrShapeCache *cache)
{
	int64		taken,
				compiled;

	SrShapeCacheSave(cache, RouterOf, st);
	SrShapeCacheCounts(cache, &taken, &compiled);
	elog(DEBUG1, "shape_router: stream start: " INT64_FORMAT " shapes from the compiled-shape cache, " INT64_FORMAT " compiled",
		 taken, compiled);
}

/*
 * The stream's first look at the catalog: one pass over it, under the
 * snapshot of the first transaction's start, that registers the shapes this
 * stream routes and compiles each valid one into its table's router (a
 * second pass per table, through the relid index, would read the whole
 * catalog again).  Shapes that no longer fit their table, or whose table is
 * gone, were invalidated and reported before this stream's start point, so
 * they are marked silently: a restarted stream writes exactly what an
 * uninterrupted one would.
 */
static void
LoadShapes(SrShapeState *st)
{
	Relation	shapes;
	SysScanDesc scan;
	HeapTuple	tup;
	HASH_SEQ_STATUS status;
	SrRelState *rs;
	int			nlogged;
	int64	   *logged = SrInvalLogRead(st->invallog, st->txn_lsn,
									   st->shapes_relid, &nlogged);
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "shape_router catalog row",
												 ALLOCSET_DEFAULT_SIZES);
	MemoryContext cachecxt = AllocSetContextCreate(CurrentMemoryContext,
												   "shape_router compiled-shape cache",
												   ALLOCSET_DEFAULT_SIZES);
	SrShapeCache *cache = SrShapeCacheLoad(st->slot_name, st->shapes_relid,
										   cachecxt);

	CheckCatalogReadable(st);
	shapes = table_open(st->shapes_relid, AccessShareLock);
	SrCheckShapesDesc(RelationGetDescr(shapes));
	scan = systable_beginscan(shapes, InvalidOid, false, st->snapshot, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		/* most rows are read for these two: the struct, as for pg_class */
		Form_sr_shapes_head head = SrShapesHead(tup);
		int64		shape_id = head->shape_id;
		bool		found;
		ShapeEntry *entry;
		SrShapeDef	def;
		SrShape    *shape;
		MemoryContext old;
		TransactionId xmin;

		CHECK_FOR_INTERRUPTS();
		if (!SrStateSelected(&st->filter, shape_id))
			continue;
		entry = shapemap_insert(st->shapes, shape_id, &found);
		entry->relid = head->relid;
		entry->invalid = bsearch(&shape_id, logged, nlogged, sizeof(int64),
								 SrCompareInt64) != NULL;
		entry->pending = SrShapePending(tup, RelationGetDescr(shapes));
		rs = SrStateRelEntry(st, entry->relid);
		rs->nshapes++;
		rs->npending += entry->pending;
		rs->ninvalid += entry->invalid;
		if (entry->invalid || rs->gone)
			continue;
		if (rs->router == NULL)
		{
			rs->loading = RelationIdGetRelation(rs->relid);
			if (!RelationIsValid(rs->loading))
			{
				rs->loading = NULL;
				rs->gone = true;
				continue;
			}
			rs->router = SrRouterCreate(rs->relid, RelationGetDescr(rs->loading),
										0, st->cxt);
			SrRouterSetCounters(rs->router, st->counters);
			SrRouterBeginBulk(rs->router);
		}

		xmin = HeapTupleHeaderGetRawXmin(tup->t_data);
		if (SrShapeCacheTake(cache, rs->router, rs->loading, shape_id, xmin))
			continue;
		old = MemoryContextSwitchTo(rowcxt);
		SrShapeDefFromTuple(tup, RelationGetDescr(shapes), &def);
		shape = SrRouterAddShape(rs->router, &def);
		if (shape->prog == NULL)
			InvalidateShape(st, rs, NULL, entry, shape->invalid_reason, NULL);
		else
			SrShapeCacheNote(cache, rs->loading, shape, xmin);
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
	}
	systable_endscan(scan);
	table_close(shapes, AccessShareLock);
	MemoryContextDelete(rowcxt);
	pfree(logged);
	st->loaded = true;

	hash_seq_init(&status, st->rels);
	while ((rs = hash_seq_search(&status)) != NULL)
	{
		Relation	rel = rs->loading;

		if (rs->router)
			SrRouterEndBulk(rs->router);
		if (rel == NULL && !rs->gone)
			rel = RelationIdGetRelation(rs->relid);
		rs->loading = NULL;
		if (rs->gone || !RelationIsValid(rel))
		{
			rs->gone = false;
			SrStateInvalidateRel(st, rs, "table was dropped", NULL);
			continue;
		}
		SrStateEnsureRouter(st, rs, rel, NULL);
		RelationClose(rel);
	}
	SaveCache(st, cache);
	MemoryContextDelete(cachecxt);
}

void
SrStateBeginTxn(SrShapeState *st, ReorderBufferTXN *txn,
				struct SnapBuild *builder)
{
	st->txn_lsn = txn->final_lsn;
	if (!st->started)
	{
		/* what was committed before this was decoded by earlier streams */
		SrSlotMembStart(st->memb, txn->final_lsn);
		st->started = true;
	}
	MemoryContextReset(st->txncxt);
	st->members = NIL;
	st->activating = NIL;
	SrInvalLogDiscard(st->invallog);
	st->pending = NIL;
	st->leaving = NIL;
	st->dropping = false;
	st->taken_up = false;
	st->snapshot = builder ? CommittedBefore(builder, txn, st->txncxt) : NULL;
	st->builder_snapshot = builder ?
		SnapBuildGetOrBuildSnapshot(builder, txn->xid) : NULL;
	st->commit_snapshot = st->snapshot ? st->builder_snapshot : NULL;
	if (st->loaded)
	{
		/* a transaction that drops the catalog routes to no shape */
		if (rbtxn_has_catalog_changes(txn) && builder &&
			!CatalogSurvives(st, builder, txn))
		{
			st->dropping = true;
			return;
		}
		TakeOutLeavingShapes(st, txn);
		return;
	}
	/* Until CREATE EXTENSION is decoded there are no shapes. */
	st->shapes_relid = SrShapesRelid(true);
	if (!OidIsValid(st->shapes_relid))
		return;

	LoadShapes(st);
	TakeOutLeavingShapes(st, txn);
}

/*
 * Is rel the shape catalog?  Before the stream has one, a catalog created
 * by the transaction being decoded (CREATE EXTENSION) is taken up at its
 * first row: it holds no shape added before this transaction.
 */
bool
SrStateIsCatalog(SrShapeState *st, Relation rel)
{
	if (!st->loaded && !st->dropping &&
		strcmp(RelationGetRelationName(rel), SR_SHAPES_TABLE) == 0 &&
		RelationGetRelid(rel) == SrShapesRelid(true))
	{
		st->shapes_relid = RelationGetRelid(rel);
		st->loaded = true;
		st->taken_up = true;
	}
	return st->loaded && RelationGetRelid(rel) == st->shapes_relid;
}

typedef struct BuildContext
{
	SrShapeState *st;
	SrRelState *rs;
	List	  **events;
	MemoryContext cxt;			/* where events live; rows are decoded in a
								 * context reset after each */
	ShapeEntry *entry;			/* of the row accepted by BuildShapeFilter */
} BuildContext;

/* Before a catalog row is decoded: is it a shape this stream routes? */
static bool
BuildShapeFilter(int64 shape_id, void *arg)
{
	BuildContext *bc = (BuildContext *) arg;

	/* Not routed by this stream, pending, or already invalid */
	if (!SrStateSelected(&bc->st->filter, shape_id))
		return false;
	bc->entry = shapemap_lookup(bc->st->shapes, shape_id);
	return bc->entry != NULL && !bc->entry->invalid;
}

static void
BuildShapeCallback(const SrShapeDef *def, void *arg)
{
	BuildContext *bc = (BuildContext *) arg;
	ShapeEntry *entry = bc->entry;
	SrShape    *shape;

	shape = SrRouterAddShape(bc->rs->router, def);
	if (shape->prog == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(bc->cxt);

		InvalidateShape(bc->st, bc->rs, NULL, entry, shape->invalid_reason,
						bc->events);
		MemoryContextSwitchTo(old);
	}
}

static int
CompareEventIds(const ListCell *a, const ListCell *b)
{
	const SrShapeEvent *x = lfirst(a);
	const SrShapeEvent *y = lfirst(b);

	return (x->shape_id > y->shape_id) - (x->shape_id < y->shape_id);
}

static void
ComputeMaxAttno(SrRelState *rs)
{
	rs->maxattno = SrRouterMaxAttno(rs->router);
}

/*
 * Make the table's router, key columns and JSON layout match the relation
 * as the historic snapshot sees it.  The router is recompiled only if the
 * columns changed; relcache invalidations are frequent (VACUUM, ANALYZE).
 */
void
SrStateEnsureRouter(SrShapeState *st, SrRelState *rs, Relation rel, List **events)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old;

	if (rs->valid && rs->router)
		return;

	if (rs->router == NULL || !equalTupleDescs(SrRouterDesc(rs->router), desc))
	{
		List	   *built = NIL;
		BuildContext bc = {st, rs, events ? &built : NULL,
		CurrentMemoryContext, NULL};

		CheckCatalogReadable(st);
		if (rs->router)
			SrRouterDestroy(rs->router);
		rs->router = SrRouterCreate(rs->relid, desc, rs->nshapes, st->cxt);
		SrRouterSetCounters(rs->router, st->counters);
		SrCatalogForEachShape(rs->relid, st->snapshot, BuildShapeFilter,
							  BuildShapeCallback, &bc);
		/* the catalog's order is its rows' places on disk: by id instead */
		if (events)
		{
			list_sort(built, CompareEventIds);
			*events = list_concat(*events, built);
		}
	}

	/*
	 * Names, JSON layout and key columns are rebuilt on every refresh, so
	 * they live in a context of their own, reset here (as pgoutput's entry
	 * context): a stream that sees a relcache invalidation an hour for
	 * weeks must not grow.
	 */
	if (rs->layoutcxt == NULL)
		rs->layoutcxt = AllocSetContextCreate(st->cxt, "shape_router table layout",
											  ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(rs->layoutcxt);
	old = MemoryContextSwitchTo(rs->layoutcxt);
	rs->schema = get_namespace_name(RelationGetNamespace(rel));
	rs->table = pstrdup(RelationGetRelationName(rel));
	rs->json = SrJsonTableCreate(desc, rs->schema, rs->table);
	rs->keyattrs = SrKeyColumns(rel);
	SrKeyInfoForRel(rel, &rs->keyinfo);
	MemoryContextSwitchTo(old);
	SrStateAttachMembership(st, rs, rel, events);

	ComputeMaxAttno(rs);
	rs->valid = true;
}

SrRelState *
SrStateGetRel(SrShapeState *st, Relation rel, List **events)
{
	Oid			relid = RelationGetRelid(rel);
	SrRelState *rs = NULL;

	if (!st->loaded || st->dropping)
		return NULL;
	if (st->members != NIL)
		SrStateTaintMembers(st, relid);
	/* rels entries are never removed: the last one found stays valid */
	if (st->lastrel && st->lastrel->relid == relid)
		rs = st->lastrel;
	else if ((rs = hash_search(st->rels, &relid, HASH_FIND, NULL)) != NULL)
		st->lastrel = rs;
	if (rs == NULL || rs->nshapes == 0)
		return NULL;
	SrStateEnsureRouter(st, rs, rel, events);
	SrStateUseMembership(st, rs);
	if (rs->memb || !rs->full)
		SrStateReportUnsynced(st, rs, events);
	return rs;
}

static void
RemoveShape(SrShapeState *st, int64 shape_id, List **events)
{
	ListCell   *lc;
	ShapeEntry *entry;
	SrRelState *rs;
	bool		pending;

	foreach(lc, st->pending)
	{
		SrShapeDef *def = lfirst(lc);

		if (def->shape_id == shape_id)
		{
			SrStateAddEvent(st, events, SR_EVENT_REMOVED, shape_id, def->relid, NULL);
			st->pending = foreach_delete_current(st->pending, lc);
			return;
		}
	}
	foreach(lc, st->leaving)
	{
		ShapeEntry *left = lfirst(lc);

		if (left->shape_id == shape_id)
		{
			SrStateAddEvent(st, events, SR_EVENT_REMOVED, shape_id, left->relid,
							left->pending ? PENDING_REMOVED : NULL);
			st->leaving = foreach_delete_current(st->leaving, lc);
			return;
		}
	}

	entry = shapemap_lookup(st->shapes, shape_id);
	if (entry == NULL)
		return;
	pending = entry->pending;
	rs = hash_search(st->rels, &entry->relid, HASH_FIND, NULL);
	if (rs)
	{
		SrTableMemb *tm = rs->memb ? rs->memb :
			SrSlotMembTable(st->memb, rs->relid, 0, false);

		if (tm)
			SrTableMembDropShape(tm, shape_id);
		if (tm && pending)
			SrTableMembDropShape(tm, SrMembTombstone(shape_id));
		rs->nshapes--;
		rs->npending -= pending;
		rs->ninvalid -= entry->invalid;
		rs->unsynced_known = false;
		if (rs->router && SrRouterRemoveShape(rs->router, shape_id))
			ComputeMaxAttno(rs);
	}
	SrStateAddEvent(st, events, SR_EVENT_REMOVED, shape_id, entry->relid,
					pending ? PENDING_REMOVED : NULL);
	shapemap_delete(st->shapes, shape_id);
}

static void
AddPending(SrShapeState *st, HeapTuple tup, TupleDesc desc, List **events)
{
	MemoryContext old = MemoryContextSwitchTo(st->txncxt);
	SrShapeDef *def = palloc(sizeof(SrShapeDef));

	SrShapeDefFromTuple(tup, desc, def);
	if (def->qual)
		def->qual = pstrdup(def->qual);
	if (SrStateSelected(&st->filter, def->shape_id))
	{
		st->pending = lappend(st->pending, def);
		MemoryContextSwitchTo(old);
		/* a concurrent add's S added comes when it stops being pending */
		if (!def->pending)
			SrStateAddEvent(st, events, SR_EVENT_ADDED, def->shape_id, def->relid, NULL);
		return;
	}
	MemoryContextSwitchTo(old);
}

static int64
ShapeIdOf(HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, Anum_shapes_shape_id, desc, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * add_shape_concurrently()'s last step sets pending to false: the shape
 * starts at this commit (SrStateActivate), after its members are merged.
 */
static bool
Activates(SrShapeState *st, ReorderBufferTupleBuf *oldt, HeapTuple newtup,
		  TupleDesc desc)
{
	int64		shape_id = ShapeIdOf(newtup, desc);
	ShapeEntry *entry;
	MemoryContext old;
	int64	   *id;

	if ((oldt && ShapeIdOf(&oldt->tuple, desc) != shape_id) ||
		SrShapePending(newtup, desc))
		return false;
	entry = shapemap_lookup(st->shapes, shape_id);
	if (entry == NULL)
		return !SrStateSelected(&st->filter, shape_id);
	if (!entry->pending)
		return false;
	old = MemoryContextSwitchTo(st->txncxt);
	id = palloc(sizeof(int64));
	*id = shape_id;
	st->activating = lappend(st->activating, id);
	MemoryContextSwitchTo(old);
	return true;
}

/* A decoded change to shape_router.shapes itself */
void
SrStateCatalogChange(SrShapeState *st, Relation rel,
					 ReorderBufferChange *change, List **events)
{
	TupleDesc	desc = RelationGetDescr(rel);
	ReorderBufferTupleBuf *oldt = change->data.tp.oldtuple;
	ReorderBufferTupleBuf *newt = change->data.tp.newtuple;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			AddPending(st, &newt->tuple, desc, events);
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			if (oldt)
				RemoveShape(st, ShapeIdOf(&oldt->tuple, desc), events);
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			if (Activates(st, oldt, &newt->tuple, desc))
				break;
			/* Only a superuser's direct UPDATE gets here: remove, re-add. */
			RemoveShape(st, ShapeIdOf(oldt ? &oldt->tuple : &newt->tuple, desc),
						events);
			AddPending(st, &newt->tuple, desc, events);
			break;
		default:
			break;
	}
}

void
SrStateCommitTxn(SrShapeState *st, List **events)
{
	ListCell   *lc;
	HASH_SEQ_STATUS status;
	SrRelState *rs;
	List	   *registered = NIL;	/* pending SrShapeDef *, in txncxt */

	/* created and dropped by this one transaction: it ends here too */
	if (st->taken_up && st->builder_snapshot &&
		!ClassExists(st->shapes_relid, st->builder_snapshot))
		st->dropping = true;
	if (st->dropping)
	{
		EndAllShapes(st, "extension shape_router was dropped", events);
		SrInvalLogFlush(st->invallog);
		SrSlotMembCommit(st->memb, st->txn_lsn);
		return;
	}

	/* From here on the transaction's own shapes are in the catalog. */
	st->snapshot = st->commit_snapshot;

	foreach(lc, st->pending)
	{
		SrShapeDef *def = lfirst(lc);
		bool		found;
		ShapeEntry *entry = shapemap_insert(st->shapes, def->shape_id, &found);

		entry->relid = def->relid;
		entry->invalid = false;
		entry->pending = def->pending;
		if (def->pending)
			registered = lappend(registered, def);
		rs = SrStateRelEntry(st, def->relid);
		rs->nshapes++;
		rs->npending += def->pending;
		rs->unsynced_known = false;

		/*
		 * Into the table's router as it is; if the table changed meanwhile,
		 * the recheck below recompiles the router from the catalog, which
		 * now holds this shape.
		 */
		if (rs->router)
		{
			SrShape    *shape = SrRouterAddShape(rs->router, def);

			if (shape->prog == NULL)
				InvalidateShape(st, rs, NULL, entry, shape->invalid_reason,
								events);
			else
				rs->maxattno = Max(rs->maxattno, shape->prog->maxattno);
		}
		else
			rs->recheck = true;
	}
	st->pending = NIL;
	st->leaving = NIL;
	SrStateApplyMembers(st, events);
	SrStateActivate(st, events);

	/* Tables whose definition changed: invalidate what no longer fits now. */
	hash_seq_init(&status, st->rels);
	while ((rs = hash_seq_search(&status)) != NULL)
	{
		Relation	rel;

		if (!rs->recheck)
			continue;
		rs->recheck = false;
		if (rs->nshapes == 0)
			continue;
		rel = RelationIdGetRelation(rs->relid);
		if (!RelationIsValid(rel))
		{
			SrStateInvalidateRel(st, rs, "table was dropped", events);
			SrSlotMembForget(st->memb, rs->relid);
			rs->memb = NULL;
			rs->memb_pending = false;
			continue;
		}
		SrStateEnsureRouter(st, rs, rel, events);
		RelationClose(rel);
	}
	/* routers are current now; the changes after this commit are tracked */
	foreach(lc, registered)
	{
		SrShapeDef *def = lfirst(lc);
		ShapeEntry *entry = shapemap_lookup(st->shapes, def->shape_id);

		if (entry && !entry->invalid)
			SrStateTrackPending(st, def->shape_id, def->relid, events);
	}
	/* what the transaction invalidated, in one write */
	SrInvalLogFlush(st->invallog);
	SrSlotMembCommit(st->memb, st->txn_lsn);
}

void
SrStateSetCounters(SrShapeState *st, struct SrPathCounters *counters)
{
	st->counters = counters;
}

void
SrStateShutdown(SrShapeState *st)
{
	SrSlotMembShutdown(st->memb);
}
