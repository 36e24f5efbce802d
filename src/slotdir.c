/*-------------------------------------------------------------------------
 *
 * slotdir.c
 *	  shape_router's files in a replication slot's directory (see slotdir.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "replication/slot.h"
#include "storage/fd.h"
#include "storage/spin.h"

#include "slotdir.h"

#define SR_MEMB_PREFIX	"shape_router."

char *
SrSlotDir(const char *slot_name)
{
	return slot_name ? psprintf("pg_replslot/%s", slot_name) : NULL;
}

char *
SrSlotDirFile(const char *dir, const char *name)
{
	return psprintf("%s/%s", dir, name);
}

char *
SrMembFilePath(const char *dir, Oid relid, XLogRecPtr gen, const char *suffix)
{
	return psprintf("%s/" SR_MEMB_PREFIX "%u.%016llX.%s", dir, relid,
					(unsigned long long) gen, suffix);
}

static int
CompareLsn(const void *a, const void *b)
{
	XLogRecPtr	x = *(const XLogRecPtr *) a;
	XLogRecPtr	y = *(const XLogRecPtr *) b;

	return (x > y) - (x < y);
}

XLogRecPtr *
SrMembListGenerations(const char *dir, Oid relid, int *n)
{
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;
	char	   *prefix = psprintf(SR_MEMB_PREFIX "%u.", relid);
	size_t		plen = strlen(prefix);
	int			cap = 4;
	XLogRecPtr *gens = palloc(sizeof(XLogRecPtr) * cap);

	*n = 0;
	while ((de = ReadDir(d, dir)) != NULL)
	{
		unsigned long long g;
		char		suffix[16];
		int			len;

		if (strncmp(de->d_name, prefix, plen) != 0)
			continue;
		if (sscanf(de->d_name + plen, "%16llX.%15s%n", &g, suffix, &len) != 2 ||
			de->d_name[plen + len] != '\0')
			continue;
		if (strcmp(suffix, "seg") != 0)
		{
			/* a crash left a temporary file: never used, so removed */
			if (strstr(suffix, ".tmp"))
				(void) unlink(SrSlotDirFile(dir, de->d_name));
			continue;
		}
		if (*n >= cap)
		{
			cap *= 2;
			gens = repalloc(gens, sizeof(XLogRecPtr) * cap);
		}
		gens[(*n)++] = (XLogRecPtr) g;
	}
	FreeDir(d);
	qsort(gens, *n, sizeof(XLogRecPtr), CompareLsn);
	return gens;
}

bool
SrMembIsFile(const char *name)
{
	size_t		len = strlen(name);

	return strncmp(name, SR_MEMB_PREFIX, strlen(SR_MEMB_PREFIX)) == 0 &&
		((len > 4 && strcmp(name + len - 4, ".seg") == 0) ||
		 (len > 5 && strcmp(name + len - 5, ".redo") == 0));
}

void
SrMembRemoveGeneration(const char *dir, Oid relid, XLogRecPtr gen)
{
	static const char *const suffixes[] = {"seg", "redo", "seg.tmp", "redo.tmp"};

	for (int i = 0; i < lengthof(suffixes); i++)
	{
		char	   *path = SrMembFilePath(dir, relid, gen, suffixes[i]);

		if (unlink(path) != 0 && errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not remove file \"%s\": %m", path)));
		pfree(path);
	}
}

XLogRecPtr
SrSlotRestartLsn(void)
{
	XLogRecPtr	lsn;

	if (MyReplicationSlot == NULL)
		return InvalidXLogRecPtr;
	SpinLockAcquire(&MyReplicationSlot->mutex);
	lsn = MyReplicationSlot->data.restart_lsn;
	SpinLockRelease(&MyReplicationSlot->mutex);
	return lsn;
}
