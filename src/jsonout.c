/*-------------------------------------------------------------------------
 *
 * jsonout.c
 *	  Values and rows as JSON, the contract's way: numbers as JSON numbers
 *	  (NaN and infinities as strings), booleans as true/false, json and
 *	  jsonb embedded, NULL as null, everything else as the string of the
 *	  type's output function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

#include "jsonout.h"

static char *
EscapedName(const char *name)
{
	StringInfoData buf;

	initStringInfo(&buf);
	escape_json(&buf, name);
	return buf.data;
}

/*
 * Output functions written here without fmgr and without a palloc per
 * value; each gives exactly the text of the function it stands for.
 */
static char
FastKind(Oid typoutput)
{
	switch (typoutput)
	{
		case F_INT2OUT:
		case F_INT4OUT:
			return '4';
		case F_INT8OUT:
			return '8';
		case F_OIDOUT:
			return 'o';
		case F_FLOAT4OUT:
			return 'f';
		case F_FLOAT8OUT:
			return 'd';
		case F_TEXTOUT:
		case F_VARCHAROUT:
		case F_BPCHAROUT:
			return 't';
		default:
			return 0;
	}
}

SrJsonTable *
SrJsonTableCreate(TupleDesc desc, const char *schema, const char *table)
{
	SrJsonTable *jt = palloc(sizeof(SrJsonTable));

	jt->natts = desc->natts;
	jt->schema = EscapedName(schema);
	jt->table = EscapedName(table);
	jt->cols = palloc0(sizeof(SrJsonColumn) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		SrJsonColumn *col = &jt->cols[i];
		bool		isvarlena;

		col->dropped = att->attisdropped;
		if (col->dropped)
			continue;
		col->name = EscapedName(NameStr(att->attname));
		col->namelen = strlen(col->name);
		getTypeOutputInfo(att->atttypid, &col->typoutput, &isvarlena);
		/* in the caller's context: the table layout's, reset with it */
		fmgr_info(col->typoutput, &col->flinfo);
		col->fast = FastKind(col->typoutput);
		switch (getBaseType(att->atttypid))
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
			case OIDOID:
			case FLOAT4OID:
			case FLOAT8OID:
			case NUMERICOID:
				col->kind = 'n';
				break;
			case BOOLOID:
				col->kind = 'b';
				break;
			case JSONOID:
			case JSONBOID:
				col->kind = 'j';
				break;
			default:
				col->kind = 's';
				break;
		}
	}
	return jt;
}

/* escape_json() of len bytes (no NUL needed), a run at a time */
static void
AppendEscaped(StringInfo buf, const char *s, int len)
{
	const char *run = s;
	const char *end = s + len;

	enlargeStringInfo(buf, len + 2);
	appendStringInfoCharMacro(buf, '"');
	for (const char *p = s; p < end; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c >= ' ' && c != '"' && c != '\\')
			continue;
		appendBinaryStringInfo(buf, run, p - run);
		run = p + 1;
		switch (c)
		{
			case '\b':
				appendBinaryStringInfo(buf, "\\b", 2);
				break;
			case '\f':
				appendBinaryStringInfo(buf, "\\f", 2);
				break;
			case '\n':
				appendBinaryStringInfo(buf, "\\n", 2);
				break;
			case '\r':
				appendBinaryStringInfo(buf, "\\r", 2);
				break;
			case '\t':
				appendBinaryStringInfo(buf, "\\t", 2);
				break;
			case '"':
				appendBinaryStringInfo(buf, "\\\"", 2);
				break;
			case '\\':
				appendBinaryStringInfo(buf, "\\\\", 2);
				break;
			default:
				appendStringInfo(buf, "\\u%04x", (int) c);
				break;
		}
	}
	appendBinaryStringInfo(buf, run, end - run);
	appendStringInfoCharMacro(buf, '"');
}

/* A number's text: NaN and infinities are not JSON numbers */
static void
AppendNumber(StringInfo buf, const char *str, int len)
{
	if (memchr(str, 'N', len) != NULL || memchr(str, 'I', len) != NULL)
		AppendEscaped(buf, str, len);
	else
		appendBinaryStringInfo(buf, str, len);
}

/* The fast kinds (FastKind); false: go through the output function */
static bool
AppendFast(StringInfo buf, const SrJsonColumn *col, Datum value)
{
	char		num[Max(DOUBLE_SHORTEST_DECIMAL_LEN, MAXINT8LEN + 1) + 1];
	int			len;

	switch (col->fast)
	{
		case '4':
			/* int2out is pg_itoa, which is pg_ltoa of the widened value */
			len = pg_ltoa(col->typoutput == F_INT2OUT ?
						  (int32) DatumGetInt16(value) : DatumGetInt32(value), num);
			break;
		case '8':
			len = pg_lltoa(DatumGetInt64(value), num);
			break;
		case 'o':
			len = pg_ultoa_n(DatumGetObjectId(value), num);
			break;
		case 'f':
			/* float4out and float8out print the shortest form only then */
			if (extra_float_digits <= 0)
				return false;
			len = float_to_shortest_decimal_buf(DatumGetFloat4(value), num);
			break;
		case 'd':
			if (extra_float_digits <= 0)
				return false;
			len = double_to_shortest_decimal_buf(DatumGetFloat8(value), num);
			break;
		case 't':
			{
				text	   *t = DatumGetTextPP(value);

				AppendEscaped(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				if ((Pointer) t != DatumGetPointer(value))
					pfree(t);
				return true;
			}
		default:
			return false;
	}
	if (col->kind == 'n')
		AppendNumber(buf, num, len);
	else
		AppendEscaped(buf, num, len);
	return true;
}

static void
AppendValue(StringInfo buf, const SrJsonColumn *col, Datum value,
				  bool isnull)
{
	char	   *str;

	if (isnull)
	{
		appendBinaryStringInfo(buf, "null", 4);
		return;
	}
	if (col->kind == 'b')
	{
		if (DatumGetBool(value))
			appendBinaryStringInfo(buf, "true", 4);
		else
			appendBinaryStringInfo(buf, "false", 5);
		return;
	}
	if (col->fast && AppendFast(buf, col, value))
		return;
	str = OutputFunctionCall((FmgrInfo *) &col->flinfo, value);
	switch (col->kind)
	{
		case 'n':
			AppendNumber(buf, str, strlen(str));
			break;
		case 'j':
			/*
			 * json keeps its input's whitespace; line breaks and tabs can
			 * only stand between tokens (json_in refuses them in strings),
			 * so spaces keep one record per line.
			 */
			for (char *p = str; *p; p++)
				if (*p == '\n' || *p == '\r' || *p == '\t')
					*p = ' ';
			appendStringInfoString(buf, str);
			break;
		default:
			AppendEscaped(buf, str, strlen(str));
			break;
	}
	pfree(str);
}

void
SrJsonAppendRow(StringInfo buf, const SrJsonTable *jt, Datum *values,
				bool *nulls, const Bitmapset *columns, const bool *skip)
{
	bool		first = true;

	appendStringInfoChar(buf, '{');
	for (int i = 0; i < jt->natts; i++)
	{
		const SrJsonColumn *col = &jt->cols[i];

		if (col->dropped || (skip && skip[i]) ||
			(columns && !bms_is_member(i + 1, columns)))
			continue;
		if (!first)
			appendStringInfoCharMacro(buf, ',');
		first = false;
		appendBinaryStringInfo(buf, col->name, col->namelen);
		appendStringInfoCharMacro(buf, ':');
		AppendValue(buf, col, values[i], nulls[i]);
	}
	appendStringInfoChar(buf, '}');
}

void
SrJsonAppendLsn(StringInfo buf, uint64 lsn)
{
	appendStringInfo(buf, "\"%X/%X\"", (uint32) (lsn >> 32), (uint32) lsn);
}
