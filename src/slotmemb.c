/*-------------------------------------------------------------------------
 *
 * slotmemb.c
 *	  A stream's per-table membership indexes and their files (see
 *	  slotmemb.h).
 *
 * Generations: a table's first transaction with changes writes a segment
 * valid at its commit LSN and starts that generation's redo log; once the
 * log outgrows half the index, the next commit writes a new segment and
 * starts a new log.  Generations before the newest one valid before the
 * slot's restart_lsn can never be used again and are removed, so
 * disk use stays bounded, and a start never replays more than one log.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include <unistd.h>

#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "memkey.h"
#include "slotdir.h"
#include "slotmemb.h"

/* a generation's log is replaced once it outgrows this or half the index */
#define SR_REDO_MIN_BYTES	(4 * 1024 * 1024)

/* marker keys: no canonical key starts with this byte (keycanon.c) */
#define MARK_BYTE		0xFF
#define MARK_SYNCED		'S'
#define MARK_REPORTED	'R'
#define MARK_SIGNATURE	'K'
#define MARK_TRACKED	'T'

/*
 * Durability.  A transaction's redo reaches the file (write) at its commit,
 * which survives any crash of PostgreSQL; it is fsynced at most a second
 * later, at the stream's end, and with every new generation.
 * shape_router.durable records, with the id of the machine's boot, the last
 * fsync and whether writes followed it ("dirty", recorded durably before
 * the first such write).  After a reboot (a new boot id), a stream trusts
 * the files if they were clean, or if everything before its start was
 * fsynced; otherwise it discards them.  Without a boot id every commit is
 * fsynced.
 */
#define SR_DURABLE_FILE "shape_router.durable"
#define SR_BOOT_ID_LEN	36
#define SR_SYNC_EVERY_MS 1000
/* a maintenance step may take 1/SR_MAINTAIN_SHARE of a stream's time */
#define SR_MAINTAIN_SHARE 50

typedef struct DurableRecord
{
	uint32		magic;
	char		boot[SR_BOOT_ID_LEN];
	uint64		lsn;			/* every transaction up to it is fsynced */
	uint32		dirty;			/* writes after lsn may not be */
	pg_crc32c	crc;
} DurableRecord;

#define SR_DURABLE_MAGIC 0x53524455	/* "SRDU" */

struct SrTableMemb
{
	Oid			relid;			/* hash key */
	SrSlotMemb *sm;
	MemoryContext cxt;
	const SrMemAllocator *alloc;
	SrMemb	   *memb;
	SrMembRedo *redo;			/* NULL until the first generation */
	XLogRecPtr	gen;			/* its LSN */
	uint32		sig;			/* key and options signature in force */
	bool		dirty;			/* changed by the current transaction */
	bool		drops_pending;	/* dropped shapes not yet reclaimed */
	TimestampTz maintain_after; /* no maintenance step before */
	bool		unsynced;		/* in sm->unsynced */
	const char *lost;
	uint64		epoch;
	int64	   *ids;
	int			maxids;
};

struct SrSlotMemb
{
	MemoryContext cxt;
	char	   *dir;			/* NULL: nothing is saved */
	char	   *slot_name;
	uint64		seed;
	uint32		options_sig;
	XLogRecPtr	before;
	const char *reset;			/* why the slot's files were discarded */
	HTAB	   *tables;
	char		boot[SR_BOOT_ID_LEN + 1];	/* this boot's id; "" unknown */
	List	   *unsynced;		/* SrTableMemb * with unfsynced redo */
	bool		rebooted;		/* the files were written before this boot */
	bool		dirty;			/* recorded dirty: writes since the sync */
	XLogRecPtr	synced_lsn;		/* the record's lsn */
	TimestampTz last_sync;
	XLogRecPtr	last_commit;
	List	   *dirtytables;	/* SrTableMemb * changed by the transaction */
	List	   *forget;			/* relids whose index goes after the commit */
};

static void
Check(SrTableMemb *tm, SrMemStatus st, const char *what)
{
	if (st == SR_MEM_OK)
		return;
	if (st == SR_MEM_NOMEM)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed to %s in the membership index of table %u.",
						   what, tm->relid)));
	elog(ERROR, "could not %s in the membership index of table %u: status %d",
		 what, tm->relid, (int) st);
}

SrSlotMemb *
SrSlotMembCreate(MemoryContext parent, const char *slot_name,
				 uint32 options_sig)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "shape_router membership",
											  ALLOCSET_DEFAULT_SIZES);
	SrSlotMemb *sm = MemoryContextAllocZero(cxt, sizeof(SrSlotMemb));
	HASHCTL		ctl;
	uint64		sysid = GetSystemIdentifier();

	sm->cxt = cxt;
	sm->options_sig = options_sig;
	/* fsync=off (test clusters) is honoured by the module's files too */
	SrMembFsync = pg_fsync;
	if (slot_name)
	{
		sm->slot_name = MemoryContextStrdup(cxt, slot_name);
		sm->dir = MemoryContextStrdup(cxt, SrSlotDir(slot_name));
	}

	/*
	 * Per slot, so that keys that collide in one slot's index do not in
	 * another's.  Not a secret: see docs/membership.md.
	 */
	sm->seed = XXH64(slot_name ? slot_name : "", slot_name ? strlen(slot_name) : 0,
					 sysid);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(SrTableMemb);
	ctl.hcxt = cxt;
	sm->tables = hash_create("shape_router membership tables", 16, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return sm;
}

/*
 * The slot's files keep the membership of the shapes its streams route.  A
 * stream with other shapes or shard options would leave the others' stale,
 * so the options are saved with the files, and a stream that brings others
 * discards the files first: every shape starts unsynced.
 */
#define SR_OPTIONS_FILE "shape_router.options"

/* Remove every membership file of the slot; tables start unsynced */
static void
DiscardAll(SrSlotMemb *sm, const char *reason)
{
	DIR		   *d = AllocateDir(sm->dir);
	struct dirent *de;

	while ((de = ReadDir(d, sm->dir)) != NULL)
	{
		if (!SrMembIsFile(de->d_name))
			continue;
		if (!sm->reset)
		{
			ereport(LOG,
					(errmsg("discarding the saved membership of slot \"%s\": %s",
							sm->slot_name, reason)));
			sm->reset = MemoryContextStrdup(sm->cxt, reason);
		}
		(void) unlink(SrSlotDirFile(sm->dir, de->d_name));
	}
	FreeDir(d);
}


static void
CheckOptions(SrSlotMemb *sm)
{
	char	   *path = SrSlotDirFile(sm->dir, SR_OPTIONS_FILE);
	char	   *tmp = psprintf("%s.tmp", path);
	uint32		saved[2];
	uint32		want[2];
	int			fd;
	bool		same = false;

	want[0] = sm->options_sig;
	want[1] = want[0] ^ 0x5352534F;
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd >= 0)
	{
		same = read(fd, saved, sizeof(saved)) == sizeof(saved) &&
			saved[0] == want[0] && saved[1] == want[1];
		CloseTransientFile(fd);
	}
	else if (errno != ENOENT)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
	if (same)
		return;

	DiscardAll(sm, "the slot was last read with other shapes or shard options");

	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0 || write(fd, want, sizeof(want)) != sizeof(want) ||
		pg_fsync(fd) != 0 || CloseTransientFile(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	durable_rename(tmp, path, ERROR);
}

/* where the boot id is read; a test may point it at a file of its own */
static char *boot_id_path = "/proc/sys/kernel/random/boot_id";

void
SrSlotMembInit(void)
{
	DefineCustomStringVariable("shape_router.boot_id_path",
							   "File holding the id of the machine's boot (for tests).",
							   NULL, &boot_id_path,
							   "/proc/sys/kernel/random/boot_id",
							   PGC_SIGHUP, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							   NULL, NULL, NULL);
}

static void
ReadBootId(SrSlotMemb *sm)
{
	FILE	   *f = AllocateFile(boot_id_path, "r");

	sm->boot[0] = '\0';
	if (f == NULL)
		return;
	if (fread(sm->boot, 1, SR_BOOT_ID_LEN, f) != SR_BOOT_ID_LEN)
		sm->boot[0] = '\0';
	sm->boot[SR_BOOT_ID_LEN] = '\0';
	FreeFile(f);
}

static pg_crc32c
DurableCrc(const DurableRecord *r)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, r, offsetof(DurableRecord, crc));
	FIN_CRC32C(crc);
	return crc;
}

/* Are the files before the start on disk as written (see above)? */
static const char *
CheckDurable(SrSlotMemb *sm)
{
	char	   *path = SrSlotDirFile(sm->dir, SR_DURABLE_FILE);
	DurableRecord r;
	int			fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	bool		ok;

	if (fd < 0 && errno == ENOENT && sm->boot[0] == '\0')
		return NULL;			/* no boot id: every commit was fsynced */
	if (fd < 0)
		return errno == ENOENT ? "it has no record of what reached the disk" :
			"its record of what reached the disk cannot be read";
	ok = read(fd, &r, sizeof(r)) == sizeof(r) && r.magic == SR_DURABLE_MAGIC &&
		r.crc == DurableCrc(&r);
	CloseTransientFile(fd);
	if (!ok)
		return "its record of what reached the disk is damaged";
	sm->synced_lsn = r.lsn;
	if (sm->boot[0] && memcmp(r.boot, sm->boot, SR_BOOT_ID_LEN) == 0)
		return NULL;			/* the same boot: every write is there */
	sm->rebooted = true;
	if (!r.dirty || sm->before - 1 <= r.lsn)
		return NULL;			/* every transaction before the start was fsynced */
	return "the machine restarted before the slot's latest membership changes reached the disk";
}

/* Record, durably, that every transaction up to lsn is on disk */
static void
WriteDurable(SrSlotMemb *sm, XLogRecPtr lsn, bool dirty)
{
	char	   *path = SrSlotDirFile(sm->dir, SR_DURABLE_FILE);
	char	   *tmp = psprintf("%s.tmp", path);
	DurableRecord r;
	int			fd;

	memset(&r, 0, sizeof(r));
	r.magic = SR_DURABLE_MAGIC;
	memcpy(r.boot, sm->boot, SR_BOOT_ID_LEN);
	r.lsn = lsn;
	r.dirty = dirty;
	r.crc = DurableCrc(&r);
	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0 || write(fd, &r, sizeof(r)) != sizeof(r) ||
		pg_fsync(fd) != 0 || CloseTransientFile(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	durable_rename(tmp, path, ERROR);
	sm->synced_lsn = lsn;
	sm->dirty = dirty;
}

static void FileError(const char *errbuf);

/* fsync every log written since the last time, then say so */
static void
SyncAll(SrSlotMemb *sm)
{
	ListCell   *lc;
	char		errbuf[SR_MEMB_ERRLEN];

	if (sm->dir == NULL || (!sm->dirty && sm->unsynced == NIL))
		return;
	foreach(lc, sm->unsynced)
	{
		SrTableMemb *tm = lfirst(lc);

		if (tm->redo && SrMembRedoSync(tm->redo, errbuf) != SR_MEM_OK)
			FileError(errbuf);
		tm->unsynced = false;
	}
	list_free(sm->unsynced);
	sm->unsynced = NIL;
	if (sm->boot[0])
		WriteDurable(sm, sm->last_commit, false);
	sm->last_sync = GetCurrentTimestamp();
}

void
SrSlotMembStart(SrSlotMemb *sm, XLogRecPtr before)
{
	const char *lost;

	sm->before = before;
	if (sm->dir == NULL)
		return;
	CheckOptions(sm);
	ReadBootId(sm);
	lost = CheckDurable(sm);
	if (lost)
	{
		/* a slot's first stream has no record and no files yet */
		DiscardAll(sm, lost);
		if (sm->boot[0])
			WriteDurable(sm, InvalidXLogRecPtr, false);
		sm->rebooted = false;
	}
	sm->last_sync = GetCurrentTimestamp();
}

void
SrSlotMembShutdown(SrSlotMemb *sm)
{
	SyncAll(sm);
}

static SrMembKey
MarkKey(SrSlotMemb *sm, char kind, int64 id)
{
	uint8		b[10];

	b[0] = MARK_BYTE;
	b[1] = kind;
	memcpy(b + 2, &id, sizeof(id));
	return SrMembKeyHash(b, sizeof(b), sm->seed);
}

static void
MarkDirty(SrTableMemb *tm)
{
	MemoryContext old;

	if (tm->dirty)
		return;
	old = MemoryContextSwitchTo(tm->sm->cxt);
	tm->dirty = true;
	tm->sm->dirtytables = lappend(tm->sm->dirtytables, tm);
	MemoryContextSwitchTo(old);
}

/*
 * Remove generations no future start can use.  A start is never before the
 * slot's confirmed position as saved on disk, which PostgreSQL 15 writes
 * only at checkpoints and when restart_lsn moves: the one bound that is
 * always on disk is restart_lsn (saved whenever it changes), at or before
 * any saved confirmed position.
 */
static void
RemoveOldGenerations(SrTableMemb *tm)
{
	SrSlotMemb *sm = tm->sm;
	XLogRecPtr	horizon = SrSlotRestartLsn();
	XLogRecPtr	keep = InvalidXLogRecPtr;
	int			n;
	XLogRecPtr *gens = SrMembListGenerations(sm->dir, tm->relid, &n);

	for (int i = 0; i < n; i++)
		if (gens[i] < horizon)
			keep = gens[i];
	for (int i = 0; i < n; i++)
		if (gens[i] < keep && gens[i] != tm->gen)
			SrMembRemoveGeneration(sm->dir, tm->relid, gens[i]);
	pfree(gens);
}

/* Start from nothing: the saved state is unusable (reason) or absent */
static void
StartEmpty(SrTableMemb *tm, const char *reason)
{
	if (tm->memb)
		SrMembFree(tm->memb);
	tm->memb = NULL;
	if (tm->redo)
		SrMembRedoClose(tm->redo);
	tm->redo = NULL;
	tm->gen = InvalidXLogRecPtr;
	Check(tm, SrMembCreate(tm->alloc, &tm->memb), "create the index");
	if (reason == NULL && tm->sm->reset)
		tm->lost = tm->sm->reset;
	else if (reason)
	{
		int			n;
		XLogRecPtr *gens = SrMembListGenerations(tm->sm->dir, tm->relid, &n);

		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("discarding the saved membership of table %u in slot \"%s\"",
						tm->relid, tm->sm->slot_name),
				 errdetail("%s", reason),
				 errhint("The table's shapes stay unsynced in this slot until shape_router.resync_shapes() is run.")));
		for (int i = 0; i < n; i++)
			SrMembRemoveGeneration(tm->sm->dir, tm->relid, gens[i]);
		tm->lost = MemoryContextStrdup(tm->cxt, reason);
	}
}

/*
 * The state after the transactions committed before the stream's start:
 * the newest generation valid before it, its log replayed up to it, and
 * every later generation removed.
 */
static void
Load(SrTableMemb *tm)
{
	SrSlotMemb *sm = tm->sm;
	char		errbuf[SR_MEMB_ERRLEN];
	int			n;
	int			chosen = -1;
	XLogRecPtr *gens;
	XLogRecPtr	seglsn;
	char	   *path;
	SrMemStatus st;
	bool		torn = false;

	if (sm->dir == NULL)
	{
		StartEmpty(tm, NULL);
		return;
	}
	gens = SrMembListGenerations(sm->dir, tm->relid, &n);
	for (int i = 0; i < n; i++)
	{
		if (gens[i] < sm->before)
			chosen = i;
		else
			SrMembRemoveGeneration(sm->dir, tm->relid, gens[i]);
	}
	if (chosen < 0)
	{
		/* no change to the table's index before the start */
		StartEmpty(tm, NULL);
		return;
	}
	tm->gen = gens[chosen];
	path = SrMembFilePath(sm->dir, tm->relid, tm->gen, "seg");
	st = SrMembLoadSegment(path, tm->relid, tm->alloc, &tm->memb, &seglsn, errbuf);
	if (st == SR_MEM_OK && seglsn != tm->gen)
	{
		snprintf(errbuf, sizeof(errbuf), "segment \"%s\" is valid at %X/%X, not at the LSN its name gives",
				 path, LSN_FORMAT_ARGS(seglsn));
		st = SR_MEM_CORRUPT;
	}
	if (st == SR_MEM_NOMEM)
		Check(tm, st, "load a segment");
	if (st != SR_MEM_OK)
	{
		StartEmpty(tm, errbuf);
		return;
	}
	path = SrMembFilePath(sm->dir, tm->relid, tm->gen, "redo");
	st = SrMembRedoReplayTorn(path, tm->relid, tm->memb, tm->gen,
							  sm->before - 1, true, NULL, &torn, errbuf);

	/*
	 * Written in the same boot, a log is whole as written (the page cache
	 * survives any crash of PostgreSQL): cut-off bytes that may be a
	 * transaction before the start are damage.  After a reboot, every
	 * transaction before the start was fsynced (CheckDurable), so bytes cut
	 * off are of later ones.
	 */
	if (st == SR_MEM_OK && torn && !sm->rebooted)
	{
		snprintf(errbuf, sizeof(errbuf), "redo log \"%s\" ends inside a transaction that may have committed before the stream's start",
				 path);
		st = SR_MEM_CORRUPT;
	}
	if (st == SR_MEM_OK)
		st = SrMembRedoOpen(path, tm->relid, tm->alloc, &tm->redo, errbuf);
	if (st == SR_MEM_NOMEM)
		Check(tm, st, "replay the redo log");
	if (st != SR_MEM_OK)
	{
		StartEmpty(tm, errbuf);
		return;
	}
	SrMembRedoAttach(tm->memb, tm->redo);
	RemoveOldGenerations(tm);
}

static int
LookupMark(SrTableMemb *tm, char kind, int64 id)
{
	int64		ids[1];

	return SrMembLookup(tm->memb, MarkKey(tm->sm, kind, id), ids, 1);
}

/* stored as a negative id, which no shape has (DropShape leaves it) */
static void
SetSignature(SrTableMemb *tm, uint32 sig)
{
	int64		id = -(int64) sig;

	Check(tm, SrMembSet(tm->memb, MarkKey(tm->sm, MARK_SIGNATURE, 0), &id, 1),
		  "set the key signature");
}

SrTableMemb *
SrSlotMembTable(SrSlotMemb *sm, Oid relid, uint32 keysig, bool create)
{
	SrTableMemb *tm;
	bool		found;
	uint32		sig = keysig | 1;
	int64		ids[1];
	int			n;

	tm = hash_search(sm->tables, &relid, HASH_FIND, NULL);
	if (tm == NULL)
	{
		if (!create && sm->dir)
		{
			int			ngens;

			pfree(SrMembListGenerations(sm->dir, relid, &ngens));
			if (ngens == 0)
				return NULL;
		}
		else if (!create)
			return NULL;
		tm = hash_search(sm->tables, &relid, HASH_ENTER, &found);
		memset(((char *) tm) + sizeof(Oid), 0, sizeof(SrTableMemb) - sizeof(Oid));
		tm->sm = sm;
		tm->cxt = AllocSetContextCreate(sm->cxt, "shape_router table membership",
										ALLOCSET_DEFAULT_SIZES);
		tm->alloc = SrMemAllocatorFor(tm->cxt);
		tm->maxids = 16;
		tm->ids = MemoryContextAlloc(tm->cxt, sizeof(int64) * tm->maxids);
		Load(tm);
		n = SrMembLookup(tm->memb, MarkKey(sm, MARK_SIGNATURE, 0), ids, 1);
		tm->sig = n == 1 ? (uint32) (-ids[0]) : 0;
	}
	if (keysig != 0 && tm->sig != sig)
	{
		/* keys made from other columns or for other shapes mean nothing now */
		if (tm->sig != 0)
			Check(tm, SrMembClear(tm->memb), "empty the index");
		SetSignature(tm, sig);
		tm->sig = sig;
		tm->epoch++;
		MarkDirty(tm);
	}
	return tm;
}

SrMembKey
SrSlotMembKey(SrSlotMemb *sm, const void *canon, size_t len)
{
	return SrMembKeyHash(canon, len, sm->seed);
}

int
SrTableMembLookup(SrTableMemb *tm, SrMembKey key, int64 **ids)
{
	int			n = SrMembLookup(tm->memb, key, tm->ids, tm->maxids);

	if (n < 0)
		Check(tm, SR_MEM_NOMEM, "look up a key");
	if (n > tm->maxids)
	{
		tm->maxids = n;
		tm->ids = repalloc(tm->ids, sizeof(int64) * n);
		n = SrMembLookup(tm->memb, key, tm->ids, tm->maxids);
		if (n < 0)
			Check(tm, SR_MEM_NOMEM, "look up a key");
	}
	*ids = tm->ids;
	return n;
}

void
SrTableMembSet(SrTableMemb *tm, SrMembKey key, const int64 *ids, int n)
{
	Check(tm, SrMembSet(tm->memb, key, ids, n), "set a key");
	MarkDirty(tm);
}

void
SrTableMembAdd(SrTableMemb *tm, SrMembKey key, int64 id)
{
	Check(tm, SrMembAdd(tm->memb, key, id), "add a key");
	MarkDirty(tm);
}

void
SrTableMembRemoveKey(SrTableMemb *tm, SrMembKey key)
{
	Check(tm, SrMembRemoveKey(tm->memb, key), "remove a key");
	MarkDirty(tm);
}

void
SrTableMembDropShape(SrTableMemb *tm, int64 id)
{
	Check(tm, SrMembDropShape(tm->memb, id), "drop a shape");
	tm->epoch++;
	tm->drops_pending = true;
	MarkDirty(tm);
}

void
SrTableMembTruncate(SrTableMemb *tm, const int64 *ids, int n)
{
	bool	   *synced = palloc(sizeof(bool) * Max(n, 1));
	bool	   *reported = palloc(sizeof(bool) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		synced[i] = SrTableMembSynced(tm, ids[i]);
		reported[i] = SrTableMembReported(tm, ids[i]);
	}
	Check(tm, SrMembClear(tm->memb), "empty the index");
	SetSignature(tm, tm->sig);
	/* pending shapes are no longer tracked: what was seen is gone */
	tm->epoch++;
	for (int i = 0; i < n; i++)
	{
		if (synced[i])
			SrTableMembSetSynced(tm, ids[i]);
		if (reported[i])
			SrTableMembSetReported(tm, ids[i]);
	}
	MarkDirty(tm);
	pfree(synced);
	pfree(reported);
}

bool
SrTableMembSynced(SrTableMemb *tm, int64 id)
{
	return LookupMark(tm, MARK_SYNCED, id) > 0;
}

void
SrTableMembSetSynced(SrTableMemb *tm, int64 id)
{
	SrTableMembAdd(tm, MarkKey(tm->sm, MARK_SYNCED, id), id);
	tm->epoch++;
}

bool
SrTableMembReported(SrTableMemb *tm, int64 id)
{
	return LookupMark(tm, MARK_REPORTED, id) > 0;
}

void
SrTableMembSetReported(SrTableMemb *tm, int64 id)
{
	SrTableMembAdd(tm, MarkKey(tm->sm, MARK_REPORTED, id), id);
}

/*
 * Held as the tombstone id, so that dropping the tombstone when the shape
 * stops being pending also ends its tracking.
 */
bool
SrTableMembTracked(SrTableMemb *tm, int64 id)
{
	return LookupMark(tm, MARK_TRACKED, id) > 0;
}

void
SrTableMembSetTracked(SrTableMemb *tm, int64 id)
{
	int64		tomb = SrMembTombstone(id);

	SrTableMembSet(tm, MarkKey(tm->sm, MARK_TRACKED, id), &tomb, 1);
	tm->epoch++;
}

const char *
SrTableMembLost(SrTableMemb *tm)
{
	return tm->lost;
}

uint64
SrTableMembEpoch(SrTableMemb *tm)
{
	return tm->epoch;
}

void
SrTableMembGetStats(SrTableMemb *tm, SrMembStats *stats)
{
	SrMembGetStats(tm->memb, stats);
}

static void
FileError(const char *errbuf)
{
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not save the membership index"),
			 errdetail("%s", errbuf)));
}

/* A segment valid at lsn, and the empty log of its generation */
static void
NewGeneration(SrTableMemb *tm, XLogRecPtr lsn)
{
	SrSlotMemb *sm = tm->sm;
	char		errbuf[SR_MEMB_ERRLEN];
	SrMembRedo *redo;
	SrMemStatus st;
	char	   *path = SrMembFilePath(sm->dir, tm->relid, lsn, "seg");

	st = SrMembWriteSegment(tm->memb, path, tm->relid, lsn, errbuf);
	if (st != SR_MEM_OK)
		FileError(errbuf);
	path = SrMembFilePath(sm->dir, tm->relid, lsn, "redo");
	st = SrMembRedoOpen(path, tm->relid, tm->alloc, &redo, errbuf);
	if (st != SR_MEM_OK)
		FileError(errbuf);
	if (tm->redo)
	{
		/* the old log may still be read by a start before lsn */
		if (tm->unsynced && SrMembRedoSync(tm->redo, errbuf) != SR_MEM_OK)
			FileError(errbuf);
		SrMembRedoClose(tm->redo);
	}
	tm->redo = redo;
	tm->gen = lsn;
	SrMembRedoAttach(tm->memb, redo);
	RemoveOldGenerations(tm);
}

void
SrSlotMembForget(SrSlotMemb *sm, Oid relid)
{
	MemoryContext old = MemoryContextSwitchTo(sm->cxt);

	sm->forget = list_append_unique_oid(sm->forget, relid);
	MemoryContextSwitchTo(old);
}

/*
 * Free the indexes of dropped tables (a walsender lives for weeks).  Their
 * files stay: a stream restarted before the DROP needs them, and they go
 * with the slot.
 */
static void
ForgetTables(SrSlotMemb *sm)
{
	ListCell   *lc;

	foreach(lc, sm->forget)
	{
		Oid			relid = lfirst_oid(lc);
		SrTableMemb *tm = hash_search(sm->tables, &relid, HASH_FIND, NULL);
		char		errbuf[SR_MEMB_ERRLEN];

		if (tm == NULL)
			continue;
		if (tm->unsynced)
		{
			if (tm->redo && SrMembRedoSync(tm->redo, errbuf) != SR_MEM_OK)
				FileError(errbuf);
			sm->unsynced = list_delete_ptr(sm->unsynced, tm);
		}
		SrMembRedoClose(tm->redo);
		SrMembFree(tm->memb);
		MemoryContextDelete(tm->cxt);
		hash_search(sm->tables, &relid, HASH_REMOVE, NULL);
	}
	list_free(sm->forget);
	sm->forget = NIL;
}

/*
 * Bounded background work, only while dropped shapes await their local
 * numbers back (partitions merge their own changes at 5 % anyway): one
 * partition rebuilt, then none for SR_MAINTAIN_SHARE - 1 times as long as
 * it took, so that a stream committing thousands of transactions a second
 * while shapes come and go does not spend itself rebuilding; reclaiming
 * is not urgent (lookups skip dropped ids).
 */
static void
Maintain(SrTableMemb *tm)
{
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz end;

	if (start < tm->maintain_after)
		return;
	tm->drops_pending = SrMembMaintain(tm->memb);
	end = GetCurrentTimestamp();
	tm->maintain_after = end + (end - start) * (SR_MAINTAIN_SHARE - 1);
}

void
SrSlotMembCommit(SrSlotMemb *sm, XLogRecPtr lsn)
{
	ListCell   *lc;

	/* writes that may not reach the disk are announced durably first */
	if (sm->dir && sm->boot[0] && !sm->dirty && sm->dirtytables != NIL)
		WriteDurable(sm, sm->synced_lsn, true);
	foreach(lc, sm->dirtytables)
	{
		SrTableMemb *tm = lfirst(lc);
		char		errbuf[SR_MEMB_ERRLEN];

		tm->dirty = false;
		if (sm->dir == NULL)
			continue;
		if (tm->redo == NULL)
		{
			NewGeneration(tm, lsn);
			continue;
		}
		if (SrMembRedoWrite(tm->redo, lsn, errbuf) != SR_MEM_OK)
			FileError(errbuf);
		if (!tm->unsynced)
		{
			MemoryContext old = MemoryContextSwitchTo(sm->cxt);

			sm->unsynced = lappend(sm->unsynced, tm);
			tm->unsynced = true;
			MemoryContextSwitchTo(old);
		}
		if (SrMembRedoSize(tm->redo) > SR_REDO_MIN_BYTES)
		{
			SrMembStats st;

			SrMembGetStats(tm->memb, &st);
			if (SrMembRedoSize(tm->redo) > st.bytes_total / 2)
				NewGeneration(tm, lsn);
		}
		if (tm->drops_pending)
			Maintain(tm);
	}
	list_free(sm->dirtytables);
	sm->dirtytables = NIL;
	sm->last_commit = lsn;
	ForgetTables(sm);
	if (sm->unsynced != NIL &&
		(sm->boot[0] == '\0' ||
		 TimestampDifferenceExceeds(sm->last_sync, GetCurrentTimestamp(),
									SR_SYNC_EVERY_MS)))
		SyncAll(sm);
}
