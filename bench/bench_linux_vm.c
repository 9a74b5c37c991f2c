// SPDX-License-Identifier: MIT
/*
 * bench_linux_vm.c - the runs of `memvisor bench linux`: a case's VMs as
 * Linux processes on plain anonymous memory, and the same case under
 * memvisor through `memvisor run`.
 *
 * Design: on the Linux side each VM is one process, as each VM is one VMM
 * process on a real host: forked from this (single-threaded) process, it
 * joins the cgroup before it touches anything, pins itself to the VM's
 * cpus if the scenario gives it some (as memvisor pins the VM's guest
 * threads), maps its guest memory private and anonymous, loads its RAM
 * image if it has one (the non-zero pages, as a restore does; the clock
 * is already running), runs the scenario's workload (guest/ mvg_*) until
 * the common deadline, publishes its ops/s, then reads back and verifies
 * every page it wrote.  Results go
 * to a shared page this process touched first, so they are charged here,
 * not to the cgroup, and a VM killed by the OOM killer still leaves the
 * ops it had published.  The burst VM's balloon driver has nothing to talk
 * to on Linux: it runs without one.  The memvisor side is `memvisor run`
 * itself (this binary, exec'd), so it runs the case exactly as users do;
 * its JSON report is read back with cJSON.
 *
 * Invariants: every wait is bounded (the workload's deadline plus a bound
 * on verification) and gives up on bl_stop; a child never returns into
 * this process's code (it _exit()s); children die with this process
 * (PR_SET_PDEATHSIG).
 *
 * Lock ordering: none; one thread here, the workloads' threads only in the
 * children.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench_linux.h"
#include "guest.h"
#include "scenario.h"

#define PAGE 4096
#define LOAD_CHUNK (1u << 20)
#define VM_POLL_MS 50
/* Verification reads every page back; from swap on a busy disk it may
 * take this long plus a second per 20 MB of guest memory. */
#define VERIFY_BASE_S 120
#define VERIFY_MB_PER_S 20

volatile sig_atomic_t bl_stop;

/* One VM's results, in memory shared with its process. */
struct slot {
	_Atomic int state; /* 0 starting, 1 running, 2 measured, 3 verified */
	_Atomic uint64_t ops; /* published every second */
	double ops_s;
	/* the ops at the run's middle second (bl_half_s), and when they were
	 * read (seconds since the start); mid_s 0: not reached */
	uint64_t ops_mid;
	double mid_s, end_s;
	uint64_t integrity_errors;
	uint64_t overhead_bytes;
	double cpu_user, cpu_sys; /* cores, in the timed phase */
	int err; /* -errno of a failed start */
	char first_error[160];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts = { (time_t)t,
			       (long)((t - (double)(time_t)t) * 1e9) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

static double tv_s(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static bool zero_page(const uint64_t *p)
{
	for (unsigned i = 0; i < PAGE / 8; i++)
		if (p[i])
			return false;
	return true;
}

/* Copies the image's non-zero pages into guest memory. */
static int load_image(const char *path, uint8_t *mem, uint64_t memsize)
{
	uint8_t *buf = malloc(LOAD_CHUNK);
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	uint64_t off = 0;
	ssize_t n;

	if (fd < 0 || !buf) {
		ret = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	while (off < memsize) {
		n = pread(fd, buf, LOAD_CHUNK, (off_t)off);
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t i = 0; i + PAGE <= n && off + i < memsize;
		     i += PAGE)
			if (!zero_page((const uint64_t *)(buf + i)))
				memcpy(mem + off + i, buf + i, PAGE);
		off += (uint64_t)n;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

/* "Key: N kB" from /proc/self/status, in bytes. */
static uint64_t status_kb(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	uint64_t v = 0;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = strtoull(line + n + 1, NULL, 10) * 1024;
	if (f)
		fclose(f);
	return v;
}

/* This process's memory outside guest memory: the workload's own state,
 * stacks, page tables. */
static uint64_t overhead(const uint8_t *mem, uint64_t memsize)
{
	uint64_t resident = 0, npages = memsize / PAGE, anon, pte;
	unsigned char *vec = malloc(npages);

	if (vec && !mincore((void *)mem, memsize, vec))
		for (uint64_t i = 0; i < npages; i++)
			resident += vec[i] & 1;
	free(vec);
	anon = status_kb("RssAnon");
	pte = status_kb("VmPTE");
	resident *= PAGE;
	return (anon > resident ? anon - resident : 0) + pte;
}

static void child(const struct sc_vm *vm, const struct bl_cgroup *cg, double t0,
		  double deadline, struct slot *s)
{
	struct mvg_workload *w = NULL;
	struct mvg_config cfg;
	struct rusage ru0 = { 0 }, ru1;
	struct mvg_stats st;
	double ta = 0, mid, next;
	uint8_t *mem;
	int ret;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (getppid() == 1)
		_exit(1);
	if (cg && (ret = bl_cgroup_add(cg, getpid()))) {
		s->err = ret;
		_exit(1);
	}
	/* as memvisor pins the VM's guest threads (cfg.cpus below): here
	 * the whole VM process, as a host pins a VMM's vCPU threads */
	if (vm->ncpus && sched_setaffinity(0, sizeof(vm->cpus), &vm->cpus)) {
		s->err = -errno;
		_exit(1);
	}
	mem = mmap(NULL, vm->memsize, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		s->err = -errno;
		_exit(1);
	}
	if (vm->image && (ret = load_image(vm->image, mem, vm->memsize))) {
		s->err = ret;
		_exit(1);
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.kind = vm->workload;
	cfg.mem = mem;
	cfg.memsize = vm->memsize;
	cfg.threads = vm->threads;
	cfg.image_path = vm->image;
	cfg.seed = vm->seed;
	cfg.zipf_s = vm->zipf_s;
	cfg.kv_text = vm->kv_text;
	cfg.think_us = vm->think_us;
	cfg.cpus = vm->ncpus ? &vm->cpus : NULL;
	cfg.balloon_vm = NULL; /* no balloon on Linux */
	cfg.burst_pct = vm->burst_pct;
	cfg.burst_keep_pct = vm->burst_keep_pct;
	cfg.burst_idle_ms = vm->burst_idle_ms;
	cfg.image_write_pct1 = vm->write_pct1;
	if ((ret = mvg_start(&cfg, &w))) {
		s->err = ret;
		_exit(1);
	}
	atomic_store(&s->state, 1);
	/* the CPU window opens a second in, as memvisor's (cpu_of_run) */
	mid = t0 + bl_half_s(deadline - t0);
	for (double t = now_s(); t < deadline; t = now_s()) {
		next = t + 1 < deadline ? t + 1 : deadline;
		if (!s->mid_s && mid > t && mid < next)
			next = mid;
		sleep_until(next);
		mvg_get_stats(w, &st);
		atomic_store(&s->ops, st.ops);
		if (!s->mid_s && now_s() >= mid) {
			s->ops_mid = st.ops;
			s->mid_s = now_s() - t0;
		}
		if (!ta && now_s() >= t0 + 1) {
			ta = now_s();
			getrusage(RUSAGE_SELF, &ru0);
		}
	}
	mvg_get_stats(w, &st);
	s->end_s = now_s() - t0;
	s->ops_s = (double)st.ops / s->end_s;
	atomic_store(&s->ops, st.ops);
	getrusage(RUSAGE_SELF, &ru1);
	if (ta && now_s() > ta) {
		s->cpu_user = (tv_s(&ru1.ru_utime) - tv_s(&ru0.ru_utime)) /
			      (now_s() - ta);
		s->cpu_sys = (tv_s(&ru1.ru_stime) - tv_s(&ru0.ru_stime)) /
			     (now_s() - ta);
	}
	s->overhead_bytes = overhead(mem, vm->memsize);
	atomic_store(&s->state, 2);
	mvg_stop_and_verify(w, &st);
	s->integrity_errors = st.integrity_errors;
	snprintf(s->first_error, sizeof(s->first_error), "%s", st.first_error);
	atomic_store(&s->state, 3);
	_exit(0);
}

/*
 * Adds a VM's ops/s in each half of the run (duration_s) to r's: from the
 * ops it read at the middle second and at its end; one that died before
 * the middle counts what it published in the first half and 0 after, one
 * that died after it, what it published since over the rest of the run.
 */
static void add_halves(struct bl_run *r, const struct slot *s,
		       double duration_s)
{
	double half = bl_half_s(duration_s), end = duration_s;
	uint64_t ops = atomic_load(&s->ops);

	if (half <= 0)
		return;
	if (!s->mid_s) {
		r->first_half_ops_s += (double)ops / half;
		return;
	}
	if (s->end_s > s->mid_s)
		end = s->end_s;
	r->first_half_ops_s += (double)s->ops_mid / s->mid_s;
	if (end > s->mid_s && ops >= s->ops_mid)
		r->second_half_ops_s +=
			(double)(ops - s->ops_mid) / (end - s->mid_s);
}

int bl_run_linux(const struct scenario *sc, const struct bl_cgroup *cg,
		 unsigned duration_s, struct bl_run *r, char *msg, size_t len)
{
	size_t n = sc->nvms, bytes = n * sizeof(struct slot);
	pid_t pids[BL_MAX_VMS] = { 0 };
	unsigned alive = 0;
	double t0, deadline, limit;
	struct slot *slots;
	int status, ret = 0;

	memset(r, 0, sizeof(*r));
	if (n > BL_MAX_VMS) {
		snprintf(msg, len, "at most %d VMs", BL_MAX_VMS);
		return -EINVAL;
	}
	slots = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED) {
		snprintf(msg, len, "mmap: %s", strerror(errno));
		return -errno;
	}
	memset(slots, 0, bytes); /* charged here, not to the cgroup */
	fflush(NULL);
	t0 = now_s();
	deadline = t0 + duration_s;
	limit = deadline + VERIFY_BASE_S +
		(double)scenario_vm_memsize_total(sc) / (1 << 20) /
			VERIFY_MB_PER_S;
	for (size_t i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			child(&sc->vms[i], cg, t0, deadline, &slots[i]);
		if (pids[i] < 0) {
			ret = -errno;
			snprintf(msg, len, "fork: %s", strerror(errno));
			pids[i] = 0;
			break;
		}
		alive++;
	}
	while (alive) {
		for (size_t i = 0; i < n; i++) {
			pid_t p;

			if (!pids[i])
				continue;
			p = waitpid(pids[i], &status, WNOHANG);
			if (p != pids[i])
				continue;
			pids[i] = 0;
			alive--;
			if (WIFSIGNALED(status) ||
			    atomic_load(&slots[i].state) < 2)
				r->vms[i].killed = true;
			if (slots[i].err && !ret) {
				ret = slots[i].err;
				snprintf(msg, len, "VM %s could not start: %s",
					 sc->vms[i].name,
					 strerror(-slots[i].err));
			}
		}
		if (!alive)
			break;
		if (bl_stop || now_s() > limit || ret) {
			if (!ret && !bl_stop) {
				ret = -ETIMEDOUT;
				snprintf(
					msg, len,
					"the VMs did not finish verifying within %.0f s of the end",
					limit - deadline);
			}
			for (size_t i = 0; i < n; i++)
				if (pids[i])
					kill(pids[i], SIGKILL);
			for (size_t i = 0; i < n; i++)
				if (pids[i] &&
				    waitpid(pids[i], &status, 0) == pids[i]) {
					r->vms[i].killed = true;
					pids[i] = 0;
				}
			break;
		}
		/* zswap's pool, which a v1 cgroup is not charged for: its
		 * peak while the VMs run (their exit empties it) */
		if (cg && !cg->v2) {
			uint64_t z = bl_zswap_pool();

			if (z > r->zswap_outside_bytes)
				r->zswap_outside_bytes = z;
		}
		usleep(VM_POLL_MS * 1000);
	}
	r->nvms = (unsigned)n;
	r->duration_s = deadline - t0;
	if (bl_half_s(r->duration_s) <= 0) /* a 1 s run has no halves */
		r->first_half_ops_s = r->second_half_ops_s = -1;
	for (size_t i = 0; i < n; i++) {
		struct bl_vm_result *v = &r->vms[i];

		snprintf(v->name, sizeof(v->name), "%s", sc->vms[i].name);
		v->idle = sc->vms[i].workload == MVG_IDLE;
		v->ops_s =
			atomic_load(&slots[i].state) >= 2 ?
				slots[i].ops_s :
				(double)atomic_load(&slots[i].ops) / duration_s;
		v->integrity_errors = slots[i].integrity_errors;
		add_halves(r, &slots[i], deadline - t0);
		r->overhead_bytes += slots[i].overhead_bytes;
		r->cpu_user += slots[i].cpu_user;
		r->cpu_sys += slots[i].cpu_sys;
		if (slots[i].integrity_errors && !msg[0])
			snprintf(msg, len, "VM %s: %s", v->name,
				 slots[i].first_error);
	}
	munmap(slots, bytes);
	if (bl_stop && !ret) {
		ret = -EINTR;
		snprintf(msg, len, "interrupted");
	}
	r->ran = !ret;
	bl_run_totals(r);
	return ret;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (!f)
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			char *m = realloc(buf, cap = 2 * cap + 8192);

			if (!m) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = m;
		}
		got = fread(buf + n, 1, 4096, f);
		n += got;
	} while (got);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static double jnum(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/*
 * r's halves from the report's per-second series (the report's "series":
 * sample times t, and per VM the ops of each sample, done since the
 * sample before), cut at the sample nearest the middle second; -1 each
 * without a series that covers both halves.
 */
static void run_halves(const cJSON *root, struct bl_run *r)
{
	const cJSON *series = cJSON_GetObjectItemCaseSensitive(root, "series");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(series, "t");
	const cJSON *vms = cJSON_GetObjectItemCaseSensitive(series, "vms");
	const cJSON *v, *ops, *e;
	double half = bl_half_s(r->duration_s), cut = 0, end = 0, first = 0,
	       all = 0;
	int n = cJSON_GetArraySize(t), k = -1, i = 0;

	r->first_half_ops_s = r->second_half_ops_s = -1;
	cJSON_ArrayForEach(e, t)
	{
		if (!cJSON_IsNumber(e))
			return;
		end = e->valuedouble;
		if (end <= half + 0.5) {
			k = i;
			cut = end;
		}
		i++;
	}
	if (k < 1 || cut <= 0 || end <= cut || !cJSON_IsArray(vms))
		return;
	cJSON_ArrayForEach(v, vms)
	{
		ops = cJSON_GetObjectItemCaseSensitive(v, "ops");
		if (cJSON_GetArraySize(ops) != n)
			return;
		i = 0;
		cJSON_ArrayForEach(e, ops)
		{
			if (!cJSON_IsNumber(e))
				return;
			all += e->valuedouble;
			if (i++ <= k)
				first += e->valuedouble;
		}
	}
	r->first_half_ops_s = first / cut;
	r->second_half_ops_s = (all - first) / (end - cut);
}

int bl_parse_run_json(const char *text, struct bl_run *r, char *msg, size_t len)
{
	cJSON *root = cJSON_Parse(text), *vms, *v, *e;
	double in = 0, out = 0, faults = 0;
	const cJSON *host;
	unsigned i = 0;

	memset(r, 0, sizeof(*r));
	if (!root) {
		snprintf(msg, len, "the run's JSON report does not parse");
		return -EINVAL;
	}
	vms = cJSON_GetObjectItemCaseSensitive(root, "vms");
	if (!cJSON_IsArray(vms)) {
		e = cJSON_GetObjectItemCaseSensitive(root, "error");
		snprintf(msg, len, "the run ended without stats%s%s",
			 cJSON_IsString(e) ? ": " : "",
			 cJSON_IsString(e) ? e->valuestring : "");
		cJSON_Delete(root);
		return -EIO;
	}
	cJSON_ArrayForEach(v, vms)
	{
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
		const cJSON *kind =
			cJSON_GetObjectItemCaseSensitive(v, "workload");

		if (i == BL_MAX_VMS)
			break;
		snprintf(r->vms[i].name, sizeof(r->vms[i].name), "%s",
			 cJSON_IsString(name) ? name->valuestring : "?");
		r->vms[i].ops_s = jnum(v, "ops_s");
		r->vms[i].idle = cJSON_IsString(kind) &&
				 !strcmp(kind->valuestring, "idle");
		r->vms[i].integrity_errors =
			(uint64_t)jnum(v, "integrity_errors");
		/* the swap file and the compression cache: as zswap counts */
		faults += jnum(v, "faults");
		in += jnum(v, "swapin_mb") + jnum(v, "unzip_mb");
		out += jnum(v, "swapout_mb") + jnum(v, "zip_mb");
		i++;
	}
	r->nvms = i;
	r->duration_s = jnum(root, "duration_s");
	host = cJSON_GetObjectItemCaseSensitive(root, "host");
	if (r->duration_s > 0) {
		r->faults_s = faults / r->duration_s;
		r->alloc_waits_s = jnum(host, "alloc_waits") / r->duration_s;
		r->blocked_waits_s =
			jnum(host, "blocked_waits") / r->duration_s;
	}
	r->swapin_bytes = (uint64_t)(in * (1 << 20));
	r->swapout_bytes = (uint64_t)(out * (1 << 20));
	run_halves(root, r);
	r->ran = true;
	bl_run_totals(r);
	/* the report's own total counts what the VMs' rows may not */
	if (jnum(root, "integrity_errors") > (double)r->integrity_errors)
		r->integrity_errors = (uint64_t)jnum(root, "integrity_errors");
	cJSON_Delete(root);
	return 0;
}

/*
 * The CPU `memvisor run` uses in its timed phase, all its threads and its
 * VM processes' (vmm = process): read from /proc/PID/stat when its
 * per-second line for second 1 appears (a), and for the last second of the
 * run (b).  Only this run's lines may count: its log is emptied before it
 * starts (run_start), never by the run itself, which would let the first
 * look read the lines an earlier run left there (and then skip this run's
 * as already read).
 */
struct cpu_watch {
	long off; /* of the log read so far */
	char part[512]; /* a line not yet whole */
	double ta, ua, sa, tb, ub, sb;
};

static bool proc_cpu_one(pid_t pid, double *user, double *sys)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st, cut, cst;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	/* after the command name in parentheses: state is field 3, utime
	 * and stime are 14 and 15, the reaped children's (cutime, cstime)
	 * 16 and 17 */
	if (!p || !(p = strrchr(buf, ')')) ||
	    sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
		   &ut, &st, &cut, &cst) != 4)
		return false;
	*user = (double)(ut + cut) / (double)sysconf(_SC_CLK_TCK);
	*sys = (double)(st + cst) / (double)sysconf(_SC_CLK_TCK);
	return true;
}

/* pid's CPU and its children's: its `vmm = process` VMs, which its main
 * thread started, read while they run and, once reaped, in pid's own. */
static bool proc_cpu(pid_t pid, double *user, double *sys)
{
	char path[96];
	double u, s;
	long child;
	FILE *f;

	if (!proc_cpu_one(pid, user, sys))
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)pid,
		 (long)pid);
	f = fopen(path, "re");
	while (f && fscanf(f, "%ld", &child) == 1)
		if (proc_cpu_one((pid_t)child, &u, &s)) {
			*user += u;
			*sys += s;
		}
	if (f)
		fclose(f);
	return true;
}

static void cpu_line(struct cpu_watch *w, pid_t pid, const char *line,
		     unsigned duration_s)
{
	const char *cr = strrchr(line, '\r');
	double t, u, s;
	char c;

	if (cr) /* a progress line it cleared */
		line = cr + 1;
	if (sscanf(line, "%lf%c", &t, &c) != 2 || c != 's' || t < 1 ||
	    t > duration_s || !proc_cpu(pid, &u, &s))
		return;
	if (!w->ta) {
		w->ta = now_s();
		w->ua = u;
		w->sa = s;
	} else {
		w->tb = now_s();
		w->ub = u;
		w->sb = s;
	}
}

static void cpu_watch(struct cpu_watch *w, pid_t pid, const char *log,
		      unsigned duration_s)
{
	char buf[4096], *nl, *line;
	size_t n, have;
	FILE *f = fopen(log, "re");

	if (!f)
		return;
	if (fseek(f, w->off, SEEK_SET)) {
		fclose(f);
		return;
	}
	while ((n = fread(buf, 1, sizeof(buf) - 1, f)) > 0) {
		buf[n] = '\0';
		w->off += (long)n;
		line = buf;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			have = strlen(w->part);
			snprintf(w->part + have, sizeof(w->part) - have, "%s",
				 line);
			cpu_line(w, pid, w->part, duration_s);
			w->part[0] = '\0';
			line = nl + 1;
		}
		have = strlen(w->part);
		snprintf(w->part + have, sizeof(w->part) - have, "%s", line);
	}
	fclose(f);
}

/* ": " and the log's first line that says what went wrong, or "". */
static void log_error(const char *log, char *out, size_t len)
{
	char line[256];
	FILE *f = fopen(log, "re");

	out[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "memvisor", 8) || !strstr(line, ": ") ||
		    !strncmp(line, "memvisor run: ", 14))
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(out, len, ": %s", line);
		break;
	}
	if (f)
		fclose(f);
}

/*
 * Starts path with argv, its stdout and stderr to log, which is emptied
 * (or made) here, before the child exists, so that the first cpu_watch
 * finds no earlier run's lines.  The child dies with this process.
 * Returns its pid, or -errno.
 */
static pid_t run_start(const char *path, const char *const argv[],
		       const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	pid_t pid;

	if (fd < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	if (pid < 0)
		pid = -errno;
	close(fd);
	return pid;
}

int bl_run_memvisor(const char *scenario_file, const char *dir,
		    unsigned duration_s, struct bl_run *r, char *msg,
		    size_t len)
{
	char json[600], log[600], dur[16];
	/* not --quiet: its per-second lines time the CPU window */
	const char *argv[] = {
		"memvisor", "run", "--duration",  dur,
		"--json",   json,  scenario_file, /* NULL: the embedded default */
		NULL,
	};
	double limit;
	pid_t pid;
	int status = 0, ret;
	bool signalled = false;
	struct cpu_watch cw = { 0 };
	char *text, why[300];

	memset(r, 0, sizeof(*r));
	snprintf(json, sizeof(json), "%s/memvisor-run.json", dir);
	snprintf(log, sizeof(log), "%s/memvisor-run.log", dir);
	snprintf(dur, sizeof(dur), "%u", duration_s);
	unlink(json);
	pid = run_start("/proc/self/exe", argv, log);
	if (pid < 0) {
		snprintf(msg, len, "cannot start memvisor run: %s",
			 strerror((int)-pid));
		return (int)pid;
	}
	/* generating images, the run, verifying: generous, but bounded */
	limit = now_s() + duration_s + 2 * VERIFY_BASE_S + 300;
	for (;;) {
		pid_t p;

		cpu_watch(&cw, pid, log, duration_s);
		p = waitpid(pid, &status, WNOHANG);
		if (p == pid)
			break;
		if (p < 0 && errno != EINTR) {
			status = -1;
			break;
		}
		if (bl_stop && !signalled) {
			/* it finishes its report and exits 4 */
			kill(pid, SIGINT);
			signalled = true;
			limit = now_s() + 60;
		}
		if (now_s() > limit) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(msg, len, "memvisor run did not end in time");
			return -ETIMEDOUT;
		}
		usleep(VM_POLL_MS * 1000);
	}
	text = slurp(json);
	if (!text) {
		snprintf(
			msg, len,
			"memvisor run wrote no report (exit status %d; see %s)",
			WIFEXITED(status) ? WEXITSTATUS(status) : -1, log);
		return -EIO;
	}
	ret = bl_parse_run_json(text, r, msg, len);
	free(text);
	if (cw.tb > cw.ta) {
		r->cpu_user = (cw.ub - cw.ua) / (cw.tb - cw.ta);
		r->cpu_sys = (cw.sb - cw.sa) / (cw.tb - cw.ta);
	}
	if (!ret && bl_stop) {
		r->ran = false;
		snprintf(msg, len, "interrupted");
		return -EINTR;
	}
	/* exit 1 is integrity errors, counted; anything else failed */
	if (!ret && WIFEXITED(status) && WEXITSTATUS(status) > 1) {
		r->ran = false;
		log_error(log, why, sizeof(why));
		snprintf(msg, len, "memvisor run exited %d%s",
			 WEXITSTATUS(status), why);
		return -EIO;
	}
	return ret;
}
