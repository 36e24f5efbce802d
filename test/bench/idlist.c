/*
 * idlist.c: the measurement behind IDLIST_BITMAP_MIN (src/predindex.c).
 *
 * For posting lists of n shape ids, compares an unsorted int64 array (add:
 * append; remove: scan and swap; read: memcpy) with a CRoaring bitmap (add,
 * remove_checked; read: to_uint32_array widened to int64, as the index
 * does), in nanoseconds per operation.
 *
 *   cc -O2 -o /tmp/idlist test/bench/idlist.c -lroaring && /tmp/idlist
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <roaring/roaring.h>

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* ids as a sequence hands them out to one table's shapes: increasing, gappy */
static void
make_ids(int64_t *ids, int n, unsigned seed)
{
	int64_t		id = 1000;

	srand(seed);
	for (int i = 0; i < n; i++)
	{
		id += 1 + rand() % 5;
		ids[i] = id;
	}
}

int
main(void)
{
	static const int sizes[] = {2, 8, 32, 128, 256, 1024, 8192, 65536};
	int			reps = 2000;

	printf("%8s %12s %12s %12s %12s %12s %12s\n", "n",
		   "arr add", "bmp add", "arr remove", "bmp remove",
		   "arr read/id", "bmp read/id");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
	{
		int			n = sizes[s];
		int			r = n >= 8192 ? 20 : reps;
		int64_t    *ids = malloc(sizeof(int64_t) * n);
		int64_t    *arr = malloc(sizeof(int64_t) * n);
		int64_t    *out = malloc(sizeof(int64_t) * n);
		double		t0,
					arr_add = 0,
					bmp_add = 0,
					arr_rm = 0,
					bmp_rm = 0,
					arr_rd = 0,
					bmp_rd = 0;
		volatile int64_t sink = 0;

		make_ids(ids, n, (unsigned) n);
		for (int k = 0; k < r; k++)
		{
			roaring_bitmap_t *b;
			int			m = 0;

			t0 = now_ns();
			for (int i = 0; i < n; i++)
				arr[m++] = ids[i];
			arr_add += now_ns() - t0;

			t0 = now_ns();
			b = roaring_bitmap_create();
			for (int i = 0; i < n; i++)
				roaring_bitmap_add_checked(b, (uint32_t) ids[i]);
			bmp_add += now_ns() - t0;

			t0 = now_ns();
			memcpy(out, arr, sizeof(int64_t) * m);
			sink += out[m - 1];
			arr_rd += now_ns() - t0;

			t0 = now_ns();
			{
				uint32_t   *u = (uint32_t *) out;

				roaring_bitmap_to_uint32_array(b, u + n);
				for (int i = 0; i < n; i++)
					out[i] = (int64_t) u[n + i];
			}
			sink += out[n - 1];
			bmp_rd += now_ns() - t0;

			/* remove half, in id order (worst for the swap) */
			t0 = now_ns();
			for (int i = 0; i < n; i += 2)
				for (int j = 0; j < m; j++)
					if (arr[j] == ids[i])
					{
						arr[j] = arr[--m];
						break;
					}
			arr_rm += now_ns() - t0;

			t0 = now_ns();
			for (int i = 0; i < n; i += 2)
				roaring_bitmap_remove_checked(b, (uint32_t) ids[i]);
			bmp_rm += now_ns() - t0;
			roaring_bitmap_free(b);
		}
		printf("%8d %12.1f %12.1f %12.1f %12.1f %12.2f %12.2f\n", n,
			   arr_add / r / n, bmp_add / r / n,
			   arr_rm / r / ((n + 1) / 2), bmp_rm / r / ((n + 1) / 2),
			   arr_rd / r / n, bmp_rd / r / n);
		free(ids);
		free(arr);
		free(out);
	}
	return 0;
}
