// Counters of `ganlite serve` in Prometheus' text exposition format (version 0.0.4): requests
// and errors by endpoint and status, a latency histogram per model, queue depth and running
// requests. Thread-safe; no torch here, so the HTTP layer compiles without LibTorch's headers.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ganlite::serve {

class ServeMetrics {
 public:
  // Upper bounds (seconds) of the latency histogram's buckets, +Inf aside.
  static const std::vector<double>& latency_buckets();

  // Every answered HTTP request; statuses >= 400 also count as errors.
  void count_request(const std::string& endpoint, int status);
  // An answered translation's duration from arrival to answer, per model ("student" / "teacher").
  void observe_latency(const std::string& model, double seconds);

  // The whole exposition; `queue_depth` and `running` are read from the service when asked.
  std::string prometheus_text(int64_t queue_depth, int64_t running) const;

  // Requests counted for `endpoint` with `status` (tests).
  int64_t requests(const std::string& endpoint, int status) const;

 private:
  struct Histogram {
    std::vector<int64_t> counts;  // per bucket, not cumulative; the last one is +Inf
    double sum = 0;
    int64_t count = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, Histogram> latency_;
};

}  // namespace ganlite::serve
