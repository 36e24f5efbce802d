/*-------------------------------------------------------------------------
 *
 * eval.c
 *	  The shape program interpreter.
 *
 * Three-valued logic as PostgreSQL's executor has it: a NULL input to a
 * strict operator gives NULL, AND is false if any input is false and NULL
 * if otherwise any is NULL, OR symmetrically, NOT NULL is NULL.  Callers
 * treat anything but SR_TRUE as "no match".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "executor/executor.h"
#include "optimizer/optimizer.h"
#include "utils/float.h"

#include "eval.h"

#define SR_MAX_STACK_ACC	64

static inline int
IntCmp(int64 a, int64 b, SrCmp cmp)
{
	bool		r;

	switch (cmp)
	{
		case SR_CMP_EQ:
			r = a == b;
			break;
		case SR_CMP_NE:
			r = a != b;
			break;
		case SR_CMP_LT:
			r = a < b;
			break;
		case SR_CMP_LE:
			r = a <= b;
			break;
		case SR_CMP_GT:
			r = a > b;
			break;
		default:
			r = a >= b;
			break;
	}
	return r ? SR_TRUE : SR_FALSE;
}

/* float.h's comparisons: NaN equals NaN and sorts above everything */
static inline int
FloatCmp(float8 a, float8 b, SrCmp cmp)
{
	bool		r;

	switch (cmp)
	{
		case SR_CMP_EQ:
			r = float8_eq(a, b);
			break;
		case SR_CMP_NE:
			r = float8_ne(a, b);
			break;
		case SR_CMP_LT:
			r = float8_lt(a, b);
			break;
		case SR_CMP_LE:
			r = float8_le(a, b);
			break;
		case SR_CMP_GT:
			r = float8_gt(a, b);
			break;
		default:
			r = float8_ge(a, b);
			break;
	}
	return r ? SR_TRUE : SR_FALSE;
}

static inline int64
IntDatum(Datum d, SrColType t)
{
	switch (t)
	{
		case SR_COL_INT2:
			return DatumGetInt16(d);
		case SR_COL_INT4:
			return DatumGetInt32(d);
		default:
			return DatumGetInt64(d);
	}
}

/* One leaf step's three-valued result */
static inline int
EvalLeaf(const SrStep *step, Datum *values, bool *isnull,
		 TupleTableSlot *slot, ExprContext *econtext)
{
	int			a = step->arg;
	int			res = SR_NULL;

	switch ((SrOpcode) step->opcode)
	{
		case SR_OP_CONST:
			res = (int) step->value.i;
			break;
		case SR_OP_BOOL_COLUMN:
			res = isnull[a] ? SR_NULL :
				DatumGetBool(values[a]) ? SR_TRUE : SR_FALSE;
			break;
		case SR_OP_NULLTEST:
			res = (isnull[a] != step->negate) ? SR_TRUE : SR_FALSE;
			break;
		case SR_OP_BOOLTEST:
			{
				bool		r;

				switch ((BoolTestType) step->cmp)
				{
					case IS_TRUE:
						r = !isnull[a] && DatumGetBool(values[a]);
						break;
					case IS_NOT_TRUE:
						r = isnull[a] || !DatumGetBool(values[a]);
						break;
					case IS_FALSE:
						r = !isnull[a] && !DatumGetBool(values[a]);
						break;
					case IS_NOT_FALSE:
						r = isnull[a] || DatumGetBool(values[a]);
						break;
					case IS_UNKNOWN:
						r = isnull[a];
						break;
					default:
						r = !isnull[a];
						break;
				}
				res = r ? SR_TRUE : SR_FALSE;
				break;
			}
		case SR_OP_INT_CMP:
			res = isnull[a] ? SR_NULL :
				IntCmp(IntDatum(values[a], step->coltype), step->value.i,
					   step->cmp);
			break;
		case SR_OP_FLOAT_CMP:
			if (isnull[a])
				res = SR_NULL;
			else
			{
				float8		v = (step->coltype == SR_COL_FLOAT4) ?
					(float8) DatumGetFloat4(values[a]) :
					DatumGetFloat8(values[a]);

				res = FloatCmp(v, step->value.f, step->cmp);
			}
			break;
		case SR_OP_TEXT_EQ:
			if (isnull[a])
				res = SR_NULL;
			else
			{
				text	   *t = DatumGetTextPP(values[a]);
				text	   *c = (text *) step->aux;
				bool		eq;

				eq = VARSIZE_ANY_EXHDR(t) == VARSIZE_ANY_EXHDR(c) &&
					memcmp(VARDATA_ANY(t), VARDATA_ANY(c),
						   VARSIZE_ANY_EXHDR(c)) == 0;
				res = (eq != step->negate) ? SR_TRUE : SR_FALSE;
			}
			break;
		case SR_OP_IN_SET:
			{
				const SrValueSet *set = (const SrValueSet *) step->aux;
				bool		found;

				if (isnull[a])
				{
					res = SR_NULL;
					break;
				}
				if (set->is_text)
				{
					text	   *t = DatumGetTextPP(values[a]);

					found = SrValueSetContains(set, 0, VARDATA_ANY(t),
											   VARSIZE_ANY_EXHDR(t));
				}
				else
					found = SrValueSetContains(set,
											   IntDatum(values[a], step->coltype),
											   NULL, 0);
				if (found)
					res = step->negate ? SR_FALSE : SR_TRUE;
				else if (set->has_null)
					res = SR_NULL;
				else
					res = step->negate ? SR_TRUE : SR_FALSE;
				break;
			}
		case SR_OP_FMGR:
			{
				FunctionCallInfo fcinfo = (FunctionCallInfo) step->aux;
				int			vpos = step->negate ? 1 : 0;
				Datum		r;

				if (isnull[a] && fcinfo->flinfo->fn_strict)
				{
					res = SR_NULL;
					break;
				}
				fcinfo->args[vpos].value = values[a];
				fcinfo->args[vpos].isnull = isnull[a];
				fcinfo->isnull = false;
				r = FunctionCallInvoke(fcinfo);
				res = fcinfo->isnull ? SR_NULL :
					DatumGetBool(r) ? SR_TRUE : SR_FALSE;
				break;
			}
		case SR_OP_EXPR:
			{
				bool		rnull;
				Datum		r;

				econtext->ecxt_scantuple = slot;
				r = ExecEvalExprSwitchContext((ExprState *) step->aux,
											  econtext, &rnull);
				res = rnull ? SR_NULL : DatumGetBool(r) ? SR_TRUE : SR_FALSE;
				break;
			}
		default:
			elog(ERROR, "unexpected shape program step %d", step->opcode);
	}
	return res;
}

int
SrEvalProgram(const SrProgram *prog, TupleTableSlot *slot,
			  ExprContext *econtext)
{
	return SrEvalProgramUnknown(prog, slot, econtext, NULL);
}

/* Is the leaf's input unknown (see eval.h)? */
static bool
LeafUnknown(const SrProgram *prog, const SrStep *step, const bool *unknown)
{
	int			attno = -1;
	Bitmapset  *cols = NULL;

	if (step->opcode == SR_OP_CONST)
		return false;
	if (step->opcode != SR_OP_EXPR)
		return unknown[step->arg];
	/* an expression's columns: found again here, on this rare path only */
	pull_varattnos((Node *) ((ExprState *) step->aux)->expr, 1, &cols);
	while ((attno = bms_next_member(cols, attno)) >= 0)
	{
		int			a = attno + FirstLowInvalidHeapAttributeNumber;

		if (a > 0 && a <= prog->maxattno && unknown[a - 1])
			return true;
	}
	return false;
}

/*
 * AND/OR accumulators: a NULL was seen (1), an unknown (2).  Unknown is
 * Kleene's third value over {true, false, null}: AND is false if any input
 * is, else unknown if any is, else null if any is; OR alike; NOT keeps it.
 */
#define ACC_NULL	1
#define ACC_UNKNOWN 2

int
SrEvalProgramUnknown(const SrProgram *prog, TupleTableSlot *slot,
					 ExprContext *econtext, const bool *unknown)
{
	uint8		accbuf[SR_MAX_STACK_ACC];
	uint8	   *acc = accbuf;
	Datum	   *values;
	bool	   *isnull;
	int			res = SR_NULL;
	int			pc = 0;

	if (prog->maxattno > 0)
		slot_getsomeattrs(slot, prog->maxattno);
	values = slot->tts_values;
	isnull = slot->tts_isnull;

	if (prog->nacc > SR_MAX_STACK_ACC)
		acc = palloc0(sizeof(uint8) * prog->nacc);
	else if (prog->nacc > 0)
		memset(acc, 0, sizeof(uint8) * prog->nacc);

	while (pc < prog->nsteps)
	{
		const SrStep *step = &prog->steps[pc];
		int			a = step->arg;

		switch ((SrOpcode) step->opcode)
		{
			case SR_OP_AND_STEP:
				if (res == SR_FALSE)
				{
					pc = step->jump;
					continue;
				}
				if (res == SR_NULL)
					acc[a] |= ACC_NULL;
				else if (res == SR_UNKNOWN)
					acc[a] |= ACC_UNKNOWN;
				break;
			case SR_OP_AND_LAST:
				if (res == SR_FALSE)
					break;
				if (res == SR_UNKNOWN || (acc[a] & ACC_UNKNOWN))
					res = SR_UNKNOWN;
				else if (acc[a] & ACC_NULL)
					res = SR_NULL;
				break;
			case SR_OP_OR_STEP:
				if (res == SR_TRUE)
				{
					pc = step->jump;
					continue;
				}
				if (res == SR_NULL)
					acc[a] |= ACC_NULL;
				else if (res == SR_UNKNOWN)
					acc[a] |= ACC_UNKNOWN;
				break;
			case SR_OP_OR_LAST:
				if (res == SR_TRUE)
					break;
				if (res == SR_UNKNOWN || (acc[a] & ACC_UNKNOWN))
					res = SR_UNKNOWN;
				else if (acc[a] & ACC_NULL)
					res = SR_NULL;
				break;
			case SR_OP_NOT:
				if (res == SR_TRUE || res == SR_FALSE)
					res = (res == SR_TRUE) ? SR_FALSE : SR_TRUE;
				break;
			default:
				if (unknown && LeafUnknown(prog, step, unknown))
					res = SR_UNKNOWN;
				else
					res = EvalLeaf(step, values, isnull, slot, econtext);
				break;
		}
		pc++;
	}

	if (acc != accbuf)
		pfree(acc);
	return res;
}
