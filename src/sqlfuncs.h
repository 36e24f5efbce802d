/*-------------------------------------------------------------------------
 *
 * sqlfuncs.h
 *	  SQL functions that read shapes through the routing engine:
 *	  matching_shapes() and explain_shape().
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_SQLFUNCS_H
#define SR_SQLFUNCS_H

extern void SrSqlFuncsInit(void);

#endif							/* SR_SQLFUNCS_H */
