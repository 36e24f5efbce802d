/*
 * membership_bench.c - the membership index against a plain baseline
 *
 *   make -C test/unit bench && test/bench/membership_bench [options] [n ...]
 *
 *   --mix issue|light   the set sizes: "issue" is issue 10's realistic mix
 *                       (70 % of keys in 1 shape, 20 % in 2-3, 10 % in
 *                       4-20: 2.4 shapes a key); "light" keeps its ranges
 *                       at a mean of 1.2 (93 % / 6 % / 1 %); default both
 *   --shapes S          shape ids drawn from S (default 1000)
 *   --dir D             where segments are written (default /tmp)
 *   --no-parts          skip the table of the seed's parts (fuse, MPH)
 *   --probe             only: a member lookup's time, step by step
 *
 * For each n (default 1M and 10M keys): the index is bulk-loaded (build
 * ns/key), churned by 10 % of n changes (its longest rebuild pause), then
 * given 4.8 % of n changes so that each partition's delta sits just under
 * its 5 % threshold; then bytes per key (everything the index holds),
 * member and non-member lookups in random order (timed in batches of 1000
 * independent lookups: median and p99 batch, in ns a lookup), and a
 * segment's write and its load with full validation (mmap + CRC of every
 * byte, file in the page cache).  The baseline (PostgreSQL's simplehash of
 * key -> sorted int64 array) gets the same keys, changes and queries; its
 * "pause" is its longest batch of 1024 inserts (a table doubling).
 * Run by hand; not part of CI.
 */
#include "fuse.h"
#include "mix.h"
#include "membership.h"
#include "membint.h"
#include "mphf.h"
#include "simplehash_baseline.h"

#include <sys/stat.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 1000


static uint64_t
KeyAt(uint64_t i)
{
	uint64_t	s = UINT64_C(99) + i * UINT64_C(0x9e3779b97f4a7c15);

	return SrNextSeed(&s);
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

/* Fisher-Yates over n elements of elsize bytes */
static void
Shuffle(void *a, size_t n, size_t elsize, uint64_t seed)
{
	char	   *p = a;
	char		t[64];

	for (size_t i = n - 1; n > 0 && i > 0; i--)
	{
		size_t		j = SrNextSeed(&seed) % (i + 1);

		memcpy(t, p + i * elsize, elsize);
		memcpy(p + i * elsize, p + j * elsize, elsize);
		memcpy(p + j * elsize, t, elsize);
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
BenchParts(size_t n)
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
	Shuffle(members, n, sizeof(uint64_t), 1);

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


/* ---- the whole index ---- */

typedef struct Mix
{
	const char *name;
	int			p1,
				p2;				/* percent in one shape, in 2-3; rest 4-20 */
} Mix;

static const Mix mixes[] = {{"issue", 70, 20}, {"light", 93, 6}};
static int	nshapes = 1000;
static const char *segdir = "/tmp";

static int
RandomSet(uint64_t *rs, const Mix *mix, int64_t *ids)
{
	int			r = (int) (SrNextSeed(rs) % 100);
	int			n = r < mix->p1 ? 1 : r < mix->p1 + mix->p2 ? 2 + (int) (SrNextSeed(rs) % 2)
		: 4 + (int) (SrNextSeed(rs) % 17);

	for (int i = 0; i < n;)
	{
		int64_t		id = 1 + (int64_t) (SrNextSeed(rs) % nshapes);
		int			dup = 0;

		for (int j = 0; j < i; j++)
			dup |= ids[j] == id;
		if (!dup)
			ids[i++] = id;
	}
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && ids[j - 1] > ids[j]; j--)
		{
			int64_t		t = ids[j];

			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	return n;
}

typedef struct Work
{
	SrMembKey  *keys;			/* members, then room for new keys */
	size_t		nkeys;
	size_t		cap;
} Work;

/* one change, applied to the index or the baseline (or both) */
typedef struct Change
{
	int			op;				/* 0 set new key, 1 add to a member, 2 remove a member */
	SrMembKey	key;
	int64_t		ids[20];
	int			n;
} Change;

static void
MakeChange(uint64_t *rs, const Mix *mix, Work *w, Change *c)
{
	uint32_t	r = (uint32_t) (SrNextSeed(rs) % 4);

	if (r < 2 || w->nkeys == 0)
	{
		c->op = 0;
		c->key = (SrMembKey) {SrNextSeed(rs), SrNextSeed(rs)};
		c->n = RandomSet(rs, mix, c->ids);
		w->keys[w->nkeys++] = c->key;
	}
	else
	{
		size_t		i = SrNextSeed(rs) % w->nkeys;

		c->key = w->keys[i];
		if (r == 2)
		{
			c->op = 1;
			c->ids[0] = 1 + (int64_t) (SrNextSeed(rs) % nshapes);
		}
		else
		{
			c->op = 2;
			w->keys[i] = w->keys[--w->nkeys];
		}
	}
}

static void
ApplyIndex(SrMemb *m, const Change *c)
{
	if (c->op == 0)
		SrMembSet(m, c->key, c->ids, c->n);
	else if (c->op == 1)
		SrMembAdd(m, c->key, c->ids[0]);
	else
		SrMembRemoveKey(m, c->key);
}

static void
ApplyBase(ShBase *b, const Change *c)
{
	int64_t		cur[64];
	int			n;

	if (c->op == 0)
		ShSet(b, c->key.hi, c->key.lo, c->ids, c->n);
	else if (c->op == 1)
	{
		n = ShLookup(b, c->key.hi, c->key.lo, cur, 63);
		for (int i = 0; i < n; i++)
			if (cur[i] == c->ids[0])
				return;
		cur[n++] = c->ids[0];
		for (int j = n - 1; j > 0 && cur[j - 1] > cur[j]; j--)
		{
			int64_t		t = cur[j];

			cur[j] = cur[j - 1];
			cur[j - 1] = t;
		}
		ShSet(b, c->key.hi, c->key.lo, cur, n);
	}
	else
		ShDelete(b, c->key.hi, c->key.lo);
}

typedef enum
{
	Q_INDEX,
	Q_BASE
} QKind;

static void
TimeQueries(QKind kind, void *s, const SrMembKey *q, size_t nq, double *median, double *p99)
{
	size_t		nb = nq / BATCH;
	double	   *t = malloc(nb * sizeof(double));
	uint64_t	acc = 0;
	int64_t		ids[64];

	for (size_t i = 0; i < nq; i++)
		acc += kind == Q_INDEX ? SrMembLookup(s, q[i], ids, 64) : ShLookup(s, q[i].hi, q[i].lo, ids, 64);
	for (size_t b = 0; b < nb; b++)
	{
		const SrMembKey *qb = q + b * BATCH;
		double		t0 = Now();

		if (kind == Q_INDEX)
			for (int i = 0; i < BATCH; i++)
			{
				int			n = SrMembLookup(s, qb[i], ids, 64);

				acc += n + (n ? ids[0] : 0);
			}
		else
			for (int i = 0; i < BATCH; i++)
			{
				int			n = ShLookup(s, qb[i].hi, qb[i].lo, ids, 64);

				acc += n + (n ? ids[0] : 0);
			}
		t[b] = (Now() - t0) * 1e9 / BATCH;
	}
	sink = acc;
	qsort(t, nb, sizeof(double), CmpDouble);
	*median = t[nb / 2];
	*p99 = t[(size_t) (nb * 0.99)];
	free(t);
}

static void
BenchIndex(size_t n, const Mix *mix)
{
	uint64_t	rs = 12345 + n;
	size_t		churn = n / 10,
				delta = n * 48 / 1000;
	Work		w = {malloc((n + churn + delta) * sizeof(SrMembKey)), 0, n + churn + delta};
	uint64_t   *start = malloc((n + 1) * sizeof(uint64_t));
	int64_t    *ids = malloc(n * 20 * sizeof(int64_t));
	Change	   *changes = malloc((churn + delta) * sizeof(Change));
	SrMembKey  *members,
			   *others;
	size_t		nq;
	uint64_t	pos = 0,
				lsn;
	SrMemb	   *m,
			   *m2;
	ShBase	   *sb;
	SrMembStats st;
	double		t0,
				build,
				pause,
				bbuild,
				bpause = 0,
				med,
				p99,
				mmed,
				mp99,
				bmed,
				bp99,
				bmmed,
				bmp99,
				wr,
				ld;
	char		path[1024],
				err[SR_MEMB_ERRLEN];
	struct stat sbuf;
	double		shapes_per_key;

	for (size_t i = 0; i < n; i++)
	{
		w.keys[i] = (SrMembKey) {SrNextSeed(&rs), SrNextSeed(&rs)};
		start[i] = pos;
		pos += RandomSet(&rs, mix, ids + pos);
	}
	start[n] = pos;
	w.nkeys = n;
	shapes_per_key = (double) pos / n;
	for (size_t i = 0; i < churn + delta; i++)
		MakeChange(&rs, mix, &w, &changes[i]);

	/* the index */
	SrMembCreate(NULL, &m);
	t0 = Now();
	if (SrMembLoad(m, w.keys, n, start, ids) != SR_MEM_OK)
	{
		fprintf(stderr, "bulk load failed\n");
		exit(1);
	}
	build = (Now() - t0) * 1e9 / n;
	for (size_t i = 0; i < churn; i++)
		ApplyIndex(m, &changes[i]);
	SrMembGetStats(m, &st);
	pause = st.max_pause_ms;
	SrMembRebuildAll(m);
	for (size_t i = churn; i < churn + delta; i++)
		ApplyIndex(m, &changes[i]);
	SrMembGetStats(m, &st);

	nq = w.nkeys < 2000000 ? w.nkeys : 2000000;
	members = malloc(nq * sizeof(SrMembKey));
	others = malloc(nq * sizeof(SrMembKey));
	Shuffle(w.keys, w.nkeys, sizeof(SrMembKey), 7);
	memcpy(members, w.keys, nq * sizeof(SrMembKey));
	for (size_t i = 0; i < nq; i++)
		others[i] = (SrMembKey) {SrNextSeed(&rs), SrNextSeed(&rs)};
	TimeQueries(Q_INDEX, m, members, nq, &mmed, &mp99);
	TimeQueries(Q_INDEX, m, others, nq, &med, &p99);

	snprintf(path, sizeof(path), "%s/membership_bench.%d.seg", segdir, (int) getpid());
	t0 = Now();
	if (SrMembWriteSegment(m, path, 1, 1, err) != SR_MEM_OK)
	{
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	wr = (Now() - t0) * 1e3;
	stat(path, &sbuf);
	/* load twice: the second is the one timed (page cache warm both times) */
	for (int k = 0; k < 2; k++)
	{
		t0 = Now();
		if (SrMembLoadSegment(path, 1, NULL, &m2, &lsn, err) != SR_MEM_OK)
		{
			fprintf(stderr, "%s\n", err);
			exit(1);
		}
		ld = (Now() - t0) * 1e3;
		SrMembFree(m2);
	}
	unlink(path);
	printf("| index    | %-5s | %5.2f | %9zu | %5.2f | %4.1f %% | %5.0f | %5.1f / %5.1f | %5.1f / %5.1f | %5.2f (%llu rebuilds) | %6.1f | %6.1f / %6.1f |\n",
		   mix->name, shapes_per_key, (size_t) st.keys, (double) st.bytes_total / st.keys,
		   100.0 * st.overlay_entries / st.keys, build, mmed, mp99, med, p99, pause,
		   (unsigned long long) st.rebuilds, sbuf.st_size / 1048576.0, wr, ld);
	printf("|          |       | bytes/key: entries + buckets %.2f, pool %.2f, filter %.2f, overlay %.2f, other %.2f |||||||||\n",
		   (double) (st.bytes_base - st.bytes_pool - st.bytes_filter) / st.keys,
		   (double) st.bytes_pool / st.keys, (double) st.bytes_filter / st.keys,
		   (double) st.bytes_overlay / st.keys, (double) st.bytes_other / st.keys);
	fflush(stdout);
	SrMembFree(m);

	/* the baseline: same keys, same changes, same queries */
	sb = ShCreate(0);
	{
		/* regenerate the original key order (the loader's) */
		uint64_t	rs2 = 12345 + n;
		int64_t		set[20];

		t0 = Now();
		for (size_t i = 0; i < n; i += 1024)
		{
			double		g0 = Now(),
						g;
			size_t		e = i + 1024 < n ? i + 1024 : n;

			for (size_t j = i; j < e; j++)
			{
				SrMembKey	k = {SrNextSeed(&rs2), SrNextSeed(&rs2)};
				int			c = RandomSet(&rs2, mix, set);

				ShSet(sb, k.hi, k.lo, set, c);
			}
			g = (Now() - g0) * 1e3;
			if (g > bpause)
				bpause = g;
		}
		bbuild = (Now() - t0) * 1e9 / n;
	}
	for (size_t i = 0; i < churn + delta; i++)
		ApplyBase(sb, &changes[i]);
	TimeQueries(Q_BASE, sb, members, nq, &bmmed, &bmp99);
	TimeQueries(Q_BASE, sb, others, nq, &bmed, &bp99);
	printf("| baseline | %-5s | %5.2f | %9zu | %5.2f |   –    | %5.0f | %5.1f / %5.1f | %5.1f / %5.1f | %5.2f | – | – |\n",
		   mix->name, shapes_per_key, w.nkeys, (double) ShBytes(sb) / w.nkeys, bbuild,
		   bmmed, bmp99, bmed, bp99, bpause);
	fflush(stdout);
	ShFree(sb);
	free(w.keys);
	free(start);
	free(ids);
	free(changes);
	free(members);
	free(others);
}

/*
 * --probe: where a member lookup's time goes, one step at a time, on n
 * loaded keys (one shape each): the filter word alone, the bucket word
 * alone, the base lookup (bucket word, then its entries), the whole lookup.
 */
static void
Probe(size_t n)
{
	uint64_t	rs = 99;
	size_t		nq = 2000000;
	SrMembKey  *k = malloc(n * sizeof(SrMembKey)),
			   *q = malloc(nq * sizeof(SrMembKey));
	uint64_t   *start = malloc((n + 1) * sizeof(uint64_t));
	int64_t    *ids = malloc(n * sizeof(int64_t)),
				out[8];
	uint32_t	loc[8];
	SrMemb	   *m;
	uint64_t	acc = 0;
	double		t[4];

	for (size_t i = 0; i < n; i++)
	{
		k[i] = (SrMembKey) {SrNextSeed(&rs), SrNextSeed(&rs)};
		start[i] = i;
		ids[i] = 1 + (int64_t) (SrNextSeed(&rs) % nshapes);
	}
	start[n] = n;
	SrMembCreate(NULL, &m);
	SrMembLoad(m, k, n, start, ids);
	for (size_t i = 0; i < nq; i++)
		q[i] = k[SrNextSeed(&rs) % n];
	for (int step = 0; step < 4; step++)
	{
		double		t0 = Now();

		for (size_t i = 0; i < nq; i++)
		{
			MId			id = MIdFromKey(q[i]);
			MPart	   *p = m->dir[MIdPrefix(id, m->dirbits)];

			if (step == 0)
				acc += p->bloom[MBloomIndex(id, p->bloom_words)] & MBloomMask(id);
			else if (step == 1)
				acc += p->bucket[p->bbits ? (size_t) (id >> p->rbits) & (((size_t) 1 << p->bbits) - 1) : 0];
			else if (step == 2)
				acc += MPartLookupBase(p, id, loc, 8);
			else
				acc += SrMembLookup(m, q[i], out, 8);
		}
		t[step] = (Now() - t0) * 1e9 / nq;
	}
	sink = acc;
	printf("| %9zu | %6.1f | %6.1f | %6.1f | %6.1f |\n", n, t[0], t[1], t[2], t[3]);
	SrMembFree(m);
	free(k);
	free(q);
	free(start);
	free(ids);
}

int
main(int argc, char **argv)
{
	size_t		sizes[16];
	int			nsizes = 0;
	int			parts = 1,
				probe = 0;
	const Mix  *only = NULL;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--mix") == 0 && i + 1 < argc)
		{
			i++;
			only = strcmp(argv[i], "light") == 0 ? &mixes[1] : &mixes[0];
		}
		else if (strcmp(argv[i], "--shapes") == 0 && i + 1 < argc)
			nshapes = atoi(argv[++i]);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			segdir = argv[++i];
		else if (strcmp(argv[i], "--no-parts") == 0)
			parts = 0;
		else if (strcmp(argv[i], "--probe") == 0)
			probe = 1;
		else if (nsizes < 16)
			sizes[nsizes++] = (size_t) strtoull(argv[i], NULL, 10);
	}
	if (nsizes == 0)
	{
		sizes[nsizes++] = 1000000;
		sizes[nsizes++] = 10000000;
	}
	if (probe)
	{
		printf("Member lookup, step by step (ns a lookup, 2M lookups in random order)\n\n");
		printf("|      keys | filter word | bucket word | base lookup | whole lookup |\n|---|---|---|---|---|\n");
		for (int i = 0; i < nsizes; i++)
			Probe(sizes[i]);
		return 0;
	}
	printf("Membership index and baseline (%d shapes; ns per lookup, median / p99 of batches)\n\n", nshapes);
	printf("| structure | mix | shapes/key | keys | bytes/key | delta | build ns/key | member ns | non-member ns | longest pause ms | segment MB | write / load+validate ms |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < nsizes; i++)
		for (int k = 0; k < 2; k++)
			if (only == NULL || only == &mixes[k])
				BenchIndex(sizes[i], &mixes[k]);
	if (parts)
	{
		printf("\nThe seed's parts alone (random 64-bit keys)\n\n");
		printf("| part   |      keys | bits/key | build ns/key | member ns median / p99 | non-member ns median / p99 |\n");
		printf("|--------|-----------|----------|--------------|------------------------|----------------------------|\n");
		for (int i = 0; i < nsizes; i++)
			BenchParts(sizes[i]);
	}
	return 0;
}
