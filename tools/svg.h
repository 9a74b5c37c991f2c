/* SPDX-License-Identifier: MIT */
/*
 * svg.h - the plot arithmetic and drawing of `memvisor report`: linear
 * scales, round tick steps, stacked areas, lines, bands, axes and legends,
 * written as inline SVG.  No state; every function is a pure computation
 * or writes to the FILE it is given.
 */
#ifndef MV_TOOL_SVG_H
#define MV_TOOL_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Maps [d0, d1] (data) onto [r0, r1] (pixels); r1 < r0 for a y axis. */
struct svg_scale {
	double d0, d1;
	double r0, r1;
};

double svg_map(const struct svg_scale *s, double v);
/* The data value at pixel px (svg_map's inverse). */
double svg_unmap(const struct svg_scale *s, double px);

/* A round step (1, 2 or 5 times a power of ten) that cuts [0, span] into
 * at most max_ticks parts; 1 for a span of 0 or less. */
double svg_tick_step(double span, unsigned max_ticks);
/* The smallest multiple of svg_tick_step(v, max_ticks) that is >= v: the
 * top of an axis that shows v.  1 for v <= 0. */
double svg_nice_max(double v, unsigned max_ticks);
/* A tick label: v with as many decimals as step needs, and k or M for
 * thousands and millions ("1.5M", "250k", "0.5", "12"). */
void svg_tick_label(double v, double step, char *buf, size_t len);

/* A plot: its size in pixels, its data area, and the two scales. */
struct svg_plot {
	double width, height; /* of the whole SVG */
	double left, right, top, bottom; /* the data area, in pixels */
	struct svg_scale x, y;
};

/* A plot of width x height, margins for the axes and a legend on the
 * right, x over [0, xmax] and y over [0, ymax]. */
void svg_plot_init(struct svg_plot *p, double width, double height, double xmax,
		   double ymax);

/* Opens the <svg> and draws the title, grid, axes with ticks and their
 * labels.  id names the plot (an id attribute, for tests and links). */
void svg_begin(FILE *out, const struct svg_plot *p, const char *id,
	       const char *title, const char *xlabel, const char *ylabel);
/* Draws the axes over the data and closes the <svg>. */
void svg_end(FILE *out, const struct svg_plot *p);

/* The area between lo[] and hi[] over x[] (n points): the top edge left
 * to right, then the bottom edge right to left, one closed path.  Points
 * are "X,Y" with one decimal; lo may be NULL for 0. */
void svg_area(FILE *out, const struct svg_plot *p, size_t n, const double *x,
	      const double *lo, const double *hi, const char *fill,
	      const char *name);

/* A polyline through (x[i], y[i]). */
void svg_line(FILE *out, const struct svg_plot *p, size_t n, const double *x,
	      const double *y, const char *stroke, double width, bool dashed,
	      const char *name);

/* A horizontal band between y0 and y1 (data values, clipped to the plot),
 * with its label at the right edge inside it. */
void svg_band(FILE *out, const struct svg_plot *p, double y0, double y1,
	      const char *fill, const char *label);

/* A legend in the right margin: one swatch (a square, or a line when
 * line[i]) and label per item. */
void svg_legend(FILE *out, const struct svg_plot *p, size_t n,
		const char *const *labels, const char *const *colors,
		const bool *line);

/* s with &, <, >, " and ' escaped, for text and attributes. */
void svg_escape(FILE *out, const char *s);

#endif /* MV_TOOL_SVG_H */
