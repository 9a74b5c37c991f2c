// SPDX-License-Identifier: MIT
/*
 * metrics.c - the Prometheus endpoint of `memvisor run --metrics`.
 *
 * Design: the run loop calls metrics_publish() once a second with a
 * snapshot (snap.h); the exposition text is formatted there, on the run
 * loop's thread, and swapped in under a mutex.  libmicrohttpd serves from
 * its own thread, and a request only copies the latest text under that
 * mutex: serving never calls into the engine nor holds any of its locks,
 * so a slow or stuck scraper cannot slow a guest.  The listening socket is
 * made here (not by libmicrohttpd) so that a bad address or a port in use
 * is reported with a clear sentence before any guest starts, and port 0
 * resolves to the port the kernel picked.  Loopback unless an address is
 * given: the figures are about the host's guests, not for the network.
 *
 * Families follow Prometheus' conventions: memvisor_ prefix, base units
 * (bytes, seconds), counters end in _total, gauges do not; every family
 * has one HELP and one TYPE line before its samples; VM names are label
 * values, escaped (\\, \", \n).
 *
 * metrics_read() is the inverse, for `memvisor top`: it reads this text
 * back into a snapshot through the same family table, so the two cannot
 * drift apart unnoticed (test_metrics checks the round trip).
 *
 * Invariants: /metrics never serves a partly formatted text (the pointer
 * is swapped whole); /healthz answers 200 "ok" while the server runs;
 * the server's thread holds only text_lock, a leaf, and only to copy.
 *
 * Lock ordering: text_lock is a leaf.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "metrics.h"

struct metrics {
	struct MHD_Daemon *daemon;
	int fd; /* the listening socket, closed by MHD_stop_daemon */
	pthread_mutex_t text_lock; /* guards text and text_len */
	char *text; /* the latest exposition, NULL before the first */
	size_t text_len;
	char url[128];
};

int metrics_parse_addr(const char *arg, struct sockaddr_storage *ss,
		       socklen_t *sslen, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *port_s;
	unsigned long port;
	char *end;
	size_t hlen;

	memset(ss, 0, sizeof(*ss));
	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');

		if (!close || close[1] != ':') {
			snprintf(err, errlen,
				 "bad --metrics '%s' (expected [ADDR6]:PORT)",
				 arg);
			return -1;
		}
		hlen = (size_t)(close - arg - 1);
		if (hlen >= sizeof(host))
			goto bad_addr;
		memcpy(host, arg + 1, hlen);
		host[hlen] = '\0';
		port_s = close + 2;
	} else if ((colon = strrchr(arg, ':'))) {
		hlen = (size_t)(colon - arg);
		if (hlen >= sizeof(host))
			goto bad_addr;
		memcpy(host, arg, hlen);
		host[hlen] = '\0';
		port_s = colon + 1;
	} else {
		host[0] = '\0';
		port_s = arg;
	}
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (port_s[0] < '0' || port_s[0] > '9' || *end || errno ||
	    port > 65535) {
		snprintf(
			err, errlen,
			"bad --metrics '%s': the port must be a number from 0 to 65535 (0: any free port)",
			arg);
		return -1;
	}
	if (!host[0])
		snprintf(host, sizeof(host), "%s", METRICS_DEFAULT_ADDR);
	if (arg[0] != '[') {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			goto bad_addr;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			goto bad_addr;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*in6);
	}
	return 0;
bad_addr:
	snprintf(
		err, errlen,
		"bad --metrics '%s': not a numeric address (expected PORT, :PORT, ADDR:PORT or [ADDR6]:PORT, e.g. 127.0.0.1:9100)",
		arg);
	return -1;
}

/* A label value or HELP text, escaped as the format wants (HELP text
 * escapes no quotes). */
static void put_escaped(FILE *out, const char *s, bool quotes)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else if (*s == '"' && quotes)
			fputs("\\\"", out);
		else
			fputc(*s, out);
	}
}

static void family(FILE *out, const char *name, const char *type,
		   const char *help)
{
	fprintf(out, "# HELP %s ", name);
	put_escaped(out, help, false);
	fprintf(out, "\n# TYPE %s %s\n", name, type);
}

static void host_u64(FILE *out, const char *name, const char *type,
		     const char *help, uint64_t v)
{
	family(out, name, type, help);
	fprintf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void host_f(FILE *out, const char *name, const char *type,
		   const char *help, double v)
{
	family(out, name, type, help);
	fprintf(out, "%s %.6g\n", name, v);
}

static void vm_sample(FILE *out, const char *name, const struct snap_vm *v)
{
	fprintf(out, "%s{vm=\"", name);
	put_escaped(out, v->name, true);
	fputs("\"}", out);
}

/* What a per-VM family shows of a VM. */
enum vm_value {
	V_PAGES, /* a uint64_t page count in mv_vm_stats, as bytes */
	V_U64, /* a uint64_t in mv_vm_stats, as it is */
	V_BYTES, /* a uint64_t byte count in mv_vm_stats */
	V_GRANT,
	V_ACTIVE_RATIO,
	V_DRIVER,
	V_OPS,
	V_INTEGRITY,
};

#define ST(field) offsetof(struct mv_vm_stats, field)

static const struct vm_family {
	const char *name;
	const char *type;
	enum vm_value kind;
	size_t off;
	const char *help;
} vm_families[] = {
	{ "memvisor_vm_memsize_bytes", "gauge", V_PAGES, ST(memsz_pages),
	  "Guest memory configured (MEMSZ)." },
	{ "memvisor_vm_consumed_bytes", "gauge", V_PAGES, ST(consumed_pages),
	  "Machine memory the VM holds, shared frames counted once." },
	{ "memvisor_vm_granted_bytes", "gauge", V_GRANT, 0,
	  "Guest memory backed by machine memory, shared pages counted per guest page (GRANT)." },
	{ "memvisor_vm_touched_bytes", "gauge", V_PAGES, ST(touched_pages),
	  "Guest memory touched at least once." },
	{ "memvisor_vm_active_bytes", "gauge", V_PAGES, ST(active_pages),
	  "Active guest memory estimated by sampling (TCHD)." },
	{ "memvisor_vm_active_ratio", "gauge", V_ACTIVE_RATIO, 0,
	  "Active memory as a fraction of what the VM holds (%ACTV / 100)." },
	{ "memvisor_vm_target_bytes", "gauge", V_PAGES, ST(sztgt_pages),
	  "Memory the scheduler wants the VM to hold (SZTGT)." },
	{ "memvisor_vm_reservation_bytes", "gauge", V_PAGES,
	  ST(reservation_pages), "The VM's reservation." },
	{ "memvisor_vm_limit_bytes", "gauge", V_PAGES, ST(limit_pages),
	  "The VM's limit (its memory size when it has none)." },
	{ "memvisor_vm_shares", "gauge", V_U64, ST(shares),
	  "The VM's memory shares." },
	{ "memvisor_vm_shared_bytes", "gauge", V_PAGES, ST(shrd_pages),
	  "Guest memory mapping a shared frame (SHRD)." },
	{ "memvisor_vm_zero_bytes", "gauge", V_PAGES, ST(zero_pages),
	  "Guest memory known to be zero, held without a frame (ZERO)." },
	{ "memvisor_vm_shared_saved_bytes", "gauge", V_PAGES, ST(shrdsvd_pages),
	  "Machine memory saved by page sharing, this VM's part (SHRDSVD)." },
	{ "memvisor_vm_balloon_bytes", "gauge", V_PAGES, ST(mctlsz_pages),
	  "Guest memory in the balloon (MCTLSZ)." },
	{ "memvisor_vm_balloon_target_bytes", "gauge", V_PAGES,
	  ST(mctltgt_pages), "The balloon's target (MCTLTGT)." },
	{ "memvisor_vm_balloon_max_bytes", "gauge", V_PAGES, ST(mctlmax_pages),
	  "Most the balloon may take (MCTLMAX)." },
	{ "memvisor_vm_balloon_driver", "gauge", V_DRIVER, 0,
	  "1 if a balloon driver is connected, else 0." },
	{ "memvisor_vm_swapped_bytes", "gauge", V_PAGES, ST(swcur_pages),
	  "Guest memory in the VM's swap file (SWCUR)." },
	{ "memvisor_vm_swap_target_bytes", "gauge", V_PAGES, ST(swtgt_pages),
	  "Guest memory the scheduler wants swapped (SWTGT)." },
	{ "memvisor_vm_compressed_bytes", "gauge", V_PAGES,
	  ST(zip_cached_pages),
	  "Guest memory held compressed in the compression cache." },
	{ "memvisor_vm_compression_cache_used_bytes", "gauge", V_BYTES,
	  ST(zip_used_bytes),
	  "Machine memory the compression cache holds (CACHEUSD)." },
	{ "memvisor_vm_compression_saved_bytes", "gauge", V_BYTES,
	  ST(zip_saved_bytes),
	  "Memory saved by compression: cached pages' size less CACHEUSD." },
	{ "memvisor_vm_swapin_pages_total", "counter", V_U64, ST(swapin_pages),
	  "Pages read back from the swap file." },
	{ "memvisor_vm_swapout_pages_total", "counter", V_U64,
	  ST(swapout_pages), "Pages written to the swap file." },
	{ "memvisor_vm_swapin_runs_total", "counter", V_U64, ST(swapin_runs),
	  "Runs of pages read back (swap or compression cache), one per fault." },
	{ "memvisor_vm_swapin_ra_hits_total", "counter", V_U64,
	  ST(swapin_ra_hits),
	  "Read-back faults that went on where a recent run ended (its neighbours were used)." },
	{ "memvisor_vm_swapin_ra_misses_total", "counter", V_U64,
	  ST(swapin_ra_misses),
	  "Read-back faults anywhere else (the window halves)." },
	{ "memvisor_vm_swapin_window_pages", "gauge", V_U64, ST(swapin_window),
	  "Pages the VM's next read-back fault reads, 1 to Mem.SwapInClusterPages." },
	{ "memvisor_vm_service_moves_total", "counter", V_U64,
	  ST(service_moves),
	  "Times a fault or reclaim thread of the VM moved to the CPUs its vCPUs may use (Mem.ServiceAffinity)." },
	{ "memvisor_vm_service_affinity_errors_total", "counter", V_U64,
	  ST(service_affinity_errors),
	  "Affinity calls for the VM's service threads the kernel refused (the thread stayed where it was)." },
	{ "memvisor_vm_zip_pages_total", "counter", V_U64, ST(zip_pages),
	  "Pages compressed into the compression cache." },
	{ "memvisor_vm_unzip_pages_total", "counter", V_U64, ST(unzip_pages),
	  "Pages decompressed from the compression cache on faults." },
	{ "memvisor_vm_faults_total", "counter", V_U64, ST(faults),
	  "Page faults served." },
	{ "memvisor_vm_cow_breaks_total", "counter", V_U64, ST(cow_breaks),
	  "Writes that broke the sharing of a page." },
	{ "memvisor_vm_large_page_bytes", "gauge", V_PAGES, ST(lpage_pages),
	  "Guest memory backed by 2 MiB large pages." },
	{ "memvisor_vm_large_page_breaks_total", "counter", V_U64,
	  ST(lpage_breaks), "Large pages broken up into 4 KiB pages." },
	{ "memvisor_vm_share_scanned_pages_total", "counter", V_U64,
	  ST(share_scanned_pages),
	  "Private pages the sharing scanner examined." },
	{ "memvisor_vm_swap_errors_total", "counter", V_U64, ST(swap_errors),
	  "Swap-outs that failed (the page was kept)." },
	{ "memvisor_vm_balloon_violations_total", "counter", V_U64,
	  ST(balloon_violations), "Guest touches of ballooned pages." },
	{ "memvisor_vm_guest_ops_total", "counter", V_OPS, 0,
	  "Reads and writes the guest workload completed." },
	{ "memvisor_vm_integrity_errors_total", "counter", V_INTEGRITY, 0,
	  "Guest reads that did not match what was written (0 unless memory was lost)." },
};

static void vm_value(FILE *out, const struct vm_family *f,
		     const struct snap_vm *v)
{
	const uint64_t *u = (const uint64_t *)((const char *)&v->st + f->off);

	switch (f->kind) {
	case V_PAGES:
		fprintf(out, " %llu\n", (unsigned long long)*u * MV_PAGE_SIZE);
		break;
	case V_U64:
	case V_BYTES:
		fprintf(out, " %llu\n", (unsigned long long)*u);
		break;
	case V_GRANT:
		fprintf(out, " %llu\n",
			(unsigned long long)snap_grant_pages(&v->st) *
				MV_PAGE_SIZE);
		break;
	case V_ACTIVE_RATIO:
		fprintf(out, " %.3f\n", v->st.active_permille / 1000.0);
		break;
	case V_DRIVER:
		fprintf(out, " %u\n", v->st.balloon_driver ? 1u : 0u);
		break;
	case V_OPS:
		fprintf(out, " %llu\n", (unsigned long long)v->ops);
		break;
	case V_INTEGRITY:
		fprintf(out, " %llu\n",
			(unsigned long long)v->integrity_errors);
		break;
	}
}

int metrics_format(const struct snap *s, FILE *out)
{
	const struct mv_host_stats *h = &s->host;
	const uint64_t page = MV_PAGE_SIZE;

	family(out, "memvisor_run_info", "gauge",
	       "The scenario running (always 1; the name is the label).");
	fputs("memvisor_run_info{scenario=\"", out);
	put_escaped(out, s->scenario, true);
	fputs("\"} 1\n", out);
	host_f(out, "memvisor_run_elapsed_seconds", "gauge",
	       "Seconds the timed run has been going.", s->t_s);
	host_u64(out, "memvisor_run_planned_seconds", "gauge",
		 "Seconds the timed run is planned to last.", s->duration_s);
	host_u64(out, "memvisor_host_vms", "gauge", "VMs on the host.",
		 s->nvms);
	host_u64(out, "memvisor_host_memory_bytes", "gauge",
		 "Machine memory budget of the host (PMEM total).",
		 h->memsize_pages * page);
	host_u64(out, "memvisor_host_consumed_bytes", "gauge",
		 "Machine memory handed to guests.", h->consumed_pages * page);
	host_u64(out, "memvisor_host_free_bytes", "gauge",
		 "Machine memory not handed to guests.", h->free_pages * page);
	host_u64(
		out, "memvisor_host_minfree_bytes", "gauge",
		"minFree: the free memory the scheduler keeps, by ESXi's tiers.",
		h->minfree_pages * page);
	host_u64(out, "memvisor_host_state", "gauge",
		 "Free-memory state: 0 high, 1 clear, 2 soft, 3 hard, 4 low.",
		 (uint64_t)h->state);
	host_u64(out, "memvisor_host_shared_frames_bytes", "gauge",
		 "Machine memory holding shared pages (PSHARE common).",
		 h->share_frames * page);
	host_u64(
		out, "memvisor_host_shared_saved_bytes", "gauge",
		"Machine memory saved by sharing and zero pages (PSHARE saving).",
		h->share_saved_pages * page);
	host_u64(
		out, "memvisor_host_overrun_bytes", "gauge",
		"Memory guests hold over the budget (0 unless reclamation failed).",
		h->overrun_pages * page);
	host_u64(out, "memvisor_host_lost_pages", "gauge",
		 "Guest pages the engine lost (an engine bug; always 0).",
		 h->lost_pages);
	host_u64(out, "memvisor_host_reclaimed_pages_total", "counter",
		 "Pages the scheduler compressed or swapped.",
		 h->reclaim_pages);
	host_u64(out, "memvisor_host_alloc_waits_total", "counter",
		 "Faults that waited for a free frame.", h->alloc_waits);
	host_u64(out, "memvisor_host_blocked_waits_total", "counter",
		 "Faults held back in the low state.", h->blocked_waits);
	host_u64(out, "memvisor_host_swap_errors_total", "counter",
		 "Failed swap-outs, all VMs.", h->swap_errors);
	host_u64(out, "memvisor_host_share_scanned_pages_total", "counter",
		 "Pages the sharing scanner examined.", h->share_scanned_pages);
	host_u64(out, "memvisor_host_cow_breaks_total", "counter",
		 "Writes that broke the sharing of a page, all VMs.",
		 h->cow_breaks);
	host_u64(out, "memvisor_host_balances_total", "counter",
		 "Balances of the scheduler (targets recomputed).",
		 h->balances);
	host_u64(
		out, "memvisor_host_early_balances_total", "counter",
		"Balances before the period's end for a VM that outgrew its demand cap.",
		h->balances_early);
	for (size_t f = 0; f < sizeof(vm_families) / sizeof(vm_families[0]);
	     f++) {
		family(out, vm_families[f].name, vm_families[f].type,
		       vm_families[f].help);
		for (size_t i = 0; i < s->nvms; i++) {
			if (!s->vms[i].have)
				continue;
			vm_sample(out, vm_families[f].name, &s->vms[i]);
			vm_value(out, &vm_families[f], &s->vms[i]);
		}
	}
	family(out, "memvisor_vm_pages", "gauge",
	       "Guest pages by state (the engine's page map census).");
	for (size_t i = 0; i < s->nvms; i++) {
		if (!s->vms[i].have)
			continue;
		for (int st = 0; st < MV_PAGE_NSTATES; st++) {
			fputs("memvisor_vm_pages{vm=\"", out);
			put_escaped(out, s->vms[i].name, true);
			fprintf(out, "\",state=\"%s\"} %llu\n",
				mv_page_state_name((enum mv_page_state)st),
				(unsigned long long)s->vms[i]
					.st.state_pages[st]);
		}
	}
	return ferror(out) ? -1 : 0;
}

/* ---- reading the text back (memvisor top) ------------------------------ */

/* The value of label `name` in "{a=\"x\",b=\"y\"}" at s, unescaped into
 * out; false if it has none. */
static bool label_value(const char *s, const char *name, char *out, size_t len)
{
	size_t nlen = strlen(name), o = 0;

	while (*s && *s != '}') {
		bool match;

		if (*s == '{' || *s == ',') {
			s++;
			continue;
		}
		match = !strncmp(s, name, nlen) && s[nlen] == '=';
		s = strchr(s, '"');
		if (!s)
			return false;
		for (s++; *s && *s != '"'; s++) {
			char c = *s;

			if (c == '\\' && s[1]) {
				s++;
				c = *s == 'n' ? '\n' : *s;
			}
			if (match && o + 1 < len)
				out[o++] = c;
		}
		if (match) {
			out[o] = '\0';
			return true;
		}
		if (*s)
			s++;
	}
	return false;
}

/* The snapshot's VM called name, added if new; NULL if out of memory. */
static struct snap_vm *vm_named(struct snap *s, const char *name)
{
	struct snap_vm *vms;

	for (size_t i = 0; i < s->nvms; i++)
		if (!strcmp(s->vms[i].name, name))
			return &s->vms[i];
	vms = realloc(s->vms, (s->nvms + 1) * sizeof(*vms));
	if (!vms)
		return NULL;
	s->vms = vms;
	memset(&vms[s->nvms], 0, sizeof(*vms));
	snprintf(vms[s->nvms].name, sizeof(vms[s->nvms].name), "%s", name);
	vms[s->nvms].have = true;
	snprintf(vms[s->nvms].st.name, sizeof(vms[s->nvms].st.name), "%s",
		 name);
	return &vms[s->nvms++];
}

static void read_host(struct snap *s, const char *name, double v,
		      const char *labels)
{
	static const struct {
		const char *name;
		size_t off;
		bool bytes;
	} host[] = {
#define H(n, f, b) { "memvisor_host_" n, offsetof(struct mv_host_stats, f), b }
		H("memory_bytes", memsize_pages, true),
		H("consumed_bytes", consumed_pages, true),
		H("free_bytes", free_pages, true),
		H("minfree_bytes", minfree_pages, true),
		H("shared_frames_bytes", share_frames, true),
		H("shared_saved_bytes", share_saved_pages, true),
		H("overrun_bytes", overrun_pages, true),
		H("lost_pages", lost_pages, false),
		H("reclaimed_pages_total", reclaim_pages, false),
		H("alloc_waits_total", alloc_waits, false),
		H("blocked_waits_total", blocked_waits, false),
		H("swap_errors_total", swap_errors, false),
		H("share_scanned_pages_total", share_scanned_pages, false),
		H("cow_breaks_total", cow_breaks, false),
		H("large_page_bytes", lpage_pages, true),
		H("large_page_breaks_total", lpage_breaks, false),
		H("balances_total", balances, false),
		H("early_balances_total", balances_early, false),
#undef H
	};
	uint64_t u = v > 0 ? (uint64_t)v : 0;

	if (!strcmp(name, "memvisor_run_info")) {
		label_value(labels, "scenario", s->scenario,
			    sizeof(s->scenario));
		return;
	}
	if (!strcmp(name, "memvisor_run_elapsed_seconds")) {
		s->t_s = v;
		return;
	}
	if (!strcmp(name, "memvisor_run_planned_seconds")) {
		s->duration_s = (unsigned)u;
		return;
	}
	if (!strcmp(name, "memvisor_host_state")) {
		s->host.state = (enum mv_mem_state)u;
		s->have_host = true;
		return;
	}
	for (size_t i = 0; i < sizeof(host) / sizeof(host[0]); i++) {
		if (strcmp(name, host[i].name))
			continue;
		*(uint64_t *)((char *)&s->host + host[i].off) =
			host[i].bytes ? u / MV_PAGE_SIZE : u;
		s->have_host = true;
		return;
	}
}

static void read_vm(struct snap *s, const char *name, double v,
		    const char *labels)
{
	uint64_t u = v > 0 ? (uint64_t)v : 0;
	char vm[MV_NAME_MAX], state[32];
	struct snap_vm *sv;

	if (!label_value(labels, "vm", vm, sizeof(vm)))
		return;
	if (!strcmp(name, "memvisor_vm_pages")) {
		if (!label_value(labels, "state", state, sizeof(state)))
			return;
		for (int st = 0; st < MV_PAGE_NSTATES; st++)
			if (!strcmp(state, mv_page_state_name(
						   (enum mv_page_state)st))) {
				sv = vm_named(s, vm);
				if (sv)
					sv->st.state_pages[st] = u;
			}
		return;
	}
	for (size_t f = 0; f < sizeof(vm_families) / sizeof(vm_families[0]);
	     f++) {
		const struct vm_family *fam = &vm_families[f];
		uint64_t *field;

		if (strcmp(name, fam->name))
			continue;
		sv = vm_named(s, vm);
		if (!sv)
			return;
		field = (uint64_t *)((char *)&sv->st + fam->off);
		switch (fam->kind) {
		case V_PAGES:
			*field = u / MV_PAGE_SIZE;
			break;
		case V_U64:
		case V_BYTES:
			*field = u;
			break;
		case V_GRANT: /* from the page census */
			break;
		case V_ACTIVE_RATIO:
			sv->st.active_permille = (uint32_t)(v * 1000 + 0.5);
			break;
		case V_DRIVER:
			sv->st.balloon_driver = u ? 1 : 0;
			break;
		case V_OPS:
			sv->ops = u;
			break;
		case V_INTEGRITY:
			sv->integrity_errors = u;
			break;
		}
		return;
	}
}

int metrics_read(const char *text, struct snap *s)
{
	/* labels: a scenario's name, every byte of it escaped */
	char name[128], labels[2 * sizeof(s->scenario) + 64];
	const char *p = text, *nl, *sp;
	size_t n;
	double v;
	char *end;

	snap_free(s);
	snap_init(s, 0);
	for (; *p; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		if (*p == '#' || *p == '\n')
			continue;
		n = strcspn(p, "{ \n");
		if (!n || n >= sizeof(name) || (p[n] != '{' && p[n] != ' '))
			return -EINVAL;
		memcpy(name, p, n);
		name[n] = '\0';
		labels[0] = '\0';
		sp = p + n;
		if (*sp == '{') {
			/* the closing brace outside the quotes */
			const char *close = sp + 1;
			bool quoted = false;

			for (; *close && *close != '\n'; close++) {
				if (quoted && *close == '\\' && close[1])
					close++;
				else if (*close == '"')
					quoted = !quoted;
				else if (!quoted && *close == '}')
					break;
			}
			if (*close != '}' ||
			    (size_t)(close - sp + 1) >= sizeof(labels))
				return -EINVAL;
			memcpy(labels, sp, (size_t)(close - sp + 1));
			labels[close - sp + 1] = '\0';
			sp = close + 1;
		}
		v = strtod(sp, &end);
		if (end == sp)
			return -EINVAL;
		if (!strncmp(name, "memvisor_vm_", 12))
			read_vm(s, name, v, labels);
		else
			read_host(s, name, v, labels);
	}
	s->seq = 1;
	return s->have_host ? 0 : -EINVAL;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     char *body, size_t len, const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status,
				  const char *text)
{
	char *body = strdup(text);

	if (!body)
		return MHD_NO;
	return reply(c, status, body, strlen(body),
		     "text/plain; charset=utf-8");
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *c,
			     const char *url, const char *method,
			     const char *version, const char *upload_data,
			     size_t *upload_data_size, void **con_cls)
{
	struct metrics *m = cls;
	char *body = NULL;
	size_t len = 0;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "only GET and HEAD\n");
	if (!strcmp(url, "/healthz"))
		return reply_text(c, MHD_HTTP_OK, "ok\n");
	if (!strcmp(url, "/"))
		return reply_text(
			c, MHD_HTTP_OK,
			"memvisor: the metrics are at /metrics, the health check at /healthz\n");
	if (strcmp(url, "/metrics"))
		return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
	pthread_mutex_lock(&m->text_lock);
	if (m->text) {
		body = malloc(m->text_len ? m->text_len : 1);
		if (body) {
			memcpy(body, m->text, m->text_len);
			len = m->text_len;
		}
	}
	pthread_mutex_unlock(&m->text_lock);
	if (!body)
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "no figures yet: the run is starting\n");
	return reply(c, MHD_HTTP_OK, body, len,
		     "text/plain; version=0.0.4; charset=utf-8");
}

static int listen_on(const char *arg, int *fd_out, char *url, size_t urllen,
		     char *err, size_t errlen)
{
	struct sockaddr_storage ss, bound;
	socklen_t sslen, blen = sizeof(bound);
	char addr[INET6_ADDRSTRLEN];
	int fd, one = 1, e;
	unsigned port;

	if (metrics_parse_addr(arg, &ss, &sslen, err, errlen))
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "--metrics %s: cannot make a socket: %s",
			 arg, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) || listen(fd, 16)) {
		e = errno;
		close(fd);
		snprintf(
			err, errlen, "--metrics %s: cannot listen: %s%s", arg,
			strerror(e),
			e == EADDRINUSE ?
				" (another program serves that port; pick another, or 0 for any free one)" :
			e == EADDRNOTAVAIL ?
				" (not an address of this machine)" :
			e == EACCES ? " (ports below 1024 need privileges)" :
				      "");
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&bound, &blen)) {
		e = errno;
		close(fd);
		snprintf(err, errlen, "--metrics %s: getsockname: %s", arg,
			 strerror(e));
		return -1;
	}
	if (bound.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&bound;

		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		port = ntohs(in6->sin6_port);
		snprintf(url, urllen, "http://[%s]:%u/metrics", addr, port);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&bound;

		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
		port = ntohs(in->sin_port);
		snprintf(url, urllen, "http://%s:%u/metrics", addr, port);
	}
	*fd_out = fd;
	return 0;
}

int metrics_start(const char *arg, struct metrics **out, char *err,
		  size_t errlen)
{
	struct metrics *m = calloc(1, sizeof(*m));
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD;

	*out = NULL;
	if (!m) {
		snprintf(err, errlen, "--metrics: out of memory");
		return -1;
	}
	if (listen_on(arg, &m->fd, m->url, sizeof(m->url), err, errlen)) {
		free(m);
		return -1;
	}
	if (m->url[7] == '[')
		flags |= MHD_USE_IPv6;
	pthread_mutex_init(&m->text_lock, NULL);
	m->daemon = MHD_start_daemon(flags, 0, NULL, NULL, serve, m,
				     MHD_OPTION_LISTEN_SOCKET, m->fd,
				     MHD_OPTION_CONNECTION_TIMEOUT,
				     (unsigned)10, MHD_OPTION_CONNECTION_LIMIT,
				     (unsigned)32, MHD_OPTION_END);
	if (!m->daemon) {
		close(m->fd);
		pthread_mutex_destroy(&m->text_lock);
		free(m);
		snprintf(err, errlen, "--metrics %s: cannot start the server",
			 arg);
		return -1;
	}
	*out = m;
	return 0;
}

const char *metrics_url(const struct metrics *m)
{
	return m->url;
}

void metrics_publish(struct metrics *m, const struct snap *s)
{
	char *text = NULL, *old;
	size_t len = 0;
	FILE *f;

	if (!m)
		return;
	f = open_memstream(&text, &len);
	if (!f)
		return;
	if (metrics_format(s, f) | fclose(f)) {
		free(text);
		return;
	}
	pthread_mutex_lock(&m->text_lock);
	old = m->text;
	m->text = text;
	m->text_len = len;
	pthread_mutex_unlock(&m->text_lock);
	free(old);
}

void metrics_stop(struct metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->daemon);
	pthread_mutex_destroy(&m->text_lock);
	free(m->text);
	free(m);
}
