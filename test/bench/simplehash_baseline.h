/* simplehash_baseline.h - the membership benchmark's plain baseline */
#ifndef SIMPLEHASH_BASELINE_H
#define SIMPLEHASH_BASELINE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ShBase ShBase;

extern ShBase *ShCreate(size_t hint);
extern void ShSet(ShBase *b, uint64_t hi, uint64_t lo, const int64_t *ids, int n);
extern int	ShLookup(ShBase *b, uint64_t hi, uint64_t lo, int64_t *out, int max);
extern void ShDelete(ShBase *b, uint64_t hi, uint64_t lo);
extern size_t ShBytes(ShBase *b);
extern void ShFree(ShBase *b);

#endif
