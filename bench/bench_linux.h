/* SPDX-License-Identifier: MIT */
/*
 * bench_linux.h - `memvisor bench linux`: the same guest workloads on the
 * same budget under memvisor and under Linux's own overcommit (a memory
 * cgroup with kernel swap on a file, zswap, zram), plus the unconstrained
 * ceiling.  Shared by bench_linux.c (the command, the report),
 * bench_linux_sys.c (the kernel peers and their cleanup) and
 * bench_linux_vm.c (the processes that run the workloads).
 */
#ifndef MV_BENCH_LINUX_H
#define MV_BENCH_LINUX_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BL_MAX_VMS 16
#define BL_MAX_ROUNDS 9
#define BL_MSG 512

/* The configurations of one case, in the order a round runs them. */
enum bl_config {
	BL_MEMVISOR,
	BL_SWAP, /* memory cgroup, kernel swap on a file */
	BL_ZSWAP, /* the same, with zswap in front of the file */
	BL_ZRAM, /* memory cgroup, zram as the only swap */
	BL_CEILING, /* no memory limit at all (once per case) */
	BL_NCONFIGS
};

const char *bl_config_name(enum bl_config c);
static inline bool bl_config_is_linux(enum bl_config c)
{
	return c == BL_SWAP || c == BL_ZSWAP || c == BL_ZRAM;
}

struct bl_vm_result {
	char name[32];
	double ops_s;
	uint64_t integrity_errors;
	bool killed; /* did not finish: OOM-killed or died */
	/* an idle workload touches its memory once and sleeps: its ops/s
	 * say nothing of throughput, so it is never the worst VM */
	bool idle;
};

/* One run of one configuration of one case. */
struct bl_run {
	bool ran; /* else skipped (why) or failed (error) */
	char why[BL_MSG];
	unsigned nvms;
	struct bl_vm_result vms[BL_MAX_VMS];
	double total_ops_s, worst_ops_s;
	double duration_s;
	uint64_t oom_kills;
	uint64_t integrity_errors;
	uint64_t swapin_bytes, swapout_bytes;
	uint64_t overhead_bytes; /* ceiling: the harness's own memory */
	/* CPU the VMs' processes used in the timed phase (from its first
	 * second to its end), in cores: user (the guests' work, and
	 * memvisor's own service in user space) and system (the kernel:
	 * faults, userfaultfd, reclaim, swap, compression for zswap/zram) */
	double cpu_user, cpu_sys;
	/* zram: the most memory its compressed pages took, which the kernel
	 * does not charge to the cgroup (outside the budget) */
	uint64_t zram_peak_bytes;
	/* zswap's pool at its peak while the VMs ran (sampled as they are
	 * polled), when the cgroup is not charged for it (v1: the kernel
	 * charges zswap to v2 cgroups only) */
	uint64_t zswap_outside_bytes;
	/* memvisor: userfaultfd faults served, faults that waited for a free
	 * frame, faults held in the low state, per second of the run */
	double faults_s, alloc_waits_s, blocked_waits_s;
	/* ops/s of all the VMs together in the run's first half (up to its
	 * middle second: the warm-up, while the VMs first fill their
	 * memory, is in it) and in its second half (the steady state under
	 * reclaim); -1 where the run did not say (a report without its
	 * series) */
	double first_half_ops_s, second_half_ops_s;
};

/* The second at which a run of duration_s seconds is cut in halves. */
static inline double bl_half_s(double duration_s)
{
	return (double)(unsigned)(duration_s / 2);
}

/* Sums ops/s, finds the worst VM (a killed VM counts 0; idle VMs are
 * left out), counts errors. */
void bl_run_totals(struct bl_run *r);

/* ---- arithmetic (bench_linux.c) ---- */

/* The median of n values (copied, not sorted in place); 0 when n is 0. */
double bl_median(const double *v, unsigned n);
/* a / b, or 0 when b is not positive. */
double bl_ratio(double a, double b);

/* ---- options (bench_linux.c) ---- */

struct bl_opts {
	unsigned rounds;
	unsigned duration_s; /* 0: the default */
	const char *cases[16]; /* --case, in order; none: every case */
	unsigned ncases;
	const char *swapdir; /* parent of the work directory */
	bool json;
	bool no_memvisor, no_linux; /* for tests and partial runs */
	/* --no-pin: the kvstore cases' VMs run wherever the kernel puts
	 * them, instead of VM i on usable CPU i % n on both sides */
	bool no_pin;
	/* --vmm threads: memvisor runs the kvstore cases' VMs as guest
	 * threads in one process, instead of one process per VM (vmm =
	 * process), as the Linux peer runs them */
	bool vmm_threads;
	/* --pause-damon: the DAMON monitors of physical addresses are
	 * switched off for the runs (their reverse-map walks stall
	 * memvisor's page moves) and on again at the end */
	bool pause_damon;
};

/* 0, or -EINVAL with a sentence in msg; 1 for --help. */
int bl_parse_opts(int argc, char **argv, struct bl_opts *o, char *msg,
		  size_t len);

/* ---- the kernel peers (bench_linux_sys.c) ---- */

/*
 * Paths of /proc and /sys go through this prefix ("" in real use), so that
 * tests can point the peers' settings and the cleanup at a fake tree.
 */
extern char bl_sys_root[256];
/* The state file: what a run changed, so that the next run undoes it if
 * this one was killed. */
extern char bl_state_path[512];

/*
 * The memory controller: v2 where the unified hierarchy has it, v1
 * otherwise.  0, or -ENOTSUP with what is missing in msg.
 */
struct bl_cgroup {
	bool v2;
	char path[512]; /* the cgroup this run made; "" none */
};
int bl_cgroup_probe(char *msg, size_t len);
/* limit 0: none.  Makes the run's cgroup (recorded in the state file). */
int bl_cgroup_create(struct bl_cgroup *cg, uint64_t limit, unsigned swappiness,
		     char *msg, size_t len);
/* Moves pid into it. */
int bl_cgroup_add(const struct bl_cgroup *cg, pid_t pid);
uint64_t bl_cgroup_oom_kills(const struct bl_cgroup *cg);
uint64_t bl_cgroup_peak(const struct bl_cgroup *cg);
/* Kills what is left in it, removes it. */
void bl_cgroup_destroy(struct bl_cgroup *cg);

/* Kernel swap: a file, zswap in front of it, or a zram device. */
struct bl_swap {
	enum bl_config kind;
	char file[512]; /* swapon'd file or zram device node; "" none */
	int zram; /* device number, -1 none */
	bool zswap_set;
};
/* 0, or -ENOTSUP/-EPERM/... with what this kernel lacks in msg. */
int bl_swap_probe(enum bl_config kind, char *msg, size_t len);
int bl_swap_setup(struct bl_swap *s, enum bl_config kind, const char *dir,
		  uint64_t bytes, char *msg, size_t len);
void bl_swap_teardown(struct bl_swap *s);
/* zram's mem_used_max (mm_stat), bytes; 0 when there is none. */
uint64_t bl_zram_peak(const struct bl_swap *s);
/* zswap's compressed pool now (/proc/meminfo "Zswap:"), bytes. */
uint64_t bl_zswap_pool(void);
/* What the zswap peer runs with, for the report. */
const char *bl_zswap_note(void);

/* Pages swapped in and out, system wide (/proc/vmstat, zswap included). */
void bl_vmstat_swap(uint64_t *in_pages, uint64_t *out_pages);

/*
 * The state file.  bl_state_add() appends "KIND ARG [VALUE]" before the
 * change it names is made; bl_state_undo() undoes every line of a file
 * (newest first) and removes it: a line whose change is already gone is
 * no error.  Returns how many lines it undid.
 */
int bl_state_add(const char *kind, const char *arg, const char *value);
int bl_state_undo(FILE *log);
/* Undoes everything this run set (the state file) and removes the file. */
void bl_cleanup(void);

/* The running DAMON monitors of physical addresses (*first: the first's
 * index), and switching them off, recorded in the state file so that
 * bl_cleanup switches them on again; *paused: how many. */
unsigned bl_damon_paddr(unsigned *first);
int bl_damon_pause(unsigned *paused);

/* ---- the runs (bench_linux_vm.c) ---- */

struct scenario;
/* Set by the SIGINT/SIGTERM handler: every wait gives up when it is. */
extern volatile sig_atomic_t bl_stop;

/*
 * The case's VMs, one process each, in the cgroup (NULL: none), each
 * pinned to its cpus if the scenario gives it some (the whole process,
 * before it maps or touches anything), each
 * running until `duration_s` after the first started, then verifying what
 * it wrote.  Fills r (per-VM ops/s, integrity errors, killed VMs).
 */
int bl_run_linux(const struct scenario *sc, const struct bl_cgroup *cg,
		 unsigned duration_s, struct bl_run *r, char *msg, size_t len);
/*
 * `memvisor run` (this binary) on the scenario file (NULL: the embedded
 * default) for duration_s; fills r from its JSON report, written in dir.
 */
int bl_run_memvisor(const char *scenario_file, const char *dir,
		    unsigned duration_s, struct bl_run *r, char *msg,
		    size_t len);
/* Parses a `memvisor run --json` report into r. */
int bl_parse_run_json(const char *text, struct bl_run *r, char *msg,
		      size_t len);

int bench_linux_main(int argc, char **argv);

#endif /* MV_BENCH_LINUX_H */
