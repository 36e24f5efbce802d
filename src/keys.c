/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  A shape's access paths: the index keys of its qual.
 *
 * Each conjunct of the qual's top AND that has keys is one access path (a
 * conjunct that is an OR: the union of its arms' keys); the router files
 * the shape under one of them, chosen by estimated cost (keysel.c, the
 * index's own load), never by the conjunct's position.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/nbtree.h"
#include "access/stratnum.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/selfuncs.h"
#include "utils/typcache.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "compile.h"
#include "indexkey.h"
#include "keysel.h"

static const char *
ColumnName(TupleDesc desc, int arg)
{
	return quote_identifier(NameStr(TupleDescAttr(desc, arg)->attname));
}

/*
 * Index keys.  Priorities (lower is more selective) decide which conjunct of
 * an AND becomes the shape's access path.
 */
#define SR_MAX_OR_KEYS	256

static int
KeyPriority(const SrIndexKey *key)
{
	switch ((SrKeyKind) key->kind)
	{
		case SR_KEY_EQ:
			return 0;
		case SR_KEY_PREFIX:
			return 2;
		case SR_KEY_RANGE:
			return (key->has_lower && key->has_upper) ? 4 : 5;
		case SR_KEY_TRUE:
		case SR_KEY_FALSE:
			return 6;
		case SR_KEY_ELEM:
		case SR_KEY_INFIX:
			return 3;
		case SR_KEY_NULL:
			return 8;
		default:
			return 10;
	}
}

static SrIndexKey *
NewKey(SrKeyKind kind, AttrNumber attno)
{
	SrIndexKey *key = palloc0(sizeof(SrIndexKey));

	key->kind = kind;
	key->attno = attno;
	return key;
}

/* "column = constant" under an operator with hash support */
static SrIndexKey *
EqKey(OpExpr *op, Var *var, Const *c, bool var_left)
{
	RegProcedure lhs,
				rhs;
	SrIndexKey *key;

	if (!op_hashjoinable(op->opno, exprType(var_left ? linitial(op->args) :
												lsecond(op->args))) ||
		!get_op_hash_functions(op->opno, &lhs, &rhs))
		return NULL;
	key = NewKey(SR_KEY_EQ, var->varattno);
	key->proc = var_left ? lhs : rhs;
	key->collation = op->inputcollid;
	key->opno = op->opno;
	key->nvalues = 1;
	key->hashes = palloc(sizeof(uint32));
	key->hashes[0] = DatumGetUInt32(OidFunctionCall1Coll(var_left ? rhs : lhs,
														 op->inputcollid,
														 c->constvalue));
	return key;
}

/* The index's hash of a LIKE prefix: the same for a key and a probe */
uint32
SrPrefixHash(const char *p, int len)
{
	return (uint32) XXH3_64bits(p, len);
}

/* "column LIKE 'prefix%'" on text under a deterministic collation */
static SrIndexKey *
PrefixKey(OpExpr *op, Var *var, Const *c)
{
	text	   *pat;
	const char *p;
	int			len,
				i;
	SrIndexKey *key;

	if (get_opcode(op->opno) != F_TEXTLIKE ||
		SrColTypeOf(var->vartype) != SR_COL_TEXT ||
		!OidIsValid(op->inputcollid) ||
		!get_collation_isdeterministic(op->inputcollid))
		return NULL;
	pat = DatumGetTextPP(c->constvalue);
	p = VARDATA_ANY(pat);
	len = VARSIZE_ANY_EXHDR(pat);
	for (i = 0; i < len; i++)
		if (p[i] == '%' || p[i] == '_' || p[i] == '\\')
			break;
	if (i == 0)
		return NULL;
	key = NewKey(SR_KEY_PREFIX, var->varattno);
	key->opno = op->opno;
	key->nvalues = i;
	key->hashes = palloc(sizeof(uint32));
	key->hashes[0] = SrPrefixHash(p, i);
	return key;
}

/*
 * "column [I]LIKE '%infix%'" on text under a deterministic collation: every
 * literal run of the pattern (between unescaped '%' and '_') is a byte
 * substring of any value that matches, so each of its n-grams is too.  ILIKE
 * in a multibyte encoding matches lower(value) against lower(pattern)
 * bytewise (like.c, Generic_Text_IC_like), so the key holds n-grams of the
 * lowered pattern and the index lowers the value the same way.  Single-byte
 * encodings fold per character instead: no key there.
 *
 * The key lists the n-grams of the longest runs (trigrams when a run has
 * three bytes or more), the first SR_MAX_NGRAMS distinct ones: any subset
 * is still necessary for a match, and a long pattern must not cost its
 * length squared.  The index files the shape under one of them.
 */
#define SR_MAX_NGRAMS	32

/* Literal runs of a pattern: each a byte substring of every match */
typedef struct Runs
{
	char	   *buf;			/* the runs, one after the other */
	int		   *len;			/* length of each */
	int			n;
	int			used;			/* bytes of buf */
} Runs;

static void
RunsInit(Runs *r, int patlen)
{
	r->buf = palloc(patlen + 1);
	r->len = palloc(sizeof(int) * (patlen + 1));
	r->n = 0;
	r->used = 0;
}

/* a byte of the current run; RunEnd closes it */
static void
RunAdd(Runs *r, char c, bool *open)
{
	if (!*open)
	{
		r->len[r->n++] = 0;
		*open = true;
	}
	r->buf[r->used++] = c;
	r->len[r->n - 1]++;
}

static void
RunEnd(bool *open)
{
	*open = false;
}

/*
 * The INFIX key of the runs: the n-grams of the longest (trigrams when a
 * run has three bytes or more), the first SR_MAX_NGRAMS distinct ones: any
 * subset is still necessary for a match, and a long pattern must not cost
 * its length squared.  The index files the shape under one of them.  NULL
 * if no run has a byte.
 */
static SrIndexKey *
InfixKeyOfRuns(OpExpr *op, Var *var, const Runs *r, bool icase)
{
	int			gram = 0,
				ncodes = 0;
	uint32	   *codes = palloc(sizeof(uint32) * (r->used + 1));
	const char *run = r->buf;
	SrIndexKey *key;

	for (int i = 0; i < r->n; i++)
		gram = Max(gram, Min(r->len[i], 3));
	for (int i = 0; i < r->n; run += r->len[i], i++)
	{
		if (r->len[i] < gram || gram == 0)
			continue;
		for (int s = 0; s + gram <= r->len[i]; s++)
		{
			uint32		code = SrNgramCode(run + s, gram);
			int			j;

			for (j = 0; j < ncodes && codes[j] != code; j++)
				;
			if (j == ncodes && ncodes < SR_MAX_NGRAMS)
				codes[ncodes++] = code;
		}
	}
	if (ncodes == 0)
	{
		pfree(codes);
		return NULL;
	}
	key = NewKey(SR_KEY_INFIX, var->varattno);
	key->icase = icase;
	key->collation = op->inputcollid;
	key->opno = op->opno;
	key->nvalues = ncodes;
	key->hashes = codes;
	return key;
}

/* text under a deterministic collation: byte substrings are substrings */
static bool
SubstringColumn(OpExpr *op, Var *var)
{
	return SrColTypeOf(var->vartype) == SR_COL_TEXT &&
		OidIsValid(op->inputcollid) &&
		get_collation_isdeterministic(op->inputcollid);
}

/*
 * "column [I]LIKE '%infix%'" on text under a deterministic collation: every
 * literal run of the pattern (between unescaped '%' and '_') is a byte
 * substring of any value that matches.  ILIKE in a multibyte encoding
 * matches lower(value) against lower(pattern) bytewise (like.c,
 * Generic_Text_IC_like), so the key holds n-grams of the lowered pattern
 * and the index lowers the value the same way.  Single-byte encodings fold
 * per character instead: no key there.
 */
static SrIndexKey *
InfixKey(OpExpr *op, Var *var, Const *c)
{
	Oid			func = get_opcode(op->opno);
	text	   *pat;
	const char *p;
	int			len;
	Runs		runs;
	bool		open = false;

	if ((func != F_TEXTLIKE && func != F_TEXTICLIKE) || !SubstringColumn(op, var))
		return NULL;
	if (func == F_TEXTICLIKE && pg_database_encoding_max_length() == 1)
		return NULL;
	pat = DatumGetTextPP(c->constvalue);
	if (func == F_TEXTICLIKE)
		pat = DatumGetTextPP(DirectFunctionCall1Coll(lower, op->inputcollid,
													 PointerGetDatum(pat)));
	p = VARDATA_ANY(pat);
	len = VARSIZE_ANY_EXHDR(pat);
	RunsInit(&runs, len);
	for (int i = 0; i < len; i++)
	{
		if (p[i] == '%' || p[i] == '_')
		{
			RunEnd(&open);
			continue;
		}
		/* PostgreSQL refuses a trailing escape: leave it to it */
		if (p[i] == '\\' && ++i == len)
			return NULL;
		RunAdd(&runs, p[i], &open);
	}
	return InfixKeyOfRuns(op, var, &runs, func == F_TEXTICLIKE);
}

/*
 * Regular expressions (regex.c, the ARE flavour).  RegexRuns finds literal
 * runs that every match contains, conservatively: anything it does not
 * know for certain ends the current run, and anything it cannot parse for
 * certain (an escape that enters a character by code, a back reference,
 * lookaround, embedded options, a director) gives up on the whole pattern,
 * which then stays on the scan list.  Since ~ is a search, a value matches
 * only if some substring matches the pattern, so it contains the runs.
 */
typedef struct RegexScan
{
	const char *p;
	int			len;
	int			i;
	Runs	   *runs;
	int			depth;
} RegexScan;

static bool RegexAlternatives(RegexScan *rs, bool keep, bool *open);

/* at '[': past the bracket expression's ']' */
static bool
SkipBracket(RegexScan *rs)
{
	const char *p = rs->p;
	int			i = rs->i + 1;

	if (i < rs->len && p[i] == '^')
		i++;
	if (i < rs->len && p[i] == ']')
		i++;
	while (i < rs->len && p[i] != ']')
	{
		if (p[i] == '[' && i + 1 < rs->len &&
			(p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '='))
		{
			char		close = p[i + 1];

			for (i += 2; i + 1 < rs->len && !(p[i] == close && p[i + 1] == ']'); i++)
				;
			if (i + 1 >= rs->len)
				return false;
			i += 2;
		}
		else if (p[i] == '\\')
			i += 1 + (i + 1 < rs->len ? pg_mblen(p + i + 1) : 1);
		else
			i += pg_mblen(p + i);
	}
	if (i >= rs->len)
		return false;
	rs->i = i + 1;
	return true;
}

/*
 * At a quantifier or not: past it, and whether the atom before it is
 * required at least once (false: it may be absent).  Gives up on a
 * malformed bound.
 */
static bool
Quantifier(RegexScan *rs, bool *quantified, bool *required)
{
	const char *p = rs->p;
	int			i = rs->i;

	*quantified = true;
	*required = true;
	if (i >= rs->len)
	{
		*quantified = false;
		return true;
	}
	if (p[i] == '*' || p[i] == '?')
	{
		*required = false;
		i++;
	}
	else if (p[i] == '+')
		i++;
	else if (p[i] == '{')
	{
		int			lo = 0;
		bool		digits = false;

		for (i++; i < rs->len && p[i] >= '0' && p[i] <= '9'; i++)
		{
			lo = Min(lo * 10 + (p[i] - '0'), 1000);
			digits = true;
		}
		if (!digits)
			return false;
		if (i < rs->len && p[i] == ',')
			for (i++; i < rs->len && p[i] >= '0' && p[i] <= '9'; i++)
				;
		if (i >= rs->len || p[i] != '}')
			return false;
		i++;
		*required = lo > 0;
	}
	else
	{
		*quantified = false;
		return true;
	}
	/* non-greedy */
	if (i < rs->len && p[i] == '?')
		i++;
	rs->i = i;
	return true;
}

/*
 * One branch (up to '|' or ')' or the end).  keep: runs found are kept
 * (false inside an optional or alternated part, which only needs parsing).
 */
static bool
RegexBranch(RegexScan *rs, bool keep, bool *open)
{
	const char *p = rs->p;

	while (rs->i < rs->len && p[rs->i] != '|' && p[rs->i] != ')')
	{
		char		c = p[rs->i];
		const char *ch = p + rs->i;	/* the literal character, if any */
		int			chlen = 1;
		bool		literal = false;
		bool		quantified,
					required;

		CHECK_FOR_INTERRUPTS();
		if (c == '(')
		{
			bool		inner = false;
			Size		used = rs->runs->used;
			int			n = rs->runs->n;

			if (rs->i + 1 < rs->len && p[rs->i + 1] == '?')
			{
				/* only (?:...): lookaround and options give up */
				if (rs->i + 2 >= rs->len || p[rs->i + 2] != ':')
					return false;
				rs->i += 3;
			}
			else
				rs->i++;
			if (++rs->depth > 100)
				return false;
			RunEnd(open);
			if (!RegexAlternatives(rs, keep, &inner))
				return false;
			rs->depth--;
			if (rs->i >= rs->len || p[rs->i] != ')')
				return false;
			rs->i++;
			if (!Quantifier(rs, &quantified, &required))
				return false;
			if (!required)
			{
				/* the group may be absent: forget what it added */
				rs->runs->used = used;
				rs->runs->n = n;
			}
			RunEnd(open);
			continue;
		}
		if (c == '[')
		{
			if (!SkipBracket(rs))
				return false;
		}
		else if (c == '\\')
		{
			char		e;

			if (rs->i + 1 >= rs->len)
				return false;
			e = p[rs->i + 1];
			if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') ||
				(e >= '0' && e <= '9'))
			{
				/* classes and constraints are one letter; the rest give up */
				if (strchr("dswDSWAmMyYZ", e) == NULL)
					return false;
			}
			else
			{
				literal = true;
				ch = p + rs->i + 1;
				chlen = Min(pg_mblen(ch), rs->len - rs->i - 1);
			}
			rs->i += 1 + chlen;
		}
		else if (c == '*' || c == '+' || c == '?' || c == '{')
			return false;		/* a quantifier with nothing before it */
		else
		{
			/* a character is one atom, however many bytes it has */
			literal = (c != '.' && c != '^' && c != '$');
			chlen = Min(pg_mblen(ch), rs->len - rs->i);
			rs->i += chlen;
		}
		if (!Quantifier(rs, &quantified, &required))
			return false;
		if (literal && keep && required)
			for (int b = 0; b < chlen; b++)
				RunAdd(rs->runs, ch[b], open);
		/* a repeated or optional atom: what follows is not adjacent */
		if (!literal || quantified || !keep)
			RunEnd(open);
	}
	return true;
}

/* Branches separated by '|': runs are kept only if there is one */
static bool
RegexAlternatives(RegexScan *rs, bool keep, bool *open)
{
	Size		used = rs->runs->used;
	int			n = rs->runs->n;
	bool		alternated = false;

	for (;;)
	{
		if (!RegexBranch(rs, keep, open))
			return false;
		if (rs->i >= rs->len || rs->p[rs->i] != '|')
			break;
		alternated = true;
		rs->i++;
		RunEnd(open);
	}
	if (alternated)
	{
		/* a run of one branch is not needed by the others */
		rs->runs->used = used;
		rs->runs->n = n;
	}
	RunEnd(open);
	return true;
}

static bool
RegexRuns(const char *p, int len, Runs *runs)
{
	RegexScan	rs = {p, len, 0, runs, 0};
	bool		open = false;

	/* directors (***: ***= ***?) and embedded options: not ours to read */
	if ((len >= 3 && strncmp(p, "***", 3) == 0) ||
		(len >= 2 && p[0] == '(' && p[1] == '?' && (len < 3 || p[2] != ':')))
		return false;
	if (!RegexAlternatives(&rs, true, &open))
		return false;
	/* a ')' without its '(': PostgreSQL's error to give */
	return rs.i == len;
}

/*
 * "column ~ 'regex'" on text under a deterministic collation.  ~* stays on
 * the scan list: its case folding is the regex engine's, per character and
 * collation, which lower() of the value need not reproduce.
 */
static SrIndexKey *
RegexKey(OpExpr *op, Var *var, Const *c)
{
	text	   *pat;
	Runs		runs;

	if (get_opcode(op->opno) != F_TEXTREGEXEQ || !SubstringColumn(op, var))
		return NULL;
	pat = DatumGetTextPP(c->constvalue);
	RunsInit(&runs, VARSIZE_ANY_EXHDR(pat));
	if (!RegexRuns(VARDATA_ANY(pat), VARSIZE_ANY_EXHDR(pat), &runs))
		return NULL;
	return InfixKeyOfRuns(op, var, &runs, false);
}

/* "column < > <= >= constant" under a btree operator family */
static SrIndexKey *
RangeKey(OpExpr *op, Var *var, Const *c, bool var_left)
{
	List	   *interps = get_op_btree_interpretation(op->opno);
	ListCell   *lc;

	foreach(lc, interps)
	{
		OpBtreeInterpretation *bi = lfirst(lc);
		int			strategy = bi->strategy;
		Oid			coltype = var_left ? bi->oplefttype : bi->oprighttype;
		Oid			boundtype = var_left ? bi->oprighttype : bi->oplefttype;
		Oid			cmpproc,
					sortproc;
		SrIndexKey *key;

		if (strategy == BTEqualStrategyNumber || strategy > BTGreaterStrategyNumber)
			continue;
		cmpproc = get_opfamily_proc(bi->opfamily_id, coltype, boundtype, BTORDER_PROC);
		sortproc = get_opfamily_proc(bi->opfamily_id, boundtype, boundtype, BTORDER_PROC);
		if (!OidIsValid(cmpproc) || !OidIsValid(sortproc))
			continue;
		if (!var_left)
			strategy = BTMaxStrategyNumber + 1 - strategy;	/* commute */
		key = NewKey(SR_KEY_RANGE, var->varattno);
		key->proc = cmpproc;
		key->sortproc = sortproc;
		key->collation = op->inputcollid;
		key->opno = op->opno;
		key->boundlen = c->constlen;
		key->boundbyval = c->constbyval;
		if (strategy == BTGreaterStrategyNumber ||
			strategy == BTGreaterEqualStrategyNumber)
		{
			key->has_lower = true;
			key->lower = c->constvalue;
		}
		else
		{
			key->has_upper = true;
			key->upper = c->constvalue;
		}
		return key;
	}
	return NULL;
}

/*
 * "array column @> constant array": a match contains every element, so any
 * one is a key; "array column && constant array": a match contains at least
 * one, so each is.  Elements hash with the hash function of the equality
 * operator array_contains uses (the element type's default).
 */
static SrIndexKey *
ElemKey(OpExpr *op, Var *var, Const *c, bool var_left)
{
	Oid			func = get_opcode(op->opno);
	ArrayType  *arr;
	Oid			elemtype;
	TypeCacheEntry *tce;
	RegProcedure lhs,
				rhs;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	SrIndexKey *key;

	if (!(func == F_ARRAYOVERLAP || (func == F_ARRAYCONTAINS && var_left)))
		return NULL;
	arr = DatumGetArrayTypeP(c->constvalue);
	elemtype = ARR_ELEMTYPE(arr);
	tce = lookup_type_cache(elemtype, TYPECACHE_EQ_OPR);
	if (!OidIsValid(tce->eq_opr) ||
		!get_op_hash_functions(tce->eq_opr, &lhs, &rhs) || lhs != rhs)
		return NULL;
	get_typlenbyvalalign(elemtype, &elmlen, &elmbyval, &elmalign);
	deconstruct_array(arr, elemtype, elmlen, elmbyval, elmalign,
					  &elems, &nulls, &n);
	key = NewKey(SR_KEY_ELEM, var->varattno);
	key->proc = lhs;
	key->collation = op->inputcollid;
	key->opno = op->opno;
	key->elemtype = elemtype;
	key->hashes = palloc(sizeof(uint32) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;
		key->hashes[key->nvalues++] =
			DatumGetUInt32(OidFunctionCall1Coll(lhs, op->inputcollid, elems[i]));
		if (func == F_ARRAYCONTAINS)
			break;				/* one element is enough */
	}
	/* "@> '{}'" holds for every array: no key */
	if (key->nvalues == 0 && func == F_ARRAYCONTAINS)
		return NULL;
	return key;
}

static SrIndexKey *
OpKey(OpExpr *op)
{
	Var		   *var;
	Node	   *l,
			   *r;
	SrIndexKey *key;

	if (list_length(op->args) != 2)
		return NULL;
	l = linitial(op->args);
	r = lsecond(op->args);
	if ((var = SrColumnOf(l)) != NULL && IsA(r, Const) && !((Const *) r)->constisnull)
	{
		if ((key = EqKey(op, var, (Const *) r, true)) != NULL ||
			(key = PrefixKey(op, var, (Const *) r)) != NULL ||
			(key = InfixKey(op, var, (Const *) r)) != NULL ||
			(key = RegexKey(op, var, (Const *) r)) != NULL ||
			(key = ElemKey(op, var, (Const *) r, true)) != NULL ||
			(key = RangeKey(op, var, (Const *) r, true)) != NULL)
			return key;
	}
	else if ((var = SrColumnOf(r)) != NULL && IsA(l, Const) && !((Const *) l)->constisnull)
	{
		if ((key = EqKey(op, var, (Const *) l, false)) != NULL ||
			(key = ElemKey(op, var, (Const *) l, false)) != NULL ||
			(key = RangeKey(op, var, (Const *) l, false)) != NULL)
			return key;
	}
	return NULL;
}

/* "column IN (...)" / "column = ANY(constant array)" */
static SrIndexKey *
InKey(ScalarArrayOpExpr *saop)
{
	Var		   *var;
	Const	   *c;
	RegProcedure lhs,
				rhs;
	ArrayType  *arr;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	SrIndexKey *key;

	if (!saop->useOr || list_length(saop->args) != 2 ||
		(var = SrColumnOf(linitial(saop->args))) == NULL ||
		!IsA(lsecond(saop->args), Const) ||
		((Const *) lsecond(saop->args))->constisnull ||
		!get_op_hash_functions(saop->opno, &lhs, &rhs))
		return NULL;
	c = (Const *) lsecond(saop->args);
	arr = DatumGetArrayTypeP(c->constvalue);
	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &elmlen, &elmbyval, &elmalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), elmlen, elmbyval, elmalign,
					  &elems, &nulls, &n);
	key = NewKey(SR_KEY_EQ, var->varattno);
	key->proc = lhs;
	key->collation = saop->inputcollid;
	key->opno = saop->opno;
	key->hashes = palloc(sizeof(uint32) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			key->hashes[key->nvalues++] =
				DatumGetUInt32(OidFunctionCall1Coll(rhs, saop->inputcollid, elems[i]));
	return key;
}

/*
 * A key's fingerprint: its kind, column, operator and values, not where
 * its conjunct stands in the clause.  Ties between access paths go by it,
 * so that the choice never depends on the order of the conjuncts.
 */
static uint64
KeyFingerprint(const SrIndexKey *k)
{
	uint64		h;
	uint64		parts[4];

	parts[0] = ((uint64) k->kind << 48) | ((uint64) (uint16) k->attno << 32) | k->opno;
	parts[1] = ((uint64) k->has_lower << 1) | k->has_upper | ((uint64) k->nvalues << 2);
	parts[2] = 0;
	parts[3] = 0;
	if (k->hashes && k->nvalues > 0 && k->kind != SR_KEY_PREFIX)
		parts[2] = XXH3_64bits(k->hashes, sizeof(uint32) * k->nvalues);
	else if (k->hashes)
		parts[2] = k->hashes[0];
	if (k->kind == SR_KEY_RANGE)
	{
		if (k->has_lower)
			parts[3] ^= k->boundbyval ? (uint64) k->lower :
				XXH3_64bits(DatumGetPointer(k->lower),
							datumGetSize(k->lower, false, k->boundlen));
		if (k->has_upper)
			parts[3] ^= 0x9E3779B97F4A7C15 * (k->boundbyval ? (uint64) k->upper :
											  XXH3_64bits(DatumGetPointer(k->upper),
														  datumGetSize(k->upper, false, k->boundlen)));
	}
	h = XXH3_64bits(parts, sizeof(parts));
	return h;
}

static uint64
KeysFingerprint(List *keys)
{
	uint64		h = 0;
	ListCell   *lc;

	/* an OR's keys in any order: combine commutatively */
	foreach(lc, keys)
		h += KeyFingerprint(lfirst(lc));
	return h;
}

/* Keys of one node, as a List of SrIndexKey; NIL if it has none. */
static List *
NodeKeys(Node *node, int *prio)
{
	Var		   *var;
	SrIndexKey *key = NULL;

	check_stack_depth();
	if (IsA(node, BoolExpr))
	{
		BoolExpr   *b = (BoolExpr *) node;
		ListCell   *lc;

		if (b->boolop == AND_EXPR)
		{
			List	   *best = NIL;
			int			bestprio = INT_MAX;
			SrIndexKey *lower = NULL,
					   *upper = NULL;

			foreach(lc, b->args)
			{
				int			p;
				List	   *keys = NodeKeys(lfirst(lc), &p);

				if (keys == NIL)
					continue;
				/* Two one-sided ranges on one column make one interval. */
				if (list_length(keys) == 1)
				{
					SrIndexKey *k = linitial(keys);

					if (k->kind == SR_KEY_RANGE && k->has_lower && !lower)
						lower = k;
					else if (k->kind == SR_KEY_RANGE && k->has_upper && !upper)
						upper = k;
				}
				if (p < bestprio ||
					(p == bestprio && KeysFingerprint(keys) < KeysFingerprint(best)))
				{
					best = keys;
					bestprio = p;
				}
			}
			if (lower && upper && lower->attno == upper->attno &&
				lower->proc == upper->proc && lower->sortproc == upper->sortproc &&
				lower->collation == upper->collation)
			{
				SrIndexKey *k = NewKey(SR_KEY_RANGE, lower->attno);

				*k = *lower;
				k->has_upper = true;
				k->upper = upper->upper;
				if (KeyPriority(k) < bestprio)
				{
					best = list_make1(k);
					bestprio = KeyPriority(k);
				}
			}
			*prio = bestprio;
			return best;
		}
		if (b->boolop == OR_EXPR)
		{
			List	   *all = NIL;
			int			worst = 0;

			foreach(lc, b->args)
			{
				int			p;
				List	   *keys = NodeKeys(lfirst(lc), &p);

				if (keys == NIL)
					return NIL;
				all = list_concat(all, keys);
				worst = Max(worst, p);
			}
			if (list_length(all) > SR_MAX_OR_KEYS)
				return NIL;
			*prio = worst + 1;
			return all;
		}
		/* NOT boolean column */
		if ((var = SrColumnOf(linitial(b->args))) != NULL &&
			getBaseType(var->vartype) == BOOLOID)
			key = NewKey(SR_KEY_FALSE, var->varattno);
	}
	else if ((var = SrColumnOf(node)) != NULL && getBaseType(var->vartype) == BOOLOID)
		key = NewKey(SR_KEY_TRUE, var->varattno);
	else if (IsA(node, BooleanTest) &&
			 (var = SrColumnOf((Node *) ((BooleanTest *) node)->arg)) != NULL &&
			 getBaseType(var->vartype) == BOOLOID)
	{
		BoolTestType t = ((BooleanTest *) node)->booltesttype;

		if (t == IS_TRUE)
			key = NewKey(SR_KEY_TRUE, var->varattno);
		else if (t == IS_FALSE)
			key = NewKey(SR_KEY_FALSE, var->varattno);
	}
	else if (IsA(node, NullTest) && !((NullTest *) node)->argisrow &&
			 (var = SrColumnOf((Node *) ((NullTest *) node)->arg)) != NULL &&
			 !type_is_rowtype(var->vartype))
		key = NewKey(((NullTest *) node)->nulltesttype == IS_NULL ?
					 SR_KEY_NULL : SR_KEY_NOTNULL, var->varattno);
	else if (IsA(node, OpExpr))
		key = OpKey((OpExpr *) node);
	else if (IsA(node, ScalarArrayOpExpr))
		key = InKey((ScalarArrayOpExpr *) node);

	if (key == NULL)
		return NIL;
	*prio = KeyPriority(key);
	return list_make1(key);
}

/* One candidate access path of a shape */
typedef struct AccessPath
{
	List	   *keys;			/* SrIndexKey * */
	double		sel;
	bool		stats;			/* sel from statistics */
	uint64		fp;
} AccessPath;

static int
ComparePaths(const void *a, const void *b)
{
	const AccessPath *x = a;
	const AccessPath *y = b;

	if (x->sel != y->sel)
		return x->sel < y->sel ? -1 : 1;
	return (x->fp > y->fp) - (x->fp < y->fp);
}

/* The conjuncts of a qual, nested ANDs flattened */
static List *
Conjuncts(Node *node, List *out)
{
	check_stack_depth();
	if (IsA(node, BoolExpr) && ((BoolExpr *) node)->boolop == AND_EXPR)
	{
		ListCell   *lc;

		foreach(lc, ((BoolExpr *) node)->args)
			out = Conjuncts(lfirst(lc), out);
		return out;
	}
	return lappend(out, node);
}

/*
 * Two one-sided ranges on one column make one interval, whose
 * selectivity is the planner's for a range pair: sel(lower) + sel(upper)
 * - 1.  Of several bounds on the column, the most selective of each side.
 */
/* A one-sided range on attno: has_lower (lower) or has_upper (!lower) only */
static bool
OneSided(const AccessPath *p, bool lower, AttrNumber attno)
{
	const SrIndexKey *k = linitial(p->keys);

	return list_length(p->keys) == 1 && k->kind == SR_KEY_RANGE &&
		k->has_lower == lower && k->has_upper == !lower &&
		(attno == InvalidAttrNumber || k->attno == attno);
}

static void
AddIntervals(AccessPath *paths, int *npaths)
{
	int			n = *npaths;

	for (int i = 0; i < n; i++)
	{
		SrIndexKey *lo = linitial(paths[i].keys);
		AccessPath	   *up = NULL;
		bool		best_lower = true;
		SrIndexKey *k;

		if (!OneSided(&paths[i], true, InvalidAttrNumber))
			continue;
		for (int j = 0; j < n; j++)
		{
			SrIndexKey *o = linitial(paths[j].keys);

			if (OneSided(&paths[j], true, lo->attno) &&
				ComparePaths(&paths[j], &paths[i]) < 0)
				best_lower = false;
			if (OneSided(&paths[j], false, lo->attno) &&
				o->proc == lo->proc && o->sortproc == lo->sortproc &&
				o->collation == lo->collation &&
				(up == NULL || ComparePaths(&paths[j], up) < 0))
				up = &paths[j];
		}
		if (!best_lower || up == NULL)
			continue;
		k = NewKey(SR_KEY_RANGE, lo->attno);
		*k = *lo;
		k->has_upper = true;
		k->upper = ((SrIndexKey *) linitial(up->keys))->upper;
		paths[*npaths].keys = list_make1(k);
		/* as clauselist_selectivity() treats a range pair */
		paths[*npaths].stats = paths[i].stats && up->stats;
		paths[*npaths].sel = paths[i].sel + up->sel - 1.0;
		if (!paths[*npaths].stats)
			paths[*npaths].sel = DEFAULT_RANGE_INEQ_SEL;
		else if (paths[*npaths].sel <= 0)
			paths[*npaths].sel = paths[*npaths].sel < -0.01 ? 1.0e-7 :
				DEFAULT_RANGE_INEQ_SEL;
		paths[*npaths].fp = KeysFingerprint(paths[*npaths].keys);
		(*npaths)++;
	}
}

/*
 * The shape's access paths, allocated in CurrentMemoryContext: every
 * conjunct of the qual's top AND that has index keys is one (an OR
 * conjunct: the union of its arms' keys), with the estimated selectivity
 * of the conjunct (keysel.c) for relid's rows.  Paths come out in order of
 * selectivity, ties by fingerprint: never by position.  Each path's first
 * key carries its pathlen and sel.  Returns the number of keys; 0 means
 * the shape is on the scan list.
 */
int
SrCompileKeys(Node *qual, Oid relid, SrIndexKey **keys)
{
	List	   *conjuncts;
	AccessPath	   *paths;
	int			npaths = 0,
				nkeys = 0,
				i = 0;
	ListCell   *lc;

	*keys = NULL;
	if (qual == NULL)
		return 0;
	conjuncts = Conjuncts(qual, NIL);
	/* room for an interval per lower bound */
	paths = palloc(sizeof(AccessPath) * list_length(conjuncts) * 2);
	foreach(lc, conjuncts)
	{
		int			prio;
		List	   *k = NodeKeys(lfirst(lc), &prio);

		if (k == NIL)
			continue;
		paths[npaths].keys = k;
		paths[npaths].sel = SrEstimateSelectivity(relid, lfirst(lc),
												  &paths[npaths].stats);
		paths[npaths].fp = KeysFingerprint(k);
		npaths++;
	}
	AddIntervals(paths, &npaths);
	if (npaths == 0)
		return 0;
	if (npaths > 1)
		qsort(paths, npaths, sizeof(AccessPath), ComparePaths);
	npaths = Min(npaths, SR_MAX_PATHS);
	for (int p = 0; p < npaths; p++)
		nkeys += list_length(paths[p].keys);
	*keys = palloc(sizeof(SrIndexKey) * nkeys);
	for (int p = 0; p < npaths; p++)
	{
		int			first = i;

		foreach(lc, paths[p].keys)
		{
			(*keys)[i] = *(SrIndexKey *) lfirst(lc);
			(*keys)[i].pathlen = 0;
			i++;
		}
		(*keys)[first].pathlen = list_length(paths[p].keys);
		(*keys)[first].sel = (float4) paths[p].sel;
		(*keys)[first].sel_stats = paths[p].stats;
	}
	return nkeys;
}

void
SrExplainKeys(const SrIndexKey *keys, int nkeys, TupleDesc desc,
			  StringInfo buf)
{
	if (nkeys == 0)
	{
		appendStringInfoString(buf, "scan");
		return;
	}
	appendStringInfoString(buf, "index");
	for (int i = 0; i < nkeys; i++)
	{
		const SrIndexKey *k = &keys[i];
		const char *col = ColumnName(desc, k->attno - 1);

		appendStringInfoString(buf, i == 0 ? " " : " OR ");
		switch ((SrKeyKind) k->kind)
		{
			case SR_KEY_EQ:
				appendStringInfo(buf, "(%s %s, hash of %d value%s)", col,
								 get_opname(k->opno), k->nvalues,
								 k->nvalues == 1 ? "" : "s");
				break;
			case SR_KEY_PREFIX:
				appendStringInfo(buf, "(%s LIKE, prefix of %d bytes)", col,
								 k->nvalues);
				break;
			case SR_KEY_RANGE:
				appendStringInfo(buf, "(%s %s, %s)", col, get_opname(k->opno),
								 k->has_lower && k->has_upper ? "range" :
								 k->has_lower ? "lower bound" : "upper bound");
				break;
			case SR_KEY_TRUE:
				appendStringInfo(buf, "(%s IS TRUE)", col);
				break;
			case SR_KEY_FALSE:
				appendStringInfo(buf, "(%s IS FALSE)", col);
				break;
			case SR_KEY_NULL:
				appendStringInfo(buf, "(%s IS NULL)", col);
				break;
			case SR_KEY_NOTNULL:
				appendStringInfo(buf, "(%s IS NOT NULL)", col);
				break;
			case SR_KEY_INFIX:
				appendStringInfo(buf, "(%s %s, substring: %d n-gram%s of %d byte%s)",
								 col, k->icase ? "ILIKE" :
								 get_opcode(k->opno) == F_TEXTREGEXEQ ? "~" : "LIKE",
								 k->nvalues,
								 k->nvalues == 1 ? "" : "s",
								 (int) (k->hashes[0] >> 24),
								 (k->hashes[0] >> 24) == 1 ? "" : "s");
				break;
			case SR_KEY_ELEM:
				appendStringInfo(buf, "(%s %s, elements: hash of %d value%s)",
								 col, get_opname(k->opno), k->nvalues,
								 k->nvalues == 1 ? "" : "s");
				break;
		}
	}
}
