// A translation service for `ganlite serve` (issue 17): generator files loaded once onto the fast
// inference path (nn::InferenceRunner, as `ganlite translate`), uploads decoded with bounds on
// body size and declared pixels, a bounded queue served by worker threads (503 when full) and a
// time bound per request. No torch or HTTP in this header: serve/http_server.cpp puts it on
// cpp-httplib, tests call it directly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ganlite/serve/metrics.h"

namespace ganlite::serve {

struct ServiceOptions {
  std::filesystem::path student;           // required
  std::filesystem::path teacher;           // empty: the service has no teacher
  std::string precision = "fp32";          // nn::valid_precisions()
  std::string device = "cpu";
  int threads = 0;                         // LibTorch threads of each worker (0: every CPU)
  int workers = 1;                         // requests computed at once
  size_t queue_capacity = 16;              // requests waiting for a worker; more are answered 503
  size_t max_body_bytes = size_t{16} << 20;
  int64_t max_pixels = int64_t{2048} * 2048;  // checked in the image header, before decoding
  double timeout_s = 60;                   // arrival to answer; later: 504
  // Tests only: runs on the worker before each request it computes (to hold a worker busy).
  std::function<void()> before_run;
};

// Model names of the query parameter `model`.
inline constexpr const char* kStudent = "student";
inline constexpr const char* kTeacher = "teacher";

struct ServiceReply {
  int status = 200;
  std::string content_type;  // "image/png", else "text/plain; charset=utf-8" with the message
  std::string body;
  double inference_ms = 0;   // the forward pass (padding and crop included)
  int64_t macs = 0;          // of that forward, at the padded input size (nn/profiler.h rules)
  int64_t width = 0, height = 0;
};

class TranslationService {
 public:
  // Loads the generators and starts the workers; throws UsageError / Error naming the bad option
  // or file (a missing file, a label-map generator, bf16 where oneDNN cannot run it).
  explicit TranslationService(ServiceOptions options);
  // Stops taking requests, finishes every queued and running one, joins the workers.
  ~TranslationService();
  TranslationService(const TranslationService&) = delete;
  TranslationService& operator=(const TranslationService&) = delete;

  // A PNG / JPEG / BMP / WebP upload translated by `model` to a PNG of the same size. Blocks
  // until answered; thread-safe. Statuses: 200; 400 undecodable or unknown model; 404 a model
  // not loaded; 413 body or pixels over the bounds; 415 not an image; 503 queue full or
  // draining; 504 no answer within timeout_s; 500 the forward failed.
  ServiceReply translate(const std::string& body, const std::string& model);

  // After this, translate() answers 503; queued and running requests still finish.
  void begin_drain();

  std::string health_json() const;  // {"status": "ok" | "draining", "models": {...}, ...}
  std::string metrics_text() const;
  ServeMetrics& metrics() { return metrics_; }
  int64_t queue_depth() const;
  int64_t running() const;
  bool has_model(const std::string& name) const;
  const ServiceOptions& options() const { return options_; }

 private:
  struct Impl;
  ServiceOptions options_;
  ServeMetrics metrics_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ganlite::serve
