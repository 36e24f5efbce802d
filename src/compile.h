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

/* Three-valued results */
#define SR_FALSE	0
#define SR_TRUE		1
#define SR_NULL		2

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

/*
 * Index keys: one access path per shape, a necessary condition for a match.
 * A shape is a candidate for a row if any of its keys hits; candidates then
 * run their whole program, so keys may over-approximate but never miss.
 */
typedef enum SrKeyKind
{
	SR_KEY_EQ,					/* column = one of hashes (hash opfamily) */
	SR_KEY_PREFIX,				/* text column LIKE 'prefix%' */
	SR_KEY_RANGE,				/* lower <= column <= upper (btree order) */
	SR_KEY_TRUE,				/* boolean column is true */
	SR_KEY_FALSE,				/* boolean column is false */
	SR_KEY_NULL,				/* column IS NULL */
	SR_KEY_NOTNULL,				/* column IS NOT NULL */
	SR_KEY_ELEM,				/* array column has an element hashing to
								 * one of hashes (@>, &&) */
	SR_KEY_INFIX				/* text column contains one of the pattern's
								 * n-grams (LIKE/ILIKE '%...%'); hashes are
								 * n-gram codes, see SrNgramCode */
} SrKeyKind;

typedef struct SrIndexKey
{
	uint8		kind;			/* SrKeyKind */
	bool		has_lower;		/* RANGE */
	bool		has_upper;
	bool		icase;			/* INFIX: ILIKE, n-grams of lower() */
	AttrNumber	attno;			/* 1-based column */
	int16		boundlen;		/* RANGE: typlen and typbyval of the bounds */
	bool		boundbyval;
	Oid			proc;			/* EQ: hash of the column's type; RANGE:
								 * btree order proc (column type, bound
								 * type) */
	Oid			sortproc;		/* RANGE: order proc (bound, bound) */
	Oid			collation;
	Oid			opno;			/* the operator, for explain_shape */
	Oid			elemtype;		/* ELEM: the array's element type */
	int			nvalues;		/* EQ, ELEM, INFIX: hashes; PREFIX: prefix
								 * length */
	uint32		hash1;			/* a single hash lives here, in a flat key */
	uint32	   *hashes;			/* EQ, ELEM, INFIX; PREFIX: SrPrefixHash */
	Datum		lower;			/* RANGE */
	Datum		upper;
} SrIndexKey;

/*
 * An n-gram of 1 to 3 bytes as a number: exact (no two n-grams share a
 * code), so an n-gram hit is a substring hit.
 */
static inline uint32
SrNgramCode(const char *p, int len)
{
	uint32		code = (uint32) len << 24;

	for (int i = 0; i < len; i++)
		code |= (uint32) (unsigned char) p[i] << (16 - 8 * i);
	return code;
}

extern uint32 SrPrefixHash(const char *p, int len);
extern SrProgram *SrCompile(Node *qual, TupleDesc desc, char **invalid_reason);
extern int	SrCompileKeys(Node *qual, SrIndexKey **keys);
extern Size SrProgramFlatSize(const SrProgram *prog,
							  const SrIndexKey *keys, int nkeys);
extern SrProgram *SrProgramFlatten(const SrProgram *prog,
								   const SrIndexKey *keys, int nkeys,
								   void *dest, SrIndexKey **keys_out);
extern void SrExplainKeys(const SrIndexKey *keys, int nkeys, TupleDesc desc,
						  StringInfo buf);
extern bool SrValueSetContains(const SrValueSet *set, int64 ival,
							   const char *str, int len);
extern void SrExplainProgram(const SrProgram *prog, TupleDesc desc,
							 StringInfo buf);

#endif							/* SR_COMPILE_H */
