/*-------------------------------------------------------------------------
 *
 * invallog.c
 *	  The slot's invalidation log (see invallog.h).
 *
 * The file, pg_replslot/<slot>/shape_router.invalid, is a sequence of
 * fixed-size records, each with its own CRC-32C; it goes with the slot's
 * directory when the slot is dropped.  Records are appended in decoding
 * order, which after a restart from an earlier point can repeat or precede
 * commit LSNs already written: readers go by the LSNs, never by the order.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#include "invallog.h"

#define SR_INVALID_LOG		"shape_router.invalid"
#define SR_INVALID_MAGIC	0x53524956	/* "SRIV" */
#define SR_INVALID_VERSION	1
#define SR_RESET_ID			INT64CONST(0)	/* shape ids start at 1 */

typedef struct InvalidRecord
{
	uint32		magic;
	uint32		version;
	uint64		lsn;			/* commit LSN of the invalidating transaction */
	int64		shape_id;		/* SR_RESET_ID: the catalog was dropped */
	pg_crc32c	crc;			/* of the fields above */
} InvalidRecord;

struct SrInvalLog
{
	MemoryContext cxt;
	char	   *dir;			/* the slot's directory; NULL = no slot */
	char	   *path;
	InvalidRecord *pending;		/* this transaction's, not yet written */
	int			npending;
	int			maxpending;
};

SrInvalLog *
SrInvalLogCreate(const char *slot_name, MemoryContext cxt)
{
	SrInvalLog *log = MemoryContextAllocZero(cxt, sizeof(SrInvalLog));

	log->cxt = cxt;
	if (slot_name)
	{
		log->dir = MemoryContextStrdup(cxt, psprintf("pg_replslot/%s", slot_name));
		log->path = MemoryContextStrdup(cxt, psprintf("%s/%s", log->dir,
													  SR_INVALID_LOG));
	}
	return log;
}

static pg_crc32c
RecordCrc(const InvalidRecord *r)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, r, offsetof(InvalidRecord, crc));
	FIN_CRC32C(crc);
	return crc;
}

static void
Append(SrInvalLog *log, XLogRecPtr lsn, int64 shape_id)
{
	InvalidRecord *r;

	if (log->path == NULL)
		return;
	if (log->npending >= log->maxpending)
	{
		log->maxpending = Max(16, log->maxpending * 2);
		log->pending = log->pending ?
			repalloc(log->pending, sizeof(InvalidRecord) * log->maxpending) :
			MemoryContextAlloc(log->cxt, sizeof(InvalidRecord) * log->maxpending);
	}
	r = &log->pending[log->npending++];
	memset(r, 0, sizeof(*r));
	r->magic = SR_INVALID_MAGIC;
	r->version = SR_INVALID_VERSION;
	r->lsn = lsn;
	r->shape_id = shape_id;
	r->crc = RecordCrc(r);
}

void
SrInvalLogAdd(SrInvalLog *log, XLogRecPtr lsn, int64 shape_id)
{
	Assert(shape_id != SR_RESET_ID);
	Append(log, lsn, shape_id);
}

void
SrInvalLogAddReset(SrInvalLog *log, XLogRecPtr lsn)
{
	Append(log, lsn, SR_RESET_ID);
}

/* Records of a transaction that was not decoded to its commit */
void
SrInvalLogDiscard(SrInvalLog *log)
{
	log->npending = 0;
}

/*
 * Write the transaction's records: one append, one fsync, however many
 * shapes a DROP TABLE invalidated.  A new file's directory entry is made
 * durable too.
 */
void
SrInvalLogFlush(SrInvalLog *log)
{
	Size		len = sizeof(InvalidRecord) * log->npending;
	struct stat st;
	bool		created;
	int			fd;

	if (log->npending == 0)
		return;
	created = stat(log->path, &st) != 0 && errno == ENOENT;
	fd = OpenTransientFile(log->path, O_WRONLY | O_CREAT | O_APPEND | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", log->path)));
	errno = 0;
	if (write(fd, log->pending, len) != len)
	{
		/* a short write sets no errno: assume the disk is full */
		if (errno == 0)
			errno = ENOSPC;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", log->path)));
	}
	if (pg_fsync(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", log->path)));
	if (CloseTransientFile(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", log->path)));
	if (created)
		fsync_fname(log->dir, true);
	log->npending = 0;
}

static int
CompareInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * The shapes invalidated at commit LSNs before "before" and after the last
 * reset before it, ascending (palloc'd).  A torn last record (a crash while
 * appending) ends the log.
 */
int64 *
SrInvalLogRead(SrInvalLog *log, XLogRecPtr before, int *n)
{
	InvalidRecord r;
	XLogRecPtr	reset = InvalidXLogRecPtr;
	int			fd,
				nrec = 0,
				cap = 16;
	InvalidRecord *recs = palloc(sizeof(InvalidRecord) * cap);
	int64	   *ids;

	*n = 0;
	if (log->path == NULL)
		return palloc(sizeof(int64));
	fd = OpenTransientFile(log->path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return palloc(sizeof(int64));
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", log->path)));
	}
	while (read(fd, &r, sizeof(r)) == sizeof(r))
	{
		CHECK_FOR_INTERRUPTS();
		if (r.magic != SR_INVALID_MAGIC || r.version != SR_INVALID_VERSION ||
			r.crc != RecordCrc(&r))
			break;
		if (r.lsn >= before)
			continue;
		if (r.shape_id == SR_RESET_ID)
		{
			reset = Max(reset, r.lsn);
			continue;
		}
		if (nrec >= cap)
		{
			cap *= 2;
			recs = repalloc(recs, sizeof(InvalidRecord) * cap);
		}
		recs[nrec++] = r;
	}
	CloseTransientFile(fd);

	ids = palloc(sizeof(int64) * Max(nrec, 1));
	for (int i = 0; i < nrec; i++)
		if (recs[i].lsn > reset)
			ids[(*n)++] = recs[i].shape_id;
	pfree(recs);
	if (*n > 1)
		qsort(ids, *n, sizeof(int64), CompareInt64);
	return ids;
}
