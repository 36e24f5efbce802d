/*-------------------------------------------------------------------------
 *
 * sortutil.h
 *	  The qsort/bsearch comparator of shape ids, one definition for every
 *	  module.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_SORTUTIL_H
#define SR_SORTUTIL_H

static inline int
SrCompareInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

#endif							/* SR_SORTUTIL_H */
