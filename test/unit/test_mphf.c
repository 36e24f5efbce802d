/*
 * test_mphf.c - unit tests of the minimal perfect hash (src/membership/mphf.c)
 *
 * "Minimal and perfect": every key of the set gets a slot in [0, n) and no
 * two keys share one, checked with a bitmap over all n slots.
 * Pass --quick to skip the 10M-key set.
 */
#include "mphf.h"
#include "tap.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

static uint64_t
KeyAt(uint64_t i)
{
	uint64_t	s = UINT64_C(777) + i * UINT64_C(0x9e3779b97f4a7c15);

	return tap_splitmix(&s);
}

/* 1 if f maps keys[0..n) one-to-one onto [0, n) */
static int
IsMinimalPerfect(const SrMphf *f, const uint64_t *keys, size_t n)
{
	uint64_t   *seen = calloc(n / 64 + 1, sizeof(uint64_t));
	int			ok = SrMphfCount(f) == n;

	for (size_t i = 0; ok && i < n; i++)
	{
		uint32_t	s = SrMphfLookup(f, keys[i]);

		if (s >= n || (seen[s >> 6] >> (s & 63)) & 1)
			ok = 0;
		else
			seen[s >> 6] |= UINT64_C(1) << (s & 63);
	}
	free(seen);
	return ok;
}

static void
CheckSet(const char *what, const uint64_t *keys, size_t n, double maxBits)
{
	SrMphf	   *f = NULL;
	double		t0 = tap_now();
	SrMemStatus st = SrMphfBuild(keys, n, NULL, &f);
	double		t1 = tap_now();
	int			inRange = 1;

	if (!tap_ok(st == SR_MEM_OK, "mphf: build %s (%zu keys)", what, n))
	{
		tap_ok(0, "mphf: %s minimal and perfect (not built)", what);
		return;
	}
	/* keys outside the set land in [0, n) too */
	for (uint64_t i = 0; n > 0 && i < 100000; i++)
		inRange &= SrMphfLookup(f, KeyAt(i) ^ UINT64_C(0xabcdef)) < n;
	if (n >= 1000)
		tap_diag("mphf %s: %.3f bits/key, build %.0f ns/key",
				 what, 8.0 * SrMphfMemory(f) / n, (t1 - t0) * 1e9 / n);
	tap_ok(IsMinimalPerfect(f, keys, n) && inRange &&
		   (n < 100000 || 8.0 * SrMphfMemory(f) / n <= maxBits),
		   "mphf: %s minimal and perfect%s", what,
		   n >= 100000 ? ", at most 3.5 bits/key" : "");
	SrMphfFree(f);
}

static void
CheckSizes(int quick)
{
	size_t		sizes[] = {0, 1, 2, 3, 7, 64, 1000, 1000000, 10000000};
	size_t		count = sizeof(sizes) / sizeof(sizes[0]) - (quick ? 1 : 0);

	for (size_t s = 0; s < count; s++)
	{
		size_t		n = sizes[s];
		uint64_t   *k = malloc((n ? n : 1) * sizeof(uint64_t));
		char		name[64];

		for (size_t i = 0; i < n; i++)
			k[i] = KeyAt(i);
		snprintf(name, sizeof(name), "random keys");
		CheckSet(name, k, n, 3.5);
		free(k);
	}
}

static void
CheckAdversarial(size_t n)
{
	uint64_t   *k = malloc(n * sizeof(uint64_t));

	for (size_t i = 0; i < n; i++)
		k[i] = i;
	CheckSet("sequential integers", k, n, 3.5);
	for (size_t i = 0; i < n; i++)
		k[i] = i + UINT64_C(1000000000000);
	CheckSet("sequential integers from 10^12", k, n, 3.5);
	for (size_t i = 0; i < n; i++)
		k[i] = ((uint64_t) i << 32) | UINT64_C(0x12345678);
	CheckSet("keys equal in their low 32 bits", k, n, 3.5);
	for (size_t i = 0; i < n; i++)
		k[i] = (uint64_t) i << 40;
	CheckSet("keys equal in their low 40 bits", k, n, 3.5);
	for (size_t i = 0; i < n; i++)
		k[i] = XXH3_64bits_withSeed(&i, sizeof(i), 42);
	CheckSet("xxh3 of sequential integers", k, n, 3.5);
	for (size_t i = 0; i < 2; i++)
		k[i] = i;
	CheckSet("the two keys 0 and 1", k, 2, 0);
	free(k);
}

static void
CheckDuplicates(void)
{
	uint64_t	k[1000];
	SrMphf	   *f = NULL;

	for (int i = 0; i < 1000; i++)
		k[i] = KeyAt(i);
	k[999] = k[10];
	tap_ok(SrMphfBuild(k, 1000, NULL, &f) == SR_MEM_BADARG && f == NULL,
		   "mphf: a duplicate key is refused");
}

static void
CheckSerialize(size_t n)
{
	uint64_t   *k = malloc((n ? n : 1) * sizeof(uint64_t));
	SrMphf	   *f = NULL,
			   *v = NULL;
	SrMemStatus st;
	size_t		size,
				same = 0;
	uint8_t    *buf;
	int			bad = 0,
				tried = 0;

	for (size_t i = 0; i < n; i++)
		k[i] = KeyAt(i);
	st = SrMphfBuild(k, n, NULL, &f);
	size = SrMphfSerializedSize(f);
	buf = tap_aligned(size);
	tap_ok(st == SR_MEM_OK && SrMphfSerialize(f, buf) == size,
		   "mphf: serialize %zu keys writes its announced %zu bytes", n, size);
	st = SrMphfView(buf, size, NULL, &v);
	if (st == SR_MEM_OK)
		for (size_t i = 0; i < 2 * n; i++)
			same += SrMphfLookup(f, KeyAt(i)) == SrMphfLookup(v, KeyAt(i));
	tap_ok(st == SR_MEM_OK && same == 2 * n && IsMinimalPerfect(v, k, n),
		   "mphf: a view of %zu keys answers as the original", n);
	SrMphfFree(v);

	tried += 3;
	bad += SrMphfView(buf, size - 1, NULL, &v) == SR_MEM_CORRUPT;
	bad += SrMphfView(buf, size + 8, NULL, &v) == SR_MEM_CORRUPT;
	memmove(buf + 1, buf, size);
	bad += SrMphfView(buf + 1, size, NULL, &v) == SR_MEM_CORRUPT;
	memmove(buf, buf + 1, size);
	for (int off = 0; off < 64; off++)
	{
		if (off >= 8 && off < 16)
			continue;			/* the seed: only a checksum can tell */
		if (n == 0 && off >= 16 && off < 24)
			continue;			/* n = 0 -> 16: a short buffer, caught by len */
		tried++;
		buf[off] ^= 0x04;
		if (SrMphfView(buf, size, NULL, &v) == SR_MEM_CORRUPT)
			bad++;
		else
		{
			tap_diag("flip at header byte %d accepted", off);
			SrMphfFree(v);
		}
		buf[off] ^= 0x04;
	}
	if (n > 0)
	{
		/* header: n at 16, m at 24, bucket count at 32; then the pilots */
		uint64_t	hn,
					hm;
		uint32_t	hb,
					outOfRange;

		memcpy(&hn, buf + 16, 8);
		memcpy(&hm, buf + 24, 8);
		memcpy(&hb, buf + 32, 4);
		/* an escape pilot without its exception */
		tried++;
		buf[64] = 255;
		bad += SrMphfView(buf, size, NULL, &v) == SR_MEM_CORRUPT;
		SrMphfSerialize(f, buf);
		/* the last remap entry pointing outside [0, n) */
		if (hm > hn)
		{
			size_t		at = 64 + ((hb + 7) & ~7u) + (hm - hn - 1) * 4;

			outOfRange = (uint32_t) hn;
			memcpy(buf + at, &outOfRange, 4);
			tried++;
			bad += SrMphfView(buf, size, NULL, &v) == SR_MEM_CORRUPT;
			SrMphfSerialize(f, buf);
		}
	}
	tap_ok(bad == tried, "mphf %zu keys: truncated, misaligned or altered images rejected (%d/%d)",
		   n, bad, tried);
	free(buf);
	SrMphfFree(f);
	free(k);
}

static void
CheckAllocator(void)
{
	TapAllocStats stats = {0, 0};
	SrMemAllocator a = {tap_alloc, tap_free, &stats};
	uint64_t   *k = malloc(50000 * sizeof(uint64_t));
	SrMphf	   *f = NULL;
	SrMemStatus st;
	long		during;

	for (int i = 0; i < 50000; i++)
		k[i] = KeyAt(i);
	st = SrMphfBuild(k, 50000, &a, &f);
	during = stats.live;
	SrMphfFree(f);
	tap_ok(st == SR_MEM_OK && stats.calls > 0 && during == 2 && stats.live == 0,
		   "mphf: allocator hook used (%ld calls), 2 blocks kept, none after free",
		   stats.calls);
	free(k);
}

int
main(int argc, char **argv)
{
	int			quick = argc > 1 && strcmp(argv[1], "--quick") == 0;

	CheckSizes(quick);
	CheckAdversarial(quick ? 1000000 : 2000000);
	CheckDuplicates();
	CheckSerialize(0);
	CheckSerialize(1);
	CheckSerialize(1000);
	CheckSerialize(300000);
	CheckAllocator();
	tap_plan(tap_count);
	return tap_done();
}
