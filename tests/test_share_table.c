// SPDX-License-Identifier: MIT
/*
 * test_share_table.c - the host table of page sharing, its pool-frame
 * metadata and free list, alone: no host, no VM, no kernel.  Keys collide,
 * wrap around the end and are deleted by backward shift; randomized runs
 * check the table and the frames against simple models after every step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "share_int.h"

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A table of cap slots, empty. */
static void table_new(struct mv__share *s, uint64_t cap)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(mv__share_table_grow(s, cap), 0);
}

static void share_free(struct mv__share *s)
{
	free(s->table);
	free(s->frames);
	free(s->free_frames);
}

/* A hash whose home slot in a table of cap slots is home; k tells apart
 * hashes with the same home. */
static uint64_t hash_at(uint64_t cap, uint64_t home, uint64_t k)
{
	uint64_t h =
		(uint64_t)((((unsigned __int128)home << 64) + cap - 1) / cap);

	return h + k;
}

static uint64_t ref_at(const struct mv__share *s, uint64_t hash)
{
	uint64_t i = mv__share_table_find(s, hash);

	return i == MV_SHARE_NO_SLOT ? 0 : s->table[i].ref;
}

static void test_keys_with_one_home_wrap_around_the_end(void **state)
{
	struct mv__share s;
	uint64_t h[4];

	(void)state;
	table_new(&s, 16);
	for (unsigned k = 0; k < 4; k++) {
		h[k] = hash_at(16, 15, k);
		assert_true(
			mv__share_table_insert(&s, h[k], mv__share_hint(1, k)));
	}
	/* homes all in the last slot: three of them wrapped to the start */
	assert_int_equal(s.table[15].hash, h[0]);
	assert_int_equal(s.table[0].hash, h[1]);
	assert_int_equal(s.table[2].hash, h[3]);
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(ref_at(&s, h[k]), mv__share_hint(1, k));
	assert_int_equal(ref_at(&s, hash_at(16, 15, 9)), 0);
	assert_int_equal(s.table_used, 4);
	assert_int_equal(s.table_hints, 4);
	share_free(&s);
}

static void test_deleting_a_key_shifts_back_the_ones_behind_it(void **state)
{
	struct mv__share s;
	uint64_t a = hash_at(16, 14, 0), b = hash_at(16, 15, 0),
		 c = hash_at(16, 14, 1), d = hash_at(16, 1, 0);

	(void)state;
	table_new(&s, 16);
	/* slots: 14 a, 15 b, 0 c (home 14, wrapped), 1 d (home 1) */
	assert_true(mv__share_table_insert(&s, a, 1));
	assert_true(mv__share_table_insert(&s, b, 2));
	assert_true(mv__share_table_insert(&s, c, 3));
	assert_true(mv__share_table_insert(&s, d, 4));
	assert_int_equal(s.table[0].hash, c);
	mv__share_table_delete(&s, mv__share_table_find(&s, a));
	/* c moves back to 14 across the end; b stays home; d stays home */
	assert_int_equal(s.table[14].hash, c);
	assert_int_equal(s.table[15].hash, b);
	assert_int_equal(s.table[0].ref, 0);
	assert_int_equal(s.table[1].hash, d);
	assert_int_equal(ref_at(&s, b), 2);
	assert_int_equal(ref_at(&s, c), 3);
	assert_int_equal(ref_at(&s, d), 4);
	assert_int_equal(ref_at(&s, a), 0);
	assert_int_equal(s.table_used, 3);
	share_free(&s);
}

/*
 * Random inserts and deletes in a small table with few homes, so that
 * probe runs are long and wrap: after every step each key of the model is
 * found with its ref, no other is, and the counts agree.
 */
static void
test_random_inserts_and_deletes_keep_every_key_findable(void **state)
{
	enum { CAP = 61, KEYS = 200, STEPS = 20000 };
	uint64_t hashes[KEYS], model[KEYS] = { 0 }, rng = 88172645463325252ull;
	uint64_t used = 0, hints = 0, k, ref;
	struct mv__share s;

	(void)state;
	table_new(&s, CAP);
	for (k = 0; k < KEYS; k++)
		hashes[k] = hash_at(CAP, k % 7 * 9, k);
	for (unsigned step = 0; step < STEPS; step++) {
		k = xs(&rng) % KEYS;
		if (model[k]) {
			mv__share_table_delete(
				&s, mv__share_table_find(&s, hashes[k]));
			hints -= !(model[k] & MV_SHARE_SLOT_FRAME);
			model[k] = 0;
			used--;
		} else {
			ref = xs(&rng) % 2 ? MV_SHARE_SLOT_FRAME | k :
					     mv__share_hint(2, k);
			if (mv__share_table_insert(&s, hashes[k], ref)) {
				model[k] = ref;
				used++;
				hints += !(ref & MV_SHARE_SLOT_FRAME);
			} else {
				/* refused only beyond 90% */
				assert_true((used + 1) * 10 > CAP * 9);
			}
		}
		assert_int_equal(s.table_used, used);
		assert_int_equal(s.table_hints, hints);
		for (uint64_t j = 0; j < KEYS; j++)
			assert_int_equal(ref_at(&s, hashes[j]), model[j]);
	}
	share_free(&s);
}

static void test_a_table_past_nine_tenths_refuses_new_keys(void **state)
{
	struct mv__share s;
	unsigned k;

	(void)state;
	table_new(&s, 20);
	for (k = 0; k < 18; k++)
		assert_true(mv__share_table_insert(&s, hash_at(20, k, 0), 1));
	assert_false(mv__share_table_insert(&s, hash_at(20, 18, 0), 1));
	assert_int_equal(s.table_used, 18);
	share_free(&s);
}

static void test_growth_keeps_every_key(void **state)
{
	struct mv__share s;

	(void)state;
	table_new(&s, 16);
	for (unsigned k = 0; k < 12; k++)
		assert_true(mv__share_table_insert(&s, hash_at(16, k % 3, k),
						   mv__share_hint(3, k)));
	assert_int_equal(mv__share_table_grow(&s, 1000), 0);
	assert_int_equal(s.table_cap, 1000);
	assert_int_equal(s.table_used, 12);
	assert_int_equal(s.table_hints, 12);
	for (unsigned k = 0; k < 12; k++)
		assert_int_equal(ref_at(&s, hash_at(16, k % 3, k)),
				 mv__share_hint(3, k));
	share_free(&s);
}

static void test_a_hint_replaced_by_a_frame_is_counted_as_one(void **state)
{
	struct mv__share s;
	uint64_t h = hash_at(32, 5, 0), i;

	(void)state;
	table_new(&s, 32);
	assert_true(mv__share_table_insert(&s, h, mv__share_hint(1, 7)));
	i = mv__share_table_find(&s, h);
	mv__share_table_set_frame(&s, i, 42);
	assert_int_equal(ref_at(&s, h), MV_SHARE_SLOT_FRAME | 42);
	assert_int_equal(s.table_hints, 0);
	assert_int_equal(s.table_used, 1);
	mv__share_table_set_hint(&s, i, mv__share_hint(1, 8));
	assert_int_equal(s.table_hints, 1);
	assert_int_equal(mv__share_hint_vm(ref_at(&s, h)), 1);
	assert_int_equal(mv__share_hint_ppn(ref_at(&s, h)), 8);
	share_free(&s);
}

static void test_a_frame_is_unlinked_only_from_its_own_slot(void **state)
{
	struct mv__share s;
	uint64_t h = hash_at(32, 31, 0), other = hash_at(32, 31, 1),
		 hint = hash_at(32, 31, 2);

	(void)state;
	table_new(&s, 32);
	assert_true(mv__share_table_insert(&s, h, MV_SHARE_SLOT_FRAME | 3));
	assert_true(mv__share_table_insert(&s, hint, mv__share_hint(1, 3)));
	assert_true(mv__share_table_insert(&s, other, MV_SHARE_SLOT_FRAME | 4));
	/* a frame that has no slot in the run: nothing goes */
	assert_false(mv__share_table_unlink_frame(&s, h, 5));
	assert_int_equal(s.table_used, 3);
	assert_true(mv__share_table_unlink_frame(&s, h, 3));
	assert_int_equal(ref_at(&s, h), 0);
	assert_int_equal(ref_at(&s, hint), mv__share_hint(1, 3));
	assert_int_equal(ref_at(&s, other), MV_SHARE_SLOT_FRAME | 4);
	assert_false(mv__share_table_unlink_frame(&s, h, 3));
	assert_true(mv__share_table_unlink_frame(&s, other, 4));
	assert_int_equal(s.table_used, 1);
	share_free(&s);
}

static void test_dropping_a_vms_hints_keeps_all_other_keys(void **state)
{
	enum { CAP = 40, KEYS = 30 };
	struct mv__share s;
	uint64_t ref;

	(void)state;
	table_new(&s, CAP);
	/* few homes, so that the dropped ones sit inside others' runs */
	for (unsigned k = 0; k < KEYS; k++)
		assert_true(mv__share_table_insert(
			&s, hash_at(CAP, k % 4 * 10 + 7, k),
			k % 3 ? mv__share_hint(k % 3, k) :
				MV_SHARE_SLOT_FRAME | k));
	mv__share_table_drop_hints(&s, 2);
	for (unsigned k = 0; k < KEYS; k++) {
		ref = ref_at(&s, hash_at(CAP, k % 4 * 10 + 7, k));
		if (k % 3 == 2)
			assert_int_equal(ref, 0);
		else
			assert_int_equal(ref, k % 3 ? mv__share_hint(1, k) :
						      MV_SHARE_SLOT_FRAME | k);
	}
	assert_int_equal(s.table_used, KEYS - KEYS / 3);
	assert_int_equal(s.table_hints, KEYS / 3);
	share_free(&s);
}

static void test_salts_keep_equal_pages_under_different_keys(void **state)
{
	uint8_t page[MV_PAGE_SIZE];
	struct mv__share s;
	uint64_t a, b;

	(void)state;
	memset(page, 0x5a, sizeof(page));
	a = mv__share_hash(page, 1);
	b = mv__share_hash(page, 2);
	assert_int_not_equal(a, b);
	assert_int_equal(a, mv__share_hash(page, 1));
	table_new(&s, 64);
	assert_true(mv__share_table_insert(&s, a, MV_SHARE_SLOT_FRAME | 1));
	assert_true(mv__share_table_insert(&s, b, MV_SHARE_SLOT_FRAME | 2));
	assert_int_equal(ref_at(&s, a), MV_SHARE_SLOT_FRAME | 1);
	assert_int_equal(ref_at(&s, b), MV_SHARE_SLOT_FRAME | 2);
	share_free(&s);
}

static void
test_a_frame_freed_by_its_last_reference_is_reused_first(void **state)
{
	struct mv__vm_share a = { 0 };
	struct mv__share s;
	uint64_t f, g;

	(void)state;
	table_new(&s, 16);
	f = mv__share_frame_alloc(&s);
	g = mv__share_frame_alloc(&s);
	assert_int_equal(g, f + 1);
	mv__share_frame_take(&s, f, &a, 2);
	assert_int_equal(s.nframes, 1);
	assert_int_equal(s.nrefs, 2);
	assert_false(mv__share_frame_drop(&s, f));
	assert_true(mv__share_frame_drop(&s, f));
	assert_int_equal(s.nframes, 0);
	assert_int_equal(s.nrefs, 0);
	assert_null(s.frames[f].owner);
	assert_int_equal(atomic_load(&a.frames_owned), 0);
	mv__share_frame_recycle(&s, f);
	assert_int_equal(mv__share_frame_alloc(&s), f);
	/* nothing free any more: the bump pointer again */
	assert_int_equal(mv__share_frame_alloc(&s), g + 1);
	share_free(&s);
}

static void test_image_frames_never_go_on_the_free_list(void **state)
{
	struct mv__share s;

	(void)state;
	table_new(&s, 16);
	assert_int_equal(mv__share_frames_room(&s, 10), 0);
	s.frames_end = 10;
	s.frames[3].image = 1;
	mv__share_frame_recycle(&s, 3);
	assert_int_equal(s.nfree, 0);
	assert_int_equal(mv__share_frame_alloc(&s), 10);
	share_free(&s);
}

static void test_pairs_in_a_row_get_frames_in_a_row(void **state)
{
	struct mv__share s;
	uint64_t f;

	(void)state;
	table_new(&s, 16);
	f = mv__share_frame_alloc(&s);
	mv__share_frame_recycle(&s, mv__share_frame_alloc(&s)); /* f + 1 */
	/* f + 1 was handed out before, so the next new frame would not
	 * follow f: a free one is taken (f + 1 itself, as it happens) */
	assert_int_equal(mv__share_frame_alloc_after(&s, f), f + 1);
	/* the last one handed out is followed by a new one */
	assert_int_equal(mv__share_frame_alloc_after(&s, f + 1), f + 2);
	assert_int_equal(mv__share_frame_alloc_after(&s, f + 2), f + 3);
	share_free(&s);
}

static void test_the_last_taker_of_a_frame_pays_for_it(void **state)
{
	struct mv__vm_share a = { 0 }, b = { 0 };
	struct mv__share s;

	(void)state;
	table_new(&s, 16);
	assert_int_equal(mv__share_frames_room(&s, 1), 0);
	s.frames_end = 1;
	mv__share_frame_take(&s, 0, &a, 1);
	assert_ptr_equal(s.frames[0].owner, &a);
	mv__share_frame_take(&s, 0, &b, 1);
	assert_ptr_equal(s.frames[0].owner, &b);
	assert_int_equal(atomic_load(&a.frames_owned), 0);
	assert_int_equal(atomic_load(&b.frames_owned), 1);
	mv__share_frame_adopt(&s, 0, &a);
	assert_int_equal(atomic_load(&a.frames_owned), 1);
	assert_int_equal(atomic_load(&b.frames_owned), 0);
	/* taking nothing changes nothing */
	mv__share_frame_take(&s, 0, &b, 0);
	assert_ptr_equal(s.frames[0].owner, &a);
	assert_false(mv__share_frame_drop(&s, 0));
	assert_true(mv__share_frame_drop(&s, 0));
	assert_int_equal(atomic_load(&a.frames_owned), 0);
	/* a dead frame is nobody's to adopt */
	mv__share_frame_adopt(&s, 0, &b);
	assert_null(s.frames[0].owner);
	share_free(&s);
}

static void test_a_leaving_owner_passes_frames_only_to_its_salt(void **state)
{
	struct mv__vm_share gone = { 0 }, same = { 0 }, other = { 0 };
	struct mv__share s;

	(void)state;
	table_new(&s, 16);
	assert_int_equal(mv__share_frames_room(&s, 4), 0);
	s.frames_end = 4;
	for (unsigned f = 0; f < 4; f++) {
		s.frames[f].salt = f % 2;
		mv__share_frame_take(&s, f, &gone, 1);
	}
	assert_int_equal(mv__share_frames_pass(&s, &gone, &same, 1, 1), 1);
	assert_int_equal(mv__share_frames_pass(&s, &gone, &same, 1, 5), 1);
	assert_int_equal(atomic_load(&same.frames_owned), 2);
	assert_int_equal(atomic_load(&gone.frames_owned), 2);
	mv__share_frames_pass(&s, &gone, &other, 0, UINT64_MAX);
	assert_int_equal(atomic_load(&other.frames_owned), 2);
	assert_int_equal(atomic_load(&gone.frames_owned), 0);
	for (unsigned f = 0; f < 4; f++)
		assert_ptr_equal(s.frames[f].owner, f % 2 ? &same : &other);
	share_free(&s);
}

/*
 * Random takes, drops and adoptions over a few frames and owners: the
 * owners' counts always add up to the live frames, a frame has an owner
 * iff it has references, and nrefs is the sum of refs.
 */
static void test_random_references_keep_ownership_whole(void **state)
{
	enum { FRAMES = 16, OWNERS = 3, STEPS = 20000 };
	struct mv__vm_share o[OWNERS];
	uint64_t refs[FRAMES] = { 0 }, rng = 0x2545f4914f6cdd1dull;
	uint64_t sum, live, f, n;
	struct mv__share s;
	unsigned who;

	(void)state;
	memset(o, 0, sizeof(o));
	table_new(&s, 16);
	assert_int_equal(mv__share_frames_room(&s, FRAMES), 0);
	s.frames_end = FRAMES;
	for (unsigned step = 0; step < STEPS; step++) {
		f = xs(&rng) % FRAMES;
		who = (unsigned)(xs(&rng) % OWNERS);
		switch (xs(&rng) % 3) {
		case 0:
			n = xs(&rng) % 3;
			mv__share_frame_take(&s, f, &o[who], (uint32_t)n);
			refs[f] += n;
			break;
		case 1:
			if (refs[f])
				assert_int_equal(mv__share_frame_drop(&s, f),
						 --refs[f] == 0);
			break;
		default:
			mv__share_frame_adopt(&s, f, &o[who]);
			break;
		}
		sum = live = 0;
		for (unsigned k = 0; k < FRAMES; k++) {
			assert_int_equal(s.frames[k].refs, refs[k]);
			assert_int_equal(s.frames[k].owner != NULL,
					 refs[k] > 0);
			sum += refs[k];
			live += refs[k] > 0;
		}
		assert_int_equal(s.nrefs, sum);
		assert_int_equal(s.nframes, live);
		sum = 0;
		for (unsigned k = 0; k < OWNERS; k++)
			sum += atomic_load(&o[k].frames_owned);
		assert_int_equal(sum, live);
	}
	share_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_with_one_home_wrap_around_the_end),
		cmocka_unit_test(
			test_deleting_a_key_shifts_back_the_ones_behind_it),
		cmocka_unit_test(
			test_random_inserts_and_deletes_keep_every_key_findable),
		cmocka_unit_test(
			test_a_table_past_nine_tenths_refuses_new_keys),
		cmocka_unit_test(test_growth_keeps_every_key),
		cmocka_unit_test(
			test_a_hint_replaced_by_a_frame_is_counted_as_one),
		cmocka_unit_test(
			test_a_frame_is_unlinked_only_from_its_own_slot),
		cmocka_unit_test(
			test_dropping_a_vms_hints_keeps_all_other_keys),
		cmocka_unit_test(
			test_salts_keep_equal_pages_under_different_keys),
		cmocka_unit_test(
			test_a_frame_freed_by_its_last_reference_is_reused_first),
		cmocka_unit_test(test_image_frames_never_go_on_the_free_list),
		cmocka_unit_test(test_pairs_in_a_row_get_frames_in_a_row),
		cmocka_unit_test(test_the_last_taker_of_a_frame_pays_for_it),
		cmocka_unit_test(
			test_a_leaving_owner_passes_frames_only_to_its_salt),
		cmocka_unit_test(test_random_references_keep_ownership_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
