// A progress bar with rate and ETA on stderr. On a terminal it redraws one line; elsewhere
// (CI logs, pipes) it prints a line at most every few seconds.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace ganlite {

class ProgressBar {
 public:
  ProgressBar(int64_t total, std::string label);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Sets the number of finished units; `status` is shown after the bar (losses, say).
  void update(int64_t done, const std::string& status = "");
  void advance(int64_t n = 1, const std::string& status = "") { update(done_ + n, status); }
  // Draws the final state and ends the line. Called by the destructor if not before.
  void finish(const std::string& status = "");

  int64_t done() const { return done_; }
  double elapsed_seconds() const;

  // Silences every progress bar (for --json output or --quiet).
  static void set_enabled(bool enabled);
  static bool enabled();

 private:
  void draw(bool final_line);

  int64_t total_;
  int64_t done_ = 0;
  std::string label_;
  std::string status_;
  bool finished_ = false;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// "1h02m", "3m05s", "12.3s"
std::string format_duration(double seconds);

}  // namespace ganlite
