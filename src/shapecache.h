/*-------------------------------------------------------------------------
 *
 * shapecache.h
 *	  Compiled shapes kept for the next stream: a file in the slot's
 *	  directory (pg_replslot/<slot>/shape_router.compiled) holding each
 *	  flat program with the catalog row (shape id, xmin) and the table
 *	  signature (columns, collation versions) it was compiled from.  A
 *	  stream start takes a shape from it only when all of them still match;
 *	  a missing, damaged or foreign file is ignored.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_SHAPECACHE_H
#define SR_SHAPECACHE_H

#include "utils/relcache.h"

#include "router.h"

typedef struct SrShapeCache SrShapeCache;

/* the slot's file, read into cxt (NULL slot_name: an empty cache) */
extern SrShapeCache *SrShapeCacheLoad(const char *slot_name, Oid catalog,
									  MemoryContext cxt);

/*
 * Add shape_id to router from the cache, if its catalog row (xmin) and
 * rel's signature are those it was compiled with; NULL if not.
 */
extern SrShape *SrShapeCacheTake(SrShapeCache *cache, SrTableRouter *router,
								 Relation rel, int64 shape_id,
								 TransactionId xmin);

/* shape, compiled anew, goes into the next file */
extern void SrShapeCacheNote(SrShapeCache *cache, Relation rel,
							 const SrShape *shape, TransactionId xmin);

/*
 * Write the file again if enough shapes were compiled anew or are gone;
 * router_of gives each table's router (NULL: none).
 */
typedef SrTableRouter *(*SrRouterOf) (Oid relid, void *arg);
extern void SrShapeCacheSave(SrShapeCache *cache, SrRouterOf router_of,
							 void *arg);

/* what the stream start took from it, for its log line */
extern void SrShapeCacheCounts(const SrShapeCache *cache, int64 *taken,
							   int64 *compiled);

#endif							/* SR_SHAPECACHE_H */
