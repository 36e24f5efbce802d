/*
 * keycanon.c - canonical binary form of replica identity keys
 */
#include "keycanon.h"

#include <math.h>
#include <string.h>

void
SrKeyBufInit(SrKeyBuf *kb, const SrMemAllocator *alloc)
{
	memset(kb, 0, sizeof(*kb));
	kb->alloc = alloc;
}

void
SrKeyBufReset(SrKeyBuf *kb)
{
	kb->len = 0;
	kb->failed = false;
}

void
SrKeyBufFree(SrKeyBuf *kb)
{
	SrMemFree(kb->alloc, kb->data);
	SrKeyBufInit(kb, kb->alloc);
}

static bool
Reserve(SrKeyBuf *kb, size_t extra)
{
	size_t		cap;
	uint8_t    *p;

	if (kb->failed)
		return false;
	if (kb->len + extra <= kb->cap)
		return true;
	cap = kb->cap ? kb->cap : 64;
	while (cap < kb->len + extra)
		cap *= 2;
	p = SrMemAlloc(kb->alloc, cap);
	if (p == NULL)
	{
		kb->failed = true;
		return false;
	}
	if (kb->len)
		memcpy(p, kb->data, kb->len);
	SrMemFree(kb->alloc, kb->data);
	kb->data = p;
	kb->cap = cap;
	return true;
}

static void
Put(SrKeyBuf *kb, const void *p, size_t len)
{
	if (!Reserve(kb, len))
		return;
	memcpy(kb->data + kb->len, p, len);
	kb->len += len;
}

static void
PutTag(SrKeyBuf *kb, char tag)
{
	Put(kb, &tag, 1);
}

static void
PutUleb(SrKeyBuf *kb, uint64_t v)
{
	uint8_t		b[10];
	int			n = 0;

	do
	{
		b[n] = v & 0x7F;
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	Put(kb, b, n);
}

/* big-endian, so that the bytes of equal values are equal on every host */
static void
PutBe64(SrKeyBuf *kb, uint64_t v)
{
	uint8_t		b[8];

	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = v & 0xFF;
	Put(kb, b, 8);
}

void
SrKeyAddInt(SrKeyBuf *kb, int64_t v)
{
	PutTag(kb, 'i');
	PutBe64(kb, (uint64_t) v);
}

void
SrKeyAddFloat(SrKeyBuf *kb, double v)
{
	uint64_t	bits;

	if (v == 0)
		v = 0;					/* -0 = 0 */
	PutTag(kb, 'f');
	if (isnan(v))
		bits = UINT64_C(0x7FF8000000000000);	/* all NaNs are equal */
	else
		memcpy(&bits, &v, 8);
	PutBe64(kb, bits);
}

void
SrKeyAddBool(SrKeyBuf *kb, bool v)
{
	PutTag(kb, v ? 'T' : 'F');
}

void
SrKeyAddUuid(SrKeyBuf *kb, const uint8_t uuid[16])
{
	PutTag(kb, 'u');
	Put(kb, uuid, 16);
}

void
SrKeyAddBytes(SrKeyBuf *kb, const void *p, size_t len,
			  bool strip_trailing_spaces)
{
	if (strip_trailing_spaces)
		while (len > 0 && ((const char *) p)[len - 1] == ' ')
			len--;
	PutTag(kb, 't');
	PutUleb(kb, len);
	Put(kb, p, len);
}

/*
 * Numeric: sign, the position of the decimal point relative to the first
 * significant digit, then the significant digits, so that 1.50, 01.5 and
 * 1.5 agree.
 */
bool
SrKeyAddNumeric(SrKeyBuf *kb, const char *str)
{
	const char *p = str;
	bool		neg = false;
	const char *digits;
	size_t		nd = 0;
	long		point = -1;		/* digits before the point */
	long		dot;			/* where the point is in the string, or -1 */
	size_t		first,
				last;

	if (strcmp(str, "NaN") == 0 || strcmp(str, "Infinity") == 0 ||
		strcmp(str, "-Infinity") == 0)
	{
		PutTag(kb, 'n');
		PutTag(kb, str[0]);
		return true;
	}
	if (*p == '-' || *p == '+')
		neg = (*p++ == '-');
	if (*p == '\0')
		return false;
	digits = p;
	for (; *p; p++)
	{
		if (*p == '.' && point < 0)
			point = (long) nd;
		else if (*p >= '0' && *p <= '9')
			nd++;
		else
			return false;
	}
	dot = point;
	if (point < 0)
		point = (long) nd;

	/*
	 * Leading zeros move the point; trailing zeros are scale only.  The
	 * digits are read in place (a numeric may have 147,455 of them).
	 */
#define DIGIT(i) (digits[(i) + (dot >= 0 && (long) (i) >= dot ? 1 : 0)])
	for (first = 0; first < nd && DIGIT(first) == '0'; first++)
		point--;
	for (last = nd; last > first && DIGIT(last - 1) == '0'; last--)
		;
	PutTag(kb, 'n');
	if (last == first)
	{
		PutTag(kb, '0');		/* zero has one form, whatever sign or scale */
		return true;
	}
	PutTag(kb, neg ? '-' : '+');
	PutBe64(kb, (uint64_t) (int64_t) point);
	PutUleb(kb, last - first);
	for (size_t i = first; i < last; i++)
	{
		char		c = DIGIT(i);

		Put(kb, &c, 1);
	}
#undef DIGIT
	return true;
}

void
SrKeyAddNull(SrKeyBuf *kb)
{
	PutTag(kb, 'N');
}

void
SrKeyAddRecord(SrKeyBuf *kb, int nfields)
{
	PutTag(kb, 'r');
	PutUleb(kb, (uint64_t) nfields);
}
