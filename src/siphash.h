/*
 * siphash.h - SipHash-2-4, the keyed 64-bit PRF of Aumasson and Bernstein
 * (2012), for hashing attacker-influenced strings (client IPs, HELO
 * names) into hash tables without letting anyone predict collisions.
 * Owns: the function only. Not: choosing or keeping the key.
 * Threads: pure function. Errors: none; any length (NULL when len is 0).
 */
#ifndef WARDEN_SIPHASH_H
#define WARDEN_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns SipHash-2-4 of len bytes at data under the 128-bit key (bytes
 * read little-endian, as the paper specifies).
 */
uint64_t	siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
