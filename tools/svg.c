// SPDX-License-Identifier: MIT
/*
 * svg.c - plots as inline SVG for `memvisor report`.
 *
 * Design: a plot is a data area inside fixed margins (axis labels on the
 * left and below, the legend on the right) with two linear scales, x from
 * 0 to the run's length and y from 0 to a round maximum.  Ticks are round
 * steps (1, 2 or 5 times a power of ten), at most about ten per axis, and
 * their labels carry only the decimals the step needs, with k and M for
 * large counts.  Shapes are written as text with one decimal per
 * coordinate: stacked areas as one closed path per layer (top edge left to
 * right, bottom edge back), series as polylines, the host's free-memory
 * states as horizontal bands.  Styling is by class, from the CSS of the
 * page the SVG is inlined in (report_html.c), with the colours as
 * attributes so that a plot reads the same on its own.
 *
 * Invariants: svg_unmap(svg_map(v)) == v up to rounding; a layer's bottom
 * edge is the same points as the top edge of the layer under it, so
 * stacked areas neither overlap nor leave gaps; every text is escaped.
 *
 * Lock ordering: none; no state.
 */
#include <math.h>
#include <string.h>

#include "svg.h"

/* Margins of the data area: left for y tick labels and the axis label,
 * right for the legend, top for the title, bottom for the x axis. */
#define MARGIN_LEFT 72.0
#define MARGIN_RIGHT 190.0
#define MARGIN_TOP 46.0
#define MARGIN_BOTTOM 46.0
#define X_TICKS 10
#define Y_TICKS 6

double svg_map(const struct svg_scale *s, double v)
{
	if (s->d1 == s->d0)
		return s->r0;
	return s->r0 + (v - s->d0) * (s->r1 - s->r0) / (s->d1 - s->d0);
}

double svg_unmap(const struct svg_scale *s, double px)
{
	if (s->r1 == s->r0)
		return s->d0;
	return s->d0 + (px - s->r0) * (s->d1 - s->d0) / (s->r1 - s->r0);
}

double svg_tick_step(double span, unsigned max_ticks)
{
	double raw, mag, norm;

	if (!(span > 0) || !max_ticks)
		return 1;
	raw = span / max_ticks;
	mag = pow(10, floor(log10(raw)));
	norm = raw / mag;
	/* norm is in [1, 10); a hair over a round value is still that value */
	if (norm <= 1 + 1e-9)
		return mag;
	if (norm <= 2 + 1e-9)
		return 2 * mag;
	if (norm <= 5 + 1e-9)
		return 5 * mag;
	return 10 * mag;
}

double svg_nice_max(double v, unsigned max_ticks)
{
	double step;

	if (!(v > 0))
		return 1;
	step = svg_tick_step(v, max_ticks);
	return ceil(v / step - 1e-9) * step;
}

void svg_tick_label(double v, double step, char *buf, size_t len)
{
	const char *suffix = "";
	int decimals;

	if (step >= 1e5 - 1e-6) {
		v /= 1e6;
		step /= 1e6;
		suffix = "M";
	} else if (step >= 1e3 - 1e-9) {
		v /= 1e3;
		step /= 1e3;
		suffix = "k";
	}
	decimals = step >= 1 - 1e-9 ? 0 : (int)ceil(-log10(step) - 1e-9);
	if (fabs(v) < step / 1e6) {
		snprintf(buf, len, "0"); /* no "-0", no "0k" */
		return;
	}
	snprintf(buf, len, "%.*f%s", decimals, v, suffix);
}

void svg_plot_init(struct svg_plot *p, double width, double height, double xmax,
		   double ymax)
{
	p->width = width;
	p->height = height;
	p->left = MARGIN_LEFT;
	p->right = width - MARGIN_RIGHT;
	p->top = MARGIN_TOP;
	p->bottom = height - MARGIN_BOTTOM;
	p->x = (struct svg_scale){ 0, xmax > 0 ? xmax : 1, p->left, p->right };
	p->y = (struct svg_scale){ 0, ymax > 0 ? ymax : 1, p->bottom, p->top };
}

void svg_escape(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		case '\'':
			fputs("&#39;", out);
			break;
		default:
			fputc(*s, out);
		}
	}
}

void svg_begin(FILE *out, const struct svg_plot *p, const char *id,
	       const char *title, const char *xlabel, const char *ylabel)
{
	double ystep = svg_tick_step(p->y.d1, Y_TICKS);
	double xstep = svg_tick_step(p->x.d1, X_TICKS);
	char label[32];

	fprintf(out,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" id=\"");
	svg_escape(out, id);
	fprintf(out,
		"\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n<title>",
		p->width, p->height, p->width, p->height);
	svg_escape(out, title);
	fprintf(out,
		"</title>\n<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#fff\"/>\n"
		"<text class=\"title\" x=\"%.1f\" y=\"22\">",
		p->width, p->height, p->left);
	svg_escape(out, title);
	fputs("</text>\n<g class=\"grid\" stroke=\"#e3e3e3\">\n", out);
	for (double v = ystep; v <= p->y.d1 * (1 + 1e-9); v += ystep)
		fprintf(out,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
			p->left, svg_map(&p->y, v), p->right,
			svg_map(&p->y, v));
	for (double v = xstep; v <= p->x.d1 * (1 + 1e-9); v += xstep)
		fprintf(out,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
			svg_map(&p->x, v), p->top, svg_map(&p->x, v),
			p->bottom);
	fputs("</g>\n<g class=\"ticks\" fill=\"#333\">\n", out);
	for (double v = 0; v <= p->y.d1 * (1 + 1e-9); v += ystep) {
		svg_tick_label(v, ystep, label, sizeof(label));
		fprintf(out,
			"<text class=\"ytick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			p->left - 6, svg_map(&p->y, v) + 4, label);
	}
	for (double v = 0; v <= p->x.d1 * (1 + 1e-9); v += xstep) {
		svg_tick_label(v, xstep, label, sizeof(label));
		fprintf(out,
			"<text class=\"xtick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
			svg_map(&p->x, v), p->bottom + 16, label);
	}
	fprintf(out,
		"</g>\n<text class=\"axislabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
		(p->left + p->right) / 2, p->height - 8);
	svg_escape(out, xlabel);
	fprintf(out,
		"</text>\n<text class=\"axislabel\" x=\"0\" y=\"0\" text-anchor=\"middle\" transform=\"translate(16 %.1f) rotate(-90)\">",
		(p->top + p->bottom) / 2);
	svg_escape(out, ylabel);
	fputs("</text>\n", out);
}

void svg_end(FILE *out, const struct svg_plot *p)
{
	/* the axes last, over the data */
	fprintf(out,
		"<g class=\"axis\" stroke=\"#333\" stroke-width=\"1\">\n"
		"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
		"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
		"</g>\n</svg>\n",
		p->left, p->bottom, p->right, p->bottom, p->left, p->top,
		p->left, p->bottom);
}

void svg_area(FILE *out, const struct svg_plot *p, size_t n, const double *x,
	      const double *lo, const double *hi, const char *fill,
	      const char *name)
{
	if (!n)
		return;
	fprintf(out, "<path class=\"area\" data-name=\"");
	svg_escape(out, name);
	fprintf(out, "\" fill=\"%s\" stroke=\"none\" d=\"", fill);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%.1f,%.1f", i ? " L" : "M",
			svg_map(&p->x, x[i]), svg_map(&p->y, hi[i]));
	for (size_t i = n; i-- > 0;)
		fprintf(out, " L%.1f,%.1f", svg_map(&p->x, x[i]),
			svg_map(&p->y, lo ? lo[i] : 0));
	fputs(" Z\"><title>", out);
	svg_escape(out, name);
	fputs("</title></path>\n", out);
}

void svg_line(FILE *out, const struct svg_plot *p, size_t n, const double *x,
	      const double *y, const char *stroke, double width, bool dashed,
	      const char *name)
{
	if (!n)
		return;
	fprintf(out, "<polyline class=\"line\" data-name=\"");
	svg_escape(out, name);
	fprintf(out,
		"\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-linejoin=\"round\"%s points=\"",
		stroke, width, dashed ? " stroke-dasharray=\"6 4\"" : "");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%.1f,%.1f", i ? " " : "", svg_map(&p->x, x[i]),
			svg_map(&p->y, y[i]));
	fputs("\"><title>", out);
	svg_escape(out, name);
	fputs("</title></polyline>\n", out);
}

void svg_band(FILE *out, const struct svg_plot *p, double y0, double y1,
	      const char *fill, const char *label)
{
	double top, bottom;

	if (y0 > y1) {
		double t = y0;

		y0 = y1;
		y1 = t;
	}
	if (y0 < p->y.d0)
		y0 = p->y.d0;
	if (y1 > p->y.d1)
		y1 = p->y.d1;
	if (y1 <= y0)
		return;
	top = svg_map(&p->y, y1);
	bottom = svg_map(&p->y, y0);
	fprintf(out,
		"<rect class=\"band\" data-name=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
		label, p->left, top, p->right - p->left, bottom - top, fill);
	if (bottom - top >= 11)
		fprintf(out,
			"<text class=\"bandlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">%s</text>\n",
			p->right - 4, (top + bottom) / 2 + 4, label);
}

void svg_legend(FILE *out, const struct svg_plot *p, size_t n,
		const char *const *labels, const char *const *colors,
		const bool *line)
{
	double x = p->right + 16, y = p->top + 4;

	fputs("<g class=\"legend\">\n", out);
	for (size_t i = 0; i < n; i++, y += 18) {
		if (line && line[i])
			fprintf(out,
				"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"/>\n",
				x, y + 6, x + 14, y + 6, colors[i]);
		else
			fprintf(out,
				"<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"12\" fill=\"%s\" stroke=\"#666\" stroke-width=\"0.5\"/>\n",
				x, y, colors[i]);
		fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", x + 20, y + 10);
		svg_escape(out, labels[i]);
		fputs("</text>\n", out);
	}
	fputs("</g>\n", out);
}
