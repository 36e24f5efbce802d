/*
 * membership_bench.c - space and time of the membership module's parts
 *
 *   make -C test/unit bench && test/bench/membership_bench [n ...]
 *
 * For each n (default 1M and 10M random 64-bit keys): bits per key (the
 * serialized size), build ns per key, and lookup ns: the queries (members,
 * and for the filter also non-members) are shuffled, timed in batches of
 * 1000 independent lookups, and the median and p99 batch are reported per
 * lookup.  Run by hand; not part of CI.
 */
#include "fuse.h"
#include "mphf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 1000

static uint64_t
SplitMix(uint64_t *s)
{
	uint64_t	z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t
KeyAt(uint64_t i)
{
	uint64_t	s = UINT64_C(99) + i * UINT64_C(0x9e3779b97f4a7c15);

	return SplitMix(&s);
}

static double
Now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
CmpDouble(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static void
Shuffle(uint64_t *a, size_t n, uint64_t seed)
{
	for (size_t i = n - 1; i > 0; i--)
	{
		size_t		j = SplitMix(&seed) % (i + 1);
		uint64_t	t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

static volatile uint64_t sink;

typedef enum
{
	FUSE,
	MPHF
} Kind;

/* median and p99 ns per lookup over batches of the queries q[0..nq) */
static void
TimeLookups(Kind kind, const void *s, const uint64_t *q, size_t nq,
			double *median, double *p99)
{
	size_t		nb = nq / BATCH;
	double	   *t = malloc(nb * sizeof(double));
	uint64_t	acc = 0;

	/* one untimed pass first: page faults, caches, clock ramp-up */
	for (size_t i = 0; i < nq; i++)
		acc += kind == FUSE ? SrFuseContains(s, q[i]) : SrMphfLookup(s, q[i]);
	for (size_t b = 0; b < nb; b++)
	{
		const uint64_t *qb = q + b * BATCH;
		double		t0 = Now();

		if (kind == FUSE)
			for (int i = 0; i < BATCH; i++)
				acc += SrFuseContains(s, qb[i]);
		else
			for (int i = 0; i < BATCH; i++)
				acc += SrMphfLookup(s, qb[i]);
		t[b] = (Now() - t0) * 1e9 / BATCH;
	}
	sink = acc;
	qsort(t, nb, sizeof(double), CmpDouble);
	*median = t[nb / 2];
	*p99 = t[(size_t) (nb * 0.99)];
	free(t);
}

static void
Bench(size_t n)
{
	uint64_t   *keys = malloc(n * sizeof(uint64_t));
	uint64_t   *members = malloc(n * sizeof(uint64_t));
	uint64_t   *others = malloc(n * sizeof(uint64_t));
	double		t0,
				med,
				p99,
				medMiss,
				p99Miss;

	for (size_t i = 0; i < n; i++)
	{
		keys[i] = KeyAt(2 * i);
		others[i] = KeyAt(2 * i + 1);
	}
	memcpy(members, keys, n * sizeof(uint64_t));
	Shuffle(members, n, 1);

	for (int w = 8; w <= 16; w += 8)
	{
		SrFuse	   *f;

		t0 = Now();
		if (SrFuseBuild(keys, n, w, NULL, &f) != SR_MEM_OK)
		{
			fprintf(stderr, "fuse%d build failed\n", w);
			exit(1);
		}
		t0 = Now() - t0;
		TimeLookups(FUSE, f, members, n, &med, &p99);
		TimeLookups(FUSE, f, others, n, &medMiss, &p99Miss);
		printf("| fuse%-2d | %9zu | %6.2f | %6.0f | %5.1f / %5.1f | %5.1f / %5.1f |\n",
			   w, n, 8.0 * SrFuseSerializedSize(f) / n, t0 * 1e9 / n,
			   med, p99, medMiss, p99Miss);
		SrFuseFree(f);
	}
	{
		SrMphf	   *h;

		t0 = Now();
		if (SrMphfBuild(keys, n, NULL, &h) != SR_MEM_OK)
		{
			fprintf(stderr, "mphf build failed\n");
			exit(1);
		}
		t0 = Now() - t0;
		TimeLookups(MPHF, h, members, n, &med, &p99);
		printf("| mphf   | %9zu | %6.2f | %6.0f | %5.1f / %5.1f |       -       |\n",
			   n, 8.0 * SrMphfSerializedSize(h) / n, t0 * 1e9 / n, med, p99);
		SrMphfFree(h);
	}
	fflush(stdout);
	free(keys);
	free(members);
	free(others);
}

int
main(int argc, char **argv)
{
	printf("| part   |      keys | bits/key | build ns/key | member ns median / p99 | non-member ns median / p99 |\n");
	printf("|--------|-----------|----------|--------------|------------------------|----------------------------|\n");
	if (argc > 1)
		for (int i = 1; i < argc; i++)
			Bench((size_t) strtoull(argv[i], NULL, 10));
	else
	{
		Bench(1000000);
		Bench(10000000);
	}
	return 0;
}
