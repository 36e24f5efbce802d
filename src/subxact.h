/*-------------------------------------------------------------------------
 *
 * subxact.h
 *	  Run a function in an internal subtransaction and get its error back,
 *	  as PL/pgSQL's exception blocks do.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_SUBXACT_H
#define SR_SUBXACT_H

#include "utils/elog.h"

typedef void (*SrSubxactFn) (void *arg);

/*
 * fn(arg) in a subtransaction: NULL if it committed, else its error (in
 * the caller's memory context), the subtransaction rolled back
 */
extern ErrorData *SrRunInSubxact(SrSubxactFn fn, void *arg);

#endif							/* SR_SUBXACT_H */
