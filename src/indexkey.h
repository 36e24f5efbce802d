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
extern int	SrCompileKeys(Node *qual, SrIndexKey **keys);
extern void SrExplainKeys(const SrIndexKey *keys, int nkeys, TupleDesc desc,
						  StringInfo buf);

#endif							/* SR_INDEXKEY_H */
