/*-------------------------------------------------------------------------
 *
 * compile.h
 *	  A shape's qual compiled into a small typed program.
 *
 * The program is a flat array of steps evaluated left to right against one
 * tuple.  Leaf steps set a three-valued result register; AND/OR steps
 * short-circuit by jumping, keeping "saw a NULL" in a per-node accumulator,
 * exactly as PostgreSQL's own executor does.  Leaves with fast paths read
 * the column straight from the slot; every other leaf runs PostgreSQL's own
 * operator function through fmgr, or PostgreSQL's executor for arbitrary
 * expressions, so the answer always equals PostgreSQL's.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_COMPILE_H
#define SR_COMPILE_H

#include "access/tupdesc.h"
#include "lib/stringinfo.h"
#include "nodes/bitmapset.h"
#include "nodes/execnodes.h"
#include "nodes/primnodes.h"

#include "indexkey.h"

/* Three-valued results */
#define SR_FALSE	0
#define SR_TRUE		1
#define SR_NULL		2
#define SR_UNKNOWN	3			/* SrEvalProgramUnknown only */

typedef enum SrOpcode
{
	SR_OP_CONST,				/* res = step->value.i (SR_FALSE/TRUE/NULL) */
	SR_OP_BOOL_COLUMN,			/* res = boolean column */
	SR_OP_NULLTEST,				/* column IS NULL; IS NOT NULL if negate */
	SR_OP_BOOLTEST,				/* column IS [NOT] TRUE/FALSE/UNKNOWN */
	SR_OP_INT_CMP,				/* int2/4/8 column <cmp> int64 constant */
	SR_OP_FLOAT_CMP,			/* float4/8 column <cmp> float8 constant */
	SR_OP_TEXT_EQ,				/* text column = constant, bytewise; <> if
								 * negate */
	SR_OP_IN_SET,				/* column = ANY(constant set); <> ALL if negate */
	SR_OP_FMGR,					/* column <op> constant through fmgr */
	SR_OP_EXPR,					/* any expression, PostgreSQL's executor */
	SR_OP_AND_STEP,				/* FALSE: jump; NULL: remember */
	SR_OP_AND_LAST,				/* TRUE and a NULL remembered: NULL */
	SR_OP_OR_STEP,				/* TRUE: jump; NULL: remember */
	SR_OP_OR_LAST,				/* FALSE and a NULL remembered: NULL */
	SR_OP_NOT
} SrOpcode;

typedef enum SrCmp
{
	SR_CMP_EQ,
	SR_CMP_NE,
	SR_CMP_LT,
	SR_CMP_LE,
	SR_CMP_GT,
	SR_CMP_GE
} SrCmp;

/* How a fast-path step reads its column */
typedef enum SrColType
{
	SR_COL_OTHER,
	SR_COL_INT2,
	SR_COL_INT4,
	SR_COL_INT8,
	SR_COL_FLOAT4,
	SR_COL_FLOAT8,
	SR_COL_TEXT
} SrColType;

/* A constant set for IN lists: integers or bytes, hashed when long */
typedef struct SrValueSet
{
	int			nvalues;
	bool		has_null;		/* the array had a NULL element */
	bool		is_text;
	uint32		mask;			/* hash table size - 1; 0 = not hashed */
	int32	   *slots;			/* value index + 1, 0 = empty */
	int64	   *ints;			/* integer values */
	const char **strs;			/* text values (not NUL-terminated) */
	int32	   *lens;
} SrValueSet;

typedef struct SrStep
{
	uint8		opcode;			/* SrOpcode */
	uint8		cmp;			/* SrCmp, BoolTestType */
	uint8		coltype;		/* SrColType */
	bool		negate;			/* see opcodes; for SR_OP_FMGR: column is
								 * the second argument */
	int16		arg;			/* 0-based column, or accumulator number */
	int32		jump;			/* AND/OR: step to go to on short-circuit */
	union
	{
		int64		i;
		double		f;
		Datum		d;
	}			value;
	void	   *aux;			/* FunctionCallInfo, SrValueSet, ExprState,
								 * text constant */
} SrStep;

typedef struct SrProgram
{
	int			nsteps;
	int			nacc;			/* AND/OR accumulators */
	AttrNumber	maxattno;		/* highest column read, 1-based */
	uint32		flatsize;		/* bytes, if flattened (SrProgramFlatten) */
	Bitmapset  *attnums;		/* columns read, 1-based */
	SrStep		steps[FLEXIBLE_ARRAY_MEMBER];
} SrProgram;

extern Var *SrColumnOf(Node *node);
extern SrColType SrColTypeOf(Oid typid);
extern SrProgram *SrCompile(Node *qual, TupleDesc desc, char **invalid_reason);
extern Size SrProgramFlatSize(const SrProgram *prog,
							  const SrIndexKey *keys, int nkeys);
extern SrProgram *SrProgramFlatten(const SrProgram *prog,
								   const SrIndexKey *keys, int nkeys,
								   void *dest, SrIndexKey **keys_out);
extern void SrProgramRelocate(SrProgram *prog, SrIndexKey *keys, int nkeys,
							  const void *old);
extern bool SrValueSetContains(const SrValueSet *set, int64 ival,
							   const char *str, int len);
extern void SrExplainProgram(const SrProgram *prog, TupleDesc desc,
							 StringInfo buf);

#endif							/* SR_COMPILE_H */
