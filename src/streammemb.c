/*-------------------------------------------------------------------------
 *
 * streammemb.c
 *	  How a stream keeps its membership indexes in step with its shapes:
 *	  which shapes it has the members of, the initial-members messages of
 *	  add_shape and resync_shapes, and the S unsynced / synced records
 *	  (design.md section 2).
 *
 * A shape on a table without REPLICA IDENTITY FULL routes only if the
 * stream has its members: it received them in the transaction that added
 * the shape or in a resync_shapes() transaction, or from the slot's saved
 * state.  A shape without them is reported unsynced once per slot and
 * routes nothing until a resync.  The members are applied at commit, and
 * only if the transaction did not change the table after sending them
 * (the search saw the table before those changes).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "replication/snapbuild.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "shapestate_int.h"
#include "sortutil.h"

/* a key signature that matches no real one: the table has no key */
#define SR_NO_KEY_SIGNATURE 2

#define UNSYNCED_REASON "the slot has no members of the shape (the slot was created after it, its saved state was lost, or the table had REPLICA IDENTITY FULL when it was added); run shape_router.resync_shapes()"
#define TAINTED_REASON "the transaction that sent the shape's members changed the table afterwards; run shape_router.resync_shapes() in a transaction of its own"

bool
SrRelFull(const SrRelState *rs)
{
	return rs->full;
}

SrTableMemb *
SrRelMemb(const SrRelState *rs)
{
	return rs->memb;
}

const SrKeyInfo *
SrRelKeyInfo(const SrRelState *rs)
{
	return &rs->keyinfo;
}

SrMembKey
SrStateKeyHash(SrShapeState *st, const SrKeyBuf *kb)
{
	return SrSlotMembKey(st->memb, kb->data, kb->len);
}

/*
 * After the table's relcache entry was (re)read: its identity, its key
 * columns, and the membership index that goes with them.
 */
void
SrStateAttachMembership(SrShapeState *st, SrRelState *rs, Relation rel,
						List **events)
{
	uint32		keysig;

	rs->full = rel->rd_rel->relreplident == REPLICA_IDENTITY_FULL;
	keysig = rs->keyinfo.nkeys > 0 ? rs->keyinfo.signature : SR_NO_KEY_SIGNATURE;
	/* a catalog created anew hands out the same shape ids again */
	keysig = (keysig ^ murmurhash32(st->shapes_relid)) | 1;
	rs->memb = SrSlotMembTable(st->memb, rs->relid, keysig,
							   !rs->full && rs->keyinfo.nkeys > 0);
	rs->unsynced_known = false;
	if (!rs->full && rs->keyinfo.nkeys == 0)
		SrStateInvalidateRel(st, rs,
							 "table has no replica identity key any more (REPLICA IDENTITY NOTHING, or no primary key)",
							 events);
}

/* The table's valid shapes without members, if anything changed */
static void
RefreshUnsynced(SrShapeState *st, SrRelState *rs)
{
	int			count = SrRouterShapeCount(rs->router);
	int			n = 0;

	if (rs->unsynced_known &&
		(rs->memb == NULL || rs->synced_epoch == SrTableMembEpoch(rs->memb)))
		return;
	if (rs->unsynced)
		pfree(rs->unsynced);
	rs->unsynced = MemoryContextAlloc(st->cxt, sizeof(int64) * Max(count, 1));
	for (int i = 0; i < count; i++)
	{
		SrShape    *shape = SrRouterShapeAt(rs->router, i);

		if (shape->removed || shape->prog == NULL)
			continue;
		if (rs->memb == NULL || !SrTableMembSynced(rs->memb, shape->shape_id))
			rs->unsynced[n++] = shape->shape_id;
	}
	rs->nunsynced = n;
	rs->synced_epoch = rs->memb ? SrTableMembEpoch(rs->memb) : 0;
	rs->unsynced_known = true;
	rs->reported = (n == 0);
}

/*
 * Before a change on the table is routed: the unsynced shapes are known,
 * and on a table without FULL each has had its S unsynced in this slot.
 */
void
SrStateReportUnsynced(SrShapeState *st, SrRelState *rs, List **events)
{
	RefreshUnsynced(st, rs);
	if (rs->full || rs->reported)
		return;
	for (int i = 0; i < rs->nunsynced; i++)
	{
		int64		id = rs->unsynced[i];
		const char *lost = rs->memb ? SrTableMembLost(rs->memb) : NULL;

		if (rs->memb && SrTableMembReported(rs->memb, id))
			continue;
		SrStateAddEvent(st, events, SR_EVENT_UNSYNCED, id, rs->relid,
						lost ? psprintf("the slot's saved membership of the table was discarded (%s); run shape_router.resync_shapes()", lost) :
						UNSYNCED_REASON);
		if (rs->memb)
			SrTableMembSetReported(rs->memb, id);
	}
	rs->reported = true;
}

int
SrRelKeepSynced(SrRelState *rs, int64 *ids, int n)
{
	int			kept = 0;

	if (rs->nunsynced == 0)
		return n;
	for (int i = 0; i < n; i++)
		if (bsearch(&ids[i], rs->unsynced, rs->nunsynced, sizeof(int64),
					SrCompareInt64) == NULL)
			ids[kept++] = ids[i];
	return kept;
}

int
SrRelMembers(SrRelState *rs, SrMembKey key, int64 **out, int *nstored)
{
	int64	   *ids;
	int			n = SrTableMembLookup(rs->memb, key, &ids);
	int			kept = 0;

	*nstored = n;
	for (int i = 0; i < n; i++)
	{
		SrShape    *shape = SrRouterFindShape(rs->router, ids[i]);

		/* removed and invalidated shapes are dropped lazily */
		if (shape && !shape->removed && shape->prog != NULL)
			ids[kept++] = ids[i];
	}
	*out = ids;
	return SrRelKeepSynced(rs, ids, kept);
}

/* A change on relid: members sent before it by this transaction are stale */
void
SrStateTaintMembers(SrShapeState *st, Oid relid)
{
	ListCell   *lc;

	foreach(lc, st->members)
	{
		PendingMembers *pm = lfirst(lc);

		if (pm->relid == relid)
			pm->tainted = true;
	}
}

/* A logical decoding message: initial members, if one of ours */
void
SrStateMessage(SrShapeState *st, const char *prefix, Size size,
			   const char *message)
{
	SrMembersMsg msg;
	PendingMembers *pm = NULL;
	ListCell   *lc;
	Size		pos = 0;
	const char *key;
	uint32		keylen;
	MemoryContext old;

	if (strcmp(prefix, SR_MSG_PREFIX) != 0 || !st->loaded || st->dropping)
		return;
	if (!SrMembersParse(message, size, &msg))
	{
		elog(LOG, "shape_router: ignoring a malformed \"%s\" message", prefix);
		return;
	}
	if (msg.catalog != st->shapes_relid ||
		!SrStateSelected(&st->filter, msg.shape_id))
		return;

	foreach(lc, st->members)
	{
		PendingMembers *p = lfirst(lc);

		if (p->shape_id == msg.shape_id && p->kind == msg.kind)
			pm = p;
	}
	old = MemoryContextSwitchTo(st->txncxt);
	if (pm == NULL)
	{
		pm = palloc0(sizeof(PendingMembers));
		pm->shape_id = msg.shape_id;
		pm->relid = msg.relid;
		pm->kind = msg.kind;
		pm->keysig = msg.keysig;
		pm->maxkeys = Max(msg.nkeys, 16);
		pm->keys = palloc(sizeof(SrMembKey) * pm->maxkeys);
		st->members = lappend(st->members, pm);
	}
	while (SrMembersNextKey(&msg, &pos, &key, &keylen))
	{
		if (pm->nkeys >= pm->maxkeys)
		{
			pm->maxkeys *= 2;
			pm->keys = repalloc_huge(pm->keys, sizeof(SrMembKey) * pm->maxkeys);
		}
		pm->keys[pm->nkeys++] = SrSlotMembKey(st->memb, key, keylen);
	}
	if (msg.final)
		pm->final = true;
	MemoryContextSwitchTo(old);
}

/* The table's state, current as of this commit */
static SrRelState *
CurrentRel(SrShapeState *st, Oid relid, List **events)
{
	SrRelState *rs = hash_search(st->rels, &relid, HASH_FIND, NULL);
	Relation	rel;

	if (rs == NULL || rs->nshapes == 0)
		return NULL;
	if (rs->valid && rs->router)
		return rs;
	rel = RelationIdGetRelation(relid);
	if (!RelationIsValid(rel))
		return NULL;
	SrStateEnsureRouter(st, rs, rel, events);
	RelationClose(rel);
	return rs;
}

/* At commit, after the transaction's shapes are registered */
void
SrStateApplyMembers(SrShapeState *st, List **events)
{
	ListCell   *lc;

	foreach(lc, st->members)
	{
		PendingMembers *pm = lfirst(lc);
		ShapeEntry *entry = shapemap_lookup(st->shapes, pm->shape_id);
		SrRelState *rs;
		SrTableMemb *tm;

		if (entry == NULL || entry->invalid || !pm->final)
			continue;
		rs = CurrentRel(st, pm->relid, events);
		if (rs == NULL || (tm = rs->memb) == NULL || rs->keyinfo.nkeys == 0 ||
			rs->keyinfo.signature != pm->keysig)
			continue;
		if (SrTableMembSynced(tm, pm->shape_id))
			continue;
		if (pm->tainted)
		{
			if (!SrTableMembReported(tm, pm->shape_id))
				SrStateAddEvent(st, events, SR_EVENT_UNSYNCED, pm->shape_id,
								pm->relid, TAINTED_REASON);
			SrTableMembSetReported(tm, pm->shape_id);
			continue;
		}
		for (int i = 0; i < pm->nkeys; i++)
		{
			if ((i & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
			SrTableMembAdd(tm, pm->keys[i], pm->shape_id);
		}
		SrTableMembSetSynced(tm, pm->shape_id);
		if (pm->kind == SR_MEMBERS_RESYNC)
			SrStateAddEvent(st, events, SR_EVENT_SYNCED, pm->shape_id,
							pm->relid, NULL);
	}
	st->members = NIL;
}
