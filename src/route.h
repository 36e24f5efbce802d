/*-------------------------------------------------------------------------
 *
 * route.h
 *	  Routing one decoded change: which shapes its old and new rows are in,
 *	  ready for the plugin's JSON writer.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_ROUTE_H
#define SR_ROUTE_H

#include "replication/reorderbuffer.h"

#include "memkey.h"
#include "shapestate.h"

/* A row of the change, ready for evaluation and output */
typedef struct SrRowSlot
{
	TupleTableSlot *slot;
	bool	   *unchanged;		/* unchanged TOAST left out; NULL = none */
	bool		missing;		/* an unchanged TOAST value could not be
								 * taken from the old row */
} SrRowSlot;

/*
 * What a change means for the shapes, before any record is written: the
 * rows and, for each, the shapes it is in.  The insert, delete and update
 * paths of route.c fill it in; the plugin's writer alone turns it into
 * records.
 */
typedef enum SrRouteKind
{
	SR_ROUTE_NONE,					/* no record (no candidate, or invalidated) */
	SR_ROUTE_INSERT,
	SR_ROUTE_DELETE,
	SR_ROUTE_UPDATE,				/* same key: U, move-in I, move-out D */
	SR_ROUTE_KEY_CHANGE			/* new key: D of the old row, I of the new */
} SrRouteKind;

typedef struct SrRouteResult
{
	SrRouteKind	kind;
	SrRowSlot		oldrow;			/* the old row, or (without FULL) its key */
	SrRowSlot		newrow;
	SrRowSlot    *keyrow;			/* "key" of D and U records */
	SrRowSlot    *oldout;			/* "old" (include-old), or NULL */
	bool		old_key_only;	/* oldout holds only the key columns */
	int64	   *oldids;			/* shapes the old row is in */
	int			nold;
	int64	   *newids;			/* shapes the new row is in */
	int			nnew;
} SrRouteResult;

/* What routing needs, for a stream's life */
typedef struct SrRouteContext
{
	SrShapeState *state;
	ExprContext *econtext;
	SrKeyBuf	oldkey;			/* membership keys of the change's rows */
	SrKeyBuf	newkey;
} SrRouteContext;

/* Fill r (zeroed by the caller); S records to write go to events */
extern void SrRouteChange(SrRouteContext *rc, SrRelState *rs, Relation relation,
						  ReorderBufferChange *change, List **events,
						  SrRouteResult *r);
/* Release r's rows */
extern void SrRouteEnd(SrRouteResult *r);

#endif							/* SR_ROUTE_H */
