/*-------------------------------------------------------------------------
 *
 * members.c
 *	  Finding a shape's initial members and writing them into the WAL
 *	  (see members.h).
 *
 * The search is an ordinary query through the planner, so an index on the
 * shape's columns is used, under a snapshot taken after the lock: it sees
 * every committed row (and the transaction's own) whatever the isolation
 * level, as foreign key checks do under REPEATABLE READ.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xact.h"
#include "common/hmac.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "replication/message.h"
#include "storage/fd.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "members.h"
#include "memkey.h"
#include "validate.h"

#define SR_MSG_MAGIC		0x314D5253	/* "SRM1" */
#define SR_MSG_FINAL		0x01
/* keys per message, at most: about 64 kB for integer keys */
#define SR_MSG_CHUNK_BYTES	(64 * 1024)
#define SR_FETCH_ROWS		1000

/*
 * For tests: an advisory lock (bigint key) the search takes, shared, just
 * after its snapshot, so that a test can commit changes the search cannot
 * see (the window add_shape_concurrently()'s merge is for).  0: none.
 */
static int	search_wait_lock = 0;

void
SrMembersInit(void)
{
	DefineCustomIntVariable("shape_router.search_wait_lock",
							"Advisory lock the initial-members search waits for after its snapshot (for tests).",
							NULL, &search_wait_lock, 0, 0, INT_MAX,
							PGC_USERSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							NULL, NULL, NULL);
}

static void
SearchWait(void)
{
	LOCKTAG		tag;

	if (search_wait_lock == 0)
		return;
	/* as pg_advisory_xact_lock_shared(bigint) */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, (uint32) search_wait_lock, 1);
	(void) LockAcquire(&tag, ShareLock, false, false);
}

/*
 * Anyone may write a logical message with any prefix
 * (pg_logical_emit_message), so ours carry an HMAC-SHA256 under a key only
 * the server's processes can read: a forged message cannot give a stream
 * members.  A stream that cannot check one ignores it (the shape stays
 * unsynced).
 */
#define SR_KEY_FILE			"shape_router.key"
#define SR_KEY_LEN			32
#define SR_MAC_LEN			32

typedef struct MsgHeader
{
	uint32		magic;
	uint8		kind;
	uint8		flags;
	uint16		reserved;
	uint32		keysig;
	Oid			catalog;
	Oid			relid;
	uint32		nkeys;
	int64		shape_id;
} MsgHeader;

/* The server's message key, read (or, by a backend, created) once */
static bool
MessageKey(uint8 *key, bool create)
{
	static uint8 cached[SR_KEY_LEN];
	static bool have = false;
	int			fd;

	if (!have)
	{
		fd = OpenTransientFile(SR_KEY_FILE, O_RDONLY | PG_BINARY);
		if (fd < 0 && errno == ENOENT && create)
		{
			uint8		fresh[SR_KEY_LEN];
			char	   *tmp = psprintf("%s.%d.tmp", SR_KEY_FILE, MyProcPid);
			int			wfd;

			if (!pg_strong_random(fresh, sizeof(fresh)))
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("could not generate the shape_router message key")));
			wfd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY);
			if (wfd < 0 || write(wfd, fresh, sizeof(fresh)) != sizeof(fresh) ||
				pg_fsync(wfd) != 0 || CloseTransientFile(wfd) != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not write file \"%s\": %m", tmp)));
			/* the first one in wins; a loser reads the winner's key */
			if (link(tmp, SR_KEY_FILE) != 0 && errno != EEXIST)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not create file \"%s\": %m", SR_KEY_FILE)));
			(void) unlink(tmp);
			fsync_fname(".", true);
			fd = OpenTransientFile(SR_KEY_FILE, O_RDONLY | PG_BINARY);
		}
		if (fd < 0)
		{
			if (errno == ENOENT)
				return false;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open file \"%s\": %m", SR_KEY_FILE)));
		}
		have = read(fd, cached, sizeof(cached)) == sizeof(cached);
		CloseTransientFile(fd);
		if (!have)
			return false;
	}
	memcpy(key, cached, SR_KEY_LEN);
	return true;
}

static bool
ComputeMac(const uint8 *key, const char *data, Size len, uint8 *mac)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	bool		ok;

	if (ctx == NULL)
		return false;
	ok = pg_hmac_init(ctx, key, SR_KEY_LEN) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) data, len) == 0 &&
		pg_hmac_final(ctx, mac, SR_MAC_LEN) == 0;
	pg_hmac_free(ctx);
	return ok;
}

bool
SrMembersNeeded(Relation rel)
{
	return rel->rd_rel->relreplident != REPLICA_IDENTITY_FULL &&
		XLogLogicalInfoActive();
}

void
SrMembersLock(Relation rel)
{
	LockRelationOid(RelationGetRelid(rel), ShareLock);
}

static void
SendChunk(StringInfo buf, MsgHeader *h, bool final)
{
	uint8		key[SR_KEY_LEN];
	uint8		mac[SR_MAC_LEN];

	h->flags = final ? SR_MSG_FINAL : 0;
	memcpy(buf->data, h, sizeof(MsgHeader));
	if (!MessageKey(key, true) || !ComputeMac(key, buf->data, buf->len, mac))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not sign the initial members of shape " INT64_FORMAT,
						h->shape_id)));
	appendBinaryStringInfo(buf, (const char *) mac, SR_MAC_LEN);
	LogLogicalMessage(SR_MSG_PREFIX, buf->data, buf->len, true);
	resetStringInfo(buf);
	appendBinaryStringInfo(buf, (const char *) h, sizeof(MsgHeader));
	h->nkeys = 0;
}

/* SELECT the key columns FROM ONLY the table WHERE the clause */
static char *
SearchQuery(Relation rel, const SrKeyInfo *info, const char *where_clause)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT ");
	for (int i = 0; i < info->nkeys; i++)
		appendStringInfo(&q, "%s%s", i ? ", " : "",
						 quote_identifier(get_attname(RelationGetRelid(rel),
													  info->attnums[i], false)));
	appendStringInfo(&q, " FROM ONLY %s",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)));
	if (where_clause)
		appendStringInfo(&q, " WHERE %s", where_clause);
	return q.data;
}

typedef struct SearchContext
{
	Relation	rel;
	int64		shape_id;
} SearchContext;

static void
SearchErrorCallback(void *arg)
{
	SearchContext *sc = (SearchContext *) arg;

	errcontext("finding the rows of table \"%s\" in shape " INT64_FORMAT " (its initial members)",
			   RelationGetRelationName(sc->rel), sc->shape_id);
}

int64
SrMembersSend(Relation rel, Oid catalog, int64 shape_id,
			  const char *where_clause, SrMembersKind kind)
{
	SrKeyInfo	info;
	MsgHeader	h = {0};
	StringInfoData buf;
	SrKeyBuf	kb;
	int			natts = RelationGetDescr(rel)->natts;
	Datum	   *values = palloc0(sizeof(Datum) * natts);
	bool	   *isnull = palloc0(sizeof(bool) * natts);
	int64		count = 0;
	int			nestlevel;
	SPIPlanPtr	plan;
	Portal		portal;
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext rowcxt = AllocSetContextCreate(cxt, "shape_router search row",
												 ALLOCSET_DEFAULT_SIZES);
	SearchContext sc = {rel, shape_id};
	ErrorContextCallback errcallback;

	SrKeyInfoForRel(rel, &info);
	if (info.nkeys == 0)
		elog(ERROR, "table \"%s\" has no replica identity key",
			 RelationGetRelationName(rel));
	h.magic = SR_MSG_MAGIC;
	h.kind = kind;
	h.keysig = info.signature;
	h.catalog = catalog;
	h.relid = RelationGetRelid(rel);
	h.shape_id = shape_id;
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (const char *) &h, sizeof(MsgHeader));
	SrKeyBufInit(&kb, SrMemAllocatorFor(cxt));

	/*
	 * A clause that raises on a row raises here, and the shape is not
	 * added: the stream could not route that row either.
	 */
	errcallback.callback = SearchErrorCallback;
	errcallback.arg = &sc;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	/* the clause's text reads back as written (validate.c) */
	nestlevel = SrPushQualTextSettings();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	CommandCounterIncrement();
	PushActiveSnapshot(GetLatestSnapshot());
	SearchWait();
	plan = SPI_prepare(SearchQuery(rel, &info, where_clause), 0, NULL);
	if (plan == NULL)
		elog(ERROR, "could not prepare the search for shape " INT64_FORMAT ": %s",
			 shape_id, SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, SR_FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			uint32		len;
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			for (int i = 0; i < info.nkeys; i++)
			{
				int			a = info.attnums[i] - 1;

				values[a] = SPI_getbinval(tup, SPI_tuptable->tupdesc, i + 1,
										  &isnull[a]);
			}
			if (!SrKeyCanon(&kb, &info, values, isnull))
				elog(ERROR, "could not build the key of a row");
			len = kb.len;
			appendBinaryStringInfo(&buf, (const char *) &len, sizeof(len));
			appendBinaryStringInfo(&buf, (const char *) kb.data, len);
			h.nkeys++;
			count++;
			if (buf.len >= SR_MSG_CHUNK_BYTES)
				SendChunk(&buf, &h, false);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	PopActiveSnapshot();
	SPI_finish();
	AtEOXact_GUC(true, nestlevel);
	error_context_stack = errcallback.previous;

	SendChunk(&buf, &h, true);
	SrKeyBufFree(&kb);
	MemoryContextDelete(rowcxt);
	pfree(buf.data);
	return count;
}

bool
SrMembersParse(const char *data, Size len, SrMembersMsg *msg)
{
	MsgHeader	h;
	uint8		key[SR_KEY_LEN];
	uint8		mac[SR_MAC_LEN];

	if (len < sizeof(MsgHeader) + SR_MAC_LEN)
		return false;
	len -= SR_MAC_LEN;
	if (!MessageKey(key, false) || !ComputeMac(key, data, len, mac) ||
		memcmp(mac, data + len, SR_MAC_LEN) != 0)
		return false;
	memcpy(&h, data, sizeof(MsgHeader));
	if (h.magic != SR_MSG_MAGIC ||
		(h.kind != SR_MEMBERS_ADDED && h.kind != SR_MEMBERS_RESYNC &&
		 h.kind != SR_MEMBERS_CONCURRENT))
		return false;
	msg->kind = h.kind;
	msg->final = (h.flags & SR_MSG_FINAL) != 0;
	msg->keysig = h.keysig;
	msg->catalog = h.catalog;
	msg->relid = h.relid;
	msg->shape_id = h.shape_id;
	msg->nkeys = h.nkeys;
	msg->keys = data + sizeof(MsgHeader);
	msg->keyslen = len - sizeof(MsgHeader);
	return true;
}

bool
SrMembersNextKey(const SrMembersMsg *msg, Size *pos, const char **key,
				 uint32 *keylen)
{
	uint32		l;

	if (*pos + sizeof(uint32) > msg->keyslen)
		return false;
	memcpy(&l, msg->keys + *pos, sizeof(uint32));
	if (l > msg->keyslen - *pos - sizeof(uint32))
		return false;
	*key = msg->keys + *pos + sizeof(uint32);
	*keylen = l;
	*pos += sizeof(uint32) + l;
	return true;
}
