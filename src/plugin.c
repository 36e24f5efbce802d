/*-------------------------------------------------------------------------
 *
 * plugin.c
 *	  The shape_router logical decoding output plugin.
 *
 * Every committed change is routed to the shapes its rows match and
 * written as JSON records (design.md section 2): INSERT as I, DELETE as D,
 * UPDATE as U / I move-in / D move-out (or D then I when the key changes),
 * TRUNCATE as T, catalog changes as S.  B and C are written only around
 * transactions with at least one record.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "executor/executor.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/slot.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "miscadmin.h"
#include "utils/rel.h"

#include "jsonout.h"
#include "memkey.h"
#include "shapestate.h"
#include "sortutil.h"

/* Changes between progress reports while nothing is written */
#define SR_PROGRESS_EVERY	100

typedef struct SrPluginData
{
	MemoryContext context;		/* lives as long as the decoding context */
	MemoryContext change_cxt;	/* reset after every change */
	SrShapeState *state;
	ExprContext *econtext;
	bool		include_transaction;
	bool		include_old;
	bool		include_lsn;
	bool		include_xid;
	bool		sent_begin;		/* B written for the current transaction */
	int			unreported;		/* changes since the last progress report */
	SrKeyBuf	oldkey;			/* membership keys of the change's rows */
	SrKeyBuf	newkey;
} SrPluginData;

extern void _PG_output_plugin_init(OutputPluginCallbacks *cb);

static void SrStartup(LogicalDecodingContext *ctx, OutputPluginOptions *opt,
					  bool is_init);
static void SrShutdown(LogicalDecodingContext *ctx);
static void SrBegin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
static void SrCommit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					 XLogRecPtr commit_lsn);
static void SrChange(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					 Relation relation, ReorderBufferChange *change);
static void SrTruncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					   int nrelations, Relation relations[],
					   ReorderBufferChange *change);
static void CountChange(LogicalDecodingContext *ctx, SrPluginData *data);
static void SrMessage(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					  XLogRecPtr message_lsn, bool transactional,
					  const char *prefix, Size message_size,
					  const char *message);

void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = SrStartup;
	cb->begin_cb = SrBegin;
	cb->change_cb = SrChange;
	cb->truncate_cb = SrTruncate;
	cb->commit_cb = SrCommit;
	cb->message_cb = SrMessage;
	cb->shutdown_cb = SrShutdown;
}

static void
BadValue(DefElem *elem, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("could not parse value \"%s\" for option \"%s\"",
					elem->arg ? strVal(elem->arg) : "(null)", elem->defname),
			 errdetail("%s", why)));
}

/* "shapes": comma-separated shape ids */
static void
ParseShapeIds(DefElem *elem, SrShapeFilter *filter)
{
	char	   *str;
	char	   *tok;
	char	   *save;
	int			max = 16;

	if (elem->arg == NULL)
		BadValue(elem, "A comma-separated list of shape ids is needed.");
	str = pstrdup(strVal(elem->arg));
	filter->ids = palloc(sizeof(int64) * max);
	filter->nids = 0;
	for (tok = strtok_r(str, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		char	   *end;
		long long	v;

		while (*tok == ' ')
			tok++;
		errno = 0;
		v = strtoll(tok, &end, 10);
		while (*end == ' ')
			end++;
		if (end == tok || *end != '\0' || errno != 0 || v <= 0)
			BadValue(elem, "Shape ids are positive integers separated by commas.");
		if (filter->nids >= max)
		{
			max *= 2;
			filter->ids = repalloc(filter->ids, sizeof(int64) * max);
		}
		filter->ids[filter->nids++] = v;
	}
	if (filter->nids == 0)
		BadValue(elem, "A comma-separated list of shape ids is needed.");
	qsort(filter->ids, filter->nids, sizeof(int64), SrCompareInt64);
}

/* "shard": k/n */
static void
ParseShard(DefElem *elem, SrShapeFilter *filter)
{
	int			k,
				n,
				len;

	if (elem->arg == NULL ||
		sscanf(strVal(elem->arg), "%d/%d%n", &k, &n, &len) != 2 ||
		strVal(elem->arg)[len] != '\0' || n < 1 || k < 0 || k >= n)
		BadValue(elem, "The shard is k/n with 0 <= k < n, such as 0/2.");
	filter->shard_index = k;
	filter->shard_count = n;
}

static void
ParseBool(DefElem *elem, bool *out)
{
	/* an option without a value means true */
	if (elem->arg == NULL)
		*out = true;
	else if (!parse_bool(strVal(elem->arg), out))
		BadValue(elem, "A boolean is needed.");
}

static void
SrStartup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init)
{
	SrPluginData *data;
	SrShapeFilter filter = {0};
	ListCell   *lc;
	MemoryContext old;

	data = MemoryContextAllocZero(ctx->context, sizeof(SrPluginData));
	data->context = AllocSetContextCreate(ctx->context, "shape_router",
										  ALLOCSET_DEFAULT_SIZES);
	data->change_cxt = AllocSetContextCreate(ctx->context,
											 "shape_router change",
											 ALLOCSET_DEFAULT_SIZES);
	data->include_transaction = true;
	ctx->output_plugin_private = data;
	opt->output_type = OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
	opt->receive_rewrites = false;

	old = MemoryContextSwitchTo(data->context);
	foreach(lc, ctx->output_plugin_options)
	{
		DefElem    *elem = lfirst(lc);

		Assert(elem->arg == NULL || IsA(elem->arg, String));
		if (strcmp(elem->defname, "shapes") == 0)
			ParseShapeIds(elem, &filter);
		else if (strcmp(elem->defname, "shard") == 0)
			ParseShard(elem, &filter);
		else if (strcmp(elem->defname, "include-transaction") == 0)
			ParseBool(elem, &data->include_transaction);
		else if (strcmp(elem->defname, "include-old") == 0)
			ParseBool(elem, &data->include_old);
		else if (strcmp(elem->defname, "include-lsn") == 0)
			ParseBool(elem, &data->include_lsn);
		else if (strcmp(elem->defname, "include-xid") == 0)
			ParseBool(elem, &data->include_xid);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" = \"%s\" is unknown",
							elem->defname,
							elem->arg ? strVal(elem->arg) : "(null)"),
					 errhint("Options are shapes, shard, include-transaction, include-old, include-lsn and include-xid.")));
	}
	data->state = SrStateCreate(data->context, &filter,
								ctx->slot ? NameStr(ctx->slot->data.name) : NULL);
	data->econtext = CreateStandaloneExprContext();
	SrKeyBufInit(&data->oldkey, SrMemAllocatorFor(data->context));
	SrKeyBufInit(&data->newkey, SrMemAllocatorFor(data->context));
	MemoryContextSwitchTo(old);
}

static void
SrShutdown(LogicalDecodingContext *ctx)
{
	SrPluginData *data = ctx->output_plugin_private;

	FreeExprContext(data->econtext, false);
	MemoryContextDelete(data->context);
	MemoryContextDelete(data->change_cxt);
}

static void
SrBegin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	SrPluginData *data = ctx->output_plugin_private;
	MemoryContext old;

	data->sent_begin = false;
	/* what must outlive the call lives in the state's own contexts */
	old = MemoryContextSwitchTo(data->change_cxt);
	SrStateBeginTxn(data->state, txn, ctx->snapshot_builder);
	MemoryContextSwitchTo(old);
	MemoryContextReset(data->change_cxt);
}

static void
MaybeWriteBegin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	SrPluginData *data = ctx->output_plugin_private;

	if (data->sent_begin)
		return;
	data->sent_begin = true;
	if (!data->include_transaction)
		return;
	OutputPluginPrepareWrite(ctx, false);
	appendStringInfo(ctx->out, "{\"action\":\"B\",\"xid\":%u,\"lsn\":", txn->xid);
	SrJsonAppendLsn(ctx->out, txn->final_lsn);
	appendStringInfoChar(ctx->out, '}');
	OutputPluginWrite(ctx, false);
}

static void
WriteEvents(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, List *events)
{
	static const char *const names[] = {"added", "removed", "invalidated",
	"unsynced", "synced"};
	ListCell   *lc;

	foreach(lc, events)
	{
		SrShapeEvent *ev = lfirst(lc);
		StringInfo	out;

		MaybeWriteBegin(ctx, txn);
		OutputPluginPrepareWrite(ctx, true);
		out = ctx->out;
		appendStringInfo(out, "{\"action\":\"S\",\"event\":\"%s\",\"shape\":" INT64_FORMAT ",\"schema\":",
						 names[ev->kind], ev->shape_id);
		if (ev->schema)
			escape_json(out, ev->schema);
		else
			appendStringInfoString(out, "null");
		appendStringInfoString(out, ",\"table\":");
		if (ev->table)
			escape_json(out, ev->table);
		else
			appendStringInfoString(out, "null");
		if (ev->reason)
		{
			appendStringInfoString(out, ",\"reason\":");
			escape_json(out, ev->reason);
		}
		appendStringInfoChar(out, '}');
		OutputPluginWrite(ctx, true);
	}
}

static void
SrCommit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
		 XLogRecPtr commit_lsn)
{
	SrPluginData *data = ctx->output_plugin_private;
	MemoryContext old = MemoryContextSwitchTo(data->change_cxt);
	List	   *events = NIL;

	SrStateCommitTxn(data->state, &events);
	WriteEvents(ctx, txn, events);
	MemoryContextSwitchTo(old);
	MemoryContextReset(data->change_cxt);

	if (!data->sent_begin)
	{
		/* Nothing written: still let the receiver confirm this far. */
		OutputPluginUpdateProgress(ctx, true);
		return;
	}
	data->unreported = 0;
	if (!data->include_transaction)
		return;
	OutputPluginPrepareWrite(ctx, true);
	appendStringInfo(ctx->out, "{\"action\":\"C\",\"xid\":%u,\"lsn\":", txn->xid);
	SrJsonAppendLsn(ctx->out, commit_lsn);
	appendStringInfoChar(ctx->out, '}');
	OutputPluginWrite(ctx, true);
}

static void
SrMessage(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
		  XLogRecPtr message_lsn, bool transactional, const char *prefix,
		  Size message_size, const char *message)
{
	SrPluginData *data = ctx->output_plugin_private;
	MemoryContext old;

	/* Other messages belong to no table, so to no shape. */
	if (!transactional)
		return;
	old = MemoryContextSwitchTo(data->change_cxt);
	SrStateMessage(data->state, prefix, message_size, message);
	MemoryContextSwitchTo(old);
	MemoryContextReset(data->change_cxt);
	CountChange(ctx, data);
}

/*
 * Long filtered transactions write nothing for a long time; report progress
 * so that the walsender keeps the connection alive.
 */
static void
CountChange(LogicalDecodingContext *ctx, SrPluginData *data)
{
	if (++data->unreported >= SR_PROGRESS_EVERY)
	{
		OutputPluginUpdateProgress(ctx, false);
		data->unreported = 0;
	}
}

/* "lsn" and "xid" if asked for, then write the record */
static void
EndChangeRecord(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				ReorderBufferChange *change)
{
	SrPluginData *data = ctx->output_plugin_private;
	StringInfo	out = ctx->out;

	if (data->include_lsn)
	{
		appendStringInfoString(out, ",\"lsn\":");
		SrJsonAppendLsn(out, change->lsn);
	}
	if (data->include_xid)
		appendStringInfo(out, ",\"xid\":%u", txn->xid);
	appendStringInfoChar(out, '}');
	OutputPluginWrite(ctx, true);
}

/* A row of the change, ready for evaluation and output */
typedef struct RowSlot
{
	TupleTableSlot *slot;
	bool	   *unchanged;		/* unchanged TOAST left out; NULL = none */
	bool		missing;		/* an unchanged TOAST value could not be
								 * taken from the old row */
} RowSlot;

/*
 * Put a decoded tuple in a slot.  Unchanged TOASTed values of an UPDATE's
 * new row are on-disk pointers, which must not be followed while decoding:
 * they are taken from the old row (REPLICA IDENTITY FULL logs it flattened)
 * or, failing that, flagged as unchanged.
 */
static void
StoreRow(RowSlot *row, SrRelState *rs, int which, HeapTuple tup, RowSlot *old)
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

/* Columns a record of this shape shows: its projection plus the key */
static Bitmapset *
ShapeColumns(SrRelState *rs, SrShape *shape)
{
	Bitmapset  *cols;

	if (shape->ncolumns < 0)
		return NULL;
	cols = bms_copy(SrRelKeyAttrs(rs));
	for (int i = 0; i < shape->ncolumns; i++)
		cols = bms_add_member(cols, shape->columns[i]);
	/* every column listed is the same as no projection */
	for (int i = 0; i < SrRelJson(rs)->natts; i++)
		if (!SrRelJson(rs)->cols[i].dropped && !bms_is_member(i + 1, cols))
			return cols;
	return NULL;
}

typedef struct RecordSpec
{
	char		action;			/* I, U, D */
	const char *move;			/* "in", "out" or NULL */
	RowSlot    *newrow;			/* "new", or NULL */
	RowSlot    *keyrow;			/* "key" from this row, or NULL */
	RowSlot    *oldrow;			/* "old" (include-old), or NULL */
	bool		old_key_only;	/* oldrow has only the key: show that */
} RecordSpec;

/*
 * Write the records of one change for the ascending shape ids: one record
 * per distinct column projection, in order of each group's smallest id.
 */
static void
WriteRecords(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			 ReorderBufferChange *change, SrRelState *rs,
			 const RecordSpec *spec, int64 *ids, int n)
{
	SrPluginData *data = ctx->output_plugin_private;
	bool	   *done;
	Bitmapset **colsof;

	if (n == 0)
		return;
	done = palloc0(sizeof(bool) * n);
	/* each shape's columns once; shapes with the same columns share a record */
	colsof = palloc(sizeof(Bitmapset *) * n);
	for (int i = 0; i < n; i++)
		colsof[i] = ShapeColumns(rs, SrRouterFindShape(SrRelRouter(rs), ids[i]));
	if (spec->newrow)
		slot_getallattrs(spec->newrow->slot);
	if (spec->keyrow)
		slot_getallattrs(spec->keyrow->slot);
	if (spec->oldrow)
		slot_getallattrs(spec->oldrow->slot);

	for (int i = 0; i < n; i++)
	{
		Bitmapset  *cols = colsof[i];
		StringInfo	out;
		bool		comma = false;

		if (done[i])
			continue;
		/* grouping is quadratic in the number of distinct projections */
		CHECK_FOR_INTERRUPTS();

		MaybeWriteBegin(ctx, txn);
		OutputPluginPrepareWrite(ctx, true);
		out = ctx->out;
		appendStringInfo(out, "{\"action\":\"%c\"", spec->action);
		if (spec->move)
			appendStringInfo(out, ",\"move\":\"%s\"", spec->move);
		appendStringInfoString(out, ",\"shapes\":[");
		for (int j = i; j < n; j++)
		{
			if (done[j] || !bms_equal(cols, colsof[j]))
				continue;
			done[j] = true;
			appendStringInfo(out, "%s" INT64_FORMAT, comma ? "," : "", ids[j]);
			comma = true;
		}
		appendStringInfo(out, "],\"schema\":%s,\"table\":%s",
						 SrRelJson(rs)->schema, SrRelJson(rs)->table);
		if (spec->keyrow)
		{
			appendStringInfoString(out, ",\"key\":");
			SrJsonAppendRow(out, SrRelJson(rs), spec->keyrow->slot->tts_values,
							spec->keyrow->slot->tts_isnull, SrRelKeyAttrs(rs), NULL);
		}
		if (spec->newrow)
		{
			appendStringInfoString(out, ",\"new\":");
			SrJsonAppendRow(out, SrRelJson(rs), spec->newrow->slot->tts_values,
							spec->newrow->slot->tts_isnull, cols,
							spec->newrow->unchanged);
		}
		if (spec->oldrow && data->include_old)
		{
			appendStringInfoString(out, ",\"old\":");
			SrJsonAppendRow(out, SrRelJson(rs), spec->oldrow->slot->tts_values,
							spec->oldrow->slot->tts_isnull,
							spec->old_key_only ? SrRelKeyAttrs(rs) : cols, NULL);
		}
		if (spec->newrow && spec->newrow->unchanged)
		{
			bool		any = false;

			for (int a = 0; a < SrRelJson(rs)->natts; a++)
			{
				if (!spec->newrow->unchanged[a] ||
					(cols && !bms_is_member(a + 1, cols)))
					continue;
				appendStringInfoString(out, any ? "," : ",\"unchanged_toast\":[");
				appendStringInfoString(out, SrRelJson(rs)->cols[a].name);
				any = true;
			}
			if (any)
				appendStringInfoChar(out, ']');
		}
		EndChangeRecord(ctx, txn, change);
	}
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

/* Merge two ascending id lists into both, only-a, only-b */
static void
SplitIds(int64 *a, int na, int64 *b, int nb, int64 *both, int *nboth,
		 int64 *onlya, int *nonlya, int64 *onlyb, int *nonlyb)
{
	int			i = 0,
				j = 0;

	*nboth = *nonlya = *nonlyb = 0;
	while (i < na || j < nb)
	{
		if (j >= nb || (i < na && a[i] < b[j]))
			onlya[(*nonlya)++] = a[i++];
		else if (i >= na || b[j] < a[i])
			onlyb[(*nonlyb)++] = b[j++];
		else
		{
			both[(*nboth)++] = a[i++];
			j++;
		}
	}
}

/*
 * What a change means for the shapes, before any record is written: the
 * rows and, for each, the shapes it is in.  The insert, delete and update
 * paths below fill it in; WriteRoute alone turns it into records.
 */
typedef enum RouteKind
{
	ROUTE_NONE,					/* no record (no candidate, or invalidated) */
	ROUTE_INSERT,
	ROUTE_DELETE,
	ROUTE_UPDATE,				/* same key: U, move-in I, move-out D */
	ROUTE_KEY_CHANGE			/* new key: D of the old row, I of the new */
} RouteKind;

typedef struct RouteResult
{
	RouteKind	kind;
	RowSlot		oldrow;			/* the old row, or (without FULL) its key */
	RowSlot		newrow;
	RowSlot    *keyrow;			/* "key" of D and U records */
	RowSlot    *oldout;			/* "old" (include-old), or NULL */
	bool		old_key_only;	/* oldout holds only the key columns */
	int64	   *oldids;			/* shapes the old row is in */
	int			nold;
	int64	   *newids;			/* shapes the new row is in */
	int			nnew;
} RouteResult;

/* The membership key of a row; false if it cannot be read from the WAL */
static bool
RowKey(SrRelState *rs, RowSlot *row, SrKeyBuf *kb)
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
 * Record that the row with this key is now in these shapes: the synced
 * ones among them (the others have no members in this stream).  On a FULL
 * table ids may hold unsynced shapes, which still get records.
 */
static void
SetMembers(SrRelState *rs, SrTableMemb *tm, SrMembKey key,
		   const int64 *ids, int n)
{
	int64	   *kept = (int64 *) ids;

	if (SrRelFull(rs))
	{
		kept = palloc(sizeof(int64) * Max(n, 1));
		memcpy(kept, ids, sizeof(int64) * n);
		n = SrRelKeepSynced(rs, kept, n);
	}
	SrTableMembSet(tm, key, kept, n);
}

/*
 * The shapes the membership index has key in (in its lookup buffer); the
 * key leaves them
 */
static int
TakeMembers(SrRelState *rs, SrTableMemb *tm, SrMembKey key, int64 **ids)
{
	int			nstored;
	int			n = SrRelMembers(rs, key, ids, &nstored);

	if (nstored > 0)
		SrTableMembRemoveKey(tm, key);
	return n;
}

static void
RouteInsert(SrPluginData *data, SrRelState *rs, ReorderBufferChange *change,
			FailContext *fail, RouteResult *r)
{
	SrTableMemb *tm = MaintainedMemb(rs);

	StoreRow(&r->newrow, rs, 1, &change->data.tp.newtuple->tuple, NULL);
	SrRouterMatchRows(SrRelRouter(rs), -1, NULL, r->newrow.slot, NULL,
					  data->econtext, NULL, NULL, &r->newids, &r->nnew,
					  ShapeFailed, fail);
	r->kind = ROUTE_INSERT;
	if (!SrRelFull(rs))
		r->nnew = SrRelKeepSynced(rs, r->newids, r->nnew);
	if (tm == NULL)
		return;
	if (!RowKey(rs, &r->newrow, &data->newkey))
	{
		SrStateInvalidateRel(data->state, rs,
							 "an INSERT was logged without its key", fail->events);
		r->kind = ROUTE_NONE;
		return;
	}
	SetMembers(rs, tm, SrStateKeyHash(data->state, &data->newkey),
			   r->newids, r->nnew);
}

static void
RouteDelete(SrPluginData *data, SrRelState *rs, ReorderBufferChange *change,
			FailContext *fail, RouteResult *r)
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
	r->kind = ROUTE_DELETE;
	r->keyrow = r->oldout = &r->oldrow;
	if (tm && !RowKey(rs, &r->oldrow, &data->oldkey))
	{
		SrStateInvalidateRel(data->state, rs,
							 "a DELETE was logged without its key", fail->events);
		r->kind = ROUTE_NONE;
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
RouteUpdateFull(SrPluginData *data, SrRelState *rs, TupleDesc desc,
				ReorderBufferChange *change, FailContext *fail, RouteResult *r)
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
		r->kind = ROUTE_KEY_CHANGE;
	}
	else
	{
		changed = ncand ? ChangedColumns(rs, desc, r->oldrow.slot, r->newrow.slot) : NULL;
		r->kind = ROUTE_UPDATE;
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
		r->kind = ROUTE_NONE;
		return;
	}
	if (r->kind == ROUTE_KEY_CHANGE)
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
MatchUnknown(SrPluginData *data, SrRelState *rs, RouteResult *r,
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
RouteUpdateByKey(SrPluginData *data, SrRelState *rs,
				 ReorderBufferChange *change, FailContext *fail,
				 RouteResult *r)
{
	ReorderBufferTupleBuf *oldt = change->data.tp.oldtuple;
	SrTableMemb *tm = MaintainedMemb(rs);
	SrKeyBuf   *oldkey = &data->oldkey;
	SrKeyBuf   *newkey = &data->newkey;

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
	r->nnew = SrRelKeepSynced(rs, r->newids, r->nnew);
	/* after MatchUnknown: the shapes it invalidated have no old side */
	r->nold = TakeMembers(rs, tm, SrStateKeyHash(data->state, oldkey), &r->oldids);
	SetMembers(rs, tm, SrStateKeyHash(data->state, newkey),
			   r->newids, r->nnew);
	if (oldkey != newkey && (oldkey->len != newkey->len ||
							 memcmp(oldkey->data, newkey->data, oldkey->len) != 0))
	{
		r->kind = ROUTE_KEY_CHANGE;
		r->keyrow = r->oldout = &r->oldrow;
	}
	else
	{
		r->kind = ROUTE_UPDATE;
		r->keyrow = oldt ? &r->oldrow : &r->newrow;
		r->oldout = oldt ? &r->oldrow : NULL;
	}
	r->old_key_only = true;
}

/* one record kind for a list of shapes */
static void
WriteKind(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
		  ReorderBufferChange *change, SrRelState *rs, char action,
		  const char *move, RouteResult *r, bool key, bool old, bool new,
		  int64 *ids, int nids)
{
	RecordSpec	spec = {0};

	spec.action = action;
	spec.move = move;
	spec.keyrow = key ? r->keyrow : NULL;
	spec.oldrow = old ? r->oldout : NULL;
	spec.old_key_only = r->old_key_only;
	spec.newrow = new ? &r->newrow : NULL;
	WriteRecords(ctx, txn, change, rs, &spec, ids, nids);
}

/* the records of a routed change */
static void
WriteRoute(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
		   ReorderBufferChange *change, SrRelState *rs, RouteResult *r)
{
	switch (r->kind)
	{
		case ROUTE_NONE:
			break;
		case ROUTE_INSERT:
			WriteKind(ctx, txn, change, rs, 'I', NULL, r, false, false, true,
					  r->newids, r->nnew);
			break;
		case ROUTE_DELETE:
			WriteKind(ctx, txn, change, rs, 'D', NULL, r, true, true, false,
					  r->oldids, r->nold);
			break;
		case ROUTE_KEY_CHANGE:
			WriteKind(ctx, txn, change, rs, 'D', NULL, r, true, true, false,
					  r->oldids, r->nold);
			WriteKind(ctx, txn, change, rs, 'I', NULL, r, false, false, true,
					  r->newids, r->nnew);
			break;
		case ROUTE_UPDATE:
			{
				/* room for the candidates of the match */
				int64	   *both = SrRouterIdBuffer(SrRelRouter(rs), 2);
				int64	   *onlyold = SrRouterIdBuffer(SrRelRouter(rs), 3);
				int64	   *onlynew = SrRouterIdBuffer(SrRelRouter(rs), 4);
				int			nboth,
							nonlyold,
							nonlynew;

				SplitIds(r->oldids, r->nold, r->newids, r->nnew, both, &nboth,
						 onlyold, &nonlyold, onlynew, &nonlynew);
				WriteKind(ctx, txn, change, rs, 'U', NULL, r, true, true, true,
						  both, nboth);
				WriteKind(ctx, txn, change, rs, 'I', "in", r, false, false, true,
						  onlynew, nonlynew);
				WriteKind(ctx, txn, change, rs, 'D', "out", r, true, true, false,
						  onlyold, nonlyold);
				break;
			}
	}
}

static void
RouteChange(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			Relation relation, ReorderBufferChange *change, SrRelState *rs,
			List **events)
{
	SrPluginData *data = ctx->output_plugin_private;
	RouteResult r = {0};
	FailContext fail = {data->state, events};

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			RouteInsert(data, rs, change, &fail, &r);
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			RouteDelete(data, rs, change, &fail, &r);
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			if (SrRelFull(rs) || MaintainedMemb(rs) == NULL)
				RouteUpdateFull(data, rs, RelationGetDescr(relation), change,
								&fail, &r);
			else
				RouteUpdateByKey(data, rs, change, &fail, &r);
			break;
		default:
			/* speculative insertion internals never reach plugins */
			break;
	}
	WriteRoute(ctx, txn, change, rs, &r);
	if (r.oldrow.slot)
		ExecClearTuple(r.oldrow.slot);
	if (r.newrow.slot)
		ExecClearTuple(r.newrow.slot);
}

static void
SrChange(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
		 Relation relation, ReorderBufferChange *change)
{
	SrPluginData *data = ctx->output_plugin_private;
	MemoryContext old = MemoryContextSwitchTo(data->change_cxt);
	List	   *events = NIL;
	SrRelState *rs;

	if (SrStateIsCatalog(data->state, relation))
		SrStateCatalogChange(data->state, relation, change, &events);
	else if ((rs = SrStateGetRel(data->state, relation, &events)) != NULL)
	{
		WriteEvents(ctx, txn, events);
		events = NIL;
		RouteChange(ctx, txn, relation, change, rs, &events);
	}
	WriteEvents(ctx, txn, events);

	MemoryContextSwitchTo(old);
	MemoryContextReset(data->change_cxt);
	CountChange(ctx, data);
}

static void
SrTruncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
		   int nrelations, Relation relations[], ReorderBufferChange *change)
{
	SrPluginData *data = ctx->output_plugin_private;
	MemoryContext old = MemoryContextSwitchTo(data->change_cxt);

	for (int r = 0; r < nrelations; r++)
	{
		List	   *events = NIL;
		SrRelState *rs;
		StringInfo	out;
		int64	   *ids;
		int			n;

		rs = SrStateGetRel(data->state, relations[r], &events);
		WriteEvents(ctx, txn, events);
		if (rs == NULL)
			continue;
		ids = palloc(sizeof(int64) * Max(SrRouterShapeCount(SrRelRouter(rs)), 1));
		n = 0;
		for (int i = 0; i < SrRouterShapeCount(SrRelRouter(rs)); i++)
		{
			SrShape    *shape = SrRouterShapeAt(SrRelRouter(rs), i);

			if (shape->prog != NULL && !shape->removed)
				ids[n++] = shape->shape_id;
		}
		if (SrRelMemb(rs))
			SrTableMembTruncate(SrRelMemb(rs), ids, n);
		if (!SrRelFull(rs))
			n = SrRelKeepSynced(rs, ids, n);
		if (n == 0)
			continue;
		MaybeWriteBegin(ctx, txn);
		OutputPluginPrepareWrite(ctx, true);
		out = ctx->out;
		appendStringInfoString(out, "{\"action\":\"T\",\"shapes\":[");
		for (int i = 0; i < n; i++)
			appendStringInfo(out, "%s" INT64_FORMAT, i ? "," : "", ids[i]);
		appendStringInfo(out, "],\"schema\":%s,\"table\":%s",
						 SrRelJson(rs)->schema, SrRelJson(rs)->table);
		EndChangeRecord(ctx, txn, change);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(data->change_cxt);
	CountChange(ctx, data);
}
