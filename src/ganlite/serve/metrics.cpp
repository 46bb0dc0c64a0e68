#include "ganlite/serve/metrics.h"

#include <sstream>

namespace ganlite::serve {

const std::vector<double>& ServeMetrics::latency_buckets() {
  // 5 ms (a small student) to 30 s (a teacher at a large size on a busy CPU).
  static const std::vector<double> buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return buckets;
}

void ServeMetrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
}

void ServeMetrics::observe_latency(const std::string& model, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  Histogram& h = latency_[model];
  const auto& bounds = latency_buckets();
  if (h.counts.empty()) h.counts.assign(bounds.size() + 1, 0);
  size_t bucket = 0;
  while (bucket < bounds.size() && seconds > bounds[bucket]) ++bucket;
  ++h.counts[bucket];
  h.sum += seconds;
  ++h.count;
}

int64_t ServeMetrics::requests(const std::string& endpoint, int status) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = requests_.find({endpoint, status});
  return it == requests_.end() ? 0 : it->second;
}

std::string ServeMetrics::prometheus_text(int64_t queue_depth, int64_t running) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  out << "# HELP ganlite_serve_requests_total HTTP requests answered, by endpoint and status code.\n"
      << "# TYPE ganlite_serve_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out << "ganlite_serve_requests_total{endpoint=\"" << key.first << "\",code=\"" << key.second << "\"} " << n << "\n";
  }
  out << "# HELP ganlite_serve_errors_total HTTP requests answered with a 4xx or 5xx status.\n"
      << "# TYPE ganlite_serve_errors_total counter\n";
  for (const auto& [key, n] : requests_) {
    if (key.second < 400) continue;
    out << "ganlite_serve_errors_total{endpoint=\"" << key.first << "\",code=\"" << key.second << "\"} " << n << "\n";
  }
  out << "# HELP ganlite_serve_request_duration_seconds Answered translations (200) from arrival to answer, by model.\n"
      << "# TYPE ganlite_serve_request_duration_seconds histogram\n";
  const auto& bounds = latency_buckets();
  for (const auto& [model, h] : latency_) {
    int64_t cumulative = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
      cumulative += h.counts[i];
      out << "ganlite_serve_request_duration_seconds_bucket{model=\"" << model << "\",le=\"" << bounds[i] << "\"} "
          << cumulative << "\n";
    }
    out << "ganlite_serve_request_duration_seconds_bucket{model=\"" << model << "\",le=\"+Inf\"} " << h.count << "\n"
        << "ganlite_serve_request_duration_seconds_sum{model=\"" << model << "\"} " << h.sum << "\n"
        << "ganlite_serve_request_duration_seconds_count{model=\"" << model << "\"} " << h.count << "\n";
  }
  out << "# HELP ganlite_serve_queue_depth Translation requests waiting for a worker.\n"
      << "# TYPE ganlite_serve_queue_depth gauge\n"
      << "ganlite_serve_queue_depth " << queue_depth << "\n"
      << "# HELP ganlite_serve_requests_running Translation requests a worker is running.\n"
      << "# TYPE ganlite_serve_requests_running gauge\n"
      << "ganlite_serve_requests_running " << running << "\n";
  return out.str();
}

}  // namespace ganlite::serve
