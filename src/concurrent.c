/*-------------------------------------------------------------------------
 *
 * concurrent.c
 *	  CALL shape_router.add_shape_concurrently(): adding a shape without a
 *	  lock that writers wait for, as CREATE INDEX CONCURRENTLY builds an
 *	  index (docs/concurrent.md, and the proof in docs/design-decisions.md).
 *
 * 1. A transaction registers the shape as pending.  From its commit on,
 *	  every stream records, for each row a decoded change touches, whether
 *	  the new row is in the shape, and writes no records for it.
 * 2. It waits for every transaction that held a write lock on the table
 *	  at that commit: after that, a new snapshot sees every change that
 *	  committed before the registration.
 * 3. One transaction finds the shape's rows under a new snapshot, writes
 *	  their keys into the WAL and marks the shape no longer pending.  At its
 *	  commit a stream merges: rows touched since the registration keep what
 *	  it recorded, the others take the search's answer.  It writes S added
 *	  there and routes from then on.
 * 4. It waits again for the writers of that moment, so that a snapshot
 *	  taken after the CALL sees every change committed before S added (the
 *	  consumer's first rows, docs/concurrent.md).
 *
 * A table with REPLICA IDENTITY FULL needs no members: its shape is
 * registered routing at once, and only step 4 is done.  If a step fails
 * the shape is removed before the error is raised again; a shape left
 * pending by a session that died is removed by the next call.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "subxact.h"

#define SR_CLEANUP_EVERY_MS 1000

/*
 * Held by the adding session from the registration to the end, at session
 * level: a pending shape whose lock is free was left by a session that
 * died.  pg_locks shows it as an "object" lock on shape_router.shapes.
 */
static void
ShapeLockTag(LOCKTAG *tag, int64 shape_id)
{
	SET_LOCKTAG_OBJECT(*tag, MyDatabaseId, SrShapesRelid(false),
					   (uint32) shape_id, (uint16) (shape_id >> 32));
}

/*
 * Remove the shapes that sessions which died left pending.  A free lock
 * also means a call that has just finished: the row is read again once the
 * lock is ours, and left alone unless it is still pending.  The lock is
 * kept to commit, so that no other session removes the row too.
 */
static void
RemoveAbandoned(void)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();
	int			n;
	int64	   *ids;

	/*
	 * At most once a second per session: each look scans the pending
	 * index, with the dead entries every started shape leaves, and a call
	 * every 10 ms (a sync engine's) would spend a tenth of itself on it.
	 */
	if (!TimestampDifferenceExceeds(last, now, SR_CLEANUP_EVERY_MS))
		return;
	last = now;
	ids = SrPendingShapes(&n);

	for (int i = 0; i < n; i++)
	{
		LOCKTAG		tag;

		ShapeLockTag(&tag, ids[i]);
		if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
			continue;
		/* what its owner committed before letting the lock go */
		InvalidateCatalogSnapshot();
		if (SrDeleteShape(ids[i], true))
			ereport(NOTICE,
					(errmsg("removed shape " INT64_FORMAT ", which an add_shape_concurrently() that did not finish left pending",
							ids[i])));
	}
	pfree(ids);
}

typedef enum Step
{
	STEP_WAIT,					/* for the table's writers of this moment */
	STEP_ACTIVATE				/* initial members; no longer pending */
} Step;

static void
WaitForWriters(Oid relid)
{
	LOCKTAG		tag;

	/* every lock a write takes conflicts with SHARE, as for CIC */
	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	WaitForLockers(tag, ShareLock, false);
}

/*
 * Run a step in a subtransaction.  If it fails, the shape's row is deleted
 * and that committed before the error is raised again: nothing is left
 * half-done for the next session to find.
 */
typedef struct StepArgs
{
	Step		step;
	int64		shape_id;
	Oid		   *relid;
} StepArgs;

static void
DoStep(void *arg)
{
	StepArgs   *a = arg;

	if (a->step == STEP_WAIT)
		WaitForWriters(*a->relid);
	else if (!SrActivateShape(a->shape_id, a->relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shape " INT64_FORMAT " was removed while it was being added",
						a->shape_id)));
}

static void
RunStep(Step step, int64 shape_id, Oid *relid)
{
	StepArgs	args = {step, shape_id, relid};
	ErrorData  *edata = SrRunInSubxact(DoStep, &args);

	if (edata)
	{
		SrDeleteShape(shape_id, false);
		SPI_commit();
		ReThrowError(edata);
	}
}

static Datum
CallResult(FunctionCallInfo fcinfo, int64 shape_id)
{
	TupleDesc	desc;
	Datum		value = Int64GetDatum(shape_id);
	bool		isnull = false;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		return value;
	desc = BlessTupleDesc(desc);
	return HeapTupleGetDatum(heap_form_tuple(desc, &value, &isnull));
}

PG_FUNCTION_INFO_V1(add_shape_concurrently);
Datum
add_shape_concurrently(PG_FUNCTION_ARGS)
{
	CallContext *call = (CallContext *) fcinfo->context;
	bool		pending;
	int64		shape_id;
	Oid			relid;
	LOCKTAG		tag;

	if (call == NULL || !IsA(call, CallContext) || call->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("shape_router.add_shape_concurrently() cannot run inside a transaction block"),
				 errdetail("It commits between its steps, as CREATE INDEX CONCURRENTLY does."),
				 errhint("CALL it on its own, or use shape_router.add_shape().")));
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* 1: the registration, with the session lock taken before it commits */
	RemoveAbandoned();
	shape_id = SrAddShapeConcurrently(fcinfo, &pending);
	relid = PG_GETARG_OID(0);
	ShapeLockTag(&tag, shape_id);
	(void) LockAcquire(&tag, ExclusiveLock, true, false);
	/*
	 * The registration need not wait for its WAL flush: the search's commit
	 * flushes it, and a crash before that ends the call with nothing
	 * decoded (streams read flushed WAL only).
	 */
	if (pending)
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0,
								 false);
	PG_TRY();
	{
		SPI_commit();
		if (pending)
		{
			/* 2 and 3 */
			RunStep(STEP_WAIT, shape_id, &relid);
			RunStep(STEP_ACTIVATE, shape_id, &relid);
			SPI_commit();
		}
		/* 4 */
		RunStep(STEP_WAIT, shape_id, &relid);
	}
	PG_CATCH();
	{
		/*
		 * A commit that failed (RunStep's own failures have removed the
		 * shape already): whatever is left pending is the next call's to
		 * remove, once the lock is free.
		 */
		LockRelease(&tag, ExclusiveLock, true);
		PG_RE_THROW();
	}
	PG_END_TRY();
	LockRelease(&tag, ExclusiveLock, true);

	SPI_finish();
	/* in the caller's context, which outlives the commits (a portal's) */
	PG_RETURN_DATUM(CallResult(fcinfo, shape_id));
}
