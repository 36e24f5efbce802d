/*
 * mix.h - 64-bit mixing shared by the membership module's structures
 */
#ifndef SR_MEMBERSHIP_MIX_H
#define SR_MEMBERSHIP_MIX_H

#include <stdint.h>

/* The 64-bit finalizer of MurmurHash3: a bijection */
static inline uint64_t
SrMix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

/* splitmix64: the next seed of a construction's retries */
static inline uint64_t
SrNextSeed(uint64_t *state)
{
	uint64_t	z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

#endif							/* SR_MEMBERSHIP_MIX_H */
