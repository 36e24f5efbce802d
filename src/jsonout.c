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
#include "fmgr.h"
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
		getTypeOutputInfo(att->atttypid, &col->typoutput, &isvarlena);
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

static void
AppendValue(StringInfo buf, const SrJsonColumn *col, Datum value,
				  bool isnull)
{
	char	   *str;

	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	if (col->kind == 'b')
	{
		appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
		return;
	}
	str = OidOutputFunctionCall(col->typoutput, value);
	switch (col->kind)
	{
		case 'n':
			/* NaN, Infinity and -Infinity are not JSON numbers */
			if (strpbrk(str, "NI") != NULL)
				escape_json(buf, str);
			else
				appendStringInfoString(buf, str);
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
			escape_json(buf, str);
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
			appendStringInfoChar(buf, ',');
		first = false;
		appendStringInfoString(buf, col->name);
		appendStringInfoChar(buf, ':');
		AppendValue(buf, col, values[i], nulls[i]);
	}
	appendStringInfoChar(buf, '}');
}

void
SrJsonAppendLsn(StringInfo buf, uint64 lsn)
{
	appendStringInfo(buf, "\"%X/%X\"", (uint32) (lsn >> 32), (uint32) lsn);
}
