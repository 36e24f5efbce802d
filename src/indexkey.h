/*-------------------------------------------------------------------------
 *
 * indexkey.h
 *	  Index keys: what the predicate index files a shape under.
 *
 * The compiler (keys.c) derives them from a qual, the predicate index
 * (predindex.c) stores them, the router chooses among a shape's access
 * paths.  Nothing here knows the bytecode.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_INDEXKEY_H
#define SR_INDEXKEY_H

#include "access/tupdesc.h"
#include "lib/stringinfo.h"
#include "nodes/nodes.h"

/*
 * Index keys: a necessary condition for a match.  A shape is a candidate
 * for a row if any key of the access path it is filed under hits;
 * candidates then run their whole program, so keys may over-approximate
 * but never miss.
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
	/* on the first key of each access path (see SrKeyPath) */
	int16		pathlen;		/* keys in the path; 0 on the others */
	bool		sel_stats;		/* sel is from statistics */
	float4		sel;			/* estimated selectivity of the path */
} SrIndexKey;

/*
 * A shape's keys are its access paths one after the other, most selective
 * first: the shape is filed under one path, and is a candidate for a row
 * if any key of that path hits.
 */
#define SR_MAX_PATHS	4

/* The keys of path number path (0-based) of keys[0..nkeys-1]; NULL if none */
static inline const SrIndexKey *
SrKeyPath(const SrIndexKey *keys, int nkeys, int path, int *n)
{
	int			i = 0;

	for (int p = 0; p < path && i < nkeys; p++)
		i += keys[i].pathlen;
	if (i >= nkeys)
	{
		*n = 0;
		return NULL;
	}
	*n = keys[i].pathlen;
	return &keys[i];
}

static inline int
SrKeyPathCount(const SrIndexKey *keys, int nkeys)
{
	int			n = 0;

	for (int i = 0; i < nkeys; i += keys[i].pathlen)
		n++;
	return n;
}

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
extern int	SrCompileKeys(Node *qual, Oid relid, SrIndexKey **keys);
extern void SrExplainKeys(const SrIndexKey *keys, int nkeys, TupleDesc desc,
						  StringInfo buf);

#endif							/* SR_INDEXKEY_H */
