// The evaluation report as one self-contained HTML page (inline CSS, PNGs as data URIs, plots
// as inline SVG: nothing external, so the file can be mailed or archived alone) and report.json.
#pragma once
#include <filesystem>
#include <string>

#include "ganlite/report/evaluate.h"

namespace ganlite::report {

std::string render_html_report(const EvalReport& report);

// Writes `dir`/index.html and `dir`/report.json. A new folder is built as a hidden sibling and
// renamed into place; in an existing folder each file is replaced atomically. Throws Error when
// `dir` exists and is not a folder.
void write_report(const std::filesystem::path& dir, const EvalReport& report);

}  // namespace ganlite::report
