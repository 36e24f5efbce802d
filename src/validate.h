/*-------------------------------------------------------------------------
 *
 * validate.h
 *	  Parse, analyse and validate a shape's WHERE clause against its table.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_VALIDATE_H
#define SR_VALIDATE_H

#include "nodes/bitmapset.h"
#include "nodes/nodes.h"
#include "utils/relcache.h"

/* Longest WHERE clause accepted, in bytes. */
#define SR_MAX_CLAUSE_LENGTH	65536
/* Largest analysed qual stored, after constant folding, in bytes */
#define SR_MAX_QUAL_LENGTH		(8 * 1024 * 1024)

typedef struct SrClause
{
	Node	   *qual;			/* analysed, constant-folded boolean qual */
	char	   *where_clause;	/* normalised text, deparsed from qual */
	Bitmapset  *attnums;		/* user columns the qual references, 1-based */
} SrClause;

extern void SrValidateClause(Relation rel, const char *clause, SrClause *out);
extern int	SrPushQualTextSettings(void);

#endif							/* SR_VALIDATE_H */
