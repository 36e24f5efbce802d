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
#include "access/table.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "catalog.h"
#include "shapestate.h"

typedef struct ShapeEntry
{
	int64		shape_id;		/* hash key */
	Oid			relid;
	bool		invalid;
} ShapeEntry;

struct SrShapeState
{
	MemoryContext cxt;
	MemoryContextCallback forget;	/* clears callback_state on deletion */
	MemoryContext txncxt;		/* pending additions; reset at commit */
	SrShapeFilter filter;
	HTAB	   *shapes;			/* shape_id -> ShapeEntry */
	HTAB	   *rels;			/* relid -> SrRelState */
	Oid			shapes_relid;
	bool		loaded;
	List	   *pending;		/* SrShapeDef *, added by this transaction */
};

static void EnsureRouter(SrShapeState *st, SrRelState *rs, Relation rel,
						 List **events);

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

SrShapeState *
SrStateCreate(MemoryContext parent, const SrShapeFilter *filter)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "shape_router shapes",
											  ALLOCSET_DEFAULT_SIZES);
	SrShapeState *st = MemoryContextAllocZero(cxt, sizeof(SrShapeState));
	HASHCTL		ctl;

	st->cxt = cxt;
	st->txncxt = AllocSetContextCreate(cxt, "shape_router pending shapes",
									   ALLOCSET_SMALL_SIZES);
	st->filter = *filter;

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ShapeEntry);
	ctl.hcxt = cxt;
	st->shapes = hash_create("shape_router shapes", 1024, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
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
		callback_registered = true;
	}
	return st;
}

static bool
Selected(const SrShapeFilter *f, int64 shape_id)
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
static void
AddEvent(SrShapeState *st, List **events, SrEventKind kind, int64 shape_id,
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

static SrRelState *
RelEntry(SrShapeState *st, Oid relid)
{
	bool		found;
	SrRelState *rs = hash_search(st->rels, &relid, HASH_ENTER, &found);

	if (!found)
	{
		rs->nshapes = 0;
		rs->valid = false;
		rs->recheck = false;
		rs->router = NULL;
		rs->json = NULL;
		rs->keyattrs = NULL;
		rs->maxattno = 0;
		rs->schema = rs->table = NULL;
	}
	return rs;
}

static void
InvalidateShape(SrShapeState *st, SrRelState *rs, SrShape *shape,
				ShapeEntry *entry, const char *reason, List **events)
{
	if (entry->invalid)
		return;
	entry->invalid = true;
	if (shape)
		SrRouterDisableShape(rs->router, shape, reason);
	AddEvent(st, events, SR_EVENT_INVALIDATED, entry->shape_id, entry->relid,
			 reason);
}

/* Every still-valid shape on the table becomes invalid. */
void
SrStateInvalidateRel(SrShapeState *st, SrRelState *rs, const char *reason,
					 List **events)
{
	HASH_SEQ_STATUS status;
	ShapeEntry *entry;

	hash_seq_init(&status, st->shapes);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->relid != rs->relid || entry->invalid)
			continue;
		InvalidateShape(st, rs,
						rs->router ? SrRouterFindShape(rs->router, entry->shape_id) : NULL,
						entry, reason, events);
	}
}

/*
 * A shape's operators raised an error on a row (the router has already
 * stopped evaluating it): it routes nothing more in this stream.
 */
void
SrStateShapeFailed(SrShapeState *st, int64 shape_id, const char *reason,
				   List **events)
{
	ShapeEntry *entry = hash_search(st->shapes, &shape_id, HASH_FIND, NULL);

	if (entry)
		InvalidateShape(st, NULL, NULL, entry,
						psprintf("evaluation failed: %s", reason), events);
}

void
SrStateBeginTxn(SrShapeState *st, List **events)
{
	Relation	shapes;
	SysScanDesc scan;
	HeapTuple	tup;
	HASH_SEQ_STATUS status;
	SrRelState *rs;

	if (st->loaded)
		return;
	/* Until CREATE EXTENSION is decoded there are no shapes. */
	st->shapes_relid = SrShapesRelid(true);
	if (!OidIsValid(st->shapes_relid))
		return;

	shapes = table_open(st->shapes_relid, AccessShareLock);
	scan = systable_beginscan(shapes, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		SrShapeDef	def;
		ShapeEntry *entry;

		CHECK_FOR_INTERRUPTS();
		SrShapeDefFromTuple(tup, RelationGetDescr(shapes), &def);
		if (!Selected(&st->filter, def.shape_id))
			continue;
		entry = hash_search(st->shapes, &def.shape_id, HASH_ENTER, NULL);
		entry->relid = def.relid;
		entry->invalid = false;
		RelEntry(st, def.relid)->nshapes++;
	}
	systable_endscan(scan);
	table_close(shapes, AccessShareLock);
	st->loaded = true;

	/*
	 * Compile every table's shapes now.  Shapes that no longer fit their
	 * table were invalidated, and reported, before this stream's start point,
	 * so they are marked silently: a restarted stream writes exactly what an
	 * uninterrupted one would.
	 */
	hash_seq_init(&status, st->rels);
	while ((rs = hash_seq_search(&status)) != NULL)
	{
		Relation	rel = RelationIdGetRelation(rs->relid);

		if (!RelationIsValid(rel))
		{
			SrStateInvalidateRel(st, rs, "table was dropped", NULL);
			continue;
		}
		EnsureRouter(st, rs, rel, NULL);
		RelationClose(rel);
	}
}

bool
SrStateIsCatalog(SrShapeState *st, Oid relid)
{
	return st->loaded && relid == st->shapes_relid;
}

typedef struct BuildContext
{
	SrShapeState *st;
	SrRelState *rs;
	List	  **events;
} BuildContext;

static void
BuildShapeCallback(const SrShapeDef *def, void *arg)
{
	BuildContext *bc = (BuildContext *) arg;
	ShapeEntry *entry = hash_search(bc->st->shapes, &def->shape_id,
									HASH_FIND, NULL);
	SrShape    *shape;

	/* Not routed by this stream, pending, or already invalid */
	if (entry == NULL || entry->invalid)
		return;
	shape = SrRouterAddShape(bc->rs->router, def);
	if (shape->prog == NULL)
		InvalidateShape(bc->st, bc->rs, NULL, entry, shape->invalid_reason,
						bc->events);
}

static void
ComputeMaxAttno(SrRelState *rs)
{
	rs->maxattno = 0;
	for (int i = 0; i < rs->router->nshapes; i++)
		if (rs->router->shapes[i].prog)
			rs->maxattno = Max(rs->maxattno, rs->router->shapes[i].prog->maxattno);
}

/*
 * Make the table's router, key columns and JSON layout match the relation
 * as the historic snapshot sees it.  The router is recompiled only if the
 * columns changed; relcache invalidations are frequent (VACUUM, ANALYZE).
 */
static void
EnsureRouter(SrShapeState *st, SrRelState *rs, Relation rel, List **events)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old;

	if (rs->valid && rs->router)
		return;

	if (rs->router == NULL || !equalTupleDescs(rs->router->desc, desc))
	{
		BuildContext bc = {st, rs, events};

		if (rs->router)
			SrRouterDestroy(rs->router);
		rs->router = SrRouterCreate(rs->relid, desc, st->cxt);
		SrCatalogForEachShape(rs->relid, BuildShapeCallback, &bc);
	}

	old = MemoryContextSwitchTo(rs->router->cxt);
	rs->schema = get_namespace_name(RelationGetNamespace(rel));
	rs->table = pstrdup(RelationGetRelationName(rel));
	rs->json = SrJsonTableCreate(desc, rs->schema, rs->table);
	rs->keyattrs = SrKeyColumns(rel);
	MemoryContextSwitchTo(old);

	/* Without the whole old row, UPDATE and DELETE cannot be routed. */
	if (rel->rd_rel->relreplident != REPLICA_IDENTITY_FULL)
		SrStateInvalidateRel(st, rs, "table no longer has REPLICA IDENTITY FULL",
							 events);

	ComputeMaxAttno(rs);
	rs->valid = true;
}

SrRelState *
SrStateGetRel(SrShapeState *st, Relation rel, List **events)
{
	Oid			relid = RelationGetRelid(rel);
	SrRelState *rs;

	if (!st->loaded)
		return NULL;
	rs = hash_search(st->rels, &relid, HASH_FIND, NULL);
	if (rs == NULL || rs->nshapes == 0)
		return NULL;
	EnsureRouter(st, rs, rel, events);
	return rs;
}

static void
RemoveShape(SrShapeState *st, int64 shape_id, List **events)
{
	ListCell   *lc;
	ShapeEntry *entry;
	SrRelState *rs;

	foreach(lc, st->pending)
	{
		SrShapeDef *def = lfirst(lc);

		if (def->shape_id == shape_id)
		{
			AddEvent(st, events, SR_EVENT_REMOVED, shape_id, def->relid, NULL);
			st->pending = foreach_delete_current(st->pending, lc);
			return;
		}
	}

	entry = hash_search(st->shapes, &shape_id, HASH_FIND, NULL);
	if (entry == NULL)
		return;
	rs = hash_search(st->rels, &entry->relid, HASH_FIND, NULL);
	if (rs)
	{
		rs->nshapes--;
		if (rs->router && SrRouterRemoveShape(rs->router, shape_id))
			ComputeMaxAttno(rs);
	}
	AddEvent(st, events, SR_EVENT_REMOVED, shape_id, entry->relid, NULL);
	hash_search(st->shapes, &shape_id, HASH_REMOVE, NULL);
}

static void
AddPending(SrShapeState *st, HeapTuple tup, TupleDesc desc, List **events)
{
	MemoryContext old = MemoryContextSwitchTo(st->txncxt);
	SrShapeDef *def = palloc(sizeof(SrShapeDef));

	SrShapeDefFromTuple(tup, desc, def);
	if (def->qual)
		def->qual = pstrdup(def->qual);
	if (Selected(&st->filter, def->shape_id))
	{
		st->pending = lappend(st->pending, def);
		MemoryContextSwitchTo(old);
		AddEvent(st, events, SR_EVENT_ADDED, def->shape_id, def->relid, NULL);
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

	foreach(lc, st->pending)
	{
		SrShapeDef *def = lfirst(lc);
		ShapeEntry *entry = hash_search(st->shapes, &def->shape_id,
										HASH_ENTER, NULL);

		entry->relid = def->relid;
		entry->invalid = false;
		rs = RelEntry(st, def->relid);
		rs->nshapes++;
		if (rs->router && rs->valid)
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
	MemoryContextReset(st->txncxt);

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
			continue;
		}
		EnsureRouter(st, rs, rel, events);
		RelationClose(rel);
	}
}
