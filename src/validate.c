/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Parse, analyse and validate a shape's WHERE clause.
 *
 * The clause is parsed with PostgreSQL's own grammar and analysed against
 * the shape's table, exactly as a WHERE clause of "SELECT ... FROM rel" would
 * be, then checked so that only constructs whose answer depends on nothing
 * but the row remain: the table's user columns, constants, and built-in
 * immutable functions and operators over built-in types, user enums,
 * domains over allowed types and arrays of allowed types.  Every refusal is
 * an ereport naming the construct; parse positions point into the clause.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/sysattr.h"
#include "catalog/heap.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/readfuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "validate.h"

typedef struct CheckContext
{
	ParseState *pstate;
	Relation	rel;
	Oid			bad_funcid;		/* set by CheckFunction */
	int			location;		/* >= 0: report errors here (domain checks) */
} CheckContext;

static void ClauseErrorCallback(void *arg);
static Node *ParseClause(CheckContext *cxt, const char *clause);
static bool RawCheckWalker(Node *node, CheckContext *cxt);
static bool QualCheckWalker(Node *node, CheckContext *cxt);
static bool CheckFunction(Oid funcid, void *context);
static void CheckDomainConstraints(Oid typid, Node *node, CheckContext *cxt);
static char *DeparseQual(Relation rel, Node *qual);
static bool TypeIsAllowed(Oid typid);
static void CheckType(Oid typid, Node *node, CheckContext *cxt);
static void CheckOperator(Oid opno, Node *node, CheckContext *cxt);
static const char *DisallowedNodeDetail(Node *node);

#define REFUSE(cxt, node, ...) \
	ereport(ERROR, \
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED), \
			 errmsg("invalid WHERE clause for a shape on table \"%s\"", \
					RelationGetRelationName((cxt)->rel)), \
			 errdetail(__VA_ARGS__), \
			 parser_errposition((cxt)->pstate, ErrorLocation(cxt, (Node *) (node)))))

static int
ErrorLocation(CheckContext *cxt, Node *node)
{
	return cxt->location >= 0 ? cxt->location : exprLocation(node);
}

/*
 * Report error positions relative to the clause, as an internal query, the
 * way PL/pgSQL does for its expressions: the client's statement is a call of
 * add_shape(), in which a position would point at the wrong text.
 */
static void
ClauseErrorCallback(void *arg)
{
	const char *clause = (const char *) arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(clause);
	}
}

void
SrValidateClause(Relation rel, const char *clause, SrClause *out)
{
	ErrorContextCallback errcallback;
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	CheckContext cxt;
	Node	   *raw;
	Node	   *qual;
	size_t		len = strlen(clause);

	if (len > SR_MAX_CLAUSE_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("WHERE clause is too long"),
				 errdetail("The clause is %zu bytes; at most %d bytes are accepted.",
						   len, SR_MAX_CLAUSE_LENGTH)));

	errcallback.callback = ClauseErrorCallback;
	errcallback.arg = (void *) clause;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = clause;
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock,
										   NULL, false, false);
	addNSItemToQuery(pstate, nsitem, false, true, true);

	cxt.pstate = pstate;
	cxt.rel = rel;
	cxt.bad_funcid = InvalidOid;
	cxt.location = -1;

	raw = ParseClause(&cxt, clause);
	RawCheckWalker(raw, &cxt);

	/*
	 * Analyse as a select-list entry rather than as a WHERE clause, so that
	 * aggregates and window functions reach our walker and get the same
	 * SQLSTATE as every other refused construct.
	 */
	qual = transformExpr(pstate, raw, EXPR_KIND_SELECT_TARGET);
	if (expression_returns_set(qual))
		REFUSE(&cxt, qual, "Set-returning functions are not allowed.");
	qual = coerce_to_boolean(pstate, qual, "WHERE");
	assign_expr_collations(pstate, qual);
	QualCheckWalker(qual, &cxt);

	/* Before folding, which turns COLLATE clauses into plain relabelling */
	out->where_clause = DeparseQual(rel, qual);

	/*
	 * Fold constants now, once: IN lists become constant arrays, immutable
	 * calls on constants are computed, and errors such as division by zero
	 * in constants surface here rather than while decoding.  The folded qual
	 * is checked again, since folding may inline built-in SQL functions.
	 */
	qual = eval_const_expressions(NULL, qual);
	QualCheckWalker(qual, &cxt);
	if (contain_mutable_functions(qual))
		elog(ERROR, "shape qual contains mutable functions after validation");
	if (strlen(nodeToString(qual)) > SR_MAX_QUAL_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("WHERE clause is too large"),
				 errdetail("Its constants add up to more than %d bytes.",
						   SR_MAX_QUAL_LENGTH)));

	out->qual = qual;
	out->attnums = NULL;
	{
		Bitmapset  *offset = NULL;
		int			a = -1;

		pull_varattnos(qual, 1, &offset);
		while ((a = bms_next_member(offset, a)) >= 0)
			out->attnums = bms_add_member(out->attnums,
										  a + FirstLowInvalidHeapAttributeNumber);
	}

	error_context_stack = errcallback.previous;
	free_parsestate(pstate);
}

/*
 * Parse the clause as a PL/pgSQL expression (a select list without SELECT),
 * which gives parse positions relative to the clause itself, then insist on
 * exactly one unlabelled expression and nothing else.
 */
static Node *
ParseClause(CheckContext *cxt, const char *clause)
{
	ParseState *pstate = cxt->pstate;
	List	   *parsetree;
	SelectStmt *stmt;
	ResTarget  *target;
	const char *extra = NULL;

	parsetree = raw_parser(clause, RAW_PARSE_PLPGSQL_EXPR);
	if (list_length(parsetree) != 1 ||
		!IsA(((RawStmt *) linitial(parsetree))->stmt, SelectStmt))
		elog(ERROR, "unexpected parse result for a shape WHERE clause");
	stmt = (SelectStmt *) ((RawStmt *) linitial(parsetree))->stmt;

	if (stmt->targetList == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("WHERE clause is empty"),
				 errhint("Pass NULL as the clause for a shape of every row.")));
	if (stmt->fromClause != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("invalid WHERE clause for a shape on table \"%s\"",
						RelationGetRelationName(cxt->rel)),
				 errdetail("References to other tables are not allowed.")));

	if (list_length(stmt->targetList) > 1)
		extra = "more than one expression";
	else if (stmt->distinctClause != NIL)
		extra = "DISTINCT";
	else if (stmt->whereClause != NULL)
		extra = "WHERE";
	else if (stmt->groupClause != NIL)
		extra = "GROUP BY";
	else if (stmt->havingClause != NULL)
		extra = "HAVING";
	else if (stmt->windowClause != NIL)
		extra = "WINDOW";
	else if (stmt->sortClause != NIL)
		extra = "ORDER BY";
	else if (stmt->limitCount != NULL || stmt->limitOffset != NULL)
		extra = "LIMIT or OFFSET";
	else if (stmt->lockingClause != NIL)
		extra = "a locking clause";
	else if (stmt->intoClause != NULL)
		extra = "INTO";
	if (extra)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("WHERE clause must be a single boolean expression"),
				 errdetail("The clause contains %s.", extra)));

	target = linitial_node(ResTarget, stmt->targetList);
	if (target->name != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("WHERE clause must be a single boolean expression"),
				 errdetail("The clause contains a column label."),
				 parser_errposition(pstate, target->location)));
	return target->val;
}

/*
 * Refuse, before analysis, what analysis would otherwise report with a
 * different SQLSTATE or only after touching other tables: subqueries,
 * parameters, aggregates and window calls, and references to other tables.
 */
static bool
RawCheckWalker(Node *node, CheckContext *cxt)
{
	if (node == NULL)
		return false;
	check_stack_depth();

	switch (nodeTag(node))
	{
		case T_SubLink:
			REFUSE(cxt, node, "Subqueries are not allowed.");
			break;
		case T_ParamRef:
			REFUSE(cxt, node, "Parameters are not allowed.");
			break;
		case T_GroupingFunc:
			REFUSE(cxt, node, "Grouping operations are not allowed.");
			break;
		case T_FuncCall:
			{
				FuncCall   *fc = (FuncCall *) node;

				if (fc->over != NULL)
					REFUSE(cxt, node, "Window functions are not allowed.");
				if (fc->agg_star || fc->agg_distinct || fc->agg_order != NIL ||
					fc->agg_filter != NULL || fc->agg_within_group)
					REFUSE(cxt, node, "Aggregate functions are not allowed.");
				break;
			}
		case T_ColumnRef:
			{
				ColumnRef  *cref = (ColumnRef *) node;
				int			nfields = list_length(cref->fields);
				Node	   *last = llast(cref->fields);
				Relation	rel = cxt->rel;

				if (IsA(last, A_Star))
					REFUSE(cxt, node, "Whole-row references are not allowed.");

				/*
				 * "a.b" names table a's column b, or field b of column a; the
				 * parser would report an unknown "a" as a missing FROM item.
				 */
				if (nfields >= 2)
				{
					const char *first = strVal(linitial(cref->fields));
					bool		ours;

					if (nfields == 2)
						ours = strcmp(first, RelationGetRelationName(rel)) == 0 ||
							get_attnum(RelationGetRelid(rel), first) != InvalidAttrNumber;
					else if (nfields == 3)
					{
						char	   *nspname = get_namespace_name(RelationGetNamespace(rel));

						ours = (strcmp(first, nspname) == 0 &&
								strcmp(strVal(lsecond(cref->fields)),
									   RelationGetRelationName(rel)) == 0) ||
							strcmp(first, RelationGetRelationName(rel)) == 0;
					}
					else
						ours = true;	/* let the parser report it */
					if (!ours)
						REFUSE(cxt, node, "References to other tables are not allowed.");
				}
				break;
			}
		default:
			break;
	}
	return raw_expression_tree_walker(node, RawCheckWalker, (void *) cxt);
}

/*
 * Walk the analysed qual: every node must be of an allowed kind, every type
 * allowed, every operator and function built in and immutable.
 */
static bool
QualCheckWalker(Node *node, CheckContext *cxt)
{
	if (node == NULL)
		return false;
	check_stack_depth();

	switch (nodeTag(node))
	{
		case T_Var:
			{
				Var		   *var = (Var *) node;

				if (var->varlevelsup != 0 || var->varno != 1)
					REFUSE(cxt, node, "References to other tables are not allowed.");
				if (var->varattno < 0)
					REFUSE(cxt, node, "System column \"%s\" is not allowed.",
						   NameStr(SystemAttributeDefinition(var->varattno)->attname));
				if (var->varattno == 0)
					REFUSE(cxt, node, "Whole-row references are not allowed.");
				CheckType(var->vartype, node, cxt);
				break;
			}
		case T_Const:
			CheckType(((Const *) node)->consttype, node, cxt);
			break;
		case T_FuncExpr:
			if (((FuncExpr *) node)->funcretset)
				REFUSE(cxt, node, "Set-returning functions are not allowed.");
			CheckType(exprType(node), node, cxt);
			break;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			if (((OpExpr *) node)->opretset)
				REFUSE(cxt, node, "Set-returning functions are not allowed.");
			CheckOperator(((OpExpr *) node)->opno, node, cxt);
			CheckType(exprType(node), node, cxt);
			break;
		case T_ScalarArrayOpExpr:
			CheckOperator(((ScalarArrayOpExpr *) node)->opno, node, cxt);
			break;
		case T_RowCompareExpr:
			{
				ListCell   *lc;

				foreach(lc, ((RowCompareExpr *) node)->opnos)
					CheckOperator(lfirst_oid(lc), node, cxt);
				break;
			}
		case T_SubscriptingRef:
			if (((SubscriptingRef *) node)->refassgnexpr != NULL)
				REFUSE(cxt, node, "Subscripted assignments are not allowed.");
			CheckType(exprType(node), node, cxt);
			break;
		case T_CoerceToDomain:
			CheckType(exprType(node), node, cxt);
			CheckDomainConstraints(((CoerceToDomain *) node)->resulttype,
								   node, cxt);
			break;
		case T_RelabelType:
		case T_CoerceViaIO:
		case T_ArrayCoerceExpr:
		case T_CollateExpr:
		case T_CaseExpr:
		case T_ArrayExpr:
		case T_RowExpr:
		case T_CoalesceExpr:
		case T_MinMaxExpr:
			CheckType(exprType(node), node, cxt);
			break;
		case T_BoolExpr:
		case T_NullTest:
		case T_BooleanTest:
		case T_CaseWhen:
		case T_CaseTestExpr:
		case T_CoerceToDomainValue:
		case T_List:
			break;
		default:
			REFUSE(cxt, node, "%s", DisallowedNodeDetail(node));
	}

	if (check_functions_in_node(node, CheckFunction, (void *) cxt))
	{
		Oid			funcid = cxt->bad_funcid;

		if (funcid >= FirstNormalObjectId)
			REFUSE(cxt, node, "User-defined function %s is not allowed.",
				   format_procedure(funcid));
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("invalid WHERE clause for a shape on table \"%s\"",
						RelationGetRelationName(cxt->rel)),
				 errdetail("Function %s is not immutable.",
						   format_procedure(funcid)),
				 errhint("Only immutable functions and operators are allowed, so that a row's shapes never depend on when it is decoded."),
				 parser_errposition(cxt->pstate, ErrorLocation(cxt, node))));
	}

	return expression_tree_walker(node, QualCheckWalker, (void *) cxt);
}

/* The type a domain is directly based on */
static Oid
DomainBaseType(Oid typid)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	Oid			base;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	base = ((Form_pg_type) GETSTRUCT(tup))->typbasetype;
	ReleaseSysCache(tup);
	return base;
}

/*
 * A cast to a domain runs the domain's CHECK constraints (and those of the
 * domains it is based on): they obey the same rules as the clause.  Their
 * stored form is checked, not the planner's, which inlines SQL functions.
 */
static void
CheckDomainConstraints(Oid typid, Node *node, CheckContext *cxt)
{
	int			save = cxt->location;

	cxt->location = ErrorLocation(cxt, node);
	while (get_typtype(typid) == TYPTYPE_DOMAIN)
	{
		Relation	conrel = table_open(ConstraintRelationId, AccessShareLock);
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;

		ScanKeyInit(&key, Anum_pg_constraint_contypid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(typid));
		scan = systable_beginscan(conrel, ConstraintTypidIndexId, true, NULL,
								  1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
			bool		isnull;
			Datum		bin;

			if (con->contype != CONSTRAINT_CHECK)
				continue;
			bin = heap_getattr(tup, Anum_pg_constraint_conbin,
							   RelationGetDescr(conrel), &isnull);
			if (!isnull)
				QualCheckWalker(stringToNode(TextDatumGetCString(bin)), cxt);
		}
		systable_endscan(scan);
		table_close(conrel, AccessShareLock);
		typid = DomainBaseType(typid);
	}
	cxt->location = save;
}

static bool
CheckFunction(Oid funcid, void *context)
{
	CheckContext *cxt = (CheckContext *) context;

	if (funcid >= FirstNormalObjectId ||
		func_volatile(funcid) != PROVOLATILE_IMMUTABLE)
	{
		cxt->bad_funcid = funcid;
		return true;
	}
	return false;
}

static void
CheckOperator(Oid opno, Node *node, CheckContext *cxt)
{
	if (opno >= FirstNormalObjectId)
		REFUSE(cxt, node, "User-defined operator %s is not allowed.",
			   format_operator(opno));
}

/*
 * Built-in types, user enums, domains over allowed types and arrays of
 * allowed types.  Other user types (composites, ranges, base types) can run
 * user code in their operators and I/O.
 */
static bool
TypeIsAllowed(Oid typid)
{
	HeapTuple	tup;
	Form_pg_type typ;
	bool		result;

	if (typid < FirstNormalObjectId)
		return true;

	check_stack_depth();
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	typ = (Form_pg_type) GETSTRUCT(tup);

	if (typ->typtype == TYPTYPE_ENUM)
		result = true;
	else if (typ->typtype == TYPTYPE_DOMAIN)
		result = TypeIsAllowed(typ->typbasetype);
	else if (IsTrueArrayType(typ))
		result = TypeIsAllowed(typ->typelem);
	else
		result = false;

	ReleaseSysCache(tup);
	return result;
}

static void
CheckType(Oid typid, Node *node, CheckContext *cxt)
{
	if (!TypeIsAllowed(typid))
		REFUSE(cxt, node, "User-defined type %s is not allowed.",
			   format_type_be(typid));
}

static const char *
DisallowedNodeDetail(Node *node)
{
	switch (nodeTag(node))
	{
		case T_SubLink:
		case T_SubPlan:
			return "Subqueries are not allowed.";
		case T_Aggref:
			return "Aggregate functions are not allowed.";
		case T_WindowFunc:
			return "Window functions are not allowed.";
		case T_GroupingFunc:
			return "Grouping operations are not allowed.";
		case T_Param:
			return "Parameters are not allowed.";
		case T_SQLValueFunction:
			return "SQL value functions such as CURRENT_DATE and CURRENT_USER are not allowed.";
		case T_NextValueExpr:
			return "Sequence functions are not allowed.";
		case T_FieldSelect:
		case T_FieldStore:
			return "Field selection from composite values is not allowed.";
		case T_XmlExpr:
			return "XML expressions are not allowed.";
		case T_ConvertRowtypeExpr:
			return "Row type conversions are not allowed.";
		case T_SetToDefault:
			return "DEFAULT is not allowed.";
		case T_CurrentOfExpr:
			return "CURRENT OF is not allowed.";
		default:
			return "This kind of expression is not allowed.";
	}
}

/*
 * Settings under which a qual's normalised text is written and read back
 * (the search for a shape's initial members): dates, times and floats the
 * way pg_dump writes them, names qualified unless in pg_catalog.  Returns
 * the GUC nest level to pass to AtEOXact_GUC(true, ...).
 */
int
SrPushQualTextSettings(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("datestyle", "ISO", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("timezone", "UTC", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/* The normalised text of a qual, independent of the session */
static char *
DeparseQual(Relation rel, Node *qual)
{
	int			nestlevel = SrPushQualTextSettings();
	char	   *text;

	text = deparse_expression(qual,
							  deparse_context_for(RelationGetRelationName(rel),
												  RelationGetRelid(rel)),
							  false, false);
	AtEOXact_GUC(true, nestlevel);
	return text;
}
