// SPDX-License-Identifier: MIT
/*
 * series.c - the run's per-second time series, for `memvisor report`.
 *
 * Design: run.c hands over, once a second (a tick), the host's stats and
 * each VM's, as the live line read them; this keeps, per tick, the levels
 * (free memory, pages in each state, balloon size and target, ...) and the
 * counts of what happened since the tick before (ops, swap-ins and -outs,
 * pages compressed and decompressed, ...), worked out from the library's
 * cumulative counters.  Storage is column-wise: one uint64_t per key and
 * sample, and the JSON is one array per key, which is compact and what a
 * plot reads.
 *
 * Bounded: at most cap samples (SERIES_MAX_SAMPLES, 2048) are kept.  When
 * they are all used, adjacent samples are merged in pairs (the later
 * sample's time and levels, the sum of the counts), and from then on each
 * kept sample gathers twice as many ticks (the stride) before it is kept.
 * A 7-day run therefore ends with between 1024 and 2048 samples, each of
 * 512 s.  Nothing is lost from the counts: their sum over the samples is
 * the run's total whatever the merging.
 *
 * Invariants: for every sample, the page states of a VM sum to its memsize
 * (mv_vm_stats() counts each page once), merged or not; 0 < t[i] - t[i-1]
 * except for the first tick, t = 0, the counts' base; a count of a sample
 * is what happened in (t[i-1], t[i]].
 *
 * Lock ordering: none; the caller serialises ticks and the JSON writer
 * (run.c holds its report_lock around both).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

const struct series_key series_host_keys[SH_NKEYS] = {
	[SH_FREE] = { "free_pages", false },
	[SH_MINFREE] = { "minfree_pages", false },
	[SH_STATE] = { "state", false },
	[SH_CONSUMED] = { "consumed_pages", false },
	[SH_SHRDSVD] = { "shrdsvd_pages", false },
	[SH_RECLAIM] = { "reclaim_pages", true },
	[SH_ALLOC_WAITS] = { "alloc_waits", true },
	[SH_BLOCKED_WAITS] = { "blocked_waits", true },
};

const struct series_key series_vm_keys[SV_NKEYS] = {
	[SV_STATE + MV_PAGE_UNTOUCHED] = { "untouched_pages", false },
	[SV_STATE + MV_PAGE_PRIVATE] = { "private_pages", false },
	[SV_STATE + MV_PAGE_SHARED] = { "shared_pages", false },
	[SV_STATE + MV_PAGE_ZERO] = { "zero_pages", false },
	[SV_STATE + MV_PAGE_BALLOONED] = { "ballooned_pages", false },
	[SV_STATE + MV_PAGE_COMPRESSED] = { "compressed_pages", false },
	[SV_STATE + MV_PAGE_SWAPPED] = { "swapped_pages", false },
	[SV_STATE + MV_PAGE_SAMPLED] = { "sampled_pages", false },
	[SV_CONSUMED] = { "consumed_pages", false },
	[SV_TCHD] = { "tchd_pages", false },
	[SV_SZTGT] = { "sztgt_pages", false },
	[SV_MCTLSZ] = { "mctlsz_pages", false },
	[SV_MCTLTGT] = { "mctltgt_pages", false },
	[SV_SWCUR] = { "swcur_pages", false },
	[SV_SWTGT] = { "swtgt_pages", false },
	[SV_CACHEUSD] = { "cacheusd_bytes", false },
	[SV_OPS] = { "ops", true },
	[SV_SWAPIN] = { "swapin_pages", true },
	[SV_SWAPOUT] = { "swapout_pages", true },
	[SV_ZIP] = { "zip_pages", true },
	[SV_UNZIP] = { "unzip_pages", true },
	[SV_COW] = { "cow_breaks", true },
};

int series_init(struct series *s, size_t nvms, size_t cap)
{
	memset(s, 0, sizeof(*s));
	if (!cap)
		cap = SERIES_MAX_SAMPLES;
	cap = cap < 2 ? 2 : cap & ~(size_t)1;
	s->nvms = nvms;
	s->cap = cap;
	s->stride = 1;
	s->t = calloc(cap, sizeof(*s->t));
	s->host = calloc(cap * SH_NKEYS, sizeof(uint64_t));
	s->vm = calloc((nvms ? nvms : 1) * cap * SV_NKEYS, sizeof(uint64_t));
	s->names = calloc(nvms ? nvms : 1, sizeof(*s->names));
	s->memsz = calloc(nvms ? nvms : 1, sizeof(uint64_t));
	s->pend_host = calloc(SH_NKEYS, sizeof(uint64_t));
	s->cur_host = calloc(SH_NKEYS, sizeof(uint64_t));
	s->prev_host = calloc(SH_NKEYS, sizeof(uint64_t));
	s->pend_vm = calloc((nvms ? nvms : 1) * SV_NKEYS, sizeof(uint64_t));
	s->cur_vm = calloc((nvms ? nvms : 1) * SV_NKEYS, sizeof(uint64_t));
	s->prev_vm = calloc((nvms ? nvms : 1) * SV_NKEYS, sizeof(uint64_t));
	s->tick_vm = calloc((nvms ? nvms : 1) * SV_NKEYS, sizeof(uint64_t));
	if (!s->t || !s->host || !s->vm || !s->names || !s->memsz ||
	    !s->pend_host || !s->cur_host || !s->prev_host || !s->pend_vm ||
	    !s->cur_vm || !s->prev_vm || !s->tick_vm) {
		series_free(s);
		return -ENOMEM;
	}
	return 0;
}

void series_free(struct series *s)
{
	free(s->t);
	free(s->host);
	free(s->vm);
	free(s->names);
	free(s->memsz);
	free(s->pend_host);
	free(s->cur_host);
	free(s->prev_host);
	free(s->pend_vm);
	free(s->cur_vm);
	free(s->prev_vm);
	free(s->tick_vm);
	memset(s, 0, sizeof(*s));
}

void series_begin(struct series *s, double t, const struct mv_host_stats *h)
{
	uint64_t *c = s->cur_host;

	s->pend_t = t;
	c[SH_FREE] = h->free_pages;
	c[SH_MINFREE] = h->minfree_pages;
	c[SH_STATE] = (uint64_t)h->state;
	c[SH_CONSUMED] = h->consumed_pages;
	c[SH_SHRDSVD] = h->share_saved_pages;
	c[SH_RECLAIM] = h->reclaim_pages;
	c[SH_ALLOC_WAITS] = h->alloc_waits;
	c[SH_BLOCKED_WAITS] = h->blocked_waits;
}

void series_vm(struct series *s, size_t i, const struct mv_vm_stats *st,
	       uint64_t ops)
{
	uint64_t *c = s->cur_vm + i * SV_NKEYS;

	if (i >= s->nvms)
		return;
	memcpy(s->names[i], st->name, sizeof(s->names[i]));
	s->names[i][MV_NAME_MAX - 1] = '\0';
	s->memsz[i] = st->memsz_pages;
	for (int k = 0; k < MV_PAGE_NSTATES; k++)
		c[SV_STATE + k] = st->state_pages[k];
	c[SV_CONSUMED] = st->consumed_pages;
	c[SV_TCHD] = st->active_pages;
	c[SV_SZTGT] = st->sztgt_pages;
	c[SV_MCTLSZ] = st->mctlsz_pages;
	c[SV_MCTLTGT] = st->mctltgt_pages;
	c[SV_SWCUR] = st->swcur_pages;
	c[SV_SWTGT] = st->swtgt_pages;
	c[SV_CACHEUSD] = st->zip_used_bytes;
	c[SV_OPS] = ops;
	c[SV_SWAPIN] = st->swapin_pages;
	c[SV_SWAPOUT] = st->swapout_pages;
	c[SV_ZIP] = st->zip_pages;
	c[SV_UNZIP] = st->unzip_pages;
	c[SV_COW] = st->cow_breaks;
}

/* Folds a tick (or a sample) into dst: its levels replace dst's, its
 * counts add to dst's. */
static void fold(uint64_t *dst, const uint64_t *src,
		 const struct series_key *keys, size_t nkeys)
{
	for (size_t k = 0; k < nkeys; k++)
		dst[k] = keys[k].count ? dst[k] + src[k] : src[k];
}

/* This tick's values, counts made relative to the tick before. */
static void tick_values(struct series *s, uint64_t *host, uint64_t *vm)
{
	for (size_t k = 0; k < SH_NKEYS; k++)
		host[k] = !series_host_keys[k].count ? s->cur_host[k] :
			  !s->have_prev		     ? 0 :
			  s->cur_host[k] >= s->prev_host[k] ?
					  s->cur_host[k] - s->prev_host[k] :
					  0;
	for (size_t i = 0; i < s->nvms; i++) {
		const uint64_t *c = s->cur_vm + i * SV_NKEYS;
		const uint64_t *p = s->prev_vm + i * SV_NKEYS;
		uint64_t *d = vm + i * SV_NKEYS;

		for (size_t k = 0; k < SV_NKEYS; k++)
			d[k] = !series_vm_keys[k].count ? c[k] :
			       !s->have_prev		? 0 :
			       c[k] >= p[k]		? c[k] - p[k] :
							  0;
	}
}

static uint64_t *host_at(const struct series *s, size_t j)
{
	return s->host + j * SH_NKEYS;
}

static uint64_t *vm_at(const struct series *s, size_t i, size_t j)
{
	return s->vm + (i * s->cap + j) * SV_NKEYS;
}

/* All kept samples full: adjacent pairs become one. */
static void halve(struct series *s)
{
	for (size_t j = 0; j < s->n / 2; j++) {
		size_t a = 2 * j, b = 2 * j + 1;

		memcpy(host_at(s, j), host_at(s, a),
		       SH_NKEYS * sizeof(uint64_t));
		fold(host_at(s, j), host_at(s, b), series_host_keys, SH_NKEYS);
		for (size_t i = 0; i < s->nvms; i++) {
			memcpy(vm_at(s, i, j), vm_at(s, i, a),
			       SV_NKEYS * sizeof(uint64_t));
			fold(vm_at(s, i, j), vm_at(s, i, b), series_vm_keys,
			     SV_NKEYS);
		}
		s->t[j] = s->t[b];
	}
	s->n /= 2;
	s->stride *= 2;
	s->merges++;
}

void series_end(struct series *s)
{
	uint64_t host[SH_NKEYS], *vm = s->tick_vm;

	tick_values(s, host, vm);
	if (!s->pend_ticks) {
		memcpy(s->pend_host, host, sizeof(host));
		memcpy(s->pend_vm, vm, s->nvms * SV_NKEYS * sizeof(uint64_t));
	} else {
		fold(s->pend_host, host, series_host_keys, SH_NKEYS);
		for (size_t i = 0; i < s->nvms; i++)
			fold(s->pend_vm + i * SV_NKEYS, vm + i * SV_NKEYS,
			     series_vm_keys, SV_NKEYS);
	}
	s->pend_ticks++;
	memcpy(s->prev_host, s->cur_host, SH_NKEYS * sizeof(uint64_t));
	memcpy(s->prev_vm, s->cur_vm, s->nvms * SV_NKEYS * sizeof(uint64_t));
	s->have_prev = true;
	if (s->pend_ticks < s->stride)
		return;
	s->t[s->n] = s->pend_t;
	memcpy(host_at(s, s->n), s->pend_host, SH_NKEYS * sizeof(uint64_t));
	for (size_t i = 0; i < s->nvms; i++)
		memcpy(vm_at(s, i, s->n), s->pend_vm + i * SV_NKEYS,
		       SV_NKEYS * sizeof(uint64_t));
	s->n++;
	s->pend_ticks = 0;
	if (s->n == s->cap)
		halve(s);
}

size_t series_samples(const struct series *s)
{
	return s->n + (s->pend_ticks ? 1 : 0);
}

/* The values of one key over the samples, the pending one last. */
static cJSON *column(const struct series *s, const uint64_t *first, size_t step,
		     const uint64_t *pending)
{
	size_t n = series_samples(s);
	double *v = malloc((n ? n : 1) * sizeof(double));
	cJSON *a;

	if (!v)
		return NULL;
	for (size_t j = 0; j < s->n; j++)
		v[j] = (double)first[j * step];
	if (s->pend_ticks)
		v[s->n] = (double)*pending;
	a = cJSON_CreateDoubleArray(v, (int)n);
	free(v);
	return a;
}

static bool add(cJSON *obj, const char *key, cJSON *item)
{
	if (!item || !cJSON_AddItemToObject(obj, key, item)) {
		cJSON_Delete(item);
		return false;
	}
	return true;
}

int series_to_json(const struct series *s, cJSON *obj)
{
	size_t n = series_samples(s);
	cJSON *o = cJSON_CreateObject(), *host, *vms, *v;
	double *t = malloc((n ? n : 1) * sizeof(double));
	bool ok = o && t && add(obj, "series", o);

	if (!ok) {
		if (o && !cJSON_GetObjectItem(obj, "series"))
			cJSON_Delete(o);
		free(t);
		return -ENOMEM;
	}
	for (size_t j = 0; j < s->n; j++)
		t[j] = round(s->t[j] * 1000) / 1000;
	if (s->pend_ticks)
		t[s->n] = round(s->pend_t * 1000) / 1000;
	ok = cJSON_AddNumberToObject(o, "page_size", MV_PAGE_SIZE) &&
	     cJSON_AddNumberToObject(o, "samples", (double)n) &&
	     cJSON_AddNumberToObject(o, "stride_s", s->stride) &&
	     cJSON_AddNumberToObject(o, "max_samples", (double)s->cap) &&
	     cJSON_AddNumberToObject(o, "merges", s->merges) &&
	     add(o, "t", cJSON_CreateDoubleArray(t, (int)n));
	free(t);
	host = ok ? cJSON_AddObjectToObject(o, "host") : NULL;
	ok = ok && host;
	for (size_t k = 0; ok && k < SH_NKEYS; k++)
		ok = add(host, series_host_keys[k].name,
			 column(s, host_at(s, 0) + k, SH_NKEYS,
				s->pend_host + k));
	vms = ok ? cJSON_AddArrayToObject(o, "vms") : NULL;
	ok = ok && vms;
	for (size_t i = 0; ok && i < s->nvms; i++) {
		v = cJSON_CreateObject();
		ok = v && cJSON_AddItemToArray(vms, v);
		if (!ok) {
			cJSON_Delete(v);
			break;
		}
		ok = cJSON_AddStringToObject(v, "name", s->names[i]) &&
		     cJSON_AddNumberToObject(v, "memsz_pages",
					     (double)s->memsz[i]);
		for (size_t k = 0; ok && k < SV_NKEYS; k++)
			ok = add(v, series_vm_keys[k].name,
				 column(s, vm_at(s, i, 0) + k, SV_NKEYS,
					s->pend_vm + i * SV_NKEYS + k));
	}
	return ok ? 0 : -ENOMEM;
}
