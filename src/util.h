/* SPDX-License-Identifier: MIT */
/*
 * util.h - the clock, deadlines and random numbers (util.c).
 */
#ifndef MV_UTIL_H
#define MV_UTIL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t mv__now_ms(void);
/* *ts becomes ms from now on CLOCK_MONOTONIC, for pthread_cond_timedwait
 * on a condition made by mv__cond_init_monotonic. */
void mv__deadline_ms(struct timespec *ts, unsigned ms);
/* pthread_cond_init on CLOCK_MONOTONIC: 0 or -errno. */
int mv__cond_init_monotonic(pthread_cond_t *c);
/* xorshift64*: the next number of *state (never seeded with 0). */
uint64_t mv__rand(uint64_t *state);

/* An exponential moving average: `avg` after one more `sample`, weighted
 * 1/`weight` (rounded to nearest). */
uint32_t mv__moving_average(uint32_t avg, uint32_t sample, unsigned weight);

#endif /* MV_UTIL_H */
