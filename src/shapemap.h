/*-------------------------------------------------------------------------
 *
 * shapemap.h
 *	  simplehash of shape_id -> ShapeEntry (shapestate_int.h).  Included
 *	  twice, with SH_DECLARE by shapestate_int.h and with SH_DEFINE by
 *	  shapestate.c: simplehash.h forgets its parameters after each use, so
 *	  they live here, once.  No include guard on purpose.
 *
 *-------------------------------------------------------------------------
 */
#define SH_PREFIX		shapemap
#define SH_ELEMENT_TYPE ShapeEntry
#define SH_KEY_TYPE		int64
#define SH_KEY			shape_id
#define SH_HASH_KEY(tb, key) ShapeIdHash(key)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE		extern
#include "lib/simplehash.h"
