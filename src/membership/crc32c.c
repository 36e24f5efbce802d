/*
 * crc32c.c - CRC-32C, hardware or slice-by-8
 *
 * Written from the polynomial (0x82F63B78, reflected); the table method is
 * the textbook slice-by-8.  Segment validation reads every byte of a file of
 * up to ~100 MB, so the instruction path matters: it is ~10x the table.
 */
#include "crc32c.h"

#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>
#define SR_HAVE_SSE42_PATH 1
#endif

static uint32_t table[8][256];
static bool table_ready;

static void
BuildTable(void)
{
	for (int i = 0; i < 256; i++)
	{
		uint32_t	c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ UINT32_C(0x82F63B78) : c >> 1;
		table[0][i] = c;
	}
	for (int i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
	table_ready = true;
}

uint32_t
SrCrc32cUpdateSoftware(uint32_t crc, const uint8_t *p, size_t len)
{
	if (!table_ready)
		BuildTable();
	while (len >= 8)
	{
		uint64_t	w;

		memcpy(&w, p, 8);		/* little-endian hosts only (see memalloc.h) */
		w ^= crc;
		crc = table[7][w & 0xFF] ^ table[6][(w >> 8) & 0xFF] ^
			table[5][(w >> 16) & 0xFF] ^ table[4][(w >> 24) & 0xFF] ^
			table[3][(w >> 32) & 0xFF] ^ table[2][(w >> 40) & 0xFF] ^
			table[1][(w >> 48) & 0xFF] ^ table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
	return crc;
}

#ifdef SR_HAVE_SSE42_PATH
__attribute__((target("sse4.2")))
static uint32_t
UpdateSse42(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t	c = crc;

	while (len >= 8)
	{
		uint64_t	w;

		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t) c;
	while (len-- > 0)
		crc = _mm_crc32_u8(crc, *p++);
	return crc;
}
#endif

uint32_t
SrCrc32cUpdate(uint32_t crc, const void *buf, size_t len)
{
#ifdef SR_HAVE_SSE42_PATH
	static int	have = -1;

	if (have < 0)
	{
		__builtin_cpu_init();
		have = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	}
	if (have)
		return UpdateSse42(crc, buf, len);
#endif
	return SrCrc32cUpdateSoftware(crc, buf, len);
}
