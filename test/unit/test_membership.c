/*
 * test_membership.c - the membership index against a plain reference map
 *
 *   test_membership [--quick] [seed]
 *
 * CRC-32C, canonical keys, pool sets, partitions with large and escaped
 * sets, then >= 1M seeded random operations (adds, removes, sets, key
 * removals, shape drops, clears, rebuilds, segment round trips, redo log
 * restarts) checked against a reference after every lookup and in full
 * sweeps, then every byte flip and truncation of a small segment, and the
 * redo log's torn tails and damage.  Prints its seed; pass it to re-run.
 */
#include "crc32c.h"
#include "keycanon.h"
#include "membership.h"
#include "membint.h"
#include "tap.h"

#include <sys/stat.h>
#include <unistd.h>

static uint64_t rng;

static uint64_t
Rand(void)
{
	return tap_splitmix(&rng);
}

static uint32_t
RandBelow(uint32_t n)
{
	return (uint32_t) (Rand() % n);
}

static char dir[256];

static void
PathOf(char *buf, const char *name)
{
	snprintf(buf, 512, "%s/%s", dir, name);
}

/* ---- small parts ---- */

static void
TestCrc(void)
{
	uint8_t		buf[4099];
	int			same = 1;

	tap_ok(SrCrc32c("123456789", 9) == UINT32_C(0xE3069283), "crc32c check value");
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t) Rand();
	for (int t = 0; t < 200; t++)
	{
		size_t		off = RandBelow(64),
					len = RandBelow(sizeof(buf) - 64);

		if (SrCrc32cUpdate(7, buf + off, len) != SrCrc32cUpdateSoftware(7, buf + off, len))
			same = 0;
	}
	tap_ok(same, "crc32c: instruction and table agree on 200 random slices");
}

static SrMembKey
KeyOf(SrKeyBuf *kb)
{
	return SrMembKeyHash(kb->data, kb->len, 42);
}

static int
SameKey(SrMembKey a, SrMembKey b)
{
	return a.hi == b.hi && a.lo == b.lo;
}

static SrMembKey
NumKey(const char *a)
{
	SrKeyBuf	kb;
	SrMembKey	k;

	SrKeyBufInit(&kb, NULL);
	SrKeyAddNumeric(&kb, a);
	k = KeyOf(&kb);
	SrKeyBufFree(&kb);
	return k;
}

static SrMembKey
TextPair(const char *a, const char *b)
{
	SrKeyBuf	kb;
	SrMembKey	k;

	SrKeyBufInit(&kb, NULL);
	SrKeyAddRecord(&kb, 2);
	SrKeyAddBytes(&kb, a, strlen(a), false);
	SrKeyAddBytes(&kb, b, strlen(b), false);
	k = KeyOf(&kb);
	SrKeyBufFree(&kb);
	return k;
}

static void
TestCanon(void)
{
	SrKeyBuf	kb;
	SrMembKey	k1,
				k2;
	uint8_t		u1[16] = {1},
				u2[16] = {2};
	SrKeyBuf	bad;

	tap_ok(SameKey(NumKey("1.50"), NumKey("01.5")) && SameKey(NumKey("1.5"), NumKey("+1.500")),
		   "numeric: 1.50 = 01.5 = +1.500");
	tap_ok(SameKey(NumKey("0"), NumKey("-0.000")) && SameKey(NumKey("0.00"), NumKey("000")),
		   "numeric: zero has one form");
	tap_ok(SameKey(NumKey("0.0012"), NumKey("000.001200")), "numeric: 0.0012 = 000.001200");
	tap_ok(!SameKey(NumKey("12"), NumKey("1.2")) && !SameKey(NumKey("120"), NumKey("12")) &&
		   !SameKey(NumKey("-1"), NumKey("1")) && !SameKey(NumKey("0.012"), NumKey("0.12")),
		   "numeric: 12, 1.2, 120, -1, 0.012 all differ");
	tap_ok(SameKey(NumKey("NaN"), NumKey("NaN")) && !SameKey(NumKey("Infinity"), NumKey("-Infinity")),
		   "numeric: NaN and the infinities");
	SrKeyBufInit(&bad, NULL);
	tap_ok(!SrKeyAddNumeric(&bad, "1.2.3") && !SrKeyAddNumeric(&bad, "") &&
		   !SrKeyAddNumeric(&bad, "12a") && bad.len == 0, "numeric: malformed text refused");
	SrKeyBufFree(&bad);
	tap_ok(!SameKey(TextPair("ab", "c"), TextPair("a", "bc")) &&
		   !SameKey(TextPair("", "abc"), TextPair("abc", "")),
		   "composite: ('ab','c') differs from ('a','bc')");

	SrKeyBufInit(&kb, NULL);
	SrKeyAddFloat(&kb, 0.0);
	k1 = KeyOf(&kb);
	SrKeyBufReset(&kb);
	SrKeyAddFloat(&kb, -0.0);
	k2 = KeyOf(&kb);
	tap_ok(SameKey(k1, k2), "float: -0 = 0");
	SrKeyBufReset(&kb);
	SrKeyAddBytes(&kb, "ab  ", 4, true);
	k1 = KeyOf(&kb);
	SrKeyBufReset(&kb);
	SrKeyAddBytes(&kb, "ab", 2, true);
	k2 = KeyOf(&kb);
	tap_ok(SameKey(k1, k2), "bpchar: trailing spaces do not count");
	SrKeyBufReset(&kb);
	SrKeyAddBytes(&kb, "ab  ", 4, false);
	k1 = KeyOf(&kb);
	tap_ok(!SameKey(k1, k2), "text: trailing spaces count");
	SrKeyBufReset(&kb);
	SrKeyAddUuid(&kb, u1);
	k1 = KeyOf(&kb);
	SrKeyBufReset(&kb);
	SrKeyAddUuid(&kb, u2);
	k2 = KeyOf(&kb);
	tap_ok(!SameKey(k1, k2), "uuid: distinct values, distinct keys");
	SrKeyBufReset(&kb);
	SrKeyAddInt(&kb, 1);
	k1 = KeyOf(&kb);
	SrKeyBufReset(&kb);
	SrKeyAddInt(&kb, 256);
	k2 = KeyOf(&kb);
	tap_ok(!SameKey(k1, k2), "int: 1 and 256 differ");
	SrKeyBufFree(&kb);
}

static void
TestPool(void)
{
	uint32_t	in[300],
				out[300];
	uint8_t		buf[4096];
	int			good = 1;

	for (int t = 0; t < 20000 && good; t++)
	{
		int			n = 2 + RandBelow(t % 10 == 0 ? 290 : 8);
		uint32_t	cur = RandBelow(1000);
		const uint8_t *next;
		uint8_t    *end;

		for (int i = 0; i < n; i++)
		{
			in[i] = cur;
			/* gaps from 1 to 2^21: one to four ULEB bytes */
			cur += 1 + (uint32_t) (Rand() >> (43 + RandBelow(21)));
		}
		end = MPoolPut(buf, in, n);
		if ((size_t) (end - buf) != MPoolLen(in, n) ||
			MPoolGet(buf, end, out, 300, &next) != n || next != end ||
			memcmp(in, out, n * 4) != 0 ||
			MPoolGet(buf, end - 1, out, 300, &next) != -1)
			good = 0;
	}
	tap_ok(good, "pool: 20,000 sets round trip, exact length, a cut set is refused");
}

/* ---- the reference ---- */

typedef struct RefSet
{
	int64_t    *ids;
	int			n;
	int			cap;
} RefSet;

typedef struct Ref
{
	SrMembKey  *keys;
	RefSet	   *sets;
	uint32_t	nkeys;
} Ref;

static void
RefPut(RefSet *s, const int64_t *ids, int n)
{
	if (n > s->cap)
	{
		s->cap = n + 4;
		s->ids = realloc(s->ids, s->cap * sizeof(int64_t));
	}
	if (n)
		memcpy(s->ids, ids, n * sizeof(int64_t));
	s->n = n;
}

static int
CmpI64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

static int
RefHas(const RefSet *s, int64_t id)
{
	for (int i = 0; i < s->n; i++)
		if (s->ids[i] == id)
			return i;
	return -1;
}

/* the reference's Add: id into the sorted set, if not there */
static void
RefAdd(RefSet *s, int64_t id)
{
	int64_t		tmp[SR_MEMB_MAX_SET];

	if (RefHas(s, id) >= 0)
		return;
	if (s->n)
		memcpy(tmp, s->ids, s->n * 8);
	tmp[s->n] = id;
	qsort(tmp, s->n + 1, 8, CmpI64);
	RefPut(s, tmp, s->n + 1);
}

static void
RefDrop(Ref *r, int64_t id)
{
	for (uint32_t k = 0; k < r->nkeys; k++)
	{
		int			i = RefHas(&r->sets[k], id);

		if (i >= 0)
		{
			memmove(r->sets[k].ids + i, r->sets[k].ids + i + 1,
					(r->sets[k].n - i - 1) * sizeof(int64_t));
			r->sets[k].n--;
		}
	}
}

/* the realistic mix: 70 % one shape, 20 % 2-3, 10 % 4-20, of nshapes */
static int
RandomSet(int64_t *ids, int64_t base, int nshapes)
{
	uint32_t	r = RandBelow(100);
	int			n = r < 70 ? 1 : r < 90 ? 2 + RandBelow(2) : 4 + RandBelow(17);

	if (RandBelow(500) == 0)
		n = 100 + RandBelow(400);	/* now and then a key in many shapes */
	if (n > nshapes)
		n = nshapes;
	for (int i = 0; i < n;)
	{
		int64_t		id = base + RandBelow(nshapes);
		int			dup = 0;

		for (int j = 0; j < i; j++)
			dup |= ids[j] == id;
		if (!dup)
			ids[i++] = id;
	}
	qsort(ids, n, sizeof(int64_t), CmpI64);
	return n;
}

static int	mismatches;

static void
CheckKey(SrMemb *m, const Ref *r, uint32_t k, const char *when)
{
	int64_t		got[1024];
	int			n = SrMembLookup(m, r->keys[k], got, 1024);
	const RefSet *s = &r->sets[k];

	if (n != s->n || (n > 0 && memcmp(got, s->ids, n * sizeof(int64_t)) != 0))
	{
		if (mismatches++ < 5)
			tap_diag("%s: key %u: index has %d ids (first %lld), reference %d (first %lld)",
					 when, k, n, n ? (long long) got[0] : 0LL, s->n,
					 s->n ? (long long) s->ids[0] : 0LL);
	}
}

typedef struct IterState
{
	const Ref  *r;
	uint64_t	seen;
	uint64_t	bad;
} IterState;

/* the reference is indexed by key number, the keys carry it in lo */
static bool
IterCheck(SrMembKey key, const int64_t *ids, int n, void *arg)
{
	IterState  *st = arg;
	uint32_t	k = (uint32_t) (key.hi & 0xFFFFF);	/* see MakeKeys */

	st->seen++;
	if (k >= st->r->nkeys || st->r->keys[k].hi != key.hi ||
		st->r->sets[k].n != n || memcmp(st->r->sets[k].ids, ids, n * sizeof(int64_t)) != 0)
		st->bad++;
	return true;
}

static uint64_t
RefMembers(const Ref *r)
{
	uint64_t	c = 0;

	for (uint32_t k = 0; k < r->nkeys; k++)
		c += r->sets[k].n > 0;
	return c;
}

static int
FullCheck(SrMemb *m, const Ref *r, const char *when)
{
	IterState	st = {r, 0, 0};
	int			before = mismatches;
	SrMembStats s;

	for (uint32_t k = 0; k < r->nkeys; k++)
		CheckKey(m, r, k, when);
	SrMembIterate(m, IterCheck, &st);
	SrMembGetStats(m, &s);
	if (st.bad || st.seen != RefMembers(r))
	{
		mismatches++;
		tap_diag("%s: iterate saw %llu keys (%llu wrong), reference has %llu", when,
				 (unsigned long long) st.seen, (unsigned long long) st.bad,
				 (unsigned long long) RefMembers(r));
	}
	return mismatches == before;
}

/*
 * Keys: random 128-bit identities whose hi carries the key number in its
 * low 20 bits (so iteration can be checked), plus adversarial groups that
 * share all of hi but differ in lo's kept bits.
 */
static void
MakeKeys(Ref *r, uint32_t n)
{
	r->nkeys = n;
	r->keys = calloc(n, sizeof(SrMembKey));
	r->sets = calloc(n, sizeof(RefSet));
	for (uint32_t k = 0; k < n; k++)
	{
		r->keys[k].hi = (Rand() & ~UINT64_C(0xFFFFF)) | k;
		r->keys[k].lo = Rand();
	}
}

static int
NonMembersAbsent(SrMemb *m, int count)
{
	int64_t		got[8];

	for (int i = 0; i < count; i++)
	{
		SrMembKey	k = {Rand() | (UINT64_C(1) << 19) << 20, Rand()};

		/* the reference's keys have distinct random hi; these are new */
		if (SrMembLookup(m, k, got, 8) != 0)
			return 0;
	}
	return 1;
}

static void
TestRandomized(uint32_t nkeys, uint32_t nops)
{
	Ref			r;
	SrMemb	   *m;
	SrMembRedo *redo = NULL;
	TapAllocStats as = {0, 0};
	SrMemAllocator alloc = {tap_alloc, tap_free, &as};
	char		seg[512],
				log[512],
				err[SR_MEMB_ERRLEN];
	int64_t		ids[600];
	uint64_t	lsn = 0x1000;
	int			nshapes = 300;
	int64_t		base = 1;
	int			restarts = 0,
				segments = 0,
				drops = 0,
				clears = 0,
				ok_sweeps = 1;
	SrMembStats st;

	PathOf(seg, "rand.seg");
	PathOf(log, "rand.redo");
	unlink(seg);
	unlink(log);
	MakeKeys(&r, nkeys);
	SrMembCreate(&alloc, &m);
	tap_ok(SrMembRedoOpen(log, 16384, &alloc, &redo, err) == SR_MEM_OK, "redo log created");
	SrMembRedoAttach(m, redo);
	mismatches = 0;
	for (uint32_t op = 0; op < nops; op++)
	{
		uint32_t	k = RandBelow(nkeys);
		RefSet	   *s = &r.sets[k];
		uint32_t	what = RandBelow(1000);

		if (what < 350)
		{
			int64_t		id = base + RandBelow(nshapes);

			SrMembAdd(m, r.keys[k], id);
			RefAdd(s, id);
		}
		else if (what < 500)
		{
			int64_t		id = s->n && RandBelow(4) ? s->ids[RandBelow(s->n)] : base + RandBelow(nshapes);
			int			i = RefHas(s, id);

			SrMembRemove(m, r.keys[k], id);
			if (i >= 0)
			{
				memmove(s->ids + i, s->ids + i + 1, (s->n - i - 1) * 8);
				s->n--;
			}
		}
		else if (what < 700)
		{
			int			n = RandomSet(ids, base, nshapes);

			SrMembSet(m, r.keys[k], ids, n);
			RefPut(s, ids, n);
		}
		else if (what < 760)
		{
			SrMembRemoveKey(m, r.keys[k]);
			s->n = 0;
		}
		else
			CheckKey(m, &r, k, "lookup");

		/* rarer events */
		if (RandBelow(40000) == 0)
		{
			int64_t		id = base + RandBelow(nshapes);

			SrMembDropShape(m, id);
			RefDrop(&r, id);
			/* the id is gone for good; a new one takes its place */
			if (RandBelow(2))
				nshapes++;
			drops++;
		}
		if (op == nops / 3 && clears == 0)
		{
			SrMembClear(m);
			for (uint32_t j = 0; j < nkeys; j++)
				r.sets[j].n = 0;
			base += 1000;		/* new shape ids after the TRUNCATE */
			clears++;
		}
		if (RandBelow(20000) == 0)
			SrMembMaintain(m);
		if (RandBelow(100000) == 0)
			SrMembRebuildAll(m);
		/* a transaction ends */
		if (RandBelow(50) == 0)
		{
			lsn += 1 + RandBelow(100);
			if (SrMembRedoCommit(redo, lsn, err) != SR_MEM_OK)
				tap_diag("commit: %s", err);
		}
		/* a checkpoint, then and now a restart from the files */
		if (op > 0 && op % (nops / 8) == 0)
		{
			lsn += 10;
			SrMembRedoCommit(redo, lsn, err);
			if (SrMembWriteSegment(m, seg, 16384, lsn, err) != SR_MEM_OK)
				tap_diag("segment: %s", err);
			SrMembRedoReset(redo, err);
			segments++;
			ok_sweeps &= FullCheck(m, &r, "after a segment write");
		}
		if (op > 0 && op % (nops / 5) == 0 && segments > 0)
		{
			SrMemb	   *m2;
			uint64_t	seglsn,
						last;

			lsn += 10;
			SrMembRedoCommit(redo, lsn, err);
			SrMembRedoClose(redo);
			SrMembFree(m);
			if (SrMembLoadSegment(seg, 16384, &alloc, &m2, &seglsn, err) != SR_MEM_OK)
			{
				tap_diag("load: %s", err);
				break;
			}
			if (SrMembRedoReplay(log, 16384, m2, seglsn, lsn, true, &last, err) != SR_MEM_OK)
				tap_diag("replay: %s", err);
			m = m2;
			SrMembRedoOpen(log, 16384, &alloc, &redo, err);
			SrMembRedoAttach(m, redo);
			restarts++;
			ok_sweeps &= FullCheck(m, &r, "after a restart");
		}
	}
	ok_sweeps &= FullCheck(m, &r, "at the end");
	SrMembRebuildAll(m);
	ok_sweeps &= FullCheck(m, &r, "after rebuilding every partition");
	SrMembGetStats(m, &st);
	tap_diag("%u ops on %u keys: %llu members, %llu partitions, %llu rebuilds (longest %.2f ms), "
			 "%d segments, %d restarts, %d drops, %d clears",
			 nops, nkeys, (unsigned long long) st.keys, (unsigned long long) st.partitions,
			 (unsigned long long) st.rebuilds, st.max_pause_ms, segments, restarts, drops, clears);
	tap_ok(mismatches == 0, "%u random operations: every lookup equals the reference", nops);
	tap_ok(ok_sweeps, "full sweeps and iteration equal the reference");
	tap_ok(st.partitions > 1 && st.rebuilds > 10 && restarts >= 3 && segments >= 5,
		   "the run split partitions, rebuilt, wrote segments and restarted");
	tap_ok(st.keys == RefMembers(&r), "key count is exact once rebuilt (%llu)",
		   (unsigned long long) st.keys);
	tap_ok(NonMembersAbsent(m, 200000), "200,000 non-members are absent");
	SrMembRedoClose(redo);
	SrMembFree(m);
	tap_ok(as.live == 0, "everything allocated through the hook is freed (%ld calls, %ld left)",
		   as.calls, as.live);
	for (uint32_t k = 0; k < nkeys; k++)
		free(r.sets[k].ids);
	free(r.sets);
	free(r.keys);
}

/* ---- bulk load ---- */

static void
TestBulk(uint32_t n)
{
	SrMembKey  *keys = malloc(n * sizeof(SrMembKey));
	uint64_t   *start = malloc((n + 1) * sizeof(uint64_t));
	int64_t    *ids = malloc(((size_t) n * 25 + 600) * sizeof(int64_t));
	SrMemb	   *m;
	uint64_t	pos = 0;
	int			good = 1;
	int64_t		got[64];
	SrMembStats st;

	for (uint32_t i = 0; i < n; i++)
	{
		keys[i] = (SrMembKey) {Rand(), Rand()};
		start[i] = pos;
		pos += RandomSet(ids + pos, 1000, 2000 + (i % 7 == 0 ? 200000 : 0));
		if (pos - start[i] > 20)
			pos = start[i] + 20;
	}
	start[n] = pos;
	SrMembCreate(NULL, &m);
	tap_ok(SrMembLoad(m, keys, n, start, ids) == SR_MEM_OK, "bulk load of %u keys", n);
	for (uint32_t i = 0; i < n && good; i++)
	{
		int			c = SrMembLookup(m, keys[i], got, 64);

		good = c == (int) (start[i + 1] - start[i]) &&
			memcmp(got, ids + start[i], c * sizeof(int64_t)) == 0;
	}
	SrMembGetStats(m, &st);
	tap_ok(good && st.keys == n, "every loaded key has its set (%llu partitions)",
		   (unsigned long long) st.partitions);
	/* the filter: how many non-members get past it */
	{
		uint64_t	pass = 0,
					trials = 1000000;

		for (uint64_t i = 0; i < trials; i++)
		{
			SrMembKey	k = {Rand(), Rand()};
			MId			id = MIdFromKey(k);
			const MPart *p = m->dir[MIdPrefix(id, m->dirbits)];
			uint64_t	mask = MBloomMask(id);

			pass += (p->bloom[MBloomIndex(id, p->bloom_words)] & mask) == mask;
		}
		tap_ok(pass < trials / 20 && pass > trials / 200,
			   "filter: %.2f %% of non-members pass it (expected about 3 %%)", 100.0 * pass / trials);
	}
	SrMembFree(m);
	free(keys);
	free(start);
	free(ids);
}

/*
 * A dropped shape's local number must not be reused while any partition
 * built before the drop may still hold it: drop, rebuild one partition
 * only, give a new shape a number, and no untouched key may show it.
 */
static void
TestDropReuse(void)
{
	uint32_t	n = 100000;
	SrMembKey  *keys = malloc(n * sizeof(SrMembKey));
	uint64_t   *start = malloc((n + 1) * sizeof(uint64_t));
	int64_t    *ids = malloc(n * sizeof(int64_t));
	SrMemb	   *m;
	SrMembStats st;
	int			wrong = 0;
	int64_t		got[4];

	for (uint32_t i = 0; i < n; i++)
	{
		keys[i] = (SrMembKey) {Rand(), Rand()};
		start[i] = i;
		ids[i] = 1;				/* every key in shape 1 */
	}
	start[n] = n;
	SrMembCreate(NULL, &m);
	SrMembLoad(m, keys, n, start, ids);
	SrMembGetStats(m, &st);
	SrMembDropShape(m, 1);
	SrMembMaintain(m);			/* one partition rebuilt, the others not */
	SrMembAdd(m, keys[0], 777);
	for (uint32_t i = 1; i < n; i++)
		if (SrMembLookup(m, keys[i], got, 4) != 0)
			wrong++;
	tap_ok(st.partitions > 1 && wrong == 0 && SrMembLookup(m, keys[0], got, 4) == 1 && got[0] == 777,
		   "a dropped shape's number is not reused while %llu partitions may hold it (%d keys wrong)",
		   (unsigned long long) st.partitions - 1, wrong);
	SrMembFree(m);
	free(keys);
	free(start);
	free(ids);
}

/* ---- damage ---- */

static void
WriteFile(const char *path, const uint8_t *buf, size_t len)
{
	FILE	   *f = fopen(path, "wb");

	if (len)
		fwrite(buf, 1, len, f);
	fclose(f);
}

static uint8_t *
ReadFile(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *buf;

	fseek(f, 0, SEEK_END);
	*len = (size_t) ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(*len + 1);
	if (fread(buf, 1, *len, f) != *len)
		*len = 0;
	fclose(f);
	return buf;
}

static void
TestSegmentDamage(void)
{
	char		seg[512],
				bad[512],
				err[SR_MEMB_ERRLEN];
	SrMemb	   *m,
			   *m2;
	uint8_t    *img;
	size_t		len;
	uint64_t	lsn;
	int			flips = 0,
				truncs = 0;
	int64_t		ids[64],
				got[64];
	SrMembKey	keys[300];
	int			good = 1;

	PathOf(seg, "small.seg");
	PathOf(bad, "bad.seg");
	SrMembCreate(NULL, &m);
	for (int i = 0; i < 300; i++)
	{
		int			n = RandomSet(ids, 7, 40);

		keys[i] = (SrMembKey) {Rand(), Rand()};
		SrMembSet(m, keys[i], ids, n);
	}
	SrMembDropShape(m, 7);
	tap_ok(SrMembWriteSegment(m, seg, 99, 0xABCDEF, err) == SR_MEM_OK, "small segment written");
	tap_ok(SrMembLoadSegment(seg, 99, NULL, &m2, &lsn, err) == SR_MEM_OK && lsn == 0xABCDEF,
		   "and loaded, at its LSN");
	for (int i = 0; i < 300 && good; i++)
	{
		int			a = SrMembLookup(m, keys[i], ids, 64),
					b = SrMembLookup(m2, keys[i], got, 64);

		good = a == b && memcmp(ids, got, a * 8) == 0;
	}
	tap_ok(good, "segment round trip: the same sets");
	tap_ok(SrMembLoadSegment(seg, 98, NULL, &m2, &lsn, err) == SR_MEM_CORRUPT &&
		   strstr(err, "belongs to table") != NULL, "another table's segment is refused: %s", err);
	SrMembFree(m2);
	img = ReadFile(seg, &len);
	for (size_t i = 0; i < len; i++)
	{
		img[i] ^= 0xFF;
		WriteFile(bad, img, len);
		img[i] ^= 0xFF;
		if (SrMembLoadSegment(bad, 99, NULL, &m2, &lsn, err) == SR_MEM_CORRUPT)
			flips++;
		else
		{
			tap_diag("flip of byte %zu not detected", i);
			SrMembFree(m2);
		}
	}
	tap_ok(flips == (int) len, "every single-byte flip of a %zu-byte segment is detected (%d)", len, flips);
	for (size_t l = 0; l < len; l++)
	{
		WriteFile(bad, img, l);
		if (SrMembLoadSegment(bad, 99, NULL, &m2, &lsn, err) == SR_MEM_CORRUPT)
			truncs++;
		else
			SrMembFree(m2);
	}
	tap_ok(truncs == (int) len, "every truncation is detected (%d of %zu)", truncs, len);
	img = realloc(img, len + 8);
	memset(img + len, 0, 8);
	WriteFile(bad, img, len + 8);
	tap_ok(SrMembLoadSegment(bad, 99, NULL, &m2, &lsn, err) == SR_MEM_CORRUPT,
		   "an extended segment is refused: %s", err);
	free(img);
	SrMembFree(m);
}

/* the sets of keys[0..n) equal between two indexes */
static int
SameSets(SrMemb *a, SrMemb *b, const SrMembKey *keys, int n)
{
	int64_t		x[64],
				y[64];

	for (int i = 0; i < n; i++)
	{
		int			p = SrMembLookup(a, keys[i], x, 64),
					q = SrMembLookup(b, keys[i], y, 64);

		if (p != q || memcmp(x, y, p * 8) != 0)
			return 0;
	}
	return 1;
}

static void
TestRedo(void)
{
	char		log[512],
				bad[512],
				err[SR_MEMB_ERRLEN];
	SrMemb	   *live,
			   *before_last,
			   *at_200,
			   *m2;
	SrMembRedo *redo;
	SrMembKey	keys[50];
	int64_t		ids[32];
	uint8_t    *img;
	size_t		len,
				last_start = 0;
	uint64_t	last;
	int			good_flip = 1,
				good_trunc = 1;

	PathOf(log, "small.redo");
	PathOf(bad, "bad.redo");
	unlink(log);
	SrMembCreate(NULL, &live);
	SrMembCreate(NULL, &before_last);
	SrMembCreate(NULL, &at_200);
	SrMembRedoOpen(log, 5, NULL, &redo, err);
	SrMembRedoAttach(live, redo);
	for (int i = 0; i < 50; i++)
		keys[i] = (SrMembKey) {Rand(), Rand()};
	/* five transactions at LSNs 100..500 */
	for (int t = 1; t <= 5; t++)
	{
		struct stat sb;

		for (int i = 0; i < 10; i++)
		{
			int			n = RandomSet(ids, 1, 20);

			SrMembSet(live, keys[RandBelow(50)], ids, n);
		}
		if (t == 3)
			SrMembDropShape(live, 5);
		if (t == 5)
		{
			stat(log, &sb);
			last_start = (size_t) sb.st_size;
		}
		SrMembRedoCommit(redo, 100 * t, err);
	}
	/* an aborted transaction leaves nothing */
	SrMembSet(live, keys[0], ids, 0);
	SrMembRedoAbort(redo);
	SrMembRedoClose(redo);

	tap_ok(SrMembRedoReplay(log, 5, before_last, 0, 400, false, &last, err) == SR_MEM_OK && last == 400,
		   "replay up to LSN 400");
	tap_ok(SrMembRedoReplay(log, 5, at_200, 0, 200, false, &last, err) == SR_MEM_OK && last == 200,
		   "replay up to LSN 200");
	SrMembCreate(NULL, &m2);
	SrMembRedoReplay(log, 5, m2, 0, UINT64_MAX, false, &last, err);
	tap_ok(last == 500 && !SameSets(m2, before_last, keys, 50),
		   "replay of all five transactions differs from four");
	SrMembFree(m2);
	/* replaying (200, 400] onto the state at 200 gives the state at 400 */
	SrMembRedoReplay(log, 5, at_200, 200, 400, false, &last, err);
	tap_ok(SameSets(at_200, before_last, keys, 50), "replay resumes exactly after a given LSN");

	img = ReadFile(log, &len);
	/* a flip before the last transaction is an error; inside it, a cut */
	for (size_t i = 0; i < len; i++)
	{
		SrMemStatus st;

		img[i] ^= 0xFF;
		WriteFile(bad, img, len);
		img[i] ^= 0xFF;
		SrMembCreate(NULL, &m2);
		st = SrMembRedoReplay(bad, 5, m2, 0, UINT64_MAX, false, &last, err);
		if (i < last_start ? st != SR_MEM_CORRUPT
			: (st != SR_MEM_OK || last != 400 || !SameSets(m2, before_last, keys, 50)))
		{
			if (good_flip)
				tap_diag("flip of byte %zu of %zu: status %d, last %llu", i, len, st,
						 (unsigned long long) last);
			good_flip = 0;
		}
		SrMembFree(m2);
	}
	tap_ok(good_flip, "redo: every flip before the last transaction is an error, "
		   "every flip in it cuts it off (%zu bytes)", len);
	for (size_t l = last_start; l < len; l++)
	{
		SrMemStatus st;
		struct stat sb;

		WriteFile(bad, img, l);
		SrMembCreate(NULL, &m2);
		st = SrMembRedoReplay(bad, 5, m2, 0, UINT64_MAX, false, &last, err);
		stat(bad, &sb);
		if (st != SR_MEM_OK || last != 400 || !SameSets(m2, before_last, keys, 50) ||
			(size_t) sb.st_size != last_start)
			good_trunc = 0;
		SrMembFree(m2);
	}
	tap_ok(good_trunc, "redo: a torn last transaction is cut off, at every length");
	/* discard_after: what an earlier run wrote past the start point goes */
	WriteFile(bad, img, len);
	SrMembCreate(NULL, &m2);
	SrMembRedoReplay(bad, 5, m2, 0, 300, true, &last, err);
	SrMembFree(m2);
	{
		size_t		l2;
		uint8_t    *cut = ReadFile(bad, &l2);

		SrMembCreate(NULL, &m2);
		SrMembRedoReplay(bad, 5, m2, 0, UINT64_MAX, false, &last, err);
		tap_ok(last == 300 && l2 < len, "replay with discard_after cuts the log after LSN 300");
		SrMembFree(m2);
		free(cut);
	}
	free(img);
	SrMembFree(live);
	SrMembFree(before_last);
	SrMembFree(at_200);
}

/* ---- out of memory ---- */

typedef struct FailAlloc
{
	uint64_t	calls;
	uint64_t	failed;
	uint32_t	one_in;			/* fail one call in this many, after 2000 */
} FailAlloc;

static void *
FailingAlloc(void *ctx, size_t size)
{
	FailAlloc  *fa = ctx;

	if (++fa->calls > 2000 && RandBelow(fa->one_in) == 0)
	{
		fa->failed++;
		return NULL;
	}
	return malloc(size);
}

static void
PlainFree(void *ctx, void *ptr)
{
	(void) ctx;
	free(ptr);
}

/*
 * With allocations failing at random, an operation either happens (and is
 * in the redo log) or reports SR_MEM_NOMEM and does not: the index, and a
 * replay of its log, equal a reference updated only on success.
 */
static void
TestOutOfMemory(void)
{
	FailAlloc	fa = {0, 0, 200};
	SrMemAllocator alloc = {FailingAlloc, PlainFree, &fa};
	Ref			r;
	SrMemb	   *m,
			   *replayed;
	SrMembRedo *redo;
	char		log[512],
				err[SR_MEMB_ERRLEN];
	int64_t		ids[600];
	uint64_t	nomem = 0,
				last;
	int			lookups_bad = 0;

	PathOf(log, "oom.redo");
	unlink(log);
	MakeKeys(&r, 40000);
	while (SrMembCreate(&alloc, &m) != SR_MEM_OK)
		;
	SrMembRedoOpen(log, 3, NULL, &redo, err);
	SrMembRedoAttach(m, redo);
	mismatches = 0;
	for (int op = 0; op < 200000; op++)
	{
		uint32_t	k = RandBelow(r.nkeys);
		RefSet	   *s = &r.sets[k];
		uint32_t	what = RandBelow(100);
		SrMemStatus st;

		if (what < 40)
		{
			int			n = RandomSet(ids, 1, 200);

			if ((st = SrMembSet(m, r.keys[k], ids, n)) == SR_MEM_OK)
				RefPut(s, ids, n);
		}
		else if (what < 60)
		{
			int64_t		id = 1 + RandBelow(200);

			if ((st = SrMembAdd(m, r.keys[k], id)) == SR_MEM_OK)
				RefAdd(s, id);
		}
		else if (what < 70)
		{
			if ((st = SrMembRemoveKey(m, r.keys[k])) == SR_MEM_OK)
				s->n = 0;
		}
		else if (what == 70 && RandBelow(50) == 0)
		{
			int64_t		id = 1 + RandBelow(200);

			if ((st = SrMembDropShape(m, id)) == SR_MEM_OK)
				RefDrop(&r, id);
		}
		else
		{
			int64_t		got[1024];
			int			n = SrMembLookup(m, r.keys[k], got, 1024);

			st = SR_MEM_OK;
			if (n >= 0 && (n != s->n || (n > 0 && memcmp(got, s->ids, n * 8) != 0)))
				lookups_bad++;
		}
		if (st == SR_MEM_NOMEM)
			nomem++;
		else if (st != SR_MEM_OK)
			lookups_bad++;
		if (RandBelow(100) == 0)
			SrMembRedoCommit(redo, 10 + op, err);
	}
	SrMembRedoCommit(redo, 1000000, err);
	fa.one_in = UINT32_MAX;		/* checking needs memory */
	FullCheck(m, &r, "after failed allocations");
	SrMembCreate(NULL, &replayed);
	SrMembRedoReplay(log, 3, replayed, 0, UINT64_MAX, false, &last, err);
	FullCheck(replayed, &r, "replay of the log written under failures");
	tap_diag("%llu allocations failed, %llu operations reported NOMEM",
			 (unsigned long long) fa.failed, (unsigned long long) nomem);
	tap_ok(nomem > 100 && lookups_bad == 0 && mismatches == 0,
		   "out of memory: every operation happened and was logged, or did neither");
	SrMembRedoClose(redo);
	SrMembFree(m);
	SrMembFree(replayed);
	for (uint32_t k = 0; k < r.nkeys; k++)
		free(r.sets[k].ids);
	free(r.sets);
	free(r.keys);
}

/* the limits: a set of SR_MEMB_MAX_SET ids, a 2,000-digit numeric, bad loads */
static void
TestLimits(void)
{
	int64_t    *ids = malloc(SR_MEMB_MAX_SET * sizeof(int64_t));
	int64_t    *got = malloc(SR_MEMB_MAX_SET * sizeof(int64_t));
	SrMemb	   *m,
			   *m2;
	SrMembRedo *redo;
	char		log[512],
				err[SR_MEMB_ERRLEN],
				big1[2100],
				big2[2200];
	SrMembKey	k = {Rand(), Rand()};
	uint64_t	last,
				start[3] = {0, 2, 3};
	int			n;
	SrMembKey	two[2] = {{1, 2}, {3, 4}};

	PathOf(log, "limits.redo");
	unlink(log);
	SrMembCreate(NULL, &m);
	SrMembRedoOpen(log, 4, NULL, &redo, err);
	SrMembRedoAttach(m, redo);
	for (int i = 0; i < SR_MEMB_MAX_SET; i++)
		ids[i] = 3 * (int64_t) i + 1;
	tap_ok(SrMembSet(m, k, ids, SR_MEMB_MAX_SET - 1) == SR_MEM_OK &&
		   SrMembAdd(m, k, ids[SR_MEMB_MAX_SET - 1]) == SR_MEM_OK &&
		   SrMembAdd(m, k, 2) == SR_MEM_BADARG &&
		   SrMembAdd(m, k, ids[5]) == SR_MEM_OK,
		   "a key holds up to %d shapes, and no more", SR_MEMB_MAX_SET);
	SrMembRedoCommit(redo, 10, err);
	SrMembCreate(NULL, &m2);
	tap_ok(SrMembRedoReplay(log, 4, m2, 0, UINT64_MAX, false, &last, err) == SR_MEM_OK &&
		   (n = SrMembLookup(m2, k, got, SR_MEMB_MAX_SET)) == SR_MEMB_MAX_SET &&
		   memcmp(got, ids, n * 8) == 0, "and its redo record replays");
	tap_ok(SrMembRemove(m, k, ids[7]) == SR_MEM_OK &&
		   SrMembLookup(m, k, got, SR_MEMB_MAX_SET) == SR_MEMB_MAX_SET - 1,
		   "an id leaves a full set");
	SrMembRedoClose(redo);
	SrMembFree(m2);
	SrMembFree(m);

	memset(big1, '0', sizeof(big1));
	big1[0] = '7';
	big1[2099] = '\0';
	memcpy(big2, "0007", 4);
	memset(big2 + 4, '0', sizeof(big2) - 4);
	big2[2102] = '.';
	big2[2199] = '\0';
	tap_ok(SameKey(NumKey(big1), NumKey(big2)), "numeric: 2,099 digits, with and without zeros around");

	SrMembCreate(NULL, &m);
	ids[0] = 5;
	ids[1] = 5;
	ids[2] = 6;
	tap_ok(SrMembLoad(m, two, 2, start, ids) == SR_MEM_BADARG &&
		   SrMembSet(m, k, ids, 2) == SR_MEM_BADARG,
		   "an id twice in a set is refused, by load and set");
	SrMembFree(m);
	free(ids);
	free(got);
}

int
main(int argc, char **argv)
{
	int			quick = 0;
	uint64_t	seed = (uint64_t) time(NULL);

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
		else
			seed = strtoull(argv[i], NULL, 10);
	}
	rng = seed;
	free(tap_aligned(8));
	tap_diag("seed %llu", (unsigned long long) seed);
	snprintf(dir, sizeof(dir), "/tmp/sr_membership_test.%d", (int) getpid());
	mkdir(dir, 0700);

	TestCrc();
	TestCanon();
	TestPool();
	TestBulk(quick ? 100000 : 400000);
	TestSegmentDamage();
	TestRedo();
	TestDropReuse();
	TestLimits();
	TestOutOfMemory();
	TestRandomized(quick ? 160000 : 300000, quick ? 400000 : 1200000);

	tap_plan(tap_count);
	{
		char		cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", dir);
	}
	return tap_done();
}
