/*
 * crc32c.h - CRC-32C (Castagnoli) of the membership module's files
 *
 * The SSE 4.2 instruction when the CPU has it (checked once at run time),
 * else a slice-by-8 table.  Same polynomial and conventions as PostgreSQL's
 * pg_crc32c: start with SrCrc32cInit(), feed with SrCrc32cUpdate(), finish
 * with SrCrc32cFinal().
 */
#ifndef SR_CRC32C_H
#define SR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#define SrCrc32cInit()		UINT32_C(0xFFFFFFFF)
#define SrCrc32cFinal(c)	((c) ^ UINT32_C(0xFFFFFFFF))

extern uint32_t SrCrc32cUpdate(uint32_t crc, const void *buf, size_t len);
/* the table method alone (for tests of the instruction path) */
extern uint32_t SrCrc32cUpdateSoftware(uint32_t crc, const uint8_t *p, size_t len);

/* the finished CRC of one buffer */
static inline uint32_t
SrCrc32c(const void *buf, size_t len)
{
	return SrCrc32cFinal(SrCrc32cUpdate(SrCrc32cInit(), buf, len));
}

#endif							/* SR_CRC32C_H */
