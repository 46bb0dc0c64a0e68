#include "ganlite/util/progress.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>

namespace ganlite {

namespace {
std::atomic<bool> g_enabled{true};
}

void ProgressBar::set_enabled(bool enabled) { g_enabled = enabled; }
bool ProgressBar::enabled() { return g_enabled; }

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  char buf[32];
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  } else if (seconds < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(seconds) / 3600,
                  (static_cast<int>(seconds) % 3600) / 60);
  }
  return buf;
}

ProgressBar::ProgressBar(int64_t total, std::string label)
    : total_(total), label_(std::move(label)), tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (!finished_) finish(status_);
}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(int64_t done, const std::string& status) {
  done_ = done;
  if (!status.empty()) status_ = status;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (tty_ ? 0.1 : 5.0)) {
    last_draw_ = now;
    draw(false);
  }
}

void ProgressBar::finish(const std::string& status) {
  if (finished_) return;
  finished_ = true;
  if (!status.empty()) status_ = status;
  draw(true);
}

void ProgressBar::draw(bool final_line) {
  if (!g_enabled) return;
  const double elapsed = elapsed_seconds();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const double eta = (rate > 0 && total_ > 0) ? static_cast<double>(total_ - done_) / rate : NAN;
  const double frac = total_ > 0 ? std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_)) : 0.0;
  constexpr int kWidth = 24;
  std::string bar(static_cast<size_t>(kWidth), ' ');
  for (int i = 0; i < static_cast<int>(frac * kWidth); ++i) bar[static_cast<size_t>(i)] = '#';
  char rate_text[32];
  if (rate >= 1.0 || rate == 0.0) {
    std::snprintf(rate_text, sizeof rate_text, "%.1f it/s", rate);
  } else {
    std::snprintf(rate_text, sizeof rate_text, "%.2f s/it", 1.0 / rate);
  }
  std::fprintf(stderr, "%s%s [%s] %lld/%lld %3.0f%% %s elapsed %s ETA %s%s%s%s", tty_ ? "\r\033[K" : "",
               label_.c_str(), bar.c_str(), static_cast<long long>(done_), static_cast<long long>(total_),
               frac * 100.0, rate_text, format_duration(elapsed).c_str(),
               final_line ? "0s" : format_duration(eta).c_str(), status_.empty() ? "" : " | ", status_.c_str(),
               (tty_ && !final_line) ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace ganlite
