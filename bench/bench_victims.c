// SPDX-License-Identifier: MIT
/*
 * bench_victims.c - `memvisor bench victims`: how well reclaim's victim
 * choice keeps the pages a guest uses, on a simulated page-access trace,
 * beside its floor and its peer.
 *
 * Design: the misses a policy causes depend on the trace, not on the
 * machine, so this benchmark replays one trace, in memory and
 * deterministically, through four policies over the same number of
 * resident frames and counts the accesses that miss (a fault that brings
 * a page back and makes a victim of another):
 *   - oracle: knows every page's popularity and keeps the most popular
 *     pages (a min-heap): the floor, as no policy without foresight does
 *     better on a trace of independent draws;
 *   - lru: exact least-recently-used, the order the kernel's LRU lists
 *     approximate with the accessed bits they can read: the peer;
 *   - random: ESX's policy (Mem.ReclaimPolicy 0);
 *   - cold: memvisor's clock (Mem.ReclaimPolicy 1), driven through the
 *     engine's own src/cold.h as reclaim.c drives it: each miss is a fault
 *     (mv__cold_touch), each victim is taken (mv__cold_taken), and the hand
 *     passes resident pages with mv__cold_consider and mv__cold_took.  Like
 *     the engine it sees only faults, never an access to a resident page.
 * The trace is the kvstore workload's (guest/workload.c): a hash table of
 * 16 records a page, 75% full, whose keys are drawn by Zipf rank, each key
 * on a page chosen by a hash, so the hot pages are scattered.  --shift N
 * moves every key to another page each N operations: popularity that
 * changes, which a policy must follow.  A warm-up of as many operations
 * as are measured fills the frames first.
 *
 * Invariants: every policy sees the same trace (one generator per run,
 * seeded alike); a page is resident in at most `frames` frames at any
 * time; the reports are medians of nothing: one run, as the trace is the
 * same every time (the figures change only with the options).
 *
 * Lock ordering: none; one thread.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench.h"
#include "bench_victims.h"
#include "cold.h"

#define KEYS_PER_PAGE 12 /* 16 records a page, 75% full */
#define DEFAULT_PAGES 88474 /* the table of a 384 MiB kvstore VM */
#define DEFAULT_RESIDENT_PCT 63
#define DEFAULT_OPS 10000000ull
#define DEFAULT_ZIPF 0.99
#define MAX_PAGES (1u << 21) /* 8 GiB: 25M keys, 200 MB of trace */
#define MAX_OPS 1000000000ull

enum policy { P_ORACLE, P_LRU, P_RANDOM, P_COLD, NPOLICIES };

static const char *const policy_name[NPOLICIES] = { "oracle", "lru", "random",
						    "cold" };
static const char *const policy_label[NPOLICIES] = {
	"oracle: most popular pages kept (floor)",
	"lru: least recently used out (peer)",
	"random: ESX's (Mem.ReclaimPolicy 0)",
	"cold: memvisor's clock (Mem.ReclaimPolicy 1)",
};

struct opts {
	uint32_t pages;
	unsigned resident_pct;
	uint64_t ops, shift, seed;
	double zipf;
	bool json;
};

/* The trace: Zipf ranks over keys, each key on a page. */
struct trace {
	uint32_t npages, nkeys;
	double *cdf; /* cumulative popularity by rank */
	uint32_t *page; /* page of each key */
	double *pop; /* each page's popularity (the oracle's knowledge) */
	uint64_t rng, place_rng;
};

/* One policy's state over the trace's pages. */
struct sim {
	enum policy p;
	uint32_t npages, frames, nres;
	uint8_t *res;
	uint32_t *slot, *list; /* random: resident pages, unordered */
	uint32_t *prev, *next, head, tail; /* lru: most recent first */
	uint32_t *heap, *hpos; /* oracle: resident pages, least popular top */
	const double *pop;
	struct mv__cold c;
	uint64_t since;
	uint64_t rng;
};

#define NIL UINT32_MAX

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
	return (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Puts every key on a page (again, for a shift) and sums the pages'
 * popularity. */
static void place_keys(struct trace *t)
{
	double prev = 0;

	memset(t->pop, 0, t->npages * sizeof(*t->pop));
	for (uint32_t k = 0; k < t->nkeys; k++) {
		t->page[k] = (uint32_t)(splitmix(&t->place_rng) % t->npages);
		t->pop[t->page[k]] += t->cdf[k] - prev;
		prev = t->cdf[k];
	}
}

static int trace_init(struct trace *t, const struct opts *o)
{
	double z = 0;

	memset(t, 0, sizeof(*t));
	t->npages = o->pages;
	t->nkeys = o->pages * KEYS_PER_PAGE;
	t->cdf = malloc(t->nkeys * sizeof(*t->cdf));
	t->page = malloc(t->nkeys * sizeof(*t->page));
	t->pop = malloc(t->npages * sizeof(*t->pop));
	if (!t->cdf || !t->page || !t->pop)
		return -ENOMEM;
	for (uint32_t k = 0; k < t->nkeys; k++) {
		z += pow((double)k + 1, -o->zipf);
		t->cdf[k] = z;
	}
	for (uint32_t k = 0; k < t->nkeys; k++)
		t->cdf[k] /= z;
	t->rng = o->seed;
	t->place_rng = o->seed ^ 0x5eed;
	place_keys(t);
	return 0;
}

static void trace_fini(struct trace *t)
{
	free(t->cdf);
	free(t->page);
	free(t->pop);
}

/* The page the next operation touches. */
static uint32_t trace_next(struct trace *t)
{
	double u = unit(&t->rng);
	uint32_t lo = 0, hi = t->nkeys - 1, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (t->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return t->page[lo];
}

/* --- the oracle's heap: resident pages, least popular on top --- */

static bool heap_less(const struct sim *s, uint32_t a, uint32_t b)
{
	return s->pop[s->heap[a]] < s->pop[s->heap[b]];
}

static void heap_swap(struct sim *s, uint32_t a, uint32_t b)
{
	uint32_t pa = s->heap[a];

	s->heap[a] = s->heap[b];
	s->heap[b] = pa;
	s->hpos[s->heap[a]] = a;
	s->hpos[s->heap[b]] = b;
}

static void heap_fix(struct sim *s, uint32_t i)
{
	uint32_t l, m;

	while (i && heap_less(s, i, (i - 1) / 2)) {
		heap_swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		l = 2 * i + 1;
		m = i;
		if (l < s->nres && heap_less(s, l, m))
			m = l;
		if (l + 1 < s->nres && heap_less(s, l + 1, m))
			m = l + 1;
		if (m == i)
			return;
		heap_swap(s, i, m);
		i = m;
	}
}

/* After a shift every page's popularity changed: order the heap anew. */
static void heap_rebuild(struct sim *s)
{
	if (s->p != P_ORACLE)
		return;
	for (uint32_t i = s->nres / 2 + 1; i-- > 0;)
		heap_fix(s, i);
}

/* --- the policies --- */

static int sim_init(struct sim *s, enum policy p, const struct trace *t,
		    uint32_t frames, uint64_t seed)
{
	uint32_t n = t->npages;

	memset(s, 0, sizeof(*s));
	s->p = p;
	s->npages = n;
	s->frames = frames;
	s->pop = t->pop;
	s->rng = seed ^ 0xc01d;
	s->head = s->tail = NIL;
	s->res = calloc(n, 1);
	s->slot = malloc(n * sizeof(*s->slot));
	s->list = malloc(n * sizeof(*s->list));
	s->prev = malloc(n * sizeof(*s->prev));
	s->next = malloc(n * sizeof(*s->next));
	s->heap = malloc(n * sizeof(*s->heap));
	s->hpos = malloc(n * sizeof(*s->hpos));
	s->c.heat = calloc(n, sizeof(*s->c.heat));
	s->c.stamp = calloc(n, sizeof(*s->c.stamp));
	if (!s->res || !s->slot || !s->list || !s->prev || !s->next ||
	    !s->heap || !s->hpos || !s->c.heat || !s->c.stamp)
		return -ENOMEM;
	return 0;
}

static void sim_fini(struct sim *s)
{
	free(s->res);
	free(s->slot);
	free(s->list);
	free(s->prev);
	free(s->next);
	free(s->heap);
	free(s->hpos);
	free((void *)s->c.heat);
	free((void *)s->c.stamp);
}

static void lru_unlink(struct sim *s, uint32_t p)
{
	if (s->prev[p] != NIL)
		s->next[s->prev[p]] = s->next[p];
	else
		s->head = s->next[p];
	if (s->next[p] != NIL)
		s->prev[s->next[p]] = s->prev[p];
	else
		s->tail = s->prev[p];
}

static void lru_front(struct sim *s, uint32_t p)
{
	s->prev[p] = NIL;
	s->next[p] = s->head;
	if (s->head != NIL)
		s->prev[s->head] = p;
	s->head = p;
	if (s->tail == NIL)
		s->tail = p;
}

/* memvisor's clock over the resident pages, as reclaim.c's pick_cold. */
static uint32_t cold_victim(struct sim *s)
{
	uint64_t ppn;

	for (;;) {
		ppn = mv__cold_advance(&s->c, s->npages);
		if (!s->res[ppn] || !mv__cold_consider(&s->c, ppn, &s->since))
			continue;
		mv__cold_took(&s->c, &s->since);
		return (uint32_t)ppn;
	}
}

/* Frees a frame: the policy's victim leaves. */
static void evict(struct sim *s)
{
	uint32_t v, last;

	switch (s->p) {
	case P_ORACLE:
		v = s->heap[0];
		heap_swap(s, 0, s->nres - 1);
		s->nres--;
		heap_fix(s, 0);
		break;
	case P_LRU:
		v = s->tail;
		lru_unlink(s, v);
		s->nres--;
		break;
	case P_RANDOM:
		v = s->list[splitmix(&s->rng) % s->nres];
		last = s->list[--s->nres];
		s->list[s->slot[v]] = last;
		s->slot[last] = s->slot[v];
		break;
	default:
		v = cold_victim(s);
		mv__cold_taken(&s->c, v);
		s->nres--;
		break;
	}
	s->res[v] = 0;
}

/* The guest touches page p: true if it missed. */
static bool access_page(struct sim *s, uint32_t p)
{
	if (s->res[p]) {
		if (s->p == P_LRU) {
			lru_unlink(s, p);
			lru_front(s, p);
		}
		return false;
	}
	if (s->nres == s->frames)
		evict(s);
	s->res[p] = 1;
	switch (s->p) {
	case P_ORACLE:
		s->heap[s->nres] = p;
		s->hpos[p] = s->nres++;
		heap_fix(s, s->nres - 1);
		break;
	case P_LRU:
		lru_front(s, p);
		s->nres++;
		break;
	case P_RANDOM:
		s->slot[p] = s->nres;
		s->list[s->nres++] = p;
		break;
	default:
		mv__cold_touch(&s->c, p, 0);
		s->nres++;
		break;
	}
	return true;
}

/* Misses per operation of policy p over the measured half of the trace. */
static int run_policy(const struct opts *o, enum policy p, double *out)
{
	uint32_t frames =
		(uint32_t)((uint64_t)o->pages * o->resident_pct / 100);
	uint64_t misses = 0, total = 2 * o->ops;
	struct trace t;
	struct sim s;
	int err;

	err = trace_init(&t, o);
	if (err)
		goto out_trace;
	err = sim_init(&s, p, &t, frames, o->seed);
	if (err)
		goto out_sim;
	for (uint64_t i = 0; i < total; i++) {
		if (o->shift && i && i % o->shift == 0) {
			place_keys(&t);
			heap_rebuild(&s);
		}
		if (access_page(&s, trace_next(&t)) && i >= o->ops)
			misses++;
	}
	*out = (double)misses / (double)o->ops;
out_sim:
	sim_fini(&s);
out_trace:
	trace_fini(&t);
	return err;
}

static int desc(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x < y) - (x > y);
}

/* What the oracle must miss on the trace's first placement: the
 * popularity of the pages outside its frames (a check of the
 * simulation, which counts its misses on draws). */
static int oracle_expected(const struct opts *o, double *out)
{
	uint32_t frames =
		(uint32_t)((uint64_t)o->pages * o->resident_pct / 100);
	struct trace t;
	double kept = 0;
	int err = trace_init(&t, o);

	if (!err) {
		qsort(t.pop, t.npages, sizeof(*t.pop), desc);
		for (uint32_t i = 0; i < frames; i++)
			kept += t.pop[i];
		*out = 1 - kept;
	}
	trace_fini(&t);
	return err;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: memvisor bench victims [--pages N] [--resident PCT] [--ops N]\n"
		"                              [--zipf S] [--shift N] [--seed N] [--json]\n"
		"  Reclaim's victim choice on a simulated kvstore trace (Zipf keys in a\n"
		"  hash table): misses per operation of memvisor's cold clock and of\n"
		"  ESX's random policy, beside the oracle (floor) and exact LRU (peer).\n"
		"  --pages N      pages of the VM's table (default %u: a 384 MiB VM)\n"
		"  --resident PCT frames, in percent of the pages (default %u)\n"
		"  --ops N        operations measured, after as many of warm-up\n"
		"                 (default %llu)\n"
		"  --zipf S       the keys' Zipf exponent, 0 (uniform) to 3 (default %.2f)\n"
		"  --shift N      every N operations every key moves to another page\n"
		"                 (default 0: never)\n"
		"  --seed N       the trace's seed (default 1)\n"
		"  --json         one JSON object on stdout instead of the table\n",
		DEFAULT_PAGES, DEFAULT_RESIDENT_PCT,
		(unsigned long long)DEFAULT_OPS, DEFAULT_ZIPF);
}

static int parse_num(const char *arg, const char *name, uint64_t min,
		     uint64_t max, uint64_t *out)
{
	if (bench_parse_u64(arg, min, max, out)) {
		fprintf(stderr,
			"memvisor bench victims: bad %s '%s' (expected a number from %llu to %llu)\n",
			name, arg, (unsigned long long)min,
			(unsigned long long)max);
		return -EINVAL;
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "pages", required_argument, NULL, 'p' },
		{ "resident", required_argument, NULL, 'r' },
		{ "ops", required_argument, NULL, 'o' },
		{ "zipf", required_argument, NULL, 'z' },
		{ "shift", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t v;
	char *end;
	int c;

	*o = (struct opts){ .pages = DEFAULT_PAGES,
			    .resident_pct = DEFAULT_RESIDENT_PCT,
			    .ops = DEFAULT_OPS,
			    .zipf = DEFAULT_ZIPF,
			    .seed = 1 };
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_num(optarg, "--pages", 16, MAX_PAGES, &v))
				return 2;
			o->pages = (uint32_t)v;
			break;
		case 'r':
			if (parse_num(optarg, "--resident", 1, 99, &v))
				return 2;
			o->resident_pct = (unsigned)v;
			break;
		case 'o':
			if (parse_num(optarg, "--ops", 1, MAX_OPS, &o->ops))
				return 2;
			break;
		case 's':
			if (parse_num(optarg, "--shift", 0, 2 * MAX_OPS,
				      &o->shift))
				return 2;
			break;
		case 'S':
			if (parse_num(optarg, "--seed", 0, UINT64_MAX,
				      &o->seed))
				return 2;
			break;
		case 'z':
			errno = 0;
			o->zipf = strtod(optarg, &end);
			if (*end || errno || end == optarg ||
			    !(o->zipf >= 0 && o->zipf <= 3)) {
				fprintf(stderr,
					"memvisor bench victims: bad --zipf '%s' (expected a number from 0 to 3)\n",
					optarg);
				return 2;
			}
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "memvisor bench victims: unexpected '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

static void print_json(const struct opts *o, const double *m, double expect)
{
	cJSON *root = cJSON_CreateObject(), *pol;
	char *text;

	cJSON_AddNumberToObject(root, "pages", o->pages);
	cJSON_AddNumberToObject(root, "resident_pct", o->resident_pct);
	cJSON_AddNumberToObject(root, "ops", (double)o->ops);
	cJSON_AddNumberToObject(root, "zipf", o->zipf);
	cJSON_AddNumberToObject(root, "shift", (double)o->shift);
	cJSON_AddNumberToObject(root, "seed", (double)o->seed);
	pol = cJSON_AddObjectToObject(root, "misses_per_op");
	for (unsigned i = 0; i < NPOLICIES; i++)
		cJSON_AddNumberToObject(pol, policy_name[i], m[i]);
	cJSON_AddNumberToObject(root, "oracle_expected", expect);
	cJSON_AddNumberToObject(root, "cold_vs_oracle",
				m[P_COLD] / m[P_ORACLE]);
	cJSON_AddNumberToObject(root, "cold_vs_lru", m[P_COLD] / m[P_LRU]);
	cJSON_AddNumberToObject(root, "cold_vs_random",
				m[P_COLD] / m[P_RANDOM]);
	text = cJSON_Print(root);
	if (text)
		printf("%s\n", text);
	free(text);
	cJSON_Delete(root);
}

static void print_table(const struct opts *o, const double *m, double expect)
{
	printf("memvisor bench victims: a table of %u pages, %u%% of them resident; Zipf %.2f over %u keys (16 records a page, 75%% full); %llu operations after as many of warm-up%s\n",
	       o->pages, o->resident_pct, o->zipf, o->pages * KEYS_PER_PAGE,
	       (unsigned long long)o->ops,
	       o->shift ? "; every key moves each --shift operations" : "");
	printf("%-46s %10s %10s %10s\n", "policy", "misses/op", "vs floor",
	       "vs peer");
	for (unsigned i = 0; i < NPOLICIES; i++)
		printf("%-46s %10.4f %10.2f %10.2f\n", policy_label[i], m[i],
		       m[i] / m[P_ORACLE], m[i] / m[P_LRU]);
	printf("  floor: the oracle; peer: exact LRU, what the kernel's lists approximate with accessed bits (memvisor sees faults only)\n");
	printf("  the oracle's expected misses/op: %.4f (the popularity outside its frames%s)\n",
	       expect, o->shift ? ", before the first shift" : "");
}

int bench_victims_main(int argc, char **argv)
{
	double m[NPOLICIES], expect;
	struct opts o;
	int ret = parse_opts(argc, argv, &o);

	if (ret)
		return ret == 1 ? 0 : ret;
	for (unsigned i = 0; i < NPOLICIES; i++) {
		ret = run_policy(&o, (enum policy)i, &m[i]);
		if (ret) {
			fprintf(stderr,
				"memvisor bench victims: %s: %s (%u pages)\n",
				policy_name[i], strerror(-ret), o.pages);
			return 1;
		}
	}
	if (m[P_ORACLE] <= 0 || m[P_LRU] <= 0 || m[P_RANDOM] <= 0) {
		fprintf(stderr,
			"memvisor bench victims: no misses to compare (more pages or fewer resident)\n");
		return 1;
	}
	ret = oracle_expected(&o, &expect);
	if (ret) {
		fprintf(stderr, "memvisor bench victims: %s (%u pages)\n",
			strerror(-ret), o.pages);
		return 1;
	}
	if (o.json)
		print_json(&o, m, expect);
	else
		print_table(&o, m, expect);
	return 0;
}
