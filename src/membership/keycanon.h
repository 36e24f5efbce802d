/*
 * keycanon.h - canonical binary form of a replica identity key
 *
 * The membership index identifies a row by a 128-bit hash of its replica
 * identity columns.  Two values the key's equality operators call equal
 * must give the same bytes (numeric 1.0 and 1.00, float -0 and 0, bpchar
 * 'a ' and 'a'), and two unequal keys must give different bytes: every
 * column is self-delimiting (a type tag, then a fixed width or a length), so
 * a composite key ('ab','c') differs from ('a','bc').  The plugin maps each
 * Datum to one of the calls below by type; the encoding is pure C.
 */
#ifndef SR_KEYCANON_H
#define SR_KEYCANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memalloc.h"

typedef struct SrKeyBuf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
	bool		failed;			/* an allocation failed; the key is unusable */
	const SrMemAllocator *alloc;
} SrKeyBuf;

extern void SrKeyBufInit(SrKeyBuf *kb, const SrMemAllocator *alloc);
extern void SrKeyBufReset(SrKeyBuf *kb);
extern void SrKeyBufFree(SrKeyBuf *kb);

/* int2, int4, int8, oid, date, time, timestamp(tz): the integer value */
extern void SrKeyAddInt(SrKeyBuf *kb, int64_t v);
/* float4 (widened exactly) and float8: -0 is 0, every NaN is one NaN */
extern void SrKeyAddFloat(SrKeyBuf *kb, double v);
extern void SrKeyAddBool(SrKeyBuf *kb, bool v);
/* uuid: its 16 bytes */
extern void SrKeyAddUuid(SrKeyBuf *kb, const uint8_t uuid[16]);
/*
 * text, varchar, bytea: the bytes (deterministic collations compare bytes);
 * bpchar: pass strip_trailing_spaces, since 'a ' = 'a' for bpchar
 */
extern void SrKeyAddBytes(SrKeyBuf *kb, const void *p, size_t len,
						  bool strip_trailing_spaces);
/*
 * numeric, from its text output ("-001.2300", "NaN", "Infinity"): returns
 * false (adding nothing) if str is not a numeric literal
 */
extern bool SrKeyAddNumeric(SrKeyBuf *kb, const char *str);
extern void SrKeyAddNull(SrKeyBuf *kb);
/* a composite value of nfields fields: add the fields after this */
extern void SrKeyAddRecord(SrKeyBuf *kb, int nfields);

#endif							/* SR_KEYCANON_H */
