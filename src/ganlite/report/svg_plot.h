// Line plots as inline SVG (no scripts, no external assets): loss curves in HTML reports.
#pragma once
#include <string>
#include <vector>

namespace ganlite::report {

struct PlotSeries {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;  // same length as x; non-finite points are skipped
};

struct PlotOptions {
  std::string title;
  std::string x_label = "step";
  std::string y_label = "loss";
  int width = 560;
  int height = 320;
  // Longer series are reduced to this many points by averaging consecutive runs of points
  // (a 200-epoch log has ~10^5 lines; the SVG must stay small).
  int max_points = 400;
};

// One <svg> element: axes with tick labels, the axis titles, one <polyline class="series"> per
// non-empty series (data-name = its name) and a legend. All series empty: the plot says "no data".
std::string svg_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options);

// Escapes &, <, >, " and ' for HTML / SVG text and attributes.
std::string escape_xml(const std::string& text);

}  // namespace ganlite::report
