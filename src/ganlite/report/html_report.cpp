#include "ganlite/report/html_report.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ganlite/metrics/image_quality.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/report/base64.h"
#include "ganlite/report/svg_plot.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::report {

namespace fs = std::filesystem;

namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string ratio_text(double a, double b) {
  const auto r = ratio(a, b);
  return r ? fixed(*r, 2) + "&times;" : "&ndash;";
}

std::string arch_text(const nn::ArchConfig& a) { return nn::describe_generator(a); }

std::string latency_text(const metrics::LatencyResult& l) {
  return fixed(l.median_ms, 2) + " / " + fixed(l.p90_ms, 2);
}

class Table {
 public:
  explicit Table(std::ostringstream& out) : out_(out) {}
  void row(const std::string& key, const std::string& label, const std::string& teacher, const std::string& student,
           const std::string& ratio = "") {
    out_ << "<tr data-key=\"" << key << "\"><th>" << label << "</th><td>" << teacher << "</td><td>" << student
         << "</td><td>" << ratio << "</td></tr>\n";
  }

 private:
  std::ostringstream& out_;
};

void summary_table(std::ostringstream& out, const EvalReport& r) {
  const auto& t = r.teacher;
  const auto& s = r.student;
  // Label-map runs are evaluated at height x width, their second sizes at S x 2S (evaluate.h).
  const bool rect = r.height > 0;
  const auto size_text = [rect](int64_t h, int64_t w) { return " @ " + (rect ? std::to_string(h) + "x" : "") + std::to_string(w); };
  const std::string at = size_text(r.height, r.size);
  const std::string at_profile = size_text(r.options.profile_size, rect ? 2 * r.options.profile_size : r.options.profile_size);
  const std::string at_latency = size_text(r.options.latency_size, rect ? 2 * r.options.latency_size : r.options.latency_size);
  out << "<table id=\"summary\">\n<thead><tr><th></th><th>Teacher</th><th>Student</th>"
      << "<th>Teacher / Student</th></tr></thead>\n<tbody>\n";
  Table table(out);
  table.row("arch", "Architecture", escape_xml(arch_text(t.arch)), escape_xml(arch_text(s.arch)));
  table.row("params", "Parameters", nn::format_params(t.params), nn::format_params(s.params),
            ratio_text(static_cast<double>(t.params), static_cast<double>(s.params)));
  table.row("macs", "MACs" + at, nn::format_macs(t.macs), nn::format_macs(s.macs),
            ratio_text(static_cast<double>(t.macs), static_cast<double>(s.macs)));
  table.row("macs_profile", "MACs" + at_profile, nn::format_macs(t.macs_profile), nn::format_macs(s.macs_profile),
            ratio_text(static_cast<double>(t.macs_profile), static_cast<double>(s.macs_profile)));
  table.row("latency", "Latency" + at + ", median / p90 (ms)", latency_text(t.latency), latency_text(s.latency),
            ratio_text(t.latency.median_ms, s.latency.median_ms));
  table.row("throughput", "Images / s" + at, fixed(t.latency.images_per_second, 1),
            fixed(s.latency.images_per_second, 1));
  if (at_latency != at) {  // otherwise the row above holds the same figures
    table.row("latency_at_latency_size", "Latency" + at_latency + ", median / p90 (ms)",
              latency_text(t.latency_at_size), latency_text(s.latency_at_size),
              ratio_text(t.latency_at_size.median_ms, s.latency_at_size.median_ms));
  }
  table.row("psnr", "PSNR vs truth (dB)", fixed(t.psnr, 2), fixed(s.psnr, 2));
  table.row("ssim", "SSIM vs truth", fixed(t.ssim, 4), fixed(s.ssim, 4));
  table.row("psnr_vs_teacher", "PSNR vs teacher (dB)", "&ndash;",
            s.psnr_vs_teacher ? fixed(*s.psnr_vs_teacher, 2) : "&ndash;");
  table.row("ssim_vs_teacher", "SSIM vs teacher", "&ndash;", s.ssim_vs_teacher ? fixed(*s.ssim_vs_teacher, 4) : "&ndash;");
  if (t.fid && s.fid) table.row("fid", "FID", fixed(*t.fid, 2), fixed(*s.fid, 2));
  if (t.miou && s.miou) table.row("miou", "mIoU (%)", fixed(*t.miou, 2), fixed(*s.miou, 2));
  if (t.kid && s.kid) {
    table.row("kid", "KID (&times;1000)", fixed(t.kid->mean * 1000, 2) + " &plusmn; " + fixed(t.kid->std * 1000, 2),
              fixed(s.kid->mean * 1000, 2) + " &plusmn; " + fixed(s.kid->std * 1000, 2));
  }
  out << "</tbody>\n</table>\n";
  out << "<p class=\"small\">PSNR per image capped at " << metrics::kPsnrCapDb
      << " dB (identical images), images quantised to 8 bits as saved PNGs are. Latency: batch 1, "
      << t.latency.samples_ms.size() << " timed runs after warm-up, on " << escape_xml(r.device) << " with "
      << r.threads << " thread(s). MACs by the papers' convention (batch 1).";
  if (t.fid) out << " FID real side: " << escape_xml(r.real_source) << ".";
  if (!t.fid) out << " FID not computed (no Inception weights given).";
  if (r.truth_miou) out << " mIoU of the truth images with the same segmenter: " << fixed(*r.truth_miou, 2) << " %.";
  out << "</p>\n";
}

void model_table(std::ostringstream& out, const std::string& role, const ModelEvaluation& m) {
  out << "<table class=\"model\" id=\"model-" << role << "\">\n<tbody>\n"
      << "<tr><th>File</th><td>" << escape_xml(m.path) << "</td></tr>\n"
      << "<tr><th>Architecture</th><td>" << escape_xml(arch_text(m.arch)) << ", norm " << escape_xml(m.arch.norm)
      << "</td></tr>\n"
      << "<tr><th>Throughput @ latency size</th><td>" << fixed(m.latency_at_size.images_per_second, 1)
      << " images/s</td></tr>\n"
      << "</tbody>\n</table>\n";
}

void grid_section(std::ostringstream& out, const EvalReport& r) {
  out << "<h2>Samples</h2>\n";
  if (r.grid.empty()) {
    out << "<p class=\"note\">No sample rows (grid disabled).</p>\n";
    return;
  }
  const int side = static_cast<int>(std::clamp<int64_t>(r.size, 128, 256));
  out << "<table id=\"grid\">\n<thead><tr><th>image</th><th>input</th><th>teacher</th><th>student</th>"
      << "<th>target</th></tr></thead>\n<tbody>\n";
  for (const auto& row : r.grid) {
    out << "<tr><th>" << escape_xml(row.name) << "</th>";
    for (const auto* image : {&row.input, &row.teacher, &row.student, &row.target}) {
      out << "<td><img width=\"" << side << "\" height=\"" << side << "\" alt=\"\" src=\"" << png_data_uri(*image)
          << "\"></td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody>\n</table>\n";
}

void curves_section(std::ostringstream& out, const std::string& role, const RunCurves& c) {
  out << "<div class=\"curves\" id=\"curves-" << role << "\">\n<h3>" << (role == "teacher" ? "Teacher" : "Student")
      << " run</h3>\n";
  if (!c.run_dir.empty()) out << "<p class=\"small\">" << escape_xml(c.run_dir) << "</p>\n";
  if (!c.note.empty()) out << "<p class=\"note\">" << escape_xml(c.note) << "</p>\n";
  if (!c.losses.empty()) {
    PlotOptions o;
    o.title = "training losses";
    out << svg_line_plot(c.losses, o);
  }
  if (!c.validation.empty()) {
    PlotOptions o;
    o.title = "validation";
    o.x_label = "epoch";
    o.y_label = "PSNR (dB)";
    out << svg_line_plot(c.validation, o);
  }
  out << "</div>\n";
}

const char* kStyle = R"(
body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; } h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
thead th { background: #2b4a6f; color: #fff; }
tbody th { text-align: left; background: #f0f3f7; font-weight: normal; }
table.model td { text-align: left; }
#grid td { padding: 2px; } #grid thead th { text-align: center; } #grid img { image-rendering: pixelated; display: block; }
.small { font-size: 12px; color: #555; } .note { color: #a05000; }
.curves { display: inline-block; vertical-align: top; margin-right: 24px; }
svg.plot { display: block; margin: 6px 0; border: 1px solid #ddd; }
)";

}  // namespace

std::string format_fraction(double f) {
  if (!(f > 0) || !std::isfinite(f)) return fixed(f, 3);
  const double inverse = 1.0 / f;
  const double whole = std::round(inverse);
  if (whole >= 2 && whole <= 1000 && std::abs(inverse - whole) <= 1e-6 * whole) {
    return "1/" + std::to_string(static_cast<int64_t>(whole));
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3g%%", 100.0 * f);
  return buf;
}

std::string render_html_report(const EvalReport& r) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<title>ganlite eval: teacher vs student</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n"
      << "<h1>Teacher vs student</h1>\n<p class=\"small\">" << escape_xml(r.options.task) << " "
      << escape_xml(r.options.direction) << " on <b>" << escape_xml(r.options.data) << "</b>, split "
      << escape_xml(r.split) << ": " << r.count << " image(s) at " << (r.height > 0 ? r.height : r.size) << "&times;" << r.size << ".</p>\n";
  out << "<h2>Summary</h2>\n";
  summary_table(out, r);
  out << "<h2>Models</h2>\n<h3>Teacher</h3>\n";
  model_table(out, "teacher", r.teacher);
  out << "<h3>Student</h3>\n";
  model_table(out, "student", r.student);
  grid_section(out, r);
  out << "<h2>Training curves</h2>\n";
  curves_section(out, "teacher", r.teacher_curves);
  curves_section(out, "student", r.student_curves);
  out << "<p class=\"small\">ganlite " << GANLITE_VERSION << "</p>\n</body>\n</html>\n";
  return out.str();
}

void write_report(const fs::path& dir, const EvalReport& report) {
  const std::string html = render_html_report(report);
  const std::string json = report.to_json().dump(2) + "\n";
  if (fs::exists(dir)) {
    if (!fs::is_directory(dir)) throw Error("report folder '" + dir.string() + "' exists and is not a folder");
    write_file_atomic(dir / "report.json", json);
    write_file_atomic(dir / "index.html", html);
    return;
  }
  const fs::path parent = dir.parent_path().empty() ? fs::path(".") : dir.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw Error("cannot create '" + parent.string() + "': " + ec.message());
  const fs::path tmp = parent / ("." + dir.filename().string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  try {
    fs::create_directory(tmp);
    write_file_atomic(tmp / "report.json", json);
    write_file_atomic(tmp / "index.html", html);
    fs::rename(tmp, dir);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error("cannot write report folder '" + dir.string() + "': " + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace ganlite::report
