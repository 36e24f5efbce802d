/*-------------------------------------------------------------------------
 *
 * predindex.c
 *	  The predicate index of one table.
 *
 * Shapes are grouped by the kind, column and support function of their
 * access path (compile.c):
 *   - equality: a hash table from the hash of the value (the operator's
 *     hash opfamily function, so "=" and the hash agree) to shape ids;
 *   - LIKE prefixes: a hash table keyed by prefix bytes, probed once per
 *     distinct prefix length;
 *   - ranges: an interval tree (a treap by lower bound whose nodes keep
 *     their subtree's highest upper bound);
 *   - LIKE/ILIKE infixes: a hash table keyed by n-gram codes (1 to 3 bytes,
 *     exact), each shape filed under the least loaded n-gram of its
 *     pattern; a lookup probes every n-gram of the value (lowered for
 *     ILIKE), behind a bitmap of the codes present;
 *   - boolean and NULL tests: id lists per column and outcome;
 *   - shapes without an access path: the scan list.
 * A lookup returns candidates; the router runs each candidate's program, so
 * hash collisions and loose bounds cost time, never correctness.
 *
 * Adding or removing a shape touches only its own entries: O(1) for hash
 * tables and lists (removal from a list is linear in that list), O(log n)
 * expected for the range treap.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"

#include <roaring/roaring.h>

#include "predindex.h"

/* Shape ids, unsorted */
/*
 * Shape ids: an unsorted array while short, where adding is O(1) and
 * removing a scan of at most IDLIST_BITMAP_MIN ids; from then on a roaring
 * bitmap (CRoaring), where both are O(log n), if every id fits in 32 bits
 * (ids come from a sequence).  Short lists stay arrays: CRoaring 0.2.66 is
 * slow to build and read tiny bitmaps, and most lists hold one or two ids.
 */
#define IDLIST_BITMAP_MIN	256

typedef struct IdList
{
	int			n;				/* ids in the list, either form */
	int			cap;
	int64	   *ids;			/* unsorted; NULL while in bitmap */
	roaring_bitmap_t *bitmap;
} IdList;

static void IdListFree(IdList *l);

/* A hash table slot, 16 bytes: one id inline, more in a list */
typedef enum SlotState
{
	SLOT_FREE = 0,				/* never used: ends a probe */
	SLOT_EMPTY,					/* used, no ids now (a tombstone) */
	SLOT_ONE,					/* one id, inline */
	SLOT_LIST					/* ids in list */
} SlotState;

typedef struct HashEntry
{
	uint32		hash;
	uint32		state;			/* SlotState */
	union
	{
		int64		one;
		IdList	   *list;
	}			u;
} HashEntry;

/*
 * Open addressing, at most three quarters full.  A lookup first tests a
 * bitmap of 8 to 16 bits per slot (one bit per stored hash, never cleared
 * until the table is rebuilt): at 100,000 shapes the slots take about 3 MB,
 * out of cache, while the bitmap's 256 KB stay in it, and most rows match
 * no shape at all.
 */
typedef struct HashTable
{
	uint32		size;			/* slots */
	uint32		used;
	int			bitshift;		/* 32 - log2(bits in filter) */
	HashEntry  *entries;
	uint64	   *filter;
} HashTable;

static inline uint32
FilterBit(const HashTable *t, uint32 hash)
{
	/* the slot comes from the low bits; the bit from the high bits of a mix */
	return (hash * 0x9E3779B1) >> t->bitshift;
}

static inline void
FilterSet(HashTable *t, uint32 hash)
{
	uint32		b = FilterBit(t, hash);

	t->filter[b / 64] |= UINT64CONST(1) << (b % 64);
}

static inline bool
FilterTest(const HashTable *t, uint32 hash)
{
	uint32		b = FilterBit(t, hash);

	return (t->filter[b / 64] & (UINT64CONST(1) << (b % 64))) != 0;
}

/*
 * An empty table of size slots.  Sizes need not be powers of two (a slot is
 * hash * size / 2^32), so tables grow by half: at most 1.5 times the slots
 * the fill limit needs, not twice.  The filter has at least 8 bits per slot.
 */
static void
HashInit(HashTable *t, uint32 size)
{
	int			logbits = pg_leftmost_one_pos32(size * 8 - 1) + 1;

	t->size = size;
	t->used = 0;
	t->bitshift = 32 - logbits;
	t->entries = palloc0(sizeof(HashEntry) * size);
	t->filter = palloc0(Max((Size) 1 << logbits, 64) / 8);
}

typedef struct EqGroup
{
	AttrNumber	attno;
	Oid			proc;
	Oid			collation;
	bool		elem;			/* hashes of an array column's elements */
	Oid			elemtype;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	FmgrInfo	fn;
	HashTable	table;
	int			reserve;		/* hashes announced by SrPredIndexReserve */
} EqGroup;

typedef struct PrefixGroup
{
	AttrNumber	attno;
	int			nlens;			/* distinct prefix lengths, ascending */
	int		   *lens;
	int		   *lencount;		/* shapes per length */
	HashTable	table;			/* hash of (prefix bytes) */
} PrefixGroup;

#define INFIX_BITS	65536			/* presence bitmap of n-gram codes */
#define INFIX_VERIFY_MAX 4096		/* longer values: no n-gram check per shape */

/* A shape filed under an n-gram, with all of its key's n-grams */
typedef struct InfixPosting
{
	int64		shape_id;
	const uint32 *codes;		/* the key's, alive while the shape is indexed */
	int			ncodes;
} InfixPosting;

typedef struct InfixEntry
{
	uint32		code;			/* hash key */
	int			n;
	int			cap;
	InfixPosting *items;
} InfixEntry;

typedef struct InfixGroup
{
	AttrNumber	attno;
	Oid			collation;
	bool		icase;			/* n-grams of lower(value) */
	int			lencount[4];	/* shapes filed under n-grams of 1..3 bytes */
	uint64	   *present;		/* INFIX_BITS bits, never cleared */
	HTAB	   *table;			/* n-gram code -> InfixEntry */
	MemoryContext cxt;			/* of the posting arrays */
} InfixGroup;

/*
 * Ranges live in a treap ordered by (lower bound, shape id), a missing lower
 * bound first; each node keeps the highest upper bound of its subtree, so a
 * lookup skips every subtree whose intervals all end below the value (an
 * interval tree).  Priorities come from the shape id: deterministic, and
 * expected depth O(log n) all the same.
 */
typedef struct RangeNode
{
	struct RangeNode *left,
			   *right;
	Datum		lower;
	Datum		upper;
	Datum		maxupper;		/* highest upper bound below, unless maxinf */
	int64		shape_id;
	uint32		prio;
	bool		has_lower;
	bool		has_upper;
	bool		maxinf;			/* an interval below has no upper bound */
} RangeNode;

typedef struct RangeGroup
{
	AttrNumber	attno;
	Oid			proc;
	Oid			sortproc;
	Oid			collation;
	FmgrInfo	cmp;			/* (column, bound) */
	FmgrInfo	sortcmp;		/* (bound, bound) */
	Oid			intcmp;			/* F_BTINT2/4/8CMP when both are that one
								 * function: compared inline */
	RangeNode  *root;
} RangeGroup;

typedef struct FlagGroup
{
	AttrNumber	attno;
	IdList		lists[4];		/* TRUE, FALSE, NULL, NOTNULL */
} FlagGroup;

struct SrPredIndex
{
	int			neq,
				nprefix,
				ninfix,
				nrange,
				nflag;
	EqGroup   **eq;
	PrefixGroup **prefix;
	InfixGroup **infix;
	RangeGroup **range;
	FlagGroup **flag;
	IdList		scan;
	MemoryContextCallback cleanup;	/* frees the bitmaps (malloc'd) */
};

/* Every bitmap of the index (they live outside memory contexts) */
static void
FreeBitmaps(void *arg)
{
	SrPredIndex *index = (SrPredIndex *) arg;

	IdListFree(&index->scan);
	for (int i = 0; i < index->nflag; i++)
		for (int j = 0; j < 4; j++)
			IdListFree(&index->flag[i]->lists[j]);
	for (int i = 0; i < index->neq + index->nprefix; i++)
	{
		HashTable  *t = i < index->neq ? &index->eq[i]->table :
			&index->prefix[i - index->neq]->table;

		for (uint32 e = 0; t->entries && e < t->size; e++)
			if (t->entries[e].state == SLOT_LIST)
				IdListFree(t->entries[e].u.list);
	}
}

/* In CurrentMemoryContext, which frees its bitmaps when reset or deleted */
SrPredIndex *
SrPredIndexCreate(void)
{
	SrPredIndex *index = palloc0(sizeof(SrPredIndex));

	index->cleanup.func = FreeBitmaps;
	index->cleanup.arg = index;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &index->cleanup);
	return index;
}

static inline bool
Fits32(int64 id)
{
	return id >= 0 && id <= (int64) PG_UINT32_MAX;
}

static void
IdListAdd(IdList *l, int64 id)
{
	if (l->bitmap && Fits32(id))
	{
		if (roaring_bitmap_add_checked(l->bitmap, (uint32) id))
			l->n++;
		return;
	}
	if (l->bitmap)
	{
		/* an id beyond 32 bits: back to an array */
		uint32	   *u = palloc(sizeof(uint32) * Max(l->n, 1));

		roaring_bitmap_to_uint32_array(l->bitmap, u);
		l->cap = l->n + 1;
		l->ids = palloc(sizeof(int64) * l->cap);
		for (int i = 0; i < l->n; i++)
			l->ids[i] = (int64) u[i];
		pfree(u);
		roaring_bitmap_free(l->bitmap);
		l->bitmap = NULL;
	}
	if (l->n >= l->cap)
	{
		l->cap = Max(4, l->cap * 2);
		l->ids = l->ids ? repalloc(l->ids, sizeof(int64) * l->cap) :
			palloc(sizeof(int64) * l->cap);
	}
	l->ids[l->n++] = id;

	if (l->n >= IDLIST_BITMAP_MIN)
	{
		roaring_bitmap_t *b;
		int			i;

		for (i = 0; i < l->n && Fits32(l->ids[i]); i++)
			;
		if (i < l->n || (b = roaring_bitmap_create()) == NULL)
			return;
		for (i = 0; i < l->n; i++)
			roaring_bitmap_add(b, (uint32) l->ids[i]);
		l->n = (int) roaring_bitmap_get_cardinality(b);
		l->bitmap = b;
		pfree(l->ids);
		l->ids = NULL;
		l->cap = 0;
	}
}

static void
IdListRemove(IdList *l, int64 id)
{
	if (l->bitmap)
	{
		if (!Fits32(id) || !roaring_bitmap_remove_checked(l->bitmap, (uint32) id))
			return;
		if (--l->n == 0)
		{
			roaring_bitmap_free(l->bitmap);
			l->bitmap = NULL;
		}
		return;
	}
	for (int i = 0; i < l->n; i++)
		if (l->ids[i] == id)
		{
			l->ids[i] = l->ids[--l->n];
			return;
		}
}

static void
IdListFree(IdList *l)
{
	if (l->bitmap)
		roaring_bitmap_free(l->bitmap);
	if (l->ids)
		pfree(l->ids);
	l->bitmap = NULL;
	l->ids = NULL;
	l->n = l->cap = 0;
}

void
SrIdBufReserve(SrIdBuf *buf, int more)
{
	if (buf->n + more > buf->cap)
	{
		int			cap = Max(Max(buf->cap * 2, buf->n + more), 16);

		buf->ids = buf->ids ? repalloc(buf->ids, sizeof(int64) * cap) :
			MemoryContextAlloc(buf->cxt, sizeof(int64) * cap);
		buf->cap = cap;
	}
}

static inline void
IdBufAdd(SrIdBuf *buf, int64 id)
{
	if (buf->n >= buf->cap)
		SrIdBufReserve(buf, 1);
	buf->ids[buf->n++] = id;
}

static void
IdListAppend(const IdList *l, SrIdBuf *buf)
{
	if (l->n == 0)
		return;
	SrIdBufReserve(buf, l->n);
	if (l->bitmap)
	{
		/*
		 * The 32-bit ids go to the upper half of the room for n 64-bit ones,
		 * then widen in place front to back: slot i is written only after
		 * the 32-bit id it overwrites has been read.
		 */
		uint32	   *u = (uint32 *) (buf->ids + buf->n);

		roaring_bitmap_to_uint32_array(l->bitmap, u + l->n);
		for (int i = 0; i < l->n; i++)
			buf->ids[buf->n + i] = (int64) u[l->n + i];
	}
	else
		memcpy(buf->ids + buf->n, l->ids, sizeof(int64) * l->n);
	buf->n += l->n;
}

/* ---- hash tables: open addressing, never shrinking ---- */

static HashEntry *
HashFind(HashTable *t, uint32 hash, bool create)
{
	uint32		pos;

	if (t->entries == NULL)
	{
		if (!create)
			return NULL;
		HashInit(t, 16);
	}
	else if (create && ((uint64) t->used + 1) * 4 > (uint64) t->size * 3)
	{
		HashTable	bigger;
		uint32		live = 0;

		/* tombstones and emptied lists are dropped here */
		for (uint32 i = 0; i < t->size; i++)
			if (t->entries[i].state == SLOT_ONE ||
				(t->entries[i].state == SLOT_LIST && t->entries[i].u.list->n > 0))
				live++;
		/* half full again: grows by half, or stays if tombstones go */
		HashInit(&bigger, Max(16, (live + 1) * 2));
		for (uint32 i = 0; i < t->size; i++)
		{
			HashEntry  *old = &t->entries[i];

			if (old->state == SLOT_ONE ||
				(old->state == SLOT_LIST && old->u.list->n > 0))
			{
				HashEntry  *e = HashFind(&bigger, old->hash, true);

				*e = *old;
				FilterSet(&bigger, old->hash);
			}
			else if (old->state == SLOT_LIST)
			{
				IdListFree(old->u.list);
				pfree(old->u.list);
			}
		}
		pfree(t->entries);
		pfree(t->filter);
		*t = bigger;
	}

	pos = (uint32) (((uint64) hash * t->size) >> 32);
	while (t->entries[pos].state != SLOT_FREE)
	{
		if (t->entries[pos].hash == hash)
			return &t->entries[pos];
		if (++pos == t->size)
			pos = 0;
	}
	if (!create)
		return NULL;
	t->entries[pos].state = SLOT_EMPTY;
	t->entries[pos].hash = hash;
	t->used++;
	return &t->entries[pos];
}

static void
HashAdd(HashTable *t, uint32 hash, int64 id)
{
	HashEntry  *e = HashFind(t, hash, true);

	FilterSet(t, hash);
	switch ((SlotState) e->state)
	{
		case SLOT_LIST:
			IdListAdd(e->u.list, id);
			break;
		case SLOT_ONE:
			{
				IdList	   *l = palloc0(sizeof(IdList));

				IdListAdd(l, e->u.one);
				IdListAdd(l, id);
				e->u.list = l;
				e->state = SLOT_LIST;
				break;
			}
		default:
			e->u.one = id;
			e->state = SLOT_ONE;
			break;
	}
}

static void
HashRemove(HashTable *t, uint32 hash, int64 id)
{
	HashEntry  *e = t->entries ? HashFind(t, hash, false) : NULL;

	/* The entry stays, empty: open addressing needs it as a tombstone. */
	if (e == NULL)
		return;
	if (e->state == SLOT_LIST)
		IdListRemove(e->u.list, id);
	else if (e->state == SLOT_ONE && e->u.one == id)
		e->state = SLOT_EMPTY;
}

static void
HashProbe(HashTable *t, uint32 hash, SrIdBuf *buf)
{
	HashEntry  *e;

	if (t->entries == NULL || !FilterTest(t, hash) ||
		(e = HashFind(t, hash, false)) == NULL)
		return;
	if (e->state == SLOT_LIST)
		IdListAppend(e->u.list, buf);
	else if (e->state == SLOT_ONE)
		IdBufAdd(buf, e->u.one);
}


/* ---- groups ---- */

static EqGroup *
FindEq(SrPredIndex *index, const SrIndexKey *k, bool create)
{
	EqGroup    *g;

	for (int i = 0; i < index->neq; i++)
	{
		g = index->eq[i];
		if (g->attno == k->attno && g->proc == k->proc &&
			g->collation == k->collation && g->elem == (k->kind == SR_KEY_ELEM))
			return g;
	}
	if (!create)
		return NULL;
	g = palloc0(sizeof(EqGroup));
	g->attno = k->attno;
	g->proc = k->proc;
	g->collation = k->collation;
	g->elem = (k->kind == SR_KEY_ELEM);
	if (g->elem)
	{
		g->elemtype = k->elemtype;
		get_typlenbyvalalign(k->elemtype, &g->elmlen, &g->elmbyval, &g->elmalign);
	}
	fmgr_info(k->proc, &g->fn);
	index->eq = index->eq ? repalloc(index->eq, sizeof(EqGroup *) * (index->neq + 1)) :
		palloc(sizeof(EqGroup *));
	index->eq[index->neq++] = g;
	return g;
}

static PrefixGroup *
FindPrefix(SrPredIndex *index, const SrIndexKey *k, bool create)
{
	PrefixGroup *g;

	for (int i = 0; i < index->nprefix; i++)
		if (index->prefix[i]->attno == k->attno)
			return index->prefix[i];
	if (!create)
		return NULL;
	g = palloc0(sizeof(PrefixGroup));
	g->attno = k->attno;
	index->prefix = index->prefix ?
		repalloc(index->prefix, sizeof(PrefixGroup *) * (index->nprefix + 1)) :
		palloc(sizeof(PrefixGroup *));
	index->prefix[index->nprefix++] = g;
	return g;
}

static InfixGroup *
FindInfix(SrPredIndex *index, const SrIndexKey *k, bool create)
{
	InfixGroup *g;

	for (int i = 0; i < index->ninfix; i++)
	{
		g = index->infix[i];
		if (g->attno == k->attno && g->collation == k->collation &&
			g->icase == k->icase)
			return g;
	}
	if (!create)
		return NULL;
	g = palloc0(sizeof(InfixGroup));
	g->attno = k->attno;
	g->collation = k->collation;
	g->icase = k->icase;
	g->present = palloc0(INFIX_BITS / 8);
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(InfixEntry);
		ctl.hcxt = g->cxt = CurrentMemoryContext;
		g->table = hash_create("shape_router n-grams", 64, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	index->infix = index->infix ?
		repalloc(index->infix, sizeof(InfixGroup *) * (index->ninfix + 1)) :
		palloc(sizeof(InfixGroup *));
	index->infix[index->ninfix++] = g;
	return g;
}

/* n-gram codes are exact but clustered: spread them for the bitmap */
#define InfixHash(code) murmurhash32(code)

static inline bool
InfixPresent(const InfixGroup *g, uint32 code)
{
	uint32		h = InfixHash(code) % INFIX_BITS;

	return (g->present[h / 64] & (UINT64CONST(1) << (h % 64))) != 0;
}

/*
 * File the shape under the n-gram with the fewest shapes so far: patterns
 * sharing a common n-gram ("#tag1", "#tag2") spread over their rarer ones.
 */
static void
InfixInsert(InfixGroup *g, const SrIndexKey *k, int64 shape_id)
{
	int			best = 0,
				bestcount = INT_MAX;
	InfixEntry *e;
	bool		found;
	uint32		h;

	for (int v = 0; v < k->nvalues && bestcount > 0; v++)
	{
		e = hash_search(g->table, &k->hashes[v], HASH_FIND, NULL);
		if ((e ? e->n : 0) < bestcount)
			best = v, bestcount = e ? e->n : 0;
	}
	e = hash_search(g->table, &k->hashes[best], HASH_ENTER, &found);
	if (!found)
	{
		e->n = 0;
		e->cap = 0;
		e->items = NULL;
	}
	if (e->n >= e->cap)
	{
		e->cap = Max(2, e->cap * 2);
		e->items = e->items ? repalloc(e->items, sizeof(InfixPosting) * e->cap) :
			MemoryContextAlloc(g->cxt, sizeof(InfixPosting) * e->cap);
	}
	e->items[e->n].shape_id = shape_id;
	e->items[e->n].codes = k->hashes;
	e->items[e->n].ncodes = k->nvalues;
	e->n++;
	h = InfixHash(k->hashes[best]) % INFIX_BITS;
	g->present[h / 64] |= UINT64CONST(1) << (h % 64);
	g->lencount[k->hashes[best] >> 24]++;
}

/* The shape is under one of its n-grams; a removal from the others is a no-op. */
static void
InfixRemove(InfixGroup *g, const SrIndexKey *k, int64 shape_id)
{
	for (int v = 0; v < k->nvalues; v++)
	{
		InfixEntry *e = hash_search(g->table, &k->hashes[v], HASH_FIND, NULL);

		for (int i = 0; e && i < e->n; i++)
			if (e->items[i].shape_id == shape_id)
			{
				e->items[i] = e->items[--e->n];
				g->lencount[k->hashes[v] >> 24]--;
				return;
			}
	}
}

static int CompareUint32(const void *a, const void *b);

/* Sort codes and drop repeats; returns how many are left */
static int
SortUnique(uint32 *codes, int n)
{
	int			u = 0;

	if (n > 1)
		qsort(codes, n, sizeof(uint32), CompareUint32);
	for (int i = 0; i < n; i++)
		if (u == 0 || codes[i] != codes[u - 1])
			codes[u++] = codes[i];
	return u;
}

/* Does the value (bytes p[0..len)) contain the n-gram code? */
static bool
ValueHasCode(const char *p, int len, uint32 code)
{
	int			gl = code >> 24;

	for (int i = 0; i + gl <= len; i++)
		if (SrNgramCode(p + i, gl) == code)
			return true;
	return false;
}

/*
 * Probe each distinct n-gram of the value that the bitmap lets through; a
 * shape filed there is a candidate only if the value has every n-gram of
 * its key (each one a substring of any match), so a common n-gram alone
 * ("123" in hex strings) does not make a shape run its ILIKE.  A shape is
 * filed under one n-gram, so it comes back at most once.
 */
static void
InfixProbe(InfixGroup *g, Datum value, SrIdBuf *buf)
{
	text	   *t;
	const char *p;
	int			len,
				nhit = 0,
				nuniq = 0,
				cap = 64;
	uint32	   *hit;

	if (g->icase)
		value = DirectFunctionCall1Coll(lower, g->collation, value);
	t = DatumGetTextPP(value);
	p = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	hit = palloc(sizeof(uint32) * cap);
	for (int gl = 1; gl <= 3; gl++)
	{
		if (g->lencount[gl] == 0)
			continue;
		for (int i = 0; i + gl <= len; i++)
		{
			uint32		code = SrNgramCode(p + i, gl);

			if ((i & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
			if (!InfixPresent(g, code))
				continue;
			if (nhit == cap)
			{
				/* a long value: drop repeats before growing */
				if (cap >= 65536)
					nhit = SortUnique(hit, nhit);
				if (nhit * 2 > cap)
				{
					cap *= 2;
					hit = repalloc_huge(hit, sizeof(uint32) * cap);
				}
			}
			hit[nhit++] = code;
		}
	}
	/* usually a handful: sort only many */
	if (nhit > 16)
		nuniq = SortUnique(hit, nhit);
	else
		for (int i = 0; i < nhit; i++)
		{
			bool		dup = false;

			for (int j = 0; j < nuniq && !dup; j++)
				dup = (hit[j] == hit[i]);
			if (!dup)
				hit[nuniq++] = hit[i];
		}
	for (int i = 0; i < nuniq; i++)
	{
		InfixEntry *e = hash_search(g->table, &hit[i], HASH_FIND, NULL);

		for (int j = 0; e && j < e->n; j++)
		{
			const InfixPosting *post = &e->items[j];
			int			c;

			/* a posting list can hold every shape of the table */
			if ((j & 1023) == 1023)
				CHECK_FOR_INTERRUPTS();

			/* a long value is left to the shape's own ILIKE */
			for (c = 0; len <= INFIX_VERIFY_MAX && c < post->ncodes; c++)
				if (post->codes[c] != hit[i] &&
					!ValueHasCode(p, len, post->codes[c]))
					break;
			if (len > INFIX_VERIFY_MAX)
				c = post->ncodes;
			if (c == post->ncodes)
				IdBufAdd(buf, post->shape_id);
		}
	}
	pfree(hit);
}

static RangeGroup *
FindRange(SrPredIndex *index, const SrIndexKey *k, bool create)
{
	RangeGroup *g;

	for (int i = 0; i < index->nrange; i++)
	{
		g = index->range[i];
		if (g->attno == k->attno && g->proc == k->proc &&
			g->sortproc == k->sortproc && g->collation == k->collation)
			return g;
	}
	if (!create)
		return NULL;
	g = palloc0(sizeof(RangeGroup));
	g->attno = k->attno;
	g->proc = k->proc;
	g->sortproc = k->sortproc;
	g->collation = k->collation;
	fmgr_info(k->proc, &g->cmp);
	fmgr_info(k->sortproc, &g->sortcmp);
	if (k->proc == k->sortproc &&
		(k->proc == F_BTINT2CMP || k->proc == F_BTINT4CMP ||
		 k->proc == F_BTINT8CMP))
		g->intcmp = k->proc;
	index->range = index->range ?
		repalloc(index->range, sizeof(RangeGroup *) * (index->nrange + 1)) :
		palloc(sizeof(RangeGroup *));
	index->range[index->nrange++] = g;
	return g;
}

static FlagGroup *
FindFlag(SrPredIndex *index, AttrNumber attno, bool create)
{
	FlagGroup  *g;

	for (int i = 0; i < index->nflag; i++)
		if (index->flag[i]->attno == attno)
			return index->flag[i];
	if (!create)
		return NULL;
	g = palloc0(sizeof(FlagGroup));
	g->attno = attno;
	index->flag = index->flag ?
		repalloc(index->flag, sizeof(FlagGroup *) * (index->nflag + 1)) :
		palloc(sizeof(FlagGroup *));
	index->flag[index->nflag++] = g;
	return g;
}

/* btint2cmp, btint4cmp and btint8cmp, inline: the same order */
static inline int32
IntCmp(Oid proc, Datum a, Datum b)
{
	int64		x,
				y;

	switch (proc)
	{
		case F_BTINT2CMP:
			x = DatumGetInt16(a), y = DatumGetInt16(b);
			break;
		case F_BTINT4CMP:
			x = DatumGetInt32(a), y = DatumGetInt32(b);
			break;
		default:
			x = DatumGetInt64(a), y = DatumGetInt64(b);
			break;
	}
	return (x > y) - (x < y);
}

static inline int32
BoundCmp(RangeGroup *g, Datum a, Datum b)
{
	if (g->intcmp)
		return IntCmp(g->intcmp, a, b);
	return DatumGetInt32(FunctionCall2Coll(&g->sortcmp, g->collation, a, b));
}

static inline int32
ValueCmp(RangeGroup *g, Datum value, Datum bound)
{
	if (g->intcmp)
		return IntCmp(g->intcmp, value, bound);
	return DatumGetInt32(FunctionCall2Coll(&g->cmp, g->collation, value, bound));
}

/* Order of (has_lower, lower, shape_id) against a node */
static int
RangeKeyCmp(RangeGroup *g, bool has_lower, Datum lower, int64 shape_id,
			const RangeNode *node)
{
	if (has_lower != node->has_lower)
		return has_lower ? 1 : -1;
	if (has_lower)
	{
		int32		c = BoundCmp(g, lower, node->lower);

		if (c != 0)
			return c;
	}
	return (shape_id > node->shape_id) - (shape_id < node->shape_id);
}

static void
RangeNodeUpdate(RangeGroup *g, RangeNode *node)
{
	node->maxinf = !node->has_upper;
	node->maxupper = node->upper;
	for (int i = 0; i < 2; i++)
	{
		RangeNode  *c = i == 0 ? node->left : node->right;

		if (c == NULL || node->maxinf)
			continue;
		if (c->maxinf)
			node->maxinf = true;
		else if (BoundCmp(g, c->maxupper, node->maxupper) > 0)
			node->maxupper = c->maxupper;
	}
}

static RangeNode *
RangeRotate(RangeGroup *g, RangeNode *root, bool right)
{
	RangeNode  *child = right ? root->left : root->right;

	if (right)
	{
		root->left = child->right;
		child->right = root;
	}
	else
	{
		root->right = child->left;
		child->left = root;
	}
	RangeNodeUpdate(g, root);
	RangeNodeUpdate(g, child);
	return child;
}

static RangeNode *
RangeNodeInsert(RangeGroup *g, RangeNode *root, RangeNode *node)
{
	check_stack_depth();
	if (root == NULL)
	{
		RangeNodeUpdate(g, node);
		return node;
	}
	if (RangeKeyCmp(g, node->has_lower, node->lower, node->shape_id, root) < 0)
	{
		root->left = RangeNodeInsert(g, root->left, node);
		if (root->left->prio > root->prio)
			return RangeRotate(g, root, true);
	}
	else
	{
		root->right = RangeNodeInsert(g, root->right, node);
		if (root->right->prio > root->prio)
			return RangeRotate(g, root, false);
	}
	RangeNodeUpdate(g, root);
	return root;
}

static RangeNode *
RangeNodeMerge(RangeGroup *g, RangeNode *a, RangeNode *b)
{
	check_stack_depth();
	if (a == NULL)
		return b;
	if (b == NULL)
		return a;
	if (a->prio > b->prio)
	{
		a->right = RangeNodeMerge(g, a->right, b);
		RangeNodeUpdate(g, a);
		return a;
	}
	b->left = RangeNodeMerge(g, a, b->left);
	RangeNodeUpdate(g, b);
	return b;
}

static RangeNode *
RangeNodeDelete(RangeGroup *g, RangeNode *root, const SrIndexKey *k,
				int64 shape_id)
{
	int			c;

	check_stack_depth();
	if (root == NULL)
		return NULL;
	c = RangeKeyCmp(g, k->has_lower, k->lower, shape_id, root);
	if (c == 0)
	{
		RangeNode  *merged = RangeNodeMerge(g, root->left, root->right);

		pfree(root);
		return merged;
	}
	if (c < 0)
		root->left = RangeNodeDelete(g, root->left, k, shape_id);
	else
		root->right = RangeNodeDelete(g, root->right, k, shape_id);
	RangeNodeUpdate(g, root);
	return root;
}

static void
RangeInsert(RangeGroup *g, const SrIndexKey *k, int64 shape_id)
{
	RangeNode  *node = palloc0(sizeof(RangeNode));
	uint64		h = (uint64) shape_id * UINT64CONST(0x9E3779B97F4A7C15);

	node->shape_id = shape_id;
	node->prio = (uint32) (h >> 32);
	node->has_lower = k->has_lower;
	node->lower = k->lower;
	node->has_upper = k->has_upper;
	node->upper = k->upper;
	g->root = RangeNodeInsert(g, g->root, node);
}

/* Append the shapes whose interval contains value */
static void
RangeStab(RangeGroup *g, RangeNode *node, Datum value, SrIdBuf *buf)
{
	check_stack_depth();
	while (node != NULL)
	{
		if (!node->maxinf && ValueCmp(g, value, node->maxupper) > 0)
			break;
		RangeStab(g, node->left, value, buf);
		/* this node and everything to its right start above the value */
		if (node->has_lower && ValueCmp(g, value, node->lower) < 0)
			break;
		if (!node->has_upper || ValueCmp(g, value, node->upper) <= 0)
			IdBufAdd(buf, node->shape_id);
		node = node->right;
	}
}

static int
FlagList(SrKeyKind kind)
{
	switch (kind)
	{
		case SR_KEY_TRUE:
			return 0;
		case SR_KEY_FALSE:
			return 1;
		case SR_KEY_NULL:
			return 2;
		default:
			return 3;
	}
}

/* ---- load: how crowded a key's posting lists are ---- */

/* Up to max ids of a list (the smallest, if a bitmap) into out */
static int
IdListPeers(const IdList *l, int64 *out, int max)
{
	int			n = Min(max, l->n);

	if (n <= 0)
		return 0;
	if (l->bitmap)
	{
		roaring_uint32_iterator_t it;
		uint32		u[64];
		uint32		got;

		roaring_init_iterator(l->bitmap, &it);
		got = roaring_read_uint32_iterator(&it, u, Min(n, 64));
		for (uint32 i = 0; i < got; i++)
			out[i] = u[i];
		return got;
	}
	memcpy(out, l->ids, sizeof(int64) * n);
	return n;
}

/* Ids under one hash: their number, and up to max of them into out */
static int
HashPosting(HashTable *t, uint32 hash, int64 *out, int max)
{
	HashEntry  *e = t->entries ? HashFind(t, hash, false) : NULL;
	IdList	   *l;

	if (e == NULL || e->state == SLOT_EMPTY || e->state == SLOT_FREE)
		return 0;
	if (e->state == SLOT_ONE)
	{
		if (max > 0)
			out[0] = e->u.one;
		return 1;
	}
	l = e->u.list;
	IdListPeers(l, out, max);
	return l->n;
}

/*
 * The load of an access path: how many shapes are already filed where
 * keys would file one, and (up to max, into peers) which.  A range key's
 * load is 0: the interval tree's cost follows the intervals a value
 * stabs, which is what the selectivity estimates.  An n-gram key counts
 * the n-gram InfixInsert would choose.
 */
int
SrPredIndexLoad(SrPredIndex *index, const SrIndexKey *keys, int nkeys,
				int64 *peers, int max, int *npeers)
{
	int			load = 0;

	*npeers = 0;
	for (int i = 0; i < nkeys; i++)
	{
		const SrIndexKey *k = &keys[i];
		int			got = 0;

		switch ((SrKeyKind) k->kind)
		{
			case SR_KEY_EQ:
			case SR_KEY_ELEM:
				{
					EqGroup    *g = FindEq(index, k, false);

					for (int v = 0; g && v < k->nvalues; v++)
					{
						got = HashPosting(&g->table, k->hashes[v], peers + *npeers,
										  max - *npeers);
						load += got;
						*npeers += Min(got, max - *npeers);
					}
					break;
				}
			case SR_KEY_PREFIX:
				{
					PrefixGroup *g = FindPrefix(index, k, false);

					if (g)
					{
						got = HashPosting(&g->table, k->hashes[0], peers + *npeers,
										  max - *npeers);
						load += got;
						*npeers += Min(got, max - *npeers);
					}
					break;
				}
			case SR_KEY_INFIX:
				{
					InfixGroup *g = FindInfix(index, k, false);
					InfixEntry *best = NULL;
					int			least = 0;

					for (int v = 0; g && v < k->nvalues; v++)
					{
						InfixEntry *e = hash_search(g->table, &k->hashes[v],
													HASH_FIND, NULL);
						int			n = e ? e->n : 0;

						if (v == 0 || n < least)
							least = n, best = e;
					}
					load += least;
					for (int j = 0; best && j < best->n && *npeers < max; j++)
						peers[(*npeers)++] = best->items[j].shape_id;
					break;
				}
			case SR_KEY_RANGE:
				break;
			default:
				{
					FlagGroup  *g = FindFlag(index, k->attno, false);
					IdList	   *l = g ? &g->lists[FlagList(k->kind)] : NULL;

					if (l && l->n > 0)
					{
						load += l->n;
						*npeers += IdListPeers(l, peers + *npeers, max - *npeers);
					}
					break;
				}
		}
	}
	return load;
}

/*
 * Bulk loading: announce the keys about to be inserted, then
 * SrPredIndexPrepare() sizes each equality table once for them instead of
 * growing it by halves through 100,000s of insertions.
 */
void
SrPredIndexReserve(SrPredIndex *index, const SrIndexKey *keys, int nkeys)
{
	for (int i = 0; i < nkeys; i++)
		if (keys[i].kind == SR_KEY_EQ || keys[i].kind == SR_KEY_ELEM)
			FindEq(index, &keys[i], true)->reserve += keys[i].nvalues;
}

void
SrPredIndexPrepare(SrPredIndex *index)
{
	for (int i = 0; i < index->neq; i++)
	{
		EqGroup    *g = index->eq[i];

		/* two thirds full: room to add shapes before the first rehash */
		if (g->table.entries == NULL && g->reserve > 0)
			HashInit(&g->table, Max(16, (uint32) Min((int64) g->reserve * 3 / 2,
												   PG_INT32_MAX)));
		g->reserve = 0;
	}
}

void
SrPredIndexInsert(SrPredIndex *index, int64 shape_id, const SrIndexKey *keys,
				  int nkeys)
{
	if (nkeys == 0)
	{
		IdListAdd(&index->scan, shape_id);
		return;
	}
	for (int i = 0; i < nkeys; i++)
	{
		const SrIndexKey *k = &keys[i];

		switch ((SrKeyKind) k->kind)
		{
			case SR_KEY_EQ:
			case SR_KEY_ELEM:
				{
					EqGroup    *g = FindEq(index, k, true);

					for (int v = 0; v < k->nvalues; v++)
						HashAdd(&g->table, k->hashes[v], shape_id);
					break;
				}
			case SR_KEY_PREFIX:
				{
					PrefixGroup *g = FindPrefix(index, k, true);
					int			l;

					for (l = 0; l < g->nlens && g->lens[l] < k->nvalues; l++)
						;
					if (l == g->nlens || g->lens[l] != k->nvalues)
					{
						g->lens = g->lens ? repalloc(g->lens, sizeof(int) * (g->nlens + 1)) :
							palloc(sizeof(int));
						g->lencount = g->lencount ?
							repalloc(g->lencount, sizeof(int) * (g->nlens + 1)) :
							palloc(sizeof(int));
						memmove(&g->lens[l + 1], &g->lens[l], sizeof(int) * (g->nlens - l));
						memmove(&g->lencount[l + 1], &g->lencount[l], sizeof(int) * (g->nlens - l));
						g->lens[l] = k->nvalues;
						g->lencount[l] = 0;
						g->nlens++;
					}
					g->lencount[l]++;
					HashAdd(&g->table, k->hashes[0], shape_id);
					break;
				}
			case SR_KEY_INFIX:
				InfixInsert(FindInfix(index, k, true), k, shape_id);
				break;
			case SR_KEY_RANGE:
				RangeInsert(FindRange(index, k, true), k, shape_id);
				break;
			default:
				IdListAdd(&FindFlag(index, k->attno, true)->lists[FlagList(k->kind)],
						  shape_id);
				break;
		}
	}
}

void
SrPredIndexDelete(SrPredIndex *index, int64 shape_id, const SrIndexKey *keys,
				  int nkeys)
{
	if (nkeys == 0)
	{
		IdListRemove(&index->scan, shape_id);
		return;
	}
	for (int i = 0; i < nkeys; i++)
	{
		const SrIndexKey *k = &keys[i];

		switch ((SrKeyKind) k->kind)
		{
			case SR_KEY_EQ:
			case SR_KEY_ELEM:
				{
					EqGroup    *g = FindEq(index, k, false);

					for (int v = 0; g && v < k->nvalues; v++)
						HashRemove(&g->table, k->hashes[v], shape_id);
					break;
				}
			case SR_KEY_PREFIX:
				{
					PrefixGroup *g = FindPrefix(index, k, false);

					/* the length stays listed: a probe of it is harmless */
					if (g)
						HashRemove(&g->table, k->hashes[0],
								   shape_id);
					break;
				}
			case SR_KEY_INFIX:
				{
					InfixGroup *g = FindInfix(index, k, false);

					if (g)
						InfixRemove(g, k, shape_id);
					break;
				}
			case SR_KEY_RANGE:
				{
					RangeGroup *g = FindRange(index, k, false);

					if (g)
						g->root = RangeNodeDelete(g, g->root, k, shape_id);
					break;
				}
			default:
				{
					FlagGroup  *g = FindFlag(index, k->attno, false);

					if (g)
						IdListRemove(&g->lists[FlagList(k->kind)], shape_id);
					break;
				}
		}
	}
}

static int
CompareUint32(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return (x > y) - (x < y);
}

/*
 * Each distinct element of the row's array probes once: a shape keyed by
 * several elements (&&) is listed once per hit, and the router removes
 * repeats, but a row repeating an element must not overflow ids.
 */
static void
ProbeElements(EqGroup *g, Datum value, SrIdBuf *buf)
{
	ArrayType  *arr = DatumGetArrayTypeP(value);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	uint32	   *seen;
	int			nseen = 0;

	if (ARR_ELEMTYPE(arr) != g->elemtype)
		return;
	deconstruct_array(arr, g->elemtype, g->elmlen, g->elmbyval, g->elmalign,
					  &elems, &nulls, &nelems);
	seen = palloc(sizeof(uint32) * Max(nelems, 1));
	for (int i = 0; i < nelems; i++)
		if (!nulls[i])
			seen[nseen++] = DatumGetUInt32(FunctionCall1Coll(&g->fn, g->collation,
															 elems[i]));
	if (nseen > 1)
		qsort(seen, nseen, sizeof(uint32), CompareUint32);
	for (int i = 0; i < nseen; i++)
		if (i == 0 || seen[i] != seen[i - 1])
			HashProbe(&g->table, seen[i], buf);
	pfree(seen);
}

void
SrPredIndexLookup(SrPredIndex *index, TupleTableSlot *slot, SrIdBuf *buf)
{
	Datum	   *values = slot->tts_values;
	bool	   *isnull = slot->tts_isnull;

	IdListAppend(&index->scan, buf);

	for (int i = 0; i < index->neq; i++)
	{
		EqGroup    *g = index->eq[i];
		int			a = g->attno - 1;

		slot_getsomeattrs(slot, g->attno);
		/* the operators are strict: a NULL column matches no "=" */
		if (isnull[a] || g->table.used == 0)
			continue;
		if (g->elem)
			ProbeElements(g, values[a], buf);
		else
			HashProbe(&g->table,
					  DatumGetUInt32(FunctionCall1Coll(&g->fn, g->collation, values[a])),
					  buf);
	}

	for (int i = 0; i < index->nprefix; i++)
	{
		PrefixGroup *g = index->prefix[i];
		int			a = g->attno - 1;
		text	   *t;
		int			len;

		slot_getsomeattrs(slot, g->attno);
		if (isnull[a])
			continue;
		t = DatumGetTextPP(values[a]);
		len = VARSIZE_ANY_EXHDR(t);
		for (int l = 0; l < g->nlens && g->lens[l] <= len; l++)
			HashProbe(&g->table, SrPrefixHash(VARDATA_ANY(t), g->lens[l]), buf);
	}

	for (int i = 0; i < index->ninfix; i++)
	{
		InfixGroup *g = index->infix[i];
		int			a = g->attno - 1;

		slot_getsomeattrs(slot, g->attno);
		if (!isnull[a])
			InfixProbe(g, values[a], buf);
	}

	for (int i = 0; i < index->nrange; i++)
	{
		RangeGroup *g = index->range[i];
		int			a = g->attno - 1;

		slot_getsomeattrs(slot, g->attno);
		if (isnull[a])
			continue;
		RangeStab(g, g->root, values[a], buf);
	}

	for (int i = 0; i < index->nflag; i++)
	{
		FlagGroup  *g = index->flag[i];
		int			a = g->attno - 1;

		slot_getsomeattrs(slot, g->attno);
		if (isnull[a])
			IdListAppend(&g->lists[2], buf);
		else
		{
			IdListAppend(&g->lists[3], buf);
			/* TRUE/FALSE lists hold boolean columns only */
			if (g->lists[0].n > 0 && DatumGetBool(values[a]))
				IdListAppend(&g->lists[0], buf);
			if (g->lists[1].n > 0 && !DatumGetBool(values[a]))
				IdListAppend(&g->lists[1], buf);
		}
	}
}
