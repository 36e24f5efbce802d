/*
 * tap.h - the few TAP helpers our unit tests use (Test Anything Protocol:
 * "1..N" then "ok K - name" / "not ok K - name", read by prove)
 */
#ifndef SR_TAP_H
#define SR_TAP_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int	tap_count;
static int	tap_failed;

static void
tap_plan(int n)
{
	printf("1..%d\n", n);
	fflush(stdout);
}

static int
tap_ok(int cond, const char *fmt, ...)
{
	va_list		ap;

	tap_count++;
	printf("%s %d - ", cond ? "ok" : "not ok", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

static void
tap_diag(const char *fmt, ...)
{
	va_list		ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static int
tap_done(void)
{
	return tap_failed ? 1 : 0;
}

/* splitmix64: the tests' seeded key generator */
static inline uint64_t
tap_splitmix(uint64_t *s)
{
	uint64_t	z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static inline double
tap_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* an allocator hook that counts what is outstanding */
typedef struct TapAllocStats
{
	long		live;
	long		calls;
} TapAllocStats;

static void *
tap_alloc(void *ctx, size_t size)
{
	TapAllocStats *s = ctx;

	s->live++;
	s->calls++;
	return malloc(size);
}

static void
tap_free(void *ctx, void *ptr)
{
	TapAllocStats *s = ctx;

	s->live--;
	free(ptr);
}

/* a buffer aligned to 8 (plus one byte to misalign on purpose) */
static void *
tap_aligned(size_t size)
{
	void	   *p = NULL;

	if (posix_memalign(&p, 64, size + 8) != 0)
		abort();
	return p;
}

#endif							/* SR_TAP_H */
