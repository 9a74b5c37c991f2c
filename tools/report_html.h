/* SPDX-License-Identifier: MIT */
/*
 * report_html.h - `memvisor report RUN.json [-o FILE]`: the run JSON of
 * `memvisor run --json` as one self-contained HTML page with plots over
 * time (inline SVG and CSS, nothing fetched) and the end-of-run table.
 * docs/REPORT.md describes the page.
 */
#ifndef MV_TOOL_REPORT_HTML_H
#define MV_TOOL_REPORT_HTML_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

/* argv[0] is "report".  Returns the exit status: 0, or 2 for bad input
 * (no such file, not JSON, no time series, an output that cannot be
 * written), with a sentence on stderr; no partial page is ever left. */
int report_html_main(int argc, char **argv);
void report_html_usage(FILE *out);

/* The page for the run JSON root, written to out.  0, or -EINVAL with a
 * sentence in err when root lacks what the page needs (the time series),
 * or -ENOMEM. */
int report_html_write(const cJSON *root, FILE *out, char *err, size_t errlen);

/* Reads the run JSON at in and replaces out whole with its page (a
 * temporary file in out's directory, renamed over it), or leaves out as it
 * was; out "-" is standard output.  0 or -errno, with a sentence in err. */
int report_html_file(const char *in, const char *out, char *err, size_t errlen);

#endif /* MV_TOOL_REPORT_HTML_H */
