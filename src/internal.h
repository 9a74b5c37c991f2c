/* SPDX-License-Identifier: MIT */
/*
 * internal.h - the engine's own structures and the calls between its files.
 * Nothing here is API: tests include it to reach inside; users never do.
 *
 * Lock order: the one rule for the whole engine (each file's header says
 * which of these it takes, never another order).  A lock may be taken
 * while holding only locks above it in this list:
 *
 *   daemon->lock              daemon.c: its connections; above all others
 *   host->sched_lock          a leaf: the scheduler drops it before working
 *   vm->rc.lock               a leaf: a VM's reclaim thread's request
 *                             (sched.c), never held across the work
 *   host->vms_lock            the VM list; held to gather, never across
 *                             disk I/O (the scheduler pins VMs instead)
 *     vm->reclaim_lock        staging and victims; or vm->balloon.lock,
 *     vm->balloon.lock        never both
 *       pmap entry locks      PMAP_LOCK bits; a second one only by trylock
 *                             or in ascending ppn order (balloon)
 *         vm->zc.lock         the compression cache; further pmap entries
 *                             by trylock only
 *           zpool lock        a leaf
 *         host->share.lock    the share table and pool; further pmap
 *                             entries by trylock only
 *         vm->sh.wp_lock      a leaf: keeps the share scanner's span
 *                             write-protection from landing between a
 *                             protection lifted and MADV_POPULATE_WRITE
 *                             (a copy made in place, share_cow.c)
 *         vm->swap.lock       slot allocation; a leaf
 *         host->frames_lock   the budget's sleepers
 *         host->msg_lock      messages and the log queue; a leaf, taken
 *                             under any of the above
 *         vm->remote->lock    a remote VM's last report; a leaf
 *         vm->aff.lock        where the VM's service threads run; a leaf
 *
 * A fault thread never sleeps waiting for frames while it holds a pmap
 * entry lock: reclaim needs those locks to make frames free.  The log
 * callback runs on its own thread with no lock held.  Nothing in the
 * engine waits on a lock held across a system call that can fault on a
 * userfaultfd: a fault thread must never wait on its own userfaultfd.
 */
#ifndef MV_INTERNAL_H
#define MV_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "affinity.h"
#include "balloon.h"
#include "cold.h"
#include "memvisor.h"
#include "pmap.h"
#include "share.h"
#include "sched_policy.h"
#include "swap.h"
#include "util.h"
#include "zcache.h"

#define MV_MAX_FAULT_THREADS 16
/* An agent's host keeps ESX's minFree of its grant divided by this free:
 * the daemon's host keeps the machine's (agent.c) */
#define MV_AGENT_MINFREE_DIV 4
/* Mappings (VMAs) a VM adds: guest memory, staging, sample area, fault
 * thread stacks and guards and their stop page, its reclaim thread's
 * (vm.c, fault.c, maps.c) */
#define MV_VM_MAPS (13 + 2 * MV_MAX_FAULT_THREADS)
/* Counters written by every fault start a cache line of their own, so that
 * their writes do not evict what every fault only reads (mem, pmap). */
#define MV_CACHELINE 64
/* Mappings left free for the process's own use (system.c, maps.c) */
#define MV_MAP_COUNT_SLACK 256
#define MV_MAX_RUN_PAGES 64 /* largest fault-around / swap-in cluster */
/*
 * Pages moved out per reclaim batch: staging is emptied once per batch, and
 * each MADV_DONTNEED is a TLB shootdown (docs/BENCHMARKS.md, "Compression")
 */
#define MV_RECLAIM_BATCH 64
#define MV_ERRMSG_MAX 512
/* Host events queued for the log callback before the oldest are dropped */
#define MV_LOG_QUEUE 32
/* Pages sampled per VM and Mem.SamplePeriod: ESX's figure (docs/DESIGN.md) */
#define MV_SAMPLE_PAGES 100
/* Park slots per VM (sample.c): one per victim of a reclaim batch */
#define MV_PARK_PAGES MV_RECLAIM_BATCH

#define MV_PAGE_SHIFT 12

struct mv_host {
	struct mv_settings settings; /* immutable after create */
	char swapdir[PATH_MAX]; /* immutable after create */
	/* machine memory budget, and minFree by ESXi's tiers of it: fixed
	 * unless an agent (agent.c) follows its daemon's grant through
	 * mv__budget_set_memsize */
	_Atomic uint64_t memsize_pages;
	_Atomic uint64_t minfree_pages;
	/* an agent's host: its daemon's target for its VM (pages), 0 until
	 * the first grant; UINT64_MAX for a host of its own
	 * (mv__budget_set_grant_target) */
	_Atomic uint64_t grant_target_pages;

	/* frames handed to guests; changed only by frames_reserve/release */
	_Alignas(MV_CACHELINE) _Atomic uint64_t consumed_pages;

	_Alignas(MV_CACHELINE) pthread_mutex_t frames_lock; /* the sleepers */
	pthread_cond_t frames_freed; /* signalled when frames are released */
	/* faults asleep waiting for a frame: changed under frames_lock, read
	 * without it by a release that wakes nobody when it is 0 */
	_Atomic unsigned frame_waiters;

	pthread_mutex_t vms_lock; /* protects vms and nvms */
	struct mv_vm *vms; /* list of VMs, newest first */
	uint32_t nvms;
	/* ZERO pages of the VMs that write what they read as zeros
	 * (mv__zero_writer), summed by the scheduler every tick for the fault
	 * service's write-around guard (fault.c); read relaxed */
	_Atomic uint64_t zero_writer_pages;
	/* zero_open.c: PAGEMAP_SCAN's zero-page category on this kernel: 0
	 * not looked at yet, 1 there, or the -errno that says it is not */
	_Atomic int zero_scan;
	/* VMs of this process (not remote): only they can be reclaimed
	 * here; written under vms_lock, read relaxed */
	_Atomic uint32_t local_vms;
	_Atomic uint32_t next_vm_id; /* ids for swap file names and seeds */

	pthread_t sched; /* the memory scheduler (sched.c) */
	pthread_mutex_t sched_lock; /* protects sched_stop */
	pthread_cond_t sched_wake;
	/* the scheduler has been kicked and has not looked yet: further kicks
	 * need not take sched_lock (sched.c) */
	_Alignas(MV_CACHELINE) atomic_bool sched_kicked;
	atomic_bool balance_asked; /* shares, reservation or limit changed */
	/* balances run, total, and of them those that came before the
	 * period's end: for a new free-memory state, asked by the API
	 * (balance_asked), a demand cap outgrown (sched.c) */
	_Atomic uint64_t balances, balances_state, balances_asked,
		balances_early;
	/* reclaim requests the VMs' reclaim threads have finished: the
	 * scheduler waits for it to move (sched.c) */
	_Atomic uint64_t reclaim_gen;
	bool sched_stop;
	bool sched_started;
	/* free-memory state with hysteresis (enum mv_mem_state); written by
	 * the scheduler only */
	_Atomic int state;
	/* the scheduler found nothing to reclaim: blocked VMs are let through
	 * rather than wait for memory that will not come */
	atomic_bool sched_stuck;

	struct mv__share share; /* page sharing: pool, table, scanner */

	pthread_mutex_t msg_lock; /* protects errmsg and the log queue */
	char errmsg[MV_ERRMSG_MAX]; /* last error or warning, "" if none */
	/* host events on their way to the log callback (host.c) */
	mv_log_fn log; /* immutable; NULL: no queue, no log thread */
	void *log_arg; /* immutable */
	struct mv__log_event {
		enum mv_log_level level;
		char msg[MV_ERRMSG_MAX];
	} logq[MV_LOG_QUEUE];
	unsigned logq_head, logq_n; /* oldest queued, how many */
	uint64_t log_dropped; /* events dropped since the last delivered */
	pthread_cond_t log_wake; /* an event was queued, or log_stop set */
	pthread_t log_thread;
	bool log_stop;

	/* statistics, relaxed atomics */
	_Atomic uint64_t alloc_waits;
	_Atomic uint64_t reclaim_pages;
	_Atomic uint64_t reclaim_flushes; /* see mv_host_stats */
	_Atomic uint64_t reclaim_moved_pages;
	_Atomic uint64_t lost_pages; /* see mv_host_stats */
	_Atomic uint64_t move_miscounts; /* see mv_host_stats */
	_Atomic uint64_t blocked_waits; /* see mv_host_stats */
	_Atomic uint64_t lpage_collapses; /* large pages made, all VMs */
	_Atomic uint64_t lpage_breaks; /* large pages broken, all VMs */
	_Atomic uint64_t lpage_regions; /* large pages now, all VMs */

	/* over-budget frames (host.c): see mv_host_stats */
	_Atomic uint64_t overrun_pages;
	_Atomic uint64_t overrun_max_pages;
	_Atomic uint64_t overrun_grants;
	_Atomic uint64_t admit_overruns;
	/* CLOCK_MONOTONIC ms since faults wait with no frame released, 0 */
	_Atomic uint64_t starved_since_ms;
	/* page moves in the kernel now (move.c), the ms their count last
	 * left 0, and the ms of the last frame release: a move in there for
	 * long with nothing released is a stall (budget.c) */
	_Atomic unsigned moves_inflight;
	_Atomic uint64_t moves_busy_since_ms;
	_Atomic uint64_t last_release_ms;
	_Atomic uint64_t stall_overrun_grants; /* see mv_host_stats */
	/* what the budget calls when memory runs short: installed by the
	 * scheduler (budget.c) */
	void (*_Atomic pressure_hook)(struct mv_host *h);
};

/* A VM has its pages read as zeros given frames a run at a time
 * (fault.c, zero_write_around) once it has written this percentage of
 * them, one fault each */
#define MV__ZERO_AROUND_WRITTEN_PCT 25
/* and its ZERO pages count in the host's zero_writer_pages once it has
 * written this percentage (so that VMs that cross the line above at
 * different times see one another's pages) */
#define MV__ZERO_WRITER_PCT 10

struct mv_vm_counters {
	_Atomic uint64_t swapin_pages;
	_Atomic uint64_t swapout_pages;
	_Atomic uint64_t faults;
	_Atomic uint64_t faults_spurious;
	_Atomic uint64_t fault_fill_pages;
	_Atomic uint64_t zero_maps; /* reads of ZERO pages served frameless */
	_Atomic uint64_t zero_writes; /* first writes to those, faults */
	_Atomic uint64_t zero_around_pages; /* neighbours given frames too */
	_Atomic uint64_t zero_opens; /* pages opened (zero_open.c) */
	_Atomic uint64_t zero_open_writes; /* of those, written: no fault */
	_Atomic uint64_t zero_closes; /* of those, closed unwritten */
	_Atomic uint64_t zero_open_errors; /* calls refused (kept open) */
	_Atomic uint64_t image_pages;
	_Atomic uint64_t swap_errors;
	_Atomic uint64_t fault_errors;
	/* pages that could not be read back; see mv_vm_stats */
	_Atomic uint64_t unreadable_pages;
	_Atomic uint64_t first_unreadable_ppn;
	_Atomic int unreadable_err;
	/* mv_vm_discard (attach.c): see mv_vm_stats */
	_Atomic uint64_t discard_pages;
	_Atomic uint64_t discard_frames_freed;
	/* this VM's faults in the host's alloc_waits and blocked_waits */
	_Atomic uint64_t alloc_waits;
	_Atomic uint64_t blocked_waits;
};

/*
 * Active-memory sampling (sample.c).  While a page is sampled it lives in
 * slot i of `area` and its pmap entry is SAMPLED with payload i | origin
 * << 8; the fault that brings it back counts it touched.
 */
struct mv__sample {
	uint8_t *area; /* MV_SAMPLE_PAGES pages registered with the VM's uffd */
	/* the rest is the scheduler thread's alone, except touched */
	uint64_t ppn[MV_SAMPLE_PAGES]; /* sampled this period */
	unsigned n; /* pages sampled this period */
	_Atomic unsigned touched; /* of those, faulted back by the guest */
	uint64_t rng; /* picks the pages */
	bool measured; /* a period has ended: the averages hold data */
	bool begun; /* the first period has begun */
	/* a whole period has passed, with pages sampled or not (a VM holding
	 * hardly a frame of its own has none to sample): its demand counts
	 * (an agent's thread reads it beside the scheduler) */
	_Atomic bool demand_known;
	uint32_t slow, fast; /* moving averages of the touched permille */
	uint64_t refaults; /* swap-ins and unzips when the period began */
	/* demand: active pages when the period began, and the VM's fills
	 * (swap-ins, unzips, first touches) then */
	_Atomic uint64_t active_base, base_fills;
	/* the estimate, max(slow, fast): 1000 until measured, so that no VM
	 * is taxed for idleness nobody has seen */
	_Atomic uint32_t active_permille;
	/*
	 * Park slots: pages reclaim took out and could not put back (the
	 * kernel refused both UFFDIO_MOVE and UFFDIO_COPY) wait here, SAMPLED
	 * with slot MV_SAMPLE_PAGES + i, until a fault, a later reclaim or
	 * sampling period, or the balloon puts them back.  Slots are taken
	 * under reclaim_lock only, and a reclaim batch never has more victims
	 * than free slots, so a victim always has one.
	 */
	uint8_t *park; /* MV_PARK_PAGES pages, not registered with the uffd */
	_Atomic uint64_t parked; /* bit i: park slot i holds a page */
	_Atomic uint64_t park_ppn[MV_PARK_PAGES]; /* whose page */
	_Atomic uint64_t parked_total; /* pages ever parked */
	_Atomic uint64_t put_back_errors; /* put-backs the kernel refused */
};

/*
 * Large pages (lpage.c): bit r of `large` says that the 512 pages of the
 * aligned 2 MiB region r are backed by one 2 MiB page.  Set only by a
 * collapse holding all 512 entry locks, cleared only by a break holding at
 * least one; so the bit read under a page's lock holds while it is held.
 * NULL when large pages are off for the VM.
 */
#define MV_LPAGE_PAGES 512
struct mv__lpage {
	_Atomic uint64_t *large; /* one bit per region; NULL: off */
	/* bit r: region r was resident and private at the last pass */
	_Atomic uint64_t *seen;
	uint64_t nregions; /* whole 2 MiB regions; immutable */
	uint64_t rng; /* picks where breaks start; scheduler only */
	_Atomic uint64_t regions; /* large now */
	_Atomic uint64_t collapses; /* total */
	_Atomic uint64_t breaks; /* total */
	_Atomic uint64_t collapse_errors; /* collapses the kernel refused */
};

/*
 * Adaptive swap-in (readahead.c): the window of a read-back fault (a
 * SWAPPED or COMPRESSED page), by whether earlier reads were used.
 * Relaxed atomics, no lock: a heuristic.
 */
#define MV_RA_STREAMS 8
struct mv__ra {
	/* pages the next fault that is no hit reads (0: not yet, the max) */
	_Atomic unsigned window;
	_Atomic uint64_t
		end[MV_RA_STREAMS]; /* page after a recent run; 0 none */
	_Atomic unsigned win[MV_RA_STREAMS]; /* the window it was read with */
	_Atomic unsigned next; /* the stream slot a miss takes */
	_Atomic uint64_t hits; /* faults that continued a recent run */
	_Atomic uint64_t misses; /* faults that did not */
	_Atomic uint64_t runs; /* runs read back */
};

/* A VM's place in the scheduler: set through the API, read by sched.c. */
struct mv__vm_sched {
	_Atomic uint64_t shares;
	_Atomic uint64_t min_pages; /* reservation */
	_Atomic uint64_t limit_pages; /* npages when unlimited */
	_Atomic uint64_t sztgt_pages; /* SZTGT, from the last balance */
	_Atomic uint64_t swtgt_pages; /* SWTGT */
	/* the demand cap that bound SZTGT at the last balance, plus one; 0
	 * when none did (sched.c: a VM outgrowing it is balanced early) */
	_Atomic uint64_t capped_at1;
	/* when it joined the host, whole (mv__now_ms): set just before it
	 * is linked, never changed */
	uint64_t born_ms;
};

/*
 * A VM's reclaim thread (sched.c, Mem.ReclaimPerVM): the scheduler asks it
 * for pages and goes on to other VMs while it works, so that reclaim runs
 * per VM, concurrently, and one VM's slow swap write holds no other VM.
 */
struct mv__reclaimer {
	pthread_t thread;
	bool started; /* immutable once the VM is linked */
	pthread_mutex_t lock; /* protects the fields below */
	pthread_cond_t wake; /* a request, or stop */
	uint64_t want; /* pages asked for, not yet taken up; 0: none */
	unsigned tick; /* the scheduler's tick that asked */
	bool busy; /* a request is asked or running */
	bool stop;
	unsigned empty_tick; /* the last tick whose request found nothing */
	_Atomic uint64_t pages; /* reclaimed by this thread, in all */
	_Atomic uint64_t requests; /* requests served, in all */
};

/*
 * A remote VM (daemon.c): a VM whose memory lives in another process, a
 * VMM with an agent (agent.c), and which this host only schedules.  It has
 * no mapping, pmap, fault threads, swap file or share state; the
 * mechanisms pass it over (vm->remote set).  Its consumed_pages are the
 * frames its grant holds in this host's budget; its active estimate is the
 * agent's (sample.active_permille, written by the daemon); mv_vm_stats
 * reports the agent's last figures.
 */
struct mv__remote {
	pthread_mutex_t lock; /* protects stats */
	struct mv_vm_stats stats; /* the agent's last report */
	uint32_t pid; /* the VMM's process; immutable */
};

/* zero_open.c: the pages of a VM read as zeros whose first write is the
 * kernel's (PMAP_ZERO_OPEN) */
struct mv__zero_open {
	/* ZERO entries with payload PMAP_ZERO_OPEN; each has a frame counted
	 * in the VM's consumed_pages */
	_Atomic uint64_t pages;
	_Atomic uint64_t close_cursor; /* where the next close looks first */
	/* the scheduler's (relaxed: a test may tick a VM beside it) */
	_Atomic uint64_t open_cursor; /* where top-up goes on */
	_Atomic uint64_t next_harvest_ms;
	_Atomic uint64_t swept_maps; /* zero_maps when a top-up found none */
};

struct mv_vm {
	struct mv_host *host; /* immutable */
	/* NULL for a VM of this process; immutable */
	struct mv__remote *remote;
	struct mv_vm *next; /* host->vms list; protected by host->vms_lock */
	/* pins by the scheduler, taken under vms_lock while the VM is on the
	 * list: mv_vm_destroy waits for them to go (sched.c, reclaim_batch) */
	_Atomic unsigned sched_refs;
	char name[MV_NAME_MAX]; /* immutable */
	uint32_t id; /* immutable; seeds victim choice */

	uint8_t *mem; /* guest physical memory; immutable */
	uint64_t npages; /* immutable */
	/* mem is the VMM's mapping (cfg.mem, attach.c): never unmapped, its
	 * content put back at destroy; immutable */
	bool attached;
	uint64_t adopted_pages; /* pages written before the attach; immutable */
	mv_pte *pmap; /* one entry per ppn; each guarded by its PMAP_LOCK */
	/* pmap entries by state (pmap.h); written by every fault */
	_Alignas(MV_CACHELINE) struct mv__pmap_census census;

	_Alignas(MV_CACHELINE) int uffd; /* covering mem and staging */
	/* one page registered with uffd, touched to stop the fault threads,
	 * which block in read() (fault.c) */
	uint8_t *fault_stop_page;
	_Atomic unsigned fault_live; /* fault threads not yet stopped */
	pthread_t fault_threads[MV_MAX_FAULT_THREADS];
	unsigned nfault_threads;

	int image_fd; /* RAM image, -1 if none; immutable */
	uint64_t image_bytes; /* its size; pages past it read as zero */

	struct mv__swap swap; /* the VM's swap file */
	struct mv__balloon balloon; /* balloon target, size and counters */
	struct mv__zcache zc; /* the VM's compression cache */
	struct mv__vm_share sh; /* the VM's part in page sharing */
	struct mv__sample sample; /* active-memory sampling */
	struct mv__vm_sched sched; /* shares, reservation, limit, targets */
	struct mv__lpage lp; /* large pages */
	struct mv__ra ra; /* adaptive swap-in */
	struct mv__cold cold; /* warmth per page, reclaim's clock (cold.c) */
	/* where its service threads run: beside its vCPUs (affinity.c) */
	struct mv__affinity aff;

	struct mv__reclaimer rc; /* the VM's reclaim thread (sched.c) */

	pthread_mutex_t reclaim_lock; /* protects staging and rng */
	uint8_t *staging; /* MV_RECLAIM_BATCH pages registered with uffd */
	/* MADV_DONTNEED of staging failed: it holds stale pages, and no page
	 * can be moved in until a retry empties it (reclaim.c) */
	bool staging_dirty;
	uint64_t rng; /* xorshift state for random victims */

	_Alignas(MV_CACHELINE) _Atomic uint64_t consumed_pages; /* frames held */
	_Atomic uint64_t swcur_pages; /* pages in the swap file */
	struct mv_vm_counters c;
	struct mv__zero_open zo; /* open zero pages (zero_open.c) */
};

/* budget.c: the frame budget and the admission gate */
unsigned mv__frames_reserve(struct mv_host *h, unsigned want);
void mv__frames_release(struct mv_host *h, uint64_t n);
/* A fault's reservation given back unused: as mv__frames_release, but not
 * reclaim's progress (budget.c, stalled_move). */
void mv__frames_unreserve(struct mv_host *h, uint64_t n);
/* A fault of vm found no free frame: waits (bounded) for one; counted for
 * the host and for vm. */
void mv__frames_wait(struct mv_host *h, struct mv_vm *vm);
/*
 * Called by a fault thread holding no lock before it serves a fault: in the
 * low state a VM above its target waits here until memory frees.
 */
void mv__budget_admit(struct mv_vm *vm);
/*
 * A new budget of pages (at least 16) and its minFree (mv_minfree_bytes,
 * below pages): an agent's host follows its grant.
 * Growing wakes faults waiting for frames; shrinking below what guests
 * hold wakes the scheduler, which reclaims down to it (the caller waits
 * for consumed_pages to fall, bounded, before it says the grant is kept).
 */
void mv__budget_set_memsize(struct mv_host *h, uint64_t pages,
			    uint64_t minfree);
/*
 * The daemon's target for the VM of an agent's host (pages), from its
 * last grant: the VM's footprint is held to it where the local target,
 * which follows a grant the daemon may hand out speculatively, would not
 * hold it (fault.c, zero_write_around).  UINT64_MAX for a host of its own.
 */
void mv__budget_set_grant_target(struct mv_host *h, uint64_t pages);
/* fn is called (with no lock held) when memory runs short or a fault waits
 * for a frame; NULL removes it. */
void mv__budget_set_pressure_hook(struct mv_host *h,
				  void (*fn)(struct mv_host *h));

/*
 * msg.c: the host's message (mv_host_errmsg_copy).  mv__host_set_msg also
 * queues it for the log callback as a warning, mv__host_event at the level
 * given; mv__host_api_msg does not: it explains an error an API call
 * returns to its caller at once.  All three may be called under any engine
 * lock (msg_lock is a leaf); the callback runs later, on the log thread.
 */
void mv__host_set_msg(struct mv_host *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void mv__host_event(struct mv_host *h, enum mv_log_level level, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));
void mv__host_api_msg(struct mv_host *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The log thread (none without a callback): 0 or -errno. */
int mv__log_start(struct mv_host *h);
void mv__log_stop(struct mv_host *h);

/* vm.c: a remote VM (struct mv__remote) on host h, scheduled with cfg's
 * shares, reservation and limit; mv_vm_destroy destroys it and gives its
 * frames back.  0, or -EINVAL/-ENOMEM (the host message says why). */
int mv__vm_create_remote(struct mv_host *h, const struct mv_vm_config *cfg,
			 uint32_t pid, struct mv_vm **out);

/* host.c: the VM list */
void mv__host_link_vm(struct mv_host *h, struct mv_vm *vm);
void mv__host_unlink_vm(struct mv_host *h, struct mv_vm *vm);

/* sched.c: the scheduler thread and what the rest asks of it */
int mv__sched_start(struct mv_host *h);
void mv__sched_stop(struct mv_host *h);
/* The reservation admission check: -EINVAL if the reservations of all VMs,
 * with vm's set to min_pages, would not fit the host. */
int mv__sched_check_reservation(struct mv_host *h, struct mv_vm *vm,
				uint64_t min_pages);
/* The VM's reclaim thread (none with Mem.ReclaimPerVM = 0): started before
 * the VM is linked, stopped once it is unlinked and unpinned (it finishes
 * the batch it is in).  0 or -errno. */
int mv__reclaimer_start(struct mv_vm *vm);
void mv__reclaimer_stop(struct mv_vm *vm);

/*
 * readahead.c: adaptive swap-in.  mv__ra_window gives the window (1 to
 * max) for a read-back fault on ppn, counts it a hit (it continues a
 * recent run) or a miss, and sets *stream for mv__ra_record, which notes
 * the run [lo, lo + n) that fault read with that window.  mv__ra_current
 * is the VM's window now (its statistics).
 */
unsigned mv__ra_window(struct mv_vm *vm, uint64_t ppn, unsigned max,
		       unsigned *stream);
void mv__ra_record(struct mv_vm *vm, unsigned stream, uint64_t lo, uint64_t n,
		   unsigned window);
unsigned mv__ra_current(struct mv_vm *vm, unsigned max);

/* sample.c: active-memory sampling */
int mv__sample_init(struct mv_vm *vm);
void mv__sample_fini(struct mv_vm *vm);
/* Ends the period (untouched pages go back) and starts the next one. */
void mv__sample_period(struct mv_vm *vm);
/* fault.c: a fault on a SAMPLED page (entry v, locked): puts the page back,
 * counts it touched, unlocks.  If the kernel refuses, the page stays
 * SAMPLED (its content safe in its slot), the error is counted and the
 * guest thread woken to fault again: a fresh event retries. */
void mv__sample_fault(struct mv_vm *vm, uint64_t ppn, uint64_t v);
/* balloon.c: a SAMPLED page (entry *v, locked) goes back into the guest
 * uncounted and stays locked; *v becomes its PRIVATE entry.  0, or -errno
 * with *v unchanged (still SAMPLED) when the kernel refused. */
int mv__sample_unsample_locked(struct mv_vm *vm, uint64_t ppn, uint64_t *v);
/*
 * reclaim.c: keeps the content of page ppn (locked, entry v, taken out to
 * stage and refused back by the kernel) in a free park slot; returns the
 * SAMPLED entry to publish, or 0 with no slot free (cannot happen while
 * batches respect mv__sample_park_free()).
 */
uint64_t mv__sample_park(struct mv_vm *vm, uint64_t ppn, uint64_t v,
			 const uint8_t *stage);
/* Free park slots. */
unsigned mv__sample_park_free(struct mv_vm *vm);
/* One try to put each parked page back (entries by trylock); bounded, never
 * sleeps.  Returns pages put back. */
unsigned mv__sample_retry_parked(struct mv_vm *vm);
/* vm.c: the active-memory estimate, permille of the VM's frames */
uint32_t mv__sample_active_permille(struct mv_vm *vm);
/* The VM's demand in pages: active pages at the last period's end plus
 * the pages it filled since; UINT64_MAX until a whole period has passed.
 * Scheduler thread only. */
uint64_t mv__sample_demand_pages(struct mv_vm *vm);
/* Pages the VM filled since it began (mv__sample_demand_pages's fills):
 * every frame it holds was one, and those reclaim took and it wanted
 * back count again.  0 for a remote VM (its agent fills them). */
uint64_t mv__sample_filled_pages(struct mv_vm *vm);

/* fault.c: the fault service */
int mv__fault_start(struct mv_vm *vm);
void mv__fault_stop(struct mv_vm *vm);

/* cold.c: warmth and stamps for Mem.ReclaimPolicy cold (none for random): 0 or
 * -ENOMEM */
int mv__cold_init(struct mv_vm *vm, unsigned policy);
void mv__cold_fini(struct mv_vm *vm);

/* reclaim.c: swap-out */
int mv__reclaim_vm(struct mv_vm *vm, uint64_t want, uint64_t *done);
void mv__reclaim_restore(struct mv_vm *vm, uint64_t ppn, uint8_t *stage);

/*
 * move.c: UFFDIO_MOVE of len pages (len <= 64) from src to dst; returns how
 * many from the first moved, *err why not all.  Bit j of *strays: page j
 * was found moved past the count (a miscounted move): the caller, who
 * holds its lock, puts it back.
 */
unsigned mv__move_run(struct mv_vm *vm, void *dst, void *src, unsigned len,
		      int *err, uint64_t *strays);
/* UFFDIO_MOVE, UFFDIO_COPY of one page: 0 or -errno. */
int mv__move_page(struct mv_vm *vm, void *dst, void *src);
int mv__copy_page(struct mv_vm *vm, void *dst, const void *src);
enum mv__put_back {
	MV__PUT_MOVED, /* src is empty now */
	MV__PUT_COPIED, /* src still holds a copy */
	MV__PUT_THERE, /* dst was already filled; src still holds a copy */
};
/*
 * Puts the page at src back at guest address dst (entry locked by the
 * caller): MOVE (if may_move), else COPY, `tries` times, never waiting.
 * 0 with *how, or the last -errno (-ENOENT: a move found neither side
 * holding the page).
 */
int mv__put_back_page(struct mv_vm *vm, void *dst, void *src, bool may_move,
		      unsigned tries, enum mv__put_back *how);

/*
 * attach.c: a VMM's own mapping as guest memory.  Before registration:
 * checks that [mem, mem + len) is one private anonymous read/write
 * mapping, keeps it to 4 KiB pages, and adopts the pages already written
 * as PRIVATE (frames reserved from the host: -ENOMEM when the budget
 * cannot hold them); msg says what is wrong.  At destroy, with the fault
 * threads stopped and the uffd still open: every page whose content is
 * elsewhere (swap, cache, sampling, a shared frame) is put back.
 */
int mv__attach_prepare(struct mv_vm *vm, char *msg, size_t msglen);
void mv__attach_restore(struct mv_vm *vm);

/*
 * Whether vm has written, one fault each, at least pct percent of the
 * pages it was given as zeros (fault.c; MV__ZERO_AROUND_WRITTEN_PCT,
 * MV__ZERO_WRITER_PCT); never one that was given none.
 */
static inline bool mv__zero_writer(const struct mv_vm *vm, unsigned pct)
{
	uint64_t maps =
		atomic_load_explicit(&vm->c.zero_maps, memory_order_relaxed);
	uint64_t writes =
		atomic_load_explicit(&vm->c.zero_writes, memory_order_relaxed) +
		atomic_load_explicit(&vm->c.zero_open_writes,
				     memory_order_relaxed);

	return maps && writes * 100 >= maps * pct;
}

/*
 * zero_open.c: pages read as zeros whose first write the kernel serves
 * with no fault here (Mem.ZeroOpen).
 *
 * mv__zero_open_reserve: whether n pages of vm that are about to be
 * mapped to the zero page may be left open (the room rule, zero_open.c),
 * and if so their n frames reserved; mv__zero_open_count then counts the
 * ones mapped (the caller unreserves the rest).  mv__zero_close: closes
 * open pages of vm, from where the last close stopped, until want frames
 * came back or every page was looked at: those still mapping the zero
 * page become PMAP_ZERO_MAPPED again (their frames released), those the
 * guest wrote become PRIVATE; returns frames released.  mv__zero_tick:
 * the scheduler's look at one VM each tick.  mv__zero_supported: whether
 * this kernel has PAGEMAP_SCAN's zero-page category (NULL, or why not).
 */
bool mv__zero_open_reserve(struct mv_vm *vm, unsigned n);
/* The VM's ZERO pages that hold no frame: all but the open ones. */
static inline uint64_t mv__zero_frameless(const struct mv_vm *vm)
{
	uint64_t zero = atomic_load_explicit(&vm->census.pages[MV_PAGE_ZERO],
					     memory_order_relaxed),
		 open = atomic_load_explicit(&vm->zo.pages,
					     memory_order_relaxed);

	return zero > open ? zero - open : 0;
}
/*
 * A page whose entry was old has just been emptied (MADV_DONTNEED, by the
 * balloon or a discard): 1 if a frame was counted for it (PRIVATE, or
 * open: then no longer counted open), else 0.
 */
static inline unsigned mv__frame_dropped(struct mv_vm *vm, uint64_t old)
{
	if (pmap_zero_open(old)) {
		atomic_fetch_sub_explicit(&vm->zo.pages, 1,
					  memory_order_relaxed);
		return 1;
	}
	return pmap_state(old) == MV_PAGE_PRIVATE;
}
void mv__zero_open_count(struct mv_vm *vm, uint64_t n);
uint64_t mv__zero_close(struct mv_vm *vm, uint64_t want);
void mv__zero_tick(struct mv_vm *vm, uint64_t now_ms);
const char *mv__zero_supported(struct mv_host *h);

/* lpage.c: large pages.  0, or -ENOMEM; enabled false: never large. */
int mv__lpage_init(struct mv_vm *vm, bool enabled);
void mv__lpage_fini(struct mv_vm *vm);
/* Whether page ppn lies in a large region (exact while its entry is
 * locked by the caller). */
static inline bool mv__lpage_is_large(const struct mv_vm *vm, uint64_t ppn)
{
	uint64_t r = ppn / MV_LPAGE_PAGES;

	return vm->lp.large && r < vm->lp.nregions &&
	       (atomic_load_explicit(&vm->lp.large[r / 64],
				     memory_order_relaxed) >>
			(r % 64) &
		1);
}
/*
 * Breaks the large region holding ppn into 512 small pages, content kept;
 * the caller holds ppn's entry lock (or that of any page of the region).
 * true if it was large and this call broke it.
 */
bool mv__lpage_break_locked(struct mv_vm *vm, uint64_t ppn);
/* Breaks up to max large regions of the VM (the caller holds no entry
 * lock); returns how many. */
unsigned mv__lpage_break_some(struct mv_vm *vm, unsigned max);
/* One collapse pass over the VM: collapses up to max regions found
 * resident and private on this pass and the one before; returns how many. */
unsigned mv__lpage_pass(struct mv_vm *vm, unsigned max);

/* system.c: the kernel interfaces */
int mv__map_anon(size_t len, uint8_t **out);
int mv__uffd_register(int uffd, void *addr, size_t len, bool wp);
struct iovec;
/* MADV_DONTNEED of n ranges with one TLB flush; returns how many, from the
 * first, were dropped (the caller madvise()s the rest). */
unsigned mv__dontneed_batch(struct iovec *iov, unsigned n);
int mv__check_map_count(unsigned extra_maps, char *msg, size_t msglen);
int mv__map_count(long *used, long *max);
/* How many times /proc/self/maps was read (for tests). */
unsigned long mv__map_count_reads(void);
int mv__uffd_open(int *fd, char *msg, size_t msglen);
/* The aligned 2 MiB at addr (of a mapping from mv__map_anon) becomes one
 * huge page, content kept: 0 or -errno (docs/LARGEPAGES.md). */
int mv__lpage_sys_collapse(void *addr);
/* The huge page at addr becomes 512 small pages, content kept. */
int mv__lpage_sys_split(void *addr);

#endif /* MV_INTERNAL_H */
