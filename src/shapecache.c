/*-------------------------------------------------------------------------
 *
 * shapecache.c
 *	  Compiled shapes kept for the next stream (shapecache.h).
 *
 * A stream start reads the whole catalog; without this file it parses
 * each qual (stringToNode), compiles it, derives its index keys and
 * flattens the result into one chunk.  The file keeps those chunks, so a
 * start only reads the catalog rows' heads and copies.  An entry is used
 * only if
 *	- the file is whole (CRC-32C), of this format, server version, build of
 *	  the library and database, and names the same catalog (a re-created extension reuses
 *	  ids);
 *	- the catalog row of the shape is the one it was compiled from: the
 *	  same shape id and xmin (rows are never updated in place: resync,
 *	  activation and a superuser's UPDATE make a new version);
 *	- the table's signature is the same: every attribute's number, type,
 *	  typmod, collation, length, by-value, alignment and dropped flag, and
 *	  for each collation its columns or the shapes' keys use, the version
 *	  the catalog records and the one the library reports.
 * Everything else is compiled as without the file.  Only flat programs
 * are kept: programs that call PostgreSQL's functions or executor hold
 * pointers into their qual tree.  Key selectivities are those estimated
 * when the shape was compiled (docs/performance.md).
 *
 * The file is written (temporary file, rename) by the stream start that
 * compiled enough anew; it is not fsynced: a torn file fails its CRC and
 * is written again.  Only the slot's stream writes it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_locale.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "compile.h"
#include "shapecache.h"
#include "slotdir.h"
#include "sortutil.h"

#define SR_CACHE_FILE		"shape_router.compiled"
#define SR_CACHE_MAGIC		0x53524343	/* "SRCC" */
#define SR_CACHE_VERSION	1
#define SR_CACHE_MAXCOLL	64

typedef struct CacheHeader
{
	uint32		magic;
	uint32		version;
	uint32		pg_version;
	Oid			database;
	Oid			catalog;
	uint32		layout;			/* sizes of the flat structs, hashed */
	uint32		ntables;
	uint32		nshapes;
	uint64		bodylen;
	pg_crc32c	crc;			/* of the body */
	uint32		pad;
} CacheHeader;

typedef struct CacheTableRec
{
	Oid			relid;
	int32		ncoll;			/* then Oid colls[ncoll], padded to 8 */
	uint64		attrs;			/* signature of the attributes */
	uint64		colls;			/* ... and of the collations' versions */
} CacheTableRec;

typedef struct CacheShapeRec
{
	int64		shape_id;
	TransactionId xmin;
	Oid			relid;
	int32		ncolumns;		/* -1 = all; then int16 columns, padded */
	int16		nkeys;
	int16		pad;
	uint32		size;			/* then the chunk */
	uint32		keyoff;
	uint64		base;			/* the chunk's address when it was saved */
} CacheShapeRec;

/* A table as this stream found it */
typedef struct CacheTable
{
	Oid			relid;			/* hash key */
	bool		checked;		/* ok is known */
	bool		ok;				/* its entries in the file may be used */
	uint64		attrs;			/* signature of its attributes now */
	Oid			colls[SR_CACHE_MAXCOLL];	/* of its columns */
	int			ncoll;
} CacheTable;

typedef struct SeenShape
{
	int64		shape_id;
	TransactionId xmin;
	Oid			relid;
} SeenShape;

typedef struct ShapeIndex
{
	int64		shape_id;
	Size		offset;			/* of its CacheShapeRec in buf */
} ShapeIndex;

struct SrShapeCache
{
	MemoryContext cxt;
	char	   *path;			/* NULL: no slot */
	Oid			catalog;
	char	   *buf;			/* the file's body, or NULL */
	Size		buflen;
	const CacheTableRec **tables;	/* in buf, by relid */
	int			ntables;
	ShapeIndex *index;			/* in buf, by shape id */
	int			nindex;
	HTAB	   *seen_tables;	/* relid -> CacheTable */
	SeenShape  *seen;			/* shapes of this start, taken or compiled */
	int			nseen;
	int			maxseen;
	int64		ntaken;
	int64		ncompiled;
	int64		nnewflat;		/* of those, flat: they would be in the file */
};

/*
 * The flat structs' sizes and this build of the library (its file's size
 * and modification time): a chunk is only read by the code that wrote it,
 * since opcodes and key kinds may change without a size changing.
 */
static uint32
LayoutStamp(void)
{
	struct
	{
		uint32		sizes[6];
		int64		libsize;
		int64		libmtime;
	}			stamp;
	Dl_info		info;
	struct stat st;

	memset(&stamp, 0, sizeof(stamp));
	stamp.sizes[0] = sizeof(SrProgram);
	stamp.sizes[1] = sizeof(SrStep);
	stamp.sizes[2] = sizeof(SrIndexKey);
	stamp.sizes[3] = sizeof(SrValueSet);
	stamp.sizes[4] = sizeof(Bitmapset);
	stamp.sizes[5] = MAXIMUM_ALIGNOF;
	if (dladdr((void *) LayoutStamp, &info) != 0 && info.dli_fname &&
		stat(info.dli_fname, &st) == 0)
	{
		stamp.libsize = st.st_size;
		stamp.libmtime = st.st_mtime;
	}
	return (uint32) XXH3_64bits(&stamp, sizeof(stamp));
}

#define PAD8(n) (((n) + 7) & ~((Size) 7))

/* Attributes of rel that compiled programs depend on */
static uint64
AttrSignature(Relation rel, CacheTable *t)
{
	TupleDesc	desc = RelationGetDescr(rel);
	XXH3_state_t state;
	XXH3_state_t *h = &state;

	XXH3_64bits_reset(h);
	t->ncoll = 0;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);
		struct
		{
			int16		attnum;
			int16		attlen;
			Oid			atttypid;
			int32		atttypmod;
			Oid			attcollation;
			bool		attbyval;
			char		attalign;
			bool		attisdropped;
			bool		attnotnull;
		}			f;

		memset(&f, 0, sizeof(f));
		f.attnum = a->attnum;
		f.attlen = a->attlen;
		f.atttypid = a->atttypid;
		f.atttypmod = a->atttypmod;
		f.attcollation = a->attcollation;
		f.attbyval = a->attbyval;
		f.attalign = a->attalign;
		f.attisdropped = a->attisdropped;
		f.attnotnull = a->attnotnull;
		XXH3_64bits_update(h, &f, sizeof(f));
		if (OidIsValid(a->attcollation) && t->ncoll < SR_CACHE_MAXCOLL)
			t->colls[t->ncoll++] = a->attcollation;
	}
	return XXH3_64bits_digest(h);
}

/* One collation's versions: recorded in the catalog, and the library's */
static void
HashCollation(XXH3_state_t *h, Oid coll)
{
	HeapTuple	tup;
	char		provider;
	const char *locale;
	Datum		d;
	bool		isnull;
	char	   *actual;

	XXH3_64bits_update(h, &coll, sizeof(coll));
	if (coll == DEFAULT_COLLATION_OID)
	{
		Form_pg_database db;

		tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for database %u", MyDatabaseId);
		db = (Form_pg_database) GETSTRUCT(tup);
		provider = db->datlocprovider;
		d = SysCacheGetAttr(DATABASEOID, tup, provider == COLLPROVIDER_ICU ?
							Anum_pg_database_daticulocale :
							Anum_pg_database_datcollate, &isnull);
		locale = isnull ? "" : TextDatumGetCString(d);
		d = SysCacheGetAttr(DATABASEOID, tup, Anum_pg_database_datcollversion,
							&isnull);
	}
	else
	{
		Form_pg_collation c;

		tup = SearchSysCache1(COLLOID, ObjectIdGetDatum(coll));
		if (!HeapTupleIsValid(tup))
		{
			/* gone: a signature no file has */
			XXH3_64bits_update(h, "gone", 4);
			return;
		}
		c = (Form_pg_collation) GETSTRUCT(tup);
		provider = c->collprovider;
		d = SysCacheGetAttr(COLLOID, tup, provider == COLLPROVIDER_ICU ?
							Anum_pg_collation_colliculocale :
							Anum_pg_collation_collcollate, &isnull);
		locale = isnull ? "" : TextDatumGetCString(d);
		d = SysCacheGetAttr(COLLOID, tup, Anum_pg_collation_collversion,
							&isnull);
	}
	XXH3_64bits_update(h, &provider, 1);
	XXH3_64bits_update(h, locale, strlen(locale) + 1);
	if (!isnull)
	{
		char	   *recorded = TextDatumGetCString(d);

		XXH3_64bits_update(h, recorded, strlen(recorded) + 1);
	}
	XXH3_64bits_update(h, "|", 1);
	ReleaseSysCache(tup);
	actual = *locale ? get_collation_actual_version(provider, locale) : NULL;
	if (actual)
		XXH3_64bits_update(h, actual, strlen(actual) + 1);
}

static uint64
CollSignature(const Oid *colls, int ncoll)
{
	XXH3_state_t state;

	XXH3_64bits_reset(&state);
	for (int i = 0; i < ncoll; i++)
		HashCollation(&state, colls[i]);
	return XXH3_64bits_digest(&state);
}

static int
CompareTableRec(const void *a, const void *b)
{
	Oid			x = (*(const CacheTableRec *const *) a)->relid;
	Oid			y = (*(const CacheTableRec *const *) b)->relid;

	return (x > y) - (x < y);
}

static int
CompareIndex(const void *a, const void *b)
{
	return SrCompareInt64(&((const ShapeIndex *) a)->shape_id,
						  &((const ShapeIndex *) b)->shape_id);
}

/* The body's records, checked to lie within it; false if they do not */
static bool
IndexBody(SrShapeCache *cache, const CacheHeader *h)
{
	Size		off = 0;

	cache->tables = palloc(sizeof(CacheTableRec *) * Max(h->ntables, 1));
	for (uint32 i = 0; i < h->ntables; i++)
	{
		const CacheTableRec *t = (const CacheTableRec *) (cache->buf + off);

		if (off + sizeof(CacheTableRec) > cache->buflen || t->ncoll < 0 ||
			t->ncoll > SR_CACHE_MAXCOLL * 2)
			return false;
		off += sizeof(CacheTableRec) + PAD8(sizeof(Oid) * t->ncoll);
		cache->tables[cache->ntables++] = t;
	}
	cache->index = MemoryContextAllocHuge(cache->cxt,
										  sizeof(ShapeIndex) * Max(h->nshapes, 1));
	for (uint32 i = 0; i < h->nshapes; i++)
	{
		const CacheShapeRec *s = (const CacheShapeRec *) (cache->buf + off);

		CHECK_FOR_INTERRUPTS();
		if (off + sizeof(CacheShapeRec) > cache->buflen || s->ncolumns < -1 ||
			s->ncolumns > MaxHeapAttributeNumber || s->nkeys < 0 ||
			s->size < sizeof(SrProgram) || s->keyoff > s->size)
			return false;
		cache->index[cache->nindex].shape_id = s->shape_id;
		cache->index[cache->nindex++].offset = off;
		off += sizeof(CacheShapeRec) + PAD8(sizeof(int16) * Max(s->ncolumns, 0)) +
			PAD8(s->size);
	}
	if (off != cache->buflen)
		return false;
	qsort(cache->tables, cache->ntables, sizeof(CacheTableRec *), CompareTableRec);
	qsort(cache->index, cache->nindex, sizeof(ShapeIndex), CompareIndex);
	return true;
}

/* Read and check the file; on any doubt, leave the cache empty */
static void
ReadFile(SrShapeCache *cache)
{
	CacheHeader h;
	int			fd = OpenTransientFile(cache->path, O_RDONLY | PG_BINARY);
	const char *problem = NULL;
	pg_crc32c	crc;

	if (fd < 0)
		return;
	if (read(fd, &h, sizeof(h)) != sizeof(h))
		problem = "it is truncated";
	else if (h.magic != SR_CACHE_MAGIC || h.version != SR_CACHE_VERSION ||
			 h.pg_version != PG_VERSION_NUM || h.layout != LayoutStamp())
		problem = "it is of another format or server version";
	else if (h.database != MyDatabaseId || h.catalog != cache->catalog)
		problem = "it is of another database or extension";
	else if (h.bodylen > MaxAllocHugeSize)
		problem = "its length is wrong";
	if (problem == NULL)
	{
		cache->buflen = h.bodylen;
		cache->buf = MemoryContextAllocHuge(cache->cxt, Max(h.bodylen, 1));
		if (read(fd, cache->buf, h.bodylen) != (ssize_t) h.bodylen ||
			read(fd, &crc, 1) != 0)
			problem = "its length is wrong";
	}
	CloseTransientFile(fd);
	if (problem == NULL)
	{
		INIT_CRC32C(crc);
		COMP_CRC32C(crc, cache->buf, cache->buflen);
		FIN_CRC32C(crc);
		if (!EQ_CRC32C(crc, h.crc))
			problem = "its checksum is wrong";
		else if (!IndexBody(cache, &h))
			problem = "its records are damaged";
	}
	if (problem)
	{
		ereport(LOG,
				(errmsg("shape_router: ignoring compiled-shape cache \"%s\": %s",
						cache->path, problem),
				 errdetail("Every shape is compiled anew, and the file is written again.")));
		cache->buf = NULL;
		cache->buflen = 0;
		cache->ntables = cache->nindex = 0;
	}
}

SrShapeCache *
SrShapeCacheLoad(const char *slot_name, Oid catalog, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SrShapeCache *cache = palloc0(sizeof(SrShapeCache));
	HASHCTL		ctl;

	cache->cxt = cxt;
	cache->catalog = catalog;
	ctl.hcxt = cxt;
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CacheTable);
	cache->seen_tables = hash_create("shape_router cached tables", 64, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	cache->maxseen = 1024;
	cache->seen = palloc(sizeof(SeenShape) * cache->maxseen);
	if (slot_name)
	{
		cache->path = SrSlotDirFile(SrSlotDir(slot_name), SR_CACHE_FILE);
		ReadFile(cache);
	}
	MemoryContextSwitchTo(old);
	return cache;
}

static const CacheTableRec *
FindTableRec(const SrShapeCache *cache, Oid relid)
{
	CacheTableRec key = {relid};
	const CacheTableRec *kp = &key;
	const CacheTableRec **hit = bsearch(&kp, cache->tables, cache->ntables,
										sizeof(CacheTableRec *), CompareTableRec);

	return hit ? *hit : NULL;
}

/* This stream's view of rel, its signature checked against the file's */
static CacheTable *
SeeTable(SrShapeCache *cache, Relation rel)
{
	bool		found;
	CacheTable *t = hash_search(cache->seen_tables, &rel->rd_id, HASH_ENTER,
								&found);

	if (!found)
	{
		t->checked = false;
		t->attrs = AttrSignature(rel, t);
	}
	if (!t->checked && cache->buf)
	{
		const CacheTableRec *rec = FindTableRec(cache, rel->rd_id);

		t->ok = rec && rec->attrs == t->attrs &&
			rec->colls == CollSignature((const Oid *) (rec + 1), rec->ncoll);
		t->checked = true;
	}
	return t;
}

static void
AddSeen(SrShapeCache *cache, Oid relid, int64 shape_id, TransactionId xmin)
{
	if (cache->nseen >= cache->maxseen)
	{
		cache->maxseen *= 2;
		cache->seen = repalloc_huge(cache->seen,
									sizeof(SeenShape) * cache->maxseen);
	}
	cache->seen[cache->nseen].shape_id = shape_id;
	cache->seen[cache->nseen].xmin = xmin;
	cache->seen[cache->nseen++].relid = relid;
}

SrShape *
SrShapeCacheTake(SrShapeCache *cache, SrTableRouter *router, Relation rel,
				 int64 shape_id, TransactionId xmin)
{
	ShapeIndex	key = {shape_id, 0};
	ShapeIndex *hit;
	const CacheShapeRec *s;
	const char *p;
	SrShape    *shape;
	MemoryContext old;
	bool		ok;

	if (cache->buf == NULL)
		return NULL;
	/* the signature's lookups allocate: in the cache's context */
	old = MemoryContextSwitchTo(cache->cxt);
	ok = SeeTable(cache, rel)->ok;
	MemoryContextSwitchTo(old);
	if (!ok)
		return NULL;
	hit = bsearch(&key, cache->index, cache->nindex, sizeof(ShapeIndex),
				  CompareIndex);
	if (hit == NULL)
		return NULL;
	s = (const CacheShapeRec *) (cache->buf + hit->offset);
	if (s->xmin != xmin || s->relid != RelationGetRelid(rel))
		return NULL;
	p = (const char *) (s + 1);
	shape = SrRouterAddFlatShape(router, shape_id, (const AttrNumber *) p,
								 s->ncolumns, p + PAD8(sizeof(int16) * Max(s->ncolumns, 0)),
								 s->size, s->keyoff, s->nkeys,
								 (const void *) (uintptr_t) s->base);
	AddSeen(cache, s->relid, shape_id, xmin);
	cache->ntaken++;
	return shape;
}

void
SrShapeCacheNote(SrShapeCache *cache, Relation rel, const SrShape *shape,
				 TransactionId xmin)
{
	MemoryContext old = MemoryContextSwitchTo(cache->cxt);

	SeeTable(cache, rel);
	AddSeen(cache, RelationGetRelid(rel), shape->shape_id, xmin);
	MemoryContextSwitchTo(old);
	cache->ncompiled++;
	cache->nnewflat += shape->prog && shape->prog->flatsize > 0;
}

void
SrShapeCacheCounts(const SrShapeCache *cache, int64 *taken, int64 *compiled)
{
	*taken = cache->ntaken;
	*compiled = cache->ncompiled;
}

/* Writing: a buffer, its bytes counted into the CRC */
typedef struct Writer
{
	int			fd;
	char	   *path;
	char		buf[65536];
	Size		used;
	pg_crc32c	crc;
	uint64		len;
} Writer;

static void
Flush(Writer *w)
{
	if (w->used > 0 && write(w->fd, w->buf, w->used) != (ssize_t) w->used)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", w->path)));
	w->used = 0;
}

static void
Put(Writer *w, const void *data, Size len)
{
	static const char zeros[8] = {0};

	COMP_CRC32C(w->crc, data, len);
	w->len += len;
	while (len > 0)
	{
		Size		n = Min(len, sizeof(w->buf) - w->used);

		memcpy(w->buf + w->used, data, n);
		w->used += n;
		data = (const char *) data + n;
		len -= n;
		if (w->used == sizeof(w->buf))
			Flush(w);
	}
	/* records stay 8-aligned */
	if (w->len % 8)
		Put(w, zeros, 8 - w->len % 8);
}

static int
CompareSeen(const void *a, const void *b)
{
	const SeenShape *x = a;
	const SeenShape *y = b;

	if (x->relid != y->relid)
		return (x->relid > y->relid) - (x->relid < y->relid);
	return SrCompareInt64(&x->shape_id, &y->shape_id);
}

/* A saved shape: flat, compiled */
static SrShape *
Savable(SrTableRouter *router, int64 shape_id)
{
	SrShape    *shape = router ? SrRouterFindShape(router, shape_id) : NULL;

	return shape && shape->prog && shape->prog->flatsize > 0 ? shape : NULL;
}

/* The collations a table's saved shapes' keys use, added to t's */
static void
AddKeyCollations(CacheTable *t, const SrShape *shape)
{
	for (int i = 0; i < shape->nkeys; i++)
	{
		Oid			coll = shape->keys[i].collation;
		bool		known = !OidIsValid(coll);

		for (int j = 0; j < t->ncoll && !known; j++)
			known = t->colls[j] == coll;
		if (!known && t->ncoll < SR_CACHE_MAXCOLL)
			t->colls[t->ncoll++] = coll;
	}
}

static void
WriteShapes(SrShapeCache *cache, Writer *w, SrRouterOf router_of, void *arg,
			bool tables)
{
	for (int i = 0; i < cache->nseen;)
	{
		Oid			relid = cache->seen[i].relid;
		SrTableRouter *router = router_of(relid, arg);
		CacheTable *t = hash_search(cache->seen_tables, &relid, HASH_FIND, NULL);
		int			end = i;

		while (end < cache->nseen && cache->seen[end].relid == relid)
			end++;
		for (; i < end; i++)
		{
			SrShape    *shape = Savable(router, cache->seen[i].shape_id);
			CacheShapeRec rec;

			CHECK_FOR_INTERRUPTS();
			if (shape == NULL || t == NULL)
				continue;
			if (tables)
			{
				AddKeyCollations(t, shape);
				continue;
			}
			memset(&rec, 0, sizeof(rec));
			rec.shape_id = shape->shape_id;
			rec.xmin = cache->seen[i].xmin;
			rec.relid = relid;
			rec.ncolumns = shape->ncolumns;
			rec.nkeys = shape->nkeys;
			rec.size = shape->prog->flatsize;
			rec.keyoff = shape->nkeys > 0 ?
				(char *) shape->keys - (char *) shape->prog : 0;
			rec.base = (uint64) (uintptr_t) shape->prog;
			Put(w, &rec, sizeof(rec));
			if (shape->ncolumns > 0)
				Put(w, shape->columns, sizeof(int16) * shape->ncolumns);
			Put(w, shape->prog, shape->prog->flatsize);
		}
	}
}

static void
WriteFile(SrShapeCache *cache, SrRouterOf router_of, void *arg)
{
	Writer	   *w = palloc0(sizeof(Writer));
	char	   *tmp = psprintf("%s.tmp", cache->path);
	CacheHeader h;
	HASH_SEQ_STATUS status;
	CacheTable *t;

	memset(&h, 0, sizeof(h));
	h.magic = SR_CACHE_MAGIC;
	h.version = SR_CACHE_VERSION;
	h.pg_version = PG_VERSION_NUM;
	h.database = MyDatabaseId;
	h.catalog = cache->catalog;
	h.layout = LayoutStamp();

	qsort(cache->seen, cache->nseen, sizeof(SeenShape), CompareSeen);
	/* the tables' collations first: they are in the table records */
	WriteShapes(cache, w, router_of, arg, true);

	w->path = tmp;
	w->fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (w->fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	if (write(w->fd, &h, sizeof(h)) != sizeof(h))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	INIT_CRC32C(w->crc);
	hash_seq_init(&status, cache->seen_tables);
	while ((t = hash_seq_search(&status)) != NULL)
	{
		CacheTableRec rec = {t->relid, t->ncoll, t->attrs,
		CollSignature(t->colls, t->ncoll)};

		Put(w, &rec, sizeof(rec));
		if (t->ncoll > 0)
			Put(w, t->colls, sizeof(Oid) * t->ncoll);
		h.ntables++;
	}
	for (int i = 0; i < cache->nseen; i++)
		h.nshapes += Savable(router_of(cache->seen[i].relid, arg),
							 cache->seen[i].shape_id) != NULL;
	WriteShapes(cache, w, router_of, arg, false);
	Flush(w);
	FIN_CRC32C(w->crc);
	h.crc = w->crc;
	h.bodylen = w->len;
	if (pg_pwrite(w->fd, &h, sizeof(h), 0) != sizeof(h) ||
		CloseTransientFile(w->fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	if (rename(tmp, cache->path) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename file \"%s\" to \"%s\": %m",
						tmp, cache->path)));
	pfree(w);
}

/*
 * Rewriting costs about what compiling saves, so only when a sixteenth or
 * more of the flat shapes were compiled anew or are gone from the file.
 */
void
SrShapeCacheSave(SrShapeCache *cache, SrRouterOf router_of, void *arg)
{
	int64		total = cache->ntaken + cache->nnewflat;
	int64		stale = cache->nnewflat + (cache->nindex - cache->ntaken);
	MemoryContext old;

	if (cache->path == NULL || total == 0)
		return;
	if (cache->buf != NULL && stale * 16 < total)
		return;
	old = MemoryContextSwitchTo(cache->cxt);
	WriteFile(cache, router_of, arg);
	MemoryContextSwitchTo(old);
}
