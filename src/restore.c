/*-------------------------------------------------------------------------
 *
 * restore.c
 *	  Shapes through pg_dump and pg_restore.
 *
 * The catalog itself cannot be dumped as it is: its qual column is a
 * pg_node_tree, which no input function accepts, and its relid, columns
 * and owner are OIDs and column numbers of the dumped database.  So the
 * dump holds shape_router.shapes_dump instead, a table that is always
 * empty: its pg_extension_config_dump() filter makes pg_dump read
 * shape_router.shapes_for_dump(), which deparses every shape with today's
 * names (docs/sql-api.md, "Dump and restore").  pg_restore's COPY into it
 * runs the trigger below for each row, which registers the shape again,
 * checked as add_shape() checks it, under its own id, owner and creation
 * time, and stores nothing in shapes_dump; a shape that cannot be
 * registered (its table is not there, or no longer fits its WHERE clause)
 * stays in shapes_dump with the reason, which later dumps carry too:
 * nothing is lost, and nothing is lost silently (pg_restore shows a
 * server's warnings only with --verbose).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/varlena.h"

#include "catalog.h"
#include "subxact.h"

/* Columns of shape_router.shapes_dump */
#define Anum_dump_shape_id		1
#define Anum_dump_table_name	2
#define Anum_dump_where_clause	3
#define Anum_dump_columns		4
#define Anum_dump_owner			5
#define Anum_dump_created_at	6
#define Anum_dump_error			7
#define Natts_dump				7

typedef struct DumpedShape
{
	int64		shape_id;
	char	   *table_name;
	char	   *where_clause;	/* NULL = every row */
	ArrayType  *columns;		/* text[]; NULL = all */
	char	   *owner;
	TimestampTz created_at;
} DumpedShape;

static void
ReadDumpedShape(HeapTuple tup, TupleDesc desc, DumpedShape *d)
{
	Datum		values[Natts_dump];
	bool		nulls[Natts_dump];

	if (desc->natts != Natts_dump)
		elog(ERROR, "shape_router.shapes_dump has %d columns, expected %d",
			 desc->natts, Natts_dump);
	heap_deform_tuple(tup, desc, values, nulls);
	if (nulls[Anum_dump_shape_id - 1] || nulls[Anum_dump_table_name - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a dumped shape must have an id and a table")));
	d->shape_id = DatumGetInt64(values[Anum_dump_shape_id - 1]);
	d->table_name = TextDatumGetCString(values[Anum_dump_table_name - 1]);
	d->where_clause = nulls[Anum_dump_where_clause - 1] ? NULL :
		TextDatumGetCString(values[Anum_dump_where_clause - 1]);
	d->columns = nulls[Anum_dump_columns - 1] ? NULL :
		DatumGetArrayTypeP(values[Anum_dump_columns - 1]);
	d->owner = nulls[Anum_dump_owner - 1] ? NULL :
		TextDatumGetCString(values[Anum_dump_owner - 1]);
	d->created_at = nulls[Anum_dump_created_at - 1] ?
		GetCurrentTransactionStartTimestamp() :
		DatumGetTimestampTz(values[Anum_dump_created_at - 1]);
}

/*
 * Register one dumped shape in a subtransaction: a shape that no longer
 * fits (the restored table differs from the dumped one) is reported, and
 * the others are still restored.  Returns the error message, or NULL.
 */
typedef struct RestoreArgs
{
	const DumpedShape *d;
	Oid			relid;
	Oid			owner;
} RestoreArgs;

static void
DoRestore(void *arg)
{
	RestoreArgs *a = arg;

	SrRestoreShape(a->relid, a->d->shape_id, a->d->where_clause,
				   a->d->columns, a->owner, a->d->created_at);
}

static char *
RestoreOne(const DumpedShape *d, Oid relid, Oid owner)
{
	RestoreArgs args = {d, relid, owner};
	ErrorData  *edata = SrRunInSubxact(DoRestore, &args);

	if (edata == NULL)
		return NULL;
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("shape " INT64_FORMAT " on table %s was not restored: %s",
					d->shape_id, d->table_name, edata->message),
			 edata->detail ? errdetail("%s", edata->detail) : 0,
			 errhint("It stays in shape_router.shapes_dump; see docs/sql-api.md, \"Dump and restore\".")));
	return edata->message;
}

/* the row kept in shapes_dump, with why it is there */
static Datum
KeepRow(TriggerData *trigdata, const char *error)
{
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	Datum		values[Natts_dump] = {0};
	bool		nulls[Natts_dump] = {0};
	bool		replace[Natts_dump] = {0};

	values[Anum_dump_error - 1] = CStringGetTextDatum(error);
	replace[Anum_dump_error - 1] = true;
	return PointerGetDatum(heap_modify_tuple(trigdata->tg_trigtuple, desc,
											 values, nulls, replace));
}

PG_FUNCTION_INFO_V1(restore_shape);
Datum
restore_shape(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	DumpedShape d;
	Oid			relid;
	Oid			owner;
	List	   *names;
	char	   *error;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("restore_shape() must be fired BEFORE INSERT FOR EACH ROW")));
	ReadDumpedShape(trigdata->tg_trigtuple,
					RelationGetDescr(trigdata->tg_relation), &d);

	names = stringToQualifiedNameList(d.table_name);
	relid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
	if (!OidIsValid(relid))
	{
		char	   *error = psprintf("relation \"%s\" does not exist",
									 d.table_name);

		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("shape " INT64_FORMAT " was not restored: %s",
						d.shape_id, error),
				 errhint("It stays in shape_router.shapes_dump; see docs/sql-api.md, \"Dump and restore\".")));
		return KeepRow(trigdata, error);
	}

	/* the shape's owner, if the role is there (roles are not in a dump) */
	owner = d.owner ? get_role_oid(d.owner, true) : InvalidOid;
	if (!OidIsValid(owner))
	{
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" of shape " INT64_FORMAT " does not exist; its owner is now \"%s\"",
						d.owner ? d.owner : "", d.shape_id,
						GetUserNameFromId(GetUserId(), false)),
				 errhint("Restore the roles first (pg_dumpall --roles-only) to keep the owners.")));
		owner = GetUserId();
	}
	error = RestoreOne(&d, relid, owner);
	if (error)
		return KeepRow(trigdata, error);
	/* restored: nothing is stored in shapes_dump */
	return PointerGetDatum(NULL);
}
