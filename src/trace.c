// SPDX-License-Identifier: MIT
/*
 * trace.c - a per-page history for hunting lost pages; built only with
 * `make TRACE=1` (-DMV_TRACE), never in a normal build.
 *
 * Design: each VM gets a ring of the last DEPTH events per page: every
 * pmap_unlock() (old and new entry, file and line of the caller), and every
 * UFFDIO_COPY, UFFDIO_MOVE (out of and into the guest), MADV_DONTNEED and
 * process_madvise() range that covers the page, with its result and the
 * caller's address (addr2line -e BINARY ADDR).  The system calls are caught
 * by the linker (--wrap), so the engine's code is unchanged.  When the fault
 * thread finds a PRIVATE page that is not mapped (fault.c, spurious_guard),
 * it prints the page's history and its neighbours'.  With MV_TRACE_CHECK set
 * in the environment, every unlock also asks mincore() whether the page is
 * present and says so at once when that disagrees with the new state: the
 * culprit is then the last event before it.  At most MAX_VMS VMs at once.
 */
#ifdef MV_TRACE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "uffd.h"

#define DEPTH 64

struct ev {
	uint64_t ns;
	uint64_t a, b; /* old/new entry, or addr/len */
	int64_t res;
	const void *where; /* file string or return address */
	uint32_t tid;
	uint16_t line;
	uint8_t op;
	uint8_t present; /* 0 no, 1 yes, 2 unknown */
};

enum {
	OP_UNLOCK = 1,
	OP_COPY,
	OP_MOVE_OUT,
	OP_MOVE_IN,
	OP_DONTNEED,
	OP_PMADV,
	OP_ZEROPAGE,
	OP_OTHER
};
static const char *const opn[] = {
	"?",	    "unlock",	     "COPY",	 "MOVE-out", "MOVE-in",
	"DONTNEED", "pmadvDONTNEED", "ZEROPAGE", "other"
};

struct tvm {
	uint8_t *mem;
	mv_pte *pmap;
	uint64_t npages;
	struct ev *ring;
	_Atomic uint32_t *idx;
};

#define MAX_VMS 16

static struct tvm tv[MAX_VMS];
static _Atomic int ntv;
static int check_present = -1;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void mv__trace_vm(uint8_t *mem, mv_pte *pmap, uint64_t npages)
{
	static pthread_mutex_t reg = PTHREAD_MUTEX_INITIALIZER;
	int i;

	pthread_mutex_lock(&reg);
	for (i = 0; i < MAX_VMS && tv[i].ring; i++)
		;
	if (i == MAX_VMS) {
		pthread_mutex_unlock(&reg);
		fprintf(stderr, "TRACE: more than %d VMs, not traced\n",
			MAX_VMS);
		return;
	}
	if (i >= ntv)
		ntv = i + 1;
	tv[i].ring = calloc(npages * DEPTH, sizeof(struct ev));
	tv[i].idx = calloc(npages, sizeof(*tv[i].idx));
	tv[i].npages = npages;
	tv[i].pmap = pmap;
	tv[i].mem = mem;
	if (check_present < 0)
		check_present = getenv("MV_TRACE_CHECK") != NULL;
	pthread_mutex_unlock(&reg);
}

void mv__trace_vm_gone(uint8_t *mem)
{
	for (int i = 0; i < ntv && i < MAX_VMS; i++)
		if (tv[i].mem == mem) {
			struct ev *r = tv[i].ring;

			tv[i].mem = NULL;
			tv[i].pmap = NULL;
			free(tv[i].idx);
			tv[i].ring = NULL;
			free(r);
		}
}

static void rec(struct tvm *t, uint64_t ppn, struct ev *e)
{
	uint32_t k = atomic_fetch_add(&t->idx[ppn], 1) % DEPTH;

	t->ring[ppn * DEPTH + k] = *e;
}

static int present(uint8_t *addr)
{
	unsigned char v;

	if (mincore(addr, 4096, &v))
		return 2;
	return v & 1;
}

void mv__trace_pte(mv_pte *p, uint64_t newv, const char *file, int line)
{
	int n = ntv < MAX_VMS ? ntv : MAX_VMS;

	for (int i = 0; i < n; i++) {
		struct tvm *t = &tv[i];
		uint64_t ppn;
		struct ev e;

		if (!t->pmap || p < t->pmap || p >= t->pmap + t->npages)
			continue;
		ppn = (uint64_t)(p - t->pmap);
		e = (struct ev){ .ns = now_ns(),
				 .a = atomic_load_explicit(
					 p, memory_order_relaxed),
				 .b = newv,
				 .where = file,
				 .tid = (uint32_t)gettid(),
				 .line = (uint16_t)line,
				 .op = OP_UNLOCK,
				 .present = 2 };
		if (check_present)
			e.present = (uint8_t)present(t->mem + (ppn << 12));
		rec(t, ppn, &e);
		if (check_present && e.present != 2) {
			enum mv_page_state s = pmap_state(newv);
			int want = s == MV_PAGE_PRIVATE;

			if (s != MV_PAGE_SHARED && e.present != want)
				fprintf(stderr,
					"TRACE: ppn %llu unlocked %s at %s:%d but present=%d\n",
					(unsigned long long)ppn,
					mv_page_state_name(s), file, line,
					e.present);
		}
		return;
	}
}

static void mem_range(uint64_t addr, uint64_t len, int op, int64_t res,
		      const void *ra)
{
	int n = ntv < MAX_VMS ? ntv : MAX_VMS;

	for (int i = 0; i < n; i++) {
		struct tvm *t = &tv[i];
		uint64_t base = (uintptr_t)t->mem, end;
		struct ev e;

		if (!t->mem || addr + len <= base ||
		    addr >= base + (t->npages << 12))
			continue;
		end = addr + len;
		if (end > base + (t->npages << 12))
			end = base + (t->npages << 12);
		e = (struct ev){ .ns = now_ns(),
				 .a = addr,
				 .b = len,
				 .res = res,
				 .where = ra,
				 .tid = (uint32_t)gettid(),
				 .op = (uint8_t)op,
				 .present = 2 };
		for (uint64_t a = addr < base ? base : addr; a < end; a += 4096)
			rec(t, (a - base) >> 12, &e);
	}
}

int __real_ioctl(int fd, unsigned long req, void *arg);
int __wrap_ioctl(int fd, unsigned long req, void *arg);
int __wrap_ioctl(int fd, unsigned long req, void *arg)
{
	void *ra = __builtin_return_address(0);
	int r = __real_ioctl(fd, req, arg), saved = errno;

	if (req == UFFDIO_COPY) {
		struct uffdio_copy *c = arg;

		mem_range(c->dst, c->len, OP_COPY,
			  r ? c->copy : (int64_t)c->len, ra);
	} else if (req == UFFDIO_MOVE) {
		struct uffdio_move *m = arg;
		int64_t res = r ? m->move : (int64_t)m->len;

		mem_range(m->src, m->len, OP_MOVE_OUT, res, ra);
		mem_range(m->dst, m->len, OP_MOVE_IN, res, ra);
	} else if (req == UFFDIO_ZEROPAGE) {
		struct uffdio_zeropage *z = arg;

		mem_range(z->range.start, z->range.len, OP_ZEROPAGE,
			  r ? z->zeropage : 0, ra);
	}
	errno = saved;
	return r;
}

int __real_madvise(void *addr, size_t len, int advice);
int __wrap_madvise(void *addr, size_t len, int advice);
int __wrap_madvise(void *addr, size_t len, int advice)
{
	void *ra = __builtin_return_address(0);
	int r = __real_madvise(addr, len, advice), saved = errno;

	if (advice == MADV_DONTNEED)
		mem_range((uintptr_t)addr, len, OP_DONTNEED, r ? -saved : 0,
			  ra);
	errno = saved;
	return r;
}

long __real_syscall(long nr, ...);
long __wrap_syscall(long nr, ...);
long __wrap_syscall(long nr, ...)
{
	void *ra = __builtin_return_address(0);
	long a[6], r;
	va_list ap;
	int saved;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	r = __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	saved = errno;
	if (nr == SYS_process_madvise) {
		struct iovec *iov = (struct iovec *)a[1];

		for (long k = 0; k < a[2]; k++)
			mem_range((uintptr_t)iov[k].iov_base, iov[k].iov_len,
				  OP_PMADV, r < 0 ? -saved : r, ra);
	}
	errno = saved;
	return r;
}

static int cmp_ev(const void *x, const void *y)
{
	const struct ev *a = x, *b = y;

	return a->ns < b->ns ? -1 : a->ns > b->ns;
}

void mv__trace_dump(mv_pte *pmap, uint64_t ppn)
{
	int n = ntv < MAX_VMS ? ntv : MAX_VMS;

	for (int i = 0; i < n; i++) {
		struct tvm *t = &tv[i];
		struct ev evs[DEPTH];
		unsigned k = 0;
		uint64_t t0;

		if (t->pmap != pmap)
			continue;
		for (unsigned j = 0; j < DEPTH; j++)
			if (t->ring[ppn * DEPTH + j].op)
				evs[k++] = t->ring[ppn * DEPTH + j];
		qsort(evs, k, sizeof(evs[0]), cmp_ev);
		t0 = k ? evs[0].ns : 0;
		fprintf(stderr,
			"TRACE: history of ppn %llu (%u events, %u total)\n",
			(unsigned long long)ppn, k, t->idx[ppn]);
		for (unsigned j = 0; j < k; j++) {
			struct ev *e = &evs[j];

			if (e->op == OP_UNLOCK)
				fprintf(stderr,
					"  +%9.3fms tid %u unlock %s(%llx) -> %s(%llx) %s:%u present=%u\n",
					(e->ns - t0) / 1e6, e->tid,
					mv_page_state_name(pmap_state(e->a)),
					(unsigned long long)pmap_payload(e->a),
					mv_page_state_name(pmap_state(e->b)),
					(unsigned long long)pmap_payload(e->b),
					(const char *)e->where, e->line,
					e->present);
			else
				fprintf(stderr,
					"  +%9.3fms tid %u %s addr page %lld len %llu res %lld at %p\n",
					(e->ns - t0) / 1e6, e->tid, opn[e->op],
					(long long)((int64_t)(e->a -
							      (uintptr_t)
								      t->mem) >>
						    12),
					(unsigned long long)e->b >> 12,
					(long long)e->res, e->where);
		}
	}
}
#endif
