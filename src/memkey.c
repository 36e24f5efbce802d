/*-------------------------------------------------------------------------
 *
 * memkey.c
 *	  Membership keys of rows (see memkey.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/sysattr.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/bitmapset.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "memkey.h"

/*
 * The membership code keeps 128-bit integers in its arrays, which need
 * malloc's 16-byte alignment; palloc gives MAXALIGN (8).  The chunk's
 * start is kept just below the aligned pointer.
 */
static void *
CxtAlloc(void *ctx, size_t size)
{
	char	   *raw = MemoryContextAllocExtended((MemoryContext) ctx, size + 16,
												 MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	char	   *p;

	if (raw == NULL)
		return NULL;
	p = (char *) TYPEALIGN(16, raw + sizeof(void *));
	((void **) p)[-1] = raw;
	return p;
}

static void
CxtFree(void *ctx, void *ptr)
{
	pfree(((void **) ptr)[-1]);
}

const SrMemAllocator *
SrMemAllocatorFor(MemoryContext cxt)
{
	SrMemAllocator *a = MemoryContextAlloc(cxt, sizeof(SrMemAllocator));

	a->alloc = CxtAlloc;
	a->free = CxtFree;
	a->ctx = cxt;
	return a;
}

void
SrKeyInfoForRel(Relation rel, SrKeyInfo *info)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *key;
	int			attno = -1;
	XXH64_state_t hs;

	memset(info, 0, sizeof(*info));
	key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	if (key == NULL)
		key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	if (key == NULL)
		return;
	info->attnums = palloc(sizeof(AttrNumber) * bms_num_members(key));
	info->types = palloc(sizeof(Oid) * bms_num_members(key));
	info->typlens = palloc(sizeof(int16) * bms_num_members(key));
	info->typbyvals = palloc(sizeof(bool) * bms_num_members(key));
	XXH64_reset(&hs, 0x5352);
	while ((attno = bms_next_member(key, attno)) >= 0)
	{
		AttrNumber	a = attno + FirstLowInvalidHeapAttributeNumber;
		Oid			type = getBaseType(TupleDescAttr(desc, a - 1)->atttypid);

		info->attnums[info->nkeys] = a;
		info->types[info->nkeys] = type;
		get_typlenbyval(type, &info->typlens[info->nkeys],
						&info->typbyvals[info->nkeys]);
		info->nkeys++;
		XXH64_update(&hs, &a, sizeof(a));
		XXH64_update(&hs, &type, sizeof(type));
	}
	info->signature = (uint32) XXH64_digest(&hs) | 1;
}

/* One column's canonical bytes; false for an on-disk TOAST pointer */
static bool
AddValue(SrKeyBuf *kb, Oid type, int16 typlen, bool typbyval, Datum v)
{
	switch (type)
	{
		case INT2OID:
			SrKeyAddInt(kb, DatumGetInt16(v));
			return true;
		case INT4OID:
		case DATEOID:
			SrKeyAddInt(kb, DatumGetInt32(v));
			return true;
		case OIDOID:
			SrKeyAddInt(kb, DatumGetObjectId(v));
			return true;
		case INT8OID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			SrKeyAddInt(kb, DatumGetInt64(v));
			return true;
		case FLOAT4OID:
			SrKeyAddFloat(kb, DatumGetFloat4(v));
			return true;
		case FLOAT8OID:
			SrKeyAddFloat(kb, DatumGetFloat8(v));
			return true;
		case BOOLOID:
			SrKeyAddBool(kb, DatumGetBool(v));
			return true;
		case UUIDOID:
			SrKeyAddUuid(kb, DatumGetUUIDP(v)->data);
			return true;
		case NAMEOID:
			SrKeyAddBytes(kb, NameStr(*DatumGetName(v)),
						  strlen(NameStr(*DatumGetName(v))), false);
			return true;
		default:
			break;
	}

	if (typlen == -1)
	{
		struct varlena *p = (struct varlena *) DatumGetPointer(v);

		if (VARATT_IS_EXTERNAL_ONDISK(p))
			return false;
		p = pg_detoast_datum_packed(p);
		if (type == NUMERICOID)
			return SrKeyAddNumeric(kb, DatumGetCString(DirectFunctionCall1(numeric_out,
																		   PointerGetDatum(p))));
		SrKeyAddBytes(kb, VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p),
					  type == BPCHAROID);
		return true;
	}

	/*
	 * Other types: the stored bytes.  A row's key bytes never change without
	 * the WAL logging the old key (heap_update compares them binary), and
	 * the unique index keeps two equal keys from coexisting.
	 */
	if (typbyval)
	{
		int64		i = 0;

		memcpy(&i, &v, typlen);
		SrKeyAddBytes(kb, &i, typlen, false);
	}
	else if (typlen == -2)
		SrKeyAddBytes(kb, DatumGetCString(v), strlen(DatumGetCString(v)), false);
	else
		SrKeyAddBytes(kb, DatumGetPointer(v), typlen, false);
	return true;
}

bool
SrKeyCanon(SrKeyBuf *kb, const SrKeyInfo *info, const Datum *values,
		   const bool *isnull)
{
	SrKeyBufReset(kb);
	for (int i = 0; i < info->nkeys; i++)
	{
		int			a = info->attnums[i] - 1;

		if (isnull[a])
			SrKeyAddNull(kb);
		else if (!AddValue(kb, info->types[i], info->typlens[i],
						   info->typbyvals[i], values[a]))
			return false;
	}
	return info->nkeys > 0 && !kb->failed;
}
