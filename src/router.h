/*-------------------------------------------------------------------------
 *
 * router.h
 *	  A table's compiled shapes, and the question "which shapes does this
 *	  row match?".
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_ROUTER_H
#define SR_ROUTER_H

#include "catalog.h"
#include "compile.h"
#include "executor/tuptable.h"
#include "predindex.h"

typedef struct SrShape
{
	int64		shape_id;
	SrProgram  *prog;			/* NULL while invalid; with keys, one arena
								 * chunk if prog->flatsize > 0 */
	SrIndexKey *keys;			/* access paths (SrKeyPath), none: scan list */
	AttrNumber *columns;		/* projected columns, ascending */
	char	   *invalid_reason; /* why the shape no longer applies */
	int			ncolumns;		/* -1 = every column */
	int16		nkeys;			/* keys of every access path */
	uint8		path;			/* the access path it is filed under */
	bool		removed;		/* a tombstone, until the array is compacted */
} SrShape;

#define SR_ARENA_CLASSES	64		/* chunk sizes up to 64 * MAXIMUM_ALIGNOF */

typedef struct SrTableRouter
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
} SrTableRouter;

extern SrTableRouter *SrRouterCreate(Oid relid, TupleDesc desc,
									 int expected, MemoryContext parent);
extern void SrRouterDestroy(SrTableRouter *router);
extern SrShape *SrRouterAddShape(SrTableRouter *router, const SrShapeDef *def);
extern void SrRouterBeginBulk(SrTableRouter *router);
extern void SrRouterEndBulk(SrTableRouter *router);
extern bool SrRouterRemoveShape(SrTableRouter *router, int64 shape_id);
extern void SrRouterDisableShape(SrTableRouter *router, SrShape *shape,
								 const char *reason);
extern SrShape *SrRouterFindShape(SrTableRouter *router, int64 shape_id);
extern void SrRouterExplainAccess(SrTableRouter *router, SrShape *shape,
								  StringInfo buf);
extern int64 *SrRouterIdBuffer(SrTableRouter *router, int which);
extern int	SrRouterMatch(SrTableRouter *router, TupleTableSlot *slot,
						  ExprContext *econtext, int64 **ids);

typedef void (*SrEvalErrorHook) (SrShape *shape, const char *message,
								 void *arg);
extern int	SrRouterCandidates(SrTableRouter *router, TupleTableSlot *oldslot,
							   TupleTableSlot *newslot);
extern void SrRouterMatchRows(SrTableRouter *router, int ncand,
							  TupleTableSlot *oldslot,
							  TupleTableSlot *newslot,
							  const Bitmapset *changed,
							  ExprContext *econtext,
							  int64 **oldids, int *nold,
							  int64 **newids, int *nnew,
							  SrEvalErrorHook on_error, void *arg);

#endif							/* SR_ROUTER_H */
