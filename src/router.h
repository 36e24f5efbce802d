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

/* opaque: a table's compiled shapes, their index and per-change buffers */
typedef struct SrTableRouter SrTableRouter;

extern SrTableRouter *SrRouterCreate(Oid relid, TupleDesc desc,
									 int expected, MemoryContext parent);
/* count candidates and evaluations there (NULL: nowhere), see slotstats.h */
struct SrPathCounters;
extern void SrRouterSetCounters(SrTableRouter *router,
								struct SrPathCounters *counters);
extern void SrRouterDestroy(SrTableRouter *router);
extern SrShape *SrRouterAddShape(SrTableRouter *router, const SrShapeDef *def);
extern SrShape *SrRouterAddFlatShape(SrTableRouter *router, int64 shape_id,
									 const AttrNumber *columns, int ncolumns,
									 const void *chunk, Size size, Size keyoff,
									 int nkeys, const void *old);
extern void SrRouterBeginBulk(SrTableRouter *router);
extern void SrRouterEndBulk(SrTableRouter *router);
extern bool SrRouterRemoveShape(SrTableRouter *router, int64 shape_id);
extern void SrRouterDisableShape(SrTableRouter *router, SrShape *shape,
								 const char *reason);
extern SrShape *SrRouterFindShape(SrTableRouter *router, int64 shape_id);
extern void SrRouterExplainAccess(SrTableRouter *router, SrShape *shape,
								  StringInfo buf);
extern int64 *SrRouterIdBuffer(SrTableRouter *router, int which);
extern TupleDesc SrRouterDesc(const SrTableRouter *router);
/* per-change slots: 0 old, 1 new (heap tuples); 2 old, 3 new (virtual) */
extern TupleTableSlot *SrRouterSlot(SrTableRouter *router, int which);
/* the shapes in ascending id order, tombstones included (see removed) */
extern int	SrRouterShapeCount(const SrTableRouter *router);
extern SrShape *SrRouterShapeAt(SrTableRouter *router, int i);
/* the highest column any valid shape reads (0: none) */
extern int	SrRouterMaxAttno(const SrTableRouter *router);
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

extern int	SrRouterEvalUnknown(SrTableRouter *router, SrShape *shape,
								TupleTableSlot *slot, ExprContext *econtext,
								const bool *unknown,
								SrEvalErrorHook on_error, void *arg);

#endif							/* SR_ROUTER_H */
