#include "ganlite/report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace ganlite::report {

namespace {

const char* const kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

std::string tick_label(double v, double step) {
  if (std::abs(v) < step * 1e-9) v = 0;  // -0 and rounding noise at zero
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

// A 1, 2 or 5 x 10^k step giving about `target` intervals over [lo, hi].
double nice_step(double lo, double hi, int target) {
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  // Widens empty or degenerate ranges so that scaling never divides by zero.
  void settle() {
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
      const double pad = std::max(1e-3, std::abs(hi) * 0.05);
      lo -= pad;
      hi += pad;
    }
  }
};

// Finite points, averaged over consecutive runs when there are more than `max_points`.
std::vector<std::pair<double, double>> reduce(const PlotSeries& s, int max_points) {
  std::vector<std::pair<double, double>> pts;
  const size_t n = std::min(s.x.size(), s.y.size());
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) pts.emplace_back(s.x[i], s.y[i]);
  }
  const size_t limit = static_cast<size_t>(std::max(2, max_points));
  if (pts.size() <= limit) return pts;
  std::vector<std::pair<double, double>> out;
  out.reserve(limit);
  for (size_t b = 0; b < limit; ++b) {
    const size_t begin = b * pts.size() / limit, end = (b + 1) * pts.size() / limit;
    double sx = 0, sy = 0;
    for (size_t i = begin; i < end; ++i) sx += pts[i].first, sy += pts[i].second;
    const double k = static_cast<double>(end - begin);
    out.emplace_back(sx / k, sy / k);
  }
  return out;
}

}  // namespace

std::string escape_xml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  const double left = 64, right = 150, top = o.title.empty() ? 14 : 32, bottom = 48;
  const double w = std::max(100.0, o.width - left - right), h = std::max(60.0, o.height - top - bottom);
  std::vector<std::vector<std::pair<double, double>>> reduced;
  Range xr, yr;
  for (const auto& s : series) {
    reduced.push_back(reduce(s, o.max_points));
    for (const auto& [x, y] : reduced.back()) xr.add(x), yr.add(y);
  }
  const bool empty = !(xr.lo <= xr.hi);
  xr.settle();
  yr.settle();
  const double xstep = nice_step(xr.lo, xr.hi, 6), ystep = nice_step(yr.lo, yr.hi, 5);
  // The y axis snaps outwards to whole ticks; x keeps the data's extent.
  yr.lo = std::floor(yr.lo / ystep) * ystep;
  yr.hi = std::ceil(yr.hi / ystep) * ystep;
  const auto px = [&](double x) { return left + (x - xr.lo) / (xr.hi - xr.lo) * w; };
  const auto py = [&](double y) { return top + h - (y - yr.lo) / (yr.hi - yr.lo) * h; };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" width=\"" << o.width << "\" height=\"" << o.height
      << "\" viewBox=\"0 0 " << o.width << " " << o.height << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg << "<rect x=\"0\" y=\"0\" width=\"" << o.width << "\" height=\"" << o.height << "\" fill=\"#ffffff\"/>\n";
  if (!o.title.empty()) {
    svg << "<text class=\"title\" x=\"" << num(left + w / 2) << "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" "
        << "font-weight=\"bold\">" << escape_xml(o.title) << "</text>\n";
  }
  // Grid lines and tick labels.
  for (double t = std::ceil(yr.lo / ystep) * ystep; t <= yr.hi + ystep * 1e-9; t += ystep) {
    svg << "<line x1=\"" << num(left) << "\" x2=\"" << num(left + w) << "\" y1=\"" << num(py(t)) << "\" y2=\""
        << num(py(t)) << "\" stroke=\"#e4e4e4\"/>";
    svg << "<text class=\"ytick\" x=\"" << num(left - 6) << "\" y=\"" << num(py(t) + 4) << "\" text-anchor=\"end\">"
        << tick_label(t, ystep) << "</text>\n";
  }
  if (!empty) {
    for (double t = std::ceil(xr.lo / xstep) * xstep; t <= xr.hi + xstep * 1e-9; t += xstep) {
      svg << "<line x1=\"" << num(px(t)) << "\" x2=\"" << num(px(t)) << "\" y1=\"" << num(top + h) << "\" y2=\""
          << num(top + h + 4) << "\" stroke=\"#444\"/>";
      svg << "<text class=\"xtick\" x=\"" << num(px(t)) << "\" y=\"" << num(top + h + 17)
          << "\" text-anchor=\"middle\">" << tick_label(t, xstep) << "</text>\n";
    }
  }
  svg << "<rect x=\"" << num(left) << "\" y=\"" << num(top) << "\" width=\"" << num(w) << "\" height=\"" << num(h)
      << "\" fill=\"none\" stroke=\"#444\"/>\n";
  svg << "<text class=\"xlabel\" x=\"" << num(left + w / 2) << "\" y=\"" << num(top + h + 38)
      << "\" text-anchor=\"middle\">" << escape_xml(o.x_label) << "</text>\n";
  svg << "<text class=\"ylabel\" transform=\"translate(14," << num(top + h / 2) << ") rotate(-90)\" "
      << "text-anchor=\"middle\">" << escape_xml(o.y_label) << "</text>\n";
  if (empty) {
    svg << "<text class=\"nodata\" x=\"" << num(left + w / 2) << "\" y=\"" << num(top + h / 2)
        << "\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n";
  }
  // Series and legend.
  int legend_row = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    if (reduced[i].empty()) continue;
    const char* colour = kColours[i % (sizeof(kColours) / sizeof(kColours[0]))];
    svg << "<polyline class=\"series\" data-name=\"" << escape_xml(series[i].name) << "\" fill=\"none\" stroke=\""
        << colour << "\" stroke-width=\"1.5\" points=\"";
    for (size_t k = 0; k < reduced[i].size(); ++k) {
      svg << (k ? " " : "") << num(px(reduced[i][k].first)) << "," << num(py(reduced[i][k].second));
    }
    svg << "\"/>\n";
    const double ly = top + 8 + 16 * legend_row++;
    svg << "<line x1=\"" << num(left + w + 12) << "\" x2=\"" << num(left + w + 30) << "\" y1=\"" << num(ly)
        << "\" y2=\"" << num(ly) << "\" stroke=\"" << colour << "\" stroke-width=\"2\"/>";
    svg << "<text class=\"legend\" x=\"" << num(left + w + 35) << "\" y=\"" << num(ly + 4) << "\">"
        << escape_xml(series[i].name) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace ganlite::report
