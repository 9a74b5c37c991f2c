// SPDX-License-Identifier: MIT
/*
 * util.c - small utilities every layer uses: the one monotonic clock and
 * deadline helper, condition variables on that clock, and the one random
 * generator.  Platform layer: calls nothing of the engine.
 *
 * Invariants: every timed wait in the engine is on CLOCK_MONOTONIC (a
 * wall-clock step can neither stretch nor cut a wait); the generator's
 * state is never 0 (xorshift would stay 0), which its callers' seeds
 * guarantee.
 *
 * Locks: none.
 */
#include <time.h>

#include "util.h"

uint64_t mv__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void mv__deadline_ms(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	ts->tv_sec += ms / 1000 + ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

int mv__cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;
	int err;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	err = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return -err;
}

uint64_t mv__rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

uint32_t mv__moving_average(uint32_t avg, uint32_t sample, unsigned weight)
{
	return (uint32_t)(((uint64_t)avg * (weight - 1) + sample + weight / 2) /
			  weight);
}
