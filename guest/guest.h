/* SPDX-License-Identifier: MIT */
/*
 * guest.h - the guest side used by the command, tests and benchmarks:
 * workloads that run guest threads against a VM's guest physical memory.
 *
 * A workload only ever sees a base pointer and a size: it cannot tell
 * whether a page is resident, swapped or compressed, exactly as a real guest
 * cannot.  Every workload keeps enough state outside guest memory to verify
 * each read against what it last wrote (or against the RAM image); a
 * mismatch is counted as an integrity error and described, never hidden.
 */
#ifndef MV_GUEST_H
#define MV_GUEST_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct mv_vm;

enum mvg_kind {
	MVG_IDLE, /* touches every page once (writes a pattern; on an image:
		   * reads and checks it), then sleeps */
	MVG_KVSTORE, /* hash table over most of memory, Zipf reads and writes */
	MVG_RANDOM, /* incompressible data, uniform random rewrites and reads */
	MVG_IMAGE, /* restored VM: verify every page once vs image, then a WSS */
	MVG_BURST, /* through the guest OS: take most memory, free most, idle */
	MVG_NKINDS
};

struct mvg_config {
	enum mvg_kind kind;
	void *mem; /* guest physical memory */
	uint64_t memsize; /* bytes, multiple of 4096 */
	unsigned threads; /* guest threads (>= 1) */
	/* the image the VM started from: needed by MVG_IMAGE; idle and
	 * random compare pages they never wrote with it; kvstore refuses
	 * one, burst ignores it */
	const char *image_path;
	/* MVG_IMAGE: 1 + percent of working-set operations that write
	 * (0: 30) */
	uint32_t image_write_pct1;
	uint64_t seed; /* for reproducible runs */
	double zipf_s; /* MVG_KVSTORE skew (default 0.99 when 0) */
	bool kv_text; /* MVG_KVSTORE values are text-like (compressible)
		       * instead of random bytes */
	uint32_t think_us; /* pause between ops in microseconds (0: none) */
	/* the CPUs the guest threads run on, as a VM host pins vCPUs (the
	 * final verification's threads and a burst VM's balloon driver
	 * too); NULL: wherever the kernel puts them.  Copied by mvg_start */
	const cpu_set_t *cpus;
	/* MVG_BURST: a round takes burst_pct% of memory from the guest OS
	 * (0: 85), keeps burst_keep_pct% of that (0: 10), then idles
	 * burst_idle_ms (0: 2000) */
	uint32_t burst_pct;
	uint32_t burst_keep_pct;
	uint32_t burst_idle_ms;
	/* MVG_BURST: load a balloon driver on this VM's channel (NULL: none),
	 * polling every balloon_poll_ms (0: 1000) */
	struct mv_vm *balloon_vm;
	uint32_t balloon_poll_ms;
};

struct mvg_stats {
	uint64_t ops; /* reads + writes completed */
	uint64_t reads;
	uint64_t writes;
	uint64_t pages_verified; /* page-sized verifications done */
	/* a VM started from an image (image, or idle on one) first reads
	 * and checks every page, as a restore loads it: load_pages pages,
	 * loaded_pages of them done so far; both 0 without an image */
	uint64_t load_pages;
	uint64_t loaded_pages;
	uint64_t integrity_errors; /* reads that did not match */
	/* of those, pages whose touch raised SIGBUS: the host could not read
	 * them back (memvisor's unreadable_pages); each counted once, never
	 * touched again, and named in first_error if first */
	uint64_t memory_errors;
	char first_error[160]; /* description of the first mismatch, "" if none */
};

struct mvg_workload;

/* Parse "idle", "kvstore", "random", "image", "burst"; -EINVAL otherwise. */
int mvg_kind_parse(const char *name, enum mvg_kind *out);
const char *mvg_kind_name(enum mvg_kind kind);

/* Starts cfg->threads guest threads.  0 or -errno (-EINVAL: bad config,
 * or cfg->cpus holds no CPU this process may run on). */
int mvg_start(const struct mvg_config *cfg, struct mvg_workload **out);
/* Asks the threads to stop, joins them, and frees the workload. */
void mvg_stop(struct mvg_workload *w);
/* A consistent-enough snapshot (counters are read without stopping). */
void mvg_get_stats(struct mvg_workload *w, struct mvg_stats *st);
/* Stops the threads, then reads back every page the workload wrote and
 * verifies it: the end-of-run proof that no byte was lost.  Adds to
 * integrity_errors.  Call instead of, not after, mvg_stop(); it frees w. */
int mvg_stop_and_verify(struct mvg_workload *w, struct mvg_stats *final);

/*
 * For a caller ending many workloads: mvg_request_stop() asks the guest
 * threads to stop and returns at once, so that every workload can be told
 * before any is waited for; mvg_halt() stops them and waits until they have
 * (both may be repeated).  mvg_verify() halts w and verifies it like
 * mvg_stop_and_verify() but keeps w, for mvg_stop() to free; if *cancel
 * (NULL: never) becomes true it stops early and returns -ECANCELED, final
 * then counting only what was checked.  A workload is verified once.
 */
void mvg_request_stop(struct mvg_workload *w);
void mvg_halt(struct mvg_workload *w);
int mvg_verify(struct mvg_workload *w, const atomic_bool *cancel,
	       struct mvg_stats *final);
/*
 * Halts w (as mvg_halt()) and returns how many pages mvg_verify() will
 * read back, so that a caller can say how far a verification is: the
 * pages_verified it adds to mvg_stats go from 0 to about this.
 */
uint64_t mvg_verify_pages(struct mvg_workload *w);

/*
 * Starts a thread of a guest, fn(arg), on cpus (NULL: anywhere): it is
 * created with that affinity (pthread_attr_setaffinity_np), so it never
 * runs elsewhere first, and a set it cannot run on is an error, not
 * ignored.  0 or -errno (-EINVAL: no CPU of cpus is usable here).
 */
int mvg_thread_create(pthread_t *tid, const cpu_set_t *cpus,
		      void *(*fn)(void *), void *arg);

#endif /* MV_GUEST_H */
