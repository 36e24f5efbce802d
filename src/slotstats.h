/*-------------------------------------------------------------------------
 *
 * slotstats.h
 *	  Per-slot statistics: counters kept by a decoding stream and a small
 *	  checksummed file, pg_replslot/<slot>/shape_router.stats, that the
 *	  stream writes at most once a second and at its end, and that
 *	  shape_router.slot_stats() and its siblings read (docs/monitoring.md).
 *
 * The counters are plain additions in the stream's hot path; everything
 * else (shapes per state, membership sizes, memory) is gathered only when
 * the file is written.  Counters add up over every stream of the slot: a
 * stream starts from the totals of the file it finds.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_SLOTSTATS_H
#define SR_SLOTSTATS_H

#include "datatype/timestamp.h"
#include "port/pg_crc32c.h"

#include "indexkey.h"

/* The kind of access path a shape is filed under, for the counters */
typedef enum SrPathKind
{
	SR_PATH_SCAN,				/* no access path: a candidate for every row */
	SR_PATH_EQUALITY,			/* =, IN, = ANY */
	SR_PATH_RANGE,				/* <, <=, >, >=, BETWEEN */
	SR_PATH_PREFIX,				/* LIKE 'prefix%' */
	SR_PATH_NGRAM,				/* LIKE/ILIKE '%infix%', ~ */
	SR_PATH_BOOLEAN,			/* boolean column, IS TRUE/FALSE */
	SR_PATH_NULLTEST,			/* IS [NOT] NULL */
	SR_PATH_ARRAY,				/* @>, && */
	SR_PATH_MIXED,				/* an OR whose branches have different kinds */
	SR_PATH_KINDS
} SrPathKind;

/* Per access-path kind; the router adds to them (router.h) */
typedef struct SrPathCounters
{
	uint64		candidates[SR_PATH_KINDS];	/* shapes the index named */
	uint64		evaluations[SR_PATH_KINDS]; /* programs run on a row */
	uint64		matches[SR_PATH_KINDS]; /* ... that answered true */
} SrPathCounters;

/* What the plugin counts, cumulative over the slot's streams */
typedef struct SrStreamCounters
{
	uint64		changes_decoded;	/* INSERT, UPDATE, DELETE; TRUNCATE per table */
	uint64		changes_routed; /* ... that gave at least one I/U/D/T record */
	uint64		changes_no_shapes;	/* ... on a table without shapes */
	uint64		records_written;	/* every record: B, C, S, I, U, D, T */
	uint64		transactions;	/* decoded to their commit */
	uint64		transactions_written;	/* ... with at least one record */
	uint64		streams;		/* stream starts */
	SrPathCounters paths;
} SrStreamCounters;

extern const char *const SrPathKindNames[SR_PATH_KINDS];

/* the kind of path number path of a shape's keys */
static inline SrPathKind
SrPathKindOf(const SrIndexKey *keys, int nkeys, int path)
{
	static const uint8 kinds[] = {
		[SR_KEY_EQ] = SR_PATH_EQUALITY,
		[SR_KEY_PREFIX] = SR_PATH_PREFIX,
		[SR_KEY_RANGE] = SR_PATH_RANGE,
		[SR_KEY_TRUE] = SR_PATH_BOOLEAN,
		[SR_KEY_FALSE] = SR_PATH_BOOLEAN,
		[SR_KEY_NULL] = SR_PATH_NULLTEST,
		[SR_KEY_NOTNULL] = SR_PATH_NULLTEST,
		[SR_KEY_ELEM] = SR_PATH_ARRAY,
		[SR_KEY_INFIX] = SR_PATH_NGRAM,
	};
	int			n;
	const SrIndexKey *k = SrKeyPath(keys, nkeys, path, &n);
	SrPathKind	kind;

	if (k == NULL)
		return SR_PATH_SCAN;
	kind = kinds[k->kind];
	for (int i = 1; i < n; i++)
		if (kinds[k[i].kind] != kind)
			return SR_PATH_MIXED;
	return kind;
}

/*
 * The file.  Host byte order and struct layout, as the slot's other files;
 * a change to any struct below (SR_PATH_KINDS included) bumps the version.
 */
#define SR_STATS_FILE		"shape_router.stats"
#define SR_STATS_MAGIC		0x53525354	/* "SRST" */
#define SR_STATS_VERSION	1
#define SR_STATS_MAX_TABLES 1000
#define SR_STATS_MAX_BYTES	(1024 * 1024)

typedef struct SrStatsHeader
{
	uint32		magic;
	uint32		version;
	uint32		length;			/* of the whole file */
	pg_crc32c	crc;			/* of everything after the header */
} SrStatsHeader;

/*
 * A table's shapes per state and its membership index when the file was
 * written, or the same summed over every table.  All int64: summed as an
 * array.
 */
typedef struct SrTableFigures
{
	int64		shapes;
	int64		shapes_routing;
	int64		shapes_unsynced;
	int64		shapes_pending;
	int64		shapes_invalidated;
	int64		membership_keys;
	int64		membership_bytes;
} SrTableFigures;

#define SR_TABLE_FIGURES (sizeof(SrTableFigures) / sizeof(int64))

typedef struct SrStatsTable
{
	Oid			relid;
	uint32		pad;
	SrTableFigures f;
} SrStatsTable;

typedef struct SrStatsFigures
{
	SrStreamCounters counters;	/* over every stream of the slot */
	SrTableFigures state;		/* of every table, at the last write */
	int64		tables;			/* with shapes or a membership index */
	TimestampTz stream_started_at;	/* the last stream's */
	TimestampTz updated_at;		/* the last write */
	double		start_ms;		/* the last stream's start */
	uint64		memory_bytes;	/* the last stream's, at its last write */
	uint64		peak_memory_bytes;	/* the highest of its writes */
	uint32		ntables;		/* SrStatsTable entries that follow */
	uint32		pad;
} SrStatsFigures;

/*
 * Read the slot's file: 1 and the figures and tables (palloc'd), 0 if
 * there is none, -1 if it is corrupt (*problem says how); the figures are
 * zeros but for 1.
 */
extern int	SrSlotStatsRead(const char *slot_name, SrStatsFigures *fig,
							SrStatsTable **tables, char **problem);

struct SrShapeState;

/* opaque: a stream's statistics and its file */
typedef struct SrSlotStats SrSlotStats;

/*
 * A stream's statistics, starting from the slot's file if there is a valid
 * one (slot_name NULL: nothing is read or written); measured is the context
 * whose memory is reported.
 */
extern SrSlotStats *SrSlotStatsCreate(MemoryContext cxt, const char *slot_name,
									  MemoryContext measured);
extern SrStreamCounters *SrSlotStatsCounters(SrSlotStats *ss);
/* the stream's start (its first transaction's catalog load) began then */
extern void SrSlotStatsStarted(SrSlotStats *ss, TimestampTz began);

/*
 * Write the file if the last write was a second ago or more.  Cheap:
 * callers call it at every commit and every SR_STATS_CHECK_EVERY changes.
 */
#define SR_STATS_CHECK_EVERY	1024
extern void SrSlotStatsMaybeWrite(SrSlotStats *ss, struct SrShapeState *st);
/* the stream ends: write (and fsync) the file */
extern void SrSlotStatsShutdown(SrSlotStats *ss, struct SrShapeState *st);

#endif							/* SR_SLOTSTATS_H */
