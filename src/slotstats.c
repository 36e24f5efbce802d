/*-------------------------------------------------------------------------
 *
 * slotstats.c
 *	  A stream's statistics and the slot's statistics file (see
 *	  slotstats.h and docs/monitoring.md).
 *
 * The file is a fixed header (magic, version, length, CRC-32C of what
 * follows), the figures, then one entry per table, at most
 * SR_STATS_MAX_TABLES of them (the largest by membership bytes, then by
 * shapes).  It is written to a temporary file and renamed over the last
 * one, so a reader sees one whole file or the other; only the stream's
 * last write is fsynced (durable_rename): statistics lost in an OS crash
 * are not worth two fsyncs a second, and a torn file fails its CRC and is
 * replaced by the next stream's first write.
 *
 * A stream's last write is at its end: the plugin's shutdown, or, when the
 * process exits without one (the client went away, pg_terminate_backend,
 * a server shutdown), an exit callback.  That one writes the counters,
 * always consistent, with the tables as gathered at the previous write,
 * since the shape state may be half-updated by an error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "shapestate_int.h"
#include "slotdir.h"
#include "slotstats.h"

#define SR_STATS_WRITE_EVERY_MS	1000

const char *const SrPathKindNames[SR_PATH_KINDS] = {
	[SR_PATH_SCAN] = "scan list",
	[SR_PATH_EQUALITY] = "equality",
	[SR_PATH_RANGE] = "range",
	[SR_PATH_PREFIX] = "prefix",
	[SR_PATH_NGRAM] = "n-gram",
	[SR_PATH_BOOLEAN] = "boolean",
	[SR_PATH_NULLTEST] = "null test",
	[SR_PATH_ARRAY] = "array",
	[SR_PATH_MIXED] = "mixed",
};

struct SrSlotStats
{
	MemoryContext cxt;
	MemoryContext measured;
	char	   *dir;			/* NULL: no slot, nothing written */
	char	   *path;
	char	   *tmppath;
	TimestampTz last_write;
	bool		write_failed;	/* reported once per stream */
	MemoryContextCallback forget;	/* clears live_stats on deletion */
	SrStatsFigures fig;
	SrStatsTable *tables;		/* as of the last write, fig.ntables */
};

/* the stream's statistics, written at process exit if still there */
static SrSlotStats *live_stats = NULL;
static bool exit_registered = false;

static void WriteFile(SrSlotStats *ss, SrShapeState *st, bool durable);

static void
ForgetStats(void *arg)
{
	if (live_stats == arg)
		live_stats = NULL;
}

static void
WriteAtExit(int code, Datum arg)
{
	if (live_stats)
		WriteFile(live_stats, NULL, true);
	live_stats = NULL;
}

static void
FileName(const char *slot_name, char **dir, char **path)
{
	*dir = SrSlotDir(slot_name);
	*path = SrSlotDirFile(*dir, SR_STATS_FILE);
}

SrSlotStats *
SrSlotStatsCreate(MemoryContext cxt, const char *slot_name,
				  MemoryContext measured)
{
	SrSlotStats *ss = MemoryContextAllocZero(cxt, sizeof(SrSlotStats));
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SrStreamCounters counters = {0};

	ss->cxt = cxt;
	ss->measured = measured;
	if (slot_name)
	{
		MemoryContext readcxt = AllocSetContextCreate(cxt,
													  "shape_router statistics",
													  ALLOCSET_SMALL_SIZES);
		SrStatsTable *tables;
		char	   *problem;

		FileName(slot_name, &ss->dir, &ss->path);
		ss->tmppath = psprintf("%s.tmp", ss->path);
		/* counting goes on from the totals of the slot's earlier streams */
		MemoryContextSwitchTo(readcxt);
		if (SrSlotStatsRead(slot_name, &ss->fig, &tables, &problem) < 0)
			ereport(LOG,
					(errmsg("shape_router: statistics file \"%s\" is corrupt, counting starts from zero",
							ss->path),
					 errdetail("%s", problem)));
		counters = ss->fig.counters;
		MemoryContextDelete(readcxt);
	}
	MemoryContextSwitchTo(old);
	/* the rest describes the last stream, not the slot: it starts anew */
	memset(&ss->fig, 0, sizeof(ss->fig));
	ss->fig.counters = counters;
	ss->fig.counters.streams++;
	ss->fig.stream_started_at = GetCurrentTimestamp();
	/* the first write waits a second, as every later one */
	ss->last_write = ss->fig.stream_started_at;
	ss->tables = MemoryContextAllocZero(cxt, sizeof(SrStatsTable));
	if (ss->path)
	{
		ss->forget.func = ForgetStats;
		ss->forget.arg = ss;
		MemoryContextRegisterResetCallback(cxt, &ss->forget);
		live_stats = ss;
		if (!exit_registered)
			before_shmem_exit(WriteAtExit, (Datum) 0);
		exit_registered = true;
	}
	return ss;
}

SrStreamCounters *
SrSlotStatsCounters(SrSlotStats *ss)
{
	return &ss->fig.counters;
}

void
SrSlotStatsStarted(SrSlotStats *ss, TimestampTz began)
{
	ss->fig.start_ms = (double) (GetCurrentTimestamp() - began) / 1000.0;
}

/* Larger membership first, then more shapes, then relid */
static int
CompareTables(const void *a, const void *b)
{
	const SrStatsTable *x = a;
	const SrStatsTable *y = b;

	if (x->f.membership_bytes != y->f.membership_bytes)
		return x->f.membership_bytes > y->f.membership_bytes ? -1 : 1;
	if (x->f.shapes != y->f.shapes)
		return x->f.shapes > y->f.shapes ? -1 : 1;
	return (x->relid > y->relid) - (x->relid < y->relid);
}

/*
 * One entry per table the stream has shapes or a membership index on, and
 * the totals; palloc'd, largest first.  A shape is in exactly one state:
 * invalidated, else pending, else unsynced (no members in this stream, as
 * of the table's last routed change), else routing.
 */
static SrStatsTable *
GatherTables(SrShapeState *st, SrStatsFigures *fig, int *n)
{
	HASH_SEQ_STATUS status;
	SrRelState *rs;
	int			cap = Max(hash_get_num_entries(st->rels), 1);
	SrStatsTable *tables = palloc0(sizeof(SrStatsTable) * cap);

	*n = 0;
	memset(&fig->state, 0, sizeof(fig->state));
	hash_seq_init(&status, st->rels);
	while ((rs = hash_seq_search(&status)) != NULL)
	{
		SrTableFigures *t;
		int64		left;

		if (rs->nshapes == 0 && rs->memb == NULL)
			continue;
		tables[*n].relid = rs->relid;
		t = &tables[(*n)++].f;
		t->shapes = rs->nshapes;
		t->shapes_invalidated = rs->ninvalid;
		left = rs->nshapes - rs->ninvalid;
		t->shapes_pending = Min(Max(rs->npending, 0), left);
		left -= t->shapes_pending;
		if (!rs->full && rs->unsynced_known)
			t->shapes_unsynced = Min(Max(rs->nunsynced - rs->ntracking, 0), left);
		left -= t->shapes_unsynced;
		t->shapes_routing = Max(left, 0);
		if (rs->memb)
		{
			SrMembStats ms;

			SrTableMembGetStats(rs->memb, &ms);
			t->membership_keys = ms.keys;
			t->membership_bytes = ms.bytes_total;
		}
		for (int i = 0; i < SR_TABLE_FIGURES; i++)
			((int64 *) &fig->state)[i] += ((const int64 *) t)[i];
	}
	fig->tables = *n;
	if (*n > 1)
		qsort(tables, *n, sizeof(SrStatsTable), CompareTables);
	return tables;
}

static pg_crc32c
BodyCrc(const char *body, Size len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, body, len);
	FIN_CRC32C(crc);
	return crc;
}

/*
 * Write the file; durably if asked.  A failure is reported once per stream
 * (a full disk must not fill the log too) and never fails the stream.
 */
static void
WriteFile(SrSlotStats *ss, SrShapeState *st, bool durable)
{
	/* under ss->cxt: at exit, CurrentMemoryContext may be anything */
	MemoryContext cxt = AllocSetContextCreate(ss->cxt,
											  "shape_router statistics",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SrStatsFigures *fig = &ss->fig;
	SrStatsHeader hdr = {0};
	char	   *buf;
	Size		bodylen;
	int			fd;
	bool		ok;

	if (st)
	{
		int			ntables;
		SrStatsTable *tables = GatherTables(st, fig, &ntables);

		fig->ntables = Min(ntables, SR_STATS_MAX_TABLES);
		ss->tables = repalloc(ss->tables,
							  sizeof(SrStatsTable) * Max(fig->ntables, 1));
		memcpy(ss->tables, tables, sizeof(SrStatsTable) * fig->ntables);
	}
	fig->memory_bytes = MemoryContextMemAllocated(ss->measured, true);
	fig->peak_memory_bytes = Max(fig->peak_memory_bytes, fig->memory_bytes);
	fig->updated_at = GetCurrentTimestamp();
	ss->last_write = fig->updated_at;

	bodylen = sizeof(SrStatsFigures) + sizeof(SrStatsTable) * fig->ntables;
	buf = palloc(sizeof(hdr) + bodylen);
	memcpy(buf + sizeof(hdr), fig, sizeof(SrStatsFigures));
	if (fig->ntables > 0)
		memcpy(buf + sizeof(hdr) + sizeof(SrStatsFigures), ss->tables,
			   sizeof(SrStatsTable) * fig->ntables);
	hdr.magic = SR_STATS_MAGIC;
	hdr.version = SR_STATS_VERSION;
	hdr.length = sizeof(hdr) + bodylen;
	hdr.crc = BodyCrc(buf + sizeof(hdr), bodylen);
	memcpy(buf, &hdr, sizeof(hdr));

	fd = OpenTransientFile(ss->tmppath, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	ok = fd >= 0;
	errno = 0;
	if (ok && write(fd, buf, hdr.length) != hdr.length)
	{
		/* a short write sets no errno: assume the disk is full */
		if (errno == 0)
			errno = ENOSPC;
		ok = false;
	}
	if (fd >= 0 && CloseTransientFile(fd) != 0)
		ok = false;
	if (ok)
		ok = durable ? durable_rename(ss->tmppath, ss->path, LOG) == 0 :
			rename(ss->tmppath, ss->path) == 0;
	if (!ok && !ss->write_failed)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("shape_router: could not write statistics file \"%s\": %m",
						ss->path)));
	ss->write_failed |= !ok;
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

void
SrSlotStatsMaybeWrite(SrSlotStats *ss, SrShapeState *st)
{
	if (ss->path == NULL ||
		!TimestampDifferenceExceeds(ss->last_write, GetCurrentTimestamp(),
									SR_STATS_WRITE_EVERY_MS))
		return;
	WriteFile(ss, st, false);
}

void
SrSlotStatsShutdown(SrSlotStats *ss, SrShapeState *st)
{
	if (ss->path)
		WriteFile(ss, st, true);
	ForgetStats(ss);
}

/*
 * Read the slot's file: 1 and the figures and tables (palloc'd), 0 if there
 * is none (zeros), -1 if it is corrupt (*problem says how; zeros).
 */
int
SrSlotStatsRead(const char *slot_name, SrStatsFigures *fig,
				SrStatsTable **tables, char **problem)
{
	char	   *dir,
			   *path;
	int			fd;
	SrStatsHeader hdr;
	char	   *body;
	Size		bodylen;
	ssize_t		got;

	memset(fig, 0, sizeof(*fig));
	*tables = NULL;
	*problem = NULL;
	FileName(slot_name, &dir, &path);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return 0;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
	}
	got = read(fd, &hdr, sizeof(hdr));
	if (got != sizeof(hdr) || hdr.magic != SR_STATS_MAGIC)
		*problem = psprintf("File \"%s\" has no statistics header.", path);
	else if (hdr.version != SR_STATS_VERSION)
		*problem = psprintf("File \"%s\" has version %u, not %u.", path,
							hdr.version, SR_STATS_VERSION);
	else if (hdr.length < sizeof(hdr) + sizeof(SrStatsFigures) ||
			 hdr.length > SR_STATS_MAX_BYTES)
		*problem = psprintf("File \"%s\" says it has %u bytes.", path,
							hdr.length);
	if (*problem)
	{
		CloseTransientFile(fd);
		return -1;
	}
	bodylen = hdr.length - sizeof(hdr);
	body = palloc(bodylen + 1);
	/* one more byte than said: a longer file is as wrong as a shorter one */
	got = read(fd, body, bodylen + 1);
	CloseTransientFile(fd);
	if (got != bodylen)
		*problem = psprintf("File \"%s\" has %zd bytes after its header, not %zu.",
							path, got, bodylen);
	else if (BodyCrc(body, bodylen) != hdr.crc)
		*problem = psprintf("File \"%s\" fails its checksum.", path);
	else
	{
		memcpy(fig, body, sizeof(SrStatsFigures));
		if (sizeof(SrStatsFigures) + sizeof(SrStatsTable) * (Size) fig->ntables != bodylen)
			*problem = psprintf("File \"%s\" has %zu bytes for %u tables.",
								path, bodylen, fig->ntables);
	}
	if (*problem)
	{
		memset(fig, 0, sizeof(*fig));
		return -1;
	}
	*tables = (SrStatsTable *) (body + sizeof(SrStatsFigures));
	return 1;
}
