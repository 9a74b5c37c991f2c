// SPDX-License-Identifier: MIT
/*
 * test_cold.c - reclaim's victim choice by coldness (src/cold.c, the
 * clock in src/reclaim.c): pages the guest faulted on stay while the ones
 * that came along unasked go; a sampled page left untouched goes first;
 * the random policy (Mem.ReclaimPolicy 0) still takes pages as ESX does; a
 * VM whose every page is warm still gives pages in a bounded pass; and
 * nothing is lost while guests and reclaim race.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helper.h"
#include "internal.h"

#define MiB (1ull << 20)
/* Mem.FaultAroundPages: a first touch fills this many pages */
#define WINDOW 16
/* the page of each window the guest touches */
#define HOT_IN_WINDOW 5
/* pages per window asked of reclaim */
#define TAKE_PER_WINDOW 12

static void host(struct th_host *t, uint64_t memsize, const char *policy,
		 const char *fault_around)
{
	struct mv_settings s;

	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.ReclaimPolicy", policy), 0);
	assert_int_equal(
		mv_settings_set(&s, "Mem.FaultAroundPages", fault_around), 0);
	th_host_create(t, memsize, &s);
}

/*
 * A 2 MiB VM whose guest writes one page of each 16-page window: its
 * first touch fills the window, so each window holds one page the guest
 * uses and 15 it never asked for.  Then reclaim is asked for 12 pages per
 * window; returns how many of the touched pages are still PRIVATE (and
 * checks that every page holds what it should).
 */
static uint64_t touched_pages_kept(const char *policy)
{
	uint64_t npages = 2 * MiB / MV_PAGE_SIZE, windows = npages / WINDOW;
	uint64_t done = 0, kept = 0, ppn;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	host(&t, 64 * MiB, policy, "16");
	vm = th_vm_create(&t, "w", npages * MV_PAGE_SIZE);
	m = mv_vm_mem(vm);
	for (uint64_t w = 0; w < windows; w++) {
		ppn = w * WINDOW + HOT_IN_WINDOW;
		th_fill(m + ppn * MV_PAGE_SIZE, 3, ppn, 0);
	}
	th_quiesce(vm);
	th_drain_lru();
	/* fewer than the 15 cold pages of each window: one pass of the hand
	 * finds them, with room for a page the kernel will not move yet */
	assert_int_equal(mv_vm_swap_out(vm, windows * TAKE_PER_WINDOW, &done),
			 0);
	assert_int_equal(done, windows * TAKE_PER_WINDOW);
	for (uint64_t w = 0; w < windows; w++)
		kept += mv_vm_page_state(vm, w * WINDOW + HOT_IN_WINDOW) ==
			MV_PAGE_PRIVATE;
	/* every page reads back as written (or as zeros) */
	for (ppn = 0; ppn < npages; ppn++) {
		if (ppn % WINDOW == HOT_IN_WINDOW)
			assert_true(
				th_check(m + ppn * MV_PAGE_SIZE, 3, ppn, 0));
		else
			assert_true(th_is_zero(m + ppn * MV_PAGE_SIZE));
	}
	mv_vm_destroy(vm);
	th_host_destroy(&t);
	return kept;
}

static void
test_pages_the_guest_faulted_on_stay_and_their_neighbours_go(void **state)
{
	(void)state;
	assert_int_equal(touched_pages_kept("1"),
			 2 * MiB / MV_PAGE_SIZE / WINDOW);
}

/* The clock's bytes for a VM of n pages, as mv__cold_init makes them. */
static void clock_of(struct mv__cold *c, _Atomic uint8_t *heat,
		     _Atomic uint32_t *stamp, unsigned n)
{
	memset(c, 0, sizeof(*c));
	for (unsigned i = 0; i < n; i++) {
		atomic_init(&heat[i], 0);
		atomic_init(&stamp[i], 0);
	}
	c->heat = heat;
	c->stamp = stamp;
}

/* Reclaim takes page ppn, then `others` pages more, and the guest asks
 * for it again; returns its warmth. */
static unsigned back_after(struct mv__cold *c, uint64_t ppn, unsigned others)
{
	mv__cold_taken(c, ppn);
	atomic_fetch_add(&c->victims, others);
	mv__cold_touch(c, ppn, 0);
	assert_false(atomic_load(&c->stamp[ppn]) & MV_COLD_TAKEN);
	return atomic_load(&c->heat[ppn]);
}

/*
 * A page's warmth follows the mean distance, in victims, between each
 * taking and the guest's fault on it: back at once is warmest; back after
 * 1024 more victims ten doublings cooler; a page back late once and soon
 * once sits in between, and the order of its returns does not matter.
 */
static void test_warmth_follows_the_mean_refault_distance(void **state)
{
	_Atomic uint8_t heat[4];
	_Atomic uint32_t stamp[4];
	struct mv__cold c;

	(void)state;
	clock_of(&c, heat, stamp, 4);
	assert_int_equal(back_after(&c, 0, 0), MV_COLD_WARMEST);
	assert_int_equal(back_after(&c, 1, 1023),
			 MV_COLD_WARMEST - 10 * MV_COLD_STEPS);
	/* the mean of 1 and 1024 is 512: nine doublings */
	assert_int_equal(back_after(&c, 1, 0),
			 MV_COLD_WARMEST - 9 * MV_COLD_STEPS);
	assert_int_equal(back_after(&c, 0, 1023),
			 MV_COLD_WARMEST - 9 * MV_COLD_STEPS);
	/* a fault with no taking before it: a cold page becomes just warmer
	 * than cold, a warm one keeps its warmth */
	mv__cold_touch(&c, 2, 0);
	assert_int_equal(atomic_load(&heat[2]), MV_COLD_FAULTED);
	mv__cold_touch(&c, 0, 0);
	assert_int_equal(atomic_load(&heat[0]),
			 MV_COLD_WARMEST - 9 * MV_COLD_STEPS);
	/* the first return of a page only faulted on before sets it */
	assert_int_equal(back_after(&c, 2, 3),
			 MV_COLD_WARMEST - 2 * MV_COLD_STEPS);
	/* taken and not asked for (a cluster's neighbour): a victim at any
	 * threshold, whatever its warmth */
	mv__cold_taken(&c, 0);
	assert_true(mv__cold_pass(&c, 0));
	/* seen unused by the sampler: cold */
	mv__cold_forget(&c, 1);
	assert_int_equal(atomic_load(&heat[1]), 0);
	assert_true(mv__cold_pass(&c, 1));
}

/*
 * A return that costs more (from the swap file) counts its distance
 * shifted: back after 1024 victims from disk is as warm as back after 128
 * from the compression cache; a shift never makes a distance 0.
 */
static void test_a_costly_return_counts_a_shorter_distance(void **state)
{
	_Atomic uint8_t heat[3];
	_Atomic uint32_t stamp[3];
	struct mv__cold c;

	(void)state;
	clock_of(&c, heat, stamp, 3);
	mv__cold_taken(&c, 0);
	atomic_fetch_add(&c.victims, 1023);
	mv__cold_touch(&c, 0, MV_COLD_SWAP_SHIFT);
	assert_int_equal(atomic_load(&heat[0]),
			 MV_COLD_WARMEST -
				 (10 - MV_COLD_SWAP_SHIFT) * MV_COLD_STEPS);
	assert_int_equal(back_after(&c, 1, 127), atomic_load(&heat[0]));
	/* back at once: the warmest, not past it */
	mv__cold_taken(&c, 2);
	mv__cold_touch(&c, 2, MV_COLD_SWAP_SHIFT);
	assert_int_equal(atomic_load(&heat[2]), MV_COLD_WARMEST);
}

/*
 * Two VMs alike, every page taken by reclaim: one's pages compress (the
 * compression cache holds them), the other's go to the swap file
 * (Mem.MemZipEnable 0).  The guest reads back the page taken first (the
 * longest distance): the one from the swap file is warmer, by
 * MV_COLD_SWAP_SHIFT doublings of the same distance, so reclaim keeps it
 * longer; every page reads back as written.
 */
static unsigned warmth_back_from(bool zip, uint64_t *distance)
{
	uint64_t npages = 64, done = 0, first = 0, d;
	struct mv_settings s;
	struct th_host t;
	uint32_t now;
	unsigned w;
	uint8_t *m;
	mv_vm *vm;

	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.ReclaimPolicy", "1"), 0);
	assert_int_equal(
		mv_settings_set(&s, "Mem.MemZipEnable", zip ? "1" : "0"), 0);
	/* the page alone comes back: its neighbours keep their stamps */
	assert_int_equal(mv_settings_set(&s, "Mem.SwapInClusterPages", "1"), 0);
	th_host_create(&t, 64 * MiB, &s);
	vm = th_vm_create(&t, zip ? "z" : "d", npages * MV_PAGE_SIZE);
	m = mv_vm_mem(vm);
	for (uint64_t p = 0; p < npages; p++)
		memset(m + p * MV_PAGE_SIZE, (int)(p + 1), MV_PAGE_SIZE);
	th_quiesce(vm);
	th_drain_lru();
	assert_int_equal(mv_vm_swap_out(vm, npages, &done), 0);
	assert_int_equal(done, npages);
	now = atomic_load(&vm->cold.victims);
	*distance = 0;
	for (uint64_t p = 0; p < npages; p++) {
		uint32_t st = atomic_load(&vm->cold.stamp[p]);

		assert_true(st & MV_COLD_TAKEN);
		d = (now - st) & ~MV_COLD_TAKEN;
		if (d > *distance) {
			*distance = d;
			first = p;
		}
	}
	assert_true(*distance >= npages);
	assert_int_equal(mv_vm_page_state(vm, first),
			 zip ? MV_PAGE_COMPRESSED : MV_PAGE_SWAPPED);
	assert_int_equal(*(volatile uint8_t *)(m + first * MV_PAGE_SIZE),
			 (uint8_t)(first + 1));
	w = atomic_load(&vm->cold.heat[first]);
	for (uint64_t p = 0; p < npages; p++) {
		uint8_t want[MV_PAGE_SIZE];

		memset(want, (int)(p + 1), sizeof(want));
		assert_memory_equal(m + p * MV_PAGE_SIZE, want, sizeof(want));
	}
	mv_vm_destroy(vm);
	th_host_destroy(&t);
	return w;
}

static void test_a_page_back_from_the_swap_file_stays_longer(void **state)
{
	uint64_t dz, dd;
	unsigned wz = warmth_back_from(true, &dz),
		 wd = warmth_back_from(false, &dd);

	(void)state;
	assert_int_equal(wz, mv__cold_warmth(dz));
	assert_int_equal(wd, mv__cold_warmth(dd >> MV_COLD_SWAP_SHIFT));
	if (dd == dz)
		assert_int_equal(wd, wz + MV_COLD_SWAP_SHIFT * MV_COLD_STEPS);
	assert_true(wd > wz);
}

/* The hand cools a page it passes by a step once every MV_COLD_AGE_PASSES
 * passes, so a page no longer wanted becomes a victim in time. */
static void test_the_hand_cools_a_warm_page_every_few_passes(void **state)
{
	_Atomic uint8_t heat[1];
	_Atomic uint32_t stamp[1];
	struct mv__cold c;
	unsigned passes = 0;

	(void)state;
	clock_of(&c, heat, stamp, 1);
	atomic_store(&heat[0], 3);
	c.threshold = 16; /* warmth 1 and below are victims */
	while (!mv__cold_pass(&c, 0)) {
		atomic_fetch_add(&c.passes, 1);
		passes++;
		assert_true(passes <= 3 * MV_COLD_AGE_PASSES);
	}
	assert_int_equal(atomic_load(&heat[0]), 1);
	/* two steps off in two periods of aging, the first at pass 0 */
	assert_int_equal(passes, MV_COLD_AGE_PASSES + 1);
}

/* ESX's policy takes random runs: most windows whole, touched page too */
static void test_random_policy_takes_pages_the_guest_uses(void **state)
{
	(void)state;
	assert_true(touched_pages_kept("0") <
		    2 * MiB / MV_PAGE_SIZE / WINDOW / 2);
}

static void test_random_policy_keeps_no_heat(void **state)
{
	struct th_host t;
	mv_vm *vm;

	(void)state;
	host(&t, 64 * MiB, "0", "16");
	vm = th_vm_create(&t, "r", 1 * MiB);
	assert_null(vm->cold.heat);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
	host(&t, 64 * MiB, "1", "16");
	vm = th_vm_create(&t, "c", 1 * MiB);
	assert_non_null(vm->cold.heat);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * Every page written one fault each (all warm); the pages a sampling
 * period took and nobody touched are marked cold when the period ends,
 * and reclaim then takes exactly those (the next period's pages are out
 * as SAMPLED meanwhile, no victims).
 */
static void test_sampled_pages_left_untouched_go_first(void **state)
{
	uint64_t npages = 2 * MiB / MV_PAGE_SIZE, done = 0;
	uint64_t cold[MV_SAMPLE_PAGES];
	unsigned n = 0;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	host(&t, 64 * MiB, "1", "1");
	vm = th_vm_create(&t, "s", npages * MV_PAGE_SIZE);
	th_fill_vm(vm, 4, false);
	th_drain_lru();
	mv__sample_period(vm); /* takes its pages out */
	assert_true(vm->sample.n > MV_SAMPLE_PAGES / 2);
	memcpy(cold, vm->sample.ppn, vm->sample.n * sizeof(cold[0]));
	n = vm->sample.n;
	mv__sample_period(vm); /* puts them back untouched, takes others */
	/* the ones the new period took again are not PRIVATE now */
	for (unsigned i = 0; i < n;)
		if (mv_vm_page_state(vm, cold[i]) != MV_PAGE_PRIVATE)
			cold[i] = cold[--n];
		else
			i++;
	assert_true(n > 0);
	assert_int_equal(mv_vm_swap_out(vm, n, &done), 0);
	assert_int_equal(done, n);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(mv_vm_page_state(vm, cold[i]),
				 MV_PAGE_SWAPPED);
	assert_int_equal(atomic_load(&vm->cold.fallback_victims), 0);
	mv__sample_period(vm); /* the second period's pages go back */
	assert_int_equal(th_bad_pages(vm, 4, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * A page the guest asks for again soon after reclaim took it is in use:
 * it stays through more passes of the hand than pages faulted on once.
 */
static void
test_a_page_wanted_back_soon_after_it_was_taken_stays_longest(void **state)
{
	uint64_t npages = 2 * MiB / MV_PAGE_SIZE, done = 0;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	host(&t, 64 * MiB, "1", "1");
	vm = th_vm_create(&t, "back", npages * MV_PAGE_SIZE);
	th_fill_vm(vm, 7, false); /* one fault each: all equally warm */
	th_drain_lru();
	assert_int_equal(mv_vm_swap_out_page(vm, 7), 0);
	m = mv_vm_mem(vm);
	assert_true(th_check(m + 7 * MV_PAGE_SIZE, 7, 7, 0)); /* faults back */
	th_quiesce(vm);
	th_drain_lru();
	assert_int_equal(mv_vm_swap_out(vm, npages - 1, &done), 0);
	assert_int_equal(done, npages - 1);
	assert_int_equal(mv_vm_page_state(vm, 7), MV_PAGE_PRIVATE);
	assert_int_equal(atomic_load(&vm->cold.fallback_victims), 0);
	assert_int_equal(th_bad_pages(vm, 7, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* Every page of a 2 MiB VM faulted on, then given the warmth `warm(ppn)`. */
static mv_vm *warmed_vm(struct th_host *t, uint8_t (*warm)(uint64_t))
{
	uint64_t npages = 2 * MiB / MV_PAGE_SIZE;
	mv_vm *vm;

	host(t, 64 * MiB, "1", "1");
	vm = th_vm_create(t, "warm", npages * MV_PAGE_SIZE);
	th_fill_vm(vm, 6, false);
	th_drain_lru();
	for (uint64_t p = 0; p < npages; p++)
		atomic_store(&vm->cold.heat[p], warm(p));
	return vm;
}

static uint8_t warmest(uint64_t ppn)
{
	(void)ppn;
	return MV_COLD_WARMEST;
}

/* every third page warmth 10, the others 20 */
static uint8_t thirds(uint64_t ppn)
{
	return ppn % 3 ? 20 : 10;
}

/*
 * A VM whose every page is as warm as can be: the clock's pass is bounded
 * (MV_COLD_MAX_PASSES rounds of the hand), and the batch is made up at random rather
 * than coming back empty.
 */
static void test_all_warm_vm_still_gives_pages_in_a_bounded_pass(void **state)
{
	uint64_t npages = 2 * MiB / MV_PAGE_SIZE, done = 0;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = warmed_vm(&t, warmest);
	assert_int_equal(mv_vm_swap_out(vm, MV_RECLAIM_BATCH, &done), 0);
	assert_int_equal(done, MV_RECLAIM_BATCH);
	assert_true(atomic_load(&vm->cold.scanned) <=
		    MV_COLD_MAX_PASSES * npages);
	assert_int_equal(atomic_load(&vm->cold.cold_victims), 0);
	assert_int_equal(atomic_load(&vm->cold.fallback_victims),
			 MV_RECLAIM_BATCH);
	assert_int_equal(th_bad_pages(vm, 6, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * No page is cold: the threshold rises until the hand finds the coolest
 * pages and takes them, and only them; none is taken at random.
 */
static void test_the_threshold_rises_to_the_coolest_pages(void **state)
{
	uint64_t npages = 2 * MiB / MV_PAGE_SIZE, done = 0, want = npages / 4;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = warmed_vm(&t, thirds);
	/* the hand passes 10 * MV_COLD_RAISE_AFTER candidates to get there,
	 * within one call's bound */
	for (uint64_t i = 0; i < want; i += 16) {
		assert_int_equal(mv_vm_swap_out(vm, 16, &done), 0);
		assert_int_equal(done, 16);
	}
	for (uint64_t p = 0; p < npages; p++)
		if (p % 3)
			assert_int_equal(mv_vm_page_state(vm, p),
					 MV_PAGE_PRIVATE);
	assert_int_equal(atomic_load(&vm->cold.fallback_victims), 0);
	assert_true(vm->cold.threshold >= 10 * 16 - 16);
	assert_true(vm->cold.threshold < 20 * 16);
	assert_int_equal(th_bad_pages(vm, 6, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

struct guest {
	mv_vm *vm;
	unsigned index, nthreads;
	uint32_t *version;
	atomic_bool *stop;
	_Atomic uint64_t ops;
	uint64_t errors;
};

/* Random reads and writes of whole pages, each checked; the thread owns
 * the pages p with p % nthreads == index. */
static void *guest_main(void *arg)
{
	struct guest *g = arg;
	uint64_t npages = mv_vm_memsize(g->vm) / MV_PAGE_SIZE, ppn;
	uint64_t rng = 0x9e3779b9ull * (g->index + 1);
	uint8_t *m = mv_vm_mem(g->vm), *page;

	while (!atomic_load_explicit(g->stop, memory_order_relaxed)) {
		ppn = th_xs(&rng) % npages;
		ppn -= ppn % g->nthreads;
		ppn += g->index;
		if (ppn >= npages)
			continue;
		page = m + ppn * MV_PAGE_SIZE;
		if (th_xs(&rng) % 2)
			th_fill(page, 21, ppn, ++g->version[ppn]);
		else if (g->version[ppn])
			g->errors += !th_check(page, 21, ppn, g->version[ppn]);
		else
			g->errors += !th_is_zero(page);
		atomic_fetch_add_explicit(&g->ops, 1, memory_order_relaxed);
	}
	return NULL;
}

struct race {
	struct guest *g;
	unsigned n;
	struct th_swapper *w;
	mv_vm *vm;
};

/* the guests have run a while and both reclaims have taken pages */
static bool raced_enough(void *arg)
{
	struct race *r = arg;
	uint64_t ops = 0;

	for (unsigned i = 0; i < r->n; i++)
		ops += atomic_load(&r->g[i].ops);
	return ops >= 20000 && atomic_load(&r->vm->cold.cold_victims) >= 4096 &&
	       atomic_load(&r->w->swapped) > 0;
}

static void test_nothing_is_lost_while_guests_race_cold_reclaim(void **state)
{
	enum { THREADS = 2 };
	uint64_t npages = 16 * MiB / MV_PAGE_SIZE;
	struct guest g[THREADS];
	pthread_t gt[THREADS], wt;
	atomic_bool stop = false;
	struct th_swapper w = { 0 };
	struct race r;
	struct th_host t;
	uint32_t *version;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	/* 16 MiB of guest on a 6 MiB host: the scheduler reclaims, and a
	 * swapper thread takes more on top */
	host(&t, 6 * MiB, "1", "16");
	vm = th_vm_create(&t, "race", npages * MV_PAGE_SIZE);
	version = calloc(npages, sizeof(*version));
	assert_non_null(version);
	for (unsigned i = 0; i < THREADS; i++) {
		g[i] = (struct guest){ .vm = vm,
				       .index = i,
				       .nthreads = THREADS,
				       .version = version,
				       .stop = &stop };
		assert_int_equal(
			pthread_create(&gt[i], NULL, guest_main, &g[i]), 0);
	}
	w = (struct th_swapper){
		.vms = &vm, .nvms = 1, .pause_ns = 100000, .stop = &stop
	};
	assert_int_equal(pthread_create(&wt, NULL, th_swapper_main, &w), 0);
	r = (struct race){ .g = g, .n = THREADS, .w = &w, .vm = vm };
	bool ok = th_wait_until(raced_enough, &r, TH_WAIT_MS * 3);
	atomic_store(&stop, true);
	pthread_join(wt, NULL);
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(gt[i], NULL);
	assert_true(ok);
	assert_true(w.swapped > 0);
	for (unsigned i = 0; i < THREADS; i++)
		assert_int_equal(g[i].errors, 0);
	m = mv_vm_mem(vm);
	for (uint64_t p = 0; p < npages; p++)
		assert_true(version[p] ? th_check(m + p * MV_PAGE_SIZE, 21, p,
						  version[p]) :
					 th_is_zero(m + p * MV_PAGE_SIZE));
	assert_int_equal(th_census_mismatches(vm), 0);
	free(version);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_warmth_follows_the_mean_refault_distance),
		cmocka_unit_test(
			test_a_costly_return_counts_a_shorter_distance),
		cmocka_unit_test(
			test_a_page_back_from_the_swap_file_stays_longer),
		cmocka_unit_test(
			test_the_hand_cools_a_warm_page_every_few_passes),
		cmocka_unit_test(test_the_threshold_rises_to_the_coolest_pages),
		cmocka_unit_test(
			test_pages_the_guest_faulted_on_stay_and_their_neighbours_go),
		cmocka_unit_test(test_random_policy_takes_pages_the_guest_uses),
		cmocka_unit_test(test_random_policy_keeps_no_heat),
		cmocka_unit_test(test_sampled_pages_left_untouched_go_first),
		cmocka_unit_test(
			test_a_page_wanted_back_soon_after_it_was_taken_stays_longest),
		cmocka_unit_test(
			test_all_warm_vm_still_gives_pages_in_a_bounded_pass),
		cmocka_unit_test(
			test_nothing_is_lost_while_guests_race_cold_reclaim),
	};

	return th_run_tests(tests);
}
