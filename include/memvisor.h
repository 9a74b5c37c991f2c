/* SPDX-License-Identifier: MIT */
/*
 * memvisor.h - the public API of libmemvisor, the memory manager of a
 * hypervisor.
 *
 * A host owns a budget of machine memory.  VMs created on it get guest
 * physical memory: a real mapping of memsize bytes in this process that guest
 * threads touch at native speed.  memvisor steps in only on faults
 * (userfaultfd) and reclaims machine memory behind the guests' backs when the
 * host runs short, always giving back exactly the bytes that were there.
 *
 * Conventions: every call that can fail returns 0 or a negative errno;
 * mv_strerror() names it, and mv_host_errmsg_copy() copies out a sentence
 * saying what went wrong and what to do about it.  Events of the host's
 * background threads (a swap-out that failed, sharing stopped at the mapping
 * limit, a page lost) also go to the log callback of the host's config, if
 * set; the library itself never prints.  Objects are opaque and come in
 * mv_thing_create()/mv_thing_destroy() pairs.  Statistics are snapshots
 * copied out; nothing returned points into live state except the guest
 * memory itself (mv_vm_mem()).
 */
#ifndef MEMVISOR_H
#define MEMVISOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MV_PAGE_SIZE 4096u
#define MV_NAME_MAX 32

typedef struct mv_host mv_host;
typedef struct mv_vm mv_vm;

/*
 * Page states of the pmap (docs/DESIGN.md).  Every transition keeps the page's
 * content exactly.
 */
enum mv_page_state {
	MV_PAGE_UNTOUCHED = 0, /* never touched, or discarded by the VMM
				* (mv_vm_discard): reads as zero (or image) */
	MV_PAGE_PRIVATE, /* backed by its own machine frame */
	MV_PAGE_SHARED, /* read-only view of a refcounted shared frame */
	MV_PAGE_ZERO, /* known all-zero, no frame */
	MV_PAGE_BALLOONED, /* given up by the guest's balloon driver */
	MV_PAGE_COMPRESSED, /* in the VM's compression cache */
	MV_PAGE_SWAPPED, /* in the VM's swap file */
	MV_PAGE_SAMPLED, /* private, taken out for one sampling period to see
			  * whether the guest touches it */
	MV_PAGE_NSTATES
};

/* Free-memory states of the host, from free machine memory vs minFree. */
enum mv_mem_state {
	MV_STATE_HIGH = 0, /* free >= 400% of minFree */
	MV_STATE_CLEAR, /* free >= 100% */
	MV_STATE_SOFT, /* free >= 64% */
	MV_STATE_HARD, /* free >= 32% */
	MV_STATE_LOW, /* below */
};

/*
 * Tunables of a host.  mv_settings_init() fills ESX's defaults; change them
 * with mv_settings_set() (by ESX setting name, as scenario files do), which
 * rejects unknown names and out-of-range values with -EINVAL.  Units are in
 * the field names.
 */
struct mv_settings {
	/* Mem.ShareScanTime: minutes for the share scanner to cover a VM (60) */
	uint32_t share_scan_time_min;
	/* Mem.ShareScanGHz: host-wide scan budget, MiB/s per GHz of host CPU;
	 * 0 stops the background scanner (4) */
	uint32_t share_scan_ghz;
	/* Mem.ShareRateMax: pages per second scanned per VM at most (1024) */
	uint32_t share_rate_max_pages;
	/* Mem.ShareForceSalting: 0 every VM shares with every other; 1 a VM's
	 * salt if set, else shares with all; 2 a VM's salt if set, else it
	 * shares only with itself (2, ESXi 6+) */
	uint32_t share_force_salting;
	/* Mem.CtlMaxPercent: most of a VM the balloon may take, percent (65) */
	uint32_t ctl_max_pct;
	/* Mem.MemZipMaxPct: compression cache cap, percent of the VM (10) */
	uint32_t mem_zip_max_pct;
	/* Mem.IdleTax: idle memory tax rate, percent (75) */
	uint32_t idle_tax_pct;
	/* Mem.SamplePeriod: active-memory sampling period, seconds (60); 0 turns
	 * sampling off: every VM then counts as fully active, untaxed */
	uint32_t sample_period_s;
	/* Mem.BalancePeriod: scheduler rebalancing period, seconds (15) */
	uint32_t balance_period_s;
	/* Mem.FaultAroundPages: pages filled per first-touch fault (16, 1-64) */
	uint32_t fault_around_pages;
	/* Mem.SwapInClusterPages: most pages a swap-in reads with its
	 * neighbours; the window adapts per VM, 1 for random access (16, 1-64) */
	uint32_t swapin_cluster_pages;
	/* Mem.FaultThreads: fault service threads per VM (1, 1-16) */
	uint32_t fault_threads;
	/* Mem.ReclaimPerVM: each VM reclaims in its own thread, the
	 * scheduler only decides (1, 0-1); 0: the scheduler's thread
	 * reclaims, one VM at a time */
	uint32_t reclaim_per_vm;
	/* Mem.ServiceAffinity: a VM's fault threads and reclaim thread run
	 * on the CPUs its vCPU threads may use, read from the threads that
	 * fault (1, 0-1); 0: wherever the kernel's scheduler puts them */
	uint32_t service_affinity;
	/* Mem.SwapDirectIO: swap files opened O_DIRECT, bypassing the page cache (1) */
	uint32_t swap_direct_io;
	/* Mem.SwapRunPages: victims are random runs of up to this many
	 * neighbouring pages; 1 is ESX's one random page at a time (16) */
	uint32_t swap_run_pages;
	/* Mem.MemZipEnable: compress pages chosen for swapping (1) */
	uint32_t mem_zip_enable;
	/* Mem.ZipAlgorithm: 0 LZ4, 1 zstd level 1 (0) */
	uint32_t zip_algorithm;
	/* Mem.AllocGuestLargePage: back fully resident 2 MiB regions of guest
	 * memory with 2 MiB large pages, broken up under memory pressure
	 * (1; docs/LARGEPAGES.md) */
	uint32_t alloc_guest_large_page;
	/* Mem.DemandHeadroomPct: a measured VM gets a target of at most its
	 * demand (active memory plus what it filled since) plus this percent
	 * of it; the rest goes to the VMs that need it (25, 0-1000) */
	uint32_t demand_headroom_pct;
	/* Mem.ReclaimPolicy: which pages reclaim takes: 0 random runs (ESX's
	 * policy), 1 the coldest first, by fault history and sampling (1;
	 * docs/ARCHITECTURE.md, "Victims") */
	uint32_t reclaim_policy;
	/* Mem.ZipFastAccel: LZ4 acceleration the compression cache uses on a
	 * VM while probes measure that it costs no space (within 3%) against
	 * LZ4's default search; 1 always searches fully (8, 1-64;
	 * docs/ARCHITECTURE.md, "Fast compression") */
	uint32_t zip_fast_accel;
	/* Mem.ReadMapsZeroPage: a guest's read of a page it never touched
	 * maps the kernel's shared zero page there, with no frame, until its
	 * first write, as Linux serves anonymous memory (1, 0-1); 0: the read
	 * fills frames of zeros, the page's and its fault-around
	 * neighbours', as a write does.  A VM started from an image maps the
	 * zero page for the image's zeros either way */
	uint32_t read_maps_zero_page;
	/* Mem.ZeroWriteAround: the first write to a page read as zeros gives
	 * frames to its neighbours read as zeros too (up to
	 * Mem.FaultAroundPages, one fault for the run) while the VM has
	 * written at least a quarter of the pages it read as zeros, would
	 * stay within its target were it to write all of them, and the host
	 * would stay at minFree or above were every such VM to (1,
	 * 0-1; docs/ARCHITECTURE.md, "A first read is not a first write");
	 * 0: each such page's first write faults on its own */
	uint32_t zero_write_around;
	/* Mem.ZeroOpen: while memory is plentiful (the VM below its target,
	 * the host's free memory above twice minFree), pages read as zeros
	 * are left writable, a frame counted for each: their first write is
	 * the kernel's own copy, with no fault, and the scheduler finds the
	 * written ones (PAGEMAP_SCAN) and closes the rest when memory runs
	 * short (1, 0-1; docs/ARCHITECTURE.md, "Open zero pages"); needs
	 * Linux 6.7 or later, and does nothing without it */
	uint32_t zero_open;
};

void mv_settings_init(struct mv_settings *s);
/* Set one tunable by its ESX name ("Mem.ShareScanTime") from a decimal string. */
int mv_settings_set(struct mv_settings *s, const char *name, const char *value);
/*
 * Checks every field against the ranges mv_settings_set() enforces (fields
 * may also be set directly).  0, or -EINVAL with a sentence in msg (may be
 * NULL) naming the first bad setting, its value and its range.
 * mv_host_create() runs this check and refuses invalid settings.
 */
int mv_settings_check(const struct mv_settings *s, char *msg, size_t msglen);

/* Log levels of host events, most severe first. */
enum mv_log_level {
	MV_LOG_ERROR = 0, /* guest data at risk or lost, or a guest stuck */
	MV_LOG_WARNING, /* something failed and was handled (retried, kept) */
	MV_LOG_INFO, /* worth knowing */
};

/*
 * A host's log callback: one sentence per event, no newline.  It is called
 * from a thread of the host's own (never from a fault or reclaim path and
 * with no engine lock held), one event at a time, in the order the events
 * happened; it may call any mv_ function except mv_host_destroy() of its
 * host.  Events are queued; when the queue is full the oldest are dropped,
 * and the next event delivered says how many were.  mv_host_destroy()
 * delivers what is queued before it returns.
 */
typedef void (*mv_log_fn)(void *arg, enum mv_log_level level, const char *msg);

struct mv_host_config {
	uint64_t memsize_bytes; /* machine memory budget handed to guests */
	const char *swapdir; /* directory for per-VM swap files */
	struct mv_settings settings;
	mv_log_fn log; /* host events (NULL: none; see mv_host_errmsg_copy) */
	void *log_arg; /* passed to log */
};

/* Fills defaults: 1 GiB budget, swapdir /var/tmp/memvisor, ESX settings. */
void mv_host_config_init(struct mv_host_config *cfg);

/*
 * Checks that this kernel and process can run memvisor at all: userfaultfd
 * with the features needed, and vm.max_map_count.  On failure returns
 * -ENOSYS/-EPERM/-ENOMEM and writes a sentence naming the problem and the
 * fix into msg.
 */
int mv_check_system(char *msg, size_t msglen);

/*
 * Mappings (VMAs, limited by vm.max_map_count) a VM of memsize_bytes may
 * need, at most: a few of its own, plus two per guest page when page
 * sharing can reach it (sharing non-zero: Mem.ShareScanGHz is above 0 or
 * the VMM calls mv_vm_share_scan()).  An upper bound: neighbouring shared
 * pages need fewer.  At the limit sharing stops safely, nothing fails; this
 * many lets it never stop for lack of mappings.
 */
uint64_t mv_vm_maps_bound(uint64_t memsize_bytes, int sharing);
/* vm.max_map_count (*max), the mappings this process uses now (*used) and
 * those memvisor leaves free for the process's own use (*reserve).  0, or
 * -ENOENT when procfs cannot tell. */
int mv_map_count(long *used, long *max, long *reserve);

/*
 * -EINVAL for a bad memsize or swapdir, or settings mv_settings_check()
 * refuses; the sentence saying which is then mv_host_errmsg_copy(NULL, ...)
 * of the calling thread.
 */
int mv_host_create(const struct mv_host_config *cfg, mv_host **out);
/* Destroys the host; every VM must have been destroyed first. */
void mv_host_destroy(mv_host *host);
/*
 * Copies a sentence about the last error or warning of this host ("" if
 * none) into buf, cut to len - 1 bytes and NUL-terminated; the host's
 * threads may write a new one at any time, so it is copied under the host's
 * lock.  host NULL: the calling thread's last mv_host_create() failure.
 * Returns the sentence's full length (as snprintf), or -EINVAL.
 */
int mv_host_errmsg_copy(const mv_host *host, char *buf, size_t len);
/* The same sentence, copied into a buffer of the calling thread, valid
 * until that thread's next call of mv_host_errmsg(). */
const char *mv_host_errmsg(const mv_host *host);

/*
 * Shares, as ESX gives them: low, normal and high are 5, 10 and 20 shares
 * per MiB of the VM's memsize (mv_shares_for()); any number from 1 to
 * MV_SHARES_MAX also works.  Under pressure, memory goes to VMs by shares,
 * less the idle memory tax on memory they do not use (Mem.IdleTax).
 */
enum mv_shares_level { MV_SHARES_LOW, MV_SHARES_NORMAL, MV_SHARES_HIGH };
#define MV_SHARES_MAX 1000000000ull
uint64_t mv_shares_for(enum mv_shares_level level, uint64_t memsize_bytes);

struct mv_vm_config {
	char name[MV_NAME_MAX];
	uint64_t memsize_bytes; /* guest physical memory, multiple of 4 KiB */
	const char *
		image_path; /* optional RAM image, loaded lazily; NULL if none */
	/* sched.mem.pshare.salt: VMs with equal salts may share pages with
	 * each other (see Mem.ShareForceSalting); "" if unset */
	char salt[MV_NAME_MAX];
	uint64_t shares; /* 0: normal, mv_shares_for(MV_SHARES_NORMAL, ...) */
	/* machine memory never reclaimed below; 0 none; at most memsize, and
	 * the reservations of all VMs must fit memsize less minFree */
	uint64_t reservation_bytes;
	/* machine memory never given above; 0 none (memsize); at least the
	 * reservation and at most memsize */
	uint64_t limit_bytes;
	/* 1: never back this VM with large pages, whatever
	 * Mem.AllocGuestLargePage says (0: as the host says) */
	uint32_t large_pages_off;
	/*
	 * Attach (docs/VMM.md): NULL, the VM maps its own guest memory; else
	 * the caller's existing private anonymous read/write mapping of
	 * memsize_bytes at this address (4 KiB aligned; large pages only if
	 * it is 2 MiB aligned), which becomes the VM's guest memory.  Pages
	 * already written (present, or in the kernel's swap) are adopted as
	 * they are, PRIVATE.  The VM never unmaps it; the caller keeps it
	 * mapped until mv_vm_destroy(), which puts every page's content back
	 * into it (swapped, compressed, shared, sampled pages) and leaves it
	 * mapped, unregistered, plain memory again.  No image_path with it.
	 */
	void *mem;
};

void mv_vm_config_init(struct mv_vm_config *cfg);
/* -EINVAL also for shares, reservation or limit out of range (the host
 * message says which). */
int mv_vm_create(mv_host *host, const struct mv_vm_config *cfg, mv_vm **out);
void mv_vm_destroy(mv_vm *vm);

/*
 * The VMM dropped the guest pages [offset, offset + len) (balloon
 * inflation, free page reporting: what madvise(MADV_DONTNEED) means for
 * anonymous memory): their frames, compression cache entries, swap slots
 * and shared references are freed at once, and each page reads as zeros
 * on its next touch (UNTOUCHED; ZERO for a VM with a RAM image).  Safe
 * against guest touches, reclaim, sampling and sharing running at the
 * same time (page locks).  Never call madvise(MADV_DONTNEED) on an
 * attached VM's memory yourself: the engine would not know the frames
 * are gone.  offset and len are multiples of 4 KiB inside the VM
 * (-EINVAL otherwise).  0, or -EBUSY when some pages could not be
 * dropped (a page the kernel would not let back from sampling, a copy
 * pinned inside a shared mapping): those keep their content and the rest
 * are dropped.  Counted in mv_vm_stats' discard_pages and
 * discard_frames_freed, never in the balloon's MCTLSZ.
 */
int mv_vm_discard(mv_vm *vm, uint64_t offset, uint64_t len);

/* Change a running VM's shares, reservation or limit (as in the config,
 * rounded down to pages); -EINVAL, changing nothing, when out of range.
 * The scheduler computes new targets at its next tick (within ~50 ms),
 * not at the end of its balance period. */
int mv_vm_set_shares(mv_vm *vm, uint64_t shares);
int mv_vm_set_reservation(mv_vm *vm, uint64_t bytes);
int mv_vm_set_limit(mv_vm *vm, uint64_t bytes);

/* Guest physical memory: base address and size.  Guest threads touch it. */
void *mv_vm_mem(const mv_vm *vm);
uint64_t mv_vm_memsize(const mv_vm *vm);
const char *mv_vm_name(const mv_vm *vm);

/* The pmap state of one page, or -EINVAL for a ppn out of range. */
int mv_vm_page_state(mv_vm *vm, uint64_t ppn);

/*
 * Reclaim: swap out (or compress, with the compression cache on) up to
 * npages PRIVATE pages of this VM, chosen as the scheduler's reclaim
 * chooses them (Mem.ReclaimPolicy: the coldest by default, at random
 * with 0, ESX's policy); *done says how many were.  Open zero pages
 * (Mem.ZeroOpen) hold frames but no data and are not taken here: the
 * scheduler's own reclaim closes them first.  Returns an error only if none
 * could be swapped out for a reason other than there being none to take
 * (e.g. -ENOSPC with the swap directory full: the pages stay in memory;
 * -EBUSY while pages the kernel would not let back into the guest are
 * still parked, mv_vm_stats' parked_pages, or the staging area cannot be
 * emptied: a later call retries).
 * A write is tried 3 times; after one that still fails, the VM's swap file
 * is paused (250 ms, doubling up to 8 s while failures go on; swap_paused
 * in mv_vm_stats) and swap-outs fail at once with that error meanwhile.
 */
int mv_vm_swap_out(mv_vm *vm, uint64_t npages, uint64_t *done);
/* Swap out exactly page ppn if it is PRIVATE (for tests and tools). */
int mv_vm_swap_out_page(mv_vm *vm, uint64_t ppn);

/*
 * Transparent page sharing, now, in the caller's thread: scans the next
 * npages pages of the VM's current random pass (every page once per pass),
 * as the host's scanner does in the background at the Mem.Share* rates.
 * *merged (may be NULL) gets the pages that became SHARED or ZERO.
 */
int mv_vm_share_scan(mv_vm *vm, uint64_t npages, uint64_t *merged);

/*
 * Large pages (docs/LARGEPAGES.md), now, in the caller's thread: every
 * aligned 2 MiB region of the VM whose 512 pages are all resident and
 * private becomes one 2 MiB page (*regions, may be NULL, gets how many);
 * -EOPNOTSUPP when large pages are off for the VM.  The scheduler does the
 * same in the background in the high state, and breaks them up under
 * pressure.  mv_vm_lpage_break breaks every large page of the VM into
 * 4 KiB pages, content kept.  mv_vm_page_large: 1 if page ppn lies in a
 * large page, 0 if not, -EINVAL out of range.
 */
int mv_vm_lpage_collapse(mv_vm *vm, uint64_t *regions);
int mv_vm_lpage_break(mv_vm *vm, uint64_t *regions);
int mv_vm_page_large(mv_vm *vm, uint64_t ppn);

/*
 * Ballooning.  A driver inside the guest gives back pages its guest OS is
 * not using, through a private channel with virtio-balloon's semantics (so
 * that a virtio transport can be put under it): the host publishes a target
 * num_pages; the driver inflates (gives pages up) or deflates (takes them
 * back) with messages of 4 KiB PFNs and reports VIRTIO_BALLOON_S_*
 * statistics.  The host checks every message: what it refuses changes
 * nothing and is counted in balloon_errors.  docs/BALLOON.md has the rest.
 */
#define MV_BALLOON_PFNS_MAX 256 /* PFNs per message, as in virtio-balloon */

/* Tags of the statistics message: the VIRTIO_BALLOON_S_* values. */
enum mv_balloon_stat_tag {
	MV_BALLOON_S_SWAP_IN = 0, /* bytes the guest swapped in */
	MV_BALLOON_S_SWAP_OUT, /* bytes the guest swapped out */
	MV_BALLOON_S_MAJFLT, /* major faults in the guest */
	MV_BALLOON_S_MINFLT, /* minor faults in the guest */
	MV_BALLOON_S_MEMFREE, /* bytes free */
	MV_BALLOON_S_MEMTOT, /* bytes of memory in total */
	MV_BALLOON_S_AVAIL, /* bytes available to applications */
	MV_BALLOON_S_CACHES, /* bytes of disk caches */
	MV_BALLOON_S_HTLB_PGALLOC, /* huge page allocations */
	MV_BALLOON_S_HTLB_PGFAIL, /* huge page allocation failures */
	MV_BALLOON_S_NR
};

enum mv_balloon_msg_type {
	MV_BALLOON_MSG_INFLATE = 1, /* pfns: pages the guest gives up */
	MV_BALLOON_MSG_DEFLATE, /* pfns: pages the guest takes back */
	MV_BALLOON_MSG_STATS, /* stats: the guest's memory statistics */
};

/* virtio_balloon_stat, with the padding spelled out instead of packed. */
struct mv_balloon_stat {
	uint16_t tag; /* enum mv_balloon_stat_tag */
	uint8_t reserved[6];
	uint64_t val;
};

struct mv_balloon_msg {
	uint32_t type; /* enum mv_balloon_msg_type */
	uint32_t num; /* entries used in the payload */
	union {
		uint32_t pfns[MV_BALLOON_PFNS_MAX]; /* 4 KiB page numbers */
		struct mv_balloon_stat stats[MV_BALLOON_S_NR];
	} u;
};

/* What the host writes back, as a virtio device into a writable buffer. */
struct mv_balloon_reply {
	uint32_t accepted; /* entries acted on */
	uint32_t rejected; /* entries refused, each counted in balloon_errors */
	uint64_t rejected_map[MV_BALLOON_PFNS_MAX / 64]; /* bit i: entry i */
};

/* The device's config space: virtio_balloon_config's first two fields. */
struct mv_balloon_config {
	uint32_t num_pages; /* target: pages the host wants given up */
	uint32_t actual; /* pages in the balloon, as the host counted them */
};

typedef struct mv_balloon_chan mv_balloon_chan;

/* The driver's end of a VM's channel, one at a time (-EBUSY).  Close it
 * before the VM is destroyed. */
int mv_balloon_open(mv_vm *vm, mv_balloon_chan **out);
void mv_balloon_close(mv_balloon_chan *ch);
int mv_balloon_get_config(mv_balloon_chan *ch, struct mv_balloon_config *cfg);
/*
 * Delivers one message; reply (may be NULL) says which entries were
 * refused.  0 when processed, even with refusals; -EINVAL (unknown type)
 * or -E2BIG (more entries than the payload holds) when refused whole.
 */
int mv_balloon_send(mv_balloon_chan *ch, const struct mv_balloon_msg *msg,
		    struct mv_balloon_reply *reply);

/* Sets the VM's balloon target (bytes, rounded down to pages); more than
 * Mem.CtlMaxPercent of the VM is clipped to that. */
int mv_vm_balloon_set_target(mv_vm *vm, uint64_t bytes);

struct mv_balloon_info {
	uint64_t requested_pages; /* target as set */
	uint64_t target_pages; /* MCTLTGT: num_pages, after the cap */
	uint64_t actual_pages; /* MCTLSZ: pages in the balloon */
	uint64_t max_pages; /* MCTLMAX: Mem.CtlMaxPercent of the VM */
	int has_driver; /* a driver holds the channel */
	uint64_t inflated_pages; /* taken into the balloon, total */
	uint64_t deflated_pages; /* given back by deflate, total */
	uint64_t frames_freed; /* machine frames released by inflation */
	uint64_t msgs; /* messages received */
	uint64_t errors; /* refused messages and entries */
	uint64_t violations; /* guest touches of ballooned pages */
	uint64_t stats[MV_BALLOON_S_NR]; /* last values the guest reported */
	uint32_t stats_valid; /* bit t: stats[t] was reported */
	uint64_t stats_age_ms; /* since the last report; UINT64_MAX: none */
};

int mv_vm_balloon_info(mv_vm *vm, struct mv_balloon_info *info);

struct mv_vm_stats {
	char name[MV_NAME_MAX];
	uint64_t memsz_pages; /* MEMSZ: configured guest memory */
	uint64_t consumed_pages; /* machine frames this VM holds */
	uint64_t touched_pages; /* pages touched at least once */
	uint64_t active_pages; /* TCHD: active memory estimated by sampling */
	uint32_t active_permille; /* %ACTV * 10: of the frames the VM holds */
	uint64_t shares; /* its shares */
	uint64_t reservation_pages; /* its reservation */
	uint64_t limit_pages; /* its limit (memsize when none) */
	uint64_t sztgt_pages; /* SZTGT: what the scheduler wants it to hold */
	uint64_t swtgt_pages; /* SWTGT: what the scheduler wants swapped */
	/* pmap census: pages in each state, read again (a bounded number
	 * of times) until they add up to memsz_pages: a page caught
	 * changing state is in neither */
	uint64_t state_pages[MV_PAGE_NSTATES];
	uint64_t swcur_pages; /* SWCUR: pages in the swap file */
	uint64_t swapin_pages; /* pages read back from swap, total */
	uint64_t swapout_pages; /* pages written to swap, total */
	uint64_t faults; /* userfaultfd events served */
	uint64_t faults_spurious; /* events for pages already present */
	uint64_t fault_fill_pages; /* pages filled by first-touch faults */
	/* reads of ZERO pages answered with the kernel's zero page (no frame;
	 * the page stays ZERO until written) */
	uint64_t zero_maps;
	/* first writes to pages read as zeros (faults), and the neighbours
	 * read as zeros given frames with them (Mem.ZeroWriteAround) */
	uint64_t zero_writes;
	uint64_t zero_around_pages;
	/* Mem.ZeroOpen: pages read as zeros left writable (total), those the
	 * guest then wrote with no fault (found by the scheduler or a close),
	 * those closed unwritten (their frames given back), the ones open
	 * now, and calls the kernel refused (the pages kept as they were) */
	uint64_t zero_opens;
	uint64_t zero_open_writes;
	uint64_t zero_closes;
	uint64_t zero_open_pages;
	uint64_t zero_open_errors;
	uint64_t image_pages; /* pages filled from the RAM image */
	uint64_t swap_errors; /* swap-out attempts that failed (page kept) */
	uint64_t fault_errors; /* faults that could not be served */
	uint64_t swap_write_errors; /* swap writes that failed all their tries */
	uint32_t swap_paused; /* 1 while the swap file rests after one */
	/* pages whose content could not be read back (persistent swap or image
	 * read error): kept where it was (slot, image), never replaced; a guest
	 * touch of one raises SIGBUS at its address, as a memory error would */
	uint64_t unreadable_pages;
	uint64_t first_unreadable_ppn; /* the first of them, if any */
	int32_t unreadable_err; /* why, -errno (0 if none) */
	uint64_t mctlsz_pages; /* MCTLSZ: pages in the balloon */
	uint64_t mctltgt_pages; /* MCTLTGT: the balloon's target */
	uint64_t mctlmax_pages; /* MCTLMAX: most the balloon may take */
	uint32_t balloon_driver; /* 1 if a balloon driver is connected */
	uint64_t balloon_errors; /* refused balloon messages and entries */
	uint64_t balloon_violations; /* guest touches of ballooned pages */
	uint64_t zip_cached_pages; /* pages in the compression cache */
	uint64_t zip_used_bytes; /* CACHEUSD: machine memory the cache holds */
	uint64_t zip_stored_bytes; /* sum of the compressed sizes held */
	uint64_t zip_saved_bytes; /* ZIPSAVED: cached pages' size - CACHEUSD */
	uint64_t zip_max_bytes; /* the cache's cap (Mem.MemZipMaxPct) */
	uint64_t zip_pages; /* pages compressed into the cache, total */
	uint64_t unzip_pages; /* pages decompressed on faults, total */
	uint64_t zip_evict_pages; /* oldest cached pages pushed to swap */
	uint64_t zip_incompressible; /* victims over 2 KiB compressed: swapped */
	uint64_t zip_fast_pages; /* victims compressed with Mem.ZipFastAccel */
	uint32_t zip_accel; /* LZ4 acceleration the cache uses now (1: full) */
	uint64_t shrd_pages; /* SHRD: pages mapping a shared frame */
	uint64_t zero_pages; /* ZERO: pages known all-zero, no frame */
	uint64_t shrdsvd_pages; /* SHRDSVD: frames saved, this VM's part */
	uint64_t share_scanned_pages; /* PRIVATE pages the scanner examined */
	uint64_t cow_breaks; /* writes that broke sharing, total */
	/* pages the kernel would not let back into the guest after a failed
	 * swap-out, their content kept by the engine until it does (SAMPLED;
	 * a touch, the next reclaim or sampling period retries): now, and
	 * ever */
	uint64_t parked_pages;
	uint64_t parked_total;
	/* put-backs (sampled or parked pages) the kernel refused, each
	 * retried later, content kept */
	uint64_t put_back_errors;
	uint64_t lpage_pages; /* pages backed by 2 MiB large pages now */
	uint64_t lpage_collapses; /* large pages made, total */
	uint64_t lpage_breaks; /* large pages broken up, total */
	uint64_t lpage_collapse_errors; /* collapses the kernel refused */
	/* mv_vm_discard: pages that held content (a frame, a cache entry, a
	 * swap slot, a shared reference) when the VMM dropped them, and the
	 * frames that gave back to the host at once, totals */
	uint64_t discard_pages;
	uint64_t discard_frames_freed;
	uint64_t adopted_pages; /* attach: pages already written, adopted */
	uint32_t attached; /* 1: guest memory is the VMM's (cfg.mem) */
	/* adaptive swap-in (reads back from swap or the compression cache):
	 * runs read, faults that continued a recent run (its neighbours were
	 * used) and those that did not, and the window now, in pages (1 to
	 * Mem.SwapInClusterPages) */
	uint64_t swapin_runs;
	uint64_t swapin_ra_hits;
	uint64_t swapin_ra_misses;
	uint64_t swapin_window;
	/* Mem.ServiceAffinity: times the CPUs the VM's vCPUs may use changed
	 * (its service follows them), service threads moved to them, and
	 * affinity calls the kernel refused (the thread stayed), totals;
	 * and how many CPUs its service may use now (0: not followed yet) */
	uint64_t service_cpu_changes;
	uint64_t service_moves;
	uint64_t service_affinity_errors;
	uint32_t service_cpus;
	/* this VM's faults among the host's alloc_waits (waited for a free
	 * frame) and blocked_waits (held back in the low state), totals */
	uint64_t alloc_waits;
	uint64_t blocked_waits;
};

struct mv_host_stats {
	uint64_t memsize_pages; /* machine memory budget */
	uint64_t consumed_pages; /* frames handed to guests */
	uint64_t free_pages; /* memsize - consumed */
	uint64_t minfree_pages; /* minFree by ESXi's tiers */
	enum mv_mem_state state; /* with hysteresis, as the scheduler sees it */
	uint32_t nvms;
	uint64_t alloc_waits; /* faults that waited for a free frame */
	uint64_t reclaim_pages; /* pages the scheduler compressed or swapped */
	/* calls that flush TLBs to take pages out, by any reclaim: one
	 * UFFDIO_MOVE per run of neighbours, one MADV_DONTNEED of staging per
	 * batch (reclaim_flushes / pages taken out is the cost per page) */
	uint64_t reclaim_flushes;
	uint64_t reclaim_moved_pages; /* pages those calls took out */
	uint64_t blocked_waits; /* faults held back in the low state */
	uint64_t swap_errors; /* failed swap-outs, all VMs */
	uint64_t lost_pages; /* PRIVATE pages found unmapped: an engine bug,
			      * the guest touching one cannot proceed; 0 */
	/* UFFDIO_MOVE calls whose reported count disagreed with where the
	 * pages were, caught and corrected; 0 on a sound kernel */
	uint64_t move_miscounts;
	uint64_t unreadable_pages; /* see mv_vm_stats, all VMs */
	/* frames guests hold over the budget: when faults waited and nothing
	 * could be reclaimed (swap failing), they were let through rather
	 * than wait for ever; 0 unless reclamation failed */
	uint64_t overrun_pages; /* now */
	uint64_t overrun_max_pages; /* the most at once */
	uint64_t overrun_grants; /* faults let over the budget */
	uint64_t admit_overruns; /* faults let through the low state's gate
				  * after waiting its longest */
	/* of overrun_grants: faults let onto the minFree reserve (never
	 * beyond it) while a page move (UFFDIO_MOVE) stalled in the kernel
	 * and no frame came back; 0 on a kernel whose moves never wait long */
	uint64_t stall_overrun_grants;
	uint64_t share_frames; /* frames holding shared pages */
	uint64_t share_refs; /* guest pages mapping them (SHRD, all VMs) */
	uint64_t share_saved_pages; /* SHRDSVD: refs - frames + ZERO pages */
	uint64_t share_hints; /* hash table entries that are hints */
	uint64_t share_table_bytes; /* memory of the hash table */
	uint64_t share_scanned_pages; /* pages scanned, total */
	uint64_t share_collisions; /* equal hashes, different bytes */
	uint64_t share_vmas; /* mappings sharing added, now */
	uint64_t cow_breaks; /* writes that broke sharing, total */
	/* sharing stopped short of vm.max_map_count (resumes with room) */
	uint32_t share_maps_full; /* 0 or 1 */
	uint64_t share_kept_in_place; /* copies on write made without a new
				       * mapping, at the limit: stay resident */
	uint64_t share_lazy_fills; /* pages whose frame could not be mapped
				    * nor put back: filled on next touch */
	uint64_t share_errors; /* system calls that kept failing on sharing
				* paths; the pages were kept safe */
	uint64_t parked_pages; /* all VMs' parked_pages (mv_vm_stats), now */
	uint64_t lpage_pages; /* pages backed by large pages, all VMs, now */
	uint64_t lpage_collapses; /* large pages made, total */
	uint64_t lpage_breaks; /* large pages broken up, total */
	/* the scheduler's balances (targets recomputed), total: one every
	 * Mem.BalancePeriod, and sooner for a new free-memory state, a
	 * change of shares, reservation or limit (mv_vm_set_*), or a VM
	 * that outgrew the demand cap that bound its target (at most every
	 * 250 ms); of them, those sooner, by why */
	uint64_t balances;
	uint64_t balances_state;
	uint64_t balances_asked;
	uint64_t balances_early;
};

int mv_vm_stats(mv_vm *vm, struct mv_vm_stats *st);
int mv_host_stats(mv_host *host, struct mv_host_stats *st);

/*
 * The host daemon and its agents (docs/PROTOCOL.md).  A daemon owns a
 * host's budget and scheduler for VMs whose memory lives in other
 * processes (VMMs): each VMM runs an agent that says HELLO over the
 * daemon's Unix socket, and becomes a remote VM of the daemon's host,
 * scheduled like any VM (shares, reservation, limit, idle tax) from the
 * statistics its agent reports.  The scheduler's target for it becomes its
 * grant: the frames the daemon holds for it in the host's budget, and the
 * budget of the agent's own host.  A VMM that dies, or closes its socket,
 * gives its grant back at once.  Only processes of the daemon's own user
 * (or root) may connect.
 */
typedef struct mv_daemon mv_daemon;

/*
 * Listens on socket_path (a stale socket file there is replaced; a live
 * daemon there: -EADDRINUSE) with a thread of its own; remote VMs join
 * host, beside any VMs of this process.  0 or -errno, the sentence in
 * mv_host_errmsg(host).
 */
int mv_daemon_create(mv_host *host, const char *socket_path, mv_daemon **out);
/* Closes every agent's connection (their grants return), removes the
 * socket.  Before mv_host_destroy. */
void mv_daemon_destroy(mv_daemon *d);

/*
 * Called from a thread of the daemon's own (not the one serving agents),
 * with no lock held, when the scheduler's balloon target of a remote VM
 * changes: QEMU's balloon is driven through its QMP socket (qmp_path, as
 * the agent's HELLO gave it; "" when none).  Calls are made one at a time;
 * while one takes long, later targets of a VM replace its earlier ones not
 * yet made, and agents are served all the same.
 */
typedef void (*mv_daemon_balloon_fn)(void *arg, const char *vm_name,
				     const char *qmp_path,
				     uint64_t memsize_bytes,
				     uint64_t balloon_bytes);
void mv_daemon_set_balloon_hook(mv_daemon *d, mv_daemon_balloon_fn fn,
				void *arg);
/*
 * The size of the remote VM name's balloon, as the tool measured it (QMP
 * query-balloon: memsize less the guest's actual size), for the
 * scheduler's balloon target (MCTLSZ); from then on it replaces the
 * agent's count, which sees only libmemvisor's own balloon channel.  0, or
 * -ENOENT while no agent of that name is connected.
 */
int mv_daemon_set_balloon_size(mv_daemon *d, const char *name, uint64_t bytes);

struct mv_daemon_stats {
	uint32_t agents; /* connected agents that said HELLO */
	uint64_t accepted; /* connections accepted, total */
	uint64_t refused; /* closed for a bad message, credentials, time out
			   * or too many connections, total */
	uint64_t msgs; /* messages received and accepted, total */
	uint64_t errors; /* protocol errors answered with ERROR, total */
	uint64_t grants; /* GRANT messages sent, total */
	uint64_t lost; /* agents whose VMM died or closed without BYE */
	uint64_t grant_pages; /* frames held for agents' grants now */
};
int mv_daemon_stats(mv_daemon *d, struct mv_daemon_stats *st);

/* One remote VM: mv_vm_stats' figures (its agent's report, with this
 * host's targets), and what the daemon knows of its VMM. */
struct mv_daemon_vm {
	struct mv_vm_stats stats;
	uint32_t pid;
	uint64_t grant_pages; /* frames its grant holds in the host */
	char qmp_path[108];
};
/* Up to max remote VMs into vms (NULL if max is 0); *n gets how many
 * there are (may exceed max). */
int mv_daemon_vms(mv_daemon *d, struct mv_daemon_vm *vms, unsigned max,
		  unsigned *n);
/* The remote VM named name: 0, or -ENOENT while no agent of that name is
 * connected (a VMM still starting, or gone). */
int mv_daemon_vm_stats(mv_daemon *d, const char *name, struct mv_vm_stats *st);

/*
 * The agent: the client of a daemon, inside a VMM, for one VM of a host of
 * its own (the host's budget follows the daemon's grant: the agent lowers
 * it and waits for reclaim before it acknowledges a smaller grant).  It
 * sends HELLO (the VM's name, memsize, shares, reservation, limit, this
 * process's pid, and $MEMVISOR_QMP as the QMP path) and then the VM's
 * statistics periodically, from a thread of its own; it applies grants
 * and balloon targets (mv_vm_balloon_set_target).  socket_path NULL or a
 * daemon that cannot be reached: the agent says so in the host's log and
 * the VM runs unmanaged on the host's own budget (no overcommit) while it
 * retries with bounded backoff.  A daemon that goes away: the VM stays
 * inside its last grant and the agent reconnects.  mv_agent_create never
 * waits for the daemon.  Destroy the agent before its VM.
 */
typedef struct mv_agent mv_agent;
int mv_agent_create(mv_host *host, mv_vm *vm, const char *socket_path,
		    mv_agent **out);
void mv_agent_destroy(mv_agent *a);

struct mv_agent_info {
	uint32_t connected; /* 1 while a daemon has welcomed it */
	uint64_t grant_bytes; /* the last grant (0: none yet) */
	uint64_t budget_bytes; /* the host's budget now */
	uint64_t balloon_bytes; /* the last balloon target received */
	uint64_t welcomes; /* WELCOMEs received, total */
	uint64_t grants; /* grants applied, total */
	uint64_t acks; /* GRANT_ACKs sent, total */
	uint64_t stats_sent; /* STATS sent, total */
	uint64_t failures; /* connections that failed or ended, total */
};
int mv_agent_info(mv_agent *a, struct mv_agent_info *info);

/* minFree for a budget, by ESXi's tiers (6/4/2/1 %). */
uint64_t mv_minfree_bytes(uint64_t memsize_bytes);
const char *mv_mem_state_name(enum mv_mem_state s);
const char *mv_page_state_name(enum mv_page_state s);
const char *mv_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* MEMVISOR_H */
