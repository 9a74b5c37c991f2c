// SPDX-License-Identifier: MIT
/*
 * snap.c - snapshots of a running host, shared by the live screen and the
 * metrics endpoint.
 *
 * Design: run.c fills one struct snap a second from the library's stats
 * (it alone calls into the engine) and hands copies to the readers, which
 * keep their own under their own lock.  Rates are differences of the
 * library's cumulative counters over the time between two snapshots of the
 * same VM, so they need no state but the previous snapshot itself.
 *
 * Invariants: a snapshot owns its vms array; copies never share it.  A
 * counter that went backwards (it cannot, but a VM whose stats could not
 * be read keeps its old ones) gives a rate of 0, never a negative one.
 *
 * Lock ordering: none here; callers guard their own copies.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snap.h"

int snap_init(struct snap *s, size_t nvms)
{
	memset(s, 0, sizeof(*s));
	if (nvms) {
		s->vms = calloc(nvms, sizeof(*s->vms));
		if (!s->vms)
			return -ENOMEM;
	}
	s->nvms = nvms;
	return 0;
}

void snap_free(struct snap *s)
{
	free(s->vms);
	s->vms = NULL;
	s->nvms = 0;
}

int snap_copy(struct snap *dst, const struct snap *src)
{
	struct snap_vm *vms = dst->vms;

	if (dst->nvms != src->nvms) {
		vms = calloc(src->nvms ? src->nvms : 1, sizeof(*vms));
		if (!vms)
			return -ENOMEM;
		free(dst->vms);
	}
	*dst = *src;
	dst->vms = vms;
	if (src->nvms)
		memcpy(vms, src->vms, src->nvms * sizeof(*vms));
	return 0;
}

static double rate_mb(uint64_t now, uint64_t before, double dt)
{
	return now > before ? snap_mb(now - before) / dt : 0.0;
}

void snap_vm_update(struct snap_vm *v, const struct mv_vm_stats *st,
		    uint64_t ops, uint64_t integrity_errors, double t_s)
{
	double dt = t_s - v->t_s;

	if (v->have && dt > 0) {
		v->swr_mb_s = rate_mb(st->swapin_pages, v->st.swapin_pages, dt);
		v->sww_mb_s =
			rate_mb(st->swapout_pages, v->st.swapout_pages, dt);
		v->zip_mb_s = rate_mb(st->zip_pages, v->st.zip_pages, dt);
		v->unzip_mb_s = rate_mb(st->unzip_pages, v->st.unzip_pages, dt);
		v->ops_s = ops > v->ops ? (double)(ops - v->ops) / dt : 0.0;
	} else if (!v->have) {
		v->swr_mb_s = v->sww_mb_s = v->zip_mb_s = v->unzip_mb_s = 0;
		v->ops_s = 0;
	}
	v->st = *st;
	if (!v->name[0])
		memcpy(v->name, st->name, sizeof(v->name));
	v->name[sizeof(v->name) - 1] = '\0';
	v->ops = ops;
	v->integrity_errors = integrity_errors;
	v->t_s = t_s;
	v->have = true;
}

uint64_t snap_grant_pages(const struct mv_vm_stats *st)
{
	return st->state_pages[MV_PAGE_PRIVATE] +
	       st->state_pages[MV_PAGE_SHARED] +
	       st->state_pages[MV_PAGE_SAMPLED];
}

void snap_totals(const struct snap *s, struct snap_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < s->nvms; i++) {
		const struct snap_vm *v = &s->vms[i];

		if (!v->have)
			continue;
		t->memsz_pages += v->st.memsz_pages;
		t->grant_pages += snap_grant_pages(&v->st);
		t->swcur_pages += v->st.swcur_pages;
		t->swtgt_pages += v->st.swtgt_pages;
		t->mctlsz_pages += v->st.mctlsz_pages;
		t->mctltgt_pages += v->st.mctltgt_pages;
		/* as esxtop: what balloons could take, where a driver is */
		if (v->st.balloon_driver)
			t->mctlmax_pages += v->st.mctlmax_pages;
		t->zip_cached_pages += v->st.zip_cached_pages;
		t->zip_saved_bytes += v->st.zip_saved_bytes;
		t->zip_used_bytes += v->st.zip_used_bytes;
		t->zero_pages += v->st.zero_pages;
		t->swr_mb_s += v->swr_mb_s;
		t->sww_mb_s += v->sww_mb_s;
		t->zip_mb_s += v->zip_mb_s;
		t->unzip_mb_s += v->unzip_mb_s;
		t->ops_s += v->ops_s;
	}
}
