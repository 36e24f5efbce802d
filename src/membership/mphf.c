/*
 * mphf.c - minimal perfect hash, see mphf.h
 *
 * Invariants of a built (or validated) function with n > 0:
 *   m = ceil(n / 0.99) >= n; numBuckets >= 1; 1 <= dense <= numBuckets;
 *   pilot[b] == 255 exactly for the buckets listed in exc[], which is sorted
 *   by bucket; every remap[] entry is < n.
 * Slot(key) = Place(h, pilot(Bucket(h))) where h = SrMix64(key ^ seed), then
 * through remap[] when >= n.  SrMix64 is a bijection, so distinct keys have
 * distinct h; the pilot search makes Place injective on the key set.
 */
#include "mphf.h"
#include "mix.h"

#include <math.h>
#include <string.h>

#define MPHF_MAGIC		0x504d5253u	/* "SRMP" */
#define MPHF_VERSION	1
#define MPHF_HEADER		64
#define MPHF_ALPHA		0.99	/* load factor of the pilot search table */
#define MPHF_C			6.5		/* numBuckets = c * n / log2(n) */
#define MPHF_ESCAPE		255		/* pilot byte meaning "see exceptions" */
#define MPHF_MAX_PILOT	(1u << 22)	/* beyond: new seed */
#define MPHF_MAX_TRIES	16

struct SrMphf
{
	SrMemAllocator alloc;
	bool		has_alloc;
	bool		owns_payload;
	uint64_t	seed;
	uint64_t	n;
	uint64_t	m;
	uint32_t	numBuckets;
	uint32_t	dense;			/* buckets that take the skewed 60 % */
	uint64_t	threshold;		/* (uint32) h < threshold: dense bucket */
	uint32_t	numExc;
	const uint8_t *pilots;		/* numBuckets */
	const uint32_t *remap;		/* m - n */
	const uint64_t *exc;		/* numExc: bucket << 32 | pilot */
	void	   *payload;		/* owned block holding the three above */
	size_t		payloadSize;
};

static inline uint64_t
MulHi(uint64_t a, uint64_t b)
{
	return (uint64_t) (((unsigned __int128) a * b) >> 64);
}

static inline uint32_t
Bucket(const SrMphf *f, uint64_t h)
{
	uint32_t	hi = (uint32_t) (h >> 32);

	if ((uint32_t) h < f->threshold)
		return (uint32_t) (((uint64_t) hi * f->dense) >> 32);
	return f->dense +
		(uint32_t) (((uint64_t) hi * (f->numBuckets - f->dense)) >> 32);
}

static inline uint64_t
Place(const SrMphf *f, uint64_t h, uint32_t pilot)
{
	return MulHi(SrMix64(h ^ SrMix64(pilot + UINT64_C(0x243f6a8885a308d3))), f->m);
}

static uint32_t
ExceptionPilot(const SrMphf *f, uint32_t b)
{
	size_t		lo = 0,
				hi = f->numExc;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;
		uint32_t	mb = (uint32_t) (f->exc[mid] >> 32);

		if (mb == b)
			return (uint32_t) f->exc[mid];
		if (mb < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;					/* unreachable for a validated function */
}

uint32_t
SrMphfLookup(const SrMphf *f, uint64_t key)
{
	uint64_t	h;
	uint32_t	b,
				p;
	uint64_t	pos;

	if (f->n == 0)
		return 0;
	h = SrMix64(key ^ f->seed);
	b = Bucket(f, h);
	p = f->pilots[b];
	if (__builtin_expect(p == MPHF_ESCAPE, 0))
		p = ExceptionPilot(f, b);
	pos = Place(f, h, p);
	if (pos < f->n)
		return (uint32_t) pos;
	return f->remap[pos - f->n];
}

static size_t
Pad8(size_t x)
{
	return (x + 7) & ~(size_t) 7;
}

static size_t
PayloadSize(uint64_t n, uint64_t m, uint32_t numBuckets, uint32_t numExc)
{
	return Pad8(numBuckets) + Pad8((size_t) (m - n) * 4) + (size_t) numExc * 8;
}

static void
SetSizes(SrMphf *f, uint64_t n)
{
	double		lg = n > 2 ? log2((double) n) : 1.0;
	uint64_t	b;

	f->n = n;
	if (n == 0)
	{
		f->m = 0;
		f->numBuckets = 0;
		f->dense = 0;
		f->threshold = 0;
		return;
	}
	f->m = (uint64_t) ceil((double) n / MPHF_ALPHA);
	if (f->m < n)
		f->m = n;
	b = (uint64_t) ceil(MPHF_C * (double) n / lg);
	if (b < 1)
		b = 1;
	if (b > n)
		b = n;
	f->numBuckets = (uint32_t) b;
	if (b < 2)
	{
		f->dense = 1;
		f->threshold = UINT64_C(1) << 32;	/* everything is dense */
	}
	else
	{
		f->dense = (uint32_t) ceil(0.3 * (double) b);
		if (f->dense >= b)
			f->dense = (uint32_t) b - 1;
		f->threshold = (uint64_t) (0.6 * 4294967296.0);
	}
}

static int
CmpU64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a,
				y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

/*
 * Working memory of one build attempt.
 */
typedef struct BuildState
{
	uint64_t   *hashes;			/* n, grouped by bucket */
	uint32_t   *start;			/* numBuckets + 1 */
	uint32_t   *order;			/* numBuckets, by decreasing size */
	uint32_t   *pilot;			/* numBuckets */
	uint64_t   *taken;			/* bitmap of m */
	uint32_t   *sizeCount;		/* scratch for the counting sorts */
	uint64_t	pos[256];		/* positions of the bucket being placed */
} BuildState;

/*
 * Place every bucket.  Returns SR_MEM_OK, SR_MEM_FAILED (new seed) or
 * SR_MEM_BADARG (two equal keys: no seed can help).
 */
static SrMemStatus
Search(SrMphf *f, const uint64_t *keys, BuildState *bs)
{
	uint64_t	n = f->n;
	uint32_t	nb = f->numBuckets;
	uint32_t	maxSize = 0;

	/* group the key hashes by bucket (counting sort) */
	memset(bs->start, 0, ((size_t) nb + 1) * sizeof(uint32_t));
	for (uint64_t i = 0; i < n; i++)
		bs->start[Bucket(f, SrMix64(keys[i] ^ f->seed)) + 1]++;
	for (uint32_t b = 0; b < nb; b++)
	{
		uint32_t	s = bs->start[b + 1];

		if (s > maxSize)
			maxSize = s;
		bs->start[b + 1] += bs->start[b];
	}
	if (maxSize > 256)
		return SR_MEM_FAILED;	/* never at these loads; keeps pos[] bounded */
	memcpy(bs->order, bs->start, (size_t) nb * sizeof(uint32_t));	/* cursors */
	for (uint64_t i = 0; i < n; i++)
	{
		uint64_t	h = SrMix64(keys[i] ^ f->seed);

		bs->hashes[bs->order[Bucket(f, h)]++] = h;
	}
	/* buckets by decreasing size (counting sort on size) */
	memset(bs->sizeCount, 0, 257 * sizeof(uint32_t));
	for (uint32_t b = 0; b < nb; b++)
		bs->sizeCount[256 - (bs->start[b + 1] - bs->start[b])]++;
	for (uint32_t s = 0, sum = 0; s <= 256; s++)
	{
		uint32_t	c = bs->sizeCount[s];

		bs->sizeCount[s] = sum;
		sum += c;
	}
	for (uint32_t b = 0; b < nb; b++)
		bs->order[bs->sizeCount[256 - (bs->start[b + 1] - bs->start[b])]++] = b;

	memset(bs->taken, 0, ((f->m + 63) / 64) * sizeof(uint64_t));
	for (uint32_t k = 0; k < nb; k++)
	{
		uint32_t	b = bs->order[k];
		const uint64_t *hs = bs->hashes + bs->start[b];
		uint32_t	s = bs->start[b + 1] - bs->start[b];
		uint32_t	p;

		if (s == 0)
			break;				/* the rest are empty too */
		for (uint32_t i = 1; i < s; i++)
			for (uint32_t j = 0; j < i; j++)
				if (hs[i] == hs[j])
					return SR_MEM_BADARG;
		for (p = 0; p < MPHF_MAX_PILOT; p++)
		{
			uint32_t	i;

			for (i = 0; i < s; i++)
			{
				uint64_t	q = Place(f, hs[i], p);
				uint32_t	j;

				if (bs->taken[q >> 6] & (UINT64_C(1) << (q & 63)))
					break;
				for (j = 0; j < i; j++)
					if (bs->pos[j] == q)
						break;
				if (j < i)
					break;
				bs->pos[i] = q;
			}
			if (i == s)
				break;
		}
		if (p == MPHF_MAX_PILOT)
			return SR_MEM_FAILED;
		for (uint32_t i = 0; i < s; i++)
			bs->taken[bs->pos[i] >> 6] |= UINT64_C(1) << (bs->pos[i] & 63);
		bs->pilot[b] = p;
	}
	for (uint32_t k = 0; k < nb; k++)
		if (bs->start[k + 1] == bs->start[k])
			bs->pilot[k] = 0;
	return SR_MEM_OK;
}

/* pack pilots, exceptions and the remap into f's payload */
static SrMemStatus
Encode(SrMphf *f, const SrMemAllocator *alloc, BuildState *bs)
{
	uint32_t	numExc = 0;
	uint8_t    *pilots;
	uint32_t   *remap;
	uint64_t   *exc;
	uint64_t	freeSlot = 0;
	uint64_t	n = f->n;

	for (uint32_t b = 0; b < f->numBuckets; b++)
		if (bs->pilot[b] >= MPHF_ESCAPE)
			numExc++;
	f->numExc = numExc;
	f->payloadSize = PayloadSize(n, f->m, f->numBuckets, numExc);
	f->payload = SrMemAlloc(alloc, f->payloadSize);
	if (f->payload == NULL)
		return SR_MEM_NOMEM;
	memset(f->payload, 0, f->payloadSize);
	pilots = f->payload;
	remap = (uint32_t *) ((uint8_t *) f->payload + Pad8(f->numBuckets));
	exc = (uint64_t *) ((uint8_t *) remap + Pad8((size_t) (f->m - n) * 4));

	numExc = 0;
	for (uint32_t b = 0; b < f->numBuckets; b++)
	{
		if (bs->pilot[b] >= MPHF_ESCAPE)
		{
			pilots[b] = MPHF_ESCAPE;
			exc[numExc++] = ((uint64_t) b << 32) | bs->pilot[b];
		}
		else
			pilots[b] = (uint8_t) bs->pilot[b];
	}
	qsort(exc, numExc, sizeof(uint64_t), CmpU64);	/* already sorted: cheap */

	/* each taken slot >= n gets the next free slot < n */
	for (uint64_t q = n; q < f->m; q++)
	{
		if (!(bs->taken[q >> 6] & (UINT64_C(1) << (q & 63))))
			continue;
		while (bs->taken[freeSlot >> 6] & (UINT64_C(1) << (freeSlot & 63)))
			freeSlot++;
		remap[q - n] = (uint32_t) freeSlot++;
	}
	f->pilots = pilots;
	f->remap = remap;
	f->exc = exc;
	return SR_MEM_OK;
}

SrMemStatus
SrMphfBuild(const uint64_t *keys, size_t n, const SrMemAllocator *alloc,
			SrMphf **out)
{
	SrMphf	   *f;
	BuildState	bs;
	uint64_t	seedState = UINT64_C(0x6d706866c0ffee00);
	SrMemStatus st = SR_MEM_FAILED;

	*out = NULL;
	if ((uint64_t) n >= UINT64_C(0xfc000000))
		return SR_MEM_BADARG;
	f = SrMemAlloc(alloc, sizeof(SrMphf));
	if (f == NULL)
		return SR_MEM_NOMEM;
	memset(f, 0, sizeof(SrMphf));
	if (alloc)
		f->alloc = *alloc;
	f->has_alloc = alloc != NULL;
	f->owns_payload = true;
	SetSizes(f, n);
	if (n == 0)
	{
		f->payloadSize = 0;
		*out = f;
		return SR_MEM_OK;
	}

	memset(&bs, 0, sizeof(bs));
	bs.hashes = SrMemAlloc(alloc, n * sizeof(uint64_t));
	bs.start = SrMemAlloc(alloc, ((size_t) f->numBuckets + 1) * sizeof(uint32_t));
	bs.order = SrMemAlloc(alloc, (size_t) f->numBuckets * sizeof(uint32_t));
	bs.pilot = SrMemAlloc(alloc, (size_t) f->numBuckets * sizeof(uint32_t));
	bs.taken = SrMemAlloc(alloc, ((f->m + 63) / 64) * sizeof(uint64_t));
	bs.sizeCount = SrMemAlloc(alloc, 257 * sizeof(uint32_t));
	if (!bs.hashes || !bs.start || !bs.order || !bs.pilot || !bs.taken ||
		!bs.sizeCount)
		st = SR_MEM_NOMEM;
	else
	{
		for (int t = 0; t < MPHF_MAX_TRIES; t++)
		{
			f->seed = SrNextSeed(&seedState);
			st = Search(f, keys, &bs);
			if (st != SR_MEM_FAILED)
				break;
		}
		if (st == SR_MEM_OK)
			st = Encode(f, alloc, &bs);
	}
	SrMemFree(alloc, bs.hashes);
	SrMemFree(alloc, bs.start);
	SrMemFree(alloc, bs.order);
	SrMemFree(alloc, bs.pilot);
	SrMemFree(alloc, bs.taken);
	SrMemFree(alloc, bs.sizeCount);
	if (st != SR_MEM_OK)
	{
		SrMphfFree(f);
		return st;
	}
	*out = f;
	return SR_MEM_OK;
}

size_t
SrMphfCount(const SrMphf *f)
{
	return (size_t) f->n;
}

size_t
SrMphfMemory(const SrMphf *f)
{
	return sizeof(SrMphf) + f->payloadSize;
}

size_t
SrMphfSerializedSize(const SrMphf *f)
{
	return MPHF_HEADER + f->payloadSize;
}

size_t
SrMphfSerialize(const SrMphf *f, void *buf)
{
	uint8_t    *p = buf;
	uint32_t	u32;
	uint16_t	u16;
	uint64_t	u64;

	memset(p, 0, MPHF_HEADER);
	u32 = MPHF_MAGIC;
	memcpy(p + 0, &u32, 4);
	u16 = MPHF_VERSION;
	memcpy(p + 4, &u16, 2);
	memcpy(p + 8, &f->seed, 8);
	memcpy(p + 16, &f->n, 8);
	memcpy(p + 24, &f->m, 8);
	memcpy(p + 32, &f->numBuckets, 4);
	memcpy(p + 36, &f->dense, 4);
	memcpy(p + 40, &f->threshold, 8);
	memcpy(p + 48, &f->numExc, 4);
	u64 = f->payloadSize;
	memcpy(p + 56, &u64, 8);
	if (f->payloadSize)
		memcpy(p + MPHF_HEADER, f->pilots, f->payloadSize);
	return MPHF_HEADER + f->payloadSize;
}

SrMemStatus
SrMphfView(const void *buf, size_t len, const SrMemAllocator *alloc,
		   SrMphf **out)
{
	const uint8_t *p = buf;
	uint32_t	magic,
				reserved;
	uint16_t	version,
				reserved16;
	uint64_t	payload;
	SrMphf		tmp;
	SrMphf	   *f;
	uint32_t	escapes = 0;

	*out = NULL;
	if (buf == NULL || ((uintptr_t) buf & 7) != 0 || len < MPHF_HEADER)
		return SR_MEM_CORRUPT;
	memset(&tmp, 0, sizeof(tmp));
	memcpy(&magic, p + 0, 4);
	memcpy(&version, p + 4, 2);
	memcpy(&reserved16, p + 6, 2);
	memcpy(&tmp.seed, p + 8, 8);
	memcpy(&tmp.n, p + 16, 8);
	memcpy(&tmp.m, p + 24, 8);
	memcpy(&tmp.numBuckets, p + 32, 4);
	memcpy(&tmp.dense, p + 36, 4);
	memcpy(&tmp.threshold, p + 40, 8);
	memcpy(&tmp.numExc, p + 48, 4);
	memcpy(&reserved, p + 52, 4);
	memcpy(&payload, p + 56, 8);
	if (magic != MPHF_MAGIC || version != MPHF_VERSION ||
		reserved != 0 || reserved16 != 0)
		return SR_MEM_CORRUPT;
	if (tmp.n >= UINT64_C(0xfc000000))
		return SR_MEM_CORRUPT;
	{
		/* the sizes are a function of n: recompute and compare */
		SrMphf		ref;

		memset(&ref, 0, sizeof(ref));
		SetSizes(&ref, tmp.n);
		if (ref.m != tmp.m || ref.numBuckets != tmp.numBuckets ||
			ref.dense != tmp.dense || ref.threshold != tmp.threshold)
			return SR_MEM_CORRUPT;
	}
	if (tmp.n == 0)
	{
		if (tmp.numExc != 0 || payload != 0)
			return SR_MEM_CORRUPT;
	}
	else if (tmp.numExc > tmp.numBuckets ||
			 payload != PayloadSize(tmp.n, tmp.m, tmp.numBuckets, tmp.numExc))
		return SR_MEM_CORRUPT;
	if (len != MPHF_HEADER + payload)
		return SR_MEM_CORRUPT;
	tmp.payloadSize = payload;
	if (tmp.n > 0)
	{
		tmp.pilots = p + MPHF_HEADER;
		tmp.remap = (const uint32_t *) (tmp.pilots + Pad8(tmp.numBuckets));
		tmp.exc = (const uint64_t *) ((const uint8_t *) tmp.remap +
									  Pad8((size_t) (tmp.m - tmp.n) * 4));
		for (uint32_t b = 0; b < tmp.numBuckets; b++)
			escapes += tmp.pilots[b] == MPHF_ESCAPE;
		if (escapes != tmp.numExc)
			return SR_MEM_CORRUPT;
		for (uint32_t i = 0; i < tmp.numExc; i++)
		{
			uint32_t	b = (uint32_t) (tmp.exc[i] >> 32);

			if (b >= tmp.numBuckets || tmp.pilots[b] != MPHF_ESCAPE ||
				(i > 0 && (uint32_t) (tmp.exc[i - 1] >> 32) >= b))
				return SR_MEM_CORRUPT;
		}
		for (uint64_t i = 0; i < tmp.m - tmp.n; i++)
			if (tmp.remap[i] >= tmp.n)
				return SR_MEM_CORRUPT;
	}

	f = SrMemAlloc(alloc, sizeof(SrMphf));
	if (f == NULL)
		return SR_MEM_NOMEM;
	*f = tmp;
	if (alloc)
		f->alloc = *alloc;
	f->has_alloc = alloc != NULL;
	f->owns_payload = false;
	f->payload = NULL;
	*out = f;
	return SR_MEM_OK;
}

void
SrMphfFree(SrMphf *f)
{
	const SrMemAllocator *alloc;

	if (f == NULL)
		return;
	alloc = f->has_alloc ? &f->alloc : NULL;
	if (f->owns_payload)
		SrMemFree(alloc, f->payload);
	SrMemFree(alloc, f);
}
