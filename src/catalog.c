/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  The shape catalog and the SQL functions that write it: add_shape(),
 *	  add_shapes() and remove_shape().
 *
 * Rows are written with the catalog tuple routines rather than through SQL,
 * so that the catalog can stay closed to direct DML by PUBLIC while any user
 * with SELECT on a table can register shapes on it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "members.h"
#include "validate.h"
#include "sortutil.h"

#define SR_SCHEMA			"shape_router"
#define SR_SHAPES_PKEY		"shapes_pkey"
#define SR_SHAPES_RELID_IDX	"shapes_relid_idx"
#define SR_SHAPES_PENDING_IDX	"shapes_pending_idx"

/* What add_shape() and add_shapes() share while writing rows */
typedef struct ShapeWriter
{
	Relation	rel;			/* the shaped table */
	Relation	shapes;			/* shape_router.shapes */
	Oid			seqoid;			/* its identity sequence */
	Bitmapset  *keyattrs;		/* key columns, emitted with every record */
	bool		table_select;	/* caller has SELECT on the whole table */
	bool		members;		/* send each shape's initial members */
	bool		pending;		/* add_shape_concurrently(): register only */
	int64		restored_id;	/* restore: the shape's id, owner and time */
	Oid			restored_owner;
	TimestampTz restored_at;
} ShapeWriter;

static void OpenWriterRel(ShapeWriter *w, Oid relid, bool concurrently,
						  bool restoring);

static Oid
CatalogObject(const char *name, bool missing_ok)
{
	Oid			nspid = get_namespace_oid(SR_SCHEMA, missing_ok);
	Oid			relid = OidIsValid(nspid) ? get_relname_relid(name, nspid) : InvalidOid;

	if (!OidIsValid(relid) && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", SR_SCHEMA, name),
				 errhint("Run CREATE EXTENSION shape_router.")));
	return relid;
}

Oid
SrShapesRelid(bool missing_ok)
{
	return CatalogObject(SR_SHAPES_TABLE, missing_ok);
}

/*
 * SrShapesHead() reads shape_id and relid in place, which is right only if
 * they are the first two columns, bigint and oid, NOT NULL and not dropped;
 * pending, since 0.2, is the last column (where ALTER EXTENSION UPDATE from
 * 0.1 adds it).  Checked once per stream start against the catalog's
 * descriptor (a superuser's ALTER TABLE could change it).
 */
void
SrCheckShapesDesc(TupleDesc desc)
{
	static const Oid types[] = {INT8OID, OIDOID};
	Form_pg_attribute att;

	for (int i = 0; i < lengthof(types); i++)
	{
		if (i >= desc->natts ||
			(att = TupleDescAttr(desc, i))->attisdropped ||
			att->atttypid != types[i] || !att->attnotnull)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("catalog %s.%s has been altered", SR_SCHEMA,
							SR_SHAPES_TABLE),
					 errdetail("Its first two columns must be shape_id bigint NOT NULL and relid oid NOT NULL."),
					 errhint("Recreate the extension with DROP EXTENSION shape_router and CREATE EXTENSION shape_router.")));
	}
	if (desc->natts >= Anum_shapes_pending &&
		((att = TupleDescAttr(desc, Anum_shapes_pending - 1))->attisdropped ||
		 att->atttypid != BOOLOID || !att->attnotnull))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("catalog %s.%s has been altered", SR_SCHEMA,
						SR_SHAPES_TABLE),
				 errdetail("Its column %d must be pending boolean NOT NULL.",
						   Anum_shapes_pending),
				 errhint("Recreate the extension with DROP EXTENSION shape_router and CREATE EXTENSION shape_router.")));
}

/* false in a 0.1 catalog, which has no such column (nor pending shapes) */
bool
SrShapePending(HeapTuple tup, TupleDesc desc)
{
	bool		isnull;

	if (desc->natts < Anum_shapes_pending)
		return false;
	return DatumGetBool(heap_getattr(tup, Anum_shapes_pending, desc, &isnull)) &&
		!isnull;
}

/*
 * A shape's WHERE clause with today's names, deparsed from its qual: the
 * where_clause column keeps the text as it was added, and a column renamed
 * since would make it name another column or none.  NULL = every row.
 */
char *
SrQualClause(const char *qual, Relation rel)
{
	if (qual == NULL)
		return NULL;
	return deparse_expression(stringToNode(qual),
							  deparse_context_for(RelationGetRelationName(rel),
												  RelationGetRelid(rel)),
							  false, false);
}

/* Decode one catalog row; pointers point into tup or palloc'd memory. */
void
SrShapeDefFromTuple(HeapTuple tup, TupleDesc desc, SrShapeDef *def)
{
	Datum		values[Natts_shapes];
	bool		nulls[Natts_shapes];

	heap_deform_tuple(tup, desc, values, nulls);
	def->shape_id = nulls[Anum_shapes_shape_id - 1] ? 0 :
		DatumGetInt64(values[Anum_shapes_shape_id - 1]);
	def->relid = nulls[Anum_shapes_relid - 1] ? InvalidOid :
		DatumGetObjectId(values[Anum_shapes_relid - 1]);
	def->qual = nulls[Anum_shapes_qual - 1] ? NULL :
		TextDatumGetCString(values[Anum_shapes_qual - 1]);
	def->owner = nulls[Anum_shapes_owner - 1] ? InvalidOid :
		DatumGetObjectId(values[Anum_shapes_owner - 1]);
	def->pending = desc->natts >= Anum_shapes_pending &&
		!nulls[Anum_shapes_pending - 1] &&
		DatumGetBool(values[Anum_shapes_pending - 1]);
	if (nulls[Anum_shapes_columns - 1])
	{
		def->ncolumns = -1;
		def->columns = NULL;
	}
	else
	{
		ArrayType  *arr = DatumGetArrayTypeP(values[Anum_shapes_columns - 1]);
		Datum	   *elems;
		bool	   *enulls;
		int			n;

		deconstruct_array(arr, INT2OID, 2, true, TYPALIGN_SHORT,
						  &elems, &enulls, &n);
		def->ncolumns = 0;
		def->columns = palloc(sizeof(AttrNumber) * Max(n, 1));
		for (int i = 0; i < n; i++)
			if (!enulls[i])
				def->columns[def->ncolumns++] = DatumGetInt16(elems[i]);
	}
}

/*
 * Call callback for every shape on relid, under snapshot (NULL: the current
 * catalog snapshot), that filter (if not NULL) accepts by its id; the rest
 * of a row is decoded only then.  Each row is decoded in a context reset
 * after its callback, which copies what it keeps: a table can have
 * 100,000s of shapes.
 */
void
SrCatalogForEachShape(Oid relid, Snapshot snapshot, SrShapeIdFilter filter,
					  SrShapeCallback callback, void *arg)
{
	Relation	shapes = table_open(SrShapesRelid(false), AccessShareLock);
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "shape_router catalog row",
												 ALLOCSET_DEFAULT_SIZES);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	ScanKeyInit(&key, Anum_shapes_relid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(shapes,
							  CatalogObject(SR_SHAPES_RELID_IDX, false),
							  true, snapshot, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		SrShapeDef	def;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (filter)
		{
			bool		isnull;
			Datum		id = heap_getattr(tup, Anum_shapes_shape_id,
										  RelationGetDescr(shapes), &isnull);

			if (isnull || !filter(DatumGetInt64(id), arg))
				continue;
		}
		old = MemoryContextSwitchTo(rowcxt);
		SrShapeDefFromTuple(tup, RelationGetDescr(shapes), &def);
		callback(&def, arg);
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
	}
	systable_endscan(scan);
	table_close(shapes, AccessShareLock);
	MemoryContextDelete(rowcxt);
}

static HeapTuple
LookupShape(Relation shapes, int64 shape_id, SysScanDesc *scan)
{
	ScanKeyData key;

	ScanKeyInit(&key, Anum_shapes_shape_id, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(shape_id));
	*scan = systable_beginscan(shapes, CatalogObject(SR_SHAPES_PKEY, false),
							   true, NULL, 1, &key);
	return systable_getnext(*scan);
}

bool
SrCatalogGetShape(int64 shape_id, SrShapeDef *def)
{
	Relation	shapes = table_open(SrShapesRelid(false), AccessShareLock);
	SysScanDesc scan;
	HeapTuple	tup = LookupShape(shapes, shape_id, &scan);
	bool		found = HeapTupleIsValid(tup);

	if (found)
		SrShapeDefFromTuple(tup, RelationGetDescr(shapes), def);
	systable_endscan(scan);
	table_close(shapes, AccessShareLock);
	return found;
}

/*
 * The columns every record of the table carries as its "key": the primary
 * key, else the replica identity index, else all columns (1-based).
 */
Bitmapset *
SrKeyColumns(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *key;
	Bitmapset  *result = NULL;
	int			attno = -1;

	key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	if (key == NULL)
		key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	while ((attno = bms_next_member(key, attno)) >= 0)
		result = bms_add_member(result, attno + FirstLowInvalidHeapAttributeNumber);
	if (result == NULL)
		for (int i = 0; i < desc->natts; i++)
			if (!TupleDescAttr(desc, i)->attisdropped)
				result = bms_add_member(result, i + 1);
	return result;
}

/*
 * The replica identity policy, one place: FULL routes from the old row;
 * DEFAULT with a primary key and USING INDEX route from the membership
 * index, keyed by the identity columns; NOTHING, and DEFAULT without a
 * primary key, log no key to route an UPDATE or DELETE by.
 */
static void
CheckReplicaIdentity(Relation rel)
{
	const char *relname = RelationGetRelationName(rel);
	char	   *qualname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
													  relname);
	char		ident = rel->rd_rel->relreplident;

	if (ident == REPLICA_IDENTITY_FULL ||
		((ident == REPLICA_IDENTITY_DEFAULT || ident == REPLICA_IDENTITY_INDEX) &&
		 OidIsValid(RelationGetReplicaIndex(rel))))
		return;
	if (ident == REPLICA_IDENTITY_DEFAULT)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key for its replica identity", relname),
				 errdetail("With REPLICA IDENTITY DEFAULT, UPDATE and DELETE log the primary key, which is how the stream tells rows apart."),
				 errhint("Add a primary key, or run ALTER TABLE %s REPLICA IDENTITY USING INDEX (a unique index on NOT NULL columns) or REPLICA IDENTITY FULL.",
						 qualname)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("table \"%s\" has REPLICA IDENTITY %s", relname,
					ident == REPLICA_IDENTITY_INDEX ? "USING INDEX, but the index is gone" : "NOTHING"),
			 errdetail("UPDATE and DELETE on it log no key, so the stream cannot tell which row changed."),
			 errhint("Run ALTER TABLE %s REPLICA IDENTITY DEFAULT (with a primary key), REPLICA IDENTITY USING INDEX, or REPLICA IDENTITY FULL.",
					 qualname)));
}

/*
 * Tables a shape can be added on: ordinary, permanent, user tables whose
 * UPDATE and DELETE log a key (CheckReplicaIdentity), visible to the caller
 * without row level security.
 */
static void
CheckTable(Relation rel, bool identity)
{
	const char *relname = RelationGetRelationName(rel);
	Oid			relid = RelationGetRelid(rel);

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot add a shape on partitioned table \"%s\"", relname),
				 errdetail("Changes to a partitioned table are decoded as changes to its partitions."),
				 errhint("Add the shape on each partition.")));
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot add a shape on relation \"%s\"", relname),
				 errdetail_relkind_not_supported(rel->rd_rel->relkind)));
	if (IsCatalogRelation(rel) || relid == SrShapesRelid(false))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot add a shape on catalog table \"%s\"", relname)));
	if (rel->rd_rel->relpersistence != RELPERSISTENCE_PERMANENT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot add a shape on %s table \"%s\"",
						rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP ?
						"temporary" : "unlogged", relname),
				 errdetail("Changes to temporary and unlogged tables are not written to the WAL, so they are never decoded.")));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT,
								  ACLMASK_ANY) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", relname),
				 errdetail("Adding a shape needs SELECT on the table, or on every column the shape reads or sends.")));
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot add a shape on table \"%s\"", relname),
				 errdetail("Row level security applies to the current user on this table, and a shape would route rows its policies hide."),
				 errhint("Add the shape as a role that bypasses row level security, or disable row level security on the table.")));
	if (identity)
		CheckReplicaIdentity(rel);
}

/* Columns named in add_shape()'s columns argument, ascending, no repeats */
static int
ParseColumns(Relation rel, ArrayType *arr, AttrNumber **out)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			count = 0;
	Bitmapset  *seen = NULL;
	int			attno;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *name;
		AttrNumber	a;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("column names of a shape must not be null")));
		name = TextDatumGetCString(elems[i]);
		a = get_attnum(RelationGetRelid(rel), name);
		if (a == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							name, RelationGetRelationName(rel))));
		if (a < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("system column \"%s\" cannot be a shape column", name)));
		seen = bms_add_member(seen, a);
	}
	*out = palloc(sizeof(AttrNumber) * Max(bms_num_members(seen), 1));
	attno = -1;
	while ((attno = bms_next_member(seen, attno)) >= 0)
		(*out)[count++] = attno;
	return count;
}

/* SELECT on every column in attnums (1-based), unless on the whole table */
static void
CheckColumnPrivileges(ShapeWriter *w, Bitmapset *attnums)
{
	int			attno = -1;

	if (w->table_select)
		return;
	while ((attno = bms_next_member(attnums, attno)) >= 0)
	{
		if (pg_attribute_aclcheck(RelationGetRelid(w->rel), attno, GetUserId(),
								  ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for table %s",
							RelationGetRelationName(w->rel)),
					 errdetail("The shape reads or sends column \"%s\", and the current user lacks SELECT on it.",
							   get_attname(RelationGetRelid(w->rel), attno, false))));
	}
}

/*
 * concurrently: add_shape_concurrently() registers the shape as pending
 * (if it needs initial members) and takes no lock that writers wait for.
 */
static void
OpenWriter(ShapeWriter *w, FunctionCallInfo fcinfo, bool concurrently)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the table of a shape must not be null")));
	OpenWriterRel(w, PG_GETARG_OID(0), concurrently, false);
}

/*
 * restoring: pg_restore loads the dumped shapes before the post-data
 * section gives the tables their primary keys, so the replica identity is
 * not checked (a table that never gets one is what a table whose key was
 * dropped is to its shapes) and no members are sent: streams created
 * after a restore learn them from resync_shapes(), as for any shape older
 * than the slot.
 */
static void
OpenWriterRel(ShapeWriter *w, Oid relid, bool concurrently, bool restoring)
{
	memset(w, 0, sizeof(ShapeWriter));
	w->rel = try_relation_open(relid, AccessShareLock);
	if (w->rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	CheckTable(w->rel, !restoring);
	w->shapes = table_open(SrShapesRelid(false), RowExclusiveLock);
	w->seqoid = getIdentitySequence(RelationGetRelid(w->shapes),
									Anum_shapes_shape_id, false);
	w->table_select = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;

	w->keyattrs = SrKeyColumns(w->rel);

	/*
	 * Without the old row in the WAL, streams learn a new shape's rows from
	 * its initial members; writers wait from before the search to commit.
	 */
	w->members = SrMembersNeeded(w->rel) && !restoring;
	w->pending = w->members && concurrently;
	if (w->pending)
		w->members = false;
	if (w->members)
		SrMembersLock(w->rel);
}

static void
CloseWriter(ShapeWriter *w)
{
	/* Other backends' shape caches follow the catalog through this. */
	CacheInvalidateRelcacheByRelid(RelationGetRelid(w->shapes));
	table_close(w->shapes, RowExclusiveLock);
	relation_close(w->rel, AccessShareLock);
	CommandCounterIncrement();
}

static int64
AddOneShape(ShapeWriter *w, const char *clause, ArrayType *columns)
{
	TupleDesc	rdesc = RelationGetDescr(w->rel);
	SrClause	c = {NULL, NULL, NULL};
	AttrNumber *cols = NULL;
	int			ncols = -1;
	Bitmapset  *needed;
	Datum		values[Natts_shapes];
	bool		nulls[Natts_shapes];
	HeapTuple	tup;
	int64		shape_id;

	if (clause != NULL)
		SrValidateClause(w->rel, clause, &c);

	/* The caller must be able to see what the shape reads and sends. */
	needed = bms_union(c.attnums, w->keyattrs);
	if (columns != NULL)
	{
		ncols = ParseColumns(w->rel, columns, &cols);
		for (int i = 0; i < ncols; i++)
			needed = bms_add_member(needed, cols[i]);
	}
	else
	{
		for (int i = 0; i < rdesc->natts; i++)
			if (!TupleDescAttr(rdesc, i)->attisdropped)
				needed = bms_add_member(needed, i + 1);
	}
	CheckColumnPrivileges(w, needed);

	memset(nulls, false, sizeof(nulls));
	shape_id = w->restored_id ? w->restored_id : nextval_internal(w->seqoid, false);
	values[Anum_shapes_shape_id - 1] = Int64GetDatum(shape_id);
	values[Anum_shapes_relid - 1] = ObjectIdGetDatum(RelationGetRelid(w->rel));
	if (c.qual != NULL)
	{
		values[Anum_shapes_where_clause - 1] = CStringGetTextDatum(c.where_clause);
		values[Anum_shapes_qual - 1] = CStringGetTextDatum(nodeToString(c.qual));
	}
	else
		nulls[Anum_shapes_where_clause - 1] = nulls[Anum_shapes_qual - 1] = true;
	if (ncols >= 0)
	{
		Datum	   *d = palloc(sizeof(Datum) * Max(ncols, 1));

		for (int i = 0; i < ncols; i++)
			d[i] = Int16GetDatum(cols[i]);
		values[Anum_shapes_columns - 1] =
			PointerGetDatum(construct_array(d, ncols, INT2OID, 2, true,
											TYPALIGN_SHORT));
	}
	else
		nulls[Anum_shapes_columns - 1] = true;
	values[Anum_shapes_owner - 1] =
		ObjectIdGetDatum(w->restored_id ? w->restored_owner : GetUserId());
	values[Anum_shapes_created_at - 1] =
		TimestampTzGetDatum(w->restored_id ? w->restored_at :
							GetCurrentTransactionStartTimestamp());
	values[Anum_shapes_pending - 1] = BoolGetDatum(w->pending);

	tup = heap_form_tuple(RelationGetDescr(w->shapes), values, nulls);
	CatalogTupleInsert(w->shapes, tup);
	heap_freetuple(tup);
	/* after the catalog row in the WAL: streams know the shape by then */
	if (w->members)
		SrMembersSend(w->rel, RelationGetRelid(w->shapes), shape_id,
					  c.qual ? c.where_clause : NULL, SR_MEMBERS_ADDED);
	return shape_id;
}

/*
 * One shape from the arguments (rel, where_clause, columns), the common
 * part of add_shape() and add_shape_concurrently()'s first step; *pending:
 * registered pending (concurrently, on a table that needs members).
 */
static int64
AddShapeOfArgs(FunctionCallInfo fcinfo, bool concurrently, bool *pending)
{
	ShapeWriter w;
	int64		shape_id;

	OpenWriter(&w, fcinfo, concurrently);
	shape_id = AddOneShape(&w,
						   PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
						   PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2));
	*pending = w.pending;
	CloseWriter(&w);
	return shape_id;
}

/*
 * A shape as pg_dump wrote it (restore.c): the checks and initial members
 * of add_shape(), under the shape's own id, owner and creation time.
 */
void
SrRestoreShape(Oid relid, int64 shape_id, const char *where_clause,
			   ArrayType *columns, Oid owner, TimestampTz created_at)
{
	ShapeWriter w;

	OpenWriterRel(&w, relid, false, true);
	w.restored_id = shape_id;
	w.restored_owner = owner;
	w.restored_at = created_at;
	AddOneShape(&w, where_clause, columns);
	CloseWriter(&w);
}

PG_FUNCTION_INFO_V1(add_shape);
Datum
add_shape(PG_FUNCTION_ARGS)
{
	bool		pending;

	PG_RETURN_INT64(AddShapeOfArgs(fcinfo, false, &pending));
}

int64
SrAddShapeConcurrently(FunctionCallInfo fcinfo, bool *pending)
{
	return AddShapeOfArgs(fcinfo, true, pending);
}

/*
 * add_shape_concurrently()'s second step: the pending shape's initial
 * members under a snapshot taken now, and the row no longer pending, in one
 * transaction.  False if the shape is gone (removed meanwhile).
 */
bool
SrActivateShape(int64 shape_id, Oid *relid)
{
	Relation	shapes = table_open(SrShapesRelid(false), RowExclusiveLock);
	SysScanDesc scan;
	HeapTuple	tup = LookupShape(shapes, shape_id, &scan);
	Datum		values[Natts_shapes] = {0};
	bool		nulls[Natts_shapes] = {0};
	bool		replace[Natts_shapes] = {0};
	HeapTuple	newtup;
	SrShapeDef	def;
	Relation	rel;
	char	   *clause;

	if (!HeapTupleIsValid(tup))
	{
		systable_endscan(scan);
		table_close(shapes, RowExclusiveLock);
		return false;
	}
	SrShapeDefFromTuple(tup, RelationGetDescr(shapes), &def);
	*relid = def.relid;
	rel = try_relation_open(def.relid, AccessShareLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the table of shape " INT64_FORMAT " was dropped while the shape was being added",
						shape_id)));
	CheckTable(rel, true);
	clause = SrQualClause(def.qual, rel);

	values[Anum_shapes_pending - 1] = BoolGetDatum(false);
	replace[Anum_shapes_pending - 1] = true;
	newtup = heap_modify_tuple(tup, RelationGetDescr(shapes), values, nulls,
							   replace);
	CatalogTupleUpdate(shapes, &newtup->t_self, newtup);
	systable_endscan(scan);
	/* a table switched to FULL meanwhile needs no members */
	if (def.pending && SrMembersNeeded(rel))
		SrMembersSend(rel, RelationGetRelid(shapes), shape_id, clause,
					  SR_MEMBERS_CONCURRENT);
	CacheInvalidateRelcacheByRelid(RelationGetRelid(shapes));
	relation_close(rel, AccessShareLock);
	table_close(shapes, RowExclusiveLock);
	CommandCounterIncrement();
	return true;
}

/*
 * Delete a shape's row without the owner check (the caller added it, or
 * holds its lock: concurrent.c), if it is there (and pending, if asked)
 */
bool
SrDeleteShape(int64 shape_id, bool only_pending)
{
	Relation	shapes = table_open(SrShapesRelid(false), RowExclusiveLock);
	SysScanDesc scan;
	HeapTuple	tup = LookupShape(shapes, shape_id, &scan);
	bool		found = HeapTupleIsValid(tup) &&
		(!only_pending || SrShapePending(tup, RelationGetDescr(shapes)));

	if (found)
	{
		CatalogTupleDelete(shapes, &tup->t_self);
		CacheInvalidateRelcacheByRelid(RelationGetRelid(shapes));
	}
	systable_endscan(scan);
	table_close(shapes, RowExclusiveLock);
	CommandCounterIncrement();
	return found;
}

/* The ids of pending shapes, through their index */
int64 *
SrPendingShapes(int *n)
{
	Relation	shapes = table_open(SrShapesRelid(false), AccessShareLock);
	SysScanDesc scan;
	HeapTuple	tup;
	ScanKeyData key;
	int			cap = 8;
	int64	   *ids = palloc(sizeof(int64) * cap);

	*n = 0;
	/* a 0.1 catalog (before ALTER EXTENSION UPDATE) has none */
	if (RelationGetDescr(shapes)->natts < Anum_shapes_pending)
	{
		table_close(shapes, AccessShareLock);
		return ids;
	}
	ScanKeyInit(&key, Anum_shapes_pending, BTEqualStrategyNumber, F_BOOLEQ,
				BoolGetDatum(true));
	scan = systable_beginscan(shapes, CatalogObject(SR_SHAPES_PENDING_IDX, false),
							  true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		if (!SrShapePending(tup, RelationGetDescr(shapes)))
			continue;
		if (*n >= cap)
		{
			cap *= 2;
			ids = repalloc(ids, sizeof(int64) * cap);
		}
		ids[(*n)++] = SrShapesHead(tup)->shape_id;
	}
	systable_endscan(scan);
	table_close(shapes, AccessShareLock);
	return ids;
}

/* Which clause of add_shapes() an error is about */
static void
AddShapesErrorCallback(void *arg)
{
	int		   *index = (int *) arg;

	errcontext("WHERE clause %d of add_shapes()", *index + 1);
}

/* Bulk form: one table, many clauses; an error in any adds none. */
PG_FUNCTION_INFO_V1(add_shapes);
Datum
add_shapes(PG_FUNCTION_ARGS)
{
	ShapeWriter w;
	ArrayType  *clauses;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	Datum	   *ids;
	MemoryContext percall,
				old;
	ErrorContextCallback errcallback;
	int			i;

	OpenWriter(&w, fcinfo, false);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the array of WHERE clauses must not be null")));
	clauses = PG_GETARG_ARRAYTYPE_P(1);
	deconstruct_array(clauses, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	ids = palloc(sizeof(Datum) * Max(n, 1));

	percall = AllocSetContextCreate(CurrentMemoryContext, "add_shapes clause",
									ALLOCSET_DEFAULT_SIZES);
	errcallback.callback = AddShapesErrorCallback;
	errcallback.arg = (void *) &i;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(percall);
		ids[i] = Int64GetDatum(AddOneShape(&w,
										   nulls[i] ? NULL : TextDatumGetCString(elems[i]),
										   NULL));
		MemoryContextSwitchTo(old);
		MemoryContextReset(percall);
	}
	error_context_stack = errcallback.previous;
	MemoryContextDelete(percall);
	CloseWriter(&w);
	PG_RETURN_ARRAYTYPE_P(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL,
										  TYPALIGN_DOUBLE));
}

PG_FUNCTION_INFO_V1(remove_shape);
Datum
remove_shape(PG_FUNCTION_ARGS)
{
	int64		shape_id = PG_GETARG_INT64(0);
	Relation	shapes = table_open(SrShapesRelid(false), RowExclusiveLock);
	SysScanDesc scan;
	HeapTuple	tup = LookupShape(shapes, shape_id, &scan);
	bool		found = HeapTupleIsValid(tup);

	if (found)
	{
		SrShapeDef	def;

		SrShapeDefFromTuple(tup, RelationGetDescr(shapes), &def);
		if (!has_privs_of_role(GetUserId(), def.owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of shape " INT64_FORMAT, shape_id),
					 errdetail("Only the role that added a shape, its members, and superusers can remove it.")));
		CatalogTupleDelete(shapes, &tup->t_self);
		CacheInvalidateRelcacheByRelid(RelationGetRelid(shapes));
	}
	systable_endscan(scan);
	table_close(shapes, RowExclusiveLock);
	CommandCounterIncrement();
	PG_RETURN_BOOL(found);
}

typedef struct ResyncItem
{
	Oid			relid;
	int64		shape_id;
	Oid			owner;
	char	   *qual;			/* nodeToString form; NULL = every row */
	bool		pending;		/* add_shape_concurrently() sends them */
} ResyncItem;

static int
CompareResync(const void *a, const void *b)
{
	const ResyncItem *x = a;
	const ResyncItem *y = b;

	if (x->relid != y->relid)
		return x->relid < y->relid ? -1 : 1;
	return (x->shape_id > y->shape_id) - (x->shape_id < y->shape_id);
}

/* The shapes to resync: the ids given (all of them must exist), or all */
static ResyncItem *
ResyncItems(ArrayType *arr, int *nitems)
{
	Relation	shapes = table_open(SrShapesRelid(false), AccessShareLock);
	TupleDesc	desc = RelationGetDescr(shapes);
	SysScanDesc scan;
	HeapTuple	tup;
	int64	   *ids = NULL;
	bool	   *seen = NULL;
	int			nids = 0;
	int			cap = 16;
	ResyncItem *items = palloc(sizeof(ResyncItem) * cap);

	if (arr)
	{
		Datum	   *elems;
		bool	   *nulls;

		deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, &nulls, &nids);
		ids = palloc(sizeof(int64) * Max(nids, 1));
		for (int i = 0; i < nids; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("shape ids must not be null")));
			ids[i] = DatumGetInt64(elems[i]);
		}
		qsort(ids, nids, sizeof(int64), SrCompareInt64);
		seen = palloc0(sizeof(bool) * Max(nids, 1));
	}

	*nitems = 0;
	scan = systable_beginscan(shapes, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_sr_shapes_head head = SrShapesHead(tup);
		int64	   *hit = NULL;
		bool		isnull;
		Datum		d;
		ResyncItem *it;

		CHECK_FOR_INTERRUPTS();
		if (ids && (hit = bsearch(&head->shape_id, ids, nids, sizeof(int64),
								  SrCompareInt64)) == NULL)
			continue;
		if (hit)
			seen[hit - ids] = true;
		if (*nitems >= cap)
		{
			cap *= 2;
			items = repalloc(items, sizeof(ResyncItem) * cap);
		}
		it = &items[(*nitems)++];
		it->relid = head->relid;
		it->shape_id = head->shape_id;
		d = heap_getattr(tup, Anum_shapes_owner, desc, &isnull);
		it->owner = isnull ? InvalidOid : DatumGetObjectId(d);
		d = heap_getattr(tup, Anum_shapes_qual, desc, &isnull);
		it->qual = isnull ? NULL : TextDatumGetCString(d);
		it->pending = SrShapePending(tup, desc);
	}
	systable_endscan(scan);
	table_close(shapes, AccessShareLock);

	for (int i = 0; i < nids; i++)
		if (!seen[i])
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("shape " INT64_FORMAT " does not exist", ids[i])));
	qsort(items, *nitems, sizeof(ResyncItem), CompareResync);
	return items;
}

/*
 * Send the initial members of existing shapes again, for streams that lack
 * them (a slot created after the shape, or whose saved state was lost).
 * Tables are locked in relid order, each SHARE to commit.  Shapes on
 * tables with REPLICA IDENTITY FULL need none and are not counted; with
 * no ids, shapes the caller does not own are skipped.
 */
PG_FUNCTION_INFO_V1(resync_shapes);
Datum
resync_shapes(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_ARGISNULL(0) ? NULL : PG_GETARG_ARRAYTYPE_P(0);
	Oid			catalog = SrShapesRelid(false);
	int			nitems;
	ResyncItem *items = ResyncItems(arr, &nitems);
	int32		count = 0;
	Relation	rel = NULL;

	/* before any lock: a pending shape gets its members when it is done */
	for (int i = 0; arr && i < nitems; i++)
		if (items[i].pending)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("shape " INT64_FORMAT " is being added by add_shape_concurrently()",
							items[i].shape_id),
					 errdetail("Its initial members are sent when it is done.")));

	for (int i = 0; i < nitems; i++)
	{
		ResyncItem *it = &items[i];

		if (rel == NULL || RelationGetRelid(rel) != it->relid)
		{
			if (rel)
				relation_close(rel, AccessShareLock);
			rel = try_relation_open(it->relid, AccessShareLock);
			if (rel && !SrMembersNeeded(rel))
			{
				relation_close(rel, AccessShareLock);
				rel = NULL;
			}
			if (rel == NULL)
			{
				/* skip the table's other shapes */
				while (i + 1 < nitems && items[i + 1].relid == it->relid)
					i++;
				continue;
			}
			CheckReplicaIdentity(rel);
			SrMembersLock(rel);
		}
		if (!has_privs_of_role(GetUserId(), it->owner))
		{
			if (arr == NULL)
				continue;
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of shape " INT64_FORMAT, it->shape_id),
					 errdetail("Only the role that added a shape, its members, and superusers can resync it.")));
		}
		if (it->pending)
			continue;
		SrMembersSend(rel, catalog, it->shape_id, SrQualClause(it->qual, rel),
					  SR_MEMBERS_RESYNC);
		count++;
	}
	if (rel)
		relation_close(rel, AccessShareLock);
	PG_RETURN_INT32(count);
}
