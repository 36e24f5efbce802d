/*-------------------------------------------------------------------------
 *
 * eval.h
 *	  Evaluate a compiled shape program against one tuple.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_EVAL_H
#define SR_EVAL_H

#include "compile.h"
#include "executor/tuptable.h"

/*
 * Returns SR_TRUE, SR_FALSE or SR_NULL.  The slot must hold every column the
 * program reads deformed or deformable, with no on-disk TOAST pointers among
 * them.  Allocations go to CurrentMemoryContext and econtext's per-tuple
 * memory; the caller resets both after each tuple.
 */
extern int	SrEvalProgram(const SrProgram *prog, TupleTableSlot *slot,
						  ExprContext *econtext);

/*
 * The same where the columns flagged in unknown (0-based; NULL = none)
 * could hold any value, NULL included: SR_UNKNOWN if the answer depends on
 * them.  Their slot values are not read.
 */
extern int	SrEvalProgramUnknown(const SrProgram *prog, TupleTableSlot *slot,
								 ExprContext *econtext, const bool *unknown);

#endif							/* SR_EVAL_H */
