/* SPDX-License-Identifier: MIT */
/*
 * scenario.h - what `memvisor run` runs: a host and its VMs, read from an
 * INI scenario file (or the embedded default) and fully validated before
 * anything is started.  docs/SCENARIOS.md describes the format.
 */
#ifndef MV_TOOL_SCENARIO_H
#define MV_TOOL_SCENARIO_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#include "guest.h"
#include "image.h"
#include "memvisor.h"

/* Name under which the embedded default appears in messages. */
#define SCENARIO_DEFAULT_NAME "(embedded default)"
#define SCENARIO_MAX_THREADS 64
#define SCENARIO_MAX_DURATION_S (7u * 24 * 3600)

struct sc_host {
	uint64_t memsize; /* machine memory budget, bytes, multiple of 4 KiB */
	char *swapdir; /* resolved path; NULL: the library's default */
	unsigned duration_s; /* how long the workloads run */
	/* pin_vcpus = spread: a VM without cpus gets one CPU, round-robin
	 * (scenario_spread_cpu); already applied to the VMs' cpus */
	bool pin_spread;
	int line; /* of the [host] header; 0 if the file has none */
};

struct sc_vm {
	char name[MV_NAME_MAX];
	uint64_t memsize; /* guest physical memory, bytes, multiple of 4 KiB */
	enum mvg_kind workload;
	unsigned threads; /* guest threads, 1..SCENARIO_MAX_THREADS */
	char *image; /* resolved RAM image path; NULL if none */
	/* image = generated: the image is made at the start of the run
	 * (image.h) from image_spec (os, seed, mix, size: image_size or
	 * memsize), and image is then set to the path of the file holding it */
	bool image_generated;
	struct mvg_image_spec image_spec;
	bool image_seed_set; /* image_seed given; else the VM's seed */
	int image_keys_line; /* of the first image_* key, 0: none */
	char salt[MV_NAME_MAX]; /* sched.mem.pshare.salt; "" if unset */
	uint64_t seed;
	uint32_t think_us; /* pause between guest ops, microseconds */
	double zipf_s; /* kvstore skew; 0: the workload's default */
	bool kv_text; /* kvstore values: text-like (1) or random bytes (0) */
	int balloon; /* balloon = on: the guest runs a balloon driver (burst) */
	uint64_t balloon_target; /* balloon_target = SIZE, bytes; 0: none */
	/* burst workload: percent of memory a burst takes, percent of that
	 * it keeps, pause between bursts; 0: the workload's default */
	uint32_t burst_pct;
	uint32_t burst_keep_pct;
	uint32_t burst_idle_ms;
	/* image workload: percent of working-set operations that write,
	 * 1 + the value (0: the workload's default) */
	uint32_t write_pct1;
	/* shares = low|normal|high (shares_level) or a number (shares) */
	int shares_level; /* enum mv_shares_level, or -1 for a number */
	uint64_t shares;
	uint64_t reservation; /* bytes; 0: none */
	uint64_t limit; /* bytes; 0: none */
	/* large_pages = off: never backed by 2 MiB pages (Mem.AllocGuestLargePage
	 * decides otherwise) */
	bool large_pages_off;
	/* cpus = LIST, or the CPU [host] pin_vcpus = spread gave it: its
	 * guest threads (a QEMU guest: its QEMU process) run only there, as
	 * a VM host pins vCPUs; ncpus == 0: not pinned */
	cpu_set_t cpus;
	unsigned ncpus;
	/* vmm = qemu: a real guest under QEMU (tools/qemu.c) instead of guest
	 * threads; kernel and initrd resolved (NULL: the test guest the
	 * project builds), append and qemu_args as written (NULL: none) */
	bool vmm_qemu;
	/* vmm = process: guest threads in a process of their own (`memvisor
	 * guest-process`, guest_process.c), its agent joined to the run's
	 * daemon as a VMM's would be */
	bool vmm_process;
	char *kernel, *initrd, *append, *qemu_args;
	/* the first key set that only one kind of VM takes, and its line */
	const char *thread_key, *qemu_key;
	int thread_key_line, qemu_key_line;
	/* the first key set that vmm = process refuses, and its line */
	const char *process_key;
	int process_key_line;
	int line; /* of the [vm NAME] header */
};

/* One key of [advanced], kept as written so it can be shown back. */
struct sc_setting {
	char *name;
	char *value;
	int line;
};

struct scenario {
	char *source; /* file path, or SCENARIO_DEFAULT_NAME */
	struct sc_host host;
	/* ESX defaults with [advanced] applied through mv_settings_set() */
	struct mv_settings settings;
	struct sc_setting *advanced;
	size_t nadvanced;
	struct sc_vm *vms; /* in file order */
	size_t nvms;
};

/* The embedded default: overcommits a 384 MiB host with 896 MiB of VMs,
 * every mechanism at work (scenarios/default.ini, word for word). */
extern const char scenario_default_text[];

/*
 * Each loader fills *sc and returns 0, or returns -EINVAL (bad scenario),
 * -ENOENT/-EACCES/... (file unreadable) or -ENOMEM with a message of the
 * form "FILE:LINE: what is wrong (what is expected)" in err, leaving *sc
 * empty.  Paths inside a file are relative to the file's directory; those
 * in a string are used as written.
 */
int scenario_load_file(const char *path, struct scenario *sc, char *err,
		       size_t errlen);
int scenario_load_string(const char *text, const char *source,
			 struct scenario *sc, char *err, size_t errlen);
int scenario_load_default(struct scenario *sc, char *err, size_t errlen);
void scenario_free(struct scenario *sc);

/* The shares a VM gets: its level's per-MB figure, or its number. */
uint64_t scenario_vm_shares(const struct sc_vm *vm);

/* Total guest memory configured, bytes. */
uint64_t scenario_vm_memsize_total(const struct scenario *sc);

/* The CPUs this process may run on (sched_getaffinity); 0 or -errno. */
int scenario_usable_cpus(cpu_set_t *set);
/*
 * The CPU pin_vcpus = spread gives the VM at index i: the (i % n)th of the
 * n usable CPUs, in increasing order; -errno if they cannot be read.
 */
int scenario_spread_cpu(size_t i);
/* A CPU set in the kernel's list syntax, "0-3,6" ("" if empty). */
void scenario_cpus_format(const cpu_set_t *set, char *buf, size_t len);

/*
 * Parses a size with a binary unit, "512M", "1.5G", "4096K", "2T" (an
 * optional B or iB may follow the unit), into bytes.  -EINVAL for junk, no
 * unit, zero, or a fraction of a byte; -ERANGE if it does not fit 64 bits.
 */
int scenario_parse_size(const char *s, uint64_t *bytes);

#endif /* MV_TOOL_SCENARIO_H */
