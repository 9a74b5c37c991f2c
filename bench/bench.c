// SPDX-License-Identifier: MIT
/*
 * bench.c - `memvisor bench`: argument parsing, the machine line, and the
 * report every benchmark fills: each figure beside its floor and the ratio.
 *
 * Design: a benchmark (bench_fault.c, bench_swapin.c) measures its figures
 * and its floors in the same run, interleaved trial by trial so that the
 * noise of these virtual machines lands on both alike, and hands the
 * medians to a report.  This file owns all output, so every benchmark
 * prints the same table and the same JSON: for a row with key K, the keys
 * K_us, K_mbs and, beside a floor, K_floor_us and K_ratio; plus the
 * headline values a benchmark sets itself (fault_us, floor_us, ratio).
 * Figures are per 4 KiB page, so MB/s is 4096 bytes over the time.
 *
 * A wrong engine must not look like a slow one: benchmarks verify what the
 * guest reads and fail loudly, and a watchdog (SIGALRM) names the phase
 * that stopped making progress instead of hanging the caller.
 *
 * Invariants: keys, labels and floor names given to a report are string
 * literals; a report holds at most MAX_ROWS rows, MAX_VALUES values and
 * MAX_NOTES notes (more is a programming error, caught by assert).
 *
 * Lock ordering: none; benchmarks call these helpers from one thread.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_linux.h"
#include "bench_qemu.h"
#include "bench_victims.h"
#include "memvisor.h"

#define MAX_ROWS 32
#define MAX_VALUES 40
#define MAX_NOTES 16
#define NOTE_MAX 400
#define MAX_PAGES (1ull << 22) /* 16 GiB of guest memory per VM */
#define MAX_TRIALS 1000
#define DEFAULT_TRIALS 5
/* Above this load average per CPU other work distorts the figures. */
#define BUSY_LOAD_PER_CPU 0.5
/* A phase that makes no progress for this long is hung, not slow. */
#define WATCH_BASE_S 60
#define WATCH_PAGES_PER_S 100

/* Median and range of one figure's samples, in us per page. */
struct spread {
	double med, min, max;
};

struct row {
	const char *key, *label, *floor_name; /* floor_name NULL: a floor */
	struct spread us, floor_us;
};

struct value {
	const char *key;
	double v;
};

struct bench_report {
	const char *name;
	uint64_t pages;
	unsigned trials;
	struct row rows[MAX_ROWS];
	unsigned nrows;
	struct value values[MAX_VALUES];
	unsigned nvalues;
	char notes[MAX_NOTES][NOTE_MAX];
	unsigned nnotes;
};

struct machine {
	long nproc;
	double load1; /* other work on the machine skews every figure */
	char kernel[65];
	char cpu[128];
};

struct bench {
	const char *name;
	uint64_t default_pages;
	int (*run)(struct bench_report *r, uint64_t pages, unsigned trials,
		   const char *swapdir);
	/* NULL, or says why `bench all` must skip this one (inputs missing) */
	int (*missing)(char *msg, size_t len);
};

static const struct bench benches[] = {
	{ "fault", 16384, bench_fault, NULL },
	{ "swapin", 16384, bench_swapin, NULL },
	{ "balloon", 65536, bench_balloon, NULL },
	{ "zip", 16384, bench_zip, NULL },
	{ "cow", 4096, bench_cow, NULL },
	/* 0 pages: the whole of each guest RAM image */
	{ "share", 0, bench_share, bench_share_missing },
	/* 262144 pages: 1 GiB, far beyond the TLB's reach with 4 KiB pages */
	{ "lpage", 262144, bench_lpage, NULL },
};

#define NBENCHES (sizeof(benches) / sizeof(benches[0]))

/* Written before alarm() is armed, read only by the SIGALRM handler. */
static const char *volatile watch_phase;
/* Undoes what a benchmark changed outside this process (bench_on_abort). */
static void (*volatile abort_hook)(void);
/* The benchmark's swap directory, made by mkdtemp(), removed on any exit. */
static char swapdir[PATH_MAX];

void bench_host_config(struct mv_host_config *hc)
{
	mv_host_config_init(hc);
	hc->settings.sample_period_s = 0;
	hc->settings.share_scan_ghz = 0;
	/* the scheduler would collapse regions resident for two balance
	 * periods: bench lpage turns it back on, on its own terms */
	hc->settings.alloc_guest_large_page = 0;
	/* the benches that swap out pick their victims through
	 * mv_vm_swap_out; the cold clock would first cool every freshly
	 * written (hot) page and then fall back to random picks, work that
	 * is victim choice, not the swap-out or swap-in being measured, and
	 * not what the documented figures ran with */
	hc->settings.reclaim_policy = 0;
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v in place. */
double bench_median(double *v, unsigned n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ull);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* v becomes a random permutation of 0..n-1 (Fisher-Yates). */
void bench_shuffle(uint64_t *v, uint64_t n, uint64_t seed)
{
	uint64_t j, t;

	for (uint64_t i = 0; i < n; i++)
		v[i] = i;
	for (uint64_t i = n; i > 1; i--) {
		j = splitmix(&seed) % i;
		t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* Async-signal-safe; if stderr is gone there is no one left to tell. */
static void say(const char *s)
{
	ssize_t n = write(STDERR_FILENO, s, strlen(s));

	(void)n;
}

static void watch_expired(int sig)
{
	(void)sig;
	if (abort_hook)
		abort_hook();
	/* the swap files in it are unlinked already */
	rmdir(swapdir);
	say("memvisor bench: phase \"");
	say(watch_phase);
	say("\" timed out: a hang in the engine or the kernel; giving up\n");
	_exit(3);
}

/*
 * Arms the watchdog for a phase touching `pages` pages; NULL disarms it.
 * The phase name must be a string literal.
 */
void bench_watch(const char *phase, uint64_t pages)
{
	if (!phase) {
		alarm(0);
		return;
	}
	watch_phase = phase;
	alarm((unsigned)(WATCH_BASE_S + pages / WATCH_PAGES_PER_S));
}

static struct spread spread_of(const double *v, unsigned n)
{
	struct spread s = { 0, 0, 0 };
	double *sorted = malloc(n * sizeof(*sorted));

	if (!sorted)
		return s;
	memcpy(sorted, v, n * sizeof(*sorted));
	s.med = bench_median(sorted, n);
	s.min = sorted[0];
	s.max = sorted[n - 1];
	free(sorted);
	return s;
}

/*
 * A figure beside its floor: us and floor_us hold one sample per trial.
 * floor_name NULL makes the row a floor itself.
 */
void bench_row(struct bench_report *r, const char *key, const char *label,
	       const double *us, const char *floor_name, const double *floor_us)
{
	struct row *w;

	assert(r->nrows < MAX_ROWS);
	w = &r->rows[r->nrows++];
	*w = (struct row){ .key = key,
			   .label = label,
			   .floor_name = floor_name,
			   .us = spread_of(us, r->trials) };
	if (floor_name)
		w->floor_us = spread_of(floor_us, r->trials);
}

void bench_on_abort(void (*fn)(void))
{
	abort_hook = fn;
}

void bench_set_pages(struct bench_report *r, uint64_t pages)
{
	r->pages = pages;
}

void bench_value(struct bench_report *r, const char *key, double v)
{
	assert(r->nvalues < MAX_VALUES);
	r->values[r->nvalues++] = (struct value){ .key = key, .v = v };
}

void bench_note(struct bench_report *r, const char *fmt, ...)
{
	va_list ap;

	assert(r->nnotes < MAX_NOTES);
	va_start(ap, fmt);
	vsnprintf(r->notes[r->nnotes++], NOTE_MAX, fmt, ap);
	va_end(ap);
}

static void machine_get(struct machine *m)
{
	struct utsname u;
	char line[256], *p;
	FILE *f;

	m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	if (getloadavg(&m->load1, 1) != 1)
		m->load1 = -1;
	snprintf(m->kernel, sizeof(m->kernel), "%s",
		 uname(&u) == 0 ? u.release : "unknown");
	snprintf(m->cpu, sizeof(m->cpu), "unknown");
	f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) || !(p = strchr(line, ':')))
			continue;
		p += 1 + strspn(p + 1, " \t");
		p[strcspn(p, "\n")] = '\0';
		snprintf(m->cpu, sizeof(m->cpu), "%s", p);
		break;
	}
	fclose(f);
}

/* Prints s as a JSON string; only quotes, backslashes and controls need it. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void json_machine(const struct machine *m)
{
	printf("\"machine\": {\"nproc\": %ld, \"load1\": %.2f, \"kernel\": ",
	       m->nproc, m->load1);
	json_str(m->kernel);
	printf(", \"cpu\": ");
	json_str(m->cpu);
	printf("}");
}

static double mbs(double us)
{
	return us > 0 ? MV_PAGE_SIZE / us : 0;
}

static void json_report(const struct bench_report *r)
{
	const struct row *w;

	printf("\"pages\": %" PRIu64 ", \"trials\": %u", r->pages, r->trials);
	for (unsigned i = 0; i < r->nvalues; i++)
		printf(", \"%s\": %.3f", r->values[i].key, r->values[i].v);
	for (unsigned i = 0; i < r->nrows; i++) {
		w = &r->rows[i];
		printf(",\n  \"%s_us\": %.3f, \"%s_min_us\": %.3f, \"%s_max_us\": %.3f, \"%s_mbs\": %.1f",
		       w->key, w->us.med, w->key, w->us.min, w->key, w->us.max,
		       w->key, mbs(w->us.med));
		if (w->floor_name)
			printf(", \"%s_floor_us\": %.3f, \"%s_ratio\": %.3f",
			       w->key, w->floor_us.med, w->key,
			       w->us.med / w->floor_us.med);
	}
	printf(",\n  \"notes\": [");
	for (unsigned i = 0; i < r->nnotes; i++) {
		printf(i ? ", " : "");
		json_str(r->notes[i]);
	}
	printf("]");
}

static void print_report(const struct bench_report *r)
{
	const struct row *w;
	char range[32];

	printf("\nmemvisor bench %s: %" PRIu64 " pages (%" PRIu64
	       " MiB) per VM, %u trials: medians and (min-max)\n",
	       r->name, r->pages, r->pages * MV_PAGE_SIZE >> 20, r->trials);
	printf("%-44s %8s %-15s %7s  %-14s %8s %6s\n", "figure", "us/page",
	       "(min-max)", "MB/s", "floor", "floor us", "ratio");
	for (unsigned i = 0; i < r->nrows; i++) {
		w = &r->rows[i];
		snprintf(range, sizeof(range), "(%.1f-%.1f)", w->us.min,
			 w->us.max);
		printf("%-44s %8.2f %-15s %7.1f  ", w->label, w->us.med, range,
		       mbs(w->us.med));
		if (w->floor_name)
			printf("%-14s %8.2f %6.2f\n", w->floor_name,
			       w->floor_us.med, w->us.med / w->floor_us.med);
		else
			printf("%-14s %8s %6s\n", "-", "-", "-");
	}
	for (unsigned i = 0; i < r->nnotes; i++)
		printf("  %s\n", r->notes[i]);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: memvisor bench fault|swapin|balloon|zip|cow|share|lpage|all [--pages N] [--trials T] [--swapdir DIR] [--image PATH]... [--json]\n"
		"  fault   first-touch fault service vs the raw userfaultfd round trip\n"
		"  swapin  swap-in and swap-out vs raw pread/pwrite of the same swap file\n"
		"  balloon inflate and deflate (GiB/s) vs MADV_DONTNEED of the same pages\n"
		"  zip     compression cache vs raw LZ4/zstd on a page mix; density; fault-in\n"
		"  cow     page sharing: merge and copy-on-write costs vs mmap, uffd and kernel COW\n"
		"  share   page sharing on guest RAM images: saved vs the ideal, CPU vs Linux KSM\n"
		"          (`bench all` skips it when the images are missing)\n"
		"  lpage   random access over 1 GiB with and without 2 MiB large pages (ops/s)\n"
		"  linux   the same workloads under memvisor and in a memory cgroup with swap,\n"
		"          zswap, zram (root; not in `all`): `memvisor bench linux --help`\n"
		"  qemu    the test guest under QEMU: memvisor, no limit, a memory cgroup with\n"
		"          swap (not in `all`): `memvisor bench qemu --help`\n"
		"  victims reclaim's victim choice on a simulated kvstore trace: misses\n"
		"          beside an oracle and LRU (not in `all`): `memvisor bench victims --help`\n"
		"  --pages N      guest pages per VM (default 16384 = 64 MiB)\n"
		"  --trials T     trials; figures are medians (default %u)\n"
		"  --swapdir DIR  where the benchmark's swap directory goes (default /var/tmp)\n"
		"  --image PATH   share: a guest RAM image, one VM each; repeat it (default:\n"
		"                 guest-boot, guest-work, guest-boot from /var/tmp/memvisor-images);\n"
		"                 --pages N then takes the first N pages of each\n"
		"  --json         one JSON object on stdout instead of the tables\n",
		DEFAULT_TRIALS);
}

int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

struct opts {
	uint64_t pages; /* 0: each benchmark's default */
	uint64_t trials;
	const char *parent; /* of the temporary swap directory */
	const char *images[BENCH_SHARE_MAX_IMAGES]; /* --image, in order */
	unsigned nimages;
	bool json;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "pages", required_argument, NULL, 'p' },
		{ "trials", required_argument, NULL, 't' },
		{ "swapdir", required_argument, NULL, 's' },
		{ "image", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){ .trials = DEFAULT_TRIALS, .parent = "/var/tmp" };
	optind = 0; /* the command may have run getopt already */
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (bench_parse_u64(optarg, 16, MAX_PAGES, &o->pages)) {
				fprintf(stderr,
					"memvisor bench: --pages wants a number of pages from 16 to %llu\n",
					MAX_PAGES);
				return -EINVAL;
			}
			break;
		case 't':
			if (bench_parse_u64(optarg, 1, MAX_TRIALS,
					    &o->trials)) {
				fprintf(stderr,
					"memvisor bench: --trials wants a number from 1 to %u\n",
					MAX_TRIALS);
				return -EINVAL;
			}
			break;
		case 's':
			o->parent = optarg;
			break;
		case 'i':
			if (o->nimages == BENCH_SHARE_MAX_IMAGES) {
				fprintf(stderr,
					"memvisor bench: at most %u --image\n",
					BENCH_SHARE_MAX_IMAGES);
				return -EINVAL;
			}
			o->images[o->nimages++] = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "memvisor bench: unexpected argument %s\n",
			argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* Runs the benchmarks whose bit is set in `which`; 0 or -errno. */
static int run(unsigned which, const struct opts *o)
{
	struct bench_report *r;
	/* one benchmark: its keys at the top level, as scripts expect */
	bool nested = which & (which - 1);
	char why[NOTE_MAX];
	struct machine m;
	int err = 0;

	machine_get(&m);
	if (o->json) {
		printf("{");
		json_machine(&m);
	} else {
		printf("machine: %s, %ld CPUs, Linux %s, load average %.2f\n",
		       m.cpu, m.nproc, m.kernel, m.load1);
		if (m.load1 > BUSY_LOAD_PER_CPU * (double)m.nproc)
			printf("warning: the machine is busy with other work: absolute figures run slow and scatter; ratios less so\n");
	}
	fflush(stdout);
	for (unsigned i = 0; i < NBENCHES && !err; i++) {
		if (!(which & 1u << i))
			continue;
		/* asked for by name it runs, to say loudly what is missing */
		if (nested && benches[i].missing &&
		    benches[i].missing(why, sizeof(why))) {
			if (o->json) {
				printf(",\n\"%s\": {\"skipped\": ",
				       benches[i].name);
				json_str(why);
				printf("}");
			} else {
				printf("\nmemvisor bench %s: skipped: %s\n",
				       benches[i].name, why);
			}
			continue;
		}
		r = calloc(1, sizeof(*r));
		if (!r) {
			err = -ENOMEM;
			break;
		}
		r->name = benches[i].name;
		r->pages = o->pages ? o->pages : benches[i].default_pages;
		r->trials = (unsigned)o->trials;
		err = benches[i].run(r, r->pages, r->trials, swapdir);
		bench_watch(NULL, 0);
		if (!err && o->json && nested) {
			printf(",\n\"%s\": {", r->name);
			json_report(r);
			printf("}");
		} else if (!err && o->json) {
			printf(", ");
			json_report(r);
		} else if (!err) {
			print_report(r);
		}
		free(r);
		fflush(stdout);
	}
	if (o->json)
		printf("}\n");
	return err;
}

int mv_bench_main(int argc, char **argv)
{
	char parent[PATH_MAX];
	unsigned which = 0;
	struct opts o;
	int err;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	/* its own options, cases and report (bench_linux.c) */
	if (!strcmp(argv[1], "linux"))
		return bench_linux_main(argc - 1, argv + 1);
	/* the test guest under QEMU three ways (bench_qemu.c) */
	if (!strcmp(argv[1], "qemu"))
		return bench_qemu_main(argc - 1, argv + 1);
	/* a simulation of victim choice: no engine, no swap directory */
	if (!strcmp(argv[1], "victims"))
		return bench_victims_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "all"))
		which = (1u << NBENCHES) - 1;
	for (unsigned i = 0; i < NBENCHES; i++)
		if (!strcmp(argv[1], benches[i].name))
			which = 1u << i;
	if (!which) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			usage(stdout);
			return 0;
		}
		fprintf(stderr, "memvisor bench: unknown benchmark %s\n",
			argv[1]);
		usage(stderr);
		return 2;
	}
	if (parse_opts(argc - 1, argv + 1, &o))
		return 2;
	if (o.nimages)
		bench_share_images(o.images, o.nimages);
	/* absolute: swapin finds the engine's file by its path in /proc */
	if (!realpath(o.parent, parent) ||
	    (size_t)snprintf(swapdir, sizeof(swapdir),
			     "%s/memvisor-bench-XXXXXX",
			     parent) >= sizeof(swapdir) ||
	    !mkdtemp(swapdir)) {
		fprintf(stderr,
			"memvisor bench: cannot create a swap directory under %s: %s (pick a writable one with --swapdir)\n",
			o.parent, strerror(errno));
		return 1;
	}
	signal(SIGALRM, watch_expired);
	err = run(which, &o);
	/* swap files are unlinked while open: the directory is empty now */
	if (rmdir(swapdir) < 0)
		fprintf(stderr, "memvisor bench: cannot remove %s: %s\n",
			swapdir, strerror(errno));
	if (err) {
		fprintf(stderr, "memvisor bench: failed: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}

int bench_pin_self(const char *who, int cpu, cpu_set_t *was)
{
	cpu_set_t one;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_getaffinity(0, sizeof(*was), was) < 0 ||
	    sched_setaffinity(0, sizeof(one), &one) < 0) {
		fprintf(stderr,
			"memvisor bench %s: cannot pin the guest to CPU %d: %s\n",
			who, cpu, strerror(errno));
		return -errno;
	}
	return 0;
}

int bench_unpin_self(const char *who, int cpu, const cpu_set_t *was)
{
	if (cpu >= 0 && sched_setaffinity(0, sizeof(*was), was) < 0) {
		fprintf(stderr,
			"memvisor bench %s: cannot unpin the guest: %s\n", who,
			strerror(errno));
		return -errno;
	}
	return 0;
}

/* The first (last: from the top) CPU of this process's mask. */
static int edge_cpu(bool last)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		int c = last ? CPU_SETSIZE - 1 - i : i;

		if (CPU_ISSET(c, &set))
			return c;
	}
	return -ESRCH;
}

int bench_first_cpu(void)
{
	return edge_cpu(false);
}

int bench_last_cpu(void)
{
	return edge_cpu(true);
}
