/*
 * mpart.c - one partition of the membership index: build, look up, merge
 *
 * A partition's keys are sorted by id; the `bbits` bits after the
 * partition's prefix pick a bucket, and the remaining `rbits` are stored.
 * A bucket word gives the bucket's first entry and the start of its keys'
 * pool sets, so a lookup reads one word, scans about 8 packed entries
 * (they are sorted, so it stops at the first larger remainder) and, for a
 * key in several shapes, decodes one ULEB128 set.  Storing the remainder
 * rather than a fingerprint is what lets a partition be rebuilt from itself:
 * the index never sees the keys again.
 */
#include "membint.h"

#include <string.h>

/* ---- bit fields ---- */

static inline MId
GetBits(const uint8_t *buf, size_t bitoff, int nbits)
{
	MId			v;

	memcpy(&v, buf + (bitoff >> 3), sizeof(v));
	v >>= bitoff & 7;
	return v & ((((MId) 1) << nbits) - 1);
}

static inline void
PutBits(uint8_t *buf, size_t bitoff, MId v)
{
	MId			w;

	memcpy(&w, buf + (bitoff >> 3), sizeof(w));
	w |= v << (bitoff & 7);
	memcpy(buf + (bitoff >> 3), &w, sizeof(w));
}

/* ---- ULEB128 sets: n - 2, first, then gaps - 1 ---- */

static inline size_t
UlebLen(uint32_t v)
{
	size_t		n = 1;

	while (v >= 0x80)
	{
		v >>= 7;
		n++;
	}
	return n;
}

static inline uint8_t *
UlebPut(uint8_t *p, uint32_t v)
{
	while (v >= 0x80)
	{
		*p++ = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t) v;
	return p;
}

/* NULL if the value runs past end or is over 32 bits */
static inline const uint8_t *
UlebGet(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
	uint64_t	r = 0;

	for (int shift = 0; p < end && shift < 35; shift += 7)
	{
		uint8_t		b = *p++;

		r |= (uint64_t) (b & 0x7F) << shift;
		if (!(b & 0x80))
		{
			if (r > UINT32_MAX)
				return NULL;
			*v = (uint32_t) r;
			return p;
		}
	}
	return NULL;
}

size_t
MPoolLen(const uint32_t *locals, int n)
{
	size_t		len = UlebLen(n - 2) + UlebLen(locals[0]);

	for (int i = 1; i < n; i++)
		len += UlebLen(locals[i] - locals[i - 1] - 1);
	return len;
}

uint8_t *
MPoolPut(uint8_t *p, const uint32_t *locals, int n)
{
	p = UlebPut(p, n - 2);
	p = UlebPut(p, locals[0]);
	for (int i = 1; i < n; i++)
		p = UlebPut(p, locals[i] - locals[i - 1] - 1);
	return p;
}

/*
 * Decode the set at p; returns its size (stores up to max), or -1 if it is
 * malformed.  *next gets the byte after it.
 */
int
MPoolGet(const uint8_t *p, const uint8_t *end, uint32_t *locals, int max,
	   const uint8_t **next)
{
	uint32_t	n,
				v,
				cur;

	if ((p = UlebGet(p, end, &n)) == NULL || n > SR_MEMB_MAX_SET - 2)
		return -1;
	n += 2;
	if ((p = UlebGet(p, end, &cur)) == NULL)
		return -1;
	if (max > 0)
		locals[0] = cur;
	for (uint32_t i = 1; i < n; i++)
	{
		if ((p = UlebGet(p, end, &v)) == NULL || (uint64_t) cur + v + 1 > MLOCAL_MAX)
			return -1;
		cur += v + 1;
		if ((int) i < max)
			locals[i] = cur;
	}
	*next = p;
	return (int) n;
}

/* ---- the collected form ---- */

static bool
Grow(const SrMemAllocator *a, void **arr, size_t *cap, size_t need, size_t elsize)
{
	size_t		ncap;
	void	   *p;

	if (need <= *cap)
		return true;
	ncap = *cap ? *cap * 2 : 256;
	while (ncap < need)
		ncap *= 2;
	p = SrMemAlloc(a, ncap * elsize);
	if (p == NULL)
		return false;
	if (*cap)
		memcpy(p, *arr, *cap * elsize);
	SrMemFree(a, *arr);
	*arr = p;
	*cap = ncap;
	return true;
}

bool
MBuildAppend(MBuild *b, MId id, const uint32_t *locals, int n)
{
	if (b->failed)
		return false;
	if (!Grow(b->alloc, (void **) &b->ids, &b->cap, b->n + 1, sizeof(MId)) ||
		!Grow(b->alloc, (void **) &b->start, &b->stcap, b->n + 2, sizeof(uint32_t)) ||
		!Grow(b->alloc, (void **) &b->locals, &b->loccap, b->nloc + n, sizeof(uint32_t)))
	{
		b->failed = true;
		return false;
	}
	b->ids[b->n] = id;
	b->start[b->n] = (uint32_t) b->nloc;
	memcpy(b->locals + b->nloc, locals, n * sizeof(uint32_t));
	b->nloc += n;
	b->n++;
	b->start[b->n] = (uint32_t) b->nloc;
	return true;
}

void
MBuildFree(MBuild *b)
{
	SrMemFree(b->alloc, b->ids);
	SrMemFree(b->alloc, b->start);
	SrMemFree(b->alloc, b->locals);
	b->ids = NULL;
	b->start = b->locals = NULL;
	b->n = b->cap = b->stcap = b->nloc = b->loccap = 0;
}

/* ---- encoding ---- */

static int
BucketBits(uint32_t nkeys)
{
	int			b = 0;

	while ((nkeys >> b) > MPART_BUCKET)
		b++;
	return b;
}

size_t
MPartBaseBytes(uint32_t nkeys, int bbits, int rbits, int vbits,
			   uint32_t pool_bytes, size_t *entries_bytes)
{
	size_t		eb = ((size_t) nkeys * (rbits + vbits) + 7) / 8 + MPART_SLACK;

	eb = (eb + 7) & ~(size_t) 7;
	*entries_bytes = eb;
	return (((size_t) 1 << bbits) + 1) * 8 + eb + (((size_t) pool_bytes + 7) & ~(size_t) 7) +
		(size_t) MBloomWords(nkeys) * 8;
}

SrMemStatus
MPartEncode(const SrMemAllocator *alloc, uint32_t prefix, int depth,
			uint32_t nlocal, const MBuild *b, size_t from, size_t to,
			MPart **out)
{
	uint32_t	nkeys = (uint32_t) (to - from);
	int			bbits,
				rbits,
				vbits = MembValueBits(nlocal);
	int			ebits;
	uint32_t	escape = (UINT32_C(1) << (vbits - 1)) - 1;
	size_t		pool = 0,
				total,
				eb;
	MPart	   *p;
	uint8_t    *mem,
			   *pp;
	uint64_t   *bucket;
	uint8_t    *entries;
	size_t		nb;
	uint64_t	cur_bucket = 0;
	uint64_t	bucket_pool = 0;

	if (to - from >= (size_t) 1 << MPART_KEYBITS)
		return SR_MEM_FAILED;
	bbits = BucketBits(nkeys);
	if (depth + bbits > SR_MEMB_ID_BITS - 8)
		bbits = SR_MEMB_ID_BITS - 8 - depth;
	rbits = SR_MEMB_ID_BITS - depth - bbits;
	ebits = rbits + vbits;
	for (size_t i = from; i < to; i++)
	{
		int			n = b->start[i + 1] - b->start[i];

		if (n > 1)
			pool += MPoolLen(b->locals + b->start[i], n);
	}
	if (pool > UINT32_MAX)
		return SR_MEM_FAILED;
	total = MPartBaseBytes(nkeys, bbits, rbits, vbits, (uint32_t) pool, &eb);
	p = SrMemAlloc(alloc, sizeof(MPart));
	mem = SrMemAlloc(alloc, total);
	if (p == NULL || mem == NULL)
	{
		SrMemFree(alloc, p);
		SrMemFree(alloc, mem);
		return SR_MEM_NOMEM;
	}
	memset(p, 0, sizeof(*p));
	memset(mem, 0, total);
	nb = (size_t) 1 << bbits;
	bucket = (uint64_t *) mem;
	entries = mem + (nb + 1) * 8;
	pp = entries + eb;

	p->prefix = prefix;
	p->depth = (uint8_t) depth;
	p->bbits = (uint8_t) bbits;
	p->rbits = (uint8_t) rbits;
	p->vbits = (uint8_t) vbits;
	p->nkeys = nkeys;
	p->live = nkeys;
	p->pool_bytes = (uint32_t) pool;
	p->entries_bytes = eb;
	p->bucket = bucket;
	p->entries = entries;
	p->pool = pp;
	p->bloom_words = MBloomWords(nkeys);
	p->bloom = (uint64_t *) (mem + total - (size_t) p->bloom_words * 8);
	p->mem = mem;
	p->mem_bytes = total;

	bucket[0] = 0;
	for (size_t i = from; i < to; i++)
	{
		MId			id = b->ids[i];
		uint64_t	bk = bbits ? (uint64_t) (id >> rbits) & (nb - 1) : 0;
		const uint32_t *set = b->locals + b->start[i];
		int			n = b->start[i + 1] - b->start[i];
		uint32_t	val;
		uint32_t	k = (uint32_t) (i - from);

		while (cur_bucket < bk)
		{
			bucket_pool = (uint64_t) (pp - p->pool);
			bucket[++cur_bucket] = k | (bucket_pool << MPART_KEYBITS);
		}
		if (n == 1)
			val = set[0];
		else
		{
			uint64_t	rel = (uint64_t) (pp - p->pool) - bucket_pool;

			val = (UINT32_C(1) << (vbits - 1)) | (rel < escape ? (uint32_t) rel : escape);
			pp = MPoolPut(pp, set, n);
		}
		PutBits(entries, (size_t) k * ebits,
				(id & ((((MId) 1) << rbits) - 1)) | ((MId) val << rbits));
		p->bloom[MBloomIndex(id, p->bloom_words)] |= MBloomMask(id);
	}
	while (cur_bucket < nb)
		bucket[++cur_bucket] = nkeys | ((uint64_t) (pp - p->pool) << MPART_KEYBITS);
	*out = p;
	return SR_MEM_OK;
}

/* ---- lookup ---- */

static int
DecodeValue(const MPart *p, size_t bk, uint32_t k, uint32_t val,
			uint32_t *locals, int max)
{
	uint32_t	escape = (UINT32_C(1) << (p->vbits - 1)) - 1;
	const uint8_t *end = p->pool + p->pool_bytes;
	const uint8_t *at;
	uint32_t	rel;

	if (!(val >> (p->vbits - 1)))
	{
		if (max > 0)
			locals[0] = val;
		return 1;
	}
	at = p->pool + (p->bucket[bk] >> MPART_KEYBITS);
	rel = val & escape;
	if (rel != escape)
		at += rel;
	else
	{
		/* too far for the entry: skip the earlier sets of this bucket */
		int			ebits = p->rbits + p->vbits;

		for (uint32_t j = (uint32_t) (p->bucket[bk] & MPART_KEYMASK); j < k; j++)
		{
			uint32_t	v = (uint32_t) (GetBits(p->entries, (size_t) j * ebits, ebits) >> p->rbits);

			if (v >> (p->vbits - 1) && MPoolGet(at, end, NULL, 0, &at) < 0)
				return 0;
		}
	}
	if (at >= end)
		return 0;
	{
		const uint8_t *next;
		int			n = MPoolGet(at, end, locals, max, &next);

		return n < 0 ? 0 : n;
	}
}

int
MPartLookupBase(const MPart *p, MId id, uint32_t *locals, int max)
{
	int			rbits = p->rbits,
				ebits = p->rbits + p->vbits;
	size_t		bk = p->bbits ? (size_t) (id >> rbits) & (((size_t) 1 << p->bbits) - 1) : 0;
	MId			rmask = (((MId) 1) << rbits) - 1;
	MId			rem = id & rmask;
	uint32_t	k = (uint32_t) (p->bucket[bk] & MPART_KEYMASK);
	uint32_t	end = (uint32_t) (p->bucket[bk + 1] & MPART_KEYMASK);

	__builtin_prefetch(p->pool + (p->bucket[bk] >> MPART_KEYBITS));
	for (; k < end; k++)
	{
		MId			e = GetBits(p->entries, (size_t) k * ebits, ebits);
		MId			er = e & rmask;

		if (er >= rem)
		{
			if (er > rem)
				return 0;
			return DecodeValue(p, bk, k, (uint32_t) (e >> rbits), locals, max);
		}
	}
	return 0;
}

/* ---- the overlay ---- */

static inline uint32_t
OvlSlot(const MPart *p, MId id)
{
	/* the low bits of the id are its remainder: well mixed */
	uint64_t	h = (uint64_t) id * UINT64_C(0x9E3779B97F4A7C15);

	/* any capacity, not just powers of two: the table is sized to need */
	return (uint32_t) (((h >> 32) * p->ovl_cap) >> 32);
}

static inline uint32_t
OvlNext(const MPart *p, uint32_t s)
{
	return s + 1 == p->ovl_cap ? 0 : s + 1;
}

/* probe distance from slot b forward to slot a */
static inline uint32_t
OvlDist(const MPart *p, uint32_t a, uint32_t b)
{
	return a >= b ? a - b : a + p->ovl_cap - b;
}

static MOvlEntry *
OvlFind(const MPart *p, MId id)
{
	uint64_t	hi = (uint64_t) (id >> MID_LO_BITS);
	uint16_t	lo = (uint16_t) (id & ((1 << MID_LO_BITS) - 1));

	if (p->ovl_n == 0)
		return NULL;
	for (uint32_t s = OvlSlot(p, id);; s = OvlNext(p, s))
	{
		MOvlEntry  *e = &p->ovl[s];

		if (e->val == MVAL_EMPTY)
			return NULL;
		if (e->hi == hi && e->lo == lo)
			return e;
	}
}

static int
OvlValue(const MPart *p, const MOvlEntry *e, uint32_t *locals, int max)
{
	uint32_t	n;

	if (e->val == MVAL_GONE)
		return 0;
	if (!(e->val & MVAL_ARENA))
	{
		if (max > 0)
			locals[0] = e->val;
		return 1;
	}
	n = p->arena[e->val & ~MVAL_ARENA];
	if (max > 0)
		memcpy(locals, p->arena + (e->val & ~MVAL_ARENA) + 1,
		   (n < (uint32_t) max ? n : (uint32_t) max) * sizeof(uint32_t));
	return (int) n;
}

int
MPartLookup(const MPart *p, MId id, uint32_t *locals, int max)
{
	uint64_t	mask = MBloomMask(id);
	const MOvlEntry *e;

	const uint64_t *word = &p->bloom[MBloomIndex(id, p->bloom_words)];
	size_t		bk = p->bbits ? (size_t) (id >> p->rbits) & (((size_t) 1 << p->bbits) - 1) : 0;

	/*
	 * Start the reads a member needs together with the filter's, so that
	 * a member costs two rounds of memory latency (these, then its
	 * entries and pool set), not three.
	 */
	__builtin_prefetch(&p->bucket[bk]);
	if (p->ovl_n)
		__builtin_prefetch(&p->ovl[OvlSlot(p, id)]);
	if ((*word & mask) != mask)
		return 0;
	e = OvlFind(p, id);

	if (e)
		return OvlValue(p, e, locals, max);
	return MPartLookupBase(p, id, locals, max);
}

static bool
OvlResize(const SrMemAllocator *alloc, MPart *p, uint32_t cap)
{
	MOvlEntry  *old = p->ovl;
	uint32_t	oldcap = p->ovl_cap;
	MOvlEntry  *ne = SrMemAlloc(alloc, (size_t) cap * sizeof(MOvlEntry));

	if (ne == NULL)
		return false;
	for (uint32_t i = 0; i < cap; i++)
		ne[i].val = MVAL_EMPTY;
	p->ovl = ne;
	p->ovl_cap = cap;
	for (uint32_t i = 0; i < oldcap; i++)
	{
		if (old[i].val != MVAL_EMPTY)
		{
			MId			id = ((MId) old[i].hi << MID_LO_BITS) | old[i].lo;
			uint32_t	s = OvlSlot(p, id);

			while (ne[s].val != MVAL_EMPTY)
				s = OvlNext(p, s);
			ne[s] = old[i];
		}
	}
	SrMemFree(alloc, old);
	return true;
}

/* backward-shift deletion keeps probe chains intact without tombstones */
static void
OvlDelete(MPart *p, MOvlEntry *e)
{
	uint32_t	i = (uint32_t) (e - p->ovl);

	for (uint32_t j = OvlNext(p, i);; j = OvlNext(p, j))
	{
		MId			id;
		uint32_t	home;

		if (p->ovl[j].val == MVAL_EMPTY)
			break;
		id = ((MId) p->ovl[j].hi << MID_LO_BITS) | p->ovl[j].lo;
		home = OvlSlot(p, id);
		/* may j's entry move back to i?  only if i lies on its probe path */
		if (OvlDist(p, j, home) >= OvlDist(p, j, i))
		{
			p->ovl[i] = p->ovl[j];
			i = j;
		}
	}
	p->ovl[i].val = MVAL_EMPTY;
	p->ovl_n--;
}

SrMemStatus
MOvlPut(const SrMemAllocator *alloc, MPart *p, MId id,
		const uint32_t *locals, int n, bool base_has)
{
	MOvlEntry  *e = OvlFind(p, id);
	uint32_t	val;

	if (n == 0 && !base_has)
	{
		/* nothing to shadow: the key simply leaves the overlay */
		if (e)
			OvlDelete(p, e);
		return SR_MEM_OK;
	}
	if (n == 0)
		val = MVAL_GONE;
	else if (n == 1)
		val = locals[0];
	else
	{
		size_t		cap = p->arena_cap;

		if ((uint64_t) p->arena_n + n + 1 >= MVAL_ARENA ||
			!Grow(alloc, (void **) &p->arena, &cap, (size_t) p->arena_n + n + 1, sizeof(uint32_t)))
			return SR_MEM_NOMEM;
		p->arena_cap = (uint32_t) cap;
		val = MVAL_ARENA | p->arena_n;
		p->arena[p->arena_n] = (uint32_t) n;
		memcpy(p->arena + p->arena_n + 1, locals, n * sizeof(uint32_t));
		p->arena_n += n + 1;
	}
	if (e == NULL)
	{
		uint32_t	s;

		if ((uint64_t) (p->ovl_n + 1) * 4 > (uint64_t) p->ovl_cap * 3)
		{
			/* grow by half, but not past what the rebuild threshold needs */
			uint64_t	full = ((uint64_t) MRebuildAt(p->nkeys) + 1) * 4 / 3 + 1;
			uint64_t	cap = p->ovl_cap + p->ovl_cap / 2;

			if (cap > full)
				cap = full;
			if (cap < 64)
				cap = 64;
			if ((uint64_t) (p->ovl_n + 1) * 4 > cap * 3)
				cap = (uint64_t) (p->ovl_n + 1) * 2;
			if (!OvlResize(alloc, p, (uint32_t) cap))
				return SR_MEM_NOMEM;
		}
		for (s = OvlSlot(p, id); p->ovl[s].val != MVAL_EMPTY; s = OvlNext(p, s))
			;
		e = &p->ovl[s];
		e->hi = (uint64_t) (id >> MID_LO_BITS);
		e->lo = (uint16_t) (id & ((1 << MID_LO_BITS) - 1));
		e->pad = 0;
		p->ovl_n++;
		p->bloom[MBloomIndex(id, p->bloom_words)] |= MBloomMask(id);
	}
	e->val = val;
	return SR_MEM_OK;
}

size_t
MPartOverlayBytes(const MPart *p)
{
	return (size_t) p->ovl_cap * sizeof(MOvlEntry) + (size_t) p->arena_cap * sizeof(uint32_t);
}

/* ---- collecting base + overlay for a rebuild ---- */

static int
CmpOvl(const void *a, const void *b)
{
	const MOvlEntry *x = *(const MOvlEntry *const *) a;
	const MOvlEntry *y = *(const MOvlEntry *const *) b;

	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return (x->lo > y->lo) - (x->lo < y->lo);
}

/* keep the live locals only */
static int
FilterDropped(const SrMemb *m, uint32_t *locals, int n)
{
	int			k = 0;

	for (int i = 0; i < n; i++)
		if (!MLocalDropped(m, locals[i]))
			locals[k++] = locals[i];
	return k;
}

static bool
Emit(MBuild *out, const SrMemb *m, MId id, uint32_t *locals, int n)
{
	n = FilterDropped(m, locals, n);
	return n == 0 || MBuildAppend(out, id, locals, n);
}

/*
 * Append p's current contents (base merged with overlay, dropped shapes
 * left out) to out in id order.
 */
bool
MPartCollect(const MPart *p, const SrMemb *m, MBuild *out)
{
	const MOvlEntry **ov = NULL;
	uint32_t	no = 0,
				oi = 0;
	uint32_t   *locals;
	int			ebits = p->rbits + p->vbits;
	MId			rmask = (((MId) 1) << p->rbits) - 1;
	MId			base_prefix = (MId) p->prefix << (SR_MEMB_ID_BITS - p->depth);
	size_t		nb = (size_t) 1 << p->bbits;
	bool		ok = true;

	if (p->depth == 0)
		base_prefix = 0;
	locals = SrMemAlloc(m->alloc, SR_MEMB_MAX_SET * sizeof(uint32_t));
	if (locals == NULL)
		return false;
	/* size the output once: regrowing it would copy it over and over */
	if (!Grow(out->alloc, (void **) &out->ids, &out->cap, out->n + p->nkeys + p->ovl_n + 1, sizeof(MId)) ||
		!Grow(out->alloc, (void **) &out->start, &out->stcap, out->n + p->nkeys + p->ovl_n + 2, sizeof(uint32_t)))
	{
		SrMemFree(m->alloc, locals);
		return false;
	}
	if (p->ovl_n)
	{
		ov = SrMemAlloc(m->alloc, p->ovl_n * sizeof(*ov));
		if (ov == NULL)
		{
			SrMemFree(m->alloc, locals);
			return false;
		}
		for (uint32_t i = 0; i < p->ovl_cap; i++)
			if (p->ovl[i].val != MVAL_EMPTY)
				ov[no++] = &p->ovl[i];
		qsort(ov, no, sizeof(*ov), CmpOvl);
	}
	for (size_t bk = 0; bk < nb && ok; bk++)
	{
		uint32_t	k = (uint32_t) (p->bucket[bk] & MPART_KEYMASK);
		uint32_t	end = (uint32_t) (p->bucket[bk + 1] & MPART_KEYMASK);

		for (; k < end && ok; k++)
		{
			MId			e = GetBits(p->entries, (size_t) k * ebits, ebits);
			MId			id = base_prefix | ((MId) bk << p->rbits) | (e & rmask);
			int			n;

			/* overlay keys before this one are new keys */
			while (oi < no && ok)
			{
				MId			oid = ((MId) ov[oi]->hi << MID_LO_BITS) | ov[oi]->lo;

				if (oid > id)
					break;
				n = OvlValue(p, ov[oi], locals, SR_MEMB_MAX_SET);
				ok = Emit(out, m, oid, locals, n);
				oi++;
				if (oid == id)
					goto next;	/* the overlay's answer replaces the base's */
			}
			n = DecodeValue(p, bk, k, (uint32_t) (e >> p->rbits), locals, SR_MEMB_MAX_SET);
			ok = ok && Emit(out, m, id, locals, n);
	next:	;
		}
	}
	while (oi < no && ok)
	{
		MId			oid = ((MId) ov[oi]->hi << MID_LO_BITS) | ov[oi]->lo;
		int			n = OvlValue(p, ov[oi], locals, SR_MEMB_MAX_SET);

		ok = Emit(out, m, oid, locals, n);
		oi++;
	}
	SrMemFree(m->alloc, ov);
	SrMemFree(m->alloc, locals);
	return ok;
}

void
MPartFree(const SrMemAllocator *alloc, MPart *p)
{
	if (p == NULL)
		return;
	SrMemFree(alloc, p->mem);
	SrMemFree(alloc, p->bloom_mem);
	SrMemFree(alloc, p->ovl);
	SrMemFree(alloc, p->arena);
	SrMemFree(alloc, p);
}

/*
 * Geometry of a base read from a file: every bucket word in order and in
 * bounds, so that lookups cannot read outside the arrays.
 */
bool
MPartCheckGeometry(const MPart *p)
{
	size_t		nb = (size_t) 1 << p->bbits;
	uint64_t	prevk = 0,
				prevp = 0;

	if (p->depth > MPART_MAX_DEPTH || p->depth + p->bbits + p->rbits != SR_MEMB_ID_BITS ||
		p->rbits < 8 || p->vbits < 2 || p->vbits > 32 ||
		(p->depth < 32 && p->prefix >> p->depth) ||
		p->nkeys >= (UINT32_C(1) << MPART_KEYBITS))
		return false;
	if ((p->bucket[0] & MPART_KEYMASK) != 0 || (p->bucket[0] >> MPART_KEYBITS) != 0)
		return false;
	for (size_t i = 1; i <= nb; i++)
	{
		uint64_t	k = p->bucket[i] & MPART_KEYMASK,
					pl = p->bucket[i] >> MPART_KEYBITS;

		if (k < prevk || pl < prevp || k > p->nkeys || pl > p->pool_bytes)
			return false;
		prevk = k;
		prevp = pl;
	}
	return prevk == p->nkeys && prevp == p->pool_bytes;
}
