// SPDX-License-Identifier: MIT
/*
 * test_zpool.c - the compression cache's packed store: every byte comes back
 * through stores, frees and compaction, the cap holds, handles fit in a pmap
 * entry and outlive moves, frames come back, and the memory used stays
 * within 10% of the bytes stored.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inject.h"
#include "zpool.h"

#define MiB (1ull << 20)
#define NOCAP UINT64_MAX

struct obj {
	uint64_t handle;
	uint64_t seed; /* the content is fill()'s bytes for this seed */
	uint32_t size;
};

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t rnd_range(uint64_t *s, uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)(splitmix(s) % (hi - lo + 1));
}

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = splitmix(&s);

		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

static int put_content(struct mv__zpool *zp, const struct obj *o)
{
	uint8_t buf[MV_ZPOOL_MAX_OBJ];

	fill(buf, o->size, o->seed);
	return mv__zpool_write(zp, o->handle, buf, o->size);
}

static void store(struct mv__zpool *zp, struct obj *o, uint32_t size,
		  uint64_t seed)
{
	o->size = size;
	o->seed = seed;
	assert_int_equal(mv__zpool_alloc(zp, size, &o->handle), 0);
	assert_int_equal(put_content(zp, o), 0);
}

static bool intact(struct mv__zpool *zp, const struct obj *o)
{
	uint8_t want[MV_ZPOOL_MAX_OBJ], got[MV_ZPOOL_MAX_OBJ];

	fill(want, o->size, o->seed);
	return mv__zpool_read(zp, o->handle, got, sizeof(got)) ==
		       (int)o->size &&
	       !memcmp(want, got, o->size);
}

static uint64_t count_broken(struct mv__zpool *zp, const struct obj *objs,
			     size_t n)
{
	uint64_t bad = 0;

	for (size_t i = 0; i < n; i++)
		bad += objs[i].handle && !intact(zp, &objs[i]);
	return bad;
}

static void shuffle(struct obj *objs, size_t n, uint64_t *s)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = splitmix(s) % i;
		struct obj t = objs[i - 1];

		objs[i - 1] = objs[j];
		objs[j] = t;
	}
}

static double density(struct mv__zpool *zp)
{
	struct mv__zpool_stats st;

	mv__zpool_stats(zp, &st);
	return st.used_bytes ? (double)st.stored_bytes / st.used_bytes : 0;
}

static void test_every_size_from_1_to_2048_reads_back_exactly(void **state)
{
	struct obj *objs = calloc(MV_ZPOOL_MAX_OBJ + 1, sizeof(*objs));
	struct mv__zpool *zp;

	(void)state;
	assert_non_null(objs);
	assert_int_equal(mv__zpool_create(NOCAP, &zp), 0);
	for (uint32_t size = 1; size <= MV_ZPOOL_MAX_OBJ; size++)
		store(zp, &objs[size], size, size * 7919ull);
	for (uint32_t size = 1; size <= MV_ZPOOL_MAX_OBJ; size++) {
		assert_int_equal(mv__zpool_size(zp, objs[size].handle), size);
		assert_true(intact(zp, &objs[size]));
	}
	mv__zpool_destroy(zp);
	free(objs);
}

static void test_handles_fit_in_56_bits_and_are_never_zero(void **state)
{
	enum { N = 70000 };
	struct obj *objs = calloc(N, sizeof(*objs));
	struct mv__zpool *zp;
	uint64_t s = 1;

	(void)state;
	assert_non_null(objs);
	assert_int_equal(mv__zpool_create(NOCAP, &zp), 0);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < N; i++) {
			if (objs[i].handle)
				assert_int_equal(
					mv__zpool_free(zp, objs[i].handle), 0);
			store(zp, &objs[i], rnd_range(&s, 1, 600), i);
			assert_true(objs[i].handle != 0);
			assert_true(objs[i].handle <
				    1ull << MV_ZPOOL_HANDLE_BITS);
		}
	}
	assert_int_equal(count_broken(zp, objs, N), 0);
	mv__zpool_destroy(zp);
	free(objs);
}

static void test_bad_sizes_are_refused(void **state)
{
	struct mv__zpool_stats st;
	struct mv__zpool *zp;
	uint64_t h = 0;

	(void)state;
	assert_int_equal(mv__zpool_create(NOCAP, &zp), 0);
	assert_int_equal(mv__zpool_alloc(zp, 0, &h), -EINVAL);
	assert_int_equal(mv__zpool_alloc(zp, MV_ZPOOL_MAX_OBJ + 1, &h),
			 -EINVAL);
	assert_int_equal(mv__zpool_alloc(zp, SIZE_MAX, &h), -EINVAL);
	mv__zpool_stats(zp, &st);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.frames, 0);
	mv__zpool_destroy(zp);
}

static void test_write_and_read_check_lengths(void **state)
{
	uint8_t buf[MV_ZPOOL_MAX_OBJ] = { 0 };
	struct mv__zpool *zp;
	struct obj o;

	(void)state;
	assert_int_equal(mv__zpool_create(NOCAP, &zp), 0);
	store(zp, &o, 100, 42);
	assert_int_equal(mv__zpool_write(zp, o.handle, buf, 99), -EINVAL);
	assert_int_equal(mv__zpool_write(zp, o.handle, buf, 101), -EINVAL);
	assert_int_equal(mv__zpool_read(zp, o.handle, buf, 99), -ENOBUFS);
	assert_true(intact(zp, &o));
	mv__zpool_destroy(zp);
}

static void test_stale_and_forged_handles_are_refused(void **state)
{
	uint8_t buf[MV_ZPOOL_MAX_OBJ] = { 0 };
	struct mv__zpool *zp;
	struct obj a, b;

	(void)state;
	assert_int_equal(mv__zpool_create(NOCAP, &zp), 0);
	store(zp, &a, 300, 1);
	assert_int_equal(mv__zpool_free(zp, a.handle), 0);
	assert_int_equal(mv__zpool_free(zp, a.handle), -EINVAL);
	/* b takes a's table entry; a's handle must still not reach it */
	store(zp, &b, 300, 2);
	assert_true(b.handle != a.handle);
	assert_int_equal(mv__zpool_read(zp, a.handle, buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(mv__zpool_write(zp, a.handle, buf, 300), -EINVAL);
	assert_int_equal(mv__zpool_size(zp, a.handle), -EINVAL);
	assert_int_equal(mv__zpool_free(zp, a.handle), -EINVAL);
	assert_true(intact(zp, &b));
	assert_int_equal(mv__zpool_size(zp, 0), -EINVAL);
	assert_int_equal(mv__zpool_size(zp, b.handle | 1ull << 60), -EINVAL);
	assert_int_equal(mv__zpool_size(zp, b.handle + 1), -EINVAL);
	assert_int_equal(mv__zpool_size(zp, 0xffffffffull), -EINVAL);
	mv__zpool_destroy(zp);
}

static void test_stats_count_bytes_objects_and_frames(void **state)
{
	struct mv__zpool_stats st;
	struct mv__zpool *zp;
	struct obj objs[100];
	uint64_t sum = 0;

	(void)state;
	assert_int_equal(mv__zpool_create(64 * MiB, &zp), 0);
	for (unsigned i = 0; i < 100; i++) {
		store(zp, &objs[i], 20 * i + 1, i);
		sum += 20 * i + 1;
	}
	mv__zpool_stats(zp, &st);
	assert_int_equal(st.stored_bytes, sum);
	assert_int_equal(st.objects, 100);
	assert_int_equal(st.used_bytes, st.frames * MV_ZPOOL_FRAME_SIZE);
	assert_true(st.used_bytes >= st.stored_bytes);
	assert_int_equal(st.max_bytes, 64 * MiB);
	assert_true(st.meta_bytes > 0);
	assert_int_equal(mv__zpool_free(zp, objs[7].handle), 0);
	mv__zpool_stats(zp, &st);
	assert_int_equal(st.stored_bytes, sum - objs[7].size);
	assert_int_equal(st.objects, 99);
	mv__zpool_destroy(zp);
}

static void test_freeing_every_object_returns_every_frame(void **state)
{
	enum { N = 5000 };
	struct obj *objs = calloc(N, sizeof(*objs));
	struct mv__zpool_stats st;
	struct mv__zpool *zp;
	uint64_t s = 7;

	(void)state;
	assert_non_null(objs);
	assert_int_equal(mv__zpool_create(NOCAP, &zp), 0);
	for (size_t i = 0; i < N; i++)
		store(zp, &objs[i], rnd_range(&s, 1, MV_ZPOOL_MAX_OBJ), i);
	shuffle(objs, N, &s);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(mv__zpool_free(zp, objs[i].handle), 0);
	mv__zpool_stats(zp, &st);
	assert_int_equal(st.frames, 0);
	assert_int_equal(st.stored_bytes, 0);
	assert_int_equal(st.objects, 0);
	mv__zpool_destroy(zp);
	free(objs);
}

static void test_handles_and_content_survive_compaction(void **state)
{
	enum { N = 20000 };
	struct obj *objs = calloc(N, sizeof(*objs));
	struct mv__zpool_stats st;
	struct mv__zpool *zp;
	uint64_t s = 11;

	(void)state;
	assert_non_null(objs);
	assert_int_equal(mv__zpool_create(NOCAP, &zp), 0);
	for (size_t i = 0; i < N; i++)
		store(zp, &objs[i], rnd_range(&s, 1, MV_ZPOOL_MAX_OBJ), i);
	for (size_t i = 0; i < N; i++) {
		if (splitmix(&s) % 3) {
			assert_int_equal(mv__zpool_free(zp, objs[i].handle), 0);
			objs[i].handle = 0;
		}
	}
	assert_true(mv__zpool_compact(zp) > 0);
	mv__zpool_stats(zp, &st);
	assert_true(st.moved > 0);
	assert_int_equal(count_broken(zp, objs, N), 0);
	/* the moved objects' old slots are reused: nothing may leak into
	 * the survivors */
	for (size_t i = 0; i < N; i++)
		if (!objs[i].handle)
			store(zp, &objs[i], rnd_range(&s, 1, MV_ZPOOL_MAX_OBJ),
			      N + i);
	assert_int_equal(count_broken(zp, objs, N), 0);
	mv__zpool_compact(zp);
	assert_int_equal(count_broken(zp, objs, N), 0);
	mv__zpool_destroy(zp);
	free(objs);
}

static void test_alloc_gives_enospc_at_the_cap_and_never_passes_it(void **state)
{
	const uint64_t cap = 2 * MiB + 1000;
	enum { N = 10000 };
	struct obj *objs = calloc(N, sizeof(*objs));
	struct mv__zpool_stats st;
	struct mv__zpool *zp;
	unsigned enospc = 0;
	uint64_t s = 5;

	(void)state;
	assert_non_null(objs);
	assert_int_equal(mv__zpool_create(cap, &zp), 0);
	for (size_t i = 0; i < N; i++) {
		struct obj *o = &objs[i];
		int err;

		o->size = rnd_range(&s, 1, MV_ZPOOL_MAX_OBJ);
		o->seed = i;
		err = mv__zpool_alloc(zp, o->size, &o->handle);
		mv__zpool_stats(zp, &st);
		assert_true(st.used_bytes <= cap);
		if (err == -ENOSPC) {
			/* refused only when the frames a new span needs (at
			 * most 4) would not fit */
			assert_true(st.used_bytes + 4 * MV_ZPOOL_FRAME_SIZE >
				    cap);
			o->handle = 0;
			enospc++;
			continue;
		}
		assert_int_equal(err, 0);
		assert_int_equal(put_content(zp, o), 0);
	}
	assert_true(enospc > N / 2);
	assert_int_equal(count_broken(zp, objs, N), 0);
	mv__zpool_destroy(zp);
	free(objs);
}

static void test_zero_cap_refuses_every_object(void **state)
{
	struct mv__zpool *zp;
	uint64_t h;

	(void)state;
	assert_int_equal(mv__zpool_create(0, &zp), 0);
	assert_int_equal(mv__zpool_alloc(zp, 1, &h), -ENOSPC);
	assert_int_equal(mv__zpool_alloc(zp, MV_ZPOOL_MAX_OBJ, &h), -ENOSPC);
	mv__zpool_destroy(zp);
}

static void test_frees_then_compaction_give_frames_back(void **state)
{
	enum { N = 20000 };
	struct obj *objs = calloc(N, sizeof(*objs));
	struct mv__zpool_stats full, freed, compacted;
	struct mv__zpool *zp;
	uint64_t s = 3, back;

	(void)state;
	assert_non_null(objs);
	assert_int_equal(mv__zpool_create(NOCAP, &zp), 0);
	for (size_t i = 0; i < N; i++)
		store(zp, &objs[i], rnd_range(&s, 200, MV_ZPOOL_MAX_OBJ), i);
	mv__zpool_stats(zp, &full);
	for (size_t i = 0; i < N; i += 2) {
		assert_int_equal(mv__zpool_free(zp, objs[i].handle), 0);
		objs[i].handle = 0;
	}
	mv__zpool_stats(zp, &freed);
	back = mv__zpool_compact(zp);
	mv__zpool_stats(zp, &compacted);
	assert_int_equal(compacted.frames, freed.frames - back);
	assert_int_equal(compacted.compact_freed, back);
	/* half the bytes should need little more than half the frames */
	assert_true(compacted.frames < full.frames * 55 / 100);
	assert_int_equal(mv__zpool_compact(zp), 0);
	assert_int_equal(count_broken(zp, objs, N), 0);
	mv__zpool_destroy(zp);
	free(objs);
}

/* Fills n objects of sizes from next_size, frees a random half, compacts,
 * and asserts stored/used >= 0.9 both before the frees and after compaction.
 */
static void check_density(const char *mix, uint32_t (*next_size)(uint64_t *))
{
	enum { N = 16384 };
	struct obj *objs = calloc(N, sizeof(*objs));
	double full, holes, compacted;
	struct mv__zpool_stats st;
	struct mv__zpool *zp;
	uint64_t s = 17;

	assert_non_null(objs);
	assert_int_equal(mv__zpool_create(NOCAP, &zp), 0);
	for (size_t i = 0; i < N; i++)
		store(zp, &objs[i], next_size(&s), i);
	full = density(zp);
	mv__zpool_stats(zp, &st);
	shuffle(objs, N, &s);
	for (size_t i = 0; i < N / 2; i++) {
		assert_int_equal(mv__zpool_free(zp, objs[i].handle), 0);
		objs[i].handle = 0;
	}
	holes = density(zp);
	mv__zpool_compact(zp);
	compacted = density(zp);
	print_message("density %s, %d objects, %.1f MiB: full %.3f, half freed "
		      "%.3f, compacted %.3f; metadata %.1f%% of stored\n",
		      mix, N, st.stored_bytes / (double)MiB, full, holes,
		      compacted, 100.0 * st.meta_bytes / st.stored_bytes);
	assert_true(full >= 0.9);
	assert_true(compacted >= 0.9);
	assert_int_equal(count_broken(zp, objs, N), 0);
	mv__zpool_destroy(zp);
	free(objs);
}

static uint32_t uniform_size(uint64_t *s)
{
	return rnd_range(s, 200, MV_ZPOOL_MAX_OBJ);
}

/*
 * What compressing a mix of guest pages gives: many mostly-zero pages of a
 * few hundred bytes, text around 1 KiB, code and data up to the 2 KiB limit.
 */
static uint32_t skewed_size(uint64_t *s)
{
	uint32_t r = rnd_range(s, 0, 99);

	if (r < 35)
		return rnd_range(s, 40, 400);
	if (r < 75)
		return rnd_range(s, 700, 1400);
	return rnd_range(s, 1300, MV_ZPOOL_MAX_OBJ);
}

static void test_density_of_uniform_sizes_200_to_2048(void **state)
{
	(void)state;
	check_density("uniform 200..2048", uniform_size);
}

static void test_density_of_a_skewed_mix(void **state)
{
	(void)state;
	check_density("skewed mix", skewed_size);
}

static void test_allocation_failure_leaves_the_pool_intact(void **state)
{
	enum { N = 3000 };
	struct obj *objs = calloc(N, sizeof(*objs));
	struct mv__zpool_stats st;
	struct mv__zpool *zp;
	uint64_t s = 23, sum = 0, ok = 0;
	unsigned nomem = 0;

	(void)state;
	assert_non_null(objs);
	mv__inject_fail(MV_INJ_ALLOC, 1, 0, ENOMEM);
	assert_int_equal(mv__zpool_create(NOCAP, &zp), -ENOMEM);
	mv__inject_reset();
	assert_int_equal(mv__zpool_create(NOCAP, &zp), 0);
	for (size_t i = 0; i < N / 2; i++) {
		store(zp, &objs[i], rnd_range(&s, 1, MV_ZPOOL_MAX_OBJ), i);
		sum += objs[i].size;
		ok++;
	}
	/* from here on malloc fails: objects that need a new span or a
	 * bigger handle table are refused, the others still fit */
	mv__inject_fail(MV_INJ_ALLOC, 1, 0, ENOMEM);
	for (size_t i = N / 2; i < N; i++) {
		struct obj *o = &objs[i];
		int err;

		o->size = rnd_range(&s, 1, MV_ZPOOL_MAX_OBJ);
		o->seed = i;
		err = mv__zpool_alloc(zp, o->size, &o->handle);
		if (err == -ENOMEM) {
			o->handle = 0;
			nomem++;
			continue;
		}
		assert_int_equal(err, 0);
		assert_int_equal(put_content(zp, o), 0);
		sum += o->size;
		ok++;
	}
	mv__inject_reset();
	assert_true(nomem > 0);
	mv__zpool_stats(zp, &st);
	assert_int_equal(st.stored_bytes, sum);
	assert_int_equal(st.objects, ok);
	assert_int_equal(count_broken(zp, objs, N), 0);
	mv__zpool_destroy(zp);
	free(objs);
}

#define NWORKERS 4
#define WORKER_OPS 40000
#define WORKER_LIVE 600
#define TORTURE_CAP (2 * MiB)

/* Workers count what goes wrong instead of asserting: cmocka's asserts
 * must fail on the test's own thread. */
struct torture {
	struct mv__zpool *zp;
	_Atomic int running; /* workers still going */
	_Atomic uint64_t broken; /* reads that did not match */
	_Atomic uint64_t errors; /* calls that failed unexpectedly */
	_Atomic uint64_t over_cap; /* stats snapshots past the cap */
	_Atomic uint64_t compactions;
	_Atomic uint64_t enospc; /* allocations refused at the cap */
};

struct worker {
	struct torture *t;
	unsigned id;
};

static void worker_free(struct torture *t, struct obj *live, unsigned *n,
			unsigned i)
{
	if (mv__zpool_free(t->zp, live[i].handle))
		t->errors++;
	live[i] = live[--*n];
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct torture *t = w->t;
	struct obj live[WORKER_LIVE];
	uint64_t s = 1000 + w->id;
	unsigned n = 0;

	for (unsigned op = 0; op < WORKER_OPS; op++) {
		unsigned r = splitmix(&s) % 10;
		struct obj *o;
		int err;

		if (n && r < 3) {
			if (!intact(t->zp, &live[splitmix(&s) % n]))
				t->broken++;
		} else if (n && (r < 6 || n == WORKER_LIVE)) {
			worker_free(t, live, &n, splitmix(&s) % n);
		} else {
			o = &live[n];
			o->size = rnd_range(&s, 1, MV_ZPOOL_MAX_OBJ);
			o->seed = splitmix(&s);
			err = mv__zpool_alloc(t->zp, o->size, &o->handle);
			if (err == -ENOSPC) {
				t->enospc++;
				if (n)
					worker_free(t, live, &n,
						    splitmix(&s) % n);
				continue;
			}
			if (err || put_content(t->zp, o)) {
				t->errors++;
				continue;
			}
			n++;
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (!intact(t->zp, &live[i]))
			t->broken++;
	while (n)
		worker_free(t, live, &n, 0);
	t->running--;
	return NULL;
}

static void *compactor_main(void *arg)
{
	struct torture *t = arg;
	struct mv__zpool_stats st;

	while (t->running) {
		mv__zpool_compact(t->zp);
		mv__zpool_stats(t->zp, &st);
		if (st.used_bytes > TORTURE_CAP)
			t->over_cap++;
		t->compactions++;
	}
	return NULL;
}

static void test_concurrent_alloc_read_free_keep_content_exact(void **state)
{
	struct torture t = { .running = NWORKERS };
	struct worker w[NWORKERS];
	pthread_t tid[NWORKERS], ctid;
	struct mv__zpool_stats st;

	(void)state;
	assert_int_equal(mv__zpool_create(TORTURE_CAP, &t.zp), 0);
	assert_int_equal(pthread_create(&ctid, NULL, compactor_main, &t), 0);
	for (unsigned i = 0; i < NWORKERS; i++) {
		w[i] = (struct worker){ .t = &t, .id = i };
		assert_int_equal(
			pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < NWORKERS; i++)
		pthread_join(tid[i], NULL);
	pthread_join(ctid, NULL);
	mv__zpool_stats(t.zp, &st);
	print_message("torture: %llu compactions, %llu objects moved, %llu "
		      "allocations refused at the cap\n",
		      (unsigned long long)t.compactions,
		      (unsigned long long)st.moved,
		      (unsigned long long)t.enospc);
	assert_int_equal(t.broken, 0);
	assert_int_equal(t.errors, 0);
	assert_int_equal(t.over_cap, 0);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.frames, 0);
	mv__zpool_destroy(t.zp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_every_size_from_1_to_2048_reads_back_exactly),
		cmocka_unit_test(
			test_handles_fit_in_56_bits_and_are_never_zero),
		cmocka_unit_test(test_bad_sizes_are_refused),
		cmocka_unit_test(test_write_and_read_check_lengths),
		cmocka_unit_test(test_stale_and_forged_handles_are_refused),
		cmocka_unit_test(test_stats_count_bytes_objects_and_frames),
		cmocka_unit_test(test_freeing_every_object_returns_every_frame),
		cmocka_unit_test(test_handles_and_content_survive_compaction),
		cmocka_unit_test(
			test_alloc_gives_enospc_at_the_cap_and_never_passes_it),
		cmocka_unit_test(test_zero_cap_refuses_every_object),
		cmocka_unit_test(test_frees_then_compaction_give_frames_back),
		cmocka_unit_test(test_density_of_uniform_sizes_200_to_2048),
		cmocka_unit_test(test_density_of_a_skewed_mix),
		cmocka_unit_test(
			test_allocation_failure_leaves_the_pool_intact),
		cmocka_unit_test(
			test_concurrent_alloc_read_free_keep_content_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
