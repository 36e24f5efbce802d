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
#define UNTRACKED_REASON "the stream did not see every change since the shape was registered by add_shape_concurrently() (the slot was created meanwhile, its saved state was lost, or the table was truncated); run shape_router.resync_shapes()"
#define PENDING_INVALID_REASON "the shape's WHERE clause could not be evaluated on a row changed while add_shape_concurrently() was adding it (an error, or an unchanged TOASTed column it reads)"
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
 * After the table's relcache entry was (re)read: its identity and key
 * columns.  The membership index that goes with them is attached at the
 * table's first change (SrStateUseMembership): a stream loads the saved
 * state of the tables it routes changes of, not of every table.
 */
void
SrStateAttachMembership(SrShapeState *st, SrRelState *rs, Relation rel,
						List **events)
{
	rs->full = rel->rd_rel->relreplident == REPLICA_IDENTITY_FULL;
	rs->memb_pending = true;
	rs->unsynced_known = false;
	if (!rs->full && rs->keyinfo.nkeys == 0)
		SrStateInvalidateRel(st, rs,
							 "table has no replica identity key any more (REPLICA IDENTITY NOTHING, or no primary key)",
							 events);
}

void
SrStateUseMembership(SrShapeState *st, SrRelState *rs)
{
	uint32		keysig;

	if (!rs->memb_pending)
		return;
	keysig = rs->keyinfo.nkeys > 0 ? rs->keyinfo.signature : SR_NO_KEY_SIGNATURE;
	/* a catalog created anew hands out the same shape ids again */
	keysig = (keysig ^ murmurhash32(st->shapes_relid)) | 1;
	rs->memb = SrSlotMembTable(st->memb, rs->relid, keysig,
							   !rs->full && rs->keyinfo.nkeys > 0);
	rs->memb_pending = false;
	rs->unsynced_known = false;
}

static bool
IsPending(SrShapeState *st, int64 shape_id)
{
	ShapeEntry *entry = shapemap_lookup(st->shapes, shape_id);

	return entry != NULL && entry->pending;
}

/*
 * The table's valid shapes without members, and which of them are pending
 * and tracked, if anything changed
 */
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
	if (rs->tracking)
		pfree(rs->tracking);
	rs->unsynced = MemoryContextAlloc(st->cxt, sizeof(int64) * Max(count, 1));
	rs->tracking = MemoryContextAlloc(st->cxt, sizeof(int64) * Max(count, 1));
	rs->ntracking = 0;
	for (int i = 0; i < count; i++)
	{
		SrShape    *shape = SrRouterShapeAt(rs->router, i);

		if (shape->removed || shape->prog == NULL)
			continue;
		if (rs->memb == NULL || !SrTableMembSynced(rs->memb, shape->shape_id))
		{
			rs->unsynced[n++] = shape->shape_id;
			if (rs->memb && IsPending(st, shape->shape_id) &&
				SrTableMembTracked(rs->memb, shape->shape_id))
				rs->tracking[rs->ntracking++] = shape->shape_id;
		}
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

		/* reported when it stops being pending, if need be */
		if ((rs->memb && SrTableMembReported(rs->memb, id)) ||
			IsPending(st, id))
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
SrRelStoredSet(SrRelState *rs, const int64 *ids, int n, int64 **out)
{
	int64	   *set;
	int			m;

	if (rs->nunsynced == 0)
	{
		*out = (int64 *) ids;
		return n;
	}
	set = palloc(sizeof(int64) * (n + rs->ntracking + 1));
	memcpy(set, ids, sizeof(int64) * n);
	m = SrRelKeepSynced(rs, set, n);
	/* SrMembSet takes ids in any order */
	for (int i = 0; i < rs->ntracking; i++)
		set[m++] = bsearch(&rs->tracking[i], ids, n, sizeof(int64),
						   SrCompareInt64) ? rs->tracking[i] :
			SrMembTombstone(rs->tracking[i]);
	*out = set;
	return m;
}

int
SrRelDropPending(SrShapeState *st, SrRelState *rs, int64 *ids, int n)
{
	int			kept = 0;

	if (rs->npending == 0)
		return n;
	for (int i = 0; i < n; i++)
		if (!IsPending(st, ids[i]))
			ids[kept++] = ids[i];
	return kept;
}

int
SrRelGoneSet(SrRelState *rs, int64 **out)
{
	int64	   *set;

	if (rs->ntracking == 0 || rs->nunsynced == 0)
		return 0;
	set = palloc(sizeof(int64) * rs->ntracking);
	for (int i = 0; i < rs->ntracking; i++)
		set[i] = SrMembTombstone(rs->tracking[i]);
	*out = set;
	return rs->ntracking;
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
	if (!rs->valid || !rs->router)
	{
		rel = RelationIdGetRelation(relid);
		if (!RelationIsValid(rel))
			return NULL;
		SrStateEnsureRouter(st, rs, rel, events);
		RelationClose(rel);
	}
	SrStateUseMembership(st, rs);
	return rs;
}

typedef struct KeyShape
{
	SrMembKey	key;
	int64		id;
} KeyShape;

static int
CompareKeyShape(const void *a, const void *b)
{
	const KeyShape *x = a;
	const KeyShape *y = b;

	if (x->key.hi != y->key.hi)
		return x->key.hi < y->key.hi ? -1 : 1;
	if (x->key.lo != y->key.lo)
		return x->key.lo < y->key.lo ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* Tombstones are negative: they lead a set (ascending) */
static bool
HasTombstone(const int64 *cur, int ncur, int64 id)
{
	int64		tomb = SrMembTombstone(id);

	for (int i = 0; i < ncur && cur[i] < 0; i++)
		if (cur[i] == tomb)
			return true;
	return false;
}

/*
 * The members of this transaction's sets for tm, key by key: one new set
 * per key (the redo log holds whole sets, so adding shape by shape would
 * log a key's growing set once per shape).
 */
static void
AddMembers(SrTableMemb *tm, List *sets)
{
	ListCell   *lc;
	Size		total = 0;
	Size		n = 0;
	KeyShape   *pairs;
	int64	   *merged = NULL;
	int			maxmerged = 0;

	foreach(lc, sets)
		total += ((PendingMembers *) lfirst(lc))->nkeys;
	if (total == 0)
		return;
	pairs = palloc_extended(sizeof(KeyShape) * total, MCXT_ALLOC_HUGE);
	foreach(lc, sets)
	{
		PendingMembers *pm = lfirst(lc);

		for (int i = 0; i < pm->nkeys; i++)
		{
			pairs[n].key = pm->keys[i];
			pairs[n].id = pm->shape_id;
			n++;
		}
	}
	qsort(pairs, n, sizeof(KeyShape), CompareKeyShape);
	for (Size i = 0; i < n;)
	{
		Size		j = i;
		int64	   *cur;
		int			ncur = SrTableMembLookup(tm, pairs[i].key, &cur);
		int			m = 0,
					c = 0;

		while (j < n && pairs[j].key.hi == pairs[i].key.hi &&
			   pairs[j].key.lo == pairs[i].key.lo)
			j++;
		if (maxmerged < ncur + (int) (j - i))
		{
			maxmerged = ncur + (int) (j - i);
			merged = merged ? repalloc(merged, sizeof(int64) * maxmerged) :
				palloc(sizeof(int64) * maxmerged);
		}
		/* both ascending: merge, without repeats */
		for (Size k = i; k < j || c < ncur;)
		{
			int64		next;

			if (c < ncur && (k >= j || cur[c] <= pairs[k].id))
				next = cur[c++];
			else if (HasTombstone(cur, ncur, pairs[k].id))
			{
				/* a change since the registration decided (concurrent) */
				k++;
				continue;
			}
			else
				next = pairs[k++].id;
			if (m == 0 || merged[m - 1] != next)
				merged[m++] = next;
		}
		SrTableMembSet(tm, pairs[i].key, merged, m);
		if (((i ^ j) & ~(Size) 1023) != 0)
			CHECK_FOR_INTERRUPTS();
		i = j;
	}
	pfree(pairs);
	if (merged)
		pfree(merged);
}

/* The table's membership index, if pm's members can be applied to it */
static SrTableMemb *
TargetOf(SrShapeState *st, PendingMembers *pm, List **events)
{
	ShapeEntry *entry = shapemap_lookup(st->shapes, pm->shape_id);
	SrRelState *rs;

	if (entry == NULL || entry->invalid || !pm->final)
		return NULL;
	rs = CurrentRel(st, pm->relid, events);
	if (rs == NULL || rs->memb == NULL || rs->keyinfo.nkeys == 0 ||
		rs->keyinfo.signature != pm->keysig ||
		SrTableMembSynced(rs->memb, pm->shape_id))
		return NULL;
	/* SrStateActivate reports a shape that was not tracked */
	if (pm->kind == SR_MEMBERS_CONCURRENT &&
		!SrTableMembTracked(rs->memb, pm->shape_id))
		return NULL;
	if (pm->tainted)
	{
		if (!SrTableMembReported(rs->memb, pm->shape_id))
			SrStateAddEvent(st, events, SR_EVENT_UNSYNCED, pm->shape_id,
							pm->relid, TAINTED_REASON);
		SrTableMembSetReported(rs->memb, pm->shape_id);
		return NULL;
	}
	return rs->memb;
}

/* At commit, after the transaction's shapes are registered */
void
SrStateApplyMembers(SrShapeState *st, List **events)
{
	ListCell   *lc;
	List	   *targets = NIL;	/* SrTableMemb * per applied set */
	List	   *applied = NIL;
	List	   *distinct = NIL;

	foreach(lc, st->members)
	{
		PendingMembers *pm = lfirst(lc);
		SrTableMemb *tm = TargetOf(st, pm, events);

		if (tm == NULL)
			continue;
		applied = lappend(applied, pm);
		targets = lappend(targets, tm);
	}
	/* each table once, with every set of the transaction for it */
	foreach(lc, targets)
		distinct = list_append_unique_ptr(distinct, lfirst(lc));
	foreach(lc, distinct)
	{
		List	   *sets = NIL;

		for (int j = 0; j < list_length(applied); j++)
			if (list_nth(targets, j) == lfirst(lc))
				sets = lappend(sets, list_nth(applied, j));
		AddMembers(lfirst(lc), sets);
	}
	for (int i = 0; i < list_length(applied); i++)
	{
		PendingMembers *pm = list_nth(applied, i);

		SrTableMembSetSynced(list_nth(targets, i), pm->shape_id);
		if (pm->kind == SR_MEMBERS_RESYNC)
			SrStateAddEvent(st, events, SR_EVENT_SYNCED, pm->shape_id,
							pm->relid, NULL);
	}
	st->members = NIL;
}

/*
 * The transaction registered shape_id as pending: from its commit on, the
 * changes decoded record the shape's answer for each row they touch.
 */
void
SrStateTrackPending(SrShapeState *st, int64 shape_id, Oid relid,
					List **events)
{
	SrRelState *rs = CurrentRel(st, relid, events);

	if (rs == NULL || rs->full || rs->memb == NULL || rs->keyinfo.nkeys == 0)
		return;
	SrTableMembSetTracked(rs->memb, shape_id);
	rs->unsynced_known = false;
}

/*
 * After SrStateApplyMembers: the shapes this transaction took out of
 * pending start here (S added).  One that got no members (not tracked, or
 * the table changed its key) is reported unsynced at once.  The
 * tombstones go, and with them the tracking.
 */
void
SrStateActivate(SrShapeState *st, List **events)
{
	ListCell   *lc;

	foreach(lc, st->activating)
	{
		int64		id = *(int64 *) lfirst(lc);
		ShapeEntry *entry = shapemap_lookup(st->shapes, id);
		Oid			relid;
		SrRelState *rs;

		if (entry == NULL || !entry->pending)
			continue;
		entry->pending = false;
		relid = entry->relid;
		rs = SrStateRelEntry(st, relid);
		rs->npending--;
		rs = CurrentRel(st, relid, events);
		if (rs)
			rs->unsynced_known = false;
		if (rs && rs->memb)
			SrTableMembDropShape(rs->memb, SrMembTombstone(id));
		SrStateAddEvent(st, events, SR_EVENT_ADDED, id, relid, NULL);
		if (entry->invalid)
			SrStateAddEvent(st, events, SR_EVENT_INVALIDATED, id, relid,
							PENDING_INVALID_REASON);
		else if (rs && rs->memb && !rs->full &&
				 !SrTableMembSynced(rs->memb, id) &&
				 !SrTableMembReported(rs->memb, id))
		{
			SrStateAddEvent(st, events, SR_EVENT_UNSYNCED, id, relid,
							UNTRACKED_REASON);
			SrTableMembSetReported(rs->memb, id);
		}
	}
	st->activating = NIL;
}
