/*-------------------------------------------------------------------------
 *
 * keysel.c
 *	  Estimated selectivity of a conjunct: the fraction of a table's rows
 *	  it is true for, which decides the access path a shape is filed under.
 *
 * With statistics (pg_statistic, read through the syscache, under the
 * historic snapshot when decoding): the planner's own reasoning, made
 * simple.  The operator is evaluated on the most common values (their
 * frequencies count where it holds) and on the histogram's bounds (the
 * fraction that satisfies it, times the rows outside the MCV list);
 * equality outside the MCV list gets the rest of the rows spread over the
 * other distinct values, as var_eq_const() does.  Without statistics, a
 * fixed ranking by operator (see DefaultSelectivity).  Only operators
 * whose restriction estimator is one of the planner's scalar ones are
 * evaluated on sample values: those never raise on a column's values.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_statistic.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"

#include "compile.h"
#include "keysel.h"

/* Elements of an IN list estimated one by one; the rest by proportion */
#define SR_MAX_IN_ESTIMATE	64

/* Below anything a real estimate gives: a conjunct is never free */
#define SR_MIN_SEL	1.0e-7

/*
 * Without statistics: the old fixed ranking, as fractions.  Equality is
 * the planner's DEFAULT_EQ_SEL; a LIKE prefix, a substring or an array
 * element are narrower than a one-sided range, a boolean or IS [NOT] NULL
 * are the widest.
 */
static double
DefaultSelectivity(Node *clause)
{
	if (IsA(clause, OpExpr))
	{
		Oid			rest = get_oprrest(((OpExpr *) clause)->opno);

		switch (rest)
		{
			case F_EQSEL:
				return DEFAULT_EQ_SEL;
			case F_SCALARLTSEL:
			case F_SCALARLESEL:
			case F_SCALARGTSEL:
			case F_SCALARGESEL:
				return DEFAULT_INEQ_SEL;
			case F_LIKESEL:
			case F_PREFIXSEL:
				return 0.01;
			default:
				return 0.02;
		}
	}
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;
		Node	   *arr = lsecond(saop->args);
		int			n = 1;

		if (IsA(arr, Const) && !((Const *) arr)->constisnull)
			n = ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(((Const *) arr)->constvalue)),
							   ARR_DIMS(DatumGetArrayTypeP(((Const *) arr)->constvalue)));
		return Min(1.0, DEFAULT_EQ_SEL * Max(n, 1));
	}
	if (IsA(clause, NullTest))
		return ((NullTest *) clause)->nulltesttype == IS_NULL ? 0.5 : 0.9;
	/* boolean column, IS TRUE / IS FALSE, NOT column */
	return 0.4;
}

static bool
EvaluableOperator(Oid opno)
{
	Oid			ltype,
				rtype;

	/*
	 * Enum comparisons may look pg_enum up through the typcache, which can
	 * fail under a historic snapshot: enums get the fixed ranking.
	 */
	op_input_types(opno, &ltype, &rtype);
	if (type_is_enum(ltype) || type_is_enum(rtype))
		return false;
	switch (get_oprrest(opno))
	{
		case F_EQSEL:
		case F_SCALARLTSEL:
		case F_SCALARLESEL:
		case F_SCALARGTSEL:
		case F_SCALARGESEL:
			return true;
		default:
			return false;
	}
}

/* A column's statistics, or NULL (then the caller releases nothing) */
static HeapTuple
ColumnStats(Oid relid, AttrNumber attno)
{
	if (!OidIsValid(relid))
		return NULL;
	return SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(relid),
						   Int16GetDatum(attno), BoolGetDatum(false));
}

static double
DistinctValues(Oid relid, Form_pg_statistic s)
{
	HeapTuple	tup;
	double		reltuples = 0;

	if (s->stadistinct > 0)
		return s->stadistinct;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tup))
	{
		reltuples = ((Form_pg_class) GETSTRUCT(tup))->reltuples;
		ReleaseSysCache(tup);
	}
	return reltuples > 0 ? -s->stadistinct * reltuples : 0;
}

/*
 * Fraction of rows where "column op value" (or "value op column") holds,
 * from the column's statistics; false if there are none.
 */
static bool
OpFraction(Oid relid, AttrNumber attno, Oid opno, Oid collation,
		   Datum value, bool var_left, double *sel)
{
	HeapTuple	stats = ColumnStats(relid, attno);
	Form_pg_statistic s;
	AttStatsSlot mcv,
				hist;
	FmgrInfo	f;
	double		mcvsel = 0,
				sumcommon = 0,
				rest;
	bool		eq = get_oprrest(opno) == F_EQSEL;
	bool		matched = false;
	bool		have_mcv,
				have_hist;

	if (!HeapTupleIsValid(stats))
		return false;
	s = (Form_pg_statistic) GETSTRUCT(stats);
	fmgr_info(get_opcode(opno), &f);

	have_mcv = get_attstatsslot(&mcv, stats, STATISTIC_KIND_MCV, InvalidOid,
								ATTSTATSSLOT_VALUES | ATTSTATSSLOT_NUMBERS);
	for (int i = 0; have_mcv && i < mcv.nvalues; i++)
	{
		Datum		r = var_left ?
			FunctionCall2Coll(&f, collation, mcv.values[i], value) :
			FunctionCall2Coll(&f, collation, value, mcv.values[i]);

		sumcommon += mcv.numbers[i];
		if (DatumGetBool(r))
		{
			mcvsel += mcv.numbers[i];
			matched = true;
		}
	}
	rest = Max(0.0, 1.0 - sumcommon - s->stanullfrac);
	if (eq)
	{
		double		nd = DistinctValues(relid, s) - (have_mcv ? mcv.nvalues : 0);

		/* a most common value: its own frequency, else its share of the rest */
		*sel = matched ? mcvsel : (nd >= 1 ? rest / nd : DEFAULT_EQ_SEL * rest);
	}
	else
	{
		double		histfrac = DEFAULT_INEQ_SEL;

		have_hist = get_attstatsslot(&hist, stats, STATISTIC_KIND_HISTOGRAM,
									 InvalidOid, ATTSTATSSLOT_VALUES);
		if (have_hist && hist.nvalues > 1)
		{
			int			n = 0;

			for (int i = 0; i < hist.nvalues; i++)
				if (DatumGetBool(var_left ?
								 FunctionCall2Coll(&f, collation, hist.values[i], value) :
								 FunctionCall2Coll(&f, collation, value, hist.values[i])))
					n++;
			histfrac = (double) n / hist.nvalues;
		}
		if (have_hist)
			free_attstatsslot(&hist);
		*sel = mcvsel + rest * histfrac;
	}
	if (have_mcv)
		free_attstatsslot(&mcv);
	ReleaseSysCache(stats);
	return true;
}

static bool
NullFraction(Oid relid, AttrNumber attno, double *nullfrac)
{
	HeapTuple	stats = ColumnStats(relid, attno);

	if (!HeapTupleIsValid(stats))
		return false;
	*nullfrac = ((Form_pg_statistic) GETSTRUCT(stats))->stanullfrac;
	ReleaseSysCache(stats);
	return true;
}

static double ClauseSelectivity(Oid relid, Node *clause, bool *from_stats);

/* var op const or const op var, with statistics if there are */
static double
OpExprSelectivity(Oid relid, OpExpr *op, bool *from_stats)
{
	Var		   *var;
	Node	   *other;
	bool		var_left = true;
	double		sel;

	if (list_length(op->args) != 2)
		return DefaultSelectivity((Node *) op);
	if ((var = SrColumnOf(linitial(op->args))) != NULL)
		other = lsecond(op->args);
	else if ((var = SrColumnOf(lsecond(op->args))) != NULL)
	{
		other = linitial(op->args);
		var_left = false;
	}
	else
		return DefaultSelectivity((Node *) op);
	if (!IsA(other, Const) || ((Const *) other)->constisnull ||
		!EvaluableOperator(op->opno) ||
		!OpFraction(relid, var->varattno, op->opno, op->inputcollid,
					((Const *) other)->constvalue, var_left, &sel))
		return DefaultSelectivity((Node *) op);
	*from_stats = true;
	return sel;
}

/* column = ANY (constant array): the sum over the elements */
static double
InSelectivity(Oid relid, ScalarArrayOpExpr *saop, bool *from_stats)
{
	Var		   *var = SrColumnOf(linitial(saop->args));
	Node	   *arr = lsecond(saop->args);
	ArrayType  *a;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	double		sel = 0;

	if (var == NULL || !saop->useOr || !IsA(arr, Const) ||
		((Const *) arr)->constisnull || !EvaluableOperator(saop->opno))
		return DefaultSelectivity((Node *) saop);
	a = DatumGetArrayTypeP(((Const *) arr)->constvalue);
	get_typlenbyvalalign(ARR_ELEMTYPE(a), &typlen, &typbyval, &typalign);
	deconstruct_array(a, ARR_ELEMTYPE(a), typlen, typbyval, typalign,
					  &elems, &nulls, &n);
	/* a long list: its first elements, scaled, each costs a stats lookup */
	for (int i = 0; i < Min(n, SR_MAX_IN_ESTIMATE); i++)
	{
		double		s;

		CHECK_FOR_INTERRUPTS();
		if (nulls[i])
			continue;
		if (!OpFraction(relid, var->varattno, saop->opno, saop->inputcollid,
						elems[i], true, &s))
			return DefaultSelectivity((Node *) saop);
		sel += s;
		*from_stats = true;
	}
	if (n > SR_MAX_IN_ESTIMATE)
		sel *= (double) n / SR_MAX_IN_ESTIMATE;
	return Min(sel, 1.0);
}

/* boolean column, IS TRUE, IS FALSE, NOT column: as column = true/false */
static double
BoolSelectivity(Oid relid, Node *clause, Var *var, bool want,
				bool *from_stats)
{
	double		sel;

	if (!OpFraction(relid, var->varattno, BooleanEqualOperator, InvalidOid,
					BoolGetDatum(want), true, &sel))
		return DefaultSelectivity(clause);
	*from_stats = true;
	return sel;
}

static double
ClauseSelectivity(Oid relid, Node *clause, bool *from_stats)
{
	Var		   *var;

	check_stack_depth();
	if (IsA(clause, BoolExpr))
	{
		BoolExpr   *b = (BoolExpr *) clause;
		ListCell   *lc;
		double		sel;

		if (b->boolop == NOT_EXPR)
		{
			var = SrColumnOf(linitial(b->args));
			if (var && getBaseType(var->vartype) == BOOLOID)
				return BoolSelectivity(relid, clause, var, false, from_stats);
			return DefaultSelectivity(clause);
		}
		/* OR: the sum of its arms; AND: their product */
		sel = b->boolop == OR_EXPR ? 0 : 1;
		*from_stats = true;
		foreach(lc, b->args)
		{
			bool		arm_stats = false;
			double		s = ClauseSelectivity(relid, lfirst(lc), &arm_stats);

			/* from statistics only if every arm is */
			*from_stats = *from_stats && arm_stats;
			sel = b->boolop == OR_EXPR ? sel + s : sel * s;
		}
		return Min(sel, 1.0);
	}
	if ((var = SrColumnOf(clause)) != NULL && getBaseType(var->vartype) == BOOLOID)
		return BoolSelectivity(relid, clause, var, true, from_stats);
	if (IsA(clause, BooleanTest) &&
		(var = SrColumnOf((Node *) ((BooleanTest *) clause)->arg)) != NULL)
	{
		BoolTestType t = ((BooleanTest *) clause)->booltesttype;

		if (t == IS_TRUE || t == IS_FALSE)
			return BoolSelectivity(relid, clause, var, t == IS_TRUE, from_stats);
		return DefaultSelectivity(clause);
	}
	if (IsA(clause, NullTest) &&
		(var = SrColumnOf((Node *) ((NullTest *) clause)->arg)) != NULL)
	{
		double		nullfrac;

		if (!NullFraction(relid, var->varattno, &nullfrac))
			return DefaultSelectivity(clause);
		*from_stats = true;
		return ((NullTest *) clause)->nulltesttype == IS_NULL ?
			nullfrac : 1.0 - nullfrac;
	}
	if (IsA(clause, OpExpr))
		return OpExprSelectivity(relid, (OpExpr *) clause, from_stats);
	if (IsA(clause, ScalarArrayOpExpr))
		return InSelectivity(relid, (ScalarArrayOpExpr *) clause, from_stats);
	return DefaultSelectivity(clause);
}

double
SrEstimateSelectivity(Oid relid, Node *clause, bool *from_stats)
{
	double		sel;

	*from_stats = false;
	sel = ClauseSelectivity(relid, clause, from_stats);
	return Max(sel, SR_MIN_SEL);
}
