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
#include "predindex.h"
#include "router.h"
#include "slotstats.h"
#include "sortutil.h"

#define SR_ARENA_CLASSES	64		/* chunk sizes up to 64 * MAXIMUM_ALIGNOF */

struct SrTableRouter
{
	Oid			relid;
	MemoryContext cxt;			/* everything below lives here */
	MemoryContext evalcxt;		/* reset after each evaluation */
	MemoryContext compilecxt;	/* reset after each shape is compiled */
	/* flat programs: an arena in cxt, freed chunks kept by size */
	char	   *arena_cur;
	Size		arena_left;
	void	   *arena_free[SR_ARENA_CLASSES];
	TupleDesc	desc;			/* the table's columns when compiled */
	int			nshapes;
	int			maxshapes;
	SrShape    *shapes;			/* ascending shape_id (but see bulk) */
	bool		bulk;			/* loading: shapes appended, sorted at the end */
	int			nremoved;		/* tombstones among shapes */
	SrPredIndex *index;			/* candidates for a row */
	TupleTableSlot *slots[4];	/* per change: old/new, heap/virtual */
	SrIdBuf		cand;			/* index lookup results */
	/* per change, room for the distinct candidates; grown as needed */
	int		   *work;			/* positions in shapes of the candidates */
	int64	   *idbuf[5];		/* id lists: old, new, and three for callers */
	int			workcap;
	SrPathCounters *counters;	/* the stream's, or uncounted */
};

/* where routers outside a stream count (matching_shapes): never read */
static SrPathCounters uncounted;

static void ReserveWork(SrTableRouter *router, int n);
static void MatchWork(SrTableRouter *router, int nwork,
					  TupleTableSlot *oldslot, TupleTableSlot *newslot,
					  const Bitmapset *changed, ExprContext *econtext,
					  int64 **oldidsp, int *nold, int64 **newidsp, int *nnew,
					  SrEvalErrorHook on_error, void *arg);

SrTableRouter *
SrRouterCreate(Oid relid, TupleDesc desc, int expected, MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "shape_router table",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SrTableRouter *router = palloc0(sizeof(SrTableRouter));

	router->relid = relid;
	router->cxt = cxt;
	router->evalcxt = AllocSetContextCreate(cxt, "shape_router evaluation",
											ALLOCSET_DEFAULT_SIZES);
	router->compilecxt = AllocSetContextCreate(cxt, "shape_router compile",
											   ALLOCSET_DEFAULT_SIZES);

	/* with constraints: attmissingval fills columns added since a row was written */
	router->desc = CreateTupleDescCopyConstr(desc);
	/* sized for the shapes about to be added: no doubling slack */
	router->maxshapes = Max(expected, 16);
	router->shapes = palloc(sizeof(SrShape) * router->maxshapes);
	router->index = SrPredIndexCreate();
	router->cand.cxt = cxt;
	router->counters = &uncounted;
	ReserveWork(router, 16);
	/* Reused for every change; they hold no tuple between changes. */
	router->slots[0] = MakeSingleTupleTableSlot(router->desc, &TTSOpsHeapTuple);
	router->slots[1] = MakeSingleTupleTableSlot(router->desc, &TTSOpsHeapTuple);
	router->slots[2] = MakeSingleTupleTableSlot(router->desc, &TTSOpsVirtual);
	router->slots[3] = MakeSingleTupleTableSlot(router->desc, &TTSOpsVirtual);
	MemoryContextSwitchTo(old);
	return router;
}

void
SrRouterSetCounters(SrTableRouter *router, SrPathCounters *counters)
{
	router->counters = counters ? counters : &uncounted;
}

void
SrRouterDestroy(SrTableRouter *router)
{
	for (int i = 0; i < 4; i++)
		ExecDropSingleTupleTableSlot(router->slots[i]);
	MemoryContextDelete(router->cxt);
}

/*
 * Id buffer number which (2-4 are the caller's), with room for as many ids
 * as the last match had candidates: sized by the matches, not by the number
 * of shapes.
 */
int64 *
SrRouterIdBuffer(SrTableRouter *router, int which)
{
	Assert(which >= 0 && which < 5);
	return router->idbuf[which];
}

/* Room for n candidates in work and every id buffer */
static void
ReserveWork(SrTableRouter *router, int n)
{
	int			cap;

	if (n <= router->workcap)
		return;
	cap = Max(Max(n, router->workcap * 2), 16);
	if (router->work)
		pfree(router->work);
	router->work = MemoryContextAlloc(router->cxt, sizeof(int) * cap);
	for (int i = 0; i < 5; i++)
	{
		if (router->idbuf[i])
			pfree(router->idbuf[i]);
		router->idbuf[i] = MemoryContextAlloc(router->cxt, sizeof(int64) * cap);
	}
	router->workcap = cap;
}

/*
 * The flat programs' arena.  Chunks carry no header (a program knows its
 * size) and are not rounded up: at 100,000 shapes, palloc's chunk headers
 * and power-of-two rounding would be a third of the memory.  A freed chunk
 * goes to the free list of its size and is reused for the next program of
 * that size; blocks go back with the router.
 */
#define SR_ARENA_BLOCK	(64 * 1024)

static void *
ArenaAlloc(SrTableRouter *router, Size size)
{
	int			cls = MAXALIGN(size) / MAXIMUM_ALIGNOF;
	void	   *p;

	size = MAXALIGN(size);
	if (cls >= SR_ARENA_CLASSES)
		return MemoryContextAlloc(router->cxt, size);
	if (router->arena_free[cls])
	{
		p = router->arena_free[cls];
		router->arena_free[cls] = *(void **) p;
		return p;
	}
	if (router->arena_left < size)
	{
		router->arena_cur = MemoryContextAlloc(router->cxt, SR_ARENA_BLOCK);
		router->arena_left = SR_ARENA_BLOCK;
	}
	p = router->arena_cur;
	router->arena_cur += size;
	router->arena_left -= size;
	return p;
}

static void
ArenaFree(SrTableRouter *router, void *p, Size size)
{
	int			cls = MAXALIGN(size) / MAXIMUM_ALIGNOF;

	if (cls >= SR_ARENA_CLASSES)
	{
		pfree(p);
		return;
	}
	*(void **) p = router->arena_free[cls];
	router->arena_free[cls] = p;
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

	if (i < router->nshapes && router->shapes[i].shape_id == shape_id &&
		!router->shapes[i].removed)
		return &router->shapes[i];
	return NULL;
}

/*
 * Access paths.  A shape is filed under the path of least estimated cost:
 * its selectivity (the fraction of rows that make the shape a candidate,
 * keys.c) times one plus the shapes already filed under the same key.  The
 * second factor is the index's own evidence: with no statistics, equality
 * on a value 10,000 shapes share ("status = 'open'") is a crowded home,
 * every row with that value making all of them candidates at once.
 */
#define SR_REBALANCE_FROM	16	/* a posting list this long looks for movers */
#define SR_REBALANCE_MOVES	4	/* at most this many per insertion */
#define SR_REBALANCE_PEERS	16

static double
PathCost(SrTableRouter *router, SrShape *shape, int path, bool filed,
		 int64 *peers, int *npeers, int *loadp)
{
	int			n;
	const SrIndexKey *keys = SrKeyPath(shape->keys, shape->nkeys, path, &n);
	int			load = SrPredIndexLoad(router->index, keys, n, peers,
									   peers ? SR_REBALANCE_PEERS : 0, npeers);

	/* a filed shape does not count against its own path */
	if (filed && path == shape->path && load > 0)
		load--;
	if (loadp)
		*loadp = load;
	return (double) keys->sel * (1 + load);
}

static int
CheapestPath(SrTableRouter *router, SrShape *shape, bool filed)
{
	int			npaths = SrKeyPathCount(shape->keys, shape->nkeys);
	int			best = 0;
	double		bestcost = 0;
	int			dummy;

	for (int p = 0; p < npaths; p++)
	{
		double		cost = PathCost(router, shape, p, filed, NULL, &dummy, NULL);

		/* ties: the earlier path (paths come in a canonical order) */
		if (p == 0 || cost < bestcost)
			best = p, bestcost = cost;
	}
	return best;
}

static void
FileShape(SrTableRouter *router, SrShape *shape, int path)
{
	int			n;
	const SrIndexKey *keys = SrKeyPath(shape->keys, shape->nkeys, path, &n);

	shape->path = path;
	SrPredIndexInsert(router->index, shape->shape_id, keys, n);
}

/*
 * A shape filed early under a key that has since become crowded moves to
 * a cheaper path: when a posting list reaches a power of two from
 * SR_REBALANCE_FROM on, up to SR_REBALANCE_MOVES of its oldest shapes are
 * looked at again.  Amortised O(1) per insertion, never a rebuild.
 */
static void
Rebalance(SrTableRouter *router, SrShape *shape, const int64 *peers, int npeers)
{
	int			moves = 0;

	for (int i = 0; i < npeers && moves < SR_REBALANCE_MOVES; i++)
	{
		SrShape    *peer;
		int			best;

		if (peers[i] == shape->shape_id ||
			(peer = SrRouterFindShape(router, peers[i])) == NULL ||
			peer->prog == NULL ||
			SrKeyPathCount(peer->keys, peer->nkeys) < 2)
			continue;
		best = CheapestPath(router, peer, true);
		if (best == peer->path)
			continue;
		{
			int			n;
			const SrIndexKey *keys = SrKeyPath(peer->keys, peer->nkeys,
											   peer->path, &n);

			SrPredIndexDelete(router->index, peer->shape_id, keys, n);
		}
		FileShape(router, peer, best);
		moves++;
	}
}

static void
IndexShape(SrTableRouter *router, SrShape *shape)
{
	int			path = 0;
	int64		peers[SR_REBALANCE_PEERS];
	int			npeers = 0,
				load = 0;

	if (shape->nkeys > 0)
	{
		path = CheapestPath(router, shape, false);
		PathCost(router, shape, path, false, peers, &npeers, &load);
	}
	FileShape(router, shape, path);
	if (load + 1 >= SR_REBALANCE_FROM && ((load + 1) & load) == 0)
		Rebalance(router, shape, peers, npeers);
}

/*
 * explain_shape's access lines: the path the shape is filed under, then why
 * (its estimated selectivity and the shapes sharing its key), then every
 * other path with the same figures.
 */
void
SrRouterExplainAccess(SrTableRouter *router, SrShape *shape, StringInfo buf)
{
	int			npaths = SrKeyPathCount(shape->keys, shape->nkeys);
	int			order[SR_MAX_PATHS];
	int			n = 0;

	if (shape->nkeys == 0)
	{
		SrExplainKeys(NULL, 0, router->desc, buf);
		return;
	}
	order[n++] = shape->path;
	for (int p = 0; p < npaths; p++)
		if (p != shape->path)
			order[n++] = p;
	for (int i = 0; i < n; i++)
	{
		int			nk,
					load,
					dummy;
		const SrIndexKey *keys = SrKeyPath(shape->keys, shape->nkeys,
										   order[i], &nk);
		double		cost = PathCost(router, shape, order[i], true, NULL,
									&dummy, &load);

		if (i == 1)
			appendStringInfoString(buf, "\nother paths:");
		if (i > 0)
			appendStringInfoString(buf, "\n  ");
		SrExplainKeys(keys, nk, router->desc, buf);
		appendStringInfo(buf, "%sselectivity %.3g (%s), %d other shape%s under the key, cost %.3g",
						 i == 0 ? "\nchosen: " : ": ", keys->sel,
						 keys->sel_stats ? "statistics" : "default for the operator",
						 load, load == 1 ? "" : "s", cost);
	}
}

/*
 * A new, zeroed SrShape in the array for shape_id, with its columns (in
 * router->cxt, which is current)
 */
static SrShape *
NewShape(SrTableRouter *router, int64 shape_id, const AttrNumber *columns,
		 int ncolumns)
{
	SrShape    *shape;
	int			i = router->bulk ? 0 : LowerBound(router, shape_id);

	if (router->bulk)
		i = router->nshapes;
	else if (i < router->nshapes && router->shapes[i].shape_id == shape_id)
	{
		if (!router->shapes[i].removed)
			elog(ERROR, "shape " INT64_FORMAT " is already loaded", shape_id);
		/* the id's tombstone takes it back */
		router->nremoved--;
		router->nshapes--;
		memmove(&router->shapes[i], &router->shapes[i + 1],
				sizeof(SrShape) * (router->nshapes - i));
	}
	if (router->nshapes >= router->maxshapes)
	{
		router->maxshapes *= 2;
		router->shapes = repalloc(router->shapes,
								  sizeof(SrShape) * router->maxshapes);
	}
	/* new ids are the highest: appended, the memmove is empty */
	memmove(&router->shapes[i + 1], &router->shapes[i],
			sizeof(SrShape) * (router->nshapes - i));
	router->nshapes++;
	shape = &router->shapes[i];
	memset(shape, 0, sizeof(SrShape));
	shape->shape_id = shape_id;
	shape->ncolumns = ncolumns;
	if (ncolumns > 0)
	{
		shape->columns = palloc(sizeof(AttrNumber) * ncolumns);
		memcpy(shape->columns, columns, sizeof(AttrNumber) * ncolumns);
	}
	return shape;
}

/*
 * A shape compiled by an earlier stream (shapecache.c): its flat chunk,
 * saved from address old, with its keys at byte keyoff.
 */
SrShape *
SrRouterAddFlatShape(SrTableRouter *router, int64 shape_id,
					 const AttrNumber *columns, int ncolumns,
					 const void *chunk, Size size, Size keyoff, int nkeys,
					 const void *old)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(router->cxt);
	SrShape    *shape = NewShape(router, shape_id, columns, ncolumns);
	char	   *p = ArenaAlloc(router, size);

	memcpy(p, chunk, size);
	shape->prog = (SrProgram *) p;
	shape->keys = nkeys > 0 ? (SrIndexKey *) (p + keyoff) : NULL;
	shape->nkeys = nkeys;
	SrProgramRelocate(shape->prog, shape->keys, nkeys, old);
	if (!router->bulk)
		IndexShape(router, shape);
	MemoryContextSwitchTo(oldcxt);
	return shape;
}

/*
 * Compile and add one shape.  A shape whose qual no longer fits the table
 * is kept, marked invalid with the reason, so that callers can report it.
 */
SrShape *
SrRouterAddShape(SrTableRouter *router, const SrShapeDef *def)
{
	MemoryContext old = MemoryContextSwitchTo(router->cxt);
	SrShape    *shape = NewShape(router, def->shape_id, def->columns,
								 def->ncolumns);

	/*
	 * Compile in a scratch context and keep one flat chunk; only programs
	 * that need the qual tree are compiled again where they stay.
	 */
	{
		Node	   *qual;
		SrProgram  *prog;
		SrIndexKey *keys;
		int			nkeys = 0;
		char	   *reason;

		MemoryContextSwitchTo(router->compilecxt);
		qual = def->qual ? stringToNode(def->qual) : NULL;
		prog = SrCompile(qual, router->desc, &reason);
		if (prog)
		{
			Size		size;

			nkeys = SrCompileKeys(qual, router->relid, &keys);
			size = SrProgramFlatSize(prog, keys, nkeys);
			if (size > 0)
				shape->prog = SrProgramFlatten(prog, keys, nkeys,
											   ArenaAlloc(router, size),
											   &shape->keys);
		}
		MemoryContextSwitchTo(router->cxt);
		if (prog && shape->prog)
			shape->nkeys = nkeys;
		else if (prog)
		{
			/*
			 * A context of its own, found again from the program's chunk
			 * (GetMemoryChunkContext), so that removal frees the qual tree,
			 * program and keys without a field in every SrShape.
			 */
			MemoryContext pcxt = AllocSetContextCreate(router->cxt,
													   "shape_router program",
													   ALLOCSET_SMALL_SIZES);

			MemoryContextSwitchTo(pcxt);
			qual = stringToNode(def->qual);
			shape->prog = SrCompile(qual, router->desc, &reason);
			shape->nkeys = SrCompileKeys(qual, router->relid, &shape->keys);
			MemoryContextSwitchTo(router->cxt);
		}
		else
			shape->invalid_reason = pstrdup(reason);
		MemoryContextReset(router->compilecxt);
		/* in bulk, SrRouterEndBulk indexes every shape at once */
		if (shape->prog && !router->bulk)
			IndexShape(router, shape);
	}
	MemoryContextSwitchTo(old);
	return shape;
}

/*
 * Bulk loading: shapes come in catalog order and are appended; at the end
 * the array is sorted once and trimmed to size, and the shapes indexed,
 * into hash tables sized for them.  Nothing may look a shape up or match a
 * row in between.
 */
void
SrRouterBeginBulk(SrTableRouter *router)
{
	router->bulk = true;
}

static int
CompareShapes(const void *a, const void *b)
{
	int64		x = ((const SrShape *) a)->shape_id;
	int64		y = ((const SrShape *) b)->shape_id;

	return (x > y) - (x < y);
}

void
SrRouterEndBulk(SrTableRouter *router)
{
	MemoryContext old = MemoryContextSwitchTo(router->cxt);

	router->bulk = false;
	if (router->nshapes > 1)
		qsort(router->shapes, router->nshapes, sizeof(SrShape), CompareShapes);
	for (int i = 0; i < router->nshapes; i++)
		if (router->shapes[i].prog)
		{
			int			n;
			const SrIndexKey *keys = SrKeyPath(router->shapes[i].keys,
											   router->shapes[i].nkeys, 0, &n);

			/* the most selective path: the one most shapes end up under */
			SrPredIndexReserve(router->index, keys, n);
		}
	SrPredIndexPrepare(router->index);
	for (int i = 0; i < router->nshapes; i++)
	{
		SrShape    *shape = &router->shapes[i];

		CHECK_FOR_INTERRUPTS();
		if (shape->prog)
			IndexShape(router, shape);
	}
	MemoryContextSwitchTo(old);
	if (router->maxshapes > Max(router->nshapes, 16))
	{
		router->maxshapes = Max(router->nshapes, 16);
		router->shapes = repalloc(router->shapes,
								  sizeof(SrShape) * router->maxshapes);
	}
}

/* The shape stays listed but is no longer evaluated nor indexed. */
void
SrRouterDisableShape(SrTableRouter *router, SrShape *shape, const char *reason)
{
	if (shape->prog)
	{
		int			n;
		const SrIndexKey *keys = SrKeyPath(shape->keys, shape->nkeys,
										   shape->path, &n);

		SrPredIndexDelete(router->index, shape->shape_id, keys, n);
	}
	if (shape->prog && shape->prog->flatsize > 0)
		ArenaFree(router, shape->prog, shape->prog->flatsize);
	else if (shape->prog)
		MemoryContextDelete(GetMemoryChunkContext(shape->prog));
	shape->prog = NULL;
	shape->keys = NULL;
	shape->nkeys = 0;
	if (reason && shape->invalid_reason == NULL)
		shape->invalid_reason = MemoryContextStrdup(router->cxt, reason);
}

bool
SrRouterRemoveShape(SrTableRouter *router, int64 shape_id)
{
	int			i = LowerBound(router, shape_id);
	SrShape    *shape = &router->shapes[i];

	if (i >= router->nshapes || shape->shape_id != shape_id || shape->removed)
		return false;
	SrRouterDisableShape(router, shape, NULL);
	if (shape->invalid_reason)
		pfree(shape->invalid_reason);
	shape->invalid_reason = NULL;
	if (shape->columns)
		pfree(shape->columns);
	shape->columns = NULL;

	/*
	 * The entry stays as a tombstone, in id order, so that a removal costs a
	 * binary search, not a move of the rest of the array; the array is
	 * compacted when tombstones are half of it (amortised O(1)).
	 */
	shape->removed = true;
	router->nremoved++;
	if (router->nremoved > 64 && router->nremoved * 2 > router->nshapes)
	{
		int			n = 0;

		for (int j = 0; j < router->nshapes; j++)
			if (!router->shapes[j].removed)
				router->shapes[n++] = router->shapes[j];
		router->nshapes = n;
		router->nremoved = 0;
	}
	return true;
}

/*
 * Evaluate shapes from *pos on.  With oldslot NULL, one row (newslot);
 * otherwise both rows of an UPDATE, where a shape none of whose columns are
 * in changed (1-based) keeps its old answer without evaluating the new row.
 * *pos always names the shape being evaluated, for error recovery.
 */
static void
MatchFrom(SrTableRouter *router, TupleTableSlot *oldslot,
		  TupleTableSlot *newslot, const Bitmapset *changed,
		  ExprContext *econtext, int64 *oldids, volatile int *nold,
		  int64 *newids, volatile int *nnew, int nwork, volatile int *pos)
{
	MemoryContext old = MemoryContextSwitchTo(router->evalcxt);
	SrPathCounters *pc = router->counters;

	for (; *pos < nwork; (*pos)++)
	{
		SrShape    *shape = &router->shapes[router->work[*pos]];
		SrPathKind	kind = SrPathKindOf(shape->keys, shape->nkeys, shape->path);
		bool		was = false,
					is;

		if ((*pos & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		pc->candidates[kind]++;
		if (shape->prog == NULL)
			continue;
		if (oldslot)
		{
			pc->evaluations[kind]++;
			was = SrEvalProgram(shape->prog, oldslot, econtext) == SR_TRUE;
			pc->matches[kind] += was;
			if (was)
				oldids[(*nold)++] = shape->shape_id;
		}
		if (oldslot && !bms_overlap(shape->prog->attnums, changed))
			is = was;
		else
		{
			pc->evaluations[kind]++;
			is = SrEvalProgram(shape->prog, newslot, econtext) == SR_TRUE;
			pc->matches[kind] += is;
		}
		if (is)
			newids[(*nnew)++] = shape->shape_id;
		MemoryContextReset(router->evalcxt);
		ResetExprContext(econtext);
	}
	MemoryContextSwitchTo(old);
}

/*
 * Errors a shape's own operators raise on a row's values: data exceptions
 * (22), values a function does not support (0A: numeric NaN cast to
 * integer), domain constraint violations (23) and limits such as stack
 * depth or regular expression complexity (54).  Cancels, out of memory and internal
 * errors are not among them.
 */
static bool
RecoverableError(int sqlerrcode)
{
	int			category = ERRCODE_TO_CATEGORY(sqlerrcode);

	return category == ERRCODE_DATA_EXCEPTION ||
		category == ERRCODE_FEATURE_NOT_SUPPORTED ||
		category == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION ||
		category == ERRCODE_PROGRAM_LIMIT_EXCEEDED;
}

/*
 * Positions in router->shapes (ascending) of the shapes the predicate index
 * names as candidates for either row, in router->work; returns how many.
 * Zero means no shape can match either row.
 */
int
SrRouterCandidates(SrTableRouter *router, TupleTableSlot *oldslot,
				   TupleTableSlot *newslot)
{
	int64	   *cand;
	int			n,
				nwork = 0;

	router->cand.n = 0;
	if (oldslot)
		SrPredIndexLookup(router->index, oldslot, &router->cand);
	SrPredIndexLookup(router->index, newslot, &router->cand);
	cand = router->cand.ids;
	n = router->cand.n;
	ReserveWork(router, n);
	if (n > 1)
		qsort(cand, n, sizeof(int64), SrCompareInt64);
	for (int i = 0; i < n; i++)
	{
		int			pos;

		if (i > 0 && cand[i] == cand[i - 1])
			continue;
		pos = LowerBound(router, cand[i]);
		if (pos < router->nshapes && router->shapes[pos].shape_id == cand[i])
			router->work[nwork++] = pos;
	}
	return nwork;
}

/*
 * Match one row (oldslot NULL) or both rows of an UPDATE against every
 * valid shape; *oldids and *newids (id buffers 0 and 1) come out ascending.
 * ncand is SrRouterCandidates() for the same rows if the caller called it,
 * else -1.
 *
 * With on_error set, a data error raised by a shape's operators (division
 * by zero, a bad regular expression) makes that shape invalid instead of
 * failing the whole stream: on_error is told, and matching goes on with the
 * next shape.  Other errors propagate.
 */
void
SrRouterMatchRows(SrTableRouter *router, int ncand, TupleTableSlot *oldslot,
				  TupleTableSlot *newslot, const Bitmapset *changed,
				  ExprContext *econtext, int64 **oldidsp, int *nold,
				  int64 **newidsp, int *nnew, SrEvalErrorHook on_error,
				  void *arg)
{
	if (ncand < 0)
		ncand = SrRouterCandidates(router, oldslot, newslot);
	if (ncand == 0)
	{
		/* the common case on a busy table: no error handling to set up */
		if (oldidsp)
			*oldidsp = router->idbuf[0];
		if (nold)
			*nold = 0;
		*newidsp = router->idbuf[1];
		*nnew = 0;
		return;
	}
	MatchWork(router, ncand, oldslot, newslot, changed, econtext,
			  oldidsp, nold, newidsp, nnew, on_error, arg);
}

/*
 * In PG_CATCH(): a data error of one shape's evaluation (see below for why
 * going on is safe) disables that shape; anything else is re-thrown.
 */
static void
RecoverFrom(SrTableRouter *router, SrShape *shape, ExprContext *econtext,
			MemoryContext cxt, uint32 holdoff, uint32 critsection,
			SrEvalErrorHook on_error, void *arg)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	if (on_error == NULL ||
		InterruptHoldoffCount != holdoff ||
		CritSectionCount != critsection)
		PG_RE_THROW();
	edata = CopyErrorData();
	if (!RecoverableError(edata->sqlerrcode))
		PG_RE_THROW();
	FlushErrorState();
	MemoryContextReset(router->evalcxt);
	ResetExprContext(econtext);
	on_error(shape, edata->message, arg);
	SrRouterDisableShape(router, shape, edata->message);
	FreeErrorData(edata);
}

/*
 * Why going on after FlushErrorState() without a subtransaction is safe
 * here: the errors caught are data exceptions (class 22), unsupported
 * values (0A), integrity constraint violations (23, a domain's CHECK) and
 * program limits (54),
 * raised by a built-in immutable function or operator on a row's values.
 * Such a function computes on Datums in evalcxt and the ExprContext's
 * per-tuple memory, both reset below; it holds no lock, buffer pin or
 * LWLock when it raises a data error (PostgreSQL raises those before or
 * after, never inside, a critical resource section).  Anything it could
 * still leave behind (a catcache reference, say) belongs to the decoding
 * transaction's resource owner, which the reorderbuffer aborts after every
 * decoded transaction.  Two checks keep that argument honest: an error
 * raised with interrupts held off (the mark of an LWLock or a critical
 * section) or with a changed CritSectionCount is not recovered from, but
 * re-thrown.
 */
static void
MatchWork(SrTableRouter *router, int nwork, TupleTableSlot *oldslot,
		  TupleTableSlot *newslot, const Bitmapset *changed,
		  ExprContext *econtext, int64 **oldidsp, int *nold,
		  int64 **newidsp, int *nnew, SrEvalErrorHook on_error,
		  void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	uint32		holdoff = InterruptHoldoffCount;
	uint32		critsection = CritSectionCount;
	volatile int pos = 0;
	volatile int vold = 0;
	volatile int vnew = 0;
	volatile bool done = false;
	int64	   *oldids = router->idbuf[0];
	int64	   *newids = router->idbuf[1];

	/*
	 * One try block per error, not per shape: the common case sets up error
	 * recovery once.  The loop's control stays outside PG_TRY(), which is a
	 * do { } while (0) of its own (a continue or break inside it would end
	 * that, not this loop).
	 */
	while (!done)
	{
		volatile int o = vold;
		volatile int n = vnew;

		PG_TRY();
		{
			MatchFrom(router, oldslot, newslot, changed, econtext,
					  oldids, &o, newids, &n, nwork, &pos);
			vold = o;
			vnew = n;
			done = true;
		}
		PG_CATCH();
		{
			SrShape    *shape = &router->shapes[router->work[pos]];

			RecoverFrom(router, shape, econtext, cxt, holdoff, critsection,
						on_error, arg);
			/* Answers of this shape for the old row are void too. */
			if (o > 0 && oldids[o - 1] == shape->shape_id)
				o--;
			vold = o;
			vnew = n;
			/* the next shape, in the next round of the loop */
			pos++;
		}
		PG_END_TRY();
	}
	if (oldidsp)
		*oldidsp = oldids;
	if (nold)
		*nold = vold;
	*newidsp = newids;
	*nnew = vnew;
}

int
SrRouterMatch(SrTableRouter *router, TupleTableSlot *slot,
			  ExprContext *econtext, int64 **ids)
{
	int			n;

	SrRouterMatchRows(router, -1, NULL, slot, NULL, econtext, NULL, NULL,
					  ids, &n, NULL, NULL);
	return n;
}

TupleDesc
SrRouterDesc(const SrTableRouter *router)
{
	return router->desc;
}

TupleTableSlot *
SrRouterSlot(SrTableRouter *router, int which)
{
	Assert(which >= 0 && which < 4);
	return router->slots[which];
}

int
SrRouterShapeCount(const SrTableRouter *router)
{
	return router->nshapes;
}

SrShape *
SrRouterShapeAt(SrTableRouter *router, int i)
{
	Assert(i >= 0 && i < router->nshapes);
	return &router->shapes[i];
}

int
SrRouterMaxAttno(const SrTableRouter *router)
{
	int			maxattno = 0;

	for (int i = 0; i < router->nshapes; i++)
		if (router->shapes[i].prog)
			maxattno = Max(maxattno, router->shapes[i].prog->maxattno);
	return maxattno;
}

/*
 * One shape on a row some of whose columns are unknown (eval.h): SR_TRUE,
 * SR_FALSE, SR_NULL or SR_UNKNOWN; -1 if it raised a data error, after
 * which it is disabled as in SrRouterMatchRows.
 */
int
SrRouterEvalUnknown(SrTableRouter *router, SrShape *shape,
					TupleTableSlot *slot, ExprContext *econtext,
					const bool *unknown, SrEvalErrorHook on_error, void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	uint32		holdoff = InterruptHoldoffCount;
	uint32		critsection = CritSectionCount;
	volatile int res = -1;

	PG_TRY();
	{
		MemoryContext old = MemoryContextSwitchTo(router->evalcxt);
		SrPathKind	kind = SrPathKindOf(shape->keys, shape->nkeys, shape->path);

		router->counters->evaluations[kind]++;
		res = SrEvalProgramUnknown(shape->prog, slot, econtext, unknown);
		router->counters->matches[kind] += (res == SR_TRUE);
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		RecoverFrom(router, shape, econtext, cxt, holdoff, critsection,
					on_error, arg);
	}
	PG_END_TRY();
	MemoryContextReset(router->evalcxt);
	ResetExprContext(econtext);
	return res;
}
