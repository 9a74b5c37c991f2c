/* SPDX-License-Identifier: MIT */
/*
 * bench_qemu.h - `memvisor bench qemu` (bench_qemu.c): the project's test
 * guest under QEMU, booted and run three ways in one run: under memvisor
 * (libmemvisor-preload.so, its agent managed by a daemon in this process
 * whose host holds the budget), the same QEMU with no limit (the ceiling),
 * and the same QEMU in a memory cgroup limited to the same budget with
 * kernel swap on a file (zswap in front of it where the kernel has it).
 */
#ifndef MV_BENCH_QEMU_H
#define MV_BENCH_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define BQ_MAX_ROUNDS 9
#define BQ_MSG 512

enum bq_config {
	BQ_CEILING, /* no limit: runs first, measures QEMU's own overhead */
	BQ_MEMVISOR,
	BQ_CGROUP, /* memory cgroup + kernel swap (zswap where available) */
	BQ_NCONFIGS
};

const char *bq_config_name(enum bq_config c);

struct bq_opts {
	unsigned rounds;
	uint64_t memsize_mib; /* the guest's RAM (-m) */
	uint64_t budget_mib; /* 0: budget_pct of memsize */
	unsigned budget_pct;
	unsigned fill_pct; /* mvguest.fill_pct */
	unsigned guest_rounds; /* mvguest.rounds */
	uint64_t overhead_mib; /* 0: measured by the ceiling */
	unsigned timeout_s; /* one guest, boot to power-off */
	const char *swapdir; /* parent of the work directory */
	const char *preload; /* NULL: beside the binary, $MEMVISOR_PRELOAD */
	bool json;
	bool skip[BQ_NCONFIGS]; /* --no-ceiling, --no-memvisor, --no-cgroup */
};

/* 0, or -EINVAL with a sentence in msg; 1 for --help. */
int bq_parse_opts(int argc, char **argv, struct bq_opts *o, char *msg,
		  size_t len);
uint64_t bq_budget_bytes(const struct bq_opts *o);

/* One guest run of one configuration. */
struct bq_run {
	bool ran; /* else why says why not (skipped or failed) */
	char why[BQ_MSG];
	double boot_s; /* QEMU started -> first MVGUEST console line */
	double work_s; /* the guest program's own seconds (verdict secs) */
	double host_work_s; /* first MVGUEST line -> verdict line, host clock */
	double checks_s; /* page checks per second of the guest's work */
	bool verdict_found, ok;
	uint64_t pages, errors, checks;
	uint64_t ram_peak_bytes; /* guest RAM resident (the -m mapping's Rss) */
	uint64_t rss_peak_bytes; /* QEMU's VmHWM */
	uint64_t cgroup_peak_bytes; /* the cgroup's peak (0: no cgroup) */
	uint64_t frames_peak_bytes; /* memvisor: frames its host counted */
	uint64_t swapout_bytes, swapin_bytes;
	uint64_t zip_pages; /* memvisor: pages compressed */
	uint64_t oom_kills;
	bool died; /* QEMU ended by a signal */
};

/* Medians per configuration: times and throughput of the guests that
 * finished (printed a verdict), memory and swap of every round that ran. */
struct bq_summary {
	unsigned n; /* rounds that ran */
	unsigned finished; /* of them, guests that printed a verdict */
	unsigned n_ok; /* of them, verdicts ok */
	struct bq_run med; /* the medians (counts: of the rounds, too) */
	bool all_ok; /* every round that ran verified every page */
	uint64_t oom_kills; /* sum */
};

void bq_summarize(const struct bq_run *runs, unsigned nrounds,
		  struct bq_summary *s);

/* The report of a whole run as JSON (the caller's to cJSON_Delete). */
cJSON *bq_json(const struct bq_opts *o, uint64_t cgroup_limit,
	       const char *cgroup_kind, const struct bq_run runs[][BQ_NCONFIGS],
	       unsigned nrounds, const char *skip_why[BQ_NCONFIGS]);

/* Parses /proc/PID/smaps text: the Rss of the mapping exactly `size`
 * bytes long (the guest RAM), bytes; 0 if there is none. */
uint64_t bq_smaps_ram_rss(const char *smaps, uint64_t size);

int bench_qemu_main(int argc, char **argv);

#endif /* MV_BENCH_QEMU_H */
