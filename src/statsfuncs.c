/*-------------------------------------------------------------------------
 *
 * statsfuncs.c
 *	  slot_stats(), slot_path_stats() and slot_table_stats(): a slot's
 *	  statistics file (slotstats.h), read from SQL.
 *
 * Reading needs no shared memory and no lock: the stream replaces the file
 * by a rename, so a reader sees one whole version of it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "replication/slot.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "slotstats.h"

#define SLOT_STATS_COLS			21
#define SLOT_PATH_STATS_COLS	4
#define SLOT_TABLE_STATS_COLS	8

/* The slot's figures; 0 if it has no file yet.  Errors as for the slot's views. */
static int
ReadSlot(Name slot_name, SrStatsFigures *fig, SrStatsTable **tables)
{
	const char *name = NameStr(*slot_name);
	char	   *problem;
	int			res;

	if (SearchNamedReplicationSlot(name, true) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("replication slot \"%s\" does not exist", name)));
	res = SrSlotStatsRead(name, fig, tables, &problem);
	if (res < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("statistics file of replication slot \"%s\" is corrupt",
						name),
				 errdetail("%s", problem),
				 errhint("The slot's next stream writes a new one.")));
	return res;
}

/* shapes, per state, membership keys and bytes; returns how many */
static int
PutTableFigures(Datum *values, const SrTableFigures *f)
{
	for (int i = 0; i < SR_TABLE_FIGURES; i++)
		values[i] = Int64GetDatum(((const int64 *) f)[i]);
	return SR_TABLE_FIGURES;
}

PG_FUNCTION_INFO_V1(slot_stats);

Datum
slot_stats(PG_FUNCTION_ARGS)
{
	SrStatsFigures fig;
	SrStatsTable *tables;
	const SrStreamCounters *c = &fig.counters;
	TupleDesc	desc;
	Datum		values[SLOT_STATS_COLS];
	bool		nulls[SLOT_STATS_COLS] = {0};
	bool		found;
	int			i = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	found = ReadSlot(PG_GETARG_NAME(0), &fig, &tables) > 0;

	values[i++] = Int64GetDatum(c->changes_decoded);
	values[i++] = Int64GetDatum(c->changes_routed);
	values[i++] = Int64GetDatum(c->changes_decoded - c->changes_routed);
	values[i++] = Int64GetDatum(c->changes_no_shapes);
	values[i++] = Int64GetDatum(c->records_written);
	values[i++] = Int64GetDatum(c->transactions);
	values[i++] = Int64GetDatum(c->transactions_written);
	values[i++] = Int64GetDatum(c->streams);
	i += PutTableFigures(&values[i], &fig.state);
	values[i++] = Int64GetDatum(fig.tables);
	/* what only a stream can say is unknown before the first one */
	values[i++] = Float8GetDatum(fig.start_ms);
	values[i++] = Int64GetDatum(fig.memory_bytes);
	values[i++] = Int64GetDatum(fig.peak_memory_bytes);
	values[i++] = TimestampTzGetDatum(fig.stream_started_at);
	values[i++] = TimestampTzGetDatum(fig.updated_at);
	Assert(i == SLOT_STATS_COLS);
	if (!found)
		for (int j = SLOT_STATS_COLS - 5; j < SLOT_STATS_COLS; j++)
			nulls[j] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

PG_FUNCTION_INFO_V1(slot_path_stats);

Datum
slot_path_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SrStatsFigures fig;
	SrStatsTable *tables;
	const SrPathCounters *pc = &fig.counters.paths;

	ReadSlot(PG_GETARG_NAME(0), &fig, &tables);
	InitMaterializedSRF(fcinfo, 0);
	for (int k = 0; k < SR_PATH_KINDS; k++)
	{
		Datum		values[SLOT_PATH_STATS_COLS];
		bool		nulls[SLOT_PATH_STATS_COLS] = {0};

		values[0] = CStringGetTextDatum(SrPathKindNames[k]);
		values[1] = Int64GetDatum(pc->candidates[k]);
		values[2] = Int64GetDatum(pc->evaluations[k]);
		values[3] = Int64GetDatum(pc->matches[k]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(slot_table_stats);

Datum
slot_table_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SrStatsFigures fig;
	SrStatsTable *tables;

	ReadSlot(PG_GETARG_NAME(0), &fig, &tables);
	InitMaterializedSRF(fcinfo, 0);
	for (uint32 t = 0; t < fig.ntables; t++)
	{
		const SrStatsTable *tab = &tables[t];
		Datum		values[SLOT_TABLE_STATS_COLS];
		bool		nulls[SLOT_TABLE_STATS_COLS] = {0};

		values[0] = ObjectIdGetDatum(tab->relid);
		PutTableFigures(&values[1], &tab->f);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
