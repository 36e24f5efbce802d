/*-------------------------------------------------------------------------
 *
 * keysel.h
 *	  Estimated selectivity of a conjunct, for the choice of access path.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_KEYSEL_H
#define SR_KEYSEL_H

#include "nodes/nodes.h"

/* Fraction of rel's rows clause is true for; *from_stats if statistics said */
extern double SrEstimateSelectivity(Oid relid, Node *clause, bool *from_stats);

#endif							/* SR_KEYSEL_H */
