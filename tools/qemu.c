// SPDX-License-Identifier: MIT
/*
 * qemu.c - QEMU guests for memvisor (qemu.h): the command line, the
 * environment that loads the agent, the process, its QMP connection, its
 * bounded stop, and the test guest's verdict in the console file.
 *
 * Design: the command line is built in full before QEMU starts, so a bad
 * setting is an error message, not a QEMU that dies: guest RAM by -m in
 * MiB, -nodefaults and -display none (the only devices are the balloon and
 * the serial port), -no-reboot (a guest that reboots or panics ends QEMU),
 * the serial console to a file, QMP on a Unix socket QEMU listens on, and
 * the balloon as virtio-balloon-pci with id balloon0 and free page reporting
 * on, so the guest's driver both inflates on request and reports the pages
 * its kernel frees.  The accelerator is TCG unless told otherwise (on some
 * hosts /dev/kvm exists but cannot boot a Linux guest, so KVM is never
 * guessed); "kvm:tcg" tries KVM first.
 *
 * QEMU is started with vfork() and execve(): the child shares memvisor's
 * memory until it execs, so the guest memory of thread VMs in this process
 * is never duplicated copy-on-write into a forked child (which would make
 * their pages shared and the engine's page moves fail while it lives).
 * The child makes its own process group (a ^C at the terminal reaches
 * memvisor, which then stops its guests in order, not QEMU directly) and
 * asks for SIGKILL when the thread that started it ends, so a memvisor
 * that dies leaves no guest behind.  A VM pinned to CPUs (cfg->affinity)
 * has the child set that affinity on itself before it execs, so QEMU and
 * every thread it makes (its vCPUs) inherit it; a refused affinity is an
 * error, like a failed exec.  QEMU's own output goes to a log
 * beside the console file, and its last lines are quoted when it dies
 * before its QMP socket answers.
 *
 * Stopping is bounded at every step: QMP quit, then SIGTERM, then SIGKILL,
 * each waited for with a deadline (pidfd and poll()).
 *
 * Invariants: a qemu_vm's process is reaped exactly once (exited is set
 * then); every wait has a deadline; nothing here prints (errors go to the
 * caller's buffer).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qemu.h"
#include "qmp.h"

#ifndef MV_GUEST_DIR
#define MV_GUEST_DIR "build/guest"
#endif

#define QEMU_DEFAULT_BINARY "qemu-system-x86_64"

struct qemu_vm {
	pid_t pid;
	bool exited;
	int status;
	struct qmp *qmp;
	char *qmp_path;
};

static int64_t qemu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void qemu_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int qemu_err(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

int qemu_guest_paths(char *kernel, size_t klen, char *initrd, size_t ilen)
{
	const char *dir = getenv("MEMVISOR_GUEST_DIR");
	int a, b;

	if (!dir || !*dir)
		dir = MV_GUEST_DIR;
	a = snprintf(kernel, klen, "%s/kernel/vmlinuz", dir);
	b = snprintf(initrd, ilen, "%s/initrd.img", dir);
	if (a < 0 || b < 0 || (size_t)a >= klen || (size_t)b >= ilen)
		return -ENAMETOOLONG;
	return 0;
}

void qemu_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* Appends a copy of s (printf-style) to the vector *v of *n strings,
 * keeping it NULL-terminated. */
static int strv_add(char ***v, size_t *n, const char *fmt, ...)
{
	char **nv, *s;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	nv = realloc(*v, (*n + 2) * sizeof(**v));
	if (!nv) {
		free(s);
		return -ENOMEM;
	}
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

int qemu_split_args(const char *s, char ***v, size_t *n, char *err,
		    size_t errlen)
{
	size_t len = s ? strlen(s) : 0;
	char *word = malloc(len + 1);
	int ret = 0;

	if (!word)
		return -ENOMEM;
	while (s && *s) {
		size_t w = 0;
		bool any = false;

		while (isspace((unsigned char)*s))
			s++;
		while (*s && !isspace((unsigned char)*s)) {
			if (*s == '\'' || *s == '"') {
				char q = *s++;
				const char *end = strchr(s, q);

				if (!end) {
					ret = qemu_err(
						err, errlen, -EINVAL,
						"unterminated %c quote in qemu_args",
						q);
					goto out;
				}
				memcpy(word + w, s, (size_t)(end - s));
				w += (size_t)(end - s);
				s = end + 1;
			} else {
				word[w++] = *s++;
			}
			any = true;
		}
		if (!any)
			break;
		word[w] = 0;
		ret = strv_add(v, n, "%s", word);
		if (ret)
			goto out;
	}
out:
	free(word);
	return ret;
}

int qemu_build_argv(const struct qemu_config *cfg, char ***argv, char *err,
		    size_t errlen)
{
	char kernel[PATH_MAX], initrd[PATH_MAX];
	const char *bin = cfg->binary, *accel = cfg->accel;
	char **v = NULL;
	size_t n = 0;
	int ret = 0;

	*argv = NULL;
	if (!cfg->memsize || cfg->memsize % (1u << 20))
		return qemu_err(
			err, errlen, -EINVAL,
			"QEMU guest memory must be a positive multiple of 1 MiB, not %" PRIu64
			" bytes",
			cfg->memsize);
	if (!cfg->console_path || !*cfg->console_path || !cfg->qmp_path ||
	    !*cfg->qmp_path)
		return qemu_err(
			err, errlen, -EINVAL,
			"a QEMU guest needs a console path and a QMP socket path");
	if (strchr(cfg->console_path, ',') || strchr(cfg->qmp_path, ','))
		return qemu_err(
			err, errlen, -EINVAL,
			"QEMU option values cannot hold a comma: '%s', '%s'",
			cfg->console_path, cfg->qmp_path);
	if (strlen(cfg->qmp_path) >= 108)
		return qemu_err(
			err, errlen, -EINVAL,
			"QMP socket path too long for a Unix socket (at most 107 bytes): %s",
			cfg->qmp_path);
	if (!bin)
		bin = getenv("MEMVISOR_QEMU");
	if (!bin || !*bin)
		bin = QEMU_DEFAULT_BINARY;
	if (!accel)
		accel = getenv("MEMVISOR_QEMU_ACCEL");
	if (!accel || !*accel)
		accel = "tcg";
	if (qemu_guest_paths(kernel, sizeof(kernel), initrd, sizeof(initrd)))
		return qemu_err(err, errlen, -ENAMETOOLONG,
				"guest directory path too long");
	if (cfg->kernel)
		snprintf(kernel, sizeof(kernel), "%s", cfg->kernel);
	if (cfg->initrd)
		snprintf(initrd, sizeof(initrd), "%s", cfg->initrd);

	ret = strv_add(&v, &n, "%s", bin);
	if (!ret && cfg->name)
		ret = strv_add(&v, &n, "-name") ?:
			      strv_add(&v, &n, "%s", cfg->name);
	for (const char *a = accel; !ret && *a;) {
		size_t l = strcspn(a, ":");

		if (!l || (strncmp(a, "tcg", l) && strncmp(a, "kvm", l)) ||
		    (l != 3)) {
			ret = qemu_err(
				err, errlen, -EINVAL,
				"bad accelerator list '%s' (expected tcg, kvm or kvm:tcg)",
				accel);
			break;
		}
		ret = strv_add(&v, &n, "-accel") ?:
			      strv_add(&v, &n, "%.*s", (int)l, a);
		a += l;
		if (*a == ':')
			a++;
	}
	if (!ret)
		ret = strv_add(&v, &n, "-m") ?:
			      strv_add(&v, &n, "%" PRIu64 "M", cfg->memsize >> 20) ?:
			      strv_add(&v, &n, "-smp") ?:
			      strv_add(&v, &n, "%u", cfg->cpus ? cfg->cpus : 1) ?:
			      strv_add(&v, &n, "-nodefaults")		     ?:
			      strv_add(&v, &n, "-display")		     ?:
			      strv_add(&v, &n, "none")			     ?:
			      strv_add(&v, &n, "-no-reboot")		     ?:
			      strv_add(&v, &n, "-serial")		     ?:
			      strv_add(&v, &n, "file:%s", cfg->console_path) ?:
			      strv_add(&v, &n, "-qmp")			     ?:
			      strv_add(&v, &n, "unix:%s,server=on,wait=off", cfg->qmp_path) ?:
			      strv_add(&v, &n, "-kernel")    ?:
			      strv_add(&v, &n, "%s", kernel) ?:
			      strv_add(&v, &n, "-initrd")    ?:
			      strv_add(&v, &n, "%s", initrd) ?:
			      strv_add(&v, &n, "-append")    ?:
			      strv_add(&v, &n, "%s", cfg->append ? cfg->append : QEMU_DEFAULT_APPEND) ?:
			      strv_add(&v, &n, "-device") ?:
							    strv_add(
								    &v, &n,
								    "virtio-balloon-pci,id=balloon0,free-page-reporting=on");
	if (!ret && cfg->qemu_args)
		ret = qemu_split_args(cfg->qemu_args, &v, &n, err, errlen);
	if (ret) {
		qemu_strv_free(v);
		if (ret == -ENOMEM)
			qemu_err(err, errlen, ret, "out of memory");
		return ret;
	}
	*argv = v;
	return 0;
}

static bool env_is(const char *entry, const char *name)
{
	size_t l = strlen(name);

	return !strncmp(entry, name, l) && entry[l] == '=';
}

int qemu_build_env(const struct qemu_config *cfg, char ***envp)
{
	static const char *const ours[] = {
		"LD_PRELOAD",	    "MEMVISOR_RAM_BYTES", "MEMVISOR_SOCKET",
		"MEMVISOR_VM_NAME", "MEMVISOR_QMP",	  "MEMVISOR_SWAP_DIR",
		"MEMVISOR_LOG",	    "MEMVISOR_MEMSIZE",	  "MEMVISOR_SETTINGS",
	};
	char **v = NULL;
	size_t n = 0;
	int ret = 0;

	*envp = NULL;
	for (char **e = environ; e && *e && !ret; e++) {
		bool skip = false;

		for (size_t i = 0;
		     cfg->preload && i < sizeof(ours) / sizeof(*ours); i++)
			skip |= env_is(*e, ours[i]);
		if (!skip)
			ret = strv_add(&v, &n, "%s", *e);
	}
	if (!ret && cfg->preload) {
		ret = strv_add(&v, &n, "LD_PRELOAD=%s", cfg->preload) ?:
			      strv_add(&v, &n, "MEMVISOR_RAM_BYTES=%" PRIu64, cfg->memsize) ?:
			      strv_add(&v, &n, "MEMVISOR_QMP=%s",
				       cfg->qmp_path);
		if (!ret && cfg->name)
			ret = strv_add(&v, &n, "MEMVISOR_VM_NAME=%s",
				       cfg->name);
		if (!ret && cfg->agent_socket)
			ret = strv_add(&v, &n, "MEMVISOR_SOCKET=%s",
				       cfg->agent_socket);
		if (!ret && cfg->swapdir)
			ret = strv_add(&v, &n, "MEMVISOR_SWAP_DIR=%s",
				       cfg->swapdir);
		if (!ret && cfg->agent_log)
			ret = strv_add(&v, &n, "MEMVISOR_LOG=%s",
				       cfg->agent_log);
		if (!ret && cfg->agent_settings && *cfg->agent_settings)
			ret = strv_add(&v, &n, "MEMVISOR_SETTINGS=%s",
				       cfg->agent_settings);
		if (!ret && cfg->agent_memsize)
			ret = strv_add(&v, &n, "MEMVISOR_MEMSIZE=%" PRIu64,
				       cfg->agent_memsize);
	}
	if (!ret && !v)
		ret = strv_add(&v, &n, "PATH=/usr/bin:/bin") ? -ENOMEM : 0;
	if (ret) {
		qemu_strv_free(v);
		return ret;
	}
	*envp = v;
	return 0;
}

/* The binary as execve needs it: itself if it has a slash, else the first
 * executable of that name in PATH. */
static int resolve_binary(const char *bin, char *out, size_t len)
{
	const char *path = getenv("PATH");

	if (strchr(bin, '/')) {
		snprintf(out, len, "%s", bin);
		return access(out, X_OK) ? -errno : 0;
	}
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t l = strcspn(path, ":");

		snprintf(out, len, "%.*s/%s", (int)l, l ? path : ".", bin);
		if (!access(out, X_OK))
			return 0;
		path += l;
		if (*path == ':')
			path++;
	}
	return -ENOENT;
}

/* The last lines of QEMU's log, joined into one line for a message. */
static void log_tail(const char *path, char *buf, size_t len)
{
	char raw[600];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t n = 0;

	buf[0] = 0;
	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	if (end > 0) {
		off_t from = end > (off_t)sizeof(raw) - 1 ?
				     end - (off_t)sizeof(raw) + 1 :
				     0;

		n = pread(fd, raw, sizeof(raw) - 1, from);
	}
	close(fd);
	if (n <= 0)
		return;
	raw[n] = 0;
	while (n && isspace((unsigned char)raw[n - 1]))
		raw[--n] = 0;
	for (char *p = raw; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	{
		size_t l = strlen(raw), from = l >= len ? l - len + 1 : 0;

		memcpy(buf, raw + from, l - from + 1);
	}
}

/* What the vfork()ed child reports back: why it did not exec. */
struct child_err {
	volatile int exec_errno; /* execve failed */
	volatile int affinity_errno; /* sched_setaffinity failed */
};

/* The vfork()ed child: only system calls until execve. */
static void __attribute__((noinline))
qemu_child(const char *bin, char **argv, char **envp, int logfd, int nullfd,
	   pid_t parent, const cpu_set_t *affinity, struct child_err *ce)
{
	sigset_t none;

	/* the child is a task of its own: this pins it, not memvisor */
	if (affinity && sched_setaffinity(0, sizeof(*affinity), affinity)) {
		ce->affinity_errno = errno;
		_exit(127);
	}
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	dup2(nullfd, 0);
	dup2(logfd, 1);
	dup2(logfd, 2);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(bin, argv, envp);
	ce->exec_errno = errno;
	_exit(127);
}

/* Starts the child; its pid, or -1 with errno. */
static pid_t __attribute__((noinline))
qemu_spawn(const char *bin, char **argv, char **envp, int logfd, int nullfd,
	   const cpu_set_t *affinity, struct child_err *ce)
{
	pid_t parent = getpid();
	pid_t pid = vfork();

	if (pid == 0)
		qemu_child(bin, argv, envp, logfd, nullfd, parent, affinity,
			   ce);
	return pid;
}

static void reap(struct qemu_vm *vm, int status)
{
	vm->exited = true;
	vm->status = status;
	qmp_close(vm->qmp);
	vm->qmp = NULL;
}

bool qemu_running(struct qemu_vm *vm)
{
	int status;
	pid_t r;

	if (vm->exited)
		return false;
	r = waitpid(vm->pid, &status, WNOHANG);
	if (r == vm->pid || (r < 0 && errno == ECHILD)) {
		reap(vm, r == vm->pid ? status : 0);
		return false;
	}
	return true;
}

int qemu_wait(struct qemu_vm *vm, unsigned timeout_ms, int *status)
{
	int64_t deadline = qemu_now_ms() + timeout_ms;
	int pfd = (int)syscall(SYS_pidfd_open, vm->pid, 0);

	while (qemu_running(vm)) {
		int64_t left = deadline - qemu_now_ms();

		if (left <= 0) {
			if (pfd >= 0)
				close(pfd);
			return -ETIMEDOUT;
		}
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };

			poll(&p, 1, left > 1000 ? 1000 : (int)left);
		} else {
			qemu_sleep_ms(left > 20 ? 20 : (unsigned)left);
		}
	}
	if (pfd >= 0)
		close(pfd);
	if (status)
		*status = vm->status;
	return 0;
}

int qemu_start(const struct qemu_config *cfg, unsigned timeout_ms,
	       struct qemu_vm **out, char *err, size_t errlen)
{
	int64_t deadline = qemu_now_ms() + timeout_ms;
	char bin[PATH_MAX], logbuf[PATH_MAX], tail[400];
	const char *log = cfg->log_path;
	char **argv = NULL, **envp = NULL;
	struct child_err ce = { 0, 0 };
	struct qemu_vm *vm;
	int ret, logfd, nullfd;
	pid_t pid;

	*out = NULL;
	ret = qemu_build_argv(cfg, &argv, err, errlen);
	if (ret)
		return ret;
	ret = resolve_binary(argv[0], bin, sizeof(bin));
	if (ret) {
		qemu_err(err, errlen, ret, "cannot run QEMU '%s': %s", argv[0],
			 strerror(-ret));
		qemu_strv_free(argv);
		return ret;
	}
	ret = qemu_build_env(cfg, &envp);
	vm = calloc(1, sizeof(*vm));
	if (ret || !vm || !(vm->qmp_path = strdup(cfg->qmp_path))) {
		qemu_strv_free(argv);
		qemu_strv_free(envp);
		if (vm)
			free(vm->qmp_path);
		free(vm);
		return qemu_err(err, errlen, -ENOMEM, "out of memory");
	}
	if (!log) {
		snprintf(logbuf, sizeof(logbuf), "%s.qemu.log",
			 cfg->console_path);
		log = logbuf;
	}
	unlink(cfg->qmp_path); /* a stale socket would refuse connections */
	logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (logfd < 0 || nullfd < 0) {
		ret = -errno;
		qemu_err(err, errlen, ret, "cannot open QEMU's log %s: %s", log,
			 strerror(-ret));
		goto fail_fds;
	}
	pid = qemu_spawn(bin, argv, envp, logfd, nullfd, cfg->affinity, &ce);
	if (pid < 0) {
		ret = -errno;
		qemu_err(err, errlen, ret, "cannot start QEMU: %s",
			 strerror(-ret));
		goto fail_fds;
	}
	vm->pid = pid;
	close(logfd);
	close(nullfd);
	qemu_strv_free(argv);
	qemu_strv_free(envp);
	if (ce.affinity_errno) {
		qemu_wait(vm, 1000, NULL);
		ret = -ce.affinity_errno;
		qemu_err(err, errlen, ret,
			 "cannot pin QEMU to its CPUs: sched_setaffinity: %s",
			 strerror(ce.affinity_errno));
		qemu_destroy(vm);
		return ret;
	}
	if (ce.exec_errno) {
		qemu_wait(vm, 1000, NULL);
		ret = -ce.exec_errno;
		qemu_err(err, errlen, ret, "cannot run QEMU '%s': %s", bin,
			 strerror(ce.exec_errno));
		qemu_destroy(vm);
		return ret;
	}

	/* QEMU creates its QMP socket once it has read its command line */
	for (;;) {
		int64_t left = deadline - qemu_now_ms();

		if (!qemu_running(vm)) {
			log_tail(log, tail, sizeof(tail));
			ret = qemu_err(
				err, errlen, -ECHILD,
				"QEMU exited (status %d) before its QMP socket answered: %s",
				WIFEXITED(vm->status) ?
					WEXITSTATUS(vm->status) :
					128 + WTERMSIG(vm->status),
				tail[0] ? tail : "(no output)");
			qemu_destroy(vm);
			return ret;
		}
		if (left <= 0) {
			ret = qemu_err(
				err, errlen, -ETIMEDOUT,
				"QEMU's QMP socket %s did not answer within %u ms",
				cfg->qmp_path, timeout_ms);
			qemu_destroy(vm);
			return ret;
		}
		ret = qmp_connect(cfg->qmp_path, (unsigned)left, &vm->qmp);
		if (!ret)
			break;
		if (ret != -ENOENT && ret != -ECONNREFUSED) {
			qemu_err(err, errlen, ret, "QMP at %s: %s",
				 cfg->qmp_path, strerror(-ret));
			qemu_destroy(vm);
			return ret;
		}
		qemu_sleep_ms(20);
	}
	*out = vm;
	return 0;

fail_fds:
	if (logfd >= 0)
		close(logfd);
	if (nullfd >= 0)
		close(nullfd);
	qemu_strv_free(argv);
	qemu_strv_free(envp);
	free(vm->qmp_path);
	free(vm);
	return ret;
}

pid_t qemu_pid(const struct qemu_vm *vm)
{
	return vm->pid;
}

struct qmp *qemu_qmp(struct qemu_vm *vm)
{
	return vm->qmp;
}

int qemu_stop(struct qemu_vm *vm, unsigned timeout_ms)
{
	unsigned quit_ms = timeout_ms / 2, term_ms = timeout_ms / 4;
	unsigned kill_ms = timeout_ms - quit_ms - term_ms;

	if (!qemu_running(vm))
		return QEMU_EXITED;
	if (vm->qmp) {
		int64_t t0 = qemu_now_ms();

		if (!qmp_quit(vm->qmp, quit_ms)) {
			int64_t spent = qemu_now_ms() - t0;

			if (spent < quit_ms &&
			    !qemu_wait(vm, quit_ms - (unsigned)spent, NULL))
				return QEMU_QUIT;
		}
	}
	if (!qemu_running(vm))
		return QEMU_QUIT;
	kill(vm->pid, SIGTERM);
	if (!qemu_wait(vm, term_ms, NULL))
		return QEMU_TERMINATED;
	kill(vm->pid, SIGKILL);
	/* SIGKILL cannot be refused; the wait is only for the exit to be
	 * reaped, so it gets at least a few seconds */
	if (!qemu_wait(vm, kill_ms > 5000 ? kill_ms : 5000, NULL))
		return QEMU_KILLED;
	return -ETIMEDOUT;
}

void qemu_destroy(struct qemu_vm *vm)
{
	if (!vm)
		return;
	if (qemu_running(vm))
		qemu_stop(vm, 10000);
	qmp_close(vm->qmp);
	unlink(vm->qmp_path);
	free(vm->qmp_path);
	free(vm);
}

bool qemu_parse_verdict_line(const char *line, struct qemu_verdict *v)
{
	const char *p = strstr(line, "MVGUEST verdict=");
	unsigned long long pages, errors, checks;
	char word[16];
	double secs;

	if (!p)
		return false;
	if (sscanf(p,
		   "MVGUEST verdict=%15[a-z] pages=%llu errors=%llu checks=%llu secs=%lf",
		   word, &pages, &errors, &checks, &secs) != 5)
		return false;
	if (strcmp(word, "ok") && strcmp(word, "fail"))
		return false;
	v->found = true;
	v->ok = !strcmp(word, "ok") && errors == 0;
	v->pages = pages;
	v->errors = errors;
	v->checks = checks;
	v->secs = secs;
	return true;
}

int qemu_read_verdict(const char *console_path, struct qemu_verdict *v)
{
	FILE *f = fopen(console_path, "re");
	char *line = NULL;
	size_t cap = 0;
	unsigned rounds = 0;

	memset(v, 0, sizeof(*v));
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) >= 0) {
		struct qemu_verdict one = { 0 };

		if (strstr(line, "MVGUEST round="))
			rounds++;
		if (qemu_parse_verdict_line(line, &one))
			*v = one; /* the last one counts */
	}
	free(line);
	fclose(f);
	v->rounds = rounds;
	return 0;
}
