/*
 * membfile.c - segment files and the redo log of the membership index
 *
 * A segment is the whole index as of one LSN: a header, the shape
 * dictionary, a partition table and one blob per partition, each region
 * under its own CRC-32C, the regions contiguous up to the file length the
 * header records, so that every byte is covered by a checksum or an exact
 * check.  A loaded segment is used in place: its partitions point into the
 * read-only mapping until they are rebuilt.
 *
 * The redo log is a header and records {len, crc, lsn, op, n, key, ids};
 * the changes of one transaction are followed by a COMMIT record holding
 * its commit LSN and reach the file in one write and one fsync.
 */
#include "membint.h"
#include "crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_MAGIC		"SRMEMSEG"
#define SEG_VERSION		1
#define SEG_HEADER		128
#define SEG_PTAB_ENTRY	48
#define SEG_MAX_DIRBITS 24
#define RDO_MAGIC		"SRMEMRDO"
#define RDO_VERSION		1
#define RDO_HEADER		32
#define RDO_RECORD		40

int			(*SrMembFsync) (int fd) = fsync;

static SrMemStatus Fail(char *errbuf, SrMemStatus st, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

static SrMemStatus
Fail(char *errbuf, SrMemStatus st, const char *fmt,...)
{
	va_list		ap;

	if (errbuf)
	{
		va_start(ap, fmt);
		vsnprintf(errbuf, SR_MEMB_ERRLEN, fmt, ap);
		va_end(ap);
	}
	return st;
}

#define PUT(buf, off, T, v)	do { T v_ = (v); memcpy((uint8_t *) (buf) + (off), &v_, sizeof(T)); } while (0)

static inline uint32_t
Get32(const uint8_t *p)
{
	uint32_t	v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t
Get64(const uint8_t *p)
{
	uint64_t	v;

	memcpy(&v, p, 8);
	return v;
}

static bool
WriteAll(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len > 0)
	{
		ssize_t		w = pwrite(fd, p, len, off);

		if (w <= 0)
		{
			if (w == 0)
				errno = ENOSPC;
			if (w < 0 && errno == EINTR)
				continue;
			return false;
		}
		p += w;
		len -= w;
		off += w;
	}
	return true;
}

/* fsync the directory that holds path, so a rename or create is durable */
static bool
SyncDir(const char *path)
{
	char		dir[4096];
	int			fd;
	bool		ok;

	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(dirname(dir), O_RDONLY);
	if (fd < 0)
		return false;
	ok = SrMembFsync(fd) == 0;
	close(fd);
	return ok;
}

/* ---- segments: writing ---- */

SrMemStatus
SrMembWriteSegment(SrMemb *m, const char *path, uint32_t table_oid,
				   uint64_t lsn, char *errbuf)
{
	char		tmp[4096];
	size_t		nd = (size_t) 1 << m->dirbits;
	uint32_t	nparts = 0;
	size_t		dict_bytes = (size_t) m->nlocal * 8 + 8;
	size_t		ptab_off,
				blob_off;
	uint8_t    *head = NULL,
			   *ptab = NULL;
	int64_t    *dict = NULL;
	uint64_t	nkeys = 0;
	int			fd = -1;
	SrMemStatus st = SR_MEM_OK;
	uint32_t	idx = 0;

	if (m->dirbits > SEG_MAX_DIRBITS)
		return Fail(errbuf, SR_MEM_BADARG, "membership index too deep to write (%d levels)", m->dirbits);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	for (size_t i = 0; i < nd; i++)
		if (i == (size_t) m->dir[i]->prefix << (m->dirbits - m->dir[i]->depth))
			nparts++;
	ptab_off = SEG_HEADER + dict_bytes;
	blob_off = ptab_off + (size_t) nparts * SEG_PTAB_ENTRY + 8;
	head = SrMemAlloc(m->alloc, SEG_HEADER);
	ptab = SrMemAlloc(m->alloc, (size_t) nparts * SEG_PTAB_ENTRY + 8);
	dict = SrMemAlloc(m->alloc, dict_bytes);
	if (head == NULL || ptab == NULL || dict == NULL)
	{
		st = Fail(errbuf, SR_MEM_NOMEM, "out of memory writing membership segment");
		goto done;
	}
	memset(head, 0, SEG_HEADER);
	memset(ptab, 0, (size_t) nparts * SEG_PTAB_ENTRY + 8);
	memset(dict, 0, dict_bytes);
	for (uint32_t i = 0; i < m->nlocal; i++)
		dict[i] = MLocalDropped(m, i) ? INT64_MIN : m->globals[i];
	PUT(dict, (size_t) m->nlocal * 8, uint32_t, SrCrc32c(dict, (size_t) m->nlocal * 8));

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
	{
		st = Fail(errbuf, SR_MEM_FAILED, "could not create \"%s\": %s", tmp, strerror(errno));
		goto done;
	}
	/* each partition merged with its overlay, dropped shapes left out */
	for (size_t i = 0; i < nd && st == SR_MEM_OK; i++)
	{
		MPart	   *p = m->dir[i];
		MBuild		b = {.alloc = m->alloc};
		MPart	   *q = NULL;
		size_t		len,
					eb;
		uint8_t    *e = ptab + (size_t) idx * SEG_PTAB_ENTRY;

		if (i != (size_t) p->prefix << (m->dirbits - p->depth))
			continue;
		if (!MPartCollect(p, m, &b))
			st = Fail(errbuf, SR_MEM_NOMEM, "out of memory writing membership segment");
		else if ((st = MPartEncode(m->alloc, p->prefix, p->depth, m->nlocal, &b, 0, b.n, &q)) != SR_MEM_OK)
			Fail(errbuf, st, "could not encode a partition of %zu keys", b.n);
		MBuildFree(&b);
		if (st != SR_MEM_OK)
			break;
		len = MPartBaseBytes(q->nkeys, q->bbits, q->rbits, q->vbits, q->pool_bytes, &eb);
		PUT(e, 0, uint32_t, q->prefix);
		e[4] = q->depth;
		e[5] = q->bbits;
		e[6] = q->rbits;
		e[7] = q->vbits;
		PUT(e, 8, uint32_t, q->nkeys);
		PUT(e, 12, uint32_t, q->pool_bytes);
		PUT(e, 16, uint64_t, (uint64_t) blob_off);
		PUT(e, 24, uint64_t, (uint64_t) len);
		PUT(e, 32, uint32_t, SrCrc32c(q->mem, len));
		nkeys += q->nkeys;
		if (!WriteAll(fd, q->mem, len, blob_off))
			st = Fail(errbuf, SR_MEM_FAILED, "could not write \"%s\": %s", tmp, strerror(errno));
		blob_off += len;
		idx++;
		MPartFree(m->alloc, q);
	}
	if (st != SR_MEM_OK)
		goto done;
	PUT(ptab, (size_t) nparts * SEG_PTAB_ENTRY, uint32_t,
		SrCrc32c(ptab, (size_t) nparts * SEG_PTAB_ENTRY));
	memcpy(head, SEG_MAGIC, 8);
	PUT(head, 8, uint32_t, SEG_VERSION);
	PUT(head, 12, uint32_t, SEG_HEADER);
	PUT(head, 16, uint32_t, table_oid);
	PUT(head, 20, uint32_t, SR_MEMB_ID_BITS);
	PUT(head, 24, uint64_t, lsn);
	PUT(head, 32, uint64_t, (uint64_t) blob_off);
	PUT(head, 40, uint64_t, nkeys);
	PUT(head, 48, uint32_t, nparts);
	PUT(head, 52, uint32_t, (uint32_t) m->dirbits);
	PUT(head, 56, uint32_t, m->nlocal);
	PUT(head, SEG_HEADER - 4, uint32_t, SrCrc32c(head, SEG_HEADER - 4));
	if (!WriteAll(fd, head, SEG_HEADER, 0) ||
		!WriteAll(fd, dict, dict_bytes, SEG_HEADER) ||
		!WriteAll(fd, ptab, (size_t) nparts * SEG_PTAB_ENTRY + 8, ptab_off))
		st = Fail(errbuf, SR_MEM_FAILED, "could not write \"%s\": %s", tmp, strerror(errno));
	else if (SrMembFsync(fd) != 0)
		st = Fail(errbuf, SR_MEM_FAILED, "could not fsync \"%s\": %s", tmp, strerror(errno));
	else if (close(fd) != 0)
		st = Fail(errbuf, SR_MEM_FAILED, "could not close \"%s\": %s", tmp, strerror(errno));
	else
	{
		fd = -1;
		if (rename(tmp, path) != 0)
			st = Fail(errbuf, SR_MEM_FAILED, "could not rename \"%s\" to \"%s\": %s",
					  tmp, path, strerror(errno));
		else if (!SyncDir(path))
			st = Fail(errbuf, SR_MEM_FAILED, "could not fsync the directory of \"%s\": %s",
					  path, strerror(errno));
	}
done:
	if (fd >= 0)
		close(fd);
	if (st != SR_MEM_OK)
		unlink(tmp);
	SrMemFree(m->alloc, head);
	SrMemFree(m->alloc, ptab);
	SrMemFree(m->alloc, dict);
	return st;
}

/* ---- segments: loading ---- */

void
MembUnmap(SrMemb *m)
{
	if (m->map)
		munmap(m->map, m->maplen);
	m->map = NULL;
	m->maplen = 0;
	m->mapped_parts = 0;
}

#define CORRUPT(...) Fail(errbuf, SR_MEM_CORRUPT, __VA_ARGS__)

/* header, dictionary and partition table: the fixed regions */
static SrMemStatus
CheckRegions(const uint8_t *f, size_t flen, const char *path, uint32_t table_oid,
			 char *errbuf)
{
	uint32_t	nlocal,
				nparts,
				dirbits;
	size_t		dict_bytes,
				ptab_off,
				ptab_bytes;

	if (flen < SEG_HEADER)
		return CORRUPT("membership segment \"%s\" is truncated: %zu bytes, less than its header", path, flen);
	if (memcmp(f, SEG_MAGIC, 8) != 0)
		return CORRUPT("\"%s\" is not a membership segment (bad magic number)", path);
	if (Get32(f + SEG_HEADER - 4) != SrCrc32c(f, SEG_HEADER - 4))
		return CORRUPT("membership segment \"%s\" has a corrupt header (checksum mismatch)", path);
	if (Get32(f + 8) != SEG_VERSION || Get32(f + 12) != SEG_HEADER)
		return CORRUPT("membership segment \"%s\" has version %u, expected %d", path, Get32(f + 8), SEG_VERSION);
	if (Get32(f + 20) != SR_MEMB_ID_BITS)
		return CORRUPT("membership segment \"%s\" keeps %u key bits, expected %d", path, Get32(f + 20), SR_MEMB_ID_BITS);
	if (Get32(f + 16) != table_oid)
		return CORRUPT("membership segment \"%s\" belongs to table %u, not %u", path, Get32(f + 16), table_oid);
	if (Get64(f + 32) != flen)
		return CORRUPT("membership segment \"%s\" is %zu bytes, its header says %llu (truncated or extended)",
					   path, flen, (unsigned long long) Get64(f + 32));
	nparts = Get32(f + 48);
	dirbits = Get32(f + 52);
	nlocal = Get32(f + 56);
	if (dirbits > SEG_MAX_DIRBITS || nparts == 0 || nparts > (UINT32_C(1) << dirbits) ||
		nlocal > MLOCAL_MAX)
		return CORRUPT("membership segment \"%s\" has an impossible geometry", path);
	dict_bytes = (size_t) nlocal * 8 + 8;
	ptab_off = SEG_HEADER + dict_bytes;
	ptab_bytes = (size_t) nparts * SEG_PTAB_ENTRY + 8;
	if (ptab_off + ptab_bytes > flen)
		return CORRUPT("membership segment \"%s\" is truncated in its tables", path);
	if (Get32(f + SEG_HEADER + dict_bytes - 8) != SrCrc32c(f + SEG_HEADER, dict_bytes - 8) ||
		Get32(f + SEG_HEADER + dict_bytes - 4) != 0)
		return CORRUPT("membership segment \"%s\" has a corrupt shape dictionary (checksum mismatch)", path);
	if (Get32(f + ptab_off + ptab_bytes - 8) != SrCrc32c(f + ptab_off, ptab_bytes - 8) ||
		Get32(f + ptab_off + ptab_bytes - 4) != 0)
		return CORRUPT("membership segment \"%s\" has a corrupt partition table (checksum mismatch)", path);
	return SR_MEM_OK;
}

/* the shape dictionary of a checked segment into m */
static SrMemStatus
LoadDictionary(SrMemb *m, const uint8_t *d, uint32_t nlocal, const char *path, char *errbuf)
{
	m->localcap = nlocal ? nlocal : 1;
	m->globals = SrMemAlloc(m->alloc, (size_t) m->localcap * sizeof(int64_t));
	m->dropped = SrMemAlloc(m->alloc, (size_t) ((m->localcap + 63) / 64) * 8);
	m->freelocals = SrMemAlloc(m->alloc, (size_t) m->localcap * 4);
	m->freecap = m->localcap;
	if (!m->globals || !m->dropped || !m->freelocals)
		return Fail(errbuf, SR_MEM_NOMEM, "out of memory loading \"%s\"", path);
	memset(m->dropped, 0xFF, (size_t) ((m->localcap + 63) / 64) * 8);
	m->nlocal = nlocal;
	for (uint32_t i = 0; i < nlocal; i++)
	{
		int64_t		g = (int64_t) Get64(d + (size_t) i * 8);

		m->globals[i] = g;
		if (g == INT64_MIN)
		{
			m->freelocals[m->nfree++] = i;
			continue;
		}
		if (MembDictFind(m, g) != UINT32_MAX)
			return CORRUPT("membership segment \"%s\" lists shape %lld twice", path, (long long) g);
		m->dropped[i / 64] &= ~(UINT64_C(1) << (i % 64));
		if (!MembDictAdd(m, g, i))
			return Fail(errbuf, SR_MEM_NOMEM, "out of memory loading \"%s\"", path);
	}
	return SR_MEM_OK;
}

/* one partition-table entry into a partition that points into the map */
static SrMemStatus
LoadPart(SrMemb *m, const uint8_t *f, size_t flen, const uint8_t *e, size_t *expect_off,
		 uint32_t i, const char *path, char *errbuf, MPart **out)
{
	MPart		tmp;
	uint64_t	off = Get64(e + 16),
				len = Get64(e + 24);
	size_t		eb,
				want;
	MPart	   *p;

	memset(&tmp, 0, sizeof(tmp));
	tmp.prefix = Get32(e);
	tmp.depth = e[4];
	tmp.bbits = e[5];
	tmp.rbits = e[6];
	tmp.vbits = e[7];
	tmp.nkeys = Get32(e + 8);
	tmp.live = tmp.nkeys;
	tmp.pool_bytes = Get32(e + 12);
	if (tmp.depth > MPART_MAX_DEPTH || tmp.bbits > 24 || tmp.vbits > 32 ||
		Get32(e + 36) != 0 || Get64(e + 40) != 0)
		return CORRUPT("membership segment \"%s\": partition %u has an impossible geometry", path, i);
	want = MPartBaseBytes(tmp.nkeys, tmp.bbits, tmp.rbits, tmp.vbits, tmp.pool_bytes, &eb);
	if (off != *expect_off || len != want || off + len > flen)
		return CORRUPT("membership segment \"%s\": partition %u is out of place (offset %llu, %llu bytes)",
					   path, i, (unsigned long long) off, (unsigned long long) len);
	if (Get32(e + 32) != SrCrc32c(f + off, len))
		return CORRUPT("membership segment \"%s\": partition %u is corrupt (checksum mismatch)", path, i);
	tmp.bucket = (const uint64_t *) (f + off);
	tmp.entries = f + off + (((size_t) 1 << tmp.bbits) + 1) * 8;
	tmp.pool = tmp.entries + eb;
	tmp.entries_bytes = eb;
	tmp.bloom_words = MBloomWords(tmp.nkeys);
	if (!MPartCheckGeometry(&tmp))
		return CORRUPT("membership segment \"%s\": partition %u has an impossible geometry", path, i);
	/* the filter takes overlay keys: it moves to the heap, the rest stays mapped */
	if ((p = SrMemAlloc(m->alloc, sizeof(MPart))) == NULL ||
		(tmp.bloom_mem = SrMemAlloc(m->alloc, (size_t) tmp.bloom_words * 8)) == NULL)
	{
		SrMemFree(m->alloc, p);
		return Fail(errbuf, SR_MEM_NOMEM, "out of memory loading \"%s\"", path);
	}
	memcpy(tmp.bloom_mem, f + off + len - (size_t) tmp.bloom_words * 8, (size_t) tmp.bloom_words * 8);
	tmp.bloom = tmp.bloom_mem;
	*p = tmp;
	p->epoch = m->epoch;
	*expect_off = off + len;
	*out = p;
	return SR_MEM_OK;
}

SrMemStatus
SrMembLoadSegment(const char *path, uint32_t table_oid, const SrMemAllocator *alloc,
				  SrMemb **out, uint64_t *lsn, char *errbuf)
{
	int			fd = open(path, O_RDONLY);
	struct stat sb;
	uint8_t    *f;
	size_t		flen;
	SrMemb	   *m;
	SrMemStatus st;
	uint32_t	nparts,
				dirbits,
				nlocal;
	size_t		ptab_off,
				expect;
	uint64_t	nkeys = 0;

	if (fd < 0)
		return Fail(errbuf, errno == ENOENT ? SR_MEM_BADARG : SR_MEM_FAILED,
					"could not open \"%s\": %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0)
	{
		close(fd);
		return Fail(errbuf, SR_MEM_FAILED, "could not stat \"%s\": %s", path, strerror(errno));
	}
	flen = (size_t) sb.st_size;
	if (flen < SEG_HEADER)
	{
		close(fd);
		return CORRUPT("membership segment \"%s\" is truncated: %zu bytes, less than its header", path, flen);
	}
	f = mmap(NULL, flen, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (f == MAP_FAILED)
		return Fail(errbuf, SR_MEM_FAILED, "could not map \"%s\": %s", path, strerror(errno));
	if ((st = CheckRegions(f, flen, path, table_oid, errbuf)) != SR_MEM_OK)
	{
		munmap(f, flen);
		return st;
	}
	nparts = Get32(f + 48);
	dirbits = Get32(f + 52);
	nlocal = Get32(f + 56);
	ptab_off = SEG_HEADER + (size_t) nlocal * 8 + 8;
	expect = ptab_off + (size_t) nparts * SEG_PTAB_ENTRY + 8;

	if ((m = SrMemAlloc(alloc, sizeof(SrMemb))) == NULL)
	{
		munmap(f, flen);
		return Fail(errbuf, SR_MEM_NOMEM, "out of memory loading \"%s\"", path);
	}
	memset(m, 0, sizeof(*m));
	m->alloc = alloc;
	m->map = f;
	m->maplen = flen;
	m->dirbits = (int) dirbits;
	m->dir = SrMemAlloc(alloc, ((size_t) 1 << dirbits) * sizeof(MPart *));
	if (m->dir == NULL)
		st = Fail(errbuf, SR_MEM_NOMEM, "out of memory loading \"%s\"", path);
	else
	{
		memset(m->dir, 0, ((size_t) 1 << dirbits) * sizeof(MPart *));
		st = LoadDictionary(m, f + SEG_HEADER, nlocal, path, errbuf);
	}
	for (uint32_t i = 0; st == SR_MEM_OK && i < nparts; i++)
	{
		MPart	   *p = NULL;
		size_t		first,
					count;

		st = LoadPart(m, f, flen, f + ptab_off + (size_t) i * SEG_PTAB_ENTRY, &expect, i, path, errbuf, &p);
		if (st != SR_MEM_OK)
			break;
		if (p->depth > dirbits)
		{
			MPartFree(alloc, p);
			st = CORRUPT("membership segment \"%s\": partition %u is deeper than the directory", path, i);
			break;
		}
		first = (size_t) p->prefix << (dirbits - p->depth);
		count = (size_t) 1 << (dirbits - p->depth);
		for (size_t k = 0; k < count; k++)
			if (m->dir[first + k] != NULL)
				st = CORRUPT("membership segment \"%s\": partitions %u overlaps another", path, i);
		if (st != SR_MEM_OK)
		{
			MPartFree(alloc, p);
			break;
		}
		for (size_t k = 0; k < count; k++)
			m->dir[first + k] = p;
		m->mapped_parts++;
		nkeys += p->nkeys;
	}
	if (st == SR_MEM_OK && expect != flen)
		st = CORRUPT("membership segment \"%s\" has %zu bytes after its last partition", path, flen - expect);
	if (st == SR_MEM_OK)
		for (size_t k = 0; k < ((size_t) 1 << dirbits); k++)
			if (m->dir[k] == NULL)
			{
				st = CORRUPT("membership segment \"%s\" does not cover every key", path);
				break;
			}
	if (st == SR_MEM_OK && nkeys != Get64(f + 40))
		st = CORRUPT("membership segment \"%s\" counts %llu keys, its partitions %llu", path,
					 (unsigned long long) Get64(f + 40), (unsigned long long) nkeys);
	if (st != SR_MEM_OK)
	{
		if (m->dir)
			for (size_t k = 0; k < ((size_t) 1 << dirbits); k++)
			{
				MPart	   *p = m->dir[k];

				if (p && k == (size_t) p->prefix << (dirbits - p->depth))
					MPartFree(alloc, p);
			}
		SrMemFree(alloc, m->dir);
		m->dir = NULL;
		m->dirbits = 0;
		MembUnmap(m);
		SrMembFree(m);
		return st;
	}
	m->nkeys = nkeys;
	*lsn = Get64(f + 24);
	*out = m;
	return SR_MEM_OK;
}

/* ---- the redo log ---- */

struct SrMembRedo
{
	const SrMemAllocator *alloc;
	int			fd;
	uint32_t	table_oid;
	off_t		end;			/* of the last complete transaction */
	uint8_t    *buf;			/* this transaction's records */
	size_t		len;
	size_t		cap;
	char		path[1024];
};

static uint32_t
RecordCrc(const uint8_t *r, size_t len)
{
	uint32_t	c = SrCrc32cUpdate(SrCrc32cInit(), r, 4);

	return SrCrc32cFinal(SrCrc32cUpdate(c, r + 8, len - 8));
}

/* a whole record within left bytes, its header consistent, its CRC right */
static bool
RecordValid(const uint8_t *r, size_t left)
{
	uint32_t	len;

	if (left < RDO_RECORD)
		return false;
	len = Get32(r);
	return len >= RDO_RECORD && len <= left && (len - RDO_RECORD) % 8 == 0 &&
		Get32(r + 20) == (len - RDO_RECORD) / 8 &&
		r[16] >= MREDO_SET && r[16] <= MREDO_COMMIT && !r[17] && !r[18] && !r[19] &&
		RecordCrc(r, len) == Get32(r + 4);
}

/*
 * Where the file's last transaction starts, by its COMMIT record at the end
 * of the file (which records the bytes before it); SIZE_MAX if there is none.
 */
static size_t
FinalTxnStart(const uint8_t *f, size_t flen)
{
	const uint8_t *c = f + flen - RDO_RECORD;
	uint64_t	bytes;

	if (flen < RDO_HEADER + RDO_RECORD || !RecordValid(c, RDO_RECORD) || c[16] != MREDO_COMMIT)
		return SIZE_MAX;
	bytes = Get64(c + 24);
	return bytes <= flen - RDO_RECORD - RDO_HEADER ? flen - RDO_RECORD - bytes : SIZE_MAX;
}

/* is there a valid COMMIT record after off?  (records are 8-aligned) */
static bool
CommitAfter(const uint8_t *f, size_t flen, size_t off)
{
	for (size_t o = off + 8; o + RDO_RECORD <= flen; o += 8)
		if (f[o + 16] == MREDO_COMMIT && RecordValid(f + o, flen - o))
			return true;
	return false;
}

static bool
RedoPut(SrMembRedo *redo, int op, uint64_t lsn, SrMembKey key, const int64_t *ids, int n)
{
	size_t		len = RDO_RECORD + (size_t) n * 8;
	uint8_t    *r;

	if (redo->len + len > redo->cap)
	{
		size_t		cap = redo->cap ? redo->cap : 4096;
		uint8_t    *nb;

		while (cap < redo->len + len)
			cap *= 2;
		if ((nb = SrMemAlloc(redo->alloc, cap)) == NULL)
			return false;		/* the caller makes no change without its record */
		if (redo->len)
			memcpy(nb, redo->buf, redo->len);
		SrMemFree(redo->alloc, redo->buf);
		redo->buf = nb;
		redo->cap = cap;
	}
	r = redo->buf + redo->len;
	memset(r, 0, RDO_RECORD);
	PUT(r, 0, uint32_t, (uint32_t) len);
	PUT(r, 8, uint64_t, lsn);
	r[16] = (uint8_t) op;
	PUT(r, 20, uint32_t, (uint32_t) n);
	PUT(r, 24, uint64_t, key.hi);
	PUT(r, 32, uint64_t, key.lo);
	if (n)
		memcpy(r + RDO_RECORD, ids, (size_t) n * 8);
	PUT(r, 4, uint32_t, RecordCrc(r, len));
	redo->len += len;
	return true;
}

SrMemStatus
MRedoNote(SrMembRedo *redo, int op, SrMembKey key, const int64_t *ids, int n)
{
	return RedoPut(redo, op, 0, key, ids, n) ? SR_MEM_OK : SR_MEM_NOMEM;
}

size_t
MRedoMark(SrMembRedo *redo)
{
	return redo->len;
}

void
MRedoRewind(SrMembRedo *redo, size_t mark)
{
	redo->len = mark;
}

typedef struct RedoScan
{
	off_t		end;			/* end of the last complete transaction */
	off_t		cut;			/* where discard_after cuts, or -1 */
	uint64_t	last_lsn;
	bool		torn;
} RedoScan;

/*
 * Walk the records of f[0, flen); apply (if m) the transactions committed
 * in (after, upto].  A damaged record that is the file's last is a torn
 * write; one followed by more data is corruption.
 */
static SrMemStatus
RedoWalk(const uint8_t *f, size_t flen, const char *path, uint32_t table_oid,
		 SrMemb *m, uint64_t after, uint64_t upto, RedoScan *sc, char *errbuf)
{
	size_t		off = RDO_HEADER,
				group = RDO_HEADER;
	uint64_t	prev = 0;

	sc->end = RDO_HEADER;
	sc->cut = -1;
	sc->last_lsn = 0;
	sc->torn = false;
	if (flen < RDO_HEADER || memcmp(f, RDO_MAGIC, 8) != 0 ||
		Get32(f + RDO_HEADER - 4) != SrCrc32c(f, RDO_HEADER - 4))
		return CORRUPT("membership redo log \"%s\" has a corrupt header", path);
	if (Get32(f + 8) != RDO_VERSION)
		return CORRUPT("membership redo log \"%s\" has version %u, expected %d", path, Get32(f + 8), RDO_VERSION);
	if (Get32(f + 12) != table_oid)
		return CORRUPT("membership redo log \"%s\" belongs to table %u, not %u", path, Get32(f + 12), table_oid);
	while (off < flen)
	{
		const uint8_t *r = f + off;
		size_t		left = flen - off;
		uint32_t	len;

		if (!RecordValid(r, left))
		{
			/*
			 * A crash mid-write damages only the last transaction (written
			 * in one go, not acknowledged until fsynced); damage with
			 * another committed transaction after it is corruption.
			 */
			if (CommitAfter(f, flen, off) && FinalTxnStart(f, flen) != group)
				return CORRUPT("membership redo log \"%s\" is corrupt at byte %zu, before committed changes",
							   path, off);
			sc->torn = true;
			break;
		}
		len = Get32(r);
		if (r[16] == MREDO_COMMIT)
		{
			uint64_t	lsn = Get64(r + 8);

			if (lsn < prev)
				return CORRUPT("membership redo log \"%s\" goes back from LSN %llX to %llX at byte %zu",
							   path, (unsigned long long) prev, (unsigned long long) lsn, off);
			prev = lsn;
			if (lsn > upto)
			{
				if (sc->cut < 0)
					sc->cut = (off_t) group;
			}
			else if (lsn > after && m)
			{
				SrMembRedo *saved = m->redo;
				SrMemStatus st = SR_MEM_OK;

				m->redo = NULL;
				for (size_t g = group; g < off && st == SR_MEM_OK; g += Get32(f + g))
				{
					const uint8_t *q = f + g;
					SrMembKey	key = {Get64(q + 24), Get64(q + 32)};
					int			cnt = (int) Get32(q + 20);

					if (q[16] == MREDO_SET)
					{
						int64_t    *ids = SrMemAlloc(m->alloc, (cnt ? cnt : 1) * sizeof(int64_t));

						if (ids == NULL)
							st = SR_MEM_NOMEM;
						else
						{
							memcpy(ids, q + RDO_RECORD, (size_t) cnt * 8);
							st = SrMembSet(m, key, ids, cnt);
							SrMemFree(m->alloc, ids);
						}
					}
					else if (q[16] == MREDO_DROP && cnt == 1)
						st = SrMembDropShape(m, (int64_t) Get64(q + RDO_RECORD));
					else if (q[16] == MREDO_CLEAR)
						st = SrMembClear(m);
				}
				m->redo = saved;
				if (st != SR_MEM_OK)
					return Fail(errbuf, st, "could not replay membership redo log \"%s\" at byte %zu",
								path, group);
			}
			if (lsn <= upto)
				sc->last_lsn = lsn;
			off += len;
			sc->end = (off_t) off;
			group = off;
			continue;
		}
		off += len;
	}
	/* records after the last COMMIT are a transaction that never finished */
	if (group < flen)
		sc->torn = true;
	return SR_MEM_OK;
}

static SrMemStatus
ReadWhole(const char *path, bool writable, int *fdp, uint8_t **fp, size_t *flenp,
		  const SrMemAllocator *alloc, char *errbuf)
{
	int			fd = open(path, writable ? O_RDWR : O_RDONLY);
	struct stat sb;
	uint8_t    *f;
	size_t		got = 0;

	if (fd < 0)
		return Fail(errbuf, errno == ENOENT ? SR_MEM_BADARG : SR_MEM_FAILED,
					"could not open \"%s\": %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || (f = SrMemAlloc(alloc, (size_t) sb.st_size + 1)) == NULL)
	{
		close(fd);
		return Fail(errbuf, SR_MEM_FAILED, "could not read \"%s\"", path);
	}
	while (got < (size_t) sb.st_size)
	{
		ssize_t		r = pread(fd, f + got, (size_t) sb.st_size - got, (off_t) got);

		if (r <= 0)
		{
			if (r < 0 && errno == EINTR)
				continue;
			SrMemFree(alloc, f);
			close(fd);
			return Fail(errbuf, SR_MEM_FAILED, "could not read \"%s\": %s", path,
						r < 0 ? strerror(errno) : "unexpected end of file");
		}
		got += (size_t) r;
	}
	*fdp = fd;
	*fp = f;
	*flenp = got;
	return SR_MEM_OK;
}

SrMemStatus
SrMembRedoOpen(const char *path, uint32_t table_oid, const SrMemAllocator *alloc,
			   SrMembRedo **out, char *errbuf)
{
	SrMembRedo *redo;
	int			fd;
	uint8_t    *f = NULL;
	size_t		flen = 0;
	SrMemStatus st;
	RedoScan	sc;

	fd = open(path, O_RDWR);
	if (fd < 0 && errno == ENOENT)
	{
		/* a new log appears whole or not at all: header, fsync, rename */
		uint8_t		h[RDO_HEADER];
		char		tmp[1100];

		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		memset(h, 0, sizeof(h));
		memcpy(h, RDO_MAGIC, 8);
		PUT(h, 8, uint32_t, RDO_VERSION);
		PUT(h, 12, uint32_t, table_oid);
		PUT(h, RDO_HEADER - 4, uint32_t, SrCrc32c(h, RDO_HEADER - 4));
		fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || !WriteAll(fd, h, RDO_HEADER, 0) || SrMembFsync(fd) != 0 ||
			rename(tmp, path) != 0 || !SyncDir(path))
		{
			st = Fail(errbuf, SR_MEM_FAILED, "could not create \"%s\": %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			unlink(tmp);
			return st;
		}
		sc.end = RDO_HEADER;
	}
	else if (fd < 0)
		return Fail(errbuf, SR_MEM_FAILED, "could not open \"%s\": %s", path, strerror(errno));
	else
	{
		/* an existing log: find its end, cutting a torn tail */
		close(fd);
		if ((st = ReadWhole(path, true, &fd, &f, &flen, alloc, errbuf)) != SR_MEM_OK)
			return st;
		st = RedoWalk(f, flen, path, table_oid, NULL, 0, UINT64_MAX, &sc, errbuf);
		SrMemFree(alloc, f);
		if (st == SR_MEM_OK && (size_t) sc.end < flen &&
			(ftruncate(fd, sc.end) != 0 || SrMembFsync(fd) != 0))
			st = Fail(errbuf, SR_MEM_FAILED, "could not truncate \"%s\": %s", path, strerror(errno));
		if (st != SR_MEM_OK)
		{
			close(fd);
			return st;
		}
	}
	if ((redo = SrMemAlloc(alloc, sizeof(SrMembRedo))) == NULL)
	{
		close(fd);
		return Fail(errbuf, SR_MEM_NOMEM, "out of memory opening \"%s\"", path);
	}
	memset(redo, 0, sizeof(*redo));
	redo->alloc = alloc;
	redo->fd = fd;
	redo->table_oid = table_oid;
	redo->end = sc.end;
	snprintf(redo->path, sizeof(redo->path), "%s", path);
	*out = redo;
	return SR_MEM_OK;
}

void
SrMembRedoAttach(SrMemb *m, SrMembRedo *redo)
{
	m->redo = redo;
}

SrMemStatus
SrMembRedoCommit(SrMembRedo *redo, uint64_t lsn, char *errbuf)
{
	SrMemStatus st = SrMembRedoWrite(redo, lsn, errbuf);

	if (st == SR_MEM_OK)
		st = SrMembRedoSync(redo, errbuf);
	return st;
}

SrMemStatus
SrMembRedoSync(SrMembRedo *redo, char *errbuf)
{
	if (SrMembFsync(redo->fd) != 0)
		return Fail(errbuf, SR_MEM_FAILED, "could not fsync \"%s\": %s", redo->path, strerror(errno));
	return SR_MEM_OK;
}

SrMemStatus
SrMembRedoWrite(SrMembRedo *redo, uint64_t lsn, char *errbuf)
{
	SrMemStatus st = SR_MEM_OK;

	if (redo->len == 0)
		return SR_MEM_OK;		/* nothing changed */
	/* the COMMIT record carries its transaction's length (see RedoWalk) */
	if (!RedoPut(redo, MREDO_COMMIT, lsn, (SrMembKey) {redo->len, 0}, NULL, 0))
		st = Fail(errbuf, SR_MEM_NOMEM, "out of memory buffering membership changes for \"%s\"", redo->path);
	else if (!WriteAll(redo->fd, redo->buf, redo->len, redo->end))
	{
		st = Fail(errbuf, SR_MEM_FAILED, "could not write \"%s\": %s", redo->path, strerror(errno));
		/* leave no partial transaction behind for the next append */
		(void) !ftruncate(redo->fd, redo->end);
	}
	else
		redo->end += (off_t) redo->len;
	redo->len = 0;
	return st;
}

void
SrMembRedoAbort(SrMembRedo *redo)
{
	redo->len = 0;
}

void
SrMembRedoClose(SrMembRedo *redo)
{
	if (redo == NULL)
		return;
	close(redo->fd);
	SrMemFree(redo->alloc, redo->buf);
	SrMemFree(redo->alloc, redo);
}

uint64_t
SrMembRedoSize(const SrMembRedo *redo)
{
	return (uint64_t) redo->end;
}

SrMemStatus
SrMembRedoReset(SrMembRedo *redo, char *errbuf)
{
	redo->len = 0;
	if (ftruncate(redo->fd, RDO_HEADER) != 0 || SrMembFsync(redo->fd) != 0)
		return Fail(errbuf, SR_MEM_FAILED, "could not truncate \"%s\": %s", redo->path, strerror(errno));
	redo->end = RDO_HEADER;
	return SR_MEM_OK;
}

SrMemStatus
SrMembRedoReplay(const char *path, uint32_t table_oid, SrMemb *m, uint64_t after,
				 uint64_t upto, bool discard_after, uint64_t *last_lsn, char *errbuf)
{
	return SrMembRedoReplayTorn(path, table_oid, m, after, upto, discard_after,
								last_lsn, NULL, errbuf);
}

SrMemStatus
SrMembRedoReplayTorn(const char *path, uint32_t table_oid, SrMemb *m,
					 uint64_t after, uint64_t upto, bool discard_after,
					 uint64_t *last_lsn, bool *torn, char *errbuf)
{
	int			fd;
	uint8_t    *f;
	size_t		flen;
	SrMemStatus st;
	RedoScan	sc;

	if ((st = ReadWhole(path, true, &fd, &f, &flen, m->alloc, errbuf)) != SR_MEM_OK)
		return st;
	st = RedoWalk(f, flen, path, table_oid, m, after, upto, &sc, errbuf);
	SrMemFree(m->alloc, f);
	if (st == SR_MEM_OK)
	{
		off_t		cut = sc.end;

		if (discard_after && sc.cut >= 0)
			cut = sc.cut;
		if ((size_t) cut < flen && (ftruncate(fd, cut) != 0 || SrMembFsync(fd) != 0))
			st = Fail(errbuf, SR_MEM_FAILED, "could not truncate \"%s\": %s", path, strerror(errno));
		if (last_lsn)
			*last_lsn = sc.last_lsn;
		/* cut-off bytes that no later commit past upto shows to be later */
		if (torn)
			*torn = (size_t) sc.end < flen && sc.cut < 0;
	}
	close(fd);
	return st;
}
