// SPDX-License-Identifier: MIT
/*
 * bench_fault.c - `memvisor bench fault`: what memvisor's first-touch fault
 * service costs per page, beside the raw userfaultfd round trip.
 *
 * Design: the floor is the least any userfaultfd handler can do: a thread
 * blocked in read() on the userfaultfd that answers each MISSING event with
 * UFFDIO_COPY of one zeroed page, while one guest thread writes a byte to
 * each of N fresh pages.  Two more floors give context: the same handler
 * waiting in poll() before read() (the shape of any handler that must also
 * hear a stop request, as memvisor's does), and the kernel's own first-touch
 * fault on plain anonymous memory, no userfaultfd at all; and the round
 * trip's alternative, UFFD_FEATURE_SIGBUS: the faulting thread itself takes
 * SIGBUS, its handler answers with UFFDIO_COPY and returns, with no second
 * thread and no context switch (what serving faults in the vCPU's own
 * thread would cost; memvisor does not do that).  memvisor is then
 * timed on the same pattern: a host and a VM of N pages, every page written
 * once, in address order and in a random order, with Mem.FaultAroundPages
 * = 1 (one page per fault, the figure comparable with the floor: the goal is
 * 1.3x) and = 16 (the default, where batching pays).  Each trial measures
 * every figure once, floors and engine interleaved, so the noise of a
 * virtual machine falls on all of them; the report has medians.
 *
 * Then the scaling figures: T = 1, 2, 4, 8 guest threads each write their
 * own contiguous slice of N fresh pages, started together, timed wall
 * clock over the whole; the kernel's first touch the same way, and
 * memvisor with Mem.FaultAroundPages 16 and Mem.FaultThreads 1 and 2.
 *
 * Then the pinned figures (the service beside the vCPUs): the guest thread
 * pinned to one CPU writes N fresh pages in address order, one page a
 * fault, served by memvisor with Mem.ServiceAffinity 0 (its fault thread
 * wherever the scheduler puts it) and 1 (the fault thread follows the
 * guest onto its CPU), beside the raw handler pinned to the guest's CPU
 * and, second floor, to another, and the kernel's first touch pinned the
 * same way; the order of the five flips from one trial to the next.  They
 * need two CPUs: with one they are skipped, saying so.  A ServiceAffinity
 * 1 run whose service did not end up on the guest's one CPU, or a 0 run
 * whose service moved, fails the benchmark.
 *
 * Only the guest's loop is timed: creating hosts and VMs, and checking what
 * the guest sees afterwards, are not.  After every engine run each page must
 * read as zeros plus the guest's byte and the VM's counters must add up, or
 * the benchmark fails naming the page: a fast wrong answer is no figure.
 *
 * Invariants: the floor handler serves exactly N faults (one guest thread,
 * each page touched once, so each page faults once) and then exits; every
 * mapping uses 4 KiB pages (MADV_NOHUGEPAGE), since a transparent huge page
 * would fill 512 pages on one fault.
 *
 * Lock ordering: none; the floor handler shares only its context, handed
 * over by pthread_create and taken back by pthread_join.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "memvisor.h"

#define GOAL_RATIO 1.3
#define SETTLE_TRIES 1000 /* of 1 ms */
#define SEED 0x6d656d7669736f72ull

/* What the guest writes at the start of page ppn: never zero. */
#define TOUCH_BYTE(ppn) ((uint8_t)((ppn)*7 + 1) | 1)

enum figure {
	FLOOR_SEQ, /* raw uffd, read() then UFFDIO_COPY, address order */
	FLOOR_RAND, /* the same, random order */
	FLOOR_POLL, /* raw uffd, poll() + read() + UFFDIO_COPY */
	KERNEL, /* kernel first touch, no uffd */
	SIGBUS_SEQ, /* uffd with UFFD_FEATURE_SIGBUS, served in the thread */
	MV1_SEQ, /* memvisor, Mem.FaultAroundPages=1 */
	MV1_RAND,
	MV16_SEQ, /* memvisor, Mem.FaultAroundPages=16 */
	MV16_RAND,
	NFIGURES
};

/*
 * Where a run's threads go: the guest (the calling thread, for the touch
 * only) and the raw handler on one CPU each, -1 where the scheduler puts
 * them; the engine's Mem.ServiceAffinity.  NULL: nothing pinned, defaults.
 */
struct pin {
	int guest_cpu, handler_cpu;
	unsigned service_affinity;
};

struct floor_handler {
	int uffd;
	bool poll_first;
	uint64_t npages; /* faults to serve before exiting */
	const uint8_t *src; /* one zeroed page */
	int err; /* 0, or why the handler gave up */
};

static void *floor_main(void *arg)
{
	struct floor_handler *fh = arg;
	struct pollfd pfd = { .fd = fh->uffd, .events = POLLIN };
	struct uffdio_copy copy;
	struct uffd_msg msg;
	uint64_t served = 0;
	ssize_t n;

	while (served < fh->npages) {
		if (fh->poll_first && poll(&pfd, 1, -1) < 0 && errno != EINTR) {
			fh->err = -errno;
			break;
		}
		n = read(fh->uffd, &msg, sizeof(msg));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n != sizeof(msg)) {
			fh->err = n < 0 ? -errno : -EIO;
			break;
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		copy = (struct uffdio_copy){
			.dst = msg.arg.pagefault.address &
			       ~(uint64_t)(MV_PAGE_SIZE - 1),
			.src = (uintptr_t)fh->src,
			.len = MV_PAGE_SIZE,
		};
		if (ioctl(fh->uffd, UFFDIO_COPY, &copy) < 0 &&
		    errno != EEXIST) {
			fh->err = -errno;
			break;
		}
		served++;
	}
	return NULL;
}

static int map_pages(uint64_t npages, uint8_t **out)
{
	size_t len = npages * MV_PAGE_SIZE;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	if (madvise(p, len, MADV_NOHUGEPAGE) < 0) {
		munmap(p, len);
		return -errno;
	}
	*out = p;
	return 0;
}

/* The guest: one write per page, in order[] or address order; us/page. */
static double touch(uint8_t *mem, const uint64_t *order, uint64_t npages)
{
	volatile uint8_t *m = mem;
	uint64_t t0, ppn;

	t0 = bench_now_ns();
	for (uint64_t i = 0; i < npages; i++) {
		ppn = order ? order[i] : i;
		m[ppn * MV_PAGE_SIZE] = TOUCH_BYTE(ppn);
	}
	return (double)(bench_now_ns() - t0) / 1e3 / (double)npages;
}

/* Every page must hold the guest's byte and zeros; names the first that
 * does not. */
static int check_pages(const uint8_t *mem, uint64_t npages, const char *what)
{
	static const uint8_t zero[MV_PAGE_SIZE];
	const uint8_t *page;
	unsigned i;

	for (uint64_t ppn = 0; ppn < npages; ppn++) {
		page = mem + ppn * MV_PAGE_SIZE;
		if (page[0] == TOUCH_BYTE(ppn) &&
		    !memcmp(page + 1, zero, MV_PAGE_SIZE - 1))
			continue;
		if (page[0] != TOUCH_BYTE(ppn)) {
			fprintf(stderr,
				"memvisor bench fault: %s: page %" PRIu64
				" byte 0 is %#x after the guest wrote %#x\n",
				what, ppn, page[0], TOUCH_BYTE(ppn));
			return -EIO;
		}
		for (i = 1; !page[i]; i++)
			;
		fprintf(stderr,
			"memvisor bench fault: %s: page %" PRIu64
			" byte %u is %#x after first touch, expected 0\n",
			what, ppn, i, page[i]);
		return -EIO;
	}
	return 0;
}

static int uffd_open(uint64_t features, int *out)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		close(fd);
		return -errno;
	}
	*out = fd;
	return 0;
}

/* npages fresh pages registered with fd for MISSING faults, or -errno
 * (said on stderr; nothing left mapped). */
static int map_registered(int fd, uint64_t npages, uint8_t **out)
{
	struct uffdio_register reg;
	int err;

	err = map_pages(npages, out);
	if (err)
		return err;
	reg = (struct uffdio_register){
		.range = { .start = (uintptr_t)*out,
			   .len = npages * MV_PAGE_SIZE },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
		err = -errno;
		fprintf(stderr, "memvisor bench fault: UFFDIO_REGISTER: %s\n",
			strerror(errno));
		munmap(*out, npages * MV_PAGE_SIZE);
		return err;
	}
	return 0;
}

/* The raw userfaultfd round trip, threads where pin puts them (NULL:
 * anywhere); us/page in *us. */
static int uffd_floor(uint64_t npages, const uint64_t *order, bool poll_first,
		      const uint8_t *src, const struct pin *pin, double *us)
{
	struct floor_handler fh = { .poll_first = poll_first,
				    .npages = npages,
				    .src = src };
	int guest_cpu = pin ? pin->guest_cpu : -1;
	pthread_attr_t attr;
	cpu_set_t cpus, was;
	pthread_t thread;
	uint8_t *mem;
	int err;

	err = uffd_open(0, &fh.uffd);
	if (err) {
		fprintf(stderr,
			"memvisor bench fault: userfaultfd: %s (run as root, or set vm.unprivileged_userfaultfd=1)\n",
			strerror(-err));
		return err;
	}
	err = map_registered(fh.uffd, npages, &mem);
	if (err)
		goto out_uffd;
	err = bench_pin_self("fault", guest_cpu, &was);
	if (err)
		goto out_mem;
	pthread_attr_init(&attr);
	if (pin && pin->handler_cpu >= 0) {
		CPU_ZERO(&cpus);
		CPU_SET(pin->handler_cpu, &cpus);
		err = -pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
	}
	if (!err)
		err = -pthread_create(&thread, &attr, floor_main, &fh);
	pthread_attr_destroy(&attr);
	if (err) {
		bench_unpin_self("fault", guest_cpu, &was);
		goto out_mem;
	}
	bench_watch("raw userfaultfd floor", npages);
	*us = touch(mem, order, npages);
	pthread_join(thread, NULL);
	err = bench_unpin_self("fault", guest_cpu, &was);
	if (!err)
		err = fh.err;
	if (err)
		fprintf(stderr,
			"memvisor bench fault: raw userfaultfd handler: %s\n",
			strerror(-err));
	else
		err = check_pages(mem, npages, "raw userfaultfd floor");
out_mem:
	munmap(mem, npages * MV_PAGE_SIZE);
out_uffd:
	close(fh.uffd);
	return err;
}

/* What the in-thread SIGBUS handler copies from, and into which uffd. */
static int sigbus_uffd = -1;
static const uint8_t *sigbus_src;
static volatile sig_atomic_t sigbus_err;

/* Fills the faulting page with UFFDIO_COPY and returns: the access runs
 * again and finds it.  A failure is kept for the caller to report (the
 * access then faults again; the run's watchdog ends a run that cannot
 * progress). */
static void sigbus_fill(int sig, siginfo_t *si, void *uc)
{
	struct uffdio_copy copy = {
		.dst = (uintptr_t)si->si_addr & ~(uint64_t)(MV_PAGE_SIZE - 1),
		.src = (uintptr_t)sigbus_src,
		.len = MV_PAGE_SIZE,
	};
	int saved = errno;

	(void)sig;
	(void)uc;
	if (ioctl(sigbus_uffd, UFFDIO_COPY, &copy) < 0 && errno != EEXIST)
		sigbus_err = errno;
	errno = saved;
}

/* The fault served in the faulting thread: UFFD_FEATURE_SIGBUS, us/page. */
static int sigbus_floor(uint64_t npages, const uint8_t *src, double *us)
{
	struct sigaction sa = { .sa_sigaction = sigbus_fill,
				.sa_flags = SA_SIGINFO },
			 old;
	uint8_t *mem;
	int fd, err;

	err = uffd_open(UFFD_FEATURE_SIGBUS, &fd);
	if (err) {
		fprintf(stderr,
			"memvisor bench fault: userfaultfd with UFFD_FEATURE_SIGBUS: %s\n",
			strerror(-err));
		return err;
	}
	err = map_registered(fd, npages, &mem);
	if (err)
		goto out_fd;
	sigbus_uffd = fd;
	sigbus_src = src;
	sigbus_err = 0;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &old) < 0) {
		err = -errno;
		goto out_mem;
	}
	bench_watch("userfaultfd SIGBUS floor", npages);
	*us = touch(mem, NULL, npages);
	sigaction(SIGBUS, &old, NULL);
	err = -sigbus_err;
	if (err)
		fprintf(stderr,
			"memvisor bench fault: SIGBUS handler's UFFDIO_COPY: %s\n",
			strerror(-err));
	else
		err = check_pages(mem, npages, "userfaultfd SIGBUS floor");
out_mem:
	munmap(mem, npages * MV_PAGE_SIZE);
out_fd:
	close(fd);
	sigbus_uffd = -1;
	return err;
}

/* The same, unpinned; bench_zip.c puts its compressed fault-ins beside it
 * too. */
int bench_uffd_floor(uint64_t npages, const uint64_t *order, bool poll_first,
		     const uint8_t *src, double *us)
{
	return uffd_floor(npages, order, poll_first, src, NULL, us);
}

/* The kernel's own first-touch fault, for context; the guest where pin
 * puts it (NULL: anywhere). */
static int kernel_run(uint64_t npages, const struct pin *pin, double *us)
{
	int cpu = pin ? pin->guest_cpu : -1;
	cpu_set_t was;
	uint8_t *mem;
	int err;

	err = map_pages(npages, &mem);
	if (err)
		return err;
	err = bench_pin_self("fault", cpu, &was);
	if (!err) {
		*us = touch(mem, NULL, npages);
		err = bench_unpin_self("fault", cpu, &was);
	}
	munmap(mem, npages * MV_PAGE_SIZE);
	return err;
}

/*
 * The VM's counters must say every page was filled once, without error.
 * The engine wakes the guest with UFFDIO_COPY before it books the fill, so
 * the last fault's bookkeeping may trail the guest's last write: wait a
 * little before calling a shortfall wrong.
 */
static int check_stats(mv_vm *vm, uint64_t npages, const char *what,
		       double *faults_per_page)
{
	struct timespec pause = { 0, 1000000 };
	struct mv_vm_stats st;
	int err, tries = 0;

	do {
		if (tries)
			nanosleep(&pause, NULL);
		err = mv_vm_stats(vm, &st);
		if (err)
			return err;
	} while ((st.fault_fill_pages != npages ||
		  st.state_pages[MV_PAGE_PRIVATE] != npages) &&
		 ++tries < SETTLE_TRIES);
	*faults_per_page = (double)st.faults / (double)npages;
	if (st.fault_errors || st.fault_fill_pages != npages ||
	    st.state_pages[MV_PAGE_PRIVATE] != npages) {
		fprintf(stderr,
			"memvisor bench fault: %s: after touching %" PRIu64
			" pages the VM counts %" PRIu64 " filled, %" PRIu64
			" private, %" PRIu64 " fault errors\n",
			what, npages, st.fault_fill_pages,
			st.state_pages[MV_PAGE_PRIVATE], st.fault_errors);
		return -EIO;
	}
	return 0;
}

/*
 * With the guest pinned to one CPU, Mem.ServiceAffinity 1 must have moved
 * the fault thread to that CPU alone, and 0 must have left it alone: else
 * the pinned figures would measure something else.
 */
static int check_service(mv_vm *vm, const struct pin *pin, const char *what)
{
	struct mv_vm_stats st;
	int err;

	err = mv_vm_stats(vm, &st);
	if (err)
		return err;
	if (pin->service_affinity ?
		    st.service_cpus == 1 && st.service_moves > 0 &&
			    !st.service_affinity_errors :
		    !st.service_moves)
		return 0;
	fprintf(stderr,
		"memvisor bench fault: %s: the service may use %u CPUs after %" PRIu64
		" moves and %" PRIu64 " refusals\n",
		what, st.service_cpus, st.service_moves,
		st.service_affinity_errors);
	return -EIO;
}

/* memvisor's fault service on a fresh VM, the guest where pin puts it
 * (NULL: anywhere, default settings); us/page and faults/page. */
static int engine_run(uint64_t npages, unsigned fault_around,
		      const uint64_t *order, const struct pin *pin,
		      const char *swapdir, double *us, double *faults_per_page)
{
	const char *what = order ? "memvisor, random order" :
			   !pin	 ? "memvisor, address order" :
			   pin->service_affinity ?
				  "memvisor, pinned guest, ServiceAffinity=1" :
				  "memvisor, pinned guest, ServiceAffinity=0";
	int cpu = pin ? pin->guest_cpu : -1;
	struct mv_host_config hc;
	struct mv_vm_config vc;
	cpu_set_t was;
	mv_host *host;
	mv_vm *vm;
	int err;

	bench_host_config(&hc);
	/* twice the VM: free memory stays far above minFree, no reclaim */
	hc.memsize_bytes = 2 * npages * MV_PAGE_SIZE + (64u << 20);
	hc.swapdir = swapdir;
	hc.settings.fault_around_pages = fault_around;
	if (pin)
		hc.settings.service_affinity = pin->service_affinity;
	err = mv_host_create(&hc, &host);
	if (err) {
		fprintf(stderr,
			"memvisor bench fault: cannot create host: %s\n",
			mv_strerror(err));
		return err;
	}
	mv_vm_config_init(&vc);
	snprintf(vc.name, sizeof(vc.name), "bench-fault");
	vc.memsize_bytes = npages * MV_PAGE_SIZE;
	err = mv_vm_create(host, &vc, &vm);
	if (err) {
		fprintf(stderr, "memvisor bench fault: cannot create VM: %s\n",
			mv_host_errmsg(host));
		goto out_host;
	}
	/* pinned only now: the engine's threads, made above, are not */
	err = bench_pin_self("fault", cpu, &was);
	if (err)
		goto out_vm;
	bench_watch(what, npages);
	*us = touch(mv_vm_mem(vm), order, npages);
	bench_watch(NULL, 0);
	err = bench_unpin_self("fault", cpu, &was);
	if (!err)
		err = check_pages(mv_vm_mem(vm), npages, what);
	if (!err)
		err = check_stats(vm, npages, what, faults_per_page);
	if (!err && pin)
		err = check_service(vm, pin, what);
out_vm:
	mv_vm_destroy(vm);
out_host:
	mv_host_destroy(host);
	return err;
}

/*
 * One trial: every figure once, floors and engine interleaved.  fpp gets
 * faults per page of the engine's figures.
 */
static int trial(uint64_t npages, const uint64_t *order, const uint8_t *src,
		 const char *swapdir, double *us, double *fpp)
{
	int err;

	err = bench_uffd_floor(npages, NULL, false, src, &us[FLOOR_SEQ]);
	if (!err)
		err = engine_run(npages, 1, NULL, NULL, swapdir, &us[MV1_SEQ],
				 &fpp[MV1_SEQ]);
	if (!err)
		err = bench_uffd_floor(npages, order, false, src,
				       &us[FLOOR_RAND]);
	if (!err)
		err = engine_run(npages, 1, order, NULL, swapdir, &us[MV1_RAND],
				 &fpp[MV1_RAND]);
	if (!err)
		err = bench_uffd_floor(npages, NULL, true, src,
				       &us[FLOOR_POLL]);
	if (!err)
		err = kernel_run(npages, NULL, &us[KERNEL]);
	if (!err)
		err = sigbus_floor(npages, src, &us[SIGBUS_SEQ]);
	if (!err)
		err = engine_run(npages, 16, NULL, NULL, swapdir, &us[MV16_SEQ],
				 &fpp[MV16_SEQ]);
	if (!err)
		err = engine_run(npages, 16, order, NULL, swapdir,
				 &us[MV16_RAND], &fpp[MV16_RAND]);
	return err;
}

/*
 * Guest threads (the scaling question): T threads each write one
 * byte to each page of their own contiguous slice of the N pages, in
 * address order, started together; us/page is the wall time from the start
 * to the last thread's end, over N.  The kernel's first touch is timed the
 * same way on plain anonymous memory, and memvisor with the default
 * Mem.FaultAroundPages (16) and 1 or 2 fault threads.
 */
#define MT_MAX 8
static const unsigned mt_guests[] = { 1, 2, 4, 8 };
#define MT_NG (sizeof(mt_guests) / sizeof(mt_guests[0]))
#define MT_NF 2 /* Mem.FaultThreads 1 and 2 */
/* keys and labels are literals (bench.c) */
static const char *const mt_kernel_key[MT_NG] = { "kernel_t1", "kernel_t2",
						  "kernel_t4", "kernel_t8" };
static const char *const mt_kernel_label[MT_NG] = {
	"kernel first touch, 1 guest thread",
	"kernel first touch, 2 guest threads",
	"kernel first touch, 4 guest threads",
	"kernel first touch, 8 guest threads"
};
static const char *const mt_key[MT_NF][MT_NG] = {
	{ "fault16_t1_f1", "fault16_t2_f1", "fault16_t4_f1", "fault16_t8_f1" },
	{ "fault16_t1_f2", "fault16_t2_f2", "fault16_t4_f2", "fault16_t8_f2" }
};
static const char *const mt_ratio_key[MT_NF][MT_NG] = {
	{ "ratio_t1_f1", "ratio_t2_f1", "ratio_t4_f1", "ratio_t8_f1" },
	{ "ratio_t1_f2", "ratio_t2_f2", "ratio_t4_f2", "ratio_t8_f2" }
};
static const char *const mt_label[MT_NF][MT_NG] = {
	{ "memvisor, 1 guest thread, 1 fault thread",
	  "memvisor, 2 guest threads, 1 fault thread",
	  "memvisor, 4 guest threads, 1 fault thread",
	  "memvisor, 8 guest threads, 1 fault thread" },
	{ "memvisor, 1 guest thread, 2 fault threads",
	  "memvisor, 2 guest threads, 2 fault threads",
	  "memvisor, 4 guest threads, 2 fault threads",
	  "memvisor, 8 guest threads, 2 fault threads" }
};

struct mt_start {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool go;
};

struct mt_guest {
	uint8_t *mem;
	uint64_t lo, hi;
	struct mt_start *start;
};

static void *mt_main(void *arg)
{
	struct mt_guest *g = arg;
	volatile uint8_t *m = g->mem;

	pthread_mutex_lock(&g->start->lock);
	while (!g->start->go)
		pthread_cond_wait(&g->start->cond, &g->start->lock);
	pthread_mutex_unlock(&g->start->lock);
	for (uint64_t ppn = g->lo; ppn < g->hi; ppn++)
		m[ppn * MV_PAGE_SIZE] = TOUCH_BYTE(ppn);
	return NULL;
}

/* t guest threads over npages of mem: 0 and us/page (wall), or -errno. */
static int mt_touch(uint8_t *mem, uint64_t npages, unsigned t, double *us)
{
	struct mt_start start = { PTHREAD_MUTEX_INITIALIZER,
				  PTHREAD_COND_INITIALIZER, false };
	struct mt_guest g[MT_MAX];
	pthread_t th[MT_MAX];
	unsigned n;
	uint64_t t0;
	int err = 0;

	for (n = 0; n < t; n++) {
		g[n] = (struct mt_guest){ .mem = mem,
					  .lo = npages * n / t,
					  .hi = npages * (n + 1) / t,
					  .start = &start };
		err = -pthread_create(&th[n], NULL, mt_main, &g[n]);
		if (err)
			break;
	}
	t0 = bench_now_ns();
	pthread_mutex_lock(&start.lock);
	start.go = true;
	pthread_cond_broadcast(&start.cond);
	pthread_mutex_unlock(&start.lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	*us = (double)(bench_now_ns() - t0) / 1e3 / (double)npages;
	return err;
}

static int mt_kernel(uint64_t npages, unsigned t, double *us)
{
	uint8_t *mem;
	int err;

	err = map_pages(npages, &mem);
	if (err)
		return err;
	err = mt_touch(mem, npages, t, us);
	munmap(mem, npages * MV_PAGE_SIZE);
	return err;
}

static int mt_engine(uint64_t npages, unsigned t, unsigned fault_threads,
		     const char *swapdir, double *us)
{
	struct mv_host_config hc;
	struct mv_vm_config vc;
	double fpp;
	mv_host *host;
	mv_vm *vm;
	int err;

	bench_host_config(&hc);
	hc.memsize_bytes = 2 * npages * MV_PAGE_SIZE + (64u << 20);
	hc.swapdir = swapdir;
	hc.settings.fault_threads = fault_threads;
	err = mv_host_create(&hc, &host);
	if (err) {
		fprintf(stderr,
			"memvisor bench fault: cannot create host: %s\n",
			mv_strerror(err));
		return err;
	}
	mv_vm_config_init(&vc);
	snprintf(vc.name, sizeof(vc.name), "bench-fault-mt");
	vc.memsize_bytes = npages * MV_PAGE_SIZE;
	err = mv_vm_create(host, &vc, &vm);
	if (err) {
		fprintf(stderr, "memvisor bench fault: cannot create VM: %s\n",
			mv_host_errmsg(host));
		goto out_host;
	}
	bench_watch("memvisor, guest threads", npages);
	err = mt_touch(mv_vm_mem(vm), npages, t, us);
	bench_watch(NULL, 0);
	if (!err)
		err = check_pages(mv_vm_mem(vm), npages,
				  "memvisor, guest threads");
	if (!err)
		err = check_stats(vm, npages, "memvisor, guest threads", &fpp);
	mv_vm_destroy(vm);
out_host:
	mv_host_destroy(host);
	return err;
}

/* One trial of the guest-thread figures: kern[g], mv[f][g]. */
static int mt_trial(uint64_t npages, const char *swapdir, double *kern,
		    double mv[MT_NF][MT_NG])
{
	int err = 0;

	for (unsigned g = 0; g < MT_NG && !err; g++) {
		err = mt_kernel(npages, mt_guests[g], &kern[g]);
		for (unsigned f = 0; f < MT_NF && !err; f++)
			err = mt_engine(npages, mt_guests[g], f + 1, swapdir,
					&mv[f][g]);
	}
	return err;
}

/* The guest-thread figures: rows and notes. */
static int mt_report(struct bench_report *r, uint64_t npages, unsigned trials,
		     const char *swapdir)
{
	double *s = calloc((size_t)trials * MT_NG * (1 + MT_NF), sizeof(*s));
	double kern[MT_NG], mv[MT_NF][MT_NG], med[1 + MT_NF][MT_NG];
	int err = 0;

	if (!s)
		return -ENOMEM;
	/* s[(k * MT_NG + g) * trials + t], k = 0 kernel, 1 + f memvisor */
	for (unsigned t = 0; t < trials && !err; t++) {
		err = mt_trial(npages, swapdir, kern, mv);
		for (unsigned g = 0; g < MT_NG && !err; g++) {
			s[(0 * MT_NG + g) * trials + t] = kern[g];
			for (unsigned f = 0; f < MT_NF; f++)
				s[((1 + f) * MT_NG + g) * trials + t] =
					mv[f][g];
		}
	}
	if (err)
		goto out;
	for (unsigned k = 0; k < 1 + MT_NF; k++)
		for (unsigned g = 0; g < MT_NG; g++)
			med[k][g] = bench_median(s + (k * MT_NG + g) * trials,
						 trials);
	for (unsigned g = 0; g < MT_NG; g++) {
		bench_row(r, mt_kernel_key[g], mt_kernel_label[g],
			  s + g * trials, NULL, NULL);
		for (unsigned f = 0; f < MT_NF; f++) {
			bench_row(r, mt_key[f][g], mt_label[f][g],
				  s + ((1 + f) * MT_NG + g) * trials, "kernel",
				  s + g * trials);
			bench_value(r, mt_ratio_key[f][g],
				    med[1 + f][g] / med[0][g]);
		}
		bench_note(
			r,
			"%u guest thread(s): memvisor / kernel first touch %.2fx with 1 fault thread, %.2fx with 2",
			mt_guests[g], med[1][g] / med[0][g],
			med[2][g] / med[0][g]);
	}
out:
	free(s);
	return err;
}

/*
 * The pinned figures (the service beside the vCPUs): the guest thread on
 * one CPU, in address order, one page a fault.
 */
enum pin_figure {
	PIN_KERNEL, /* kernel first touch */
	PIN_SAME, /* raw uffd, the handler on the guest's CPU */
	PIN_OTHER, /* raw uffd, the handler on another CPU */
	PIN_SA0, /* memvisor, Mem.ServiceAffinity=0 */
	PIN_SA1, /* memvisor, Mem.ServiceAffinity=1 */
	PIN_NFIGURES
};

/* The two lowest CPUs this process may use, or -ENODEV and how many. */
static int pin_cpus(int *guest, int *other, int *count)
{
	cpu_set_t cpus;
	int n = 0;

	if (sched_getaffinity(0, sizeof(cpus), &cpus) < 0)
		return -errno;
	*count = CPU_COUNT(&cpus);
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &cpus))
			*(n++ ? other : guest) = c;
	return n == 2 ? 0 : -ENODEV;
}

/* One trial: every pinned figure once, in order or (odd) reversed. */
static int pin_trial(uint64_t npages, const uint8_t *src, const char *swapdir,
		     int cpu, int other, bool reverse, double *us)
{
	const struct pin pins[PIN_NFIGURES] = {
		[PIN_KERNEL] = { cpu, -1, 0 },	 [PIN_SAME] = { cpu, cpu, 0 },
		[PIN_OTHER] = { cpu, other, 0 }, [PIN_SA0] = { cpu, -1, 0 },
		[PIN_SA1] = { cpu, -1, 1 },
	};
	double fpp;
	int err = 0;

	for (unsigned i = 0; i < PIN_NFIGURES && !err; i++) {
		unsigned f = reverse ? PIN_NFIGURES - 1 - i : i;

		if (f == PIN_KERNEL)
			err = kernel_run(npages, &pins[f], &us[f]);
		else if (f == PIN_SAME || f == PIN_OTHER)
			err = uffd_floor(npages, NULL, false, src, &pins[f],
					 &us[f]);
		else
			err = engine_run(npages, 1, NULL, &pins[f], swapdir,
					 &us[f], &fpp);
	}
	return err;
}

/* The pinned figures: rows, values and notes, or a note that they need two
 * CPUs. */
static int pin_report(struct bench_report *r, uint64_t npages, unsigned trials,
		      const uint8_t *src, const char *swapdir)
{
	double us[PIN_NFIGURES], med[PIN_NFIGURES], *s;
	int cpu = -1, other = -1, count = 0, err;

	err = pin_cpus(&cpu, &other, &count);
	if (err == -ENODEV) {
		bench_note(
			r,
			"pinned guest figures skipped: they need two CPUs, and this process may use %d",
			count);
		return 0;
	}
	if (err)
		return err;
	s = calloc((size_t)trials * PIN_NFIGURES, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* s[f * trials + t] */
	for (unsigned t = 0; t < trials && !err; t++) {
		err = pin_trial(npages, src, swapdir, cpu, other, t & 1, us);
		for (unsigned f = 0; f < PIN_NFIGURES && !err; f++)
			s[f * trials + t] = us[f];
	}
	if (err)
		goto out;
	for (unsigned f = 0; f < PIN_NFIGURES; f++)
		med[f] = bench_median(s + f * trials, trials);
	bench_row(r, "pin_kernel", "pinned guest: kernel first touch",
		  s + PIN_KERNEL * trials, NULL, NULL);
	bench_row(r, "pin_floor_same",
		  "pinned guest: uffd floor, handler same CPU",
		  s + PIN_SAME * trials, NULL, NULL);
	bench_row(r, "pin_floor_other",
		  "pinned guest: uffd floor, handler other CPU",
		  s + PIN_OTHER * trials, NULL, NULL);
	bench_row(r, "pin_sa0", "pinned guest: memvisor, ServiceAffinity=0",
		  s + PIN_SA0 * trials, "uffd same CPU", s + PIN_SAME * trials);
	bench_row(r, "pin_sa1", "pinned guest: memvisor, ServiceAffinity=1",
		  s + PIN_SA1 * trials, "uffd same CPU", s + PIN_SAME * trials);
	bench_value(r, "pin_guest_cpu", cpu);
	bench_value(r, "pin_other_cpu", other);
	bench_value(r, "pin_sa1_over_sa0", med[PIN_SA1] / med[PIN_SA0]);
	bench_value(r, "pin_sa0_other_ratio", med[PIN_SA0] / med[PIN_OTHER]);
	bench_value(r, "pin_sa1_other_ratio", med[PIN_SA1] / med[PIN_OTHER]);
	bench_value(r, "pin_other_over_same", med[PIN_OTHER] / med[PIN_SAME]);
	bench_note(
		r,
		"guest pinned to CPU %d, FaultAroundPages=1: ServiceAffinity=1 takes %.2fx the time of =0; the raw handler on CPU %d %.2fx the time of on CPU %d",
		cpu, med[PIN_SA1] / med[PIN_SA0], other,
		med[PIN_OTHER] / med[PIN_SAME], cpu);
	bench_note(
		r,
		"pinned, over the raw handler on the other CPU: ServiceAffinity=0 %.2fx, =1 %.2fx; the raw handler on the same CPU costs %.1fx the kernel's first touch",
		med[PIN_SA0] / med[PIN_OTHER], med[PIN_SA1] / med[PIN_OTHER],
		med[PIN_SAME] / med[PIN_KERNEL]);
out:
	free(s);
	return err;
}

int bench_fault(struct bench_report *r, uint64_t pages, unsigned trials,
		const char *swapdir)
{
	double *samples, *fig[NFIGURES], med[NFIGURES], fpp[NFIGURES] = { 0 };
	uint64_t *order;
	uint8_t *src;
	int err;

	samples = calloc((size_t)trials * NFIGURES, sizeof(*samples));
	order = calloc(pages, sizeof(*order));
	src = aligned_alloc(MV_PAGE_SIZE, MV_PAGE_SIZE);
	if (!samples || !order || !src) {
		err = -ENOMEM;
		goto out;
	}
	memset(src, 0, MV_PAGE_SIZE);
	bench_shuffle(order, pages, SEED);
	for (unsigned t = 0; t < trials; t++) {
		double us[NFIGURES];

		err = trial(pages, order, src, swapdir, us, fpp);
		if (err)
			goto out;
		for (unsigned f = 0; f < NFIGURES; f++)
			samples[(size_t)f * trials + t] = us[f];
	}
	for (unsigned f = 0; f < NFIGURES; f++) {
		fig[f] = samples + (size_t)f * trials;
		med[f] = bench_median(fig[f], trials);
	}

	bench_value(r, "fault_us", med[MV1_SEQ]);
	bench_value(r, "floor_us", med[FLOOR_SEQ]);
	bench_value(r, "ratio", med[MV1_SEQ] / med[FLOOR_SEQ]);
	bench_value(r, "goal_ratio", GOAL_RATIO);
	bench_value(r, "fault1_seq_faults_per_page", fpp[MV1_SEQ]);
	bench_value(r, "fault16_seq_faults_per_page", fpp[MV16_SEQ]);
	bench_value(r, "fault16_rand_faults_per_page", fpp[MV16_RAND]);
	bench_row(r, "floor_seq", "uffd floor: read+COPY 1 page, address order",
		  fig[FLOOR_SEQ], NULL, NULL);
	bench_row(r, "floor_rand", "uffd floor: read+COPY 1 page, random order",
		  fig[FLOOR_RAND], NULL, NULL);
	bench_row(r, "floor_poll", "uffd floor: poll+read+COPY, address order",
		  fig[FLOOR_POLL], NULL, NULL);
	bench_row(r, "kernel", "kernel first touch, no uffd (context)",
		  fig[KERNEL], NULL, NULL);
	bench_row(r, "sigbus_seq", "uffd floor: SIGBUS+COPY in faulting thread",
		  fig[SIGBUS_SEQ], "uffd seq", fig[FLOOR_SEQ]);
	bench_row(r, "fault1_seq",
		  "memvisor, FaultAroundPages=1, address order", fig[MV1_SEQ],
		  "uffd seq", fig[FLOOR_SEQ]);
	bench_row(r, "fault1_rand",
		  "memvisor, FaultAroundPages=1, random order", fig[MV1_RAND],
		  "uffd rand", fig[FLOOR_RAND]);
	bench_row(r, "fault16_seq", "memvisor, FaultAround=16, address order",
		  fig[MV16_SEQ], "uffd seq", fig[FLOOR_SEQ]);
	bench_row(r, "fault16_rand", "memvisor, FaultAround=16, random order",
		  fig[MV16_RAND], "uffd rand", fig[FLOOR_RAND]);
	bench_note(
		r,
		"goal: FaultAroundPages=1 within %.1fx of the raw uffd round trip: %.2fx, %s",
		GOAL_RATIO, med[MV1_SEQ] / med[FLOOR_SEQ],
		med[MV1_SEQ] <= GOAL_RATIO * med[FLOOR_SEQ] ? "met" :
							      "NOT met");
	bench_note(
		r,
		"the raw uffd round trip costs %.1fx the kernel's own first-touch fault",
		med[FLOOR_SEQ] / med[KERNEL]);
	bench_note(
		r,
		"serving the fault in the faulting thread (UFFD_FEATURE_SIGBUS, no context switch) costs %.2fx the raw round trip through a handler thread",
		med[SIGBUS_SEQ] / med[FLOOR_SEQ]);
	bench_note(
		r,
		"uffd events per page (last trial): FaultAroundPages=1 %.3f, =16 address order %.3f, =16 random order %.3f",
		fpp[MV1_SEQ], fpp[MV16_SEQ], fpp[MV16_RAND]);
	err = mt_report(r, pages, trials, swapdir);
	if (!err)
		err = pin_report(r, pages, trials, src, swapdir);
out:
	free(src);
	free(order);
	free(samples);
	return err;
}
