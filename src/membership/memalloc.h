/*
 * memalloc.h - the allocator hook shared by the membership module
 *
 * Pure C, no PostgreSQL headers: the module is built both into the extension
 * (where the hook allocates in a memory context) and into standalone unit
 * tests and benchmarks (where a NULL hook means malloc/free).
 */
#ifndef SR_MEMALLOC_H
#define SR_MEMALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

typedef struct SrMemAllocator
{
	/* returns NULL on failure (palloc-style allocators may throw instead) */
	void	   *(*alloc) (void *ctx, size_t size);
	void		(*free) (void *ctx, void *ptr);
	void	   *ctx;
} SrMemAllocator;

static inline void *
SrMemAlloc(const SrMemAllocator *a, size_t size)
{
	if (size == 0)
		size = 1;
	return a ? a->alloc(a->ctx, size) : malloc(size);
}

static inline void
SrMemFree(const SrMemAllocator *a, void *ptr)
{
	if (ptr == NULL)
		return;
	if (a)
		a->free(a->ctx, ptr);
	else
		free(ptr);
}

/* Error codes of the membership module's build and view functions. */
typedef enum SrMemStatus
{
	SR_MEM_OK = 0,
	SR_MEM_NOMEM,				/* the allocator returned NULL */
	SR_MEM_BADARG,				/* unsupported width, too many keys, ... */
	SR_MEM_FAILED,				/* construction gave up after its retries */
	SR_MEM_CORRUPT				/* a serialized image failed validation */
} SrMemStatus;

#endif							/* SR_MEMALLOC_H */
