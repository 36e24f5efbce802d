/*
 * test_fuse.c - unit tests of the binary fuse filter (src/membership/fuse.c)
 *
 * Members are KeyAt(2i) and non-members KeyAt(2i+1): KeyAt is a bijection
 * of i, so the two sets are disjoint and a "yes" for a non-member is a true
 * false positive.
 */
#include "fuse.h"
#include "tap.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

static uint64_t
KeyAt(uint64_t i)
{
	uint64_t	s = UINT64_C(20261201) + i * UINT64_C(0x9e3779b97f4a7c15);

	return tap_splitmix(&s);	/* splitmix's finalizer of a distinct state */
}

static uint64_t *
Members(size_t n)
{
	uint64_t   *k = malloc((n ? n : 1) * sizeof(uint64_t));

	for (size_t i = 0; i < n; i++)
		k[i] = KeyAt(2 * i);
	return k;
}

static size_t
FalseNegatives(const SrFuse *f, const uint64_t *k, size_t n)
{
	size_t		fn = 0;

	for (size_t i = 0; i < n; i++)
		fn += !SrFuseContains(f, k[i]);
	return fn;
}

/* all members present and the false-positive rate within [lo, hi] * 2^-w */
static void
CheckRate(int width, size_t n, size_t queries, double lo, double hi)
{
	uint64_t   *k = Members(n);
	SrFuse	   *f = NULL;
	SrMemStatus st = SrFuseBuild(k, n, width, NULL, &f);
	size_t		fp = 0;
	double		expect,
				rate;

	if (!tap_ok(st == SR_MEM_OK, "fuse%d: build %zu keys", width, n))
	{
		tap_ok(0, "fuse%d: no false negatives (not built)", width);
		tap_ok(0, "fuse%d: false-positive rate (not built)", width);
		free(k);
		return;
	}
	tap_ok(FalseNegatives(f, k, n) == 0, "fuse%d: no false negatives on %zu members",
		   width, n);
	for (size_t i = 0; i < queries; i++)
		fp += SrFuseContains(f, KeyAt(2 * i + 1));
	expect = 1.0 / (double) (UINT64_C(1) << width);
	rate = (double) fp / (double) queries;
	tap_diag("fuse%d: %zu false positives in %zu non-members: rate %.3g (2^-%d = %.3g), %.2f bits/key",
			 width, fp, queries, rate, width, expect,
			 8.0 * SrFuseMemory(f) / (double) n);
	tap_ok(rate <= hi * expect && rate >= lo * expect,
		   "fuse%d: false-positive rate %.3g within [%.2f, %.2f] x 2^-%d",
		   width, rate, lo, hi, width);
	SrFuseFree(f);
	free(k);
}

static void
CheckSmall(int width)
{
	size_t		sizes[] = {0, 1, 2, 3, 10, 1000};

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
	{
		size_t		n = sizes[s];
		uint64_t   *k = Members(n);
		SrFuse	   *f = NULL;
		SrMemStatus st = SrFuseBuild(k, n, width, NULL, &f);
		size_t		fp = 0;

		if (st == SR_MEM_OK)
			for (size_t i = 0; i < 100000; i++)
				fp += SrFuseContains(f, KeyAt(2 * i + 1));
		tap_ok(st == SR_MEM_OK && SrFuseCount(f) == n &&
			   FalseNegatives(f, k, n) == 0 &&
			   (n > 0 || fp == 0) && fp < 100000 * 4.0 / (1 << width) + 10,
			   "fuse%d: %zu keys, all found, %zu/100000 false positives",
			   width, n, fp);
		SrFuseFree(f);
		free(k);
	}
}

static void
CheckAdversarial(int width)
{
	size_t		n = 1000000;
	uint64_t   *k = malloc(n * sizeof(uint64_t));
	SrFuse	   *f = NULL;
	SrMemStatus st;

	for (size_t i = 0; i < n; i++)
		k[i] = i;
	st = SrFuseBuild(k, n, width, NULL, &f);
	tap_ok(st == SR_MEM_OK && FalseNegatives(f, k, n) == 0,
		   "fuse%d: sequential integers 0..%zu", width, n - 1);
	SrFuseFree(f);
	for (size_t i = 0; i < n; i++)
		k[i] = ((uint64_t) i << 32) | UINT64_C(0xdeadbeef);
	st = SrFuseBuild(k, n, width, NULL, &f);
	tap_ok(st == SR_MEM_OK && FalseNegatives(f, k, n) == 0,
		   "fuse%d: %zu keys equal in their low 32 bits", width, n);
	SrFuseFree(f);
	for (size_t i = 0; i < n; i++)
		k[i] = XXH3_64bits_withSeed(&i, sizeof(i), 42);
	st = SrFuseBuild(k, n, width, NULL, &f);
	tap_ok(st == SR_MEM_OK && FalseNegatives(f, k, n) == 0,
		   "fuse%d: xxh3 of sequential integers", width);
	SrFuseFree(f);
	free(k);
}

static void
CheckDuplicates(void)
{
	size_t		n = 100000;
	uint64_t   *k = malloc(3 * n * sizeof(uint64_t));
	uint64_t	s = 7;
	SrFuse	   *f = NULL;
	SrMemStatus st;

	for (size_t i = 0; i < 3 * n; i++)
		k[i] = KeyAt(2 * (i % n));
	/* shuffle so that duplicates are not adjacent */
	for (size_t i = 3 * n - 1; i > 0; i--)
	{
		size_t		j = tap_splitmix(&s) % (i + 1);
		uint64_t	t = k[i];

		k[i] = k[j];
		k[j] = t;
	}
	st = SrFuseBuild(k, 3 * n, 16, NULL, &f);
	tap_ok(st == SR_MEM_OK && SrFuseCount(f) == n &&
		   FalseNegatives(f, k, 3 * n) == 0,
		   "fuse16: each of %zu keys three times: %zu distinct, all found", n, n);
	SrFuseFree(f);
	/* all keys equal */
	for (size_t i = 0; i < n; i++)
		k[i] = 12345;
	st = SrFuseBuild(k, n, 8, NULL, &f);
	tap_ok(st == SR_MEM_OK && SrFuseCount(f) == 1 && SrFuseContains(f, 12345),
		   "fuse8: %zu copies of one key", n);
	SrFuseFree(f);
	free(k);
}

static void
CheckSerialize(int width)
{
	size_t		n = 200000;
	uint64_t   *k = Members(n);
	SrFuse	   *f = NULL,
			   *v = NULL;
	SrMemStatus st;
	size_t		size,
				same = 0;
	uint8_t    *buf;
	int			bad = 0;

	st = SrFuseBuild(k, n, width, NULL, &f);
	size = SrFuseSerializedSize(f);
	buf = tap_aligned(size);
	tap_ok(st == SR_MEM_OK && SrFuseSerialize(f, buf) == size,
		   "fuse%d: serialize writes its announced %zu bytes", width, size);
	st = SrFuseView(buf, size, NULL, &v);
	if (st == SR_MEM_OK)
	{
		for (size_t i = 0; i < 2 * n; i++)
			same += SrFuseContains(f, KeyAt(i)) == SrFuseContains(v, KeyAt(i));
	}
	tap_ok(st == SR_MEM_OK && same == 2 * n && SrFuseCount(v) == n &&
		   FalseNegatives(v, k, n) == 0,
		   "fuse%d: a view answers as the original on %zu keys", width, 2 * n);
	SrFuseFree(v);
	/* rejected: short, long, misaligned, and a flipped byte in the header */
	bad += SrFuseView(buf, size - 1, NULL, &v) == SR_MEM_CORRUPT;
	bad += SrFuseView(buf, size + 8, NULL, &v) == SR_MEM_CORRUPT;
	bad += SrFuseView(buf, 47, NULL, &v) == SR_MEM_CORRUPT;
	memmove(buf + 1, buf, size);
	bad += SrFuseView(buf + 1, size, NULL, &v) == SR_MEM_CORRUPT;
	memmove(buf, buf + 1, size);
	for (int off = 0; off < 48; off++)
	{
		if (off >= 24 && off < 40)
			continue;			/* seed and key count: only a checksum (the
								 * segment's CRC-32C) can tell a flip there */
		buf[off] ^= 0x10;
		if (SrFuseView(buf, size, NULL, &v) == SR_MEM_CORRUPT)
			bad++;
		else
			tap_diag("flip at header byte %d accepted", off);
		buf[off] ^= 0x10;
	}
	tap_ok(bad == 4 + 32, "fuse%d: truncated, misaligned or altered headers rejected (%d/36)",
		   width, bad);
	free(buf);
	SrFuseFree(f);
	free(k);

	/* the empty filter too */
	st = SrFuseBuild(NULL, 0, width, NULL, &f);
	size = SrFuseSerializedSize(f);
	buf = tap_aligned(size);
	SrFuseSerialize(f, buf);
	st = SrFuseView(buf, size, NULL, &v);
	tap_ok(st == SR_MEM_OK && SrFuseCount(v) == 0 && !SrFuseContains(v, 1),
		   "fuse%d: empty filter round trip", width);
	SrFuseFree(v);
	SrFuseFree(f);
	free(buf);
}

static void
CheckAllocator(void)
{
	TapAllocStats stats = {0, 0};
	SrMemAllocator a = {tap_alloc, tap_free, &stats};
	uint64_t   *k = Members(50000);
	SrFuse	   *f = NULL;
	SrMemStatus st = SrFuseBuild(k, 50000, 16, &a, &f);
	long		during = stats.live;

	SrFuseFree(f);
	tap_ok(st == SR_MEM_OK && stats.calls > 0 && during == 2 && stats.live == 0,
		   "fuse16: allocator hook used (%ld calls), 2 blocks kept, none after free",
		   stats.calls);
	tap_ok(SrFuseBuild(k, 10, 12, &a, &f) == SR_MEM_BADARG && stats.live == 0,
		   "fuse: width 12 refused");
	free(k);
}

int
main(int argc, char **argv)
{
	int			big = argc > 1 && strcmp(argv[1], "--quick") != 0;

	(void) big;
	CheckRate(8, 1000000, 10000000, 0.85, 1.15);
	CheckRate(16, 1000000, 10000000, 0.6, 1.4);
	CheckSmall(8);
	CheckSmall(16);
	CheckRate(32, 1000, 1000000, 0.0, 1e6);	/* 32-bit: expect no hit */
	CheckAdversarial(8);
	CheckAdversarial(16);
	CheckDuplicates();
	CheckSerialize(8);
	CheckSerialize(16);
	CheckAllocator();
	tap_plan(tap_count);
	return tap_done();
}
