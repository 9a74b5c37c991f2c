// SPDX-License-Identifier: MIT
/*
 * report.c - the end of `memvisor run`: the final table and the JSON report.
 *
 * Design: both outputs read the same struct run_result, filled by run.c, so
 * the table and the JSON cannot disagree.  Column and key names are
 * esxtop's (MEMSZ, SZTGT, CONSUMED, TCHD, %ACTV, MCTLTGT, SWCUR, SWTGT,
 * SWR/s, SWW/s); TCHD is, as in esxtop, the active memory estimated by
 * sampling, not the pages ever touched (touched_mb).  Keys are in lower
 * case with the unit appended (memsz_mb, swr_s), because that is what
 * people who run VMware hosts already read.  Sizes are MiB with one
 * decimal, as esxtop shows them; rates are MiB per second.  Counters that
 * are not sizes (ops, faults, errors) are plain integers.
 *
 * The JSON file is replaced whole or not at all: the text goes to a
 * temporary file in the same directory, which is synced and renamed over
 * the old one, so a reader, or a run killed half way, never leaves a
 * truncated report, and a failed write leaves the earlier report as it was.
 * A target that is not a regular file (a pipe, /dev/stdout) is written in
 * place, since renaming over it would replace the device.  The path is
 * checked before the run by making and removing a file in its directory.
 * A run that failed has "exit_status" and "error", and, if it never got to
 * run the guests, nothing else but the scenario.
 *
 * The host's figures count the VMs in other processes (vmm = process, QEMU
 * guests under the run's daemon) as its own VMs are counted, from what
 * their agents reported (report_host_add_remote, called by run.c before
 * either output is made).
 *
 * Invariants: an integrity error is never left out of either output: the
 * table is followed by each VM's first mismatch, and the JSON carries the
 * same text; "error" is there exactly when "exit_status" is not 0.
 * The per-second "series" (series.c) comes after the totals, so that a
 * reader of the file sees the verdict first.
 *
 * Lock ordering: none; this runs after every guest thread has stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "files.h"
#include "report.h"

/* The final table's columns; the header is printed with the same widths. */
#define TABLE_HDR \
	"%-12s %7s %7s %8s %7s %5s %7s %7s %7s %7s %7s %7s %7s %7s %8s %6s %6s %6s %7s %9s %9s\n"
#define TABLE_FMT \
	"%-12s %7.1f %7.1f %8.1f %7.1f %5.0f %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f %8.1f %6.1f %6.1f %6.1f %7.1f %9.0f %9llu\n"

/* To 0.1 as the text's "%.1f" rounds: a tie goes to the even digit (a size
 * in pages is often an exact x.25 or x.75 MB, where round() goes up and
 * printf does not), so the JSON and the text never differ by 0.1. */
static double round1(double v)
{
	return nearbyint(v * 10) / 10;
}

/* ESX shows VMs without a balloon driver; so does this, in one line. */
static void print_no_driver(FILE *out, const struct run_result *r)
{
	bool any = false;

	for (size_t i = 0; i < r->sc->nvms; i++) {
		if (r->vms[i].st.balloon_driver)
			continue;
		fprintf(out, "%s%s",
			any ? ", " : "no balloon driver: ", r->vms[i].vm->name);
		any = true;
	}
	if (any)
		fputc('\n', out);
}

void report_host_add_remote(struct mv_host_stats *h,
			    const struct mv_vm_stats *st)
{
	/* what its scheduler compressed or swapped out; a page the cache
	 * later pushed to swap was reclaimed once */
	uint64_t out = st->zip_pages + st->swapout_pages;
	/* its host has it alone: its frames are its shared pages and zero
	 * pages less what they save */
	uint64_t refs = st->shrd_pages + st->zero_pages;

	h->reclaim_pages +=
		out > st->zip_evict_pages ? out - st->zip_evict_pages : 0;
	h->swap_errors += st->swap_errors;
	h->alloc_waits += st->alloc_waits;
	h->blocked_waits += st->blocked_waits;
	h->unreadable_pages += st->unreadable_pages;
	h->parked_pages += st->parked_pages;
	h->share_saved_pages += st->shrdsvd_pages;
	h->share_frames += refs > st->shrdsvd_pages ? refs - st->shrdsvd_pages :
						      0;
	h->share_refs += st->shrd_pages;
	h->share_scanned_pages += st->share_scanned_pages;
	h->cow_breaks += st->cow_breaks;
	h->lpage_pages += st->lpage_pages;
	h->lpage_collapses += st->lpage_collapses;
	h->lpage_breaks += st->lpage_breaks;
}

void report_print(FILE *out, const struct run_result *r)
{
	const struct mv_host_stats *h = &r->host;
	uint64_t configured = scenario_vm_memsize_total(r->sc);

	fprintf(out, "\n" TABLE_HDR, "NAME", "MEMSZ", "SZTGT", "CONSUMED",
		"TCHD", "%ACTV", "SHRD", "ZERO", "SHRDSVD", "LPAGE", "MCTLSZ",
		"MCTLTGT", "SWCUR", "SWTGT", "CACHEUSD", "SWR/s", "SWW/s",
		"ZIP/s", "UNZIP/s", "OPS/s", "INTEGRITY");
	for (size_t i = 0; i < r->sc->nvms; i++) {
		const struct vm_result *v = &r->vms[i];

		fprintf(out, TABLE_FMT, v->vm->name,
			pages_mb(v->st.memsz_pages),
			pages_mb(v->st.sztgt_pages),
			pages_mb(v->st.consumed_pages),
			pages_mb(v->st.active_pages),
			v->st.active_permille / 10.0,
			pages_mb(v->st.shrd_pages), pages_mb(v->st.zero_pages),
			pages_mb(v->st.shrdsvd_pages),
			pages_mb(v->st.lpage_pages),
			pages_mb(v->st.mctlsz_pages),
			pages_mb(v->st.mctltgt_pages),
			pages_mb(v->st.swcur_pages),
			pages_mb(v->st.swtgt_pages),
			(double)v->st.zip_used_bytes / (1 << 20), v->swr_mb_s,
			v->sww_mb_s, v->zip_mb_s, v->unzip_mb_s, v->ops_s,
			(unsigned long long)v->guest.integrity_errors);
	}
	fprintf(out, "(sizes in MB, rates in MB/s, averaged over %.1f s%s)\n",
		r->duration_s, r->interrupted ? ", interrupted" : "");
	print_no_driver(out, r);
	fprintf(out,
		"host: memsize %.1f MB, consumed %.1f MB, free %.1f MB, minFree %.1f MB, state %s\n",
		pages_mb(h->memsize_pages), pages_mb(h->consumed_pages),
		pages_mb(h->free_pages), pages_mb(h->minfree_pages),
		mv_mem_state_name(h->state));
	fprintf(out,
		"      %.1f MB of guest memory on %.1f MB (%.0f%%), %.1f MB reclaimed, %llu waits for a free frame, %llu faults held in low, %llu swap errors\n",
		(double)configured / (1 << 20), pages_mb(h->memsize_pages),
		h->memsize_pages ?
			100.0 * (double)configured /
				((double)h->memsize_pages * MV_PAGE_SIZE) :
			0.0,
		pages_mb(h->reclaim_pages), (unsigned long long)h->alloc_waits,
		(unsigned long long)h->blocked_waits,
		(unsigned long long)h->swap_errors);
	fprintf(out,
		"      sharing: %.1f MB saved, %.1f MB in %llu shared frames, %llu COW breaks, %llu pages scanned, table %.1f MB, %llu mappings added\n",
		pages_mb(h->share_saved_pages), pages_mb(h->share_frames),
		(unsigned long long)h->share_frames,
		(unsigned long long)h->cow_breaks,
		(unsigned long long)h->share_scanned_pages,
		(double)h->share_table_bytes / (1 << 20),
		(unsigned long long)h->share_vmas);
	fprintf(out,
		"      large pages: %.1f MB backed by 2 MiB pages now, %llu made, %llu broken up\n",
		pages_mb(h->lpage_pages),
		(unsigned long long)h->lpage_collapses,
		(unsigned long long)h->lpage_breaks);
	fprintf(out,
		"      scheduler: %llu balances, of them before the period's end %llu for a new state, %llu asked (shares, reservation, limit), %llu for a demand cap outgrown\n",
		(unsigned long long)h->balances,
		(unsigned long long)h->balances_state,
		(unsigned long long)h->balances_asked,
		(unsigned long long)h->balances_early);
	for (size_t i = 0; i < r->sc->nvms; i++) {
		const struct vm_result *v = &r->vms[i];

		if (v->guest.integrity_errors)
			fprintf(out, "INTEGRITY ERROR in VM %s: %s\n",
				v->vm->name,
				v->guest.first_error[0] ? v->guest.first_error :
							  "(no description)");
		else if (v->verify_err)
			fprintf(out,
				"VM %s: the final verification could not run: %s\n",
				v->vm->name, strerror(-v->verify_err));
		else if (!v->verified)
			fprintf(out,
				"VM %s: not verified to the end (interrupted)\n",
				v->vm->name);
	}
	if (r->integrity_errors || r->verify_failures)
		fprintf(out, "FAILED: %llu integrity errors%s\n",
			(unsigned long long)r->integrity_errors,
			r->verify_failures ? ", and not every VM was verified" :
					     "");
	else if (r->unverified)
		fprintf(out,
			"INTERRUPTED: %u of %zu VMs not verified to the end; every page read back so far matched\n",
			r->unverified, r->sc->nvms);
	else if (r->interrupted)
		fprintf(out,
			"INTERRUPTED: the run was cut short, but every page read back as written\n");
	else
		fprintf(out, "OK: every page read back as written\n");
}

/* Remembers any failed insertion, so that a report is never silently
 * missing a key. */
struct builder {
	bool failed;
};

static void num(struct builder *b, cJSON *obj, const char *key, double v)
{
	if (!cJSON_AddNumberToObject(obj, key, v))
		b->failed = true;
}

static void str(struct builder *b, cJSON *obj, const char *key, const char *v)
{
	if (!cJSON_AddStringToObject(obj, key, v))
		b->failed = true;
}

static cJSON *child(struct builder *b, cJSON *obj, const char *key)
{
	cJSON *c = cJSON_AddObjectToObject(obj, key);

	if (!c)
		b->failed = true;
	return c;
}

static void add_host(struct builder *b, cJSON *root, const struct run_result *r)
{
	const struct mv_host_stats *h = &r->host;
	cJSON *o = child(b, root, "host");

	num(b, o, "memsize_mb", round1(pages_mb(h->memsize_pages)));
	num(b, o, "consumed_mb", round1(pages_mb(h->consumed_pages)));
	num(b, o, "free_mb", round1(pages_mb(h->free_pages)));
	num(b, o, "minfree_mb", round1(pages_mb(h->minfree_pages)));
	str(b, o, "state", mv_mem_state_name(h->state));
	num(b, o, "alloc_waits", (double)h->alloc_waits);
	num(b, o, "reclaimed_mb", round1(pages_mb(h->reclaim_pages)));
	num(b, o, "blocked_waits", (double)h->blocked_waits);
	num(b, o, "swap_errors", (double)h->swap_errors);
	num(b, o, "lost_pages", (double)h->lost_pages);
	num(b, o, "move_miscounts", (double)h->move_miscounts);
	num(b, o, "reclaim_flushes", (double)h->reclaim_flushes);
	num(b, o, "reclaim_moved_mb", round1(pages_mb(h->reclaim_moved_pages)));
	num(b, o, "shrdsvd_mb", round1(pages_mb(h->share_saved_pages)));
	num(b, o, "share_frames_mb", round1(pages_mb(h->share_frames)));
	num(b, o, "share_refs", (double)h->share_refs);
	num(b, o, "share_hints", (double)h->share_hints);
	num(b, o, "share_table_mb",
	    round1((double)h->share_table_bytes / (1 << 20)));
	num(b, o, "share_collisions", (double)h->share_collisions);
	num(b, o, "share_vmas", (double)h->share_vmas);
	num(b, o, "cow_breaks", (double)h->cow_breaks);
	num(b, o, "share_maps_full", (double)h->share_maps_full);
	num(b, o, "share_kept_in_place", (double)h->share_kept_in_place);
	num(b, o, "share_lazy_fills", (double)h->share_lazy_fills);
	num(b, o, "share_errors", (double)h->share_errors);
	num(b, o, "unreadable_pages", (double)h->unreadable_pages);
	num(b, o, "overrun_max_mb", round1(pages_mb(h->overrun_max_pages)));
	num(b, o, "overrun_grants", (double)h->overrun_grants);
	num(b, o, "admit_overruns", (double)h->admit_overruns);
	num(b, o, "stall_overrun_grants", (double)h->stall_overrun_grants);
	num(b, o, "parked_pages", (double)h->parked_pages);
	num(b, o, "lpage_mb", round1(pages_mb(h->lpage_pages)));
	num(b, o, "lpage_collapses", (double)h->lpage_collapses);
	num(b, o, "lpage_breaks", (double)h->lpage_breaks);
	num(b, o, "balances", (double)h->balances);
	num(b, o, "balances_state", (double)h->balances_state);
	num(b, o, "balances_asked", (double)h->balances_asked);
	num(b, o, "balances_early", (double)h->balances_early);
	str(b, o, "swapdir", r->swapdir);
}

static void add_vm(struct builder *b, cJSON *arr, const struct vm_result *v)
{
	cJSON *o = cJSON_CreateObject(), *pmap;
	char cpus[256];

	if (!o || !cJSON_AddItemToArray(arr, o)) {
		cJSON_Delete(o);
		b->failed = true;
		return;
	}
	str(b, o, "name", v->vm->name);
	str(b, o, "workload", mvg_kind_name(v->vm->workload));
	if (v->vm->vmm_qemu || v->vm->vmm_process)
		str(b, o, "vmm", v->vm->vmm_qemu ? "qemu" : "process");
	if (v->console_path)
		str(b, o, "console_path", v->console_path);
	num(b, o, "threads", v->vm->threads);
	/* the CPUs it was pinned to, "0-3,6"; "": not pinned */
	scenario_cpus_format(&v->vm->cpus, cpus, sizeof(cpus));
	str(b, o, "cpus", v->vm->ncpus ? cpus : "");
	num(b, o, "memsz_mb", round1(pages_mb(v->st.memsz_pages)));
	num(b, o, "consumed_mb", round1(pages_mb(v->st.consumed_pages)));
	num(b, o, "shares", (double)v->st.shares);
	num(b, o, "reservation_mb", round1(pages_mb(v->st.reservation_pages)));
	num(b, o, "limit_mb", round1(pages_mb(v->st.limit_pages)));
	num(b, o, "sztgt_mb", round1(pages_mb(v->st.sztgt_pages)));
	num(b, o, "tchd_mb", round1(pages_mb(v->st.active_pages)));
	num(b, o, "actv_pct", round1(v->st.active_permille / 10.0));
	num(b, o, "touched_mb", round1(pages_mb(v->st.touched_pages)));
	num(b, o, "swtgt_mb", round1(pages_mb(v->st.swtgt_pages)));
	num(b, o, "swcur_mb", round1(pages_mb(v->st.swcur_pages)));
	num(b, o, "swr_s", round1(v->swr_mb_s));
	num(b, o, "sww_s", round1(v->sww_mb_s));
	num(b, o, "cacheusd_mb",
	    round1((double)v->st.zip_used_bytes / (1 << 20)));
	num(b, o, "cachesz_mb",
	    round1((double)v->st.zip_max_bytes / (1 << 20)));
	num(b, o, "zipsaved_mb",
	    round1((double)v->st.zip_saved_bytes / (1 << 20)));
	num(b, o, "zip_s", round1(v->zip_mb_s));
	num(b, o, "unzip_s", round1(v->unzip_mb_s));
	num(b, o, "zip_mb", round1(pages_mb(v->st.zip_pages)));
	num(b, o, "unzip_mb", round1(pages_mb(v->st.unzip_pages)));
	num(b, o, "zip_evict_mb", round1(pages_mb(v->st.zip_evict_pages)));
	num(b, o, "zip_incompressible", (double)v->st.zip_incompressible);
	num(b, o, "zip_fast_mb", round1(pages_mb(v->st.zip_fast_pages)));
	num(b, o, "zip_accel", (double)v->st.zip_accel);
	num(b, o, "shrd_mb", round1(pages_mb(v->st.shrd_pages)));
	num(b, o, "zero_mb", round1(pages_mb(v->st.zero_pages)));
	num(b, o, "shrdsvd_mb", round1(pages_mb(v->st.shrdsvd_pages)));
	num(b, o, "lpage_mb", round1(pages_mb(v->st.lpage_pages)));
	num(b, o, "lpage_collapses", (double)v->st.lpage_collapses);
	num(b, o, "lpage_breaks", (double)v->st.lpage_breaks);
	num(b, o, "zero_maps", (double)v->st.zero_maps);
	num(b, o, "zero_writes", (double)v->st.zero_writes);
	num(b, o, "zero_around_pages", (double)v->st.zero_around_pages);
	num(b, o, "zero_opens", (double)v->st.zero_opens);
	num(b, o, "zero_open_writes", (double)v->st.zero_open_writes);
	num(b, o, "zero_closes", (double)v->st.zero_closes);
	num(b, o, "zero_open_pages", (double)v->st.zero_open_pages);
	num(b, o, "zero_open_errors", (double)v->st.zero_open_errors);
	num(b, o, "swap_write_errors", (double)v->st.swap_write_errors);
	num(b, o, "unreadable_pages", (double)v->st.unreadable_pages);
	num(b, o, "parked_total", (double)v->st.parked_total);
	num(b, o, "cow_s", round1(v->cow_s));
	num(b, o, "share_scan_s", round1(v->scan_s));
	num(b, o, "mctlsz_mb", round1(pages_mb(v->st.mctlsz_pages)));
	num(b, o, "mctltgt_mb", round1(pages_mb(v->st.mctltgt_pages)));
	num(b, o, "mctlmax_mb", round1(pages_mb(v->st.mctlmax_pages)));
	if (!cJSON_AddBoolToObject(o, "balloon_driver", v->st.balloon_driver))
		b->failed = true;
	num(b, o, "balloon_violations", (double)v->st.balloon_violations);
	num(b, o, "balloon_errors", (double)v->st.balloon_errors);
	num(b, o, "swapin_mb", round1(pages_mb(v->st.swapin_pages)));
	num(b, o, "swapout_mb", round1(pages_mb(v->st.swapout_pages)));
	num(b, o, "swapin_runs", (double)v->st.swapin_runs);
	num(b, o, "swapin_ra_hits", (double)v->st.swapin_ra_hits);
	num(b, o, "swapin_ra_misses", (double)v->st.swapin_ra_misses);
	num(b, o, "swapin_window", (double)v->st.swapin_window);
	num(b, o, "service_cpus", (double)v->st.service_cpus);
	num(b, o, "service_moves", (double)v->st.service_moves);
	num(b, o, "service_affinity_errors",
	    (double)v->st.service_affinity_errors);
	num(b, o, "ops", (double)v->ops);
	num(b, o, "ops_s", round1(v->ops_s));
	num(b, o, "integrity_errors", (double)v->guest.integrity_errors);
	num(b, o, "pages_verified", (double)v->guest.pages_verified);
	if (!cJSON_AddBoolToObject(o, "verified", v->verified))
		b->failed = true;
	if (v->guest.first_error[0])
		str(b, o, "first_error", v->guest.first_error);
	if (v->verify_err)
		str(b, o, "verify_error", strerror(-v->verify_err));
	num(b, o, "faults", (double)v->st.faults);
	num(b, o, "faults_spurious", (double)v->st.faults_spurious);
	num(b, o, "fault_errors", (double)v->st.fault_errors);
	num(b, o, "alloc_waits", (double)v->st.alloc_waits);
	num(b, o, "blocked_waits", (double)v->st.blocked_waits);
	num(b, o, "image_mb", round1(pages_mb(v->st.image_pages)));
	num(b, o, "swap_errors", (double)v->st.swap_errors);
	pmap = child(b, o, "pmap_mb");
	for (int s = 0; s < MV_PAGE_NSTATES; s++)
		num(b, pmap, mv_page_state_name(s),
		    round1(pages_mb(v->st.state_pages[s])));
}

/* The report as text (cJSON_free() it), NULL when out of memory. */
static char *json_text(const struct run_result *r)
{
	struct builder b = { .failed = false };
	cJSON *root = cJSON_CreateObject(), *vms;
	char *text = NULL;

	if (!root)
		return NULL;
	str(&b, root, "scenario",
	    r->sc ? r->sc->source :
		    (r->scenario_name ? r->scenario_name :
					SCENARIO_DEFAULT_NAME));
	num(&b, root, "exit_status", r->exit_status);
	if (r->error && r->error[0])
		str(&b, root, "error", r->error);
	if (r->interrupted) {
		if (!cJSON_AddTrueToObject(root, "interrupted"))
			b.failed = true;
		if (r->interrupted_during)
			str(&b, root, "interrupted_during",
			    r->interrupted_during);
		if (r->signal) {
			const char *abbrev = sigabbrev_np(r->signal);
			char name[24];

			snprintf(name, sizeof(name), "SIG%s",
				 abbrev ? abbrev : "?");
			str(&b, root, "signal", name);
		}
	}
	if (r->have_stats && r->sc) {
		num(&b, root, "duration_s", round1(r->duration_s));
		add_host(&b, root, r);
		vms = cJSON_AddArrayToObject(root, "vms");
		if (!vms)
			b.failed = true;
		for (size_t i = 0; vms && i < r->sc->nvms; i++)
			add_vm(&b, vms, &r->vms[i]);
		num(&b, root, "integrity_errors", (double)r->integrity_errors);
		num(&b, root, "unverified_vms", r->unverified);
		if (r->series && series_to_json(r->series, root))
			b.failed = true;
	}
	if (!b.failed)
		text = cJSON_Print(root);
	cJSON_Delete(root);
	return text;
}

int report_write_json(const struct report_target *t, const struct run_result *r,
		      char *err, size_t errlen)
{
	char *text = json_text(r), *full = NULL;
	int fd, ret;

	if (!text || asprintf(&full, "%s\n", text) < 0) {
		cJSON_free(text);
		snprintf(err, errlen,
			 "cannot build the JSON report: out of memory");
		return -ENOMEM;
	}
	cJSON_free(text);
	if (!t->path) {
		ret = fputs(full, stdout) == EOF || fflush(stdout) ? -errno : 0;
	} else if (t->in_place) {
		fd = open(t->path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
		ret = fd < 0 ? -errno : file_write_all(fd, full, strlen(full));
		if (fd >= 0 && close(fd) && !ret)
			ret = -errno;
	} else {
		ret = file_replace(t->dir, t->path, ".memvisor-report", t->mode,
				   full, strlen(full));
	}
	if (ret)
		snprintf(err, errlen, "cannot write the JSON report %s: %s%s",
			 t->path ? t->path : "to standard output",
			 strerror(-ret),
			 t->path && !t->in_place ?
				 " (any earlier report there is unchanged)" :
				 "");
	free(full);
	return ret;
}

void report_json_target_free(struct report_target *t)
{
	free(t->path);
	free(t->dir);
	memset(t, 0, sizeof(*t));
}

/* Whether a new file can be made in dir: made and removed at once. */
static int probe_dir(const char *dir)
{
	char *tmp;
	int fd, ret = 0;

	if (asprintf(&tmp, "%s/.memvisor-report-XXXXXX", dir) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
	} else {
		close(fd);
		unlink(tmp);
	}
	free(tmp);
	return ret;
}

int report_json_prepare(const char *arg, struct report_target *t, char *err,
			size_t errlen)
{
	struct stat st;
	mode_t mask;
	char *slash;
	int ret;

	memset(t, 0, sizeof(*t));
	if (!strcmp(arg, "-"))
		return 0;
	/* a link is followed, so that its target is what gets replaced */
	t->path = realpath(arg, NULL);
	if (!t->path && errno == ENOENT && lstat(arg, &st))
		t->path = strdup(arg);
	if (!t->path) {
		ret = errno == ENOENT ? -ENOENT : -errno;
		snprintf(err, errlen, "--json %s: %s%s", arg, strerror(-ret),
			 ret == -ENOENT ? " (a link to a missing file)" : "");
		goto fail;
	}
	mask = umask(0);
	umask(mask);
	t->mode = 0666 & ~mask;
	if (!stat(t->path, &st)) {
		if (S_ISDIR(st.st_mode)) {
			ret = -EISDIR;
			snprintf(
				err, errlen,
				"--json %s: is a directory (expected a file name)",
				arg);
			goto fail;
		}
		t->in_place = !S_ISREG(st.st_mode);
		t->mode = st.st_mode & 07777;
	}
	slash = strrchr(t->path, '/');
	t->dir = !slash		  ? strdup(".") :
		 slash == t->path ? strdup("/") :
				    strndup(t->path, (size_t)(slash - t->path));
	if (!t->dir) {
		ret = -ENOMEM;
		snprintf(err, errlen, "--json %s: out of memory", arg);
		goto fail;
	}
	ret = t->in_place ? 0 : probe_dir(t->dir);
	if (ret) {
		snprintf(err, errlen,
			 "--json %s: cannot create a file in %s: %s", arg,
			 t->dir, strerror(-ret));
		goto fail;
	}
	return 0;
fail:
	report_json_target_free(t);
	return ret;
}
