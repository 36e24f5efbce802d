/*
 * fuse.c - binary fuse filter (3-wise), see fuse.h
 *
 * Layout (Graf & Lemire 2022, section 3): the fingerprint array is cut into
 * segment_count + 2 segments of segment_length cells (a power of two).  A key
 * hash h picks a start segment s = floor(h * segment_count / 2^64) and one
 * cell in each of the segments s, s+1, s+2; the three cells are therefore
 * always distinct.  Construction is the usual hypergraph peeling: count the
 * keys of every cell, repeatedly remove a key that is alone in a cell, then
 * assign fingerprints in reverse removal order.  If some keys cannot be
 * peeled the build retries with a new seed.
 *
 * Invariants: arrayLen == (segCount + 2) * segLen when n > 0, arrayLen == 0
 * when n == 0; for every member k with h = KeyHash(k), the xor of its three
 * cells equals Fingerprint(h) truncated to the width.
 */
#include "fuse.h"
#include "mix.h"

#include <math.h>
#include <string.h>

#define FUSE_MAGIC		0x55465253u	/* "SRFU" */
#define FUSE_VERSION	1
#define FUSE_HEADER		48
#define FUSE_MAX_SEGLEN	(1u << 18)
#define FUSE_MAX_TRIES	100

struct SrFuse
{
	SrMemAllocator alloc;
	bool		has_alloc;
	bool		owns_cells;		/* false for a view */
	int			width;			/* 8, 16 or 32 */
	uint32_t	segLen;
	uint32_t	segLenMask;
	uint32_t	segCount;
	uint32_t	segCountLen;	/* segCount * segLen */
	uint32_t	arrayLen;
	uint64_t	seed;
	uint64_t	n;
	void	   *cells;
};

/* An empty filter of the given width, remembering its allocator */
static SrFuse *
NewFuse(const SrMemAllocator *alloc, int width, bool owns_cells)
{
	SrFuse	   *f = SrMemAlloc(alloc, sizeof(SrFuse));

	if (f == NULL)
		return NULL;
	memset(f, 0, sizeof(SrFuse));
	if (alloc)
		f->alloc = *alloc;
	f->has_alloc = alloc != NULL;
	f->owns_cells = owns_cells;
	f->width = width;
	return f;
}

static inline uint64_t
KeyHash(const SrFuse *f, uint64_t key)
{
	return SrMix64(key + f->seed);
}

static inline uint32_t
Fingerprint(uint64_t h)
{
	return (uint32_t) (h ^ (h >> 32));
}

static inline void
Cells(const SrFuse *f, uint64_t h, uint32_t c[3])
{
	uint32_t	c0 = (uint32_t) (((unsigned __int128) h * f->segCountLen) >> 64);

	c[0] = c0;
	c[1] = (c0 + f->segLen) ^ ((uint32_t) (h >> 18) & f->segLenMask);
	c[2] = (c0 + 2 * f->segLen) ^ ((uint32_t) h & f->segLenMask);
}

static inline uint32_t
CellGet(const SrFuse *f, uint32_t i)
{
	switch (f->width)
	{
		case 8:
			return ((const uint8_t *) f->cells)[i];
		case 16:
			return ((const uint16_t *) f->cells)[i];
		default:
			return ((const uint32_t *) f->cells)[i];
	}
}

static inline void
CellSet(SrFuse *f, uint32_t i, uint32_t v)
{
	switch (f->width)
	{
		case 8:
			((uint8_t *) f->cells)[i] = (uint8_t) v;
			break;
		case 16:
			((uint16_t *) f->cells)[i] = (uint16_t) v;
			break;
		default:
			((uint32_t *) f->cells)[i] = v;
			break;
	}
}

static inline uint32_t
WidthMask(int width)
{
	return width == 32 ? UINT32_MAX : ((UINT32_C(1) << width) - 1);
}

bool
SrFuseContains(const SrFuse *f, uint64_t key)
{
	uint64_t	h;
	uint32_t	c[3];
	uint32_t	fp;

	if (f->n == 0)
		return false;
	h = KeyHash(f, key);
	fp = Fingerprint(h);
	Cells(f, h, c);
	switch (f->width)
	{
		case 8:
			{
				const uint8_t *a = f->cells;

				return (uint8_t) fp == (uint8_t) (a[c[0]] ^ a[c[1]] ^ a[c[2]]);
			}
		case 16:
			{
				const uint16_t *a = f->cells;

				return (uint16_t) fp == (uint16_t) (a[c[0]] ^ a[c[1]] ^ a[c[2]]);
			}
		default:
			{
				const uint32_t *a = f->cells;

				return fp == (a[c[0]] ^ a[c[1]] ^ a[c[2]]);
			}
	}
}

/*
 * Sizing, from the paper's formulas for arity 3:
 *   segment_length = 2^floor(log(n) / log(3.33) + 2.25), at most 2^18
 *   size_factor    = max(1.125, 0.875 + 0.25 * log(10^6) / log(n))
 * Sets of fewer than two keys get a fixed small array.
 */
static void
SetSizes(SrFuse *f, uint64_t n)
{
	double		factor;
	uint64_t	capacity;
	uint64_t	segs;
	uint32_t	segLen;

	if (n == 0)
	{
		f->segLen = 1;
		f->segCount = 0;
		f->arrayLen = 0;
	}
	else
	{
		if (n < 2)
		{
			segLen = 4;
			factor = 4.0;
		}
		else
		{
			int			e = (int) floor(log((double) n) / log(3.33) + 2.25);

			segLen = e >= 18 ? FUSE_MAX_SEGLEN : (e < 2 ? 4u : 1u << e);
			factor = 0.875 + 0.25 * log(1000000.0) / log((double) n);
			if (factor < 1.125)
				factor = 1.125;
		}
		capacity = (uint64_t) ceil((double) n * factor);
		/* segments for the capacity, minus the two trailing ones */
		segs = (capacity + segLen - 1) / segLen;
		segs = segs > 2 ? segs - 2 : 1;
		f->segLen = segLen;
		f->segCount = (uint32_t) segs;
		f->arrayLen = (uint32_t) ((segs + 2) * segLen);
	}
	f->segLenMask = f->segLen - 1;
	f->segCountLen = f->segCount * f->segLen;
	f->n = n;
}

/* LSD radix sort on 16-bit digits; tmp has room for n keys */
static void
RadixSort(uint64_t *a, uint64_t *tmp, size_t n, size_t *count)
{
	for (int shift = 0; shift < 64; shift += 16)
	{
		size_t		sum = 0;

		memset(count, 0, sizeof(size_t) * 65536);
		for (size_t i = 0; i < n; i++)
			count[(a[i] >> shift) & 0xffff]++;
		if (count[(a[0] >> shift) & 0xffff] == n)
			continue;			/* all equal in this digit */
		for (size_t d = 0; d < 65536; d++)
		{
			size_t		c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[(a[i] >> shift) & 0xffff]++] = a[i];
		memcpy(a, tmp, n * sizeof(uint64_t));
	}
}

/* sort and remove duplicates in place; returns the new length */
static SrMemStatus
Dedup(const SrMemAllocator *alloc, uint64_t *a, size_t n, size_t *nout)
{
	uint64_t   *tmp;
	size_t	   *count;
	size_t		m = 0;

	if (n < 2)
	{
		*nout = n;
		return SR_MEM_OK;
	}
	tmp = SrMemAlloc(alloc, n * sizeof(uint64_t));
	count = SrMemAlloc(alloc, 65536 * sizeof(size_t));
	if (tmp == NULL || count == NULL)
	{
		SrMemFree(alloc, tmp);
		SrMemFree(alloc, count);
		return SR_MEM_NOMEM;
	}
	RadixSort(a, tmp, n, count);
	SrMemFree(alloc, tmp);
	SrMemFree(alloc, count);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || a[i] != a[m - 1])
			a[m++] = a[i];
	*nout = m;
	return SR_MEM_OK;
}

/*
 * One peeling attempt with f->seed.  count and hashes have arrayLen cells,
 * queue and order room for arrayLen and n positions.  Returns true if every
 * key was peeled; then the cells are assigned.
 */
static bool
TryPeel(SrFuse *f, const uint64_t *keys, size_t n, uint64_t *keyHashes,
		uint32_t *segStart,
		uint8_t *count, uint64_t *hashes, uint32_t *queue, uint32_t *order)
{
	uint32_t	c[3];
	size_t		qlen = 0;
	size_t		peeled = 0;
	uint32_t	mask = WidthMask(f->width);

	/*
	 * Key hashes by start segment (a counting sort), so that the counting
	 * pass below touches three neighbouring segments at a time instead of
	 * the whole array (the paper's cache-friendly construction).
	 */
	memset(segStart, 0, ((size_t) f->segCount + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
	{
		uint64_t	h = KeyHash(f, keys[i]);

		segStart[(uint32_t) (((unsigned __int128) h * f->segCount) >> 64) + 1]++;
	}
	for (uint32_t s = 0; s < f->segCount; s++)
		segStart[s + 1] += segStart[s];
	for (size_t i = 0; i < n; i++)
	{
		uint64_t	h = KeyHash(f, keys[i]);

		keyHashes[segStart[(uint32_t) (((unsigned __int128) h * f->segCount) >> 64)]++] = h;
	}

	memset(count, 0, f->arrayLen);
	memset(hashes, 0, (size_t) f->arrayLen * sizeof(uint64_t));
	for (size_t i = 0; i < n; i++)
	{
		uint64_t	h = keyHashes[i];

		Cells(f, h, c);
		for (int j = 0; j < 3; j++)
		{
			if (count[c[j]] == UINT8_MAX)
				return false;	/* absurdly crowded cell: new seed */
			count[c[j]]++;
			hashes[c[j]] ^= h;
		}
	}
	for (uint32_t i = 0; i < f->arrayLen; i++)
		if (count[i] == 1)
			queue[qlen++] = i;
	while (qlen > 0)
	{
		uint32_t	cell = queue[--qlen];
		uint64_t	h;

		if (count[cell] != 1)
			continue;
		/* the key alone in cell: hashes[cell] is its hash, and stays so */
		h = hashes[cell];
		order[peeled++] = cell;
		count[cell] = 0;
		Cells(f, h, c);
		for (int j = 0; j < 3; j++)
		{
			if (c[j] == cell)
				continue;
			count[c[j]]--;
			hashes[c[j]] ^= h;
			if (count[c[j]] == 1)
				queue[qlen++] = c[j];
		}
	}
	if (peeled != n)
		return false;

	memset(f->cells, 0, (size_t) f->arrayLen * (f->width / 8));
	for (size_t i = peeled; i-- > 0;)
	{
		uint32_t	cell = order[i];
		uint64_t	h = hashes[cell];
		uint32_t	v = Fingerprint(h);

		Cells(f, h, c);
		for (int j = 0; j < 3; j++)
			if (c[j] != cell)
				v ^= CellGet(f, c[j]);
		CellSet(f, cell, v & mask);
	}
	return true;
}

SrMemStatus
SrFuseBuild(const uint64_t *keys, size_t n, int width,
			const SrMemAllocator *alloc, SrFuse **out)
{
	SrFuse	   *f;
	uint64_t   *uniq = NULL;
	uint8_t    *count = NULL;
	uint64_t   *hashes = NULL;
	uint32_t   *queue = NULL;
	uint32_t   *order = NULL;
	uint64_t   *keyHashes = NULL;
	uint32_t   *segStart = NULL;
	size_t		nu = 0;
	uint64_t	seedState = UINT64_C(0x5eed0f5eed0f5eed);
	SrMemStatus st;

	*out = NULL;
	if (width != 8 && width != 16 && width != 32)
		return SR_MEM_BADARG;
	if (n > (size_t) INT32_MAX / 2)
		return SR_MEM_BADARG;
	f = NewFuse(alloc, width, true);
	if (f == NULL)
		return SR_MEM_NOMEM;

	uniq = SrMemAlloc(alloc, (n ? n : 1) * sizeof(uint64_t));
	if (uniq == NULL)
	{
		st = SR_MEM_NOMEM;
		goto fail;
	}
	if (n)
		memcpy(uniq, keys, n * sizeof(uint64_t));
	st = Dedup(alloc, uniq, n, &nu);
	if (st != SR_MEM_OK)
		goto fail;

	SetSizes(f, nu);
	f->cells = SrMemAlloc(alloc, (size_t) f->arrayLen * (width / 8));
	if (f->cells == NULL)
	{
		st = SR_MEM_NOMEM;
		goto fail;
	}
	if (nu == 0)
	{
		SrMemFree(alloc, uniq);
		*out = f;
		return SR_MEM_OK;
	}
	count = SrMemAlloc(alloc, f->arrayLen);
	hashes = SrMemAlloc(alloc, (size_t) f->arrayLen * sizeof(uint64_t));
	queue = SrMemAlloc(alloc, (size_t) f->arrayLen * sizeof(uint32_t));
	order = SrMemAlloc(alloc, nu * sizeof(uint32_t));
	keyHashes = SrMemAlloc(alloc, nu * sizeof(uint64_t));
	segStart = SrMemAlloc(alloc, ((size_t) f->segCount + 1) * sizeof(uint32_t));
	if (!count || !hashes || !queue || !order || !keyHashes || !segStart)
	{
		st = SR_MEM_NOMEM;
		goto fail;
	}
	st = SR_MEM_FAILED;
	for (int t = 0; t < FUSE_MAX_TRIES; t++)
	{
		f->seed = SrNextSeed(&seedState);
		if (TryPeel(f, uniq, nu, keyHashes, segStart, count, hashes, queue, order))
		{
			st = SR_MEM_OK;
			break;
		}
	}
fail:
	SrMemFree(alloc, count);
	SrMemFree(alloc, hashes);
	SrMemFree(alloc, queue);
	SrMemFree(alloc, order);
	SrMemFree(alloc, keyHashes);
	SrMemFree(alloc, segStart);
	SrMemFree(alloc, uniq);
	if (st != SR_MEM_OK)
	{
		SrFuseFree(f);
		return st;
	}
	*out = f;
	return SR_MEM_OK;
}

size_t
SrFuseCount(const SrFuse *f)
{
	return (size_t) f->n;
}

int
SrFuseWidth(const SrFuse *f)
{
	return f->width;
}

size_t
SrFuseMemory(const SrFuse *f)
{
	return sizeof(SrFuse) + (size_t) f->arrayLen * (f->width / 8);
}

static size_t
PayloadSize(uint32_t arrayLen, int width)
{
	size_t		b = (size_t) arrayLen * (width / 8);

	return (b + 7) & ~(size_t) 7;
}

size_t
SrFuseSerializedSize(const SrFuse *f)
{
	return FUSE_HEADER + PayloadSize(f->arrayLen, f->width);
}

size_t
SrFuseSerialize(const SrFuse *f, void *buf)
{
	uint8_t    *p = buf;
	uint32_t	u32;
	uint16_t	u16;
	uint64_t	u64;
	size_t		cellBytes = (size_t) f->arrayLen * (f->width / 8);
	size_t		payload = PayloadSize(f->arrayLen, f->width);

	memset(p, 0, FUSE_HEADER);
	u32 = FUSE_MAGIC;
	memcpy(p + 0, &u32, 4);
	u16 = FUSE_VERSION;
	memcpy(p + 4, &u16, 2);
	u16 = (uint16_t) f->width;
	memcpy(p + 6, &u16, 2);
	memcpy(p + 8, &f->segLen, 4);
	memcpy(p + 12, &f->segCount, 4);
	memcpy(p + 16, &f->arrayLen, 4);
	memcpy(p + 24, &f->seed, 8);
	memcpy(p + 32, &f->n, 8);
	u64 = payload;
	memcpy(p + 40, &u64, 8);
	if (cellBytes)
		memcpy(p + FUSE_HEADER, f->cells, cellBytes);
	memset(p + FUSE_HEADER + cellBytes, 0, payload - cellBytes);
	return FUSE_HEADER + payload;
}

SrMemStatus
SrFuseView(const void *buf, size_t len, const SrMemAllocator *alloc,
		   SrFuse **out)
{
	const uint8_t *p = buf;
	uint32_t	magic,
				segLen,
				segCount,
				arrayLen,
				reserved;
	uint16_t	version,
				width;
	uint64_t	seed,
				n,
				payload;
	SrFuse	   *f;

	*out = NULL;
	if (buf == NULL || ((uintptr_t) buf & 7) != 0 || len < FUSE_HEADER)
		return SR_MEM_CORRUPT;
	memcpy(&magic, p + 0, 4);
	memcpy(&version, p + 4, 2);
	memcpy(&width, p + 6, 2);
	memcpy(&segLen, p + 8, 4);
	memcpy(&segCount, p + 12, 4);
	memcpy(&arrayLen, p + 16, 4);
	memcpy(&reserved, p + 20, 4);
	memcpy(&seed, p + 24, 8);
	memcpy(&n, p + 32, 8);
	memcpy(&payload, p + 40, 8);
	if (magic != FUSE_MAGIC || version != FUSE_VERSION || reserved != 0)
		return SR_MEM_CORRUPT;
	if (width != 8 && width != 16 && width != 32)
		return SR_MEM_CORRUPT;
	if (segLen == 0 || (segLen & (segLen - 1)) != 0 || segLen > FUSE_MAX_SEGLEN)
		return SR_MEM_CORRUPT;
	if (n == 0)
	{
		if (arrayLen != 0 || segCount != 0)
			return SR_MEM_CORRUPT;
	}
	else if (segCount == 0 ||
			 (uint64_t) (segCount + 2ull) * segLen != arrayLen ||
			 n > arrayLen)
		return SR_MEM_CORRUPT;
	if (payload != PayloadSize(arrayLen, width) ||
		len != FUSE_HEADER + payload)
		return SR_MEM_CORRUPT;
	{
		/* the geometry is a function of n: recompute and compare */
		SrFuse		ref;

		memset(&ref, 0, sizeof(ref));
		SetSizes(&ref, n);
		if (ref.segLen != segLen || ref.segCount != segCount ||
			ref.arrayLen != arrayLen)
			return SR_MEM_CORRUPT;
	}

	f = NewFuse(alloc, width, false);
	if (f == NULL)
		return SR_MEM_NOMEM;
	f->segLen = segLen;
	f->segLenMask = segLen - 1;
	f->segCount = segCount;
	f->segCountLen = segCount * segLen;
	f->arrayLen = arrayLen;
	f->seed = seed;
	f->n = n;
	f->cells = (void *) (p + FUSE_HEADER);
	*out = f;
	return SR_MEM_OK;
}

void
SrFuseFree(SrFuse *f)
{
	const SrMemAllocator *alloc;

	if (f == NULL)
		return;
	alloc = f->has_alloc ? &f->alloc : NULL;
	if (f->owns_cells)
		SrMemFree(alloc, f->cells);
	SrMemFree(alloc, f);
}
