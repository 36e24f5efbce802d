/*-------------------------------------------------------------------------
 *
 * router.c
 *	  A table's compiled shapes, kept in shape_id order, and matching a row
 *	  against them.
 *
 * Matching is a scan over the table's shapes for now; the predicate index
 * replaces the scan with candidates from index keys.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/readfuncs.h"
#include "utils/memutils.h"

#include "eval.h"
#include "router.h"
#include "sqlfuncs.h"

void
SrRouterInit(void)
{
	SrSqlFuncsInit();
}

SrTableRouter *
SrRouterCreate(Oid relid, TupleDesc desc, MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "shape_router table",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SrTableRouter *router = palloc0(sizeof(SrTableRouter));

	router->relid = relid;
	router->cxt = cxt;
	router->evalcxt = AllocSetContextCreate(cxt, "shape_router evaluation",
											ALLOCSET_DEFAULT_SIZES);
	router->desc = CreateTupleDescCopy(desc);
	router->maxshapes = 16;
	router->shapes = palloc(sizeof(SrShape) * router->maxshapes);
	MemoryContextSwitchTo(old);
	return router;
}

void
SrRouterDestroy(SrTableRouter *router)
{
	MemoryContextDelete(router->cxt);
}

/* Index of the first shape with shape_id >= id */
static int
LowerBound(SrTableRouter *router, int64 id)
{
	int			lo = 0,
				hi = router->nshapes;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (router->shapes[mid].shape_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

SrShape *
SrRouterFindShape(SrTableRouter *router, int64 shape_id)
{
	int			i = LowerBound(router, shape_id);

	if (i < router->nshapes && router->shapes[i].shape_id == shape_id)
		return &router->shapes[i];
	return NULL;
}

/*
 * Compile and add one shape.  A shape whose qual no longer fits the table
 * is kept, marked invalid with the reason, so that callers can report it.
 */
SrShape *
SrRouterAddShape(SrTableRouter *router, const SrShapeDef *def)
{
	MemoryContext old = MemoryContextSwitchTo(router->cxt);
	SrShape    *shape;
	int			i = LowerBound(router, def->shape_id);

	if (i < router->nshapes && router->shapes[i].shape_id == def->shape_id)
		elog(ERROR, "shape " INT64_FORMAT " is already loaded", def->shape_id);
	if (router->nshapes >= router->maxshapes)
	{
		router->maxshapes *= 2;
		router->shapes = repalloc(router->shapes,
								  sizeof(SrShape) * router->maxshapes);
	}
	memmove(&router->shapes[i + 1], &router->shapes[i],
			sizeof(SrShape) * (router->nshapes - i));
	router->nshapes++;
	shape = &router->shapes[i];
	memset(shape, 0, sizeof(SrShape));
	shape->shape_id = def->shape_id;
	shape->ncolumns = def->ncolumns;
	if (def->ncolumns > 0)
	{
		shape->columns = palloc(sizeof(AttrNumber) * def->ncolumns);
		memcpy(shape->columns, def->columns, sizeof(AttrNumber) * def->ncolumns);
	}
	shape->prog = SrCompile(def->qual ? stringToNode(def->qual) : NULL,
							router->desc, &shape->invalid_reason);
	MemoryContextSwitchTo(old);
	return shape;
}

bool
SrRouterRemoveShape(SrTableRouter *router, int64 shape_id)
{
	int			i = LowerBound(router, shape_id);

	if (i >= router->nshapes || router->shapes[i].shape_id != shape_id)
		return false;
	/* The program's memory stays in router->cxt until the router goes. */
	memmove(&router->shapes[i], &router->shapes[i + 1],
			sizeof(SrShape) * (router->nshapes - i - 1));
	router->nshapes--;
	return true;
}

/*
 * Fill ids (room for nshapes) with the ascending ids of the valid shapes the
 * row in slot matches; return how many.
 */
int
SrRouterMatch(SrTableRouter *router, TupleTableSlot *slot,
			  ExprContext *econtext, int64 *ids)
{
	MemoryContext old = MemoryContextSwitchTo(router->evalcxt);
	int			n = 0;

	for (int i = 0; i < router->nshapes; i++)
	{
		SrShape    *shape = &router->shapes[i];

		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		if (shape->prog == NULL)
			continue;
		if (SrEvalProgram(shape->prog, slot, econtext) == SR_TRUE)
			ids[n++] = shape->shape_id;
		MemoryContextReset(router->evalcxt);
		ResetExprContext(econtext);
	}
	MemoryContextSwitchTo(old);
	return n;
}

/*
 * Both sides of an UPDATE.  A shape none of whose columns are in changed
 * (1-based) keeps its old answer without evaluating the new row.
 */
void
SrRouterMatchUpdate(SrTableRouter *router, TupleTableSlot *oldslot,
					TupleTableSlot *newslot, const Bitmapset *changed,
					ExprContext *econtext, int64 *oldids, int *nold,
					int64 *newids, int *nnew)
{
	MemoryContext old = MemoryContextSwitchTo(router->evalcxt);

	*nold = *nnew = 0;
	for (int i = 0; i < router->nshapes; i++)
	{
		SrShape    *shape = &router->shapes[i];
		bool		was,
					is;

		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		if (shape->prog == NULL)
			continue;
		was = SrEvalProgram(shape->prog, oldslot, econtext) == SR_TRUE;
		if (bms_overlap(shape->prog->attnums, changed))
			is = SrEvalProgram(shape->prog, newslot, econtext) == SR_TRUE;
		else
			is = was;
		if (was)
			oldids[(*nold)++] = shape->shape_id;
		if (is)
			newids[(*nnew)++] = shape->shape_id;
		MemoryContextReset(router->evalcxt);
		ResetExprContext(econtext);
	}
	MemoryContextSwitchTo(old);
}
