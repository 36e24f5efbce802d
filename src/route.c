/*-------------------------------------------------------------------------
 *
 * route.c
 *	  What a decoded change means for a table's shapes (see route.h): the
 *	  rows, and the shapes each is in, from the predicates (new rows; old
 *	  rows under REPLICA IDENTITY FULL) and from the stream's membership
 *	  index (the old side otherwise), which each change keeps current.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "executor/executor.h"
#include "utils/datum.h"
#include "utils/rel.h"

#include "route.h"


/*
 * Put a decoded tuple in a slot.  Unchanged TOASTed values of an UPDATE's
 * new row are on-disk pointers, which must not be followed while decoding:
 * they are taken from the old row (REPLICA IDENTITY FULL logs it flattened)
 * or, failing that, flagged as unchanged.
 */
static void
StoreRow(SrRowSlot *row, SrRelState *rs, int which, HeapTuple tup, SrRowSlot *old)
{
	TupleDesc	desc = SrRouterDesc(SrRelRouter(rs));

	row->unchanged = NULL;
	row->missing = false;
	if (!HeapTupleHasExternal(tup))
	{
		row->slot = SrRouterSlot(SrRelRouter(rs), which);
		ExecStoreHeapTuple(tup, row->slot, false);
		return;
	}

	row->slot = SrRouterSlot(SrRelRouter(rs), 2 + which);
	ExecClearTuple(row->slot);
	heap_deform_tuple(tup, desc, row->slot->tts_values, row->slot->tts_isnull);
	for (int i = 0; i < desc->natts; i++)
	{
		Datum		v = row->slot->tts_values[i];

		if (row->slot->tts_isnull[i] || TupleDescAttr(desc, i)->attlen != -1 ||
			!VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(v)))
			continue;
		if (old && old->slot)
		{
			slot_getallattrs(old->slot);
			if (!old->slot->tts_isnull[i] &&
				!VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(old->slot->tts_values[i])))
			{
				row->slot->tts_values[i] = old->slot->tts_values[i];
				continue;
			}
		}
		if (row->unchanged == NULL)
			row->unchanged = palloc0(sizeof(bool) * desc->natts);
		row->unchanged[i] = true;
		row->slot->tts_isnull[i] = true;
		row->missing = true;
	}
	ExecStoreVirtualTuple(row->slot);
}

/* Did any key column change?  Binary comparison, as the WAL has them. */
static bool
KeyChanged(SrRelState *rs, TupleDesc desc, TupleTableSlot *o, TupleTableSlot *n)
{
	int			attno = -1;

	slot_getallattrs(o);
	slot_getallattrs(n);
	while ((attno = bms_next_member(SrRelKeyAttrs(rs), attno)) >= 0)
	{
		Form_pg_attribute att = TupleDescAttr(desc, attno - 1);
		int			i = attno - 1;

		if (o->tts_isnull[i] != n->tts_isnull[i])
			return true;
		if (!o->tts_isnull[i] &&
			!datumIsEqual(o->tts_values[i], n->tts_values[i],
						  att->attbyval, att->attlen))
			return true;
	}
	return false;
}

/* Columns read by some shape whose values differ between old and new */
static Bitmapset *
ChangedColumns(SrRelState *rs, TupleDesc desc, TupleTableSlot *o,
			   TupleTableSlot *n)
{
	Bitmapset  *changed = NULL;

	if (SrRelMaxAttno(rs) == 0)
		return NULL;
	slot_getsomeattrs(o, SrRelMaxAttno(rs));
	slot_getsomeattrs(n, SrRelMaxAttno(rs));
	for (int i = 0; i < SrRelMaxAttno(rs); i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (o->tts_isnull[i] != n->tts_isnull[i] ||
			(!o->tts_isnull[i] &&
			 !datumIsEqual(o->tts_values[i], n->tts_values[i],
						   att->attbyval, att->attlen)))
			changed = bms_add_member(changed, i + 1);
	}
	return changed;
}

typedef struct FailContext
{
	SrShapeState *state;
	List	  **events;
} FailContext;

static void
ShapeFailed(SrShape *shape, const char *message, void *arg)
{
	FailContext *fc = (FailContext *) arg;

	SrStateShapeFailed(fc->state, shape->shape_id, message, fc->events);
}


/* The membership key of a row; false if it cannot be read from the WAL */
static bool
RowKey(SrRelState *rs, SrRowSlot *row, SrKeyBuf *kb)
{
	const SrKeyInfo *info = SrRelKeyInfo(rs);

	if (row->unchanged)
		for (int i = 0; i < info->nkeys; i++)
			if (row->unchanged[info->attnums[i] - 1])
				return false;
	slot_getallattrs(row->slot);
	return SrKeyCanon(kb, info, row->slot->tts_values, row->slot->tts_isnull);
}

/*
 * The table's membership index, if the change must keep one up to date:
 * always without FULL; with FULL only if one was kept before (so that a
 * switch back from FULL finds it current).
 */
static SrTableMemb *
MaintainedMemb(SrRelState *rs)
{
	return SrRelKeyInfo(rs)->nkeys > 0 ? SrRelMemb(rs) : NULL;
}

/*
 * Record that the row with this key is now in the shapes ids (all that its
 * new row matches): SrRelStoredSet keeps the synced ones (the others have
 * no members in this stream) and the answers of tracked pending shapes.
 */
static void
SetMembers(SrRelState *rs, SrTableMemb *tm, SrMembKey key,
		   const int64 *ids, int n)
{
	int64	   *set;
	int			m = SrRelStoredSet(rs, ids, n, &set);

	SrTableMembSet(tm, key, set, m);
}

/*
 * The shapes the membership index has key in (in its lookup buffer); the
 * key leaves them.  While shapes are pending it stays, with their
 * tombstones: the row is gone since their registration.
 */
static int
TakeMembers(SrRelState *rs, SrTableMemb *tm, SrMembKey key, int64 **ids)
{
	int			nstored;
	int			n = SrRelMembers(rs, key, ids, &nstored);
	int64	   *gone;
	int			ngone = SrRelGoneSet(rs, &gone);

	if (ngone > 0)
		SrTableMembSet(tm, key, gone, ngone);
	else if (nstored > 0)
		SrTableMembRemoveKey(tm, key);
	return n;
}

static void
RouteInsert(SrRouteContext *data, SrRelState *rs, ReorderBufferChange *change,
			FailContext *fail, SrRouteResult *r)
{
	SrTableMemb *tm = MaintainedMemb(rs);

	StoreRow(&r->newrow, rs, 1, &change->data.tp.newtuple->tuple, NULL);
	SrRouterMatchRows(SrRelRouter(rs), -1, NULL, r->newrow.slot, NULL,
					  data->econtext, NULL, NULL, &r->newids, &r->nnew,
					  ShapeFailed, fail);
	r->kind = SR_ROUTE_INSERT;
	if (tm)
	{
		if (!RowKey(rs, &r->newrow, &data->newkey))
		{
			SrStateInvalidateRel(data->state, rs,
								 "an INSERT was logged without its key", fail->events);
			r->kind = SR_ROUTE_NONE;
			return;
		}
		SetMembers(rs, tm, SrStateKeyHash(data->state, &data->newkey),
				   r->newids, r->nnew);
	}
	if (!SrRelFull(rs))
		r->nnew = SrRelKeepSynced(rs, r->newids, r->nnew);
}

static void
RouteDelete(SrRouteContext *data, SrRelState *rs, ReorderBufferChange *change,
			FailContext *fail, SrRouteResult *r)
{
	ReorderBufferTupleBuf *oldt = change->data.tp.oldtuple;
	SrTableMemb *tm = MaintainedMemb(rs);

	if (oldt == NULL)
	{
		SrStateInvalidateRel(data->state, rs,
							 "a DELETE was logged without its old row", fail->events);
		return;
	}
	StoreRow(&r->oldrow, rs, 0, &oldt->tuple, NULL);
	r->kind = SR_ROUTE_DELETE;
	r->keyrow = r->oldout = &r->oldrow;
	if (tm && !RowKey(rs, &r->oldrow, &data->oldkey))
	{
		SrStateInvalidateRel(data->state, rs,
							 "a DELETE was logged without its key", fail->events);
		r->kind = SR_ROUTE_NONE;
		return;
	}
	if (!SrRelFull(rs))
	{
		/* only the key is logged: the old side is the membership index's */
		r->old_key_only = true;
		r->nold = TakeMembers(rs, tm, SrStateKeyHash(data->state, &data->oldkey),
							  &r->oldids);
		return;
	}
	SrRouterMatchRows(SrRelRouter(rs), -1, NULL, r->oldrow.slot, NULL,
					  data->econtext, NULL, NULL, &r->oldids, &r->nold,
					  ShapeFailed, fail);
	if (tm)
	{
		int64	   *ignored;

		(void) TakeMembers(rs, tm, SrStateKeyHash(data->state, &data->oldkey),
						   &ignored);
	}
}

/* FULL: both rows are in the WAL */
static void
RouteUpdateFull(SrRouteContext *data, SrRelState *rs, TupleDesc desc,
				ReorderBufferChange *change, FailContext *fail, SrRouteResult *r)
{
	ReorderBufferTupleBuf *oldt = change->data.tp.oldtuple;
	SrTableMemb *tm = MaintainedMemb(rs);
	int			ncand;
	Bitmapset  *changed;

	if (oldt == NULL)
	{
		SrStateInvalidateRel(data->state, rs,
							 "an UPDATE was logged without its old row", fail->events);
		return;
	}
	StoreRow(&r->oldrow, rs, 0, &oldt->tuple, NULL);
	StoreRow(&r->newrow, rs, 1, &change->data.tp.newtuple->tuple, &r->oldrow);
	r->keyrow = r->oldout = &r->oldrow;
	if (r->newrow.missing)
	{
		SrStateInvalidateRel(data->state, rs,
							 "an unchanged TOASTed value is missing from the old row",
							 fail->events);
		return;
	}

	/* most rows of a busy table are in no shape: stop early */
	ncand = SrRouterCandidates(SrRelRouter(rs), r->oldrow.slot, r->newrow.slot);
	if (ncand == 0 && tm == NULL)
		return;
	if (KeyChanged(rs, desc, r->oldrow.slot, r->newrow.slot))
	{
		/* every column counts as changed: evaluate both rows */
		changed = bms_add_range(NULL, 1, desc->natts);
		r->kind = SR_ROUTE_KEY_CHANGE;
	}
	else
	{
		changed = ncand ? ChangedColumns(rs, desc, r->oldrow.slot, r->newrow.slot) : NULL;
		r->kind = SR_ROUTE_UPDATE;
	}
	if (ncand > 0)
		SrRouterMatchRows(SrRelRouter(rs), ncand, r->oldrow.slot, r->newrow.slot,
						  changed, data->econtext, &r->oldids, &r->nold,
						  &r->newids, &r->nnew, ShapeFailed, fail);
	if (tm == NULL)
		return;
	if (!RowKey(rs, &r->oldrow, &data->oldkey) ||
		!RowKey(rs, &r->newrow, &data->newkey))
	{
		SrStateInvalidateRel(data->state, rs,
							 "an UPDATE was logged without its key", fail->events);
		r->kind = SR_ROUTE_NONE;
		return;
	}
	if (r->kind == SR_ROUTE_KEY_CHANGE)
	{
		int64	   *ignored;

		(void) TakeMembers(rs, tm, SrStateKeyHash(data->state, &data->oldkey),
						   &ignored);
	}
	SetMembers(rs, tm, SrStateKeyHash(data->state, &data->newkey),
			   r->newids, r->nnew);
}

/* The first column shape reads that is flagged in unknown, or 0 */
static AttrNumber
UnknownColumnOf(SrShape *shape, const bool *unknown, int natts)
{
	int			attno = -1;

	while ((attno = bms_next_member(shape->prog->attnums, attno)) >= 0)
		if (attno <= natts && unknown[attno - 1])
			return attno;
	return 0;
}

/*
 * The new row lacks unchanged TOASTed values (no old row to take them
 * from).  Shapes that read one are evaluated with it unknown: a determined
 * answer routes, an undetermined one invalidates the shape.  They are
 * taken out of the index's answer, which read the value as NULL.
 */
static void
MatchUnknown(SrRouteContext *data, SrRelState *rs, SrRouteResult *r,
			 FailContext *fail)
{
	SrTableRouter *router = SrRelRouter(rs);
	TupleDesc	desc = SrRouterDesc(router);
	const bool *unknown = r->newrow.unchanged;
	int			count = SrRouterShapeCount(router);
	int64	   *merged = palloc(sizeof(int64) * Max(count, 1));
	int64	   *det = palloc(sizeof(int64) * Max(count, 1));
	int			ndet = 0;
	int			n = 0;
	int			i = 0,
				j = 0;

	for (int k = 0; k < count; k++)
	{
		SrShape    *shape = SrRouterShapeAt(router, k);
		AttrNumber	col;
		int			res;

		if (shape->removed || shape->prog == NULL ||
			(col = UnknownColumnOf(shape, unknown, desc->natts)) == 0)
			continue;
		res = SrRouterEvalUnknown(router, shape, r->newrow.slot, data->econtext,
								  unknown, ShapeFailed, fail);
		if (res == SR_TRUE)
			det[ndet++] = shape->shape_id;
		else if (res == SR_UNKNOWN)
			SrStateShapeInvalid(data->state, rs, shape->shape_id,
								psprintf("column \"%s\" was left out of an UPDATE's new row (unchanged and TOASTed), and the shape's answer depends on it; REPLICA IDENTITY FULL logs it",
										 NameStr(TupleDescAttr(desc, col - 1)->attname)),
								fail->events);
	}
	/* the index's answers, less every shape that reads an unknown column */
	for (int k = 0; k < r->nnew; k++)
	{
		SrShape    *shape = SrRouterFindShape(router, r->newids[k]);

		if (shape && shape->prog && UnknownColumnOf(shape, unknown, desc->natts) == 0)
			r->newids[n++] = r->newids[k];
	}
	while (i < n || j < ndet)
	{
		if (j >= ndet || (i < n && r->newids[i] < det[j]))
		{
			merged[i + j] = r->newids[i];
			i++;
		}
		else
		{
			merged[i + j] = det[j];
			j++;
		}
	}
	r->newids = merged;
	r->nnew = n + ndet;
}

/*
 * Without FULL the WAL has the new row and, if the key changed (or is
 * TOASTed), the old key: the old side comes from the membership index.
 */
static void
RouteUpdateByKey(SrRouteContext *data, SrRelState *rs,
				 ReorderBufferChange *change, FailContext *fail,
				 SrRouteResult *r)
{
	ReorderBufferTupleBuf *oldt = change->data.tp.oldtuple;
	SrTableMemb *tm = MaintainedMemb(rs);
	SrKeyBuf   *oldkey = &data->oldkey;
	SrKeyBuf   *newkey = &data->newkey;
	bool		key_changed;

	if (oldt)
		StoreRow(&r->oldrow, rs, 0, &oldt->tuple, NULL);
	StoreRow(&r->newrow, rs, 1, &change->data.tp.newtuple->tuple,
			 oldt ? &r->oldrow : NULL);
	if (!RowKey(rs, &r->newrow, newkey))
		newkey = NULL;			/* unchanged and TOASTed: logged as old */
	if (oldt ? !RowKey(rs, &r->oldrow, oldkey) : newkey == NULL)
	{
		SrStateInvalidateRel(data->state, rs,
							 "an UPDATE was logged without its key", fail->events);
		return;
	}
	if (!oldt)
		oldkey = newkey;
	else if (newkey == NULL)
		newkey = oldkey;
	SrRouterMatchRows(SrRelRouter(rs), -1, NULL, r->newrow.slot, NULL,
					  data->econtext, NULL, NULL, &r->newids, &r->nnew,
					  ShapeFailed, fail);
	if (r->newrow.missing)
		MatchUnknown(data, rs, r, fail);
	key_changed = oldkey != newkey &&
		(oldkey->len != newkey->len ||
		 memcmp(oldkey->data, newkey->data, oldkey->len) != 0);

	/*
	 * After MatchUnknown: the shapes it invalidated have no old side.  The
	 * same key keeps its entry, set to the new shapes (unchanged: no write).
	 */
	if (key_changed)
		r->nold = TakeMembers(rs, tm, SrStateKeyHash(data->state, oldkey),
							  &r->oldids);
	else
	{
		int			nstored;

		r->nold = SrRelMembers(rs, SrStateKeyHash(data->state, oldkey),
							   &r->oldids, &nstored);
	}
	SetMembers(rs, tm, SrStateKeyHash(data->state, newkey),
			   r->newids, r->nnew);
	r->nnew = SrRelKeepSynced(rs, r->newids, r->nnew);
	if (key_changed)
	{
		r->kind = SR_ROUTE_KEY_CHANGE;
		r->keyrow = r->oldout = &r->oldrow;
	}
	else
	{
		r->kind = SR_ROUTE_UPDATE;
		r->keyrow = oldt ? &r->oldrow : &r->newrow;
		r->oldout = oldt ? &r->oldrow : NULL;
	}
	r->old_key_only = true;
}


void
SrRouteChange(SrRouteContext *rc, SrRelState *rs, Relation relation,
			  ReorderBufferChange *change, List **events, SrRouteResult *r)
{
	FailContext fail = {rc->state, events};

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			RouteInsert(rc, rs, change, &fail, r);
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			RouteDelete(rc, rs, change, &fail, r);
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			if (SrRelFull(rs) || MaintainedMemb(rs) == NULL)
				RouteUpdateFull(rc, rs, RelationGetDescr(relation), change,
								&fail, r);
			else
				RouteUpdateByKey(rc, rs, change, &fail, r);
			break;
		default:
			/* speculative insertion internals never reach plugins */
			break;
	}
	/* without FULL the membership index has only the synced shapes */
	if (SrRelFull(rs))
	{
		r->nnew = SrRelDropPending(rc->state, rs, r->newids, r->nnew);
		r->nold = SrRelDropPending(rc->state, rs, r->oldids, r->nold);
	}
}

void
SrRouteEnd(SrRouteResult *r)
{
	if (r->oldrow.slot)
		ExecClearTuple(r->oldrow.slot);
	if (r->newrow.slot)
		ExecClearTuple(r->newrow.slot);
}
