// SPDX-License-Identifier: MIT
/*
 * helper_proc.c - the tests of the memvisor command: start it with its
 * output in a file, wait for it to end, with a deadline, and the fixture
 * those tests share (th_cmd: a directory of its own, its output and its
 * --json report).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "helper.h"

/* Waits between two looks at a child: the poll's period. */
#define PROC_POLL_MS 20

/* bin with argv, output to out, in the working directory cwd (NULL: ours). */
static pid_t spawn_in(const char *cwd, const char *bin, const char *out,
		      char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;

	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_addopen(
				 &fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC,
				 0644),
			 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 1, 2), 0);
	if (cwd)
		assert_int_equal(posix_spawn_file_actions_addchdir_np(&fa, cwd),
				 0);
	assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

pid_t th_spawnv(const char *bin, const char *out, char *const argv[])
{
	return spawn_in(NULL, bin, out, argv);
}

static pid_t spawn_va_in(const char *cwd, const char *bin, const char *out,
			 va_list ap)
{
	char *argv[16];
	int n = 0;

	argv[n++] = (char *)bin;
	while (n < 15 && (argv[n] = va_arg(ap, char *)))
		n++;
	argv[n] = NULL;
	return spawn_in(cwd, bin, out, argv);
}

pid_t th_spawn_va(const char *bin, const char *out, va_list ap)
{
	return spawn_va_in(NULL, bin, out, ap);
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

int th_cmd_setup(void **state, const char *prefix)
{
	struct th_cmd *f = calloc(1, sizeof(*f));
	int err;

	if (!f)
		return -1;
	th_memvisor_bin(f->bin, sizeof(f->bin));
	err = th_scratch_dir(f->dir, sizeof(f->dir), prefix);
	if (err) {
		fprintf(stderr, "no scratch directory for %s: %s\n", prefix,
			strerror(-err));
		free(f);
		return -1;
	}
	snprintf(f->out, sizeof(f->out), "%s/out.txt", f->dir);
	snprintf(f->json, sizeof(f->json), "%s/report.json", f->dir);
	*state = f;
	return 0;
}

int th_cmd_teardown(void **state)
{
	struct th_cmd *f = *state;
	char cmd[TH_DIR_LEN + 16];

	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", f->dir);
	free(f);
	return 0;
}

void th_cmd_scenario(struct th_cmd *f, const char *name, const char *body,
		     char *path, size_t len)
{
	char *text;

	assert_true((size_t)snprintf(path, len, "%s/%s", f->dir, name) < len);
	assert_true(asprintf(&text, "[host]\nswapdir = %s/swap\n%s", f->dir,
			     body) > 0);
	th_put(path, text);
	free(text);
}

void th_cmd_start(struct th_cmd *f, ...)
{
	va_list ap;

	va_start(ap, f);
	f->pid = spawn_va_in(f->in_dir ? f->dir : NULL, f->bin, f->out, ap);
	va_end(ap);
}

char *th_cmd_wait_output(struct th_cmd *f, const char *what, unsigned ms)
{
	uint64_t until = th_now_ms() + ms;
	char *text, *at;
	int status;

	for (;;) {
		text = th_slurp(f->out);
		at = strstr(text, what);
		if (at) {
			at = strdup(at);
			free(text);
			assert_non_null(at);
			return at;
		}
		if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
			f->pid = 0;
			fail_msg("memvisor ended before printing '%s':\n%s",
				 what, text);
		}
		free(text);
		if (th_now_ms() > until)
			fail_msg("no '%s' from memvisor in %u ms", what, ms);
		th_nap_ms(PROC_POLL_MS);
	}
}

/* Line (up to its newline) as a live line, or false if it is not one. */
static bool parse_live(const char *line, struct th_live *l)
{
	return sscanf(line,
		      "%lfs %7s %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf "
		      "%llu",
		      &l->t, l->state, &l->free_mb, &l->minfree_mb,
		      &l->consumed_mb, &l->shared_mb, &l->balloon_mb,
		      &l->swapped_mb, &l->cache_mb, &l->swin_mb_s,
		      &l->swout_mb_s, &l->zip_mb_s, &l->unzip_mb_s, &l->ops_s,
		      &l->errors) == 15;
}

bool th_live_after(const struct th_live *l, void *t)
{
	return l->t > *(double *)t;
}

double th_cmd_wait_live(struct th_cmd *f,
			bool (*pred)(const struct th_live *, void *), void *arg,
			unsigned ms)
{
	uint64_t until = th_now_ms() + ms;
	struct th_live l;
	char *text;
	int status;

	for (;;) {
		text = th_slurp(f->out);
		for (char *line = text; line && *line;) {
			char *nl = strchr(line, '\n');

			/* only whole lines: the last may be half written */
			if (!nl)
				break;
			*nl = '\0';
			if (parse_live(line, &l) && pred(&l, arg)) {
				free(text);
				return l.t;
			}
			line = nl + 1;
		}
		if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
			f->pid = 0;
			fail_msg(
				"memvisor ended before the live line awaited:\n%s",
				text);
		}
		free(text);
		if (th_now_ms() > until)
			fail_msg(
				"no live line as awaited from memvisor in %u ms",
				ms);
		th_nap_ms(PROC_POLL_MS);
	}
}

/* The JSON in file path, parsed; what names it if it is not JSON. */
static cJSON *parse_file(const char *path, const char *what)
{
	char *text = th_slurp(path);
	cJSON *root = cJSON_Parse(text);

	if (!root)
		fail_msg("%s is not JSON: '%s'", what, text);
	free(text);
	return root;
}

cJSON *th_cmd_report(struct th_cmd *f)
{
	return parse_file(f->json, "the report");
}

cJSON *th_cmd_stdout_report(struct th_cmd *f)
{
	return parse_file(f->out, "the command's output");
}

const char *th_jstr(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));

	if (!s)
		fail_msg("no string '%s' in the report", key);
	return s;
}

double th_jnum(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);

	if (!cJSON_IsNumber(v))
		fail_msg("no number '%s' in the report", key);
	return cJSON_GetNumberValue(v);
}

bool th_jnote(const cJSON *report, const char *what)
{
	const cJSON *note;

	cJSON_ArrayForEach(note, cJSON_GetObjectItem(report, "notes"))
	{
		if (cJSON_IsString(note) &&
		    strstr(cJSON_GetStringValue(note), what))
			return true;
	}
	return false;
}
