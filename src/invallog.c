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
#include "slotdir.h"
#include "sortutil.h"

#define SR_INVALID_LOG		"shape_router.invalid"
#define SR_INVALID_MAGIC	0x53524956	/* "SRIV" */
#define SR_INVALID_VERSION	2

typedef struct InvalidRecord
{
	uint32		magic;
	uint32		version;
	uint64		lsn;			/* commit LSN of the invalidating transaction */
	int64		shape_id;
	Oid			catalog;		/* the shape catalog's relid: ids are reused
								 * by a catalog created anew */
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
		log->dir = MemoryContextStrdup(cxt, SrSlotDir(slot_name));
		log->path = MemoryContextStrdup(cxt, SrSlotDirFile(log->dir,
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

void
SrInvalLogAdd(SrInvalLog *log, XLogRecPtr lsn, Oid catalog, int64 shape_id)
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
	r->catalog = catalog;
	r->crc = RecordCrc(r);
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
	/* a torn last record is cut off, so that new records stay aligned */
	if (!created && st.st_size % sizeof(InvalidRecord) != 0 &&
		ftruncate(fd, st.st_size - st.st_size % sizeof(InvalidRecord)) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not truncate file \"%s\": %m", log->path)));
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

/*
 * The shapes of catalog invalidated at commit LSNs before "before",
 * ascending (palloc'd).
 */
int64 *
SrInvalLogRead(SrInvalLog *log, XLogRecPtr before, Oid catalog, int *n)
{
	InvalidRecord r;
	int			fd,
				cap = 16;
	int64	   *ids = palloc(sizeof(int64) * cap);

	*n = 0;
	if (log->path == NULL)
		return ids;
	fd = OpenTransientFile(log->path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return ids;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", log->path)));
	}
	while (read(fd, &r, sizeof(r)) == sizeof(r))
	{
		CHECK_FOR_INTERRUPTS();
		/*
		 * A bad record (torn by a crash, or of another version) is skipped,
		 * not taken for the end: records appended after it still count.
		 * Appends keep records aligned (SrInvalLogFlush).
		 */
		if (r.magic != SR_INVALID_MAGIC || r.version != SR_INVALID_VERSION ||
			r.crc != RecordCrc(&r))
			continue;
		if (r.lsn >= before || r.catalog != catalog)
			continue;
		if (*n >= cap)
		{
			cap *= 2;
			ids = repalloc(ids, sizeof(int64) * cap);
		}
		ids[(*n)++] = r.shape_id;
	}
	CloseTransientFile(fd);
	if (*n > 1)
		qsort(ids, *n, sizeof(int64), SrCompareInt64);
	return ids;
}
