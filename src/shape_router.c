/*-------------------------------------------------------------------------
 *
 * shape_router.c
 *	  Module entry point: _PG_init only calls each module's init function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "members.h"
#include "slotmemb.h"
#include "sqlfuncs.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	SrSqlFuncsInit();
	SrSlotMembInit();
	SrMembersInit();
}
