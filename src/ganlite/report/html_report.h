// The evaluation report as one self-contained HTML page (inline CSS, PNGs as data URIs, plots
// as inline SVG: nothing external, so the file can be mailed or archived alone) and report.json.
#pragma once
#include <filesystem>
#include <string>

#include "ganlite/report/evaluate.h"

namespace ganlite::report {

// The page. Latency at EvalOptions::latency_size gets a row of its own only when that size differs
// from the evaluation size (the same measurement otherwise).
std::string render_html_report(const EvalReport& report);

// A fraction for people: "1/10" where it is the reciprocal of a whole number up to 1000, else a
// percentage to 3 significant digits ("30%", "12.5%").
std::string format_fraction(double fraction);

// Writes `dir`/index.html and `dir`/report.json. A new folder is built as a hidden sibling and
// renamed into place; in an existing folder each file is replaced atomically. Throws Error when
// `dir` exists and is not a folder.
void write_report(const std::filesystem::path& dir, const EvalReport& report);

}  // namespace ganlite::report
