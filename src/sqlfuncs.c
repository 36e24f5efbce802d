/*-------------------------------------------------------------------------
 *
 * sqlfuncs.c
 *	  matching_shapes() and explain_shape(): the routing engine, called
 *	  from SQL.
 *
 * A backend keeps each table's compiled shapes between calls, keyed by
 * relid, and drops them on relcache invalidation of the table (ALTER TABLE)
 * or of the shape catalog (add_shape and remove_shape send one).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "nodes/readfuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "catalog.h"
#include "eval.h"
#include "router.h"
#include "sqlfuncs.h"

typedef struct RouterCacheEntry
{
	Oid			relid;			/* hash key */
	bool		valid;
	SrTableRouter *router;
} RouterCacheEntry;

static HTAB *router_cache = NULL;
static Oid	cached_shapes_relid = InvalidOid;

static void
RouterCacheCallback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	RouterCacheEntry *entry;

	if (router_cache == NULL)
		return;
	if (OidIsValid(relid) && relid != cached_shapes_relid)
	{
		entry = hash_search(router_cache, &relid, HASH_FIND, NULL);
		if (entry)
			entry->valid = false;
		return;
	}
	hash_seq_init(&status, router_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->valid = false;
}

void
SrSqlFuncsInit(void)
{
	CacheRegisterRelcacheCallback(RouterCacheCallback, (Datum) 0);
}

static void
AddShapeCallback(const SrShapeDef *def, void *arg)
{
	SrRouterAddShape((SrTableRouter *) arg, def);
}

/* The table's compiled shapes, loaded from the catalog when stale. */
static SrTableRouter *
GetRouter(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	RouterCacheEntry *entry;
	bool		found;

	if (router_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RouterCacheEntry);
		ctl.hcxt = CacheMemoryContext;
		router_cache = hash_create("shape_router routers", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	cached_shapes_relid = SrShapesRelid(false);

	entry = hash_search(router_cache, &relid, HASH_ENTER, &found);
	if (!found)
	{
		entry->router = NULL;
		entry->valid = false;
	}
	if (!entry->valid)
	{
		if (entry->router)
			SrRouterDestroy(entry->router);
		entry->router = NULL;
		entry->router = SrRouterCreate(relid, RelationGetDescr(rel), 0,
									   CacheMemoryContext);
		entry->valid = true;
		PG_TRY();
		{
			SrCatalogForEachShape(relid, NULL, NULL, AddShapeCallback, entry->router);
		}
		PG_CATCH();
		{
			entry->valid = false;
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return entry->router;
}

static Relation
OpenTable(Oid relid)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail_relkind_not_supported(rel->rd_rel->relkind)));
	return rel;
}

/* The jsonb row as a tuple of rel, read the way jsonb_populate_record reads it */
static HeapTuple
RowFromJsonb(Relation rel, Jsonb *row)
{
	Oid			rowtype = rel->rd_rel->reltype;
	FmgrInfo	flinfo;
	FuncExpr   *fexpr;
	HeapTupleHeader td;
	HeapTupleData tuple;

	LOCAL_FCINFO(fcinfo, 2);

	/* populate_record learns the row type from its first argument's type */
	fexpr = makeFuncExpr(F_JSONB_POPULATE_RECORD, rowtype,
						 list_make2(makeNullConst(rowtype, -1, InvalidOid),
									makeNullConst(JSONBOID, -1, InvalidOid)),
						 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	fmgr_info(F_JSONB_POPULATE_RECORD, &flinfo);
	fmgr_info_set_expr((Node *) fexpr, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 2, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = (Datum) 0;
	fcinfo->args[0].isnull = true;
	fcinfo->args[1].value = JsonbPGetDatum(row);
	fcinfo->args[1].isnull = false;
	td = DatumGetHeapTupleHeader(FunctionCallInvoke(fcinfo));
	if (fcinfo->isnull)
		elog(ERROR, "jsonb_populate_record returned null");

	tuple.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = RelationGetRelid(rel);
	tuple.t_data = td;
	return heap_copytuple(&tuple);
}

PG_FUNCTION_INFO_V1(matching_shapes);
Datum
matching_shapes(PG_FUNCTION_ARGS)
{
	Relation	rel = OpenTable(PG_GETARG_OID(0));
	Jsonb	   *row = PG_GETARG_JSONB_P(1);
	SrTableRouter *router;
	TupleTableSlot *slot;
	ExprContext *econtext;
	int64	   *ids;
	Datum	   *elems;
	int			n;

	if (!JB_ROOT_IS_OBJECT(row))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("row must be a jsonb object")));

	router = GetRouter(rel);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(RowFromJsonb(rel, row), slot, true);
	econtext = CreateStandaloneExprContext();

	for (int i = 0; i < SrRouterShapeCount(router); i++)
	{
		SrShape    *shape = SrRouterShapeAt(router, i);

		if (shape->prog == NULL && !shape->removed)
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("shape " INT64_FORMAT " is invalid and matches no row",
							shape->shape_id),
					 errdetail("The shape's WHERE clause no longer fits the table: %s.",
							   shape->invalid_reason)));
	}

	n = SrRouterMatch(router, slot, econtext, &ids);
	elems = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
		elems[i] = Int64GetDatum(ids[i]);

	FreeExprContext(econtext, true);
	ExecDropSingleTupleTableSlot(slot);
	relation_close(rel, AccessShareLock);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, INT8OID, 8,
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

PG_FUNCTION_INFO_V1(explain_shape);
Datum
explain_shape(PG_FUNCTION_ARGS)
{
	int64		shape_id = PG_GETARG_INT64(0);
	SrShapeDef	def;
	Relation	rel;
	SrTableRouter *router;
	SrShape    *shape;
	StringInfoData buf;

	if (!SrCatalogGetShape(shape_id, &def))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("shape " INT64_FORMAT " does not exist", shape_id)));

	initStringInfo(&buf);
	rel = try_relation_open(def.relid, AccessShareLock);
	if (rel == NULL)
	{
		appendStringInfo(&buf, "invalid: table %u was dropped", def.relid);
		PG_RETURN_TEXT_P(cstring_to_text(buf.data));
	}
	router = GetRouter(rel);
	shape = SrRouterFindShape(router, shape_id);
	if (shape == NULL)
		elog(ERROR, "shape " INT64_FORMAT " missing from its table's router",
			 shape_id);
	if (shape->prog == NULL)
		appendStringInfo(&buf, "invalid: %s", shape->invalid_reason);
	else
	{
		appendStringInfoString(&buf, "access: ");
		SrRouterExplainAccess(router, shape, &buf);
		appendStringInfo(&buf, "\nprogram: %d step%s", shape->prog->nsteps,
						 shape->prog->nsteps == 1 ? "" : "s");
		SrExplainProgram(shape->prog, SrRouterDesc(router), &buf);
	}
	relation_close(rel, AccessShareLock);
	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}
