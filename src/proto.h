/* SPDX-License-Identifier: MIT */
/*
 * proto.h - the daemon protocol (proto.c, docs/PROTOCOL.md): the messages
 * a host daemon (daemon.c) and the agents inside VMMs (agent.c) exchange
 * over a Unix stream socket, as C structures, and their encoding.  Pure
 * encoding and decoding: no I/O, no state.
 *
 * On the wire every message is a 16-byte header (magic, version, type,
 * body length, a reserved word that must be 0) and a fixed-size body for
 * its type (STATS: one of two, its flags say which), all little-endian.  The decoder checks everything a peer
 * controls (magic, version, type, length, each field's range, strings
 * terminated) and names the first thing wrong in a sentence.
 */
#ifndef MV_PROTO_H
#define MV_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "memvisor.h"

#define MV_PROTO_MAGIC 0x3150564du /* "MVP1" as little-endian bytes */
#define MV_PROTO_VERSION 1u
#define MV_PROTO_HDR 16u
#define MV_PROTO_PATH_MAX 108u /* sun_path */
#define MV_PROTO_ERRMSG_MAX 120u
/* The largest message (header and body) of this version. */
#define MV_PROTO_MAX 512u
/* Guest memory a HELLO may declare: 16 TiB */
#define MV_PROTO_MEMSIZE_MAX (16ull << 40)

enum mv__proto_type {
	MV_PROTO_HELLO = 1, /* agent -> daemon: who the VM is */
	MV_PROTO_WELCOME, /* daemon -> agent: accepted, the first grant */
	MV_PROTO_GRANT, /* daemon -> agent: a new grant */
	MV_PROTO_STATS, /* agent -> daemon: the VM's statistics */
	MV_PROTO_GRANT_ACK, /* agent -> daemon: it holds no more than a grant */
	MV_PROTO_BYE, /* either way: closing on purpose */
	MV_PROTO_ERROR, /* either way: what was wrong; then the sender closes */
	MV_PROTO_NTYPES
};

struct mv__proto_hello {
	char name[MV_NAME_MAX]; /* non-empty, NUL-terminated, no '/' */
	uint64_t memsize_bytes; /* multiple of 4 KiB, 64 KiB..16 TiB */
	uint64_t shares; /* 0: normal; at most MV_SHARES_MAX */
	uint64_t reservation_bytes; /* at most limit (memsize if 0) */
	uint64_t limit_bytes; /* 0: memsize; else at most memsize */
	uint64_t consumed_bytes; /* frames the VM holds now, <= memsize */
	uint32_t pid; /* the VMM's process; must be the socket's peer */
	uint32_t flags; /* 0 in this version */
	char qmp_path[MV_PROTO_PATH_MAX]; /* QEMU's QMP socket, "" if none */
};

/* WELCOME and GRANT carry the same fields */
struct mv__proto_grant {
	uint64_t seq; /* grants are numbered from 1 on each connection */
	uint64_t grant_bytes; /* machine memory the VM may hold */
	uint64_t target_bytes; /* the scheduler's target for it (SZTGT) */
	uint64_t balloon_bytes; /* its balloon target (MCTLTGT) */
	uint32_t period_ms; /* how often to send STATS, 10..60000 */
	uint32_t vm_id; /* the daemon's number for the VM */
};

struct mv__proto_stats {
	uint64_t consumed_pages;
	uint64_t touched_pages;
	uint64_t active_pages;
	uint64_t swcur_pages;
	uint64_t swapin_pages;
	uint64_t swapout_pages;
	uint64_t zip_cached_pages;
	uint64_t zip_used_bytes;
	uint64_t zip_saved_bytes;
	uint64_t zip_pages;
	uint64_t unzip_pages;
	uint64_t shrd_pages;
	uint64_t zero_pages;
	uint64_t shrdsvd_pages;
	uint64_t mctlsz_pages;
	uint64_t mctltgt_pages;
	uint64_t faults;
	uint64_t fault_errors;
	uint64_t swap_errors;
	uint64_t unreadable_pages;
	uint64_t cow_breaks;
	uint64_t lpage_pages;
	uint64_t state_pages[MV_PAGE_NSTATES];
	/* the VM's demand for the scheduler's demand cap: its active pages
	 * at the last sampling period plus the pages filled since (set only
	 * with MV_PROTO_STATS_DEMAND; 0 otherwise) */
	uint64_t demand_pages;
	uint64_t budget_pages; /* the agent's local budget now */
	uint32_t active_permille; /* of consumed_pages, 0..1000 */
	uint32_t flags; /* MV_PROTO_STATS_*; others 0 in this version */
	/* the tail, on the wire only with MV_PROTO_STATS_MORE (0 otherwise):
	 * where the VM's fault and reclaim threads run, and what the host
	 * line of a run counts for it, as struct mv_vm_stats has them */
	uint64_t service_cpus; /* at most MV_PROTO_CPUS_MAX */
	uint64_t service_cpu_changes;
	uint64_t service_moves;
	uint64_t service_affinity_errors;
	uint64_t zip_evict_pages;
	uint64_t share_scanned_pages;
	uint64_t lpage_collapses;
	uint64_t lpage_breaks;
	/* the second tail, after the first and only with it, on the wire only
	 * with MV_PROTO_STATS_WAITS (0 otherwise): the VM's faults that
	 * waited for a free frame and that were held in the low state, as
	 * struct mv_vm_stats has them */
	uint64_t alloc_waits;
	uint64_t blocked_waits;
	/* the third addition, after the waits and only with them, on the wire
	 * only with MV_PROTO_STATS_ZIP (0 otherwise): the compression
	 * cache's search (zcache.c, "Fast compression"), as struct
	 * mv_vm_stats has it */
	uint64_t zip_incompressible;
	uint64_t zip_fast_pages;
	uint64_t zip_accel; /* 0 (none reported), or 1..MV_PROTO_ZIP_ACCEL_MAX */
	/* the fourth addition, after the compression figures and only with
	 * them, on the wire only with MV_PROTO_STATS_ZERO (0 otherwise): the
	 * pages the VM read as zeros and their first writes (fault.c,
	 * Mem.ZeroWriteAround), totals as struct mv_vm_stats has them */
	uint64_t zero_maps;
	uint64_t zero_writes;
	uint64_t zero_around_pages;
	/* the fifth addition, after the zero-page figures and only with
	 * them, on the wire only with MV_PROTO_STATS_OPEN (0 otherwise): the
	 * VM's open zero pages (zero_open.c, Mem.ZeroOpen), as struct
	 * mv_vm_stats has them; zero_open_pages (a count of now) is at most
	 * consumed_pages */
	uint64_t zero_opens;
	uint64_t zero_open_writes;
	uint64_t zero_closes;
	uint64_t zero_open_pages;
	uint64_t zero_open_errors;
};
/* STATS flags: demand_pages holds a measured demand */
#define MV_PROTO_STATS_DEMAND 1u
/* STATS flags: the body goes on with the tail (MV_PROTO_STATS_MORE_BYTES
 * more); a STATS without it is the shorter body agents sent before */
#define MV_PROTO_STATS_MORE 2u
#define MV_PROTO_STATS_MORE_BYTES 64u
/* STATS flags: the tail goes on with the waits (MV_PROTO_STATS_WAITS_BYTES
 * more); only with MV_PROTO_STATS_MORE */
#define MV_PROTO_STATS_WAITS 4u
#define MV_PROTO_STATS_WAITS_BYTES 16u
/* STATS flags: the waits go on with the compression figures
 * (MV_PROTO_STATS_ZIP_BYTES more); only with MV_PROTO_STATS_WAITS */
#define MV_PROTO_STATS_ZIP 8u
#define MV_PROTO_STATS_ZIP_BYTES 24u
/* STATS flags: the compression figures go on with the zero-page figures
 * (MV_PROTO_STATS_ZERO_BYTES more); only with MV_PROTO_STATS_ZIP */
#define MV_PROTO_STATS_ZERO 16u
#define MV_PROTO_STATS_ZERO_BYTES 24u
/* STATS flags: the zero-page figures go on with the open zero pages'
 * (MV_PROTO_STATS_OPEN_BYTES more); only with MV_PROTO_STATS_ZERO */
#define MV_PROTO_STATS_OPEN 32u
#define MV_PROTO_STATS_OPEN_BYTES 40u
#define MV_PROTO_ZIP_ACCEL_MAX 64u
#define MV_PROTO_CPUS_MAX 65536u

struct mv__proto_ack {
	uint64_t seq; /* the grant acknowledged */
	uint64_t grant_bytes; /* its size, as received */
	uint64_t consumed_bytes; /* what the VM holds now, <= grant */
};

struct mv__proto_bye {
	uint32_t reason; /* 0 in this version */
};

struct mv__proto_error {
	int32_t code; /* a positive errno value */
	char msg[MV_PROTO_ERRMSG_MAX]; /* NUL-terminated sentence */
};

struct mv__proto_msg {
	uint16_t type; /* enum mv__proto_type */
	union {
		struct mv__proto_hello hello;
		struct mv__proto_grant grant; /* WELCOME, GRANT */
		struct mv__proto_stats stats;
		struct mv__proto_ack ack;
		struct mv__proto_bye bye;
		struct mv__proto_error error;
	} u;
};

/* Body bytes of a type on the wire (STATS: without its tail); 0
 * for an unknown type. */
size_t mv__proto_body_len(unsigned type);
const char *mv__proto_type_name(unsigned type);

/*
 * Encodes m into buf (cap bytes): the message's length, or -EINVAL (a
 * type or field this version cannot send) or -ENOSPC.  The encoder runs
 * the decoder's checks too, so no peer is ever sent what it must refuse.
 */
int mv__proto_encode(const struct mv__proto_msg *m, uint8_t *buf, size_t cap);

/*
 * Decodes the first message of buf (len bytes received so far): 0 with
 * *used its length; -EAGAIN when more bytes are needed (only ever while
 * the bytes so far could still begin a valid message: a bad header is
 * refused as soon as its 16 bytes are in); otherwise a negative errno
 * (-EPROTO bad magic or reserved word, -EPROTONOSUPPORT version, -EBADMSG
 * unknown type or wrong length, -ERANGE a field out of range, -EINVAL a
 * bad string) with a sentence in err (errlen bytes, may be 0).
 */
int mv__proto_decode(const uint8_t *buf, size_t len, struct mv__proto_msg *m,
		     size_t *used, char *err, size_t errlen);

#endif /* MV_PROTO_H */
