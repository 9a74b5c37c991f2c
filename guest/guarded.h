/* SPDX-License-Identifier: MIT */
/*
 * guarded.h - guest accesses that survive a memory error: a page the host
 * could not read back raises SIGBUS when touched (memvisor poisons it
 * rather than guess its content); an access made through these returns
 * -EFAULT instead of killing the process.
 */
#ifndef MVG_GUARDED_H
#define MVG_GUARDED_H

#include <stddef.h>

/* Installs the SIGBUS handler the calls below need, unless it is there:
 * call when guest threads start, and before a verification. */
void mvg_guarded_init(void);
/* Runs fn(arg), which accesses guest memory: 0, or -EFAULT if it raised
 * SIGBUS (fn was cut short there). */
int mvg_guarded(void (*fn)(void *), void *arg);
/* memcmp of len guest bytes with want: 0 same, 1 different, or -EFAULT. */
int mvg_guarded_cmp(const void *guest, const void *want, size_t len);
/* memcpy of len bytes into guest memory: 0 or -EFAULT. */
int mvg_guarded_copy(void *guest, const void *src, size_t len);

#endif /* MVG_GUARDED_H */
