/*-------------------------------------------------------------------------
 *
 * members.h
 *	  A shape's initial members: found by add_shape / add_shapes /
 *	  resync_shapes on a table without REPLICA IDENTITY FULL, and written
 *	  into the WAL as transactional logical messages that every stream
 *	  decoding the transaction reads (design.md section 1).
 *
 * The caller holds a SHARE lock on the table from before the search to
 * commit, so no write falls between the rows found and the shape's start.
 * Each message carries the canonical keys (memkey.h) of up to a chunk's
 * worth of rows; the last one of a shape is flagged final.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SR_MEMBERS_H
#define SR_MEMBERS_H

#include "utils/relcache.h"

#define SR_MSG_PREFIX		"shape_router"

typedef enum SrMembersKind
{
	SR_MEMBERS_ADDED = 1,		/* in the transaction that adds the shape */
	SR_MEMBERS_RESYNC = 2,		/* resync_shapes() */
	SR_MEMBERS_CONCURRENT = 3	/* add_shape_concurrently(), merged with
								 * what streams saw since the registration */
} SrMembersKind;

/* _PG_init: the module's settings */
extern void SrMembersInit(void);
/* Does a shape on rel need its initial members sent? */
extern bool SrMembersNeeded(Relation rel);
/* Take the lock the search needs (held to commit) */
extern void SrMembersLock(Relation rel);
/* Search and send; returns the number of member rows */
extern int64 SrMembersSend(Relation rel, Oid catalog, int64 shape_id,
						   const char *where_clause, SrMembersKind kind);

/* One decoded message */
typedef struct SrMembersMsg
{
	SrMembersKind kind;
	bool		final;			/* the shape's last chunk */
	uint32		keysig;			/* SrKeyInfo.signature of the search */
	Oid			catalog;		/* shape_router.shapes when it was sent */
	Oid			relid;
	int64		shape_id;
	uint32		nkeys;
	const char *keys;			/* nkeys of {uint32 length, bytes} */
	Size		keyslen;
} SrMembersMsg;

/* false if the message is not one of ours or is malformed */
extern bool SrMembersParse(const char *data, Size len, SrMembersMsg *msg);
/* the next key at *pos; false at the end (or if malformed) */
extern bool SrMembersNextKey(const SrMembersMsg *msg, Size *pos,
							 const char **key, uint32 *keylen);

#endif							/* SR_MEMBERS_H */
