/* SPDX-License-Identifier: MIT */
/*
 * invariant.h - invariants that execute.
 *
 * MV_ASSERT(cond) checks cond in debug builds (MV_DEBUG: `make DEBUG=1`, and
 * every sanitizer build, `make SAN=asan|tsan`) and stops the process at the
 * first broken invariant, with the condition, file and line on stderr, then
 * __builtin_trap(): a debugger or a sanitizer shows where.  In the default
 * build it compiles to nothing and does not evaluate cond (which must have
 * no side effect), so the library never stops a VMM's process and never
 * prints: it reports through its messages and counters instead.
 *
 * Static layout checks use C11 _Static_assert beside the layout they guard.
 */
#ifndef MV_INVARIANT_H
#define MV_INVARIANT_H

#ifdef MV_DEBUG
#include <string.h>
#include <unistd.h>

static inline void mv__assert_fail(const char *what, const char *file, int line)
{
	char num[16];
	int i = (int)sizeof(num);

	do
		num[--i] = (char)('0' + line % 10);
	while ((line /= 10) && i > 0);
	/* write(2) only: no stdio locks, callable in any state */
	if (write(2, "memvisor: invariant broken: ", 28) < 0 ||
	    write(2, what, strlen(what)) < 0 || write(2, " at ", 4) < 0 ||
	    write(2, file, strlen(file)) < 0 || write(2, ":", 1) < 0 ||
	    write(2, num + i, sizeof(num) - (size_t)i) < 0 ||
	    write(2, "\n", 1) < 0)
		__builtin_trap();
	__builtin_trap();
}

#define MV_ASSERT(cond) \
	((cond) ? (void)0 : mv__assert_fail(#cond, __FILE__, __LINE__))
#else
#define MV_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

#endif /* MV_INVARIANT_H */
