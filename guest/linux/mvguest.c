/* SPDX-License-Identifier: MIT */
/*
 * mvguest.c - /init of memvisor's real test guest: a static program that
 * runs as PID 1 of a Linux guest under QEMU, tests the guest's memory and
 * says what it found on the serial console.
 *
 * Design: it mounts /proc and /dev (devtmpfs), takes /dev/console as its
 * standard streams, loads the modules the initramfs carries (/lib/modules,
 * in the order of their names, with finit_module), then reads its settings
 * from the kernel command line (/proc/cmdline; the kernel keeps dotted
 * parameters from init's arguments):
 *
 *   mvguest.fill_pct=P  percent of the guest's RAM to fill (default 60,
 *                       at most 90; never more than the free memory less
 *                       16 MiB)
 *   mvguest.rounds=R    free-and-refill rounds after the first fill
 *                       (default 3)
 *   mvguest.free_pct=F  percent of the chunks freed in a round (default 25)
 *   mvguest.pause_ms=M  pause after freeing, so the guest kernel can report
 *                       the free pages to the host (default 2500: Linux
 *                       reports free pages 2 s after they gather)
 *   mvguest.hold_s=S    after the rounds, keep the memory and verify all of
 *                       it again and again for S seconds (default 0), so a
 *                       balloon can inflate against it
 *   mvguest.seed=N      pattern seed (default 1)
 *   mvguest.zero_pct=Z  percent of the chunks written with zeros (default 0)
 *   mvguest.text_pct=T  percent of the chunks written with compressible
 *                       pages: the page's tag, then one repeated byte
 *                       (default 0; the rest are incompressible)
 *   mvguest.active_pct=A  percent of the chunks a hold pass verifies (default
 *                       100); the others stay idle until the final check
 *
 * Memory is taken in 2 MiB chunks (anonymous mappings), so that freeing a
 * chunk frees whole pageblocks the guest kernel can report.  Every page's
 * content is a function of (seed, chunk, page, generation of the chunk):
 * any page can be checked alone, and a page that came back as zeros, from
 * another place or from an older generation is an error.  A round frees a
 * share of the chunks (munmap: the guest kernel frees the pages), pauses,
 * maps and fills them again with a new generation, and verifies every
 * chunk.
 *
 * Output, one line each, all starting "MVGUEST " (memvisor parses them;
 * tools/qemu.c):
 *
 *   MVGUEST start mem_kb=T fill_kb=F rounds=R hold_s=S
 *   MVGUEST module NAME ok|error=ERRNO
 *   MVGUEST filled pages=N
 *   MVGUEST round=R pages=N freed=C errors=E
 *   MVGUEST hold pass=K pages=N errors=E
 *   MVGUEST error chunk=C page=P word=W want=X got=Y   (the first 16)
 *   MVGUEST verdict=ok|fail pages=N errors=E checks=K secs=S
 *
 * then it powers the guest off.  Invariant: the verdict line is printed
 * exactly once and only after every chunk held at that moment was verified;
 * verdict=ok means errors=0 and at least one page was filled.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (2u << 20)
#define PAGE 4096u
#define WORDS (PAGE / 8)
#define MAX_ERRORS_SHOWN 16

struct settings {
	unsigned fill_pct, rounds, free_pct, pause_ms, hold_s;
	uint64_t seed;
	unsigned zero_pct, text_pct, active_pct;
};

struct chunk {
	uint64_t *mem; /* NULL: not held */
	uint64_t gen;
};

static struct chunk *chunks;
static size_t nchunks;
static uint64_t errors, checks;
static struct settings set = { 60, 3, 25, 2500, 0, 1, 0, 0, 100 };

enum chunk_kind { K_RANDOM, K_ZERO, K_TEXT };

static void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(1, buf, (size_t)n) < 0) {
		/* nowhere else to say it */
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* the first word of a page: never 0, differs for every (chunk, page, gen) */
static uint64_t page_tag(size_t c, unsigned p, uint64_t gen)
{
	uint64_t t =
		mix(set.seed ^ mix(((uint64_t)c << 32) | p) ^ mix(gen << 1));

	return t ? t : 1;
}

static uint64_t word_of(uint64_t tag, unsigned w)
{
	return tag ^ ((uint64_t)w * 0x9e3779b97f4a7c15ull);
}

/* what a chunk holds: fixed by the seed and its index */
static enum chunk_kind chunk_kind(size_t c)
{
	unsigned k = (unsigned)(mix(set.seed * 31 + c + 0x5a5a) % 100);

	return k < set.zero_pct		       ? K_ZERO :
	       k < set.zero_pct + set.text_pct ? K_TEXT :
						 K_RANDOM;
}

static uint64_t expected(enum chunk_kind k, uint64_t tag, unsigned w)
{
	if (k == K_ZERO)
		return 0;
	if (k == K_TEXT)
		return w ? (tag & 0xff) * 0x0101010101010101ull : tag;
	return word_of(tag, w);
}

static void fill_chunk(size_t c)
{
	enum chunk_kind k = chunk_kind(c);

	for (unsigned p = 0; p < CHUNK / PAGE; p++) {
		uint64_t *pg = chunks[c].mem + (size_t)p * WORDS;
		uint64_t tag = page_tag(c, p, chunks[c].gen);

		for (unsigned w = 0; w < WORDS; w++)
			pg[w] = expected(k, tag, w);
	}
}

static void verify_chunk(size_t c)
{
	enum chunk_kind k = chunk_kind(c);

	for (unsigned p = 0; p < CHUNK / PAGE; p++) {
		const uint64_t *pg = chunks[c].mem + (size_t)p * WORDS;
		uint64_t tag = page_tag(c, p, chunks[c].gen);

		checks++;
		for (unsigned w = 0; w < WORDS; w++) {
			if (pg[w] == expected(k, tag, w))
				continue;
			if (errors < MAX_ERRORS_SHOWN)
				say("MVGUEST error chunk=%zu page=%u word=%u want=%016" PRIx64
				    " got=%016" PRIx64,
				    c, p, w, expected(k, tag, w), pg[w]);
			errors++;
			break; /* one error per page */
		}
	}
}

static bool take_chunk(size_t c, uint64_t gen)
{
	void *m = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return false;
	chunks[c].mem = m;
	chunks[c].gen = gen;
	fill_chunk(c);
	return true;
}

static void free_chunk(size_t c)
{
	munmap(chunks[c].mem, CHUNK);
	chunks[c].mem = NULL;
}

static uint64_t pages_held(void)
{
	uint64_t n = 0;

	for (size_t c = 0; c < nchunks; c++)
		n += chunks[c].mem ? CHUNK / PAGE : 0;
	return n;
}

static void verify_all(void)
{
	for (size_t c = 0; c < nchunks; c++)
		if (chunks[c].mem)
			verify_chunk(c);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void setup_console(void)
{
	int fd;

	mkdir("/proc", 0555);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		if (fd != i)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_modules(void)
{
	char *names[64];
	size_t n = 0;
	DIR *d = opendir("/lib/modules");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) && n < 64)
		if (strstr(e->d_name, ".ko"))
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[300];
		int fd;
		long rc;

		if (!names[i])
			continue;
		snprintf(path, sizeof(path), "/lib/modules/%s", names[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		rc = fd < 0 ? -1 : syscall(SYS_finit_module, fd, "", 0);
		if (rc && errno == EEXIST)
			rc = 0;
		if (rc)
			say("MVGUEST module %s error=%d", names[i], errno);
		else
			say("MVGUEST module %s ok", names[i]);
		if (fd >= 0)
			close(fd);
		free(names[i]);
	}
}

static void read_settings(void)
{
	char buf[4096];
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	for (char *save, *tok = strtok_r(buf, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save)) {
		static const struct {
			const char *key;
			unsigned *val;
		} keys[] = {
			{ "mvguest.fill_pct=", &set.fill_pct },
			{ "mvguest.rounds=", &set.rounds },
			{ "mvguest.free_pct=", &set.free_pct },
			{ "mvguest.pause_ms=", &set.pause_ms },
			{ "mvguest.hold_s=", &set.hold_s },
			{ "mvguest.zero_pct=", &set.zero_pct },
			{ "mvguest.text_pct=", &set.text_pct },
			{ "mvguest.active_pct=", &set.active_pct },
		};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (!strncmp(tok, keys[i].key, strlen(keys[i].key)))
				*keys[i].val = (unsigned)strtoul(
					tok + strlen(keys[i].key), NULL, 0);
		if (!strncmp(tok, "mvguest.seed=", 13))
			set.seed = strtoull(tok + 13, NULL, 0);
	}
	if (set.fill_pct > 90)
		set.fill_pct = 90;
	if (set.free_pct > 100)
		set.free_pct = 100;
	if (set.zero_pct > 100)
		set.zero_pct = 100;
	if (set.text_pct > 100 - set.zero_pct)
		set.text_pct = 100 - set.zero_pct;
	if (set.active_pct > 100)
		set.active_pct = 100;
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

int main(void)
{
	struct sysinfo si;
	uint64_t total, freeb, want;
	double t0 = now_s();
	bool ok;

	setup_console();
	load_modules();
	read_settings();
	if (sysinfo(&si)) {
		say("MVGUEST verdict=fail pages=0 errors=0 checks=0 secs=0 (sysinfo: %d)",
		    errno);
		power_off();
	}
	total = (uint64_t)si.totalram * si.mem_unit;
	freeb = (uint64_t)si.freeram * si.mem_unit;
	want = total / 100 * set.fill_pct;
	if (freeb < (16u << 20))
		want = 0;
	else if (want > freeb - (16u << 20))
		want = freeb - (16u << 20);
	nchunks = want / CHUNK;
	chunks = calloc(nchunks ? nchunks : 1, sizeof(*chunks));
	say("MVGUEST start mem_kb=%" PRIu64 " fill_kb=%" PRIu64
	    " rounds=%u hold_s=%u",
	    total >> 10, (uint64_t)nchunks * (CHUNK >> 10), set.rounds,
	    set.hold_s);
	for (size_t c = 0; c < nchunks; c++)
		if (!take_chunk(c, 0))
			break;
	say("MVGUEST filled pages=%" PRIu64, pages_held());
	verify_all();

	for (unsigned r = 1; r <= set.rounds; r++) {
		size_t freed = 0;

		/* a different share of the chunks each round */
		for (size_t c = 0; c < nchunks; c++)
			if (chunks[c].mem &&
			    mix(set.seed + r * 7919 + c) % 100 < set.free_pct) {
				free_chunk(c);
				freed++;
			}
		sleep_ms(set.pause_ms);
		for (size_t c = 0; c < nchunks; c++)
			if (!chunks[c].mem)
				take_chunk(c, r);
		verify_all();
		say("MVGUEST round=%u pages=%" PRIu64
		    " freed=%zu errors=%" PRIu64,
		    r, pages_held(), freed, errors);
	}

	if (set.hold_s) {
		double end = now_s() + set.hold_s;

		for (unsigned pass = 1; now_s() < end; pass++) {
			/* the active share only: the rest stays idle */
			for (size_t c = 0; c < nchunks; c++)
				if (chunks[c].mem &&
				    mix(c ^ 0x77) % 100 < set.active_pct)
					verify_chunk(c);
			say("MVGUEST hold pass=%u pages=%" PRIu64
			    " errors=%" PRIu64,
			    pass, pages_held(), errors);
			sleep_ms(500);
		}
	}

	verify_all();
	ok = !errors && pages_held() > 0;
	say("MVGUEST verdict=%s pages=%" PRIu64 " errors=%" PRIu64
	    " checks=%" PRIu64 " secs=%.1f",
	    ok ? "ok" : "fail", pages_held(), errors, checks, now_s() - t0);
	power_off();
	return 0;
}
