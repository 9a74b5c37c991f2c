// SPDX-License-Identifier: MIT
/*
 * live_view.c - the text of the live screen, from a snapshot: host lines in
 * the manner of esxtop's memory panel, then a row per VM, sorted.
 *
 * Design: pure functions of (snapshot, view, screen size), so the screen's
 * content can be tested without a terminal; live.c only copies the lines
 * onto it.  Sizes are MiB shown as MB with one decimal and rates MB per
 * second, as esxtop shows them; OPS/s is guest operations per second.
 * Column widths are fixed, so a row and the header always line up; lines
 * are cut at the screen's width rather than wrapped, except the title,
 * which shortens the scenario's name (keeping its end) before it cuts.
 *
 * Invariants: every line is NUL-terminated and at most width characters;
 * never more than height lines; a VM left out for lack of rows is counted
 * on the last line, never silently dropped.
 *
 * Lock ordering: none; callers pass their own copy of the snapshot.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"

/* The VM table: name, then numbers right-aligned in these widths. */
#define NAME_W 12
enum col {
	COL_MEMSZ,
	COL_GRANT,
	COL_SZTGT,
	COL_TCHD,
	COL_ACTV,
	COL_SHRD,
	COL_ZERO,
	COL_SHRDSVD,
	COL_LPAGE,
	COL_MCTLSZ,
	COL_MCTLTGT,
	COL_SWCUR,
	COL_SWTGT,
	COL_SWR,
	COL_SWW,
	COL_CACHEUSD,
	COL_ZIP,
	COL_UNZIP,
	COL_OPS,
	NCOLS
};

static const struct {
	const char *name;
	int width;
	int decimals;
} cols[NCOLS] = {
	[COL_MEMSZ] = { "MEMSZ", 8, 1 },
	[COL_GRANT] = { "GRANT", 8, 1 },
	[COL_SZTGT] = { "SZTGT", 8, 1 },
	[COL_TCHD] = { "TCHD", 8, 1 },
	[COL_ACTV] = { "%ACTV", 6, 0 },
	[COL_SHRD] = { "SHRD", 8, 1 },
	[COL_ZERO] = { "ZERO", 8, 1 },
	[COL_SHRDSVD] = { "SHRDSVD", 8, 1 },
	[COL_LPAGE] = { "LPAGE", 8, 1 },
	[COL_MCTLSZ] = { "MCTLSZ", 8, 1 },
	[COL_MCTLTGT] = { "MCTLTGT", 8, 1 },
	[COL_SWCUR] = { "SWCUR", 8, 1 },
	[COL_SWTGT] = { "SWTGT", 8, 1 },
	[COL_SWR] = { "SWR/s", 7, 1 },
	[COL_SWW] = { "SWW/s", 7, 1 },
	[COL_CACHEUSD] = { "CACHEUSD", 9, 1 },
	[COL_ZIP] = { "ZIP/s", 7, 1 },
	[COL_UNZIP] = { "UNZIP/s", 8, 1 },
	[COL_OPS] = { "OPS/s", 10, 0 },
};

static const struct {
	char key;
	const char *name;
} sorts[LIVE_NSORTS] = {
	[LIVE_SORT_MEMSZ] = { 'M', "MEMSZ" },
	[LIVE_SORT_GRANT] = { 'G', "GRANT" },
	[LIVE_SORT_TCHD] = { 'T', "TCHD" },
	[LIVE_SORT_SWCUR] = { 'S', "SWCUR" },
	[LIVE_SORT_MCTLSZ] = { 'B', "MCTLSZ" },
	[LIVE_SORT_CACHEUSD] = { 'C', "CACHEUSD" },
	[LIVE_SORT_OPS] = { 'O', "OPS/s" },
	[LIVE_SORT_NAME] = { 'N', "NAME" },
};

int live_sort_for_key(int ch)
{
	if (ch >= 'a' && ch <= 'z')
		ch -= 'a' - 'A';
	for (int i = 0; i < LIVE_NSORTS; i++)
		if (sorts[i].key == ch)
			return i;
	return -1;
}

const char *live_sort_name(enum live_sort sort)
{
	return (unsigned)sort < LIVE_NSORTS ? sorts[sort].name : "?";
}

/* The value a VM is sorted by (not for LIVE_SORT_NAME). */
static double sort_value(const struct snap_vm *v, enum live_sort sort)
{
	switch (sort) {
	case LIVE_SORT_MEMSZ:
		return (double)v->st.memsz_pages;
	case LIVE_SORT_GRANT:
		return (double)snap_grant_pages(&v->st);
	case LIVE_SORT_TCHD:
		return (double)v->st.active_pages;
	case LIVE_SORT_SWCUR:
		return (double)v->st.swcur_pages;
	case LIVE_SORT_MCTLSZ:
		return (double)v->st.mctlsz_pages;
	case LIVE_SORT_CACHEUSD:
		return (double)v->st.zip_used_bytes;
	case LIVE_SORT_OPS:
		return v->ops_s;
	default:
		return 0;
	}
}

/* qsort has no argument for the comparison: the order is sorted through
 * an array of these. */
struct keyed {
	const struct snap_vm *vm;
	size_t index;
	double value;
	enum live_sort sort;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c;

	if (x->sort != LIVE_SORT_NAME && x->value != y->value)
		return x->value > y->value ? -1 : 1;
	c = strcmp(x->vm->name, y->vm->name);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

void live_order(const struct snap *s, enum live_sort sort, size_t *order)
{
	struct keyed *k = calloc(s->nvms ? s->nvms : 1, sizeof(*k));

	if (!k) {
		/* out of memory: the scenario's order, still every VM */
		for (size_t i = 0; i < s->nvms; i++)
			order[i] = i;
		return;
	}
	for (size_t i = 0; i < s->nvms; i++) {
		k[i].vm = &s->vms[i];
		k[i].index = i;
		k[i].value = sort_value(&s->vms[i], sort);
		k[i].sort = sort;
	}
	qsort(k, s->nvms, sizeof(*k), cmp_keyed);
	for (size_t i = 0; i < s->nvms; i++)
		order[i] = k[i].index;
	free(k);
}

/* Appends to a line, cut at width. */
struct out {
	struct live_line *line;
	int width;
	size_t len;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o,
						      const char *fmt, ...)
{
	size_t room = (size_t)o->width + 1 - o->len;
	va_list ap;
	int n;

	if (o->len >= (size_t)o->width)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->line->text + o->len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	o->len += (size_t)n < room ? (size_t)n : room - 1;
}

static struct out begin(struct live_line *line, enum live_attr attr, int width)
{
	struct out o = { line, width, 0 };

	line->attr = attr;
	line->text[0] = '\0';
	return o;
}

static void vm_row(struct out *o, const struct snap_vm *v)
{
	const struct mv_vm_stats *st = &v->st;
	double val[NCOLS] = {
		[COL_MEMSZ] = snap_mb(st->memsz_pages),
		[COL_GRANT] = snap_mb(snap_grant_pages(st)),
		[COL_SZTGT] = snap_mb(st->sztgt_pages),
		[COL_TCHD] = snap_mb(st->active_pages),
		[COL_ACTV] = st->active_permille / 10.0,
		[COL_SHRD] = snap_mb(st->shrd_pages),
		[COL_ZERO] = snap_mb(st->zero_pages),
		[COL_SHRDSVD] = snap_mb(st->shrdsvd_pages),
		[COL_LPAGE] = snap_mb(st->lpage_pages),
		[COL_MCTLSZ] = snap_mb(st->mctlsz_pages),
		[COL_MCTLTGT] = snap_mb(st->mctltgt_pages),
		[COL_SWCUR] = snap_mb(st->swcur_pages),
		[COL_SWTGT] = snap_mb(st->swtgt_pages),
		[COL_SWR] = v->swr_mb_s,
		[COL_SWW] = v->sww_mb_s,
		[COL_CACHEUSD] = (double)st->zip_used_bytes / (1 << 20),
		[COL_ZIP] = v->zip_mb_s,
		[COL_UNZIP] = v->unzip_mb_s,
		[COL_OPS] = v->ops_s,
	};

	put(o, "%-*.*s", NAME_W, NAME_W, v->name);
	for (int c = 0; c < NCOLS; c++)
		put(o, " %*.*f", cols[c].width, cols[c].decimals, val[c]);
}

static void header_row(struct out *o)
{
	put(o, "%-*s", NAME_W, "NAME");
	for (int c = 0; c < NCOLS; c++)
		put(o, " %*s", cols[c].width, cols[c].name);
}

static void help_line(struct out *o)
{
	put(o, "sort:");
	for (int i = 0; i < LIVE_NSORTS; i++)
		put(o, " %c %s", sorts[i].key, sorts[i].name);
	put(o, " | h/? help | q end the run (every page is still verified)");
}

/*
 * The title: "memvisor", whose view it is (top's "top ADDR:PORT"), the
 * scenario's name, then the time, the VMs and the sort.  The name is
 * shown whole when the line has room for it; otherwise its end, which
 * names the file, behind "..." (from a '/' when the part kept has one, and
 * never from the middle of a UTF-8 character), so that the rest of the
 * title stays on the screen.  A screen too narrow even for that keeps
 * TITLE_MIN_NAME bytes of the name's end and cuts the line's end instead.
 */
#define TITLE_MIN_NAME 24
static void title_line(struct out *o, const struct snap *s,
		       const struct live_view *v)
{
	static const char dots[] = "...";
	char head[sizeof(s->origin) + 16], tail[128];
	const char *name = s->scenario, *cut = "", *slash;
	size_t len = strlen(name), fixed, keep;

	snprintf(head, sizeof(head), "memvisor %s%s", s->origin,
		 s->origin[0] ? " " : "");
	snprintf(tail, sizeof(tail),
		 "  %.0f of %u s  %zu VM%s  sort %s  (h help, q quit)", s->t_s,
		 s->duration_s, s->nvms, s->nvms == 1 ? "" : "s",
		 live_sort_name(v->sort));
	fixed = strlen(head) + strlen(tail);
	if (fixed + len > (size_t)o->width) {
		keep = (size_t)o->width >
				       fixed + strlen(dots) + TITLE_MIN_NAME ?
			       (size_t)o->width - fixed - strlen(dots) :
			       TITLE_MIN_NAME;
		if (keep < len) {
			name += len - keep;
			slash = strchr(name, '/');
			if (slash)
				name = slash;
			while ((*name & 0xc0) == 0x80)
				name++;
			cut = dots;
		}
	}
	put(o, "%s%s%s%s", head, cut, name, tail);
}

size_t live_render(const struct snap *s, const struct live_view *v, int width,
		   int height, struct live_line *lines)
{
	const struct mv_host_stats *h = &s->host;
	struct snap_totals t;
	size_t n = 0, *order, rows, shown;
	struct out o;

	if (width > LIVE_MAX_COLS)
		width = LIVE_MAX_COLS;
	if (width < 1 || height < 1)
		return 0;
	snap_totals(s, &t);

#define LINE(attr)               \
	if (n >= (size_t)height) \
		return n;        \
	o = begin(&lines[n++], (attr), width)

	LINE(LIVE_TITLE);
	title_line(&o, s, v);
	LINE(LIVE_TEXT);
	put(&o, "PMEM  /MB: %9.1f total, %9.1f consumed, %9.1f free",
	    snap_mb(h->memsize_pages), snap_mb(h->consumed_pages),
	    snap_mb(h->free_pages));
	LINE(LIVE_TEXT);
	put(&o,
	    "FREE  /MB: %9.1f free,  %9.1f minFree,  %5.0f%% of minFree: %s state",
	    snap_mb(h->free_pages), snap_mb(h->minfree_pages),
	    h->minfree_pages ?
		    100.0 * (double)h->free_pages / (double)h->minfree_pages :
		    0.0,
	    mv_mem_state_name(h->state));
	LINE(LIVE_TEXT);
	put(&o, "PSHARE/MB: %9.1f shared, %9.1f common,   %9.1f saving",
	    snap_mb(h->share_saved_pages + h->share_frames),
	    snap_mb(h->share_frames), snap_mb(h->share_saved_pages));
	LINE(LIVE_TEXT);
	put(&o, "SWAP  /MB: %9.1f curr,   %9.1f rclmtgt,  %9.1f r/s, %6.1f w/s",
	    snap_mb(t.swcur_pages), snap_mb(t.swtgt_pages), t.swr_mb_s,
	    t.sww_mb_s);
	LINE(LIVE_TEXT);
	put(&o, "ZIP   /MB: %9.1f zipped, %9.1f saved,    %9.1f cacheusd",
	    snap_mb(t.zip_cached_pages), (double)t.zip_saved_bytes / (1 << 20),
	    (double)t.zip_used_bytes / (1 << 20));
	LINE(LIVE_TEXT);
	put(&o, "MEMCTL/MB: %9.1f curr,   %9.1f target,   %9.1f max",
	    snap_mb(t.mctlsz_pages), snap_mb(t.mctltgt_pages),
	    snap_mb(t.mctlmax_pages));
	LINE(LIVE_NOTE);
	if (v->help)
		help_line(&o);
	else if (v->msg[0])
		put(&o, "%s", v->msg);
	LINE(LIVE_HEADER);
	header_row(&o);

	rows = (size_t)height - n;
	shown = s->nvms <= rows ? s->nvms : rows ? rows - 1 : 0;
	order = calloc(s->nvms ? s->nvms : 1, sizeof(*order));
	if (!order) {
		LINE(LIVE_NOTE);
		put(&o, "(out of memory: no VM rows)");
		return n;
	}
	live_order(s, v->sort, order);
	for (size_t i = 0; i < shown; i++) {
		LINE(LIVE_TEXT);
		vm_row(&o, &s->vms[order[i]]);
	}
	free(order);
	if (shown < s->nvms) {
		LINE(LIVE_NOTE);
		put(&o, "... %zu more VM%s (a taller window shows them)",
		    s->nvms - shown, s->nvms - shown == 1 ? "" : "s");
	}
#undef LINE
	return n;
}
