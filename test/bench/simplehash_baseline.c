/*
 * simplehash_baseline.c - the plain baseline of the membership benchmark
 *
 * PostgreSQL's own lib/simplehash.h (frontend build, malloc), mapping the
 * 128-bit key to a malloc'd sorted array of int64 shape ids: what one
 * would write first, inside a walsender, without a membership structure.
 */
#include "postgres_fe.h"

#include "common/logging.h"

#include <malloc.h>

#include "simplehash_baseline.h"

#define SH_PREFIX		sh
#define SH_KEY_TYPE		ShKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	((uint32) ((k).hi >> 32))
#define SH_EQUAL(tb, a, b)	((a).hi == (b).hi && (a).lo == (b).lo)
#define SH_SCOPE		static inline
#define SH_RAW_ALLOCATOR pg_malloc0
#define SH_DECLARE
#define SH_DEFINE

/* simplehash wants the key as one member: view (hi, lo) as ShKey */
typedef struct ShKey
{
	uint64		hi;
	uint64		lo;
} ShKey;

typedef struct ShElem
{
	ShKey		key;
	int64	   *ids;
	uint32		n;
	char		status;
} ShElem;

#define SH_ELEMENT_TYPE ShElem
#include "lib/simplehash.h"

struct ShBase
{
	sh_hash    *tb;
	size_t		array_bytes;
};

ShBase *
ShCreate(size_t hint)
{
	ShBase	   *b = pg_malloc0(sizeof(ShBase));

	b->tb = sh_create(hint, NULL);
	return b;
}

void
ShSet(ShBase *b, uint64_t hi, uint64_t lo, const int64_t *ids, int n)
{
	ShKey		k = {hi, lo};
	bool		found;
	ShElem	   *e = sh_insert(b->tb, k, &found);

	if (found && e->ids)
	{
		b->array_bytes -= malloc_usable_size(e->ids) + 8;
		free(e->ids);
	}
	e->ids = pg_malloc(n * sizeof(int64));
	memcpy(e->ids, ids, n * sizeof(int64));
	e->n = n;
	b->array_bytes += malloc_usable_size(e->ids) + 8;
}

int
ShLookup(ShBase *b, uint64_t hi, uint64_t lo, int64_t *out, int max)
{
	ShKey		k = {hi, lo};
	ShElem	   *e = sh_lookup(b->tb, k);

	if (e == NULL)
		return 0;
	memcpy(out, e->ids, Min((int) e->n, max) * sizeof(int64));
	return (int) e->n;
}

void
ShDelete(ShBase *b, uint64_t hi, uint64_t lo)
{
	ShKey		k = {hi, lo};
	ShElem	   *e = sh_lookup(b->tb, k);

	if (e == NULL)
		return;
	b->array_bytes -= malloc_usable_size(e->ids) + 8;
	free(e->ids);
	sh_delete_item(b->tb, e);
}

size_t
ShBytes(ShBase *b)
{
	return (size_t) b->tb->size * sizeof(ShElem) + b->array_bytes;
}

void
ShFree(ShBase *b)
{
	sh_iterator it;
	ShElem	   *e;

	sh_start_iterate(b->tb, &it);
	while ((e = sh_iterate(b->tb, &it)) != NULL)
		free(e->ids);
	sh_destroy(b->tb);
	free(b);
}
