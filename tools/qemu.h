/* SPDX-License-Identifier: MIT */
/*
 * qemu.h - starts and stops a QEMU guest for memvisor (qemu.c): its command
 * line and environment (the agent's preload), its QMP connection, its serial
 * console in a file, and the test guest's verdict read from that file.
 */
#ifndef MV_TOOL_QEMU_H
#define MV_TOOL_QEMU_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct qmp;

/* The test guest's program settings when a VM gives no append. */
#define QEMU_DEFAULT_APPEND \
	"console=ttyS0 quiet panic=-1 mvguest.fill_pct=60 mvguest.rounds=3"

struct qemu_config {
	const char *name; /* -name, and MEMVISOR_VM_NAME */
	uint64_t memsize; /* bytes, a multiple of 1 MiB */
	unsigned cpus; /* 0: 1 */
	/* the host CPUs QEMU runs on, set in its process before it execs
	 * so every thread it makes inherits them; NULL: anywhere */
	const cpu_set_t *affinity;
	/* NULL: $MEMVISOR_QEMU, else qemu-system-x86_64 (found in PATH) */
	const char *binary;
	/* "tcg", "kvm", or several to try in order, "kvm:tcg"; NULL:
	 * $MEMVISOR_QEMU_ACCEL, else "tcg" */
	const char *accel;
	/* NULL: the test guest the project builds (qemu_guest_dir()) and
	 * QEMU_DEFAULT_APPEND */
	const char *kernel, *initrd, *append;
	/* extra arguments, split at blanks; '...' or "..." keep blanks */
	const char *qemu_args;
	const char *console_path; /* the guest's serial console (required) */
	const char *qmp_path; /* QMP socket (required) */
	/* QEMU's own stdout and stderr; NULL: console_path + ".qemu.log" */
	const char *log_path;
	/* the agent: NULL preload, no agent (QEMU's memory unmanaged) */
	const char *preload; /* libmemvisor-preload.so */
	const char *agent_socket; /* MEMVISOR_SOCKET; NULL: unmanaged */
	const char *swapdir; /* MEMVISOR_SWAP_DIR */
	const char *agent_log; /* MEMVISOR_LOG */
	uint64_t agent_memsize; /* MEMVISOR_MEMSIZE, 0: not set */
	const char *agent_settings; /* MEMVISOR_SETTINGS "Mem.X=v,..." */
};

/*
 * Where the built test guest is: $MEMVISOR_GUEST_DIR, else the build's
 * build/guest (vmlinuz under kernel/, initrd.img).  Paths into buf.
 */
int qemu_guest_paths(char *kernel, size_t klen, char *initrd, size_t ilen);

/* The NULL-terminated argument vector QEMU is started with, argv[0] the
 * binary; 0 or -EINVAL (err says what is wrong) or -ENOMEM.  Free with
 * qemu_strv_free. */
int qemu_build_argv(const struct qemu_config *cfg, char ***argv, char *err,
		    size_t errlen);
/* environ plus the agent's variables (replacing any of the same name). */
int qemu_build_env(const struct qemu_config *cfg, char ***envp);
void qemu_strv_free(char **v);
/* Splits qemu_args as qemu_build_argv does: appends to *v (n entries). */
int qemu_split_args(const char *s, char ***v, size_t *n, char *err,
		    size_t errlen);

struct qemu_vm;

/*
 * Starts QEMU (its own process group; it gets SIGKILL if the thread that
 * started it exits) and connects to its QMP socket within timeout_ms.
 * -errno with err saying why (and QEMU's last words if it died).
 */
int qemu_start(const struct qemu_config *cfg, unsigned timeout_ms,
	       struct qemu_vm **out, char *err, size_t errlen);
pid_t qemu_pid(const struct qemu_vm *vm);
/* Its QMP connection (NULL once lost). */
struct qmp *qemu_qmp(struct qemu_vm *vm);
/* Whether QEMU still runs (reaps it if not). */
bool qemu_running(struct qemu_vm *vm);
/* Waits up to timeout_ms for QEMU to exit by itself (the guest powered
 * off): 0, or -ETIMEDOUT.  *status (may be NULL): its wait status. */
int qemu_wait(struct qemu_vm *vm, unsigned timeout_ms, int *status);

/* How qemu_stop ended QEMU. */
enum qemu_stop_how {
	QEMU_EXITED, /* it had already exited */
	QEMU_QUIT, /* it obeyed QMP quit */
	QEMU_TERMINATED, /* SIGTERM */
	QEMU_KILLED, /* SIGKILL */
};
/* Ends QEMU: QMP quit, then SIGTERM, then SIGKILL, each given a share of
 * timeout_ms (SIGKILL then waits for the exit, bounded: -ETIMEDOUT if even
 * that does not end it).  Returns enum qemu_stop_how or -errno. */
int qemu_stop(struct qemu_vm *vm, unsigned timeout_ms);
/* Stops it if needed (bounded) and frees it; removes the QMP socket. */
void qemu_destroy(struct qemu_vm *vm);

/* The verdict line of the test guest ("MVGUEST verdict=..."), parsed. */
struct qemu_verdict {
	bool found; /* no verdict line: the guest did not finish */
	bool ok; /* verdict=ok */
	uint64_t pages; /* pages held at the end */
	uint64_t errors; /* pages found wrong */
	uint64_t checks; /* page checks made */
	double secs; /* the program's run time */
	unsigned rounds; /* "MVGUEST round=" lines seen */
};
/* Parses one console line; true if it was a verdict line. */
bool qemu_parse_verdict_line(const char *line, struct qemu_verdict *v);
/* Reads the console file: 0 (v->found says whether a verdict was there),
 * or -errno if it cannot be read. */
int qemu_read_verdict(const char *console_path, struct qemu_verdict *v);

#endif /* MV_TOOL_QEMU_H */
