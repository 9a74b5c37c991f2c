// SPDX-License-Identifier: MIT
/*
 * preload.c - libmemvisor-preload.so: memvisor under an unmodified QEMU
 * (LD_PRELOAD), an API user like any VMM (docs/VMM.md).
 *
 * Design.  QEMU maps guest RAM with a PROT_NONE reservation and then a
 * MAP_FIXED private anonymous read/write mapping of exactly the RAM size
 * (mmap64).  This library interposes mmap and mmap64: it lets the real
 * call happen, and the first such mapping whose length equals
 * MEMVISOR_RAM_BYTES becomes the guest memory of a VM attached to it
 * (cfg.mem) on a host of its own, before QEMU has written a byte into it.
 * Environment:
 *   MEMVISOR_RAM_BYTES  the guest RAM size, as -m (bytes, or K/M/G); unset:
 *                       this library does nothing at all
 *   MEMVISOR_MEMSIZE    the local budget while no daemon manages the VM
 *                       (default: the RAM size, no overcommit)
 *   MEMVISOR_SWAP_DIR   swap file directory (default /var/tmp/memvisor)
 *   MEMVISOR_VM_NAME    the VM's name (default qemu-PID)
 *   MEMVISOR_SETTINGS   "Mem.X=v;Mem.Y=w" (';' or ','): host settings by
 *                       ESX name; a pair refused is logged and ignored
 *   MEMVISOR_SOCKET     the host daemon's socket: an agent
 *                       (mv_agent_create) makes the VM one of the
 *                       daemon's, its budget the daemon's grant
 *   MEMVISOR_QMP        QEMU's QMP socket, passed to the daemon by the
 *                       agent (for the balloon)
 *   MEMVISOR_LOG        file the agent's lines go to (appended); unset:
 *                       none.  Nothing is ever printed to QEMU's stdout
 *                       or stderr.
 * It interposes madvise: QEMU gives guest pages back (balloon inflation,
 * free page reporting, ram_block_discard_range) with
 * madvise(MADV_DONTNEED); on guest RAM that would drop frames behind the
 * engine's back, so MADV_DONTNEED, MADV_DONTNEED_LOCKED and MADV_FREE
 * inside guest RAM become mv_vm_discard() (the parts of the range outside
 * it go to the real call), and the call returns 0 as the real one would.
 * MADV_HUGEPAGE, MADV_COLLAPSE, MADV_MERGEABLE and MADV_PAGEOUT on guest RAM
 * are ignored (0): memvisor makes large pages, shares and reclaims
 * itself.  MADV_REMOVE and everything else go to the real call (on
 * private anonymous memory MADV_REMOVE fails with EINVAL, doing nothing).
 * The engine's own calls (it is linked into this library) are bound to
 * the real functions at link time (-Wl,--wrap: __wrap_mmap below), so it
 * never goes through these interposers.  munmap of guest RAM, or a new
 * MAP_FIXED mapping over it, first ends the VM: an unmap discards all of
 * it and destroys the VM (the bytes are going away); a mapping over it
 * destroys the VM, which puts every page back, and the RAM is plain
 * memory from then on.  At exit nothing is done: the process's end frees
 * everything, swap files included (they have no name); the VM's figures
 * are logged.
 *
 * Failure: any failure to attach (no userfaultfd, a bad setting, a swap
 * directory that cannot be used) leaves the RAM as QEMU mapped it, plain
 * memory, and says why in the log; QEMU is never aborted.
 *
 * Invariants: vm is set only while the attached mapping exists; madvise
 * holds vm_lock shared while it uses vm, whoever ends the VM holds it
 * exclusively.
 *
 * Locks: attach_lock (one attach), then vm_lock.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memvisor.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);

/* the interposers mmap, mmap64, madvise, munmap (declared by sys/mman.h)
 * are exported by the version script; what the engine's calls are bound to (-Wl,--wrap) */
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd,
		    off_t off);
int __wrap_madvise(void *addr, size_t len, int advice);
int __wrap_munmap(void *addr, size_t len);

static mmap_fn real_mmap_p, real_mmap64_p;
static int (*real_madvise_p)(void *, size_t, int);
static int (*real_munmap_p)(void *, size_t);

static uint64_t want_ram; /* MEMVISOR_RAM_BYTES; 0: off; set once */
static int log_fd = -1;

static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;
static bool tried; /* under attach_lock */
static pthread_rwlock_t vm_lock = PTHREAD_RWLOCK_INITIALIZER;
static mv_host *host; /* under vm_lock */
static mv_vm *vm;
static mv_agent *agent; /* NULL: no daemon socket given */
static uintptr_t ram; /* the attached mapping, while vm is set */
static uint64_t ram_len;

/* ---- the real calls ---- */

static void resolve(void)
{
	if (!real_mmap_p)
		real_mmap_p = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
	if (!real_mmap64_p)
		real_mmap64_p = (mmap_fn)dlsym(RTLD_NEXT, "mmap64");
	if (!real_madvise_p)
		real_madvise_p = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT,
								     "madvise");
	if (!real_munmap_p)
		real_munmap_p =
			(int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
}

/* Each falls back to the system call if dlsym found nothing. */
static void *real_mmap(mmap_fn f, void *addr, size_t len, int prot, int flags,
		       int fd, off_t off)
{
	if (f)
		return f(addr, len, prot, flags, fd, off);
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static int real_madvise(void *addr, size_t len, int advice)
{
	if (!real_madvise_p)
		resolve();
	if (real_madvise_p)
		return real_madvise_p(addr, len, advice);
	return (int)syscall(SYS_madvise, addr, len, advice);
}

static int real_munmap(void *addr, size_t len)
{
	if (!real_munmap_p)
		resolve();
	if (real_munmap_p)
		return real_munmap_p(addr, len);
	return (int)syscall(SYS_munmap, addr, len);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off)
{
	if (!real_mmap_p)
		resolve();
	return real_mmap(real_mmap_p, addr, len, prot, flags, fd, off);
}

void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd,
		    off_t off)
{
	if (!real_mmap64_p)
		resolve();
	return real_mmap(real_mmap64_p, addr, len, prot, flags, fd, off);
}

int __wrap_madvise(void *addr, size_t len, int advice)
{
	return real_madvise(addr, len, advice);
}

int __wrap_munmap(void *addr, size_t len)
{
	return real_munmap(addr, len);
}

/* ---- the log ---- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	va_list ap;
	int n, m;

	if (log_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof(line),
		     "%lld.%03ld memvisor[%d]: ", (long long)ts.tv_sec,
		     ts.tv_nsec / 1000000L, (int)getpid());
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n += m < 0			    ? 0 :
	     m >= (int)sizeof(line) - n - 1 ? (int)sizeof(line) - n - 2 :
					      m;
	line[n++] = '\n';
	if (write(log_fd, line, (size_t)n) < 0) {
		/* nowhere else to say it: QEMU's output is not ours */
	}
}

static void host_log(void *arg, enum mv_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info" };

	(void)arg;
	say("%s: %s", names[level <= MV_LOG_INFO ? level : MV_LOG_INFO], msg);
}

/* ---- configuration ---- */

/* Bytes, with an optional K/M/G/T suffix (binary); 0 if malformed. */
static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'K':
	case 'k':
		v <<= 10;
		end++;
		break;
	case 'M':
	case 'm':
		v <<= 20;
		end++;
		break;
	case 'G':
	case 'g':
		v <<= 30;
		end++;
		break;
	case 'T':
	case 't':
		v <<= 40;
		end++;
		break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	return *end ? 0 : v;
}

/*
 * MEMVISOR_SETTINGS: "Mem.X=v;Mem.Y=w" (';' or ','), each set with
 * mv_settings_set and said in the log; a pair it refuses is said and
 * ignored, the others still apply.
 */
static void apply_settings(struct mv_settings *s, const char *text)
{
	char buf[1024], *save = NULL, *item, *eq;

	if (!text || !*text)
		return;
	if (strlen(text) >= sizeof(buf)) {
		say("MEMVISOR_SETTINGS is longer than %zu bytes: ignored",
		    sizeof(buf) - 1);
		return;
	}
	strcpy(buf, text);
	for (item = strtok_r(buf, ";,", &save); item;
	     item = strtok_r(NULL, ";,", &save)) {
		while (*item == ' ')
			item++;
		if (!*item)
			continue;
		eq = strchr(item, '=');
		if (eq)
			*eq = '\0';
		if (!eq || mv_settings_set(s, item, eq + 1)) {
			say("MEMVISOR_SETTINGS: cannot set %s%s%s (unknown name or value out of range): ignored",
			    item, eq ? "=" : "", eq ? eq + 1 : "");
			continue;
		}
		say("MEMVISOR_SETTINGS: set %s=%s", item, eq + 1);
	}
}

__attribute__((constructor)) static void preload_init(void)
{
	const char *path = getenv("MEMVISOR_LOG"), *ram_env;

	resolve();
	if (path && *path)
		log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			      0644);
	ram_env = getenv("MEMVISOR_RAM_BYTES");
	want_ram = parse_size(ram_env);
	if (!ram_env)
		return;
	if (!want_ram || want_ram % MV_PAGE_SIZE)
		say("MEMVISOR_RAM_BYTES=%s is not a size in whole 4 KiB pages: guest RAM stays unmanaged",
		    ram_env);
	else
		say("loaded: waiting for the guest RAM mapping of %llu bytes",
		    (unsigned long long)want_ram);
	if (want_ram % MV_PAGE_SIZE)
		want_ram = 0;
}

/* ---- attach and detach ---- */

static void attach(void *p, uint64_t len)
{
	const char *budget = getenv("MEMVISOR_MEMSIZE"),
		   *dir = getenv("MEMVISOR_SWAP_DIR"),
		   *name = getenv("MEMVISOR_VM_NAME"),
		   *sock = getenv("MEMVISOR_SOCKET");
	struct mv_host_config hc;
	struct mv_vm_config vc;
	mv_host *h = NULL;
	mv_agent *a = NULL;
	mv_vm *v = NULL;
	int err;

	pthread_mutex_lock(&attach_lock);
	if (tried) {
		pthread_mutex_unlock(&attach_lock);
		return;
	}
	tried = true;
	mv_host_config_init(&hc);
	hc.memsize_bytes = budget ? parse_size(budget) : len;
	hc.log = host_log;
	if (dir && *dir)
		hc.swapdir = dir;
	else if (mkdir(hc.swapdir, 0700) < 0 && errno != EEXIST)
		say("cannot create %s: %s", hc.swapdir, strerror(errno));
	if (!hc.memsize_bytes) {
		say("MEMVISOR_MEMSIZE=%s is not a size: guest RAM stays unmanaged",
		    budget);
		goto out;
	}
	apply_settings(&hc.settings, getenv("MEMVISOR_SETTINGS"));
	err = mv_host_create(&hc, &h);
	if (err) {
		say("cannot create the host: %s (%s): guest RAM stays unmanaged",
		    mv_host_errmsg(NULL), mv_strerror(err));
		goto out;
	}
	mv_vm_config_init(&vc);
	if (name && *name && !strchr(name, '/'))
		snprintf(vc.name, sizeof(vc.name), "%s", name);
	else
		snprintf(vc.name, sizeof(vc.name), "qemu-%d", (int)getpid());
	vc.memsize_bytes = len;
	vc.mem = p;
	err = mv_vm_create(h, &vc, &v);
	if (err) {
		say("cannot attach guest RAM at %p: %s (%s): guest RAM stays unmanaged",
		    p, mv_host_errmsg(h), mv_strerror(err));
		mv_host_destroy(h);
		goto out;
	}
	/* the daemon's grant sizes this host's budget from its WELCOME on;
	 * unreachable, the agent says so in the log, the VM runs on the
	 * local budget and the agent retries (never waits here) */
	if (sock && *sock) {
		err = mv_agent_create(h, v, sock, &a);
		if (err)
			say("cannot start the agent for the daemon at %s: %s (%s): running on the local budget",
			    sock, mv_host_errmsg(h), mv_strerror(err));
	}
	pthread_rwlock_wrlock(&vm_lock);
	host = h;
	vm = v;
	agent = a;
	ram = (uintptr_t)p;
	ram_len = len;
	pthread_rwlock_unlock(&vm_lock);
	say("attached guest RAM at %p, %llu MiB, as VM %s: budget %llu MiB, swap in %s",
	    p, (unsigned long long)(len >> 20), vc.name,
	    (unsigned long long)(hc.memsize_bytes >> 20), hc.swapdir);
out:
	pthread_mutex_unlock(&attach_lock);
}

static bool overlaps_ram(uintptr_t a, uint64_t len)
{
	return vm && a < ram + ram_len && a + len > ram;
}

static void say_stats(const char *why)
{
	struct mv_vm_stats st;

	if (mv_vm_stats(vm, &st))
		return;
	say("VM %s ends (%s): faults %llu, swapped out %llu, swapped in %llu, compressed %llu decompressed %llu, zero pages %llu, shared %llu, discarded %llu pages (%llu frames freed), consumed %llu of %llu pages",
	    st.name, why, (unsigned long long)st.faults,
	    (unsigned long long)st.swapout_pages,
	    (unsigned long long)st.swapin_pages,
	    (unsigned long long)st.zip_pages,
	    (unsigned long long)st.unzip_pages,
	    (unsigned long long)st.zero_pages,
	    (unsigned long long)st.shrd_pages,
	    (unsigned long long)st.discard_pages,
	    (unsigned long long)st.discard_frames_freed,
	    (unsigned long long)st.consumed_pages,
	    (unsigned long long)st.memsz_pages);
}

/* Ends the VM (vm_lock held exclusively): gone = the bytes are going
 * away (munmap), so nothing is put back. */
static void detach_locked(bool gone, const char *why)
{
	if (!vm)
		return;
	say_stats(why); /* before the discard of it all, which is ours */
	mv_agent_destroy(agent); /* its grant goes back to the daemon */
	agent = NULL;
	if (gone)
		mv_vm_discard(vm, 0, ram_len);
	mv_vm_destroy(vm);
	mv_host_destroy(host);
	vm = NULL;
	host = NULL;
	say("guest RAM at %#lx is plain memory again (%s)", (unsigned long)ram,
	    why);
	ram = 0;
	ram_len = 0;
}

static void detach_if_over(uintptr_t a, uint64_t len, bool gone,
			   const char *why)
{
	pthread_rwlock_wrlock(&vm_lock);
	if (overlaps_ram(a, len))
		detach_locked(gone, why);
	pthread_rwlock_unlock(&vm_lock);
}

/* At exit: the VM's figures into the log, nothing else (the process's
 * end frees the rest; its other threads may still be touching RAM). */
__attribute__((destructor)) static void preload_fini(void)
{
	if (pthread_rwlock_tryrdlock(&vm_lock))
		return;
	if (vm)
		say_stats("process exit");
	pthread_rwlock_unlock(&vm_lock);
}

/* ---- the interposers ---- */

static bool is_guest_ram(size_t len, int prot, int flags, int fd)
{
	return want_ram && len == want_ram && (flags & MAP_FIXED) &&
	       (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
	       fd == -1 && prot == (PROT_READ | PROT_WRITE);
}

static void *interpose_mmap(mmap_fn f, void *addr, size_t len, int prot,
			    int flags, int fd, off_t off)
{
	void *p;

	if (want_ram && (flags & MAP_FIXED))
		detach_if_over((uintptr_t)addr, len, false,
			       "a new mapping over guest RAM");
	p = real_mmap(f, addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED && !tried && is_guest_ram(len, prot, flags, fd))
		attach(p, len);
	return p;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!real_mmap_p)
		resolve();
	return interpose_mmap(real_mmap_p, addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!real_mmap64_p)
		resolve();
	return interpose_mmap(real_mmap64_p, addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
	if (want_ram)
		detach_if_over((uintptr_t)addr, len, true,
			       "guest RAM unmapped");
	return real_munmap(addr, len);
}

/* The part of guest RAM the advice covers: what QEMU means by it. */
static int advise_ram(uintptr_t lo, uintptr_t hi, int advice)
{
	static atomic_bool said[64];
	int err;

	switch (advice) {
	case MADV_DONTNEED:
	case MADV_DONTNEED_LOCKED:
	case MADV_FREE:
		err = mv_vm_discard(vm, lo - ram, hi - lo);
		if (err) {
			say("discard of %llu bytes at guest offset %#llx: %s (%s); those pages keep their content",
			    (unsigned long long)(hi - lo),
			    (unsigned long long)(lo - ram), mv_strerror(err),
			    mv_host_errmsg(host));
			errno = EAGAIN;
			return -1;
		}
		return 0;
	case MADV_HUGEPAGE:
	case MADV_COLLAPSE:
	case MADV_MERGEABLE:
	case MADV_PAGEOUT:
		if (!atomic_exchange(&said[advice], true)) {
			say("madvise advice %d on guest RAM ignored: memvisor makes large pages, shares and reclaims itself",
			    advice);
		}
		return 0;
	default:
		return real_madvise((void *)lo, hi - lo, advice);
	}
}

int madvise(void *addr, size_t len, int advice)
{
	uintptr_t a = (uintptr_t)addr, e, lo, hi;
	int ret = 0, saved = 0;

	if (!want_ram || a % MV_PAGE_SIZE || !len)
		return real_madvise(addr, len, advice);
	e = a + ((len + MV_PAGE_SIZE - 1) & ~(uintptr_t)(MV_PAGE_SIZE - 1));
	pthread_rwlock_rdlock(&vm_lock);
	if (e < a || !overlaps_ram(a, e - a)) {
		pthread_rwlock_unlock(&vm_lock);
		return real_madvise(addr, len, advice);
	}
	lo = a > ram ? a : ram;
	hi = e < ram + ram_len ? e : ram + ram_len;
	if (a < lo && real_madvise(addr, lo - a, advice)) {
		ret = -1;
		saved = errno;
	}
	if (hi < e && real_madvise((void *)hi, e - hi, advice)) {
		ret = -1;
		saved = errno;
	}
	if (advise_ram(lo, hi, advice)) {
		ret = -1;
		saved = errno;
	}
	pthread_rwlock_unlock(&vm_lock);
	if (ret)
		errno = saved;
	return ret;
}
