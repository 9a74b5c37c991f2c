// SPDX-License-Identifier: MIT
/*
 * image.c - generated guest RAM images (image.h): what a VM's RAM looks
 * like after an operating system booted in it, made up from a name, a seed
 * and a page mix, so that no real image has to be downloaded.
 *
 * Design: an image is a sequence of extents of 1 to 64 pages, each all
 * zero, common or private, and each non-zero extent text-like or binary,
 * drawn in page order from a random stream seeded by the os name alone
 * (classes in proportion to the mix).  So every VM of one os has its
 * pages in the same places, the way VMs booted from one kernel and
 * distribution lay out their kernel and first files alike, and the runs
 * of equal neighbours that page sharing maps in one piece are there.  A
 * page's bytes follow from XXH3 of (os, page number) for a common page
 * and (os, seed, page number) for a private one: common pages are equal
 * in every image of the os, private ones differ with the seed, and two
 * os names share no non-zero page.  Binary pages are a splitmix64 word
 * stream (incompressible, like compressed files and random data);
 * text-like pages are lines drawn from a dozen phrases picked for the
 * page from a small vocabulary, with numbers in them, and compress (LZ4)
 * to about a third of a page, like logs and configuration files.
 *
 * Zero pages are never written: the file is made with ftruncate and stays
 * sparse there, as cp --sparse=always leaves a real image.  The image goes
 * in a file without a name, a memory file (memfd) or one in a directory
 * (O_TMPFILE) for images too large for memory, that the engine and the
 * guest workload open by its /proc/self/fd path: the engine then keys
 * sharing on that one file as on a real one, and nothing is left behind.
 *
 * Invariants: the same spec always gives the same bytes (the page mix,
 * positions and content depend on nothing else); no generated non-zero
 * page is all zero (every text page starts with a line, every binary
 * page has 512 words of a stream that is zero nowhere in practice, and a
 * zero one is replaced).
 *
 * Lock ordering: none; no shared state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

#include "image.h"

#define PAGE_SIZE_ 4096u
#define PAGE_WORDS (PAGE_SIZE_ / 8)
#define MAX_EXTENT 64u
#define WRITE_PAGES 64u /* pages written per pwrite at most */
#define PROGRESS_BYTES (16ull << 20)

/* Domains keep the streams of layout, common and private pages apart. */
#define DOMAIN_LAYOUT 0x4c41594full
#define DOMAIN_COMMON 0x434f4d4dull
#define DOMAIN_PRIVATE 0x50524956ull

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t os_hash(const struct mvg_image_spec *spec)
{
	return XXH3_64bits(spec->os, strnlen(spec->os, sizeof(spec->os)));
}

int mvg_image_mix_check(const struct mvg_image_mix *mix)
{
	if (!mix || mix->text_pct > 100 ||
	    (uint64_t)mix->zero_pct + mix->common_pct + mix->private_pct != 100)
		return -EINVAL;
	return 0;
}

void mvg_image_layout(const struct mvg_image_spec *spec, uint8_t *cls,
		      bool *text)
{
	uint64_t npages = spec->size / PAGE_SIZE_, x, r, len;
	const struct mvg_image_mix *m = &spec->mix;
	enum mvg_image_page c;
	bool t;

	x = os_hash(spec) ^ DOMAIN_LAYOUT;
	for (uint64_t ppn = 0; ppn < npages; ppn += len) {
		/* lengths 1..64, short ones commoner: a size class, then a
		 * length in it */
		r = splitmix(&x);
		len = 1ull << (r % 7);
		len = len / 2 + 1 + (r >> 8) % (len / 2 + 1);
		if (len > MAX_EXTENT)
			len = MAX_EXTENT;
		if (len > npages - ppn)
			len = npages - ppn;
		r = (r >> 32) % 100;
		c = r < m->zero_pct		    ? MVG_IMAGE_ZERO :
		    r < m->zero_pct + m->common_pct ? MVG_IMAGE_COMMON :
						      MVG_IMAGE_PRIVATE;
		t = c != MVG_IMAGE_ZERO && splitmix(&x) % 100 < m->text_pct;
		memset(cls + ppn, c, len);
		if (text)
			for (uint64_t i = 0; i < len; i++)
				text[ppn + i] = t;
	}
}

/* Text the way logs and configuration files are: few phrases, repeated. */
static void fill_text(char *out, uint64_t key)
{
	static const char *const words[] = {
		"kernel",  "systemd",  "started", "session", "user",
		"root",	   "network",  "link",	  "up",	     "device",
		"mounted", "/usr/lib", "service", "unit",    "reached",
		"target",  "journal",  "cron",	  "daemon",  "config",
		"loaded",  "module",   "ok",	  "failed",  "eth0",
		"dhcp",	   "lease",    "address", "timer",   "apt",
		"debian",  "package",  "version", "install", "status",
		"path",
	};
	enum { NWORDS = sizeof(words) / sizeof(words[0]), NPHRASES = 12 };
	char phrases[NPHRASES][96];
	size_t n = 0, w;
	uint64_t r;

	for (unsigned p = 0; p < NPHRASES; p++) {
		size_t len = 0;
		unsigned nw = 3 + (unsigned)(splitmix(&key) % 6);

		phrases[p][0] = '\0';
		for (unsigned i = 0; i < nw && len < sizeof(phrases[p]) - 1;
		     i++) {
			const char *word = words[splitmix(&key) % NWORDS];

			len += (size_t)snprintf(phrases[p] + len,
						sizeof(phrases[p]) - len,
						"%s%s", i ? " " : "", word);
		}
	}
	while (n < PAGE_SIZE_) {
		char line[256];

		r = splitmix(&key);
		w = (size_t)snprintf(line, sizeof(line), "%s [%llu]: %s %llu\n",
				     phrases[r % NPHRASES],
				     (unsigned long long)((r >> 8) % 100000),
				     phrases[(r >> 32) % NPHRASES],
				     (unsigned long long)((r >> 40) % 1000));
		if (w > sizeof(line) - 1)
			w = sizeof(line) - 1; /* cut by snprintf */
		if (w > PAGE_SIZE_ - n)
			w = PAGE_SIZE_ - n;
		memcpy(out + n, line, w);
		n += w;
	}
}

void mvg_image_page(const struct mvg_image_spec *spec, uint64_t ppn,
		    enum mvg_image_page cls, bool text, void *page)
{
	uint64_t in[3] = { cls == MVG_IMAGE_PRIVATE ? DOMAIN_PRIVATE :
						      DOMAIN_COMMON,
			   ppn, cls == MVG_IMAGE_PRIVATE ? spec->seed : 0 };
	uint64_t key = XXH3_64bits_withSeed(in, sizeof(in), os_hash(spec));
	uint64_t *w = page;
	uint64_t any = 0;

	if (text) {
		fill_text(page, key);
		return;
	}
	for (unsigned i = 0; i < PAGE_WORDS; i++)
		any |= w[i] = splitmix(&key);
	if (!any)
		w[0] = 1;
}

int mvg_image_write(const struct mvg_image_spec *spec, int fd,
		    mvg_image_progress *progress, void *arg)
{
	uint64_t npages = spec->size / PAGE_SIZE_, next = PROGRESS_BYTES;
	uint8_t *cls = NULL, *buf = NULL;
	bool *text = NULL;
	int err = 0;

	if (!spec->size || spec->size % PAGE_SIZE_ ||
	    mvg_image_mix_check(&spec->mix))
		return -EINVAL;
	if (ftruncate(fd, (off_t)spec->size))
		return -errno;
	cls = malloc(npages);
	text = malloc(npages * sizeof(*text));
	buf = aligned_alloc(PAGE_SIZE_, WRITE_PAGES * PAGE_SIZE_);
	if (!cls || !text || !buf) {
		err = -ENOMEM;
		goto out;
	}
	mvg_image_layout(spec, cls, text);
	for (uint64_t ppn = 0, end; ppn < npages && !err; ppn = end) {
		uint64_t len, done = 0;

		if (cls[ppn] == MVG_IMAGE_ZERO) {
			end = ppn + 1;
			continue;
		}
		for (end = ppn; end < npages && end - ppn < WRITE_PAGES &&
				cls[end] != MVG_IMAGE_ZERO;
		     end++)
			mvg_image_page(spec, end, cls[end], text[end],
				       buf + (end - ppn) * PAGE_SIZE_);
		len = (end - ppn) * PAGE_SIZE_;
		while (done < len) {
			ssize_t n = pwrite(fd, buf + done, len - done,
					   (off_t)(ppn * PAGE_SIZE_ + done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				err = n < 0 ? -errno : -EIO;
				break;
			}
			done += (uint64_t)n;
		}
		if (!err && progress && end * PAGE_SIZE_ >= next) {
			err = progress(arg, end * PAGE_SIZE_, spec->size);
			next = end * PAGE_SIZE_ + PROGRESS_BYTES;
		}
	}
	if (!err && progress)
		err = progress(arg, spec->size, spec->size);
out:
	free(buf);
	free(text);
	free(cls);
	return err;
}

uint64_t mvg_image_nonzero_bytes(const struct mvg_image_spec *spec)
{
	return spec->size / 100 * (100 - spec->mix.zero_pct);
}

/* A file in dir with no name: O_TMPFILE, or a name unlinked at once. */
static int unnamed_file(const char *dir)
{
	char *path;
	int f, err;

	f = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (f >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return f < 0 ? -errno : f;
	if (asprintf(&path, "%s/memvisor-image-XXXXXX", dir) < 0)
		return -ENOMEM;
	f = mkostemp(path, O_CLOEXEC);
	err = f < 0 ? -errno : 0;
	if (f >= 0)
		unlink(path);
	free(path);
	return f < 0 ? err : f;
}

int mvg_image_create(const struct mvg_image_spec *spec, const char *dir,
		     int *fd, mvg_image_progress *progress, void *arg)
{
	char name[MVG_IMAGE_OS_MAX + 16];
	int f, err;

	snprintf(name, sizeof(name), "memvisor-image-%s", spec->os);
	f = dir ? unnamed_file(dir) : memfd_create(name, MFD_CLOEXEC);
	if (f < 0)
		return dir ? f : -errno;
	err = mvg_image_write(spec, f, progress, arg);
	if (err) {
		close(f);
		return err;
	}
	*fd = f;
	return 0;
}
