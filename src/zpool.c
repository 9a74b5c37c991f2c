// SPDX-License-Identifier: MIT
/*
 * zpool.c - the packed store behind a VM's compression cache.
 *
 * Purpose: a compressed page is 1..2048 bytes.  Giving each its own 4 KiB
 * frame would throw away half or more of what compressing it saved, so
 * objects of similar size share frames, and the memory the cache holds stays
 * close to the sum of the compressed sizes.
 *
 * Design, after the idea of Linux's zsmalloc: a size is rounded up to a
 * 32-byte step, and each step maps to a size class whose objects sit back to
 * back in spans of 1..4 contiguous frames.  A class takes the span length
 * that leaves the smallest unused tail per frame (a span is one allocation,
 * so objects straddle the frame boundaries inside it).  Steps whose spans
 * would hold as many objects in as many frames as the next larger step's are
 * merged into that class: the slot gets bigger but the frames per object do
 * not, and fewer classes means fewer half-filled spans per pool, which is
 * what costs density in a small cache.  32-byte steps rather than 16 for the
 * same reason: at a few thousand objects the half-filled spans cost more than
 * the rounding.
 *
 * Partial spans sit on per-class fullness lists.  An allocation fills the
 * fullest partial span, so that free slots gather in spans that are already
 * sparse; a span that loses its last object is freed at once.  Compaction
 * works class by class: it moves the objects of the least used partial span
 * into the most used one until one of them is empty or full, and stops when
 * the class's free slots add up to less than a span, i.e. when no more frames
 * could come back.
 *
 * An object is reached through a handle, an index into a handle table plus
 * a generation: the entry says where the object is, so compaction moves an
 * object by rewriting one entry and the caller's handle (stored in a pmap
 * entry) never changes; no call back into the owner is needed, which keeps
 * this lock a leaf.  The generation changes at every free, so a stale or
 * doubly freed handle is refused instead of reaching another page's data
 * (until it wraps after 2^24 reuses of one entry).
 *
 * Handle layout: bits 0-31 table index (never 0, so no handle is 0),
 * bits 32-55 generation, bits 56-63 zero.
 *
 * Invariants, whenever zp->lock is free:
 *   - frames * MV_ZPOOL_FRAME_SIZE <= max_bytes: the cap is checked before
 *     any span is allocated, and compaction only ever frees;
 *   - no span is empty, and each is on the list of its class that
 *     group_of(inuse) names;
 *   - a table entry is live iff its size is nonzero; then its span's owner[]
 *     at its slot holds its index, and the slot holds its size bytes;
 *   - stored, objects, frames, and each class's slots and inuse are the sums
 *     of what the spans and live entries hold.
 *
 * Locks (order: internal.h): zp->lock is a leaf.  Nothing called with it held takes
 * another lock (malloc aside), so callers may hold pmap entry locks or any
 * engine lock when they call in.  Compaction drops it after each span it
 * works on, so a fault waits for at most one span's worth of moves.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "inject.h"
#include "zpool.h"

#define GRAN 32u
#define NSTEPS (MV_ZPOOL_MAX_OBJ / GRAN)
#define MAX_SPAN_FRAMES 4u
#define NGROUPS 8u /* fullness groups of partial spans */
#define GROUP_FULL NGROUPS /* the list of full spans comes after them */
#define SLOT_NIL 0xffffu
#define GEN_MASK 0xffffffu
#define INDEX_BITS 32
#define HT_MIN 256u

/* the packed fields below hold what is put in them */
_Static_assert(MAX_SPAN_FRAMES *MV_ZPOOL_FRAME_SIZE / GRAN < SLOT_NIL,
	       "a slot number and SLOT_NIL fit a span's uint16_t fields");
_Static_assert(MV_ZPOOL_MAX_OBJ <= 0xffffu, "an object's size fits uint16_t");
_Static_assert(NGROUPS + 1 <= 0xffu, "a group number fits uint8_t");
_Static_assert(NSTEPS <= 0xffu, "a class index fits uint8_t");
_Static_assert(INDEX_BITS + 24 <= MV_ZPOOL_HANDLE_BITS &&
		       GEN_MASK == (1u << 24) - 1,
	       "index and generation fit the handle's bits");

/* A run of frames holding one class's slots; all of it under zp->lock. */
struct span {
	struct span *prev; /* neighbours on its class's groups[group] list */
	struct span *next;
	uint8_t *mem; /* the class's frames * 4096 bytes of slots */
	uint16_t inuse; /* slots holding an object */
	/* First free slot or SLOT_NIL; a free slot's first two bytes hold the
	 * next, so the chain costs no memory beside the frames. */
	uint16_t free_slot;
	uint8_t cls; /* index into zp->classes */
	uint8_t group; /* which of its class's lists it is on */
	uint32_t owner[]; /* per slot: its object's table index, 0 if free */
};

/* Mutable fields under zp->lock. */
struct zclass {
	uint32_t size; /* slot bytes; immutable */
	uint16_t frames; /* frames per span; immutable */
	uint16_t objs; /* slots per span; immutable */
	uint64_t slots; /* slots in all its spans */
	uint64_t inuse; /* of those, holding objects */
	struct span *groups[NGROUPS + 1]; /* partial by fullness, then full */
};

/* A handle table entry; under zp->lock. */
struct hentry {
	union {
		struct span *span; /* live: the span holding the object */
		uint64_t next_free; /* free: next free entry, 0 for none */
	};
	uint32_t gen; /* bumped at every free */
	uint16_t slot; /* live: the object's slot in span */
	uint16_t size; /* the object's bytes; 0 while the entry is free */
};

/*
 * All fields are protected by lock, except those marked immutable, which
 * are set by create and only read afterwards.
 */
struct mv__zpool {
	pthread_mutex_t lock;
	uint64_t max_bytes; /* immutable */
	unsigned nclasses; /* immutable */
	uint8_t class_of[NSTEPS]; /* immutable: 32-byte step -> class */
	struct zclass classes[NSTEPS]; /* only the first nclasses are used */
	struct hentry *ht; /* handle table; ht[0] is never handed out */
	uint64_t ht_cap; /* entries allocated */
	uint64_t ht_used; /* entries 1..ht_used-1 have been handed out */
	uint64_t ht_free; /* first free entry below ht_used, 0 for none */
	uint64_t stored; /* sum of the live objects' sizes */
	uint64_t objects; /* live objects */
	uint64_t frames; /* frames held by spans */
	uint64_t meta; /* bytes of spans' headers and the handle table */
	uint64_t moved; /* objects moved by compaction */
	uint64_t compact_freed; /* frames freed by compaction */
};

static void build_classes(struct mv__zpool *zp)
{
	struct zclass *c = NULL;
	unsigned step = NSTEPS;

	while (step-- > 0) {
		unsigned size = (step + 1) * GRAN;
		unsigned best_k = 1, best_n = MV_ZPOOL_FRAME_SIZE / size;

		for (unsigned k = 2; k <= MAX_SPAN_FRAMES; k++) {
			unsigned n = k * MV_ZPOOL_FRAME_SIZE / size;

			/* more objects per frame wins; a tie keeps the shorter
			 * span, which strands less in a half-filled one */
			if (n * best_k > best_n * k) {
				best_k = k;
				best_n = n;
			}
		}
		if (!c || c->frames != best_k || c->objs != best_n) {
			c = &zp->classes[zp->nclasses++];
			c->size = size;
			c->frames = best_k;
			c->objs = best_n;
		}
		zp->class_of[step] = c - zp->classes;
	}
}

static size_t span_meta(const struct zclass *c)
{
	return sizeof(struct span) + c->objs * sizeof(uint32_t);
}

static uint8_t *slot_ptr(struct mv__zpool *zp, struct span *s, unsigned slot)
{
	return s->mem + (size_t)slot * zp->classes[s->cls].size;
}

static unsigned group_of(const struct zclass *c, unsigned inuse)
{
	if (inuse == c->objs)
		return GROUP_FULL;
	return inuse * NGROUPS / c->objs;
}

static void list_del(struct zclass *c, struct span *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		c->groups[s->group] = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

static void list_add(struct zclass *c, struct span *s, unsigned group)
{
	s->group = group;
	s->prev = NULL;
	s->next = c->groups[group];
	if (s->next)
		s->next->prev = s;
	c->groups[group] = s;
}

static void regroup(struct zclass *c, struct span *s)
{
	unsigned group = group_of(c, s->inuse);

	if (group != s->group) {
		list_del(c, s);
		list_add(c, s, group);
	}
}

/* The fullest partial span of c other than except, or NULL. */
static struct span *fullest_partial(struct zclass *c, struct span *except)
{
	for (unsigned g = NGROUPS; g-- > 0;) {
		struct span *s = c->groups[g];

		if (s && s == except)
			s = s->next;
		if (s)
			return s;
	}
	return NULL;
}

static struct span *sparsest_partial(struct zclass *c)
{
	for (unsigned g = 0; g < NGROUPS; g++)
		if (c->groups[g])
			return c->groups[g];
	return NULL;
}

/*
 * A new span of class ci with every slot free, on its class's lowest list
 * until the caller fills a slot, or NULL when memory is short.
 */
static struct span *span_create(struct mv__zpool *zp, unsigned ci)
{
	struct zclass *c = &zp->classes[ci];
	struct span *s;

	s = mv__calloc(1, span_meta(c));
	if (!s)
		goto fail;
	s->mem = mv__aligned_alloc(MV_ZPOOL_FRAME_SIZE,
				   (size_t)c->frames * MV_ZPOOL_FRAME_SIZE);
	if (!s->mem)
		goto fail_span;
	for (unsigned i = 0; i < c->objs; i++) {
		uint16_t next = i + 1 < c->objs ? i + 1 : SLOT_NIL;

		memcpy(s->mem + (size_t)i * c->size, &next, sizeof(next));
	}
	s->free_slot = 0;
	s->cls = ci;
	list_add(c, s, 0);
	c->slots += c->objs;
	zp->frames += c->frames;
	zp->meta += span_meta(c);
	return s;

fail_span:
	free(s);
fail:
	return NULL;
}

static void span_destroy(struct mv__zpool *zp, struct span *s)
{
	struct zclass *c = &zp->classes[s->cls];

	list_del(c, s);
	c->slots -= c->objs;
	zp->frames -= c->frames;
	zp->meta -= span_meta(c);
	free(s->mem);
	free(s);
}

static unsigned slot_take(struct mv__zpool *zp, struct span *s, uint32_t idx)
{
	struct zclass *c = &zp->classes[s->cls];
	unsigned slot = s->free_slot;
	uint16_t next;

	memcpy(&next, slot_ptr(zp, s, slot), sizeof(next));
	s->free_slot = next;
	s->owner[slot] = idx;
	s->inuse++;
	c->inuse++;
	regroup(c, s);
	return slot;
}

/* Frees the slot; frees the span too if that was its last object. */
static void slot_put(struct mv__zpool *zp, struct span *s, unsigned slot)
{
	struct zclass *c = &zp->classes[s->cls];
	uint16_t next = s->free_slot;

	memcpy(slot_ptr(zp, s, slot), &next, sizeof(next));
	s->free_slot = slot;
	s->owner[slot] = 0;
	s->inuse--;
	c->inuse--;
	if (!s->inuse)
		span_destroy(zp, s);
	else
		regroup(c, s);
}

/* The live entry for handle h, or NULL. */
static struct hentry *lookup(struct mv__zpool *zp, uint64_t h)
{
	uint64_t idx = h & ((1ull << INDEX_BITS) - 1);
	struct hentry *e;

	if (h >> MV_ZPOOL_HANDLE_BITS || !idx || idx >= zp->ht_used)
		return NULL;
	e = &zp->ht[idx];
	if (!e->size || e->gen != h >> INDEX_BITS)
		return NULL;
	return e;
}

static int ht_grow(struct mv__zpool *zp)
{
	/* by half again, not double: the unused tail is counted as meta */
	uint64_t cap = zp->ht_cap + zp->ht_cap / 2;
	struct hentry *ht;

	if (cap > 1ull << INDEX_BITS)
		return -ENOMEM;
	ht = mv__calloc(cap, sizeof(*ht));
	if (!ht)
		return -ENOMEM;
	memcpy(ht, zp->ht, zp->ht_used * sizeof(*ht));
	free(zp->ht);
	zp->meta += (cap - zp->ht_cap) * sizeof(*ht);
	zp->ht = ht;
	zp->ht_cap = cap;
	return 0;
}

/*
 * Finds a free entry without taking it, so that a later failure in alloc
 * has nothing to undo.
 */
static int entry_reserve(struct mv__zpool *zp, uint64_t *idx)
{
	int err;

	if (zp->ht_free) {
		*idx = zp->ht_free;
		return 0;
	}
	if (zp->ht_used == zp->ht_cap) {
		err = ht_grow(zp);
		if (err)
			return err;
	}
	*idx = zp->ht_used;
	return 0;
}

static void entry_claim(struct mv__zpool *zp, uint64_t idx)
{
	if (idx == zp->ht_free)
		zp->ht_free = zp->ht[idx].next_free;
	else
		zp->ht_used++;
}

int mv__zpool_create(uint64_t max_bytes, struct mv__zpool **out)
{
	struct mv__zpool *zp;
	int err = -ENOMEM;

	zp = mv__calloc(1, sizeof(*zp));
	if (!zp)
		goto fail;
	zp->ht = mv__calloc(HT_MIN, sizeof(*zp->ht));
	if (!zp->ht)
		goto fail_zp;
	err = -pthread_mutex_init(&zp->lock, NULL);
	if (err)
		goto fail_ht;
	zp->max_bytes = max_bytes;
	zp->ht_cap = HT_MIN;
	zp->ht_used = 1;
	zp->meta = sizeof(*zp) + HT_MIN * sizeof(*zp->ht);
	build_classes(zp);
	*out = zp;
	return 0;

fail_ht:
	free(zp->ht);
fail_zp:
	free(zp);
fail:
	return err;
}

void mv__zpool_destroy(struct mv__zpool *zp)
{
	if (!zp)
		return;
	for (unsigned ci = 0; ci < zp->nclasses; ci++) {
		struct zclass *c = &zp->classes[ci];

		for (unsigned g = 0; g <= GROUP_FULL; g++)
			while (c->groups[g])
				span_destroy(zp, c->groups[g]);
	}
	free(zp->ht);
	pthread_mutex_destroy(&zp->lock);
	free(zp);
}

int mv__zpool_alloc(struct mv__zpool *zp, size_t size, uint64_t *handle)
{
	unsigned ci, slot;
	struct zclass *c;
	struct hentry *e;
	struct span *s;
	uint64_t idx;
	int err;

	if (!size || size > MV_ZPOOL_MAX_OBJ)
		return -EINVAL;
	ci = zp->class_of[(size - 1) / GRAN];
	c = &zp->classes[ci];

	pthread_mutex_lock(&zp->lock);
	err = entry_reserve(zp, &idx);
	if (err)
		goto out;
	s = fullest_partial(c, NULL);
	if (!s) {
		if ((zp->frames + c->frames) * MV_ZPOOL_FRAME_SIZE >
		    zp->max_bytes) {
			err = -ENOSPC;
			goto out;
		}
		s = span_create(zp, ci);
		if (!s) {
			err = -ENOMEM;
			goto out;
		}
	}
	entry_claim(zp, idx);
	slot = slot_take(zp, s, idx);
	e = &zp->ht[idx];
	e->span = s;
	e->slot = slot;
	e->size = size;
	zp->stored += size;
	zp->objects++;
	*handle = (uint64_t)e->gen << INDEX_BITS | idx;
out:
	pthread_mutex_unlock(&zp->lock);
	return err;
}

int mv__zpool_write(struct mv__zpool *zp, uint64_t handle, const void *src,
		    size_t len)
{
	struct hentry *e;
	int err = 0;

	pthread_mutex_lock(&zp->lock);
	e = lookup(zp, handle);
	if (!e || len != e->size)
		err = -EINVAL;
	else
		memcpy(slot_ptr(zp, e->span, e->slot), src, len);
	pthread_mutex_unlock(&zp->lock);
	return err;
}

int mv__zpool_read(struct mv__zpool *zp, uint64_t handle, void *dst, size_t cap)
{
	struct hentry *e;
	int ret;

	pthread_mutex_lock(&zp->lock);
	e = lookup(zp, handle);
	if (!e) {
		ret = -EINVAL;
	} else if (cap < e->size) {
		ret = -ENOBUFS;
	} else {
		memcpy(dst, slot_ptr(zp, e->span, e->slot), e->size);
		ret = e->size;
	}
	pthread_mutex_unlock(&zp->lock);
	return ret;
}

int mv__zpool_size(struct mv__zpool *zp, uint64_t handle)
{
	struct hentry *e;
	int ret;

	pthread_mutex_lock(&zp->lock);
	e = lookup(zp, handle);
	ret = e ? e->size : -EINVAL;
	pthread_mutex_unlock(&zp->lock);
	return ret;
}

int mv__zpool_free(struct mv__zpool *zp, uint64_t handle)
{
	uint64_t idx = handle & ((1ull << INDEX_BITS) - 1);
	struct hentry *e;
	struct span *s;
	unsigned slot;
	int err = 0;

	pthread_mutex_lock(&zp->lock);
	e = lookup(zp, handle);
	if (!e) {
		err = -EINVAL;
		goto out;
	}
	s = e->span;
	slot = e->slot;
	zp->stored -= e->size;
	zp->objects--;
	e->size = 0;
	e->gen = (e->gen + 1) & GEN_MASK;
	e->next_free = zp->ht_free;
	zp->ht_free = idx;
	slot_put(zp, s, slot);
out:
	pthread_mutex_unlock(&zp->lock);
	return err;
}

/* Moves the object in src's slot into dst; src is freed if it empties. */
static void move_object(struct mv__zpool *zp, struct span *src, unsigned slot,
			struct span *dst)
{
	uint32_t idx = src->owner[slot];
	struct hentry *e = &zp->ht[idx];
	unsigned to = slot_take(zp, dst, idx);

	memcpy(slot_ptr(zp, dst, to), slot_ptr(zp, src, slot), e->size);
	e->span = dst;
	e->slot = to;
	zp->moved++;
	slot_put(zp, src, slot);
}

/*
 * Empties the sparsest partial span of class ci into the fullest, until one
 * is empty or the other full.  Each call takes one span off the partial
 * lists, so repeating it ends.  False when the class's free slots add up to
 * less than a span: then no move could give a frame back.
 */
static bool compact_step(struct mv__zpool *zp, unsigned ci)
{
	struct zclass *c = &zp->classes[ci];
	struct span *src, *dst;

	if (c->slots - c->inuse < c->objs)
		return false;
	/* free slots worth a span cannot all be in one nonempty span, so
	 * there are two partial ones */
	src = sparsest_partial(c);
	dst = fullest_partial(c, src);
	for (unsigned slot = 0; slot < c->objs; slot++) {
		bool last;

		if (!src->owner[slot])
			continue;
		last = src->inuse == 1;
		move_object(zp, src, slot, dst);
		if (last || dst->inuse == c->objs)
			break;
	}
	return true;
}

uint64_t mv__zpool_compact(struct mv__zpool *zp)
{
	uint64_t freed = 0;

	for (unsigned ci = 0; ci < zp->nclasses; ci++) {
		bool more;

		do {
			uint64_t before;

			pthread_mutex_lock(&zp->lock);
			before = zp->frames;
			more = compact_step(zp, ci);
			zp->compact_freed += before - zp->frames;
			freed += before - zp->frames;
			pthread_mutex_unlock(&zp->lock);
		} while (more);
	}
	return freed;
}

void mv__zpool_stats(struct mv__zpool *zp, struct mv__zpool_stats *st)
{
	pthread_mutex_lock(&zp->lock);
	st->stored_bytes = zp->stored;
	st->used_bytes = zp->frames * MV_ZPOOL_FRAME_SIZE;
	st->objects = zp->objects;
	st->frames = zp->frames;
	st->max_bytes = zp->max_bytes;
	st->meta_bytes = zp->meta;
	st->moved = zp->moved;
	st->compact_freed = zp->compact_freed;
	pthread_mutex_unlock(&zp->lock);
}
