/*
 * memb.c - the membership index: directory, shape dictionary, operations
 *
 * Every change goes to its partition's overlay; a partition whose changes
 * since its build reach 5 % of its keys (at least 64) is rebuilt at once,
 * and split in two when it outgrows SR_MEMB_PART_MAX, so the work of one
 * rebuild is bounded by the partition size, never the table's.
 */
#include "membint.h"
#include "mix.h"

#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>


/* ---- keys ---- */

static uint64_t
MulInverse(uint64_t c)
{
	uint64_t	y = c;			/* Newton: 5 steps double 3 correct bits */

	for (int i = 0; i < 5; i++)
		y *= 2 - c * y;
	return y;
}

/*
 * The index mixes key.hi once more (a bijection), so that keys that are
 * not well-spread hashes still spread over the partitions.
 */
MId
MIdFromKey(SrMembKey key)
{
	return ((MId) SrMix64(key.hi) << MID_LO_BITS) | (key.lo >> (64 - MID_LO_BITS));
}

SrMembKey
MIdToKey(MId id)
{
	static uint64_t inv1,
				inv2;
	uint64_t	x = (uint64_t) (id >> MID_LO_BITS);
	SrMembKey	k;

	if (inv1 == 0)
	{
		inv1 = MulInverse(UINT64_C(0xff51afd7ed558ccd));
		inv2 = MulInverse(UINT64_C(0xc4ceb9fe1a85ec53));
	}
	x ^= x >> 33;
	x *= inv2;
	x ^= x >> 33;
	x *= inv1;
	x ^= x >> 33;
	k.hi = x;
	k.lo = (uint64_t) (id & ((1 << MID_LO_BITS) - 1)) << (64 - MID_LO_BITS);
	return k;
}

SrMembKey
SrMembKeyHash(const void *canon, size_t len, uint64_t seed)
{
	XXH128_hash_t h = XXH3_128bits_withSeed(canon, len, seed);
	SrMembKey	k = {h.high64, h.low64};

	return k;
}

int
MembValueBits(uint32_t nlocal)
{
	int			b = 6;			/* payload bits at least: room for pool offsets */

	while (b < 31 && nlocal > (UINT32_C(1) << b))
		b++;
	return b + 1;
}

static double
NowMs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* ---- the shape dictionary ---- */

static inline uint32_t
DictSlot(const SrMemb *m, int64_t g)
{
	return (uint32_t) (SrMix64((uint64_t) g) & (m->dictcap - 1));
}

static uint32_t
DictFind(const SrMemb *m, int64_t g)
{
	if (m->dictcap == 0)
		return UINT32_MAX;
	for (uint32_t s = DictSlot(m, g);; s = (s + 1) & (m->dictcap - 1))
	{
		if (!m->dict[s].used)
			return UINT32_MAX;
		if (m->dict[s].global == g)
			return m->dict[s].local;
	}
}

static bool
DictInsert(SrMemb *m, int64_t g, uint32_t local)
{
	uint32_t	s;

	if ((m->nlive + 1) * 4 > m->dictcap * 3)
	{
		MDictEntry *old = m->dict;
		uint32_t	oldcap = m->dictcap;
		uint32_t	cap = oldcap ? oldcap * 2 : 64;
		MDictEntry *nd = SrMemAlloc(m->alloc, cap * sizeof(MDictEntry));

		if (nd == NULL)
			return false;
		memset(nd, 0, cap * sizeof(MDictEntry));
		m->dict = nd;
		m->dictcap = cap;
		for (uint32_t i = 0; i < oldcap; i++)
			if (old[i].used)
			{
				for (s = DictSlot(m, old[i].global); nd[s].used; s = (s + 1) & (cap - 1))
					;
				nd[s] = old[i];
			}
		SrMemFree(m->alloc, old);
	}
	for (s = DictSlot(m, g); m->dict[s].used; s = (s + 1) & (m->dictcap - 1))
		;
	m->dict[s].global = g;
	m->dict[s].local = local;
	m->dict[s].used = 1;
	m->nlive++;
	return true;
}

static void
DictDelete(SrMemb *m, int64_t g)
{
	uint32_t	mask = m->dictcap - 1;
	uint32_t	i;

	for (i = DictSlot(m, g); m->dict[i].global != g; i = (i + 1) & mask)
		if (!m->dict[i].used)
			return;
	if (!m->dict[i].used)
		return;
	for (uint32_t j = (i + 1) & mask; m->dict[j].used; j = (j + 1) & mask)
	{
		uint32_t	home = DictSlot(m, m->dict[j].global);

		if (((j - home) & mask) >= ((j - i) & mask))
		{
			m->dict[i] = m->dict[j];
			i = j;
		}
	}
	m->dict[i].used = 0;
	m->nlive--;
}

static bool
GrowArray(const SrMemAllocator *a, void **arr, uint32_t *cap, uint32_t need, size_t elsize)
{
	uint32_t	ncap = *cap ? *cap : 64;
	void	   *p;

	if (need <= *cap)
		return true;
	while (ncap < need)
		ncap *= 2;
	if ((p = SrMemAlloc(a, (size_t) ncap * elsize)) == NULL)
		return false;
	if (*cap)
		memcpy(p, *arr, (size_t) *cap * elsize);
	SrMemFree(a, *arr);
	*arr = p;
	*cap = ncap;
	return true;
}

uint32_t
MembDictFind(const SrMemb *m, int64_t g)
{
	return DictFind(m, g);
}

bool
MembDictAdd(SrMemb *m, int64_t g, uint32_t local)
{
	return DictInsert(m, g, local);
}

/* the local number of a shape id, given one if create; UINT32_MAX if none */
static uint32_t
LocalFor(SrMemb *m, int64_t g, bool create)
{
	uint32_t	local = DictFind(m, g);

	if (local != UINT32_MAX || !create)
		return local;
	if (m->nfree > 0)
		local = m->freelocals[m->nfree - 1];
	else
	{
		if (m->nlocal >= MLOCAL_MAX)
			return UINT32_MAX;
		if (m->nlocal + 1 > m->localcap)
		{
			/* both arrays are allocated before either is replaced */
			uint32_t	cap = m->localcap ? m->localcap * 2 : 64;
			uint32_t	words = (m->localcap + 63) / 64,
						nwords = (cap + 63) / 64;
			int64_t    *ng = SrMemAlloc(m->alloc, (size_t) cap * sizeof(int64_t));
			uint64_t   *nb = SrMemAlloc(m->alloc, (size_t) nwords * sizeof(uint64_t));

			if (ng == NULL || nb == NULL)
			{
				SrMemFree(m->alloc, ng);
				SrMemFree(m->alloc, nb);
				return UINT32_MAX;
			}
			if (m->localcap)
				memcpy(ng, m->globals, (size_t) m->localcap * sizeof(int64_t));
			memset(nb, 0xFF, (size_t) nwords * sizeof(uint64_t));
			if (words)
				memcpy(nb, m->dropped, (size_t) words * sizeof(uint64_t));
			SrMemFree(m->alloc, m->globals);
			SrMemFree(m->alloc, m->dropped);
			m->globals = ng;
			m->dropped = nb;
			m->localcap = cap;
		}
		local = m->nlocal;
	}
	if (!DictInsert(m, g, local))
		return UINT32_MAX;
	if (local == m->nlocal)
		m->nlocal++;
	else
		m->nfree--;
	m->globals[local] = g;
	m->dropped[local / 64] &= ~(UINT64_C(1) << (local % 64));
	return local;
}

/* drops older than every partition's build can no longer be referenced */
static void
ReclaimDrops(SrMemb *m)
{
	uint64_t	oldest = UINT64_MAX;
	uint32_t	k = 0;

	if (m->ndrops == 0)
		return;
	for (size_t i = 0; i < ((size_t) 1 << m->dirbits); i++)
		if (m->dir[i]->epoch < oldest)
			oldest = m->dir[i]->epoch;
	for (uint32_t i = 0; i < m->ndrops; i++)
	{
		if (m->drops[i].epoch < oldest &&
			GrowArray(m->alloc, (void **) &m->freelocals, &m->freecap, m->nfree + 1, sizeof(uint32_t)))
		{
			m->globals[m->drops[i].local] = INT64_MIN;
			m->freelocals[m->nfree++] = m->drops[i].local;
		}
		else
			m->drops[k++] = m->drops[i];
	}
	m->ndrops = k;
}

/* ---- partitions and the directory ---- */

static void
ReleasePart(SrMemb *m, MPart *p)
{
	if (p->mem == NULL && m->map && --m->mapped_parts == 0)
		MembUnmap(m);
	MPartFree(m->alloc, p);
}

static bool
GrowDir(SrMemb *m, int depth)
{
	while (depth > m->dirbits)
	{
		size_t		n = (size_t) 1 << m->dirbits;
		MPart	  **nd = SrMemAlloc(m->alloc, 2 * n * sizeof(MPart *));

		if (nd == NULL)
			return false;
		for (size_t i = 0; i < n; i++)
			nd[2 * i] = nd[2 * i + 1] = m->dir[i];
		SrMemFree(m->alloc, m->dir);
		m->dir = nd;
		m->dirbits++;
	}
	return true;
}

/* point the directory (deep enough already) at p */
static void
Install(SrMemb *m, MPart *p)
{
	size_t		first,
				count;

	first = (size_t) p->prefix << (m->dirbits - p->depth);
	count = (size_t) 1 << (m->dirbits - p->depth);
	for (size_t i = 0; i < count; i++)
		m->dir[first + i] = p;
}

typedef struct PartList
{
	MPart	  **p;
	uint32_t	n;
	uint32_t	cap;
} PartList;

/* encode b[from, to) as partitions under (prefix, depth), split to size */
static SrMemStatus
EncodeRange(SrMemb *m, uint32_t prefix, int depth, const MBuild *b,
			size_t from, size_t to, PartList *out)
{
	SrMemStatus st;
	size_t		mid;

	if (to - from <= SR_MEMB_PART_MAX || depth >= MPART_MAX_DEPTH)
	{
		if (!GrowArray(m->alloc, (void **) &out->p, &out->cap, out->n + 1, sizeof(MPart *)))
			return SR_MEM_NOMEM;
		if ((st = MPartEncode(m->alloc, prefix, depth, m->nlocal, b, from, to,
							  &out->p[out->n])) != SR_MEM_OK)
			return st;
		out->p[out->n++]->epoch = m->epoch;
		return SR_MEM_OK;
	}
	/* the first key whose next bit is 1 */
	{
		size_t		lo = from,
					hi = to;
		int			bit = SR_MEMB_ID_BITS - depth - 1;

		while (lo < hi)
		{
			size_t		c = lo + (hi - lo) / 2;

			if ((b->ids[c] >> bit) & 1)
				hi = c;
			else
				lo = c + 1;
		}
		mid = lo;
	}
	if ((st = EncodeRange(m, prefix << 1, depth + 1, b, from, mid, out)) != SR_MEM_OK)
		return st;
	return EncodeRange(m, (prefix << 1) | 1, depth + 1, b, mid, to, out);
}

static void
FreePartList(SrMemb *m, PartList *out, bool parts_too)
{
	if (parts_too)
		for (uint32_t j = 0; j < out->n; j++)
			MPartFree(m->alloc, out->p[j]);
	SrMemFree(m->alloc, out->p);
	out->p = NULL;
	out->n = out->cap = 0;
}

/*
 * Install the new partitions of out, replacing old (may be NULL).  The
 * directory is grown first, so that installing cannot fail half way.
 */
static SrMemStatus
InstallAll(SrMemb *m, PartList *out, MPart *old)
{
	for (uint32_t i = 0; i < out->n; i++)
		if (out->p[i]->depth > m->dirbits && !GrowDir(m, out->p[i]->depth))
		{
			FreePartList(m, out, true);
			return SR_MEM_NOMEM;
		}
	for (uint32_t i = 0; i < out->n; i++)
		Install(m, out->p[i]);
	FreePartList(m, out, false);
	if (old)
		ReleasePart(m, old);
	return SR_MEM_OK;
}

static SrMemStatus
Rebuild(SrMemb *m, MPart *p)
{
	double		t0 = NowMs(),
				ms;
	MBuild		b = {.alloc = m->alloc};
	PartList	out = {.n = 0};
	SrMemStatus st;

	uint64_t	oldlive = p->live,
				newlive = 0;

	m->epoch++;
	if (!MPartCollect(p, m, &b))
		st = SR_MEM_NOMEM;
	else
		st = EncodeRange(m, p->prefix, p->depth, &b, 0, b.n, &out);
	MBuildFree(&b);
	for (uint32_t i = 0; st == SR_MEM_OK && i < out.n; i++)
		newlive += out.p[i]->live;
	if (st == SR_MEM_OK && (st = InstallAll(m, &out, p)) == SR_MEM_OK)
		m->nkeys = m->nkeys - oldlive + newlive;	/* exact again after drops */
	else
		FreePartList(m, &out, true);
	if (st != SR_MEM_OK)
		return st;
	m->rebuilds++;
	ReclaimDrops(m);
	ms = NowMs() - t0;
	if (ms > m->max_pause_ms)
		m->max_pause_ms = ms;
	return SR_MEM_OK;
}

static SrMemStatus
EmptyRoot(SrMemb *m)
{
	MBuild		b = {.alloc = m->alloc};
	MPart	   *p;
	SrMemStatus st;

	if ((st = MPartEncode(m->alloc, 0, 0, m->nlocal, &b, 0, 0, &p)) != SR_MEM_OK)
		return st;
	p->epoch = m->epoch;
	m->dir = SrMemAlloc(m->alloc, sizeof(MPart *));
	if (m->dir == NULL)
	{
		MPartFree(m->alloc, p);
		return SR_MEM_NOMEM;
	}
	m->dirbits = 0;
	m->dir[0] = p;
	return SR_MEM_OK;
}

/* ---- lifetime ---- */

SrMemStatus
SrMembCreate(const SrMemAllocator *alloc, SrMemb **out)
{
	SrMemb	   *m = SrMemAlloc(alloc, sizeof(SrMemb));
	SrMemStatus st;

	if (m == NULL)
		return SR_MEM_NOMEM;
	memset(m, 0, sizeof(*m));
	m->alloc = alloc;
	if ((st = EmptyRoot(m)) != SR_MEM_OK)
	{
		SrMemFree(alloc, m);
		return st;
	}
	*out = m;
	return SR_MEM_OK;
}

/* free every partition and the directory */
static void
FreeParts(SrMemb *m)
{
	size_t		n = (size_t) 1 << m->dirbits;

	for (size_t i = 0; m->dir && i < n; i++)
	{
		MPart	   *p = m->dir[i];

		/* free a partition at the first directory slot it owns */
		if (i == (size_t) p->prefix << (m->dirbits - p->depth))
			ReleasePart(m, p);
	}
	SrMemFree(m->alloc, m->dir);
	m->dir = NULL;
}

static void
FreeDictionary(SrMemb *m)
{
	SrMemFree(m->alloc, m->globals);
	SrMemFree(m->alloc, m->dropped);
	SrMemFree(m->alloc, m->dict);
	SrMemFree(m->alloc, m->freelocals);
	SrMemFree(m->alloc, m->drops);
	m->globals = NULL;
	m->dropped = NULL;
	m->dict = NULL;
	m->freelocals = NULL;
	m->drops = NULL;
	m->nlocal = m->localcap = m->dictcap = m->nlive = 0;
	m->nfree = m->freecap = m->ndrops = m->dropcap = 0;
}

void
SrMembFree(SrMemb *m)
{
	if (m == NULL)
		return;
	FreeParts(m);
	FreeDictionary(m);
	SrMemFree(m->alloc, m->scratch);
	SrMemFree(m->alloc, m);
}

SrMemStatus
SrMembClear(SrMemb *m)
{
	MPart	  **olddir = m->dir;
	int			oldbits = m->dirbits;
	SrMemStatus st;

	/* the new empty root first: without memory, nothing changes */
	if (m->redo && MRedoNote(m->redo, MREDO_CLEAR, (SrMembKey) {0, 0}, NULL, 0) != SR_MEM_OK)
		return SR_MEM_NOMEM;
	if ((st = EmptyRoot(m)) != SR_MEM_OK)
	{
		m->dir = olddir;
		m->dirbits = oldbits;
		return st;
	}
	{
		MPart	  **newdir = m->dir;

		m->dir = olddir;
		m->dirbits = oldbits;
		FreeParts(m);
		m->dir = newdir;
		m->dirbits = 0;
	}
	FreeDictionary(m);
	m->nkeys = 0;
	m->epoch++;
	m->dir[0]->epoch = m->epoch;
	return SR_MEM_OK;
}

/* ---- lookups ---- */

static int
CmpInt64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

static void
SortIds(int64_t *ids, int n)
{
	if (n > 16)
	{
		qsort(ids, n, sizeof(int64_t), CmpInt64);
		return;
	}
	for (int i = 1; i < n; i++)
	{
		int64_t		v = ids[i];
		int			j = i;

		for (; j > 0 && ids[j - 1] > v; j--)
			ids[j] = ids[j - 1];
		ids[j] = v;
	}
}

/*
 * key's live locals into m->scratch; returns how many, or -1 (no memory).
 * *stored gets whether the key has a stored set at all (perhaps of dropped
 * shapes only), which is what the key count counts.
 */
static int
CurrentLocals(SrMemb *m, MPart *p, MId id, bool *stored)
{
	int			n = MPartLookup(p, id, m->scratch, m->scratchcap);
	int			k = 0;

	if (n > (int) m->scratchcap)
	{
		if (!GrowArray(m->alloc, (void **) &m->scratch, &m->scratchcap, n, sizeof(uint32_t)))
			return -1;
		n = MPartLookup(p, id, m->scratch, m->scratchcap);
	}
	if (stored)
		*stored = n > 0;
	for (int i = 0; i < n; i++)
		if (!MLocalDropped(m, m->scratch[i]))
			m->scratch[k++] = m->scratch[i];
	return k;
}

int
SrMembLookup(SrMemb *m, SrMembKey key, int64_t *ids, int max)
{
	MId			id = MIdFromKey(key);
	MPart	   *p = m->dir[MIdPrefix(id, m->dirbits)];
	uint32_t	one[8];
	int			n = MPartLookup(p, id, one, 8);
	const uint32_t *locals = one;
	int			k = 0;

	if (n == 0)
		return 0;
	if (n > 8)
	{
		if ((n = CurrentLocals(m, p, id, NULL)) < 0)
			return -1;
		locals = m->scratch;
	}
	for (int i = 0; i < n; i++)
		if (!MLocalDropped(m, locals[i]))
		{
			if (k < max)
				ids[k] = m->globals[locals[i]];
			k++;
		}
	if (k <= max)
		SortIds(ids, k);
	else
		SortIds(ids, max);		/* incomplete; the caller asks again */
	return k;
}

/* ---- changes ---- */

typedef enum
{
	CH_SET,
	CH_ADD,
	CH_REMOVE
} ChangeOp;

static int
CmpU32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *) a,
				y = *(const uint32_t *) b;

	return (x > y) - (x < y);
}

/* the redo record of key's new set, written before the change is made */
static SrMemStatus
LogSet(SrMemb *m, SrMembKey key, const uint32_t *locals, int n)
{
	int64_t    *g = (int64_t *) SrMemAlloc(m->alloc, (n ? n : 1) * sizeof(int64_t));
	SrMemStatus st;

	if (g == NULL)
		return SR_MEM_NOMEM;
	for (int i = 0; i < n; i++)
		g[i] = m->globals[locals[i]];
	SortIds(g, n);
	st = MRedoNote(m->redo, MREDO_SET, key, g, n);
	SrMemFree(m->alloc, g);
	return st;
}

/* ids must be distinct: checked on a sorted copy, before any id is given a number */
static SrMemStatus
CheckDistinct(SrMemb *m, const int64_t *ids, int n)
{
	int64_t    *c;
	SrMemStatus st = SR_MEM_OK;

	if (n < 2)
		return SR_MEM_OK;
	if ((c = SrMemAlloc(m->alloc, n * sizeof(int64_t))) == NULL)
		return SR_MEM_NOMEM;
	memcpy(c, ids, n * sizeof(int64_t));
	SortIds(c, n);
	for (int i = 1; i < n; i++)
		if (c[i] == c[i - 1])
			st = SR_MEM_BADARG;
	SrMemFree(m->alloc, c);
	return st;
}

static SrMemStatus
Change(SrMemb *m, SrMembKey key, ChangeOp op, int64_t one,
	   const int64_t *ids, int n)
{
	MId			id = MIdFromKey(key);
	MPart	   *p = m->dir[MIdPrefix(id, m->dirbits)];
	int			nc,
				nn = 0;
	uint32_t   *cur,
			   *nw;
	bool		stored,
				base_has;
	SrMemStatus st;
	uint32_t	local;
	size_t		mark = 0;

	if (n < 0 || n > SR_MEMB_MAX_SET)
		return SR_MEM_BADARG;
	if (op == CH_SET && (st = CheckDistinct(m, ids, n)) != SR_MEM_OK)
		return st;
	/* room for the current set and the new one, side by side */
	if ((nc = CurrentLocals(m, p, id, &stored)) < 0 ||
		!GrowArray(m->alloc, (void **) &m->scratch, &m->scratchcap,
				   2 * (nc > n ? nc : n) + 2, sizeof(uint32_t)))
		return SR_MEM_NOMEM;
	cur = m->scratch;
	nw = m->scratch + (m->scratchcap / 2);
	if (op == CH_SET)
	{
		for (int i = 0; i < n; i++)
		{
			if ((local = LocalFor(m, ids[i], true)) == UINT32_MAX)
				return SR_MEM_NOMEM;
			nw[nn++] = local;
		}
		qsort(nw, nn, sizeof(uint32_t), CmpU32);
	}
	else
	{
		bool		found = false;

		local = LocalFor(m, one, false);
		for (int i = 0; i < nc && !found; i++)
			found = cur[i] == local;
		if (found == (op == CH_ADD))
			return SR_MEM_OK;	/* already there, or not there to remove */
		if (op == CH_ADD && nc + 1 > SR_MEMB_MAX_SET)
			return SR_MEM_BADARG;
		if (op == CH_ADD && (local = LocalFor(m, one, true)) == UINT32_MAX)
			return SR_MEM_NOMEM;
		for (int i = 0; i < nc; i++)
		{
			if (cur[i] == local)
				continue;		/* removed */
			if (op == CH_ADD && !found && local < cur[i])
			{
				nw[nn++] = local;
				found = true;
			}
			nw[nn++] = cur[i];
		}
		if (op == CH_ADD && !found)
			nw[nn++] = local;
	}
	if (nn == nc && memcmp(cur, nw, nn * sizeof(uint32_t)) == 0)
		return SR_MEM_OK;
	/* logged first, so that a change is never made without its record */
	if (m->redo)
	{
		mark = MRedoMark(m->redo);
		if ((st = LogSet(m, key, nw, nn)) != SR_MEM_OK)
			return st;
	}
	base_has = MPartLookupBase(p, id, NULL, 0) > 0;
	if ((st = MOvlPut(m->alloc, p, id, nw, nn, base_has)) != SR_MEM_OK)
	{
		if (m->redo)
			MRedoRewind(m->redo, mark);
		return st;
	}
	p->live += (nn > 0) - stored;
	m->nkeys += (nn > 0) - stored;
	if (++p->changes >= MRebuildAt(p->nkeys) || MOvlNeedsCompaction(p))
		(void) Rebuild(m, p);	/* without memory, the overlay just stays */
	return SR_MEM_OK;
}

SrMemStatus
SrMembSet(SrMemb *m, SrMembKey key, const int64_t *ids, int n)
{
	return Change(m, key, CH_SET, 0, ids, n);
}

SrMemStatus
SrMembAdd(SrMemb *m, SrMembKey key, int64_t id)
{
	return Change(m, key, CH_ADD, id, NULL, 0);
}

SrMemStatus
SrMembRemove(SrMemb *m, SrMembKey key, int64_t id)
{
	return Change(m, key, CH_REMOVE, id, NULL, 0);
}

SrMemStatus
SrMembRemoveKey(SrMemb *m, SrMembKey key)
{
	return Change(m, key, CH_SET, 0, NULL, 0);
}

SrMemStatus
SrMembDropShape(SrMemb *m, int64_t g)
{
	uint32_t	local = DictFind(m, g);

	if (local == UINT32_MAX)
		return SR_MEM_OK;
	if (!GrowArray(m->alloc, (void **) &m->drops, &m->dropcap, m->ndrops + 1, sizeof(MDrop)))
		return SR_MEM_NOMEM;
	if (m->redo && MRedoNote(m->redo, MREDO_DROP, (SrMembKey) {0, 0}, &g, 1) != SR_MEM_OK)
		return SR_MEM_NOMEM;
	DictDelete(m, g);
	m->dropped[local / 64] |= UINT64_C(1) << (local % 64);
	m->drops[m->ndrops].local = local;
	m->drops[m->ndrops].epoch = m->epoch++;
	m->ndrops++;
	return SR_MEM_OK;
}

/* ---- bulk ---- */

typedef struct LoadItem
{
	MId			id;
	size_t		i;
} LoadItem;

static int
CmpLoad(const void *a, const void *b)
{
	MId			x = ((const LoadItem *) a)->id,
				y = ((const LoadItem *) b)->id;

	return (x > y) - (x < y);
}

SrMemStatus
SrMembLoad(SrMemb *m, const SrMembKey *keys, size_t n,
		   const uint64_t *start, const int64_t *ids)
{
	LoadItem   *items;
	MBuild		b = {.alloc = m->alloc};
	PartList	out = {0};
	uint32_t   *locals = NULL;
	uint32_t	loccap = 0;
	SrMemStatus st = SR_MEM_OK;

	if (m->redo)
		return SR_MEM_BADARG;	/* a load is not logged: write a segment */
	if ((st = SrMembClear(m)) != SR_MEM_OK)
		return st;
	items = SrMemAlloc(m->alloc, (n ? n : 1) * sizeof(LoadItem));
	if (items == NULL)
		return SR_MEM_NOMEM;
	for (size_t i = 0; i < n; i++)
	{
		items[i].id = MIdFromKey(keys[i]);
		items[i].i = i;
	}
	qsort(items, n, sizeof(LoadItem), CmpLoad);
	for (size_t i = 0; i < n && st == SR_MEM_OK; i++)
	{
		size_t		k = items[i].i;
		uint32_t	cnt = (uint32_t) (start[k + 1] - start[k]);

		if (cnt > SR_MEMB_MAX_SET || (i > 0 && items[i].id == items[i - 1].id))
			st = SR_MEM_BADARG;
		else if (!GrowArray(m->alloc, (void **) &locals, &loccap, cnt + 1, sizeof(uint32_t)))
			st = SR_MEM_NOMEM;
		else
		{
			for (uint32_t j = 0; j < cnt && st == SR_MEM_OK; j++)
				if ((locals[j] = LocalFor(m, ids[start[k] + j], true)) == UINT32_MAX)
					st = SR_MEM_NOMEM;
			if (st == SR_MEM_OK && cnt > 0)
			{
				qsort(locals, cnt, sizeof(uint32_t), CmpU32);
				for (uint32_t j = 1; j < cnt; j++)
					if (locals[j] == locals[j - 1])
						st = SR_MEM_BADARG;		/* an id twice in one set */
				if (st == SR_MEM_OK && !MBuildAppend(&b, items[i].id, locals, (int) cnt))
					st = SR_MEM_NOMEM;
			}
		}
	}
	SrMemFree(m->alloc, items);
	SrMemFree(m->alloc, locals);
	if (st == SR_MEM_OK)
		st = EncodeRange(m, 0, 0, &b, 0, b.n, &out);
	if (st == SR_MEM_OK)
	{
		/* out covers the whole key space: it replaces the empty root */
		MPart	   *root = m->dir[0];

		st = InstallAll(m, &out, NULL);
		if (st == SR_MEM_OK)
			ReleasePart(m, root);
	}
	else
		FreePartList(m, &out, true);
	if (st == SR_MEM_OK)
		m->nkeys = b.n;
	MBuildFree(&b);
	if (st != SR_MEM_OK)
		SrMembClear(m);
	return st;
}

/* ---- walking the partitions ---- */

/* the distinct partitions, in directory order, into a fresh array */
static MPart **
PartArray(SrMemb *m, size_t *n)
{
	size_t		nd = (size_t) 1 << m->dirbits,
				k = 0;
	MPart	  **arr = SrMemAlloc(m->alloc, nd * sizeof(MPart *));

	if (arr == NULL)
		return NULL;
	for (size_t i = 0; i < nd; i++)
		if (i == (size_t) m->dir[i]->prefix << (m->dirbits - m->dir[i]->depth))
			arr[k++] = m->dir[i];
	*n = k;
	return arr;
}

SrMemStatus
SrMembIterate(SrMemb *m, SrMembIterFn fn, void *arg)
{
	size_t		np;
	MPart	  **parts = PartArray(m, &np);
	int64_t    *g = SrMemAlloc(m->alloc, SR_MEMB_MAX_SET * sizeof(int64_t));
	SrMemStatus st = SR_MEM_OK;
	bool		go = true;

	if (parts == NULL || g == NULL)
		st = SR_MEM_NOMEM;
	for (size_t i = 0; st == SR_MEM_OK && go && i < np; i++)
	{
		MBuild		b = {.alloc = m->alloc};

		if (!MPartCollect(parts[i], m, &b))
			st = SR_MEM_NOMEM;
		for (size_t k = 0; st == SR_MEM_OK && go && k < b.n; k++)
		{
			int			n = b.start[k + 1] - b.start[k];

			for (int j = 0; j < n; j++)
				g[j] = m->globals[b.locals[b.start[k] + j]];
			SortIds(g, n);
			go = fn(MIdToKey(b.ids[k]), g, n, arg);
		}
		MBuildFree(&b);
	}
	SrMemFree(m->alloc, parts);
	SrMemFree(m->alloc, g);
	return st;
}

bool
SrMembMaintain(SrMemb *m)
{
	size_t		np;
	MPart	  **parts;
	MPart	   *pick = NULL;

	if ((parts = PartArray(m, &np)) == NULL)
		return false;
	/* pending drops: the oldest build first; else the biggest overlay */
	for (size_t i = 0; i < np; i++)
		if (m->ndrops > 0 ? (pick == NULL || parts[i]->epoch < pick->epoch)
			: (parts[i]->changes > 0 && (pick == NULL || parts[i]->changes > pick->changes)))
			pick = parts[i];
	SrMemFree(m->alloc, parts);
	return pick != NULL && Rebuild(m, pick) == SR_MEM_OK;
}

SrMemStatus
SrMembRebuildAll(SrMemb *m)
{
	size_t		np;
	MPart	  **parts = PartArray(m, &np);
	SrMemStatus st = SR_MEM_OK;

	if (parts == NULL)
		return SR_MEM_NOMEM;
	for (size_t i = 0; i < np && st == SR_MEM_OK; i++)
		if (parts[i]->ovl_n > 0 || m->ndrops > 0)
			st = Rebuild(m, parts[i]);
	SrMemFree(m->alloc, parts);
	return st;
}

void
SrMembGetStats(SrMemb *m, SrMembStats *st)
{
	size_t		np = 0;
	MPart	  **parts = PartArray(m, &np);

	memset(st, 0, sizeof(*st));
	st->keys = m->nkeys;
	st->partitions = np;
	st->rebuilds = m->rebuilds;
	st->shapes = m->nlive;
	st->max_pause_ms = m->max_pause_ms;
	for (size_t i = 0; parts && i < np; i++)
	{
		const MPart *p = parts[i];
		size_t		eb;

		st->overlay_entries += p->ovl_n;
		st->bytes_base += MPartBaseBytes(p->nkeys, p->bbits, p->rbits, p->vbits,
										 p->pool_bytes, &eb);
		st->bytes_pool += p->pool_bytes;
		st->bytes_filter += (size_t) p->bloom_words * 8;
		st->bytes_overlay += MPartOverlayBytes(p);
		st->bytes_other += sizeof(MPart);
	}
	SrMemFree(m->alloc, parts);
	st->bytes_other += ((size_t) 1 << m->dirbits) * sizeof(MPart *) + sizeof(SrMemb) +
		(size_t) m->localcap * sizeof(int64_t) + (m->localcap + 63) / 64 * 8 +
		(size_t) m->dictcap * sizeof(MDictEntry) + (size_t) m->freecap * 4 +
		(size_t) m->dropcap * sizeof(MDrop) + (size_t) m->scratchcap * 4;
	st->bytes_total = st->bytes_base + st->bytes_overlay + st->bytes_other;
}
