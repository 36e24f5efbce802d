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
#include "utils/timestamp.h"

#include "jsonout.h"
#include "memkey.h"
#include "route.h"
#include "shapestate.h"
#include "slotstats.h"
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
	bool		sent_change;	/* an I/U/D/T written for the current change */
	bool		started;		/* a transaction was begun */
	int			unreported;		/* changes since the last progress report */
	uint32		unchecked;		/* changes since the clock was read */
	SrRouteContext route;		/* what routing a change needs */
	SrSlotStats *stats;
	SrStreamCounters *counters; /* the stats' */
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
	/* creating the slot decodes nothing: no statistics file yet */
	data->stats = SrSlotStatsCreate(data->context,
									ctx->slot && !is_init ?
									NameStr(ctx->slot->data.name) : NULL,
									data->context);
	data->counters = SrSlotStatsCounters(data->stats);
	SrStateSetCounters(data->state, &data->counters->paths);
	data->econtext = CreateStandaloneExprContext();
	data->route.state = data->state;
	data->route.econtext = data->econtext;
	SrKeyBufInit(&data->route.oldkey, SrMemAllocatorFor(data->context));
	SrKeyBufInit(&data->route.newkey, SrMemAllocatorFor(data->context));
	MemoryContextSwitchTo(old);
}

static void
SrShutdown(LogicalDecodingContext *ctx)
{
	SrPluginData *data = ctx->output_plugin_private;

	SrStateShutdown(data->state);
	SrSlotStatsShutdown(data->stats, data->state);
	FreeExprContext(data->econtext, false);
	MemoryContextDelete(data->context);
	MemoryContextDelete(data->change_cxt);
}

static void
SrBegin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	SrPluginData *data = ctx->output_plugin_private;
	MemoryContext old;
	TimestampTz began = 0;

	data->sent_begin = false;
	/* the first transaction loads the shapes: the stream's start */
	if (!data->started)
		began = GetCurrentTimestamp();
	/* what must outlive the call lives in the state's own contexts */
	old = MemoryContextSwitchTo(data->change_cxt);
	SrStateBeginTxn(data->state, txn, ctx->snapshot_builder);
	MemoryContextSwitchTo(old);
	MemoryContextReset(data->change_cxt);
	if (!data->started)
		SrSlotStatsStarted(data->stats, began);
	data->started = true;
}

/* OutputPluginWrite, counted */
static void
WriteRecord(LogicalDecodingContext *ctx, bool last_write)
{
	SrPluginData *data = ctx->output_plugin_private;

	OutputPluginWrite(ctx, last_write);
	data->counters->records_written++;
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
	WriteRecord(ctx, false);
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
		WriteRecord(ctx, true);
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

	data->counters->transactions++;
	if (!data->sent_begin)
	{
		/* Nothing written: still let the receiver confirm this far. */
		OutputPluginUpdateProgress(ctx, true);
		SrSlotStatsMaybeWrite(data->stats, data->state);
		return;
	}
	data->counters->transactions_written++;
	data->unreported = 0;
	if (data->include_transaction)
	{
		OutputPluginPrepareWrite(ctx, true);
		appendStringInfo(ctx->out, "{\"action\":\"C\",\"xid\":%u,\"lsn\":", txn->xid);
		SrJsonAppendLsn(ctx->out, commit_lsn);
		appendStringInfoChar(ctx->out, '}');
		WriteRecord(ctx, true);
	}
	SrSlotStatsMaybeWrite(data->stats, data->state);
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
 * so that the walsender keeps the connection alive, and statistics.
 */
static void
CountChange(LogicalDecodingContext *ctx, SrPluginData *data)
{
	if (++data->unreported >= SR_PROGRESS_EVERY)
	{
		OutputPluginUpdateProgress(ctx, false);
		data->unreported = 0;
	}
	if (++data->unchecked >= SR_STATS_CHECK_EVERY)
	{
		SrSlotStatsMaybeWrite(data->stats, data->state);
		data->unchecked = 0;
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
	WriteRecord(ctx, true);
	data->sent_change = true;
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
	SrRowSlot    *newrow;			/* "new", or NULL */
	SrRowSlot    *keyrow;			/* "key" from this row, or NULL */
	SrRowSlot    *oldrow;			/* "old" (include-old), or NULL */
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
		appendStringInfoString(out, "{\"action\":\"");
		appendStringInfoCharMacro(out, spec->action);
		appendStringInfoCharMacro(out, '"');
		if (spec->move)
		{
			appendStringInfoString(out, ",\"move\":\"");
			appendStringInfoString(out, spec->move);
			appendStringInfoCharMacro(out, '"');
		}
		appendStringInfoString(out, ",\"shapes\":[");
		for (int j = i; j < n; j++)
		{
			char		num[MAXINT8LEN + 1];

			if (done[j] || !bms_equal(cols, colsof[j]))
				continue;
			done[j] = true;
			if (comma)
				appendStringInfoCharMacro(out, ',');
			appendBinaryStringInfo(out, num, pg_lltoa(ids[j], num));
			comma = true;
		}
		appendStringInfoString(out, "],\"schema\":");
		appendStringInfoString(out, SrRelJson(rs)->schema);
		appendStringInfoString(out, ",\"table\":");
		appendStringInfoString(out, SrRelJson(rs)->table);
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

/* one record kind for a list of shapes */
static void
WriteKind(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
		  ReorderBufferChange *change, SrRelState *rs, char action,
		  const char *move, SrRouteResult *r, bool key, bool old, bool new,
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
		   ReorderBufferChange *change, SrRelState *rs, SrRouteResult *r)
{
	switch (r->kind)
	{
		case SR_ROUTE_NONE:
			break;
		case SR_ROUTE_INSERT:
			WriteKind(ctx, txn, change, rs, 'I', NULL, r, false, false, true,
					  r->newids, r->nnew);
			break;
		case SR_ROUTE_DELETE:
			WriteKind(ctx, txn, change, rs, 'D', NULL, r, true, true, false,
					  r->oldids, r->nold);
			break;
		case SR_ROUTE_KEY_CHANGE:
			WriteKind(ctx, txn, change, rs, 'D', NULL, r, true, true, false,
					  r->oldids, r->nold);
			WriteKind(ctx, txn, change, rs, 'I', NULL, r, false, false, true,
					  r->newids, r->nnew);
			break;
		case SR_ROUTE_UPDATE:
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
	SrRouteResult r = {0};

	SrRouteChange(&data->route, rs, relation, change, events, &r);
	WriteRoute(ctx, txn, change, rs, &r);
	SrRouteEnd(&r);
}

static void
SrChange(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
		 Relation relation, ReorderBufferChange *change)
{
	SrPluginData *data = ctx->output_plugin_private;
	MemoryContext old = MemoryContextSwitchTo(data->change_cxt);
	List	   *events = NIL;
	SrRelState *rs;

	data->counters->changes_decoded++;
	data->sent_change = false;
	if (SrStateIsCatalog(data->state, relation))
	{
		data->counters->changes_no_shapes++;
		SrStateCatalogChange(data->state, relation, change, &events);
	}
	else if ((rs = SrStateGetRel(data->state, relation, &events)) != NULL)
	{
		WriteEvents(ctx, txn, events);
		events = NIL;
		RouteChange(ctx, txn, relation, change, rs, &events);
	}
	else
		data->counters->changes_no_shapes++;
	WriteEvents(ctx, txn, events);
	data->counters->changes_routed += data->sent_change;

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

		data->counters->changes_decoded++;
		rs = SrStateGetRel(data->state, relations[r], &events);
		WriteEvents(ctx, txn, events);
		if (rs == NULL)
		{
			data->counters->changes_no_shapes++;
			continue;
		}
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
		data->counters->changes_routed++;
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(data->change_cxt);
	CountChange(ctx, data);
}
