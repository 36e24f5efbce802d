/*-------------------------------------------------------------------------
 *
 * jsonout.h
 *	  The JSON writer: column values and rows as the contract encodes them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_JSONOUT_H
#define SR_JSONOUT_H

#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/bitmapset.h"

/* How each column of a table is written, computed once per table */
typedef struct SrJsonColumn
{
	char	   *name;			/* JSON-escaped, with quotes */
	int			namelen;
	Oid			typoutput;
	FmgrInfo	flinfo;			/* of typoutput */
	char		kind;			/* 'n' number, 'b' bool, 'j' json, 's' string */
	char		fast;			/* written without fmgr (jsonout.c), or 0 */
	bool		dropped;
} SrJsonColumn;

typedef struct SrJsonTable
{
	int			natts;
	char	   *schema;			/* JSON-escaped, with quotes */
	char	   *table;
	SrJsonColumn *cols;
} SrJsonTable;

extern SrJsonTable *SrJsonTableCreate(TupleDesc desc, const char *schema,
									  const char *table);

/*
 * Append {"col":value,...} for the columns in table order that are in
 * columns (1-based; NULL = all), skipping those flagged in skip (may be NULL).
 */
extern void SrJsonAppendRow(StringInfo buf, const SrJsonTable *jt,
							Datum *values, bool *nulls,
							const Bitmapset *columns, const bool *skip);
extern void SrJsonAppendLsn(StringInfo buf, uint64 lsn);

#endif							/* SR_JSONOUT_H */
