/*-------------------------------------------------------------------------
 *
 * compile.c
 *	  Compile a shape's qual into an SrProgram.
 *
 * The qual arrives analysed and constant-folded (validate.c).  Boolean
 * structure becomes jump steps; leaves become fast-path steps where the
 * semantics are simple enough to reproduce exactly (integer and float
 * comparisons, bytewise text equality under deterministic collations,
 * NULL and boolean tests, constant IN lists), "column op constant" steps
 * that call the operator's own function, and otherwise PostgreSQL's
 * executor on the leaf expression.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/nbtree.h"
#include "access/stratnum.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/typcache.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "compile.h"

/* float_ops btree operator family; pg_opfamily_d.h has no macro for it */
#define SR_FLOAT_BTREE_FAM_OID	1970

/* IN lists longer than this are hashed */
#define SR_HASH_MIN_VALUES	8

typedef struct CompileState
{
	SrStep	   *steps;
	int			nsteps;
	int			maxsteps;
	int			nacc;
	TupleDesc	desc;
} CompileState;

static void CompileNode(CompileState *cs, Expr *node);
static void CompileLeaf(CompileState *cs, Expr *node);
static bool CompileOpExpr(CompileState *cs, OpExpr *op);
static bool CompileInList(CompileState *cs, ScalarArrayOpExpr *saop);
static SrStep *EmitStep(CompileState *cs, SrOpcode opcode);
static bool IntegerCmp(Oid opno, Oid family, SrCmp *cmp);
static SrCmp CommuteCmp(SrCmp cmp);
static void BuildHash(SrValueSet *set);
static bool CheckVarsWalker(Node *node, void *context);

/*
 * A qual stored when the table looked different may no longer apply: its
 * columns may have been dropped or retyped.  Returns a reason, or NULL.
 */
typedef struct CheckVarsContext
{
	TupleDesc	desc;
	char	   *reason;
} CheckVarsContext;

static char *
CheckQualAgainstDesc(Node *qual, TupleDesc desc)
{
	CheckVarsContext cxt;

	cxt.desc = desc;
	cxt.reason = NULL;
	(void) CheckVarsWalker(qual, &cxt);
	return cxt.reason;
}

static bool
CheckVarsWalker(Node *node, void *context)
{
	CheckVarsContext *cxt = (CheckVarsContext *) context;

	if (node == NULL)
		return false;
	check_stack_depth();
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;
		Form_pg_attribute att;

		if (var->varattno <= 0 || var->varattno > cxt->desc->natts)
		{
			cxt->reason = psprintf("column %d no longer exists", var->varattno);
			return true;
		}
		att = TupleDescAttr(cxt->desc, var->varattno - 1);
		if (att->attisdropped)
		{
			cxt->reason = psprintf("column %d was dropped", var->varattno);
			return true;
		}
		if (att->atttypid != var->vartype || att->attcollation != var->varcollid)
		{
			cxt->reason = psprintf("column \"%s\" changed type from %s to %s",
								   NameStr(att->attname),
								   format_type_be(var->vartype),
								   format_type_be(att->atttypid));
			return true;
		}
		return false;
	}
	return expression_tree_walker(node, CheckVarsWalker, context);
}

/*
 * Compile qual (NULL = every row) for tuples of desc.  The program and all
 * it points to are allocated in CurrentMemoryContext.  Returns NULL and sets
 * *invalid_reason if the qual no longer fits the table.
 */
SrProgram *
SrCompile(Node *qual, TupleDesc desc, char **invalid_reason)
{
	CompileState cs;
	SrProgram  *prog;
	Bitmapset  *attnums = NULL;
	int			attno;

	*invalid_reason = CheckQualAgainstDesc(qual, desc);
	if (*invalid_reason != NULL)
		return NULL;

	cs.maxsteps = 8;
	cs.steps = palloc(sizeof(SrStep) * cs.maxsteps);
	cs.nsteps = 0;
	cs.nacc = 0;
	cs.desc = desc;

	if (qual == NULL)
	{
		SrStep	   *step = EmitStep(&cs, SR_OP_CONST);

		step->value.i = SR_TRUE;
	}
	else
		CompileNode(&cs, (Expr *) qual);

	prog = palloc(offsetof(SrProgram, steps) + sizeof(SrStep) * cs.nsteps);
	prog->nsteps = cs.nsteps;
	prog->nacc = cs.nacc;
	prog->flatsize = 0;
	memcpy(prog->steps, cs.steps, sizeof(SrStep) * cs.nsteps);
	pfree(cs.steps);

	if (qual != NULL)
		pull_varattnos(qual, 1, &attnums);
	prog->attnums = NULL;
	prog->maxattno = 0;
	attno = -1;
	while ((attno = bms_next_member(attnums, attno)) >= 0)
	{
		AttrNumber	a = attno + FirstLowInvalidHeapAttributeNumber;

		prog->attnums = bms_add_member(prog->attnums, a);
		prog->maxattno = Max(prog->maxattno, a);
	}
	return prog;
}

/*
 * Flattening: a program, its attnums and its index keys copied into one
 * allocation, with nothing pointing into the parsed qual, so the tree and
 * every compile-time allocation can go (about 1 KB per shape otherwise).
 * Two passes over the same code: the first (base NULL) only sums sizes.
 */
typedef struct Flat
{
	char	   *base;
	Size		off;
} Flat;

static void *
FlatCopy(Flat *f, const void *src, Size size)
{
	void	   *p = f->base ? f->base + f->off : NULL;

	if (p && src)
		memcpy(p, src, size);
	f->off += MAXALIGN(size);
	return p;
}

static SrValueSet *
FlattenSet(Flat *f, const SrValueSet *set)
{
	SrValueSet *ns = FlatCopy(f, set, sizeof(SrValueSet));
	int32	   *slots = set->mask ?
		FlatCopy(f, set->slots, sizeof(int32) * (set->mask + 1)) : NULL;

	if (ns)
		ns->slots = slots;
	if (!set->is_text)
	{
		int64	   *ints = FlatCopy(f, set->ints, sizeof(int64) * set->nvalues);

		if (ns)
			ns->ints = ints;
		return ns;
	}
	{
		const char **strs = FlatCopy(f, NULL, sizeof(char *) * set->nvalues);
		int32	   *lens = FlatCopy(f, set->lens, sizeof(int32) * set->nvalues);

		for (int i = 0; i < set->nvalues; i++)
		{
			const char *str = FlatCopy(f, set->strs[i], set->lens[i]);

			if (strs)
				strs[i] = str;
		}
		if (ns)
		{
			ns->strs = strs;
			ns->lens = lens;
		}
	}
	return ns;
}

static SrProgram *
FlattenInto(Flat *f, const SrProgram *prog, const SrIndexKey *keys, int nkeys,
			SrIndexKey **keys_out)
{
	SrProgram  *np = FlatCopy(f, prog, offsetof(SrProgram, steps) +
							  sizeof(SrStep) * prog->nsteps);
	Bitmapset  *attnums = prog->attnums ?
		FlatCopy(f, prog->attnums, offsetof(Bitmapset, words) +
				 sizeof(bitmapword) * prog->attnums->nwords) : NULL;
	SrIndexKey *nk = nkeys > 0 ?
		FlatCopy(f, keys, sizeof(SrIndexKey) * nkeys) : NULL;

	if (np)
		np->attnums = attnums;
	for (int i = 0; i < prog->nsteps; i++)
	{
		const SrStep *step = &prog->steps[i];
		void	   *aux = NULL;

		if (step->opcode == SR_OP_TEXT_EQ)
			aux = FlatCopy(f, step->aux, VARSIZE_ANY(step->aux));
		else if (step->opcode == SR_OP_IN_SET)
			aux = FlattenSet(f, step->aux);
		if (np)
			np->steps[i].aux = aux;
	}
	for (int i = 0; i < nkeys; i++)
	{
		const SrIndexKey *k = &keys[i];

		switch ((SrKeyKind) k->kind)
		{
			case SR_KEY_PREFIX:
				if (nk)
				{
					nk[i].hash1 = k->hashes[0];
					nk[i].hashes = &nk[i].hash1;
				}
				break;
			case SR_KEY_EQ:
			case SR_KEY_ELEM:
			case SR_KEY_INFIX:
				if (k->nvalues == 1)
				{
					if (nk)
					{
						nk[i].hash1 = k->hashes[0];
						nk[i].hashes = &nk[i].hash1;
					}
				}
				else
				{
					uint32	   *hashes = FlatCopy(f, k->hashes,
												  sizeof(uint32) * k->nvalues);

					if (nk)
						nk[i].hashes = hashes;
				}
				break;
			case SR_KEY_RANGE:
				if (!k->boundbyval)
				{
					if (k->has_lower)
					{
						void	   *p = FlatCopy(f, DatumGetPointer(k->lower),
												 datumGetSize(k->lower, false, k->boundlen));

						if (nk)
							nk[i].lower = PointerGetDatum(p);
					}
					if (k->has_upper)
					{
						void	   *p = FlatCopy(f, DatumGetPointer(k->upper),
												 datumGetSize(k->upper, false, k->boundlen));

						if (nk)
							nk[i].upper = PointerGetDatum(p);
					}
				}
				break;
			default:
				break;
		}
	}
	if (keys_out)
		*keys_out = nk;
	return np;
}

/*
 * Bytes of one allocation holding prog and keys, or 0 if a step needs the
 * qual tree: PostgreSQL's function calls and executor steps keep pointers
 * into it.
 */
Size
SrProgramFlatSize(const SrProgram *prog, const SrIndexKey *keys, int nkeys)
{
	Flat		f = {NULL, 0};

	for (int i = 0; i < prog->nsteps; i++)
		if (prog->steps[i].opcode == SR_OP_FMGR ||
			prog->steps[i].opcode == SR_OP_EXPR)
			return 0;
	FlattenInto(&f, prog, keys, nkeys, NULL);
	return f.off;
}

/* Copy prog and keys into dest (SrProgramFlatSize() bytes, maxaligned) */
SrProgram *
SrProgramFlatten(const SrProgram *prog, const SrIndexKey *keys, int nkeys,
				 void *dest, SrIndexKey **keys_out)
{
	Flat		f = {dest, 0};
	SrProgram  *np = FlattenInto(&f, prog, keys, nkeys, keys_out);

	np->flatsize = f.off;
	return np;
}

/*
 * A flat chunk (SrProgramFlatten) copied from address old to prog, with
 * keys, already at their place in it: every pointer the chunk holds points
 * into it, so each moves by the same distance.  The shape cache (shapecache.c) loads chunks saved by another
 * process this way.
 */
#define SR_MOVED(p, delta) ((void *) ((char *) (p) + (delta)))

void
SrProgramRelocate(SrProgram *prog, SrIndexKey *keys, int nkeys,
				  const void *old)
{
	ptrdiff_t	delta = (char *) prog - (const char *) old;

	if (prog->attnums)
		prog->attnums = SR_MOVED(prog->attnums, delta);
	for (int i = 0; i < prog->nsteps; i++)
	{
		SrStep	   *step = &prog->steps[i];
		SrValueSet *set;

		if (step->opcode == SR_OP_TEXT_EQ)
			step->aux = SR_MOVED(step->aux, delta);
		if (step->opcode != SR_OP_IN_SET)
			continue;
		set = step->aux = SR_MOVED(step->aux, delta);
		if (set->mask)
			set->slots = SR_MOVED(set->slots, delta);
		if (!set->is_text)
		{
			set->ints = SR_MOVED(set->ints, delta);
			continue;
		}
		set->strs = SR_MOVED(set->strs, delta);
		set->lens = SR_MOVED(set->lens, delta);
		for (int j = 0; j < set->nvalues; j++)
			set->strs[j] = SR_MOVED(set->strs[j], delta);
	}
	for (int i = 0; i < nkeys; i++)
	{
		SrIndexKey *k = &keys[i];

		switch ((SrKeyKind) k->kind)
		{
			case SR_KEY_PREFIX:
			case SR_KEY_EQ:
			case SR_KEY_ELEM:
			case SR_KEY_INFIX:
				k->hashes = SR_MOVED(k->hashes, delta);
				break;
			case SR_KEY_RANGE:
				if (k->boundbyval)
					break;
				if (k->has_lower)
					k->lower = PointerGetDatum(SR_MOVED(DatumGetPointer(k->lower), delta));
				if (k->has_upper)
					k->upper = PointerGetDatum(SR_MOVED(DatumGetPointer(k->upper), delta));
				break;
			default:
				break;
		}
	}
}

static SrStep *
EmitStep(CompileState *cs, SrOpcode opcode)
{
	SrStep	   *step;

	if (cs->nsteps >= cs->maxsteps)
	{
		cs->maxsteps *= 2;
		cs->steps = repalloc(cs->steps, sizeof(SrStep) * cs->maxsteps);
	}
	step = &cs->steps[cs->nsteps++];
	memset(step, 0, sizeof(SrStep));
	step->opcode = opcode;
	return step;
}

static void
CompileNode(CompileState *cs, Expr *node)
{
	check_stack_depth();

	if (IsA(node, BoolExpr))
	{
		BoolExpr   *b = (BoolExpr *) node;

		if (b->boolop == NOT_EXPR)
		{
			CompileNode(cs, linitial(b->args));
			EmitStep(cs, SR_OP_NOT);
		}
		else
		{
			bool		is_and = (b->boolop == AND_EXPR);
			int			acc = cs->nacc++;
			int			first = cs->nsteps;
			int			nargs = list_length(b->args);
			int			i = 0;
			ListCell   *lc;

			if (acc > PG_INT16_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("shape WHERE clause has too many AND/OR operators")));
			foreach(lc, b->args)
			{
				SrStep	   *step;

				CompileNode(cs, lfirst(lc));
				if (++i < nargs)
					step = EmitStep(cs, is_and ? SR_OP_AND_STEP : SR_OP_OR_STEP);
				else
					step = EmitStep(cs, is_and ? SR_OP_AND_LAST : SR_OP_OR_LAST);
				step->arg = acc;
			}
			/* short-circuit jumps land just after the last step */
			for (i = first; i < cs->nsteps; i++)
			{
				SrStep	   *step = &cs->steps[i];

				if ((step->opcode == SR_OP_AND_STEP ||
					 step->opcode == SR_OP_OR_STEP) &&
					step->arg == acc)
					step->jump = cs->nsteps;
			}
		}
	}
	else
		CompileLeaf(cs, node);
}

/* Strip binary-compatible relabelling (varchar to text, domain to base) */
Var *
SrColumnOf(Node *node)
{
	while (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (node && IsA(node, Var))
		return (Var *) node;
	return NULL;
}

SrColType
SrColTypeOf(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
			return SR_COL_INT2;
		case INT4OID:
			return SR_COL_INT4;
		case INT8OID:
			return SR_COL_INT8;
		case FLOAT4OID:
			return SR_COL_FLOAT4;
		case FLOAT8OID:
			return SR_COL_FLOAT8;
		case TEXTOID:
		case VARCHAROID:
			return SR_COL_TEXT;
		default:
			return SR_COL_OTHER;
	}
}

static void
CompileLeaf(CompileState *cs, Expr *node)
{
	SrStep	   *step;
	Var		   *var;

	if (IsA(node, Const))
	{
		Const	   *c = (Const *) node;

		step = EmitStep(cs, SR_OP_CONST);
		step->value.i = c->constisnull ? SR_NULL :
			DatumGetBool(c->constvalue) ? SR_TRUE : SR_FALSE;
		return;
	}

	if ((var = SrColumnOf((Node *) node)) != NULL &&
		getBaseType(var->vartype) == BOOLOID)
	{
		step = EmitStep(cs, SR_OP_BOOL_COLUMN);
		step->arg = var->varattno - 1;
		return;
	}

	if (IsA(node, NullTest) && !((NullTest *) node)->argisrow &&
		(var = SrColumnOf((Node *) ((NullTest *) node)->arg)) != NULL &&
		!type_is_rowtype(var->vartype))
	{
		step = EmitStep(cs, SR_OP_NULLTEST);
		step->arg = var->varattno - 1;
		step->negate = (((NullTest *) node)->nulltesttype == IS_NOT_NULL);
		return;
	}

	if (IsA(node, BooleanTest) &&
		(var = SrColumnOf((Node *) ((BooleanTest *) node)->arg)) != NULL &&
		getBaseType(var->vartype) == BOOLOID)
	{
		step = EmitStep(cs, SR_OP_BOOLTEST);
		step->arg = var->varattno - 1;
		step->cmp = ((BooleanTest *) node)->booltesttype;
		return;
	}

	if (IsA(node, OpExpr) && CompileOpExpr(cs, (OpExpr *) node))
		return;
	if (IsA(node, ScalarArrayOpExpr) &&
		CompileInList(cs, (ScalarArrayOpExpr *) node))
		return;

	/* Anything else: PostgreSQL's executor evaluates the leaf. */
	step = EmitStep(cs, SR_OP_EXPR);
	step->aux = ExecInitExpr(node, NULL);
	step->value.d = PointerGetDatum(node);
}

/*
 * Map an operator of an integer-like btree family to a comparison; "<>" is
 * recognised as the negator of the family's "=".
 */
static bool
IntegerCmp(Oid opno, Oid family, SrCmp *cmp)
{
	int			strategy = get_op_opfamily_strategy(opno, family);
	Oid			negator;

	switch (strategy)
	{
		case BTLessStrategyNumber:
			*cmp = SR_CMP_LT;
			return true;
		case BTLessEqualStrategyNumber:
			*cmp = SR_CMP_LE;
			return true;
		case BTEqualStrategyNumber:
			*cmp = SR_CMP_EQ;
			return true;
		case BTGreaterEqualStrategyNumber:
			*cmp = SR_CMP_GE;
			return true;
		case BTGreaterStrategyNumber:
			*cmp = SR_CMP_GT;
			return true;
	}
	negator = get_negator(opno);
	if (OidIsValid(negator) &&
		get_op_opfamily_strategy(negator, family) == BTEqualStrategyNumber)
	{
		*cmp = SR_CMP_NE;
		return true;
	}
	return false;
}

static SrCmp
CommuteCmp(SrCmp cmp)
{
	switch (cmp)
	{
		case SR_CMP_LT:
			return SR_CMP_GT;
		case SR_CMP_LE:
			return SR_CMP_GE;
		case SR_CMP_GT:
			return SR_CMP_LT;
		case SR_CMP_GE:
			return SR_CMP_LE;
		default:
			return cmp;
	}
}

static int64
IntConstValue(Const *c)
{
	switch (SrColTypeOf(c->consttype))
	{
		case SR_COL_INT2:
			return DatumGetInt16(c->constvalue);
		case SR_COL_INT4:
			return DatumGetInt32(c->constvalue);
		default:
			return DatumGetInt64(c->constvalue);
	}
}

static bool
IsIntCol(SrColType t)
{
	return t == SR_COL_INT2 || t == SR_COL_INT4 || t == SR_COL_INT8;
}

static bool
IsFloatCol(SrColType t)
{
	return t == SR_COL_FLOAT4 || t == SR_COL_FLOAT8;
}

/* "column op constant" or "constant op column" */
static bool
CompileOpExpr(CompileState *cs, OpExpr *op)
{
	Node	   *left,
			   *right;
	Var		   *var;
	Const	   *c;
	bool		var_second;
	SrColType	vtype,
				ctype;
	SrCmp		cmp;
	SrStep	   *step;
	Oid			opfunc;

	if (list_length(op->args) != 2 || op->opresulttype != BOOLOID)
		return false;
	left = linitial(op->args);
	right = lsecond(op->args);
	if ((var = SrColumnOf(left)) != NULL && IsA(right, Const))
	{
		c = (Const *) right;
		var_second = false;
	}
	else if ((var = SrColumnOf(right)) != NULL && IsA(left, Const))
	{
		c = (Const *) left;
		var_second = true;
	}
	else
		return false;

	set_opfuncid(op);
	opfunc = op->opfuncid;

	/* A NULL constant and a strict operator: NULL for every row. */
	if (c->constisnull && func_strict(opfunc))
	{
		step = EmitStep(cs, SR_OP_CONST);
		step->value.i = SR_NULL;
		return true;
	}

	vtype = SrColTypeOf(var->vartype);
	ctype = SrColTypeOf(c->consttype);

	if (!c->constisnull)
	{
		if (IsIntCol(vtype) && IsIntCol(ctype) &&
			IntegerCmp(op->opno, INTEGER_BTREE_FAM_OID, &cmp))
		{
			step = EmitStep(cs, SR_OP_INT_CMP);
			step->value.i = IntConstValue(c);
		}
		else if (IsFloatCol(vtype) && IsFloatCol(ctype) &&
				 IntegerCmp(op->opno, SR_FLOAT_BTREE_FAM_OID, &cmp))
		{
			step = EmitStep(cs, SR_OP_FLOAT_CMP);
			step->value.f = (ctype == SR_COL_FLOAT4) ?
				(double) DatumGetFloat4(c->constvalue) :
				DatumGetFloat8(c->constvalue);
		}
		else if (vtype == SR_COL_TEXT && ctype == SR_COL_TEXT &&
				 (opfunc == F_TEXTEQ || opfunc == F_TEXTNE) &&
				 OidIsValid(op->inputcollid) &&
				 get_collation_isdeterministic(op->inputcollid))
		{
			step = EmitStep(cs, SR_OP_TEXT_EQ);
			step->negate = (opfunc == F_TEXTNE);
			step->aux = DatumGetTextPCopy(c->constvalue);
			cmp = SR_CMP_EQ;
		}
		else
			step = NULL;

		if (step)
		{
			step->arg = var->varattno - 1;
			step->coltype = vtype;
			step->cmp = var_second ? CommuteCmp(cmp) : cmp;
			return true;
		}
	}

	/* Generic: the operator's own function, with the constant pre-bound. */
	{
		FunctionCallInfo fcinfo = palloc0(SizeForFunctionCallInfo(2));
		FmgrInfo   *flinfo = palloc0(sizeof(FmgrInfo));
		int			cpos = var_second ? 0 : 1;

		fmgr_info(opfunc, flinfo);
		fmgr_info_set_expr((Node *) op, flinfo);
		InitFunctionCallInfoData(*fcinfo, flinfo, 2, op->inputcollid,
								 NULL, NULL);
		fcinfo->args[cpos].value = c->constvalue;
		fcinfo->args[cpos].isnull = c->constisnull;

		step = EmitStep(cs, SR_OP_FMGR);
		step->arg = var->varattno - 1;
		step->negate = var_second;
		step->aux = fcinfo;
		step->value.d = PointerGetDatum(op);
	}
	return true;
}

/*
 * "column IN (constants)" / "column = ANY(constant array)" and the negated
 * "NOT IN" / "<> ALL", for integers and deterministic text.
 */
static bool
CompileInList(CompileState *cs, ScalarArrayOpExpr *saop)
{
	Var		   *var;
	Const	   *c;
	SrColType	vtype,
				etype;
	SrCmp		cmp;
	ArrayType  *arr;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	SrValueSet *set;
	SrStep	   *step;
	bool		negate;
	Oid			opfunc;

	if (list_length(saop->args) != 2 ||
		(var = SrColumnOf(linitial(saop->args))) == NULL ||
		!IsA(lsecond(saop->args), Const) ||
		((Const *) lsecond(saop->args))->constisnull)
		return false;
	c = (Const *) lsecond(saop->args);
	vtype = SrColTypeOf(var->vartype);
	etype = SrColTypeOf(get_element_type(c->consttype));
	opfunc = get_opcode(saop->opno);

	if (IsIntCol(vtype) && IsIntCol(etype) &&
		IntegerCmp(saop->opno, INTEGER_BTREE_FAM_OID, &cmp) &&
		(cmp == SR_CMP_EQ || cmp == SR_CMP_NE))
		negate = (cmp == SR_CMP_NE);
	else if (vtype == SR_COL_TEXT && etype == SR_COL_TEXT &&
			 (opfunc == F_TEXTEQ || opfunc == F_TEXTNE) &&
			 OidIsValid(saop->inputcollid) &&
			 get_collation_isdeterministic(saop->inputcollid))
		negate = (opfunc == F_TEXTNE);
	else
		return false;
	/* "= ALL" and "<> ANY" are rare; leave them to the executor */
	if (negate == saop->useOr)
		return false;

	arr = DatumGetArrayTypeP(c->constvalue);
	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &elmlen, &elmbyval, &elmalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), elmlen, elmbyval, elmalign,
					  &elems, &nulls, &nelems);

	set = palloc0(sizeof(SrValueSet));
	set->is_text = (etype == SR_COL_TEXT);
	if (set->is_text)
	{
		set->strs = palloc(sizeof(char *) * Max(nelems, 1));
		set->lens = palloc(sizeof(int32) * Max(nelems, 1));
	}
	else
		set->ints = palloc(sizeof(int64) * Max(nelems, 1));

	for (int i = 0; i < nelems; i++)
	{
		if (nulls[i])
		{
			set->has_null = true;
			continue;
		}
		if (set->is_text)
		{
			text	   *t = DatumGetTextPCopy(elems[i]);

			set->strs[set->nvalues] = VARDATA_ANY(t);
			set->lens[set->nvalues] = VARSIZE_ANY_EXHDR(t);
		}
		else
		{
			switch (etype)
			{
				case SR_COL_INT2:
					set->ints[set->nvalues] = DatumGetInt16(elems[i]);
					break;
				case SR_COL_INT4:
					set->ints[set->nvalues] = DatumGetInt32(elems[i]);
					break;
				default:
					set->ints[set->nvalues] = DatumGetInt64(elems[i]);
					break;
			}
		}
		set->nvalues++;
	}
	/* PostgreSQL answers an empty array before looking at the column. */
	if (nelems == 0)
	{
		step = EmitStep(cs, SR_OP_CONST);
		step->value.i = saop->useOr ? SR_FALSE : SR_TRUE;
		return true;
	}
	if (set->nvalues > SR_HASH_MIN_VALUES)
		BuildHash(set);

	step = EmitStep(cs, SR_OP_IN_SET);
	step->arg = var->varattno - 1;
	step->coltype = vtype;
	step->negate = negate;
	step->aux = set;
	return true;
}

static inline uint64
HashValue(const SrValueSet *set, int64 ival, const char *str, int len)
{
	if (set->is_text)
		return XXH3_64bits(str, len);
	return XXH3_64bits(&ival, sizeof(ival));
}

/* Is the value (an integer, or len bytes at str) in the set? */
bool
SrValueSetContains(const SrValueSet *set, int64 ival, const char *str, int len)
{
	if (set->mask == 0)
	{
		for (int i = 0; i < set->nvalues; i++)
		{
			if (set->is_text ?
				(set->lens[i] == len && memcmp(set->strs[i], str, len) == 0) :
				set->ints[i] == ival)
				return true;
		}
		return false;
	}
	else
	{
		uint32		pos = (uint32) HashValue(set, ival, str, len) & set->mask;
		int32		slot;

		while ((slot = set->slots[pos]) != 0)
		{
			int			i = slot - 1;

			if (set->is_text ?
				(set->lens[i] == len && memcmp(set->strs[i], str, len) == 0) :
				set->ints[i] == ival)
				return true;
			pos = (pos + 1) & set->mask;
		}
		return false;
	}
}

static void
BuildHash(SrValueSet *set)
{
	uint32		size = 16;

	while (size < (uint32) set->nvalues * 2)
		size <<= 1;
	set->mask = size - 1;
	set->slots = palloc0(sizeof(int32) * size);
	for (int i = 0; i < set->nvalues; i++)
	{
		uint64		h = set->is_text ?
			HashValue(set, 0, set->strs[i], set->lens[i]) :
			HashValue(set, set->ints[i], NULL, 0);
		uint32		pos = (uint32) h & set->mask;

		while (set->slots[pos] != 0)
			pos = (pos + 1) & set->mask;
		set->slots[pos] = i + 1;
	}
}

static const char *const cmp_names[] = {"=", "<>", "<", "<=", ">", ">="};

static const char *
ColumnName(TupleDesc desc, int arg)
{
	return quote_identifier(NameStr(TupleDescAttr(desc, arg)->attname));
}

/* One line per step, for explain_shape() */
void
SrExplainProgram(const SrProgram *prog, TupleDesc desc, StringInfo buf)
{
	for (int i = 0; i < prog->nsteps; i++)
	{
		const SrStep *step = &prog->steps[i];

		appendStringInfo(buf, "\n  %d: ", i + 1);
		switch ((SrOpcode) step->opcode)
		{
			case SR_OP_CONST:
				appendStringInfoString(buf, step->value.i == SR_TRUE ? "true" :
									   step->value.i == SR_FALSE ? "false" : "null");
				break;
			case SR_OP_BOOL_COLUMN:
				appendStringInfo(buf, "%s [boolean column]",
								 ColumnName(desc, step->arg));
				break;
			case SR_OP_NULLTEST:
				appendStringInfo(buf, "%s IS %sNULL [null test]",
								 ColumnName(desc, step->arg),
								 step->negate ? "NOT " : "");
				break;
			case SR_OP_BOOLTEST:
				appendStringInfo(buf, "%s boolean test %d [boolean test]",
								 ColumnName(desc, step->arg), step->cmp);
				break;
			case SR_OP_INT_CMP:
				appendStringInfo(buf, "%s %s " INT64_FORMAT " [integer]",
								 ColumnName(desc, step->arg),
								 cmp_names[step->cmp], step->value.i);
				break;
			case SR_OP_FLOAT_CMP:
				appendStringInfo(buf, "%s %s %g [float]",
								 ColumnName(desc, step->arg),
								 cmp_names[step->cmp], step->value.f);
				break;
			case SR_OP_TEXT_EQ:
				appendStringInfo(buf, "%s %s %s [text bytes]",
								 ColumnName(desc, step->arg),
								 step->negate ? "<>" : "=",
								 quote_literal_cstr(text_to_cstring(step->aux)));
				break;
			case SR_OP_IN_SET:
				appendStringInfo(buf, "%s %s %d values [%s set]",
								 ColumnName(desc, step->arg),
								 step->negate ? "NOT IN" : "IN",
								 ((SrValueSet *) step->aux)->nvalues,
								 ((SrValueSet *) step->aux)->mask ? "hashed" : "linear");
				break;
			case SR_OP_FMGR:
				appendStringInfo(buf, "%s %s constant [function %s]",
								 ColumnName(desc, step->arg),
								 get_opname(((OpExpr *) DatumGetPointer(step->value.d))->opno),
								 format_procedure(((OpExpr *) DatumGetPointer(step->value.d))->opfuncid));
				break;
			case SR_OP_EXPR:
				appendStringInfoString(buf, "expression [executor]");
				break;
			case SR_OP_AND_STEP:
				appendStringInfo(buf, "AND: if false go to %d", step->jump + 1);
				break;
			case SR_OP_AND_LAST:
				appendStringInfoString(buf, "AND: end");
				break;
			case SR_OP_OR_STEP:
				appendStringInfo(buf, "OR: if true go to %d", step->jump + 1);
				break;
			case SR_OP_OR_LAST:
				appendStringInfoString(buf, "OR: end");
				break;
			case SR_OP_NOT:
				appendStringInfoString(buf, "NOT");
				break;
		}
	}
}
