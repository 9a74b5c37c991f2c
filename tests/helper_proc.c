// SPDX-License-Identifier: MIT
/*
 * helper_proc.c - the tests of the memvisor command: start it with its
 * output in a file, and wait for it to end, with a deadline.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"

/* Waits between two looks at a child: the poll's period. */
#define PROC_POLL_MS 20

pid_t th_spawnv(const char *bin, const char *out, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;

	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_addopen(
				 &fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC,
				 0644),
			 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 1, 2), 0);
	assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

pid_t th_spawn_va(const char *bin, const char *out, va_list ap)
{
	char *argv[16];
	int n = 0;

	argv[n++] = (char *)bin;
	while (n < 15 && (argv[n] = va_arg(ap, char *)))
		n++;
	argv[n] = NULL;
	return th_spawnv(bin, out, argv);
}

int th_wait_exit(pid_t *pid, const char *out, unsigned ms)
{
	uint64_t until = th_now_ms() + ms;
	int status;

	while (waitpid(*pid, &status, WNOHANG) != *pid) {
		if (th_now_ms() > until) {
			char *text = th_slurp(out);

			fail_msg("memvisor still running after %u ms:\n%s", ms,
				 text);
		}
		th_nap_ms(PROC_POLL_MS);
	}
	*pid = 0;
	if (!WIFEXITED(status))
		fail_msg("memvisor died of signal %d",
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return WEXITSTATUS(status);
}
