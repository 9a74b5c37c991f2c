// SPDX-License-Identifier: MIT
/*
 * guarded.c - guest memory accesses that survive a memory error.
 *
 * Design: memvisor poisons a page whose content it could not read back
 * (a swap or image read that keeps failing): touching it raises SIGBUS at
 * its address, as failed RAM does on a real machine.  A guest workload
 * must then report the page, not die nor hang, so each access to guest
 * memory is made through mvg_guarded(): a SIGBUS handler, installed by
 * mvg_guarded_init() when a workload starts and before it verifies (again
 * if something replaced it meanwhile), jumps back out of an armed access,
 * which returns -EFAULT.  A SIGBUS outside an armed access goes to whatever
 * handled it before (by default, the process ends).
 *
 * Invariants: the jump buffer and the armed flag are the thread's own; the
 * handler runs with SIGBUS unblocked (SA_NODEFER), and after a jump out of
 * it SIGBUS is unblocked again in any case (a sanitizer's handler, which
 * calls ours, blocks it), so every later memory error is caught too.
 *
 * Lock ordering: none.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

#include "guarded.h"

static _Thread_local sigjmp_buf bus_jmp;
static _Thread_local volatile sig_atomic_t bus_armed;
static struct sigaction bus_old;
static pthread_mutex_t bus_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	if (bus_armed) {
		bus_armed = 0;
		siglongjmp(bus_jmp, 1);
	}
	if ((bus_old.sa_flags & SA_SIGINFO) && bus_old.sa_sigaction)
		bus_old.sa_sigaction(sig, si, uc);
	else if (bus_old.sa_handler != SIG_DFL && bus_old.sa_handler != SIG_IGN)
		bus_old.sa_handler(sig);
	else
		signal(SIGBUS, SIG_DFL); /* the access, repeated, kills */
}

void mvg_guarded_init(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus,
				.sa_flags = SA_SIGINFO | SA_NODEFER },
			 cur;

	pthread_mutex_lock(&bus_lock);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, NULL, &cur) == 0 &&
	    !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus))
		sigaction(SIGBUS, &sa, &bus_old);
	pthread_mutex_unlock(&bus_lock);
}

int mvg_guarded(void (*fn)(void *), void *arg)
{
	sigset_t bus;

	if (sigsetjmp(bus_jmp, 0)) {
		/* the jump skipped the handler's return: SIGBUS may still be
		 * blocked (a sanitizer's own handler blocks it), and the next
		 * one would then kill the process */
		sigemptyset(&bus);
		sigaddset(&bus, SIGBUS);
		pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
		return -EFAULT;
	}
	bus_armed = 1;
	fn(arg);
	bus_armed = 0;
	return 0;
}

struct cmp {
	const void *guest, *want;
	size_t len;
	int diff;
};

static void do_cmp(void *arg)
{
	struct cmp *c = arg;

	c->diff = !!memcmp(c->guest, c->want, c->len);
}

int mvg_guarded_cmp(const void *guest, const void *want, size_t len)
{
	struct cmp c = { guest, want, len, 0 };
	int err = mvg_guarded(do_cmp, &c);

	return err ? err : c.diff;
}

struct copy {
	void *guest;
	const void *src;
	size_t len;
};

static void do_copy(void *arg)
{
	struct copy *c = arg;

	memcpy(c->guest, c->src, c->len);
}

int mvg_guarded_copy(void *guest, const void *src, size_t len)
{
	struct copy c = { guest, src, len };

	return mvg_guarded(do_copy, &c);
}
