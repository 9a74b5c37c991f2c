// SPDX-License-Identifier: MIT
/*
 * genimage.c - makes the generated guest images of a scenario (genimage.h)
 * before its VMs start.
 *
 * Design: each distinct image (os, seed, mix and size all equal) is made
 * once, in a memory file (guest/image.c), and every VM that asks for it
 * gets the same /proc/self/fd path: the engine and the guest workload open
 * that path like any image file, and VMs restored from one image share
 * its pages from the first touch, as VMs restored from one real image do.
 * VMs of one os with different seeds get different files; their common
 * pages are equal, and page sharing finds them as it finds any equal
 * pages.  The files hold the non-zero pages outside the host's budget,
 * as a real image's pages sit in the page cache; when they would take
 * more than a quarter of the memory available they go to unnamed files in
 * the swap directory instead, whose pages the kernel can drop.  Making
 * the images is the first long step of a run, so it shows its progress
 * (progress.c) over all of them together, and a SIGINT or SIGTERM (held
 * pending by the run) stops it.
 *
 * Invariants: a VM's image is set only once its file is complete; every
 * file made is in gi, so that it is closed whatever fails later.
 *
 * Lock ordering: none; called from the main thread before any VM exists.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "genimage.h"
#include "progress.h"

/* Images whose pages would take more than 1/MEMORY_SHARE of the memory
 * available go to files in the swap directory instead of memory. */
#define MEMORY_SHARE 4

struct gen_progress {
	struct progress p;
	uint64_t before; /* bytes of the images made already */
	uint64_t total; /* bytes of all of them */
};

/* Shows how far it is; a SIGINT or SIGTERM waiting (they are blocked
 * during a run) stops it. */
static int on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct gen_progress *g = arg;
	sigset_t pending;

	(void)total;
	progress_update(&g->p, g->before + done, g->total);
	if (!sigpending(&pending) && (sigismember(&pending, SIGINT) == 1 ||
				      sigismember(&pending, SIGTERM) == 1))
		return -EINTR;
	return 0;
}

/* MemAvailable of /proc/meminfo, bytes; 0 if unknown. */
static uint64_t mem_available(void)
{
	unsigned long long kb = 0;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb << 10;
}

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static bool same_image(const struct mvg_image_spec *a,
		       const struct mvg_image_spec *b)
{
	return !strcmp(a->os, b->os) && a->seed == b->seed &&
	       a->size == b->size && a->mix.zero_pct == b->mix.zero_pct &&
	       a->mix.common_pct == b->mix.common_pct &&
	       a->mix.private_pct == b->mix.private_pct &&
	       a->mix.text_pct == b->mix.text_pct;
}

/* The earlier VM generated with the same image, or NULL. */
static const struct sc_vm *made_before(const struct scenario *sc, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (sc->vms[j].image_generated && sc->vms[j].image &&
		    same_image(&sc->vms[j].image_spec, &sc->vms[i].image_spec))
			return &sc->vms[j];
	return NULL;
}

int gen_images_make(struct scenario *sc, struct gen_images *gi,
		    const char *disk_dir, FILE *out, bool quiet, char *err,
		    size_t errlen)
{
	struct gen_progress g = { 0 };
	const char *dir = NULL;
	uint64_t nonzero = 0, avail;
	struct timespec t0;
	int *fds, fd, ret;

	gi->fds = NULL;
	gi->n = 0;
	for (size_t i = 0; i < sc->nvms; i++) {
		bool dup = false;

		for (size_t j = 0; j < i && !dup; j++)
			dup = sc->vms[j].image_generated &&
			      same_image(&sc->vms[j].image_spec,
					 &sc->vms[i].image_spec);
		if (sc->vms[i].image_generated && !dup) {
			g.total += sc->vms[i].image_spec.size;
			nonzero +=
				mvg_image_nonzero_bytes(&sc->vms[i].image_spec);
		}
	}
	if (!g.total)
		return 0;
	avail = mem_available();
	if (disk_dir && avail && nonzero > avail / MEMORY_SHARE) {
		dir = disk_dir;
		if (mkdir(dir, 0700) && errno != EEXIST) {
			snprintf(
				err, errlen,
				"%s: cannot make %s for the generated guest images: %s",
				sc->source, dir, strerror(errno));
			return -errno;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	progress_init(&g.p, out, quiet, "generating guest images");
	for (size_t i = 0; i < sc->nvms; i++) {
		struct sc_vm *vm = &sc->vms[i];
		const struct sc_vm *twin;
		char *path = NULL;

		if (!vm->image_generated)
			continue;
		twin = made_before(sc, i);
		if (twin) {
			path = strdup(twin->image);
		} else {
			fds = realloc(gi->fds, (gi->n + 1) * sizeof(*fds));
			if (!fds) {
				ret = -ENOMEM;
				goto fail;
			}
			gi->fds = fds;
			ret = mvg_image_create(&vm->image_spec, dir, &fd,
					       on_progress, &g);
			if (ret)
				goto fail;
			gi->fds[gi->n++] = fd;
			g.before += vm->image_spec.size;
			if (asprintf(&path, "/proc/self/fd/%d", fd) < 0)
				path = NULL;
		}
		if (!path) {
			ret = -ENOMEM;
			goto fail;
		}
		free(vm->image);
		vm->image = path;
		continue;
fail:
		progress_clear(&g.p);
		if (ret == -EINTR)
			snprintf(
				err, errlen,
				"%s:%d: interrupted while generating the guest image of VM %s",
				sc->source, vm->line, vm->name);
		else
			snprintf(
				err, errlen,
				"%s:%d: cannot generate the guest image of VM %s%s%s: %s",
				sc->source, vm->line, vm->name,
				dir ? " in " : "", dir ? dir : "",
				strerror(-ret));
		return ret;
	}
	progress_clear(&g.p);
	if (!quiet && out) {
		fprintf(out,
			"generated %zu guest image%s (%llu MB) in %.1f s%s%s%s\n",
			gi->n, gi->n == 1 ? "" : "s",
			(unsigned long long)(g.total >> 20), since(&t0),
			dir ? ", in unnamed files in " : "", dir ? dir : "",
			dir ? " (too large to keep in memory)" : "");
		fflush(out);
	}
	return 0;
}

void gen_images_free(struct gen_images *gi)
{
	for (size_t i = 0; i < gi->n; i++)
		close(gi->fds[i]);
	free(gi->fds);
	gi->fds = NULL;
	gi->n = 0;
}
