/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  The shape catalog, shape_router.shapes, and the SQL functions that
 *	  write it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_CATALOG_H
#define SR_CATALOG_H

#include "access/htup.h"
#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "fmgr.h"
#include "nodes/bitmapset.h"
#include "nodes/nodes.h"
#include "utils/array.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"
#include "utils/snapshot.h"

#define SR_SHAPES_TABLE		"shapes"

/* Columns of shape_router.shapes */
#define Anum_shapes_shape_id		1
#define Anum_shapes_relid			2
#define Anum_shapes_where_clause	3
#define Anum_shapes_qual			4
#define Anum_shapes_columns			5
#define Anum_shapes_owner			6
#define Anum_shapes_created_at		7
#define Anum_shapes_pending			8	/* since 0.2: absent in a 0.1 catalog */
#define Natts_shapes				8

/*
 * The leading columns of a shapes row, fixed-width and NOT NULL: read in
 * place, like a system catalog's struct (GETSTRUCT), not column by column.
 */
typedef struct FormData_sr_shapes_head
{
	int64		shape_id;
	Oid			relid;
} FormData_sr_shapes_head;

typedef FormData_sr_shapes_head *Form_sr_shapes_head;

#define SrShapesHead(tup) ((Form_sr_shapes_head) GETSTRUCT(tup))

/* Errors out unless the catalog's leading columns are as SrShapesHead reads them */
extern void SrCheckShapesDesc(TupleDesc desc);

/* One catalog row, decoded */
typedef struct SrShapeDef
{
	int64		shape_id;
	Oid			relid;
	char	   *qual;			/* nodeToString form; NULL = every row */
	int			ncolumns;		/* -1 = all columns */
	AttrNumber *columns;		/* projected columns, ascending */
	Oid			owner;
	bool		pending;		/* add_shape_concurrently() is not done */
} SrShapeDef;

typedef void (*SrShapeCallback) (const SrShapeDef *def, void *arg);
typedef bool (*SrShapeIdFilter) (int64 shape_id, void *arg);

extern Oid	SrShapesRelid(bool missing_ok);
extern Bitmapset *SrKeyColumns(Relation rel);
extern void SrShapeDefFromTuple(HeapTuple tup, TupleDesc desc, SrShapeDef *def);
extern bool SrShapePending(HeapTuple tup, TupleDesc desc);
extern char *SrQualClause(const char *qual, Relation rel);
extern void SrCatalogForEachShape(Oid relid, Snapshot snapshot,
								  SrShapeIdFilter filter,
								  SrShapeCallback callback, void *arg);
extern bool SrCatalogGetShape(int64 shape_id, SrShapeDef *def);

/* add_shape_concurrently()'s steps (concurrent.c), each in its transaction */
extern int64 SrAddShapeConcurrently(FunctionCallInfo fcinfo, bool *pending);
extern bool SrActivateShape(int64 shape_id, Oid *relid);
extern bool SrDeleteShape(int64 shape_id, bool only_pending);
extern int64 *SrPendingShapes(int *n);

/* pg_restore of a dumped shape (restore.c) */
extern void SrRestoreShape(Oid relid, int64 shape_id, const char *where_clause,
						   ArrayType *columns, Oid owner, TimestampTz created_at);

#endif							/* SR_CATALOG_H */
