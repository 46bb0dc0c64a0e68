#include "ganlite/serve/service.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>
#include <tuple>

#include "ganlite/data/image_io.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/inference.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/nn/translate.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"

namespace ganlite::serve {

namespace {

using ServeClock = std::chrono::steady_clock;
constexpr const char* kTextType = "text/plain; charset=utf-8";
constexpr size_t kMacCacheEntries = 256;  // distinct (model, size) pairs remembered

ServiceReply text_reply(int status, const std::string& message) {
  ServiceReply r;
  r.status = status;
  r.content_type = kTextType;
  r.body = message + "\n";
  return r;
}

}  // namespace

// Types of the service's Impl: outside the anonymous namespace, as unity builds include this
// file into others (GCC's -Wsubobject-linkage).
namespace service_detail {

struct ServedModel {
  std::string name;
  std::filesystem::path path;
  nn::Generator generator;
  int64_t multiple = 4;
  int64_t params = 0;
  std::vector<std::unique_ptr<nn::InferenceRunner>> runners;  // one per worker
};

struct ServeOutcome {
  torch::Tensor output;
  double inference_ms = 0;
  int64_t macs = 0;
  int status = 200;
  std::string message;
};

struct ServeJob {
  size_t model = 0;
  torch::Tensor input;  // [1, 3, H, W] on the service's device
  ServeClock::time_point deadline;
  std::promise<ServeOutcome> done;
};

}  // namespace service_detail

using service_detail::ServedModel;
using service_detail::ServeJob;
using service_detail::ServeOutcome;

struct TranslationService::Impl {
  torch::Device device = torch::kCPU;
  std::vector<ServedModel> models;
  mutable std::mutex mutex;  // queue, running, draining, stopping
  std::condition_variable wake;
  std::deque<std::shared_ptr<ServeJob>> queue;
  int64_t running = 0;
  bool draining = false;
  bool stopping = false;
  std::vector<std::thread> workers;
  std::mutex mac_mutex;  // the MAC cache, and profiling (a forward on the shared module)
  std::map<std::tuple<size_t, int64_t, int64_t>, int64_t> mac_cache;

  int64_t macs_for(size_t model, int64_t height, int64_t width);
  void run_job(const ServiceOptions& options, int worker, ServeJob& job);
  void worker_loop(const ServiceOptions& options, int worker);
};

int64_t TranslationService::Impl::macs_for(size_t model, int64_t height, int64_t width) {
  std::lock_guard<std::mutex> lock(mac_mutex);
  const auto key = std::make_tuple(model, height, width);
  const auto it = mac_cache.find(key);
  if (it != mac_cache.end()) return it->second;
  if (mac_cache.size() >= kMacCacheEntries) mac_cache.clear();
  torch::NoGradGuard no_grad;
  const int64_t macs = nn::profile_generator(*models[model].generator, height, width).macs;
  mac_cache[key] = macs;
  return macs;
}

void TranslationService::Impl::run_job(const ServiceOptions& options, int worker, ServeJob& job) {
  ServeOutcome outcome;
  if (ServeClock::now() > job.deadline) {
    outcome.status = 504;
    outcome.message = "no worker was free within " + std::to_string(options.timeout_s) + " s";
    job.done.set_value(std::move(outcome));
    return;
  }
  try {
    if (options.before_run) options.before_run();
    ServedModel& m = models[job.model];
    const nn::InferenceRunner& runner = *m.runners[static_cast<size_t>(worker)];
    const auto start = ServeClock::now();
    outcome.output = nn::translate_padded([&](const torch::Tensor& x) { return runner.forward(x); }, job.input, m.multiple)
                         .cpu()
                         .contiguous();
    outcome.inference_ms = std::chrono::duration<double, std::milli>(ServeClock::now() - start).count();
    const auto padded = [&](int64_t n) { return (n + m.multiple - 1) / m.multiple * m.multiple; };
    outcome.macs = macs_for(job.model, padded(job.input.size(2)), padded(job.input.size(3)));
  } catch (const c10::Error& e) {  // LibTorch's message without its backtrace
    outcome.status = 500;
    outcome.message = "the " + models[job.model].name + " generator failed: " + e.what_without_backtrace();
  } catch (const std::exception& e) {
    outcome.status = 500;
    outcome.message = "the " + models[job.model].name + " generator failed: " + e.what();
  }
  job.done.set_value(std::move(outcome));
}

void TranslationService::Impl::worker_loop(const ServiceOptions& options, int worker) {
  // OpenMP's thread count is per thread: a worker sets its own (util/device.h).
  set_threads(options.threads);
  for (;;) {
    std::shared_ptr<ServeJob> job;
    {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping, and nothing left to finish
      job = queue.front();
      queue.pop_front();
      ++running;
    }
    run_job(options, worker, *job);
    std::lock_guard<std::mutex> lock(mutex);
    --running;
  }
}

namespace {

ServedModel load_served_model(const std::string& name, const std::filesystem::path& path, const torch::Device& device,
                              nn::Precision precision, int workers) {
  if (!std::filesystem::is_regular_file(path)) {
    throw UsageError("--" + name + ": no such file '" + path.string() + "'");
  }
  ServedModel m;
  m.name = name;
  m.path = path;
  m.generator = io::load_generator(path, device);
  const nn::ArchConfig& config = m.generator->config();
  if (config.input_nc != 3 || config.output_nc != 3) {
    throw UsageError("--" + name + " '" + path.string() + "': serve translates RGB images, this generator takes " +
                     std::to_string(config.input_nc) + " channels and gives " + std::to_string(config.output_nc) +
                     " (label-map generators are not served)");
  }
  m.generator->eval();  // profiling runs the module: BatchNorm must not update its statistics
  m.multiple = nn::size_multiple(config);
  m.params = nn::count_parameters(*m.generator);
  for (int w = 0; w < workers; ++w) {
    m.runners.push_back(std::make_unique<nn::InferenceRunner>(*m.generator, nn::InferenceOptions{precision, true}));
  }
  return m;
}

}  // namespace

TranslationService::TranslationService(ServiceOptions options) : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  require(options_.workers >= 1 && options_.workers <= 256, "--workers must be in [1, 256], got " + std::to_string(options_.workers));
  require(options_.queue_capacity >= 1 && options_.queue_capacity <= 100000,
          "--queue must be in [1, 100000], got " + std::to_string(options_.queue_capacity));
  require(options_.max_pixels >= 1 && options_.max_pixels <= data::kMaxImagePixels,
          "--max-pixels must be in [1, " + std::to_string(data::kMaxImagePixels) + "], got " + std::to_string(options_.max_pixels));
  require(options_.timeout_s > 0, "--timeout must be positive, got " + std::to_string(options_.timeout_s));
  require(options_.max_body_bytes >= 1, "--max-body-mb must be positive");
  impl_->device = parse_device(options_.device);
  const nn::Precision precision = nn::parse_precision(options_.precision);
  if (precision == nn::Precision::bf16 && !nn::bf16_convs_run(impl_->device)) {
    throw UsageError("--precision bf16: oneDNN cannot run bf16 convolutions here; use fp32");
  }
  impl_->models.push_back(load_served_model(kStudent, options_.student, impl_->device, precision, options_.workers));
  if (!options_.teacher.empty()) {
    impl_->models.push_back(load_served_model(kTeacher, options_.teacher, impl_->device, precision, options_.workers));
  }
  for (int w = 0; w < options_.workers; ++w) {
    impl_->workers.emplace_back([this, w] { impl_->worker_loop(options_, w); });
  }
}

TranslationService::~TranslationService() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->draining = true;
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  for (auto& t : impl_->workers) t.join();
}

void TranslationService::begin_drain() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->draining = true;
}

int64_t TranslationService::queue_depth() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return static_cast<int64_t>(impl_->queue.size());
}

int64_t TranslationService::running() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->running;
}

bool TranslationService::has_model(const std::string& name) const {
  return std::any_of(impl_->models.begin(), impl_->models.end(), [&](const ServedModel& m) { return m.name == name; });
}

std::string TranslationService::metrics_text() const { return metrics_.prometheus_text(queue_depth(), running()); }

std::string TranslationService::health_json() const {
  nlohmann::json models = nlohmann::json::object();
  for (const auto& m : impl_->models) {
    models[m.name] = {{"file", m.path.string()},
                      {"arch", m.generator->config().arch + " ngf " + std::to_string(m.generator->config().ngf)},
                      {"params", m.params},
                      {"size_multiple", m.multiple}};
  }
  bool draining = false;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    draining = impl_->draining;
  }
  return nlohmann::json{{"status", draining ? "draining" : "ok"},
                        {"models", models},
                        {"precision", options_.precision},
                        {"workers", options_.workers},
                        {"queue_depth", queue_depth()},
                        {"queue_capacity", options_.queue_capacity},
                        {"max_body_bytes", options_.max_body_bytes},
                        {"max_pixels", options_.max_pixels},
                        {"timeout_s", options_.timeout_s}}
      .dump();
}

namespace {

// The upload as a [1, 3, H, W] tensor, or the 4xx reply that refuses it.
std::optional<ServiceReply> refuse_upload(const std::string& body, const ServiceOptions& options) {
  if (body.size() > options.max_body_bytes) {
    return text_reply(413, "request body of " + std::to_string(body.size()) + " bytes is over the limit of " +
                               std::to_string(options.max_body_bytes) + " bytes");
  }
  if (body.empty()) return text_reply(400, "empty request body: send a PNG or JPEG image");
  const data::ImageHeader header = data::peek_image_header(body);
  if (header.format.empty()) return text_reply(415, "the request body is not a PNG, JPEG, BMP or WebP image");
  if (header.width > 0 && header.height > 0 && header.width * header.height > options.max_pixels) {
    return text_reply(413, "the image declares " + std::to_string(header.width) + "x" + std::to_string(header.height) +
                               " pixels, over the limit of " + std::to_string(options.max_pixels) + " pixels");
  }
  return std::nullopt;
}

std::string encode_png(const torch::Tensor& image) {
  cv::Mat bgr;
  cv::cvtColor(data::tensor_to_image(image), bgr, cv::COLOR_RGB2BGR);
  std::vector<unsigned char> png;
  if (!cv::imencode(".png", bgr, png, {cv::IMWRITE_PNG_COMPRESSION, 1})) throw Error("cannot encode the output as PNG");
  return std::string(png.begin(), png.end());
}

}  // namespace

ServiceReply TranslationService::translate(const std::string& body, const std::string& model) {
  const auto arrival = ServeClock::now();
  if (model != kStudent && model != kTeacher) {
    return text_reply(400, "unknown model '" + model + "' (valid: student, teacher)");
  }
  const auto index = static_cast<size_t>(std::find_if(impl_->models.begin(), impl_->models.end(),
                                                      [&](const ServedModel& m) { return m.name == model; }) -
                                         impl_->models.begin());
  if (index == impl_->models.size()) return text_reply(404, "no " + model + " loaded (start the server with --" + model + ")");
  ServiceReply reply = [&] {
    if (auto refusal = refuse_upload(body, options_)) return *refusal;
    auto job = std::make_shared<ServeJob>();
    job->model = index;
    job->deadline = arrival + std::chrono::duration_cast<ServeClock::duration>(std::chrono::duration<double>(options_.timeout_s));
    try {
      job->input = data::image_to_tensor(data::decode_image_rgb(body, "upload", options_.max_pixels)).unsqueeze(0).to(impl_->device);
    } catch (const Error& e) {
      return text_reply(400, e.what());
    }
    std::future<ServeOutcome> done = job->done.get_future();
    {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      if (impl_->draining) return text_reply(503, "the server is shutting down");
      if (impl_->queue.size() >= options_.queue_capacity) {
        return text_reply(503, "busy: " + std::to_string(impl_->queue.size()) + " requests already wait (queue bound " +
                                   std::to_string(options_.queue_capacity) + "); retry later");
      }
      impl_->queue.push_back(job);
    }
    impl_->wake.notify_one();
    if (done.wait_until(job->deadline) != std::future_status::ready) {
      return text_reply(504, "no answer within " + std::to_string(options_.timeout_s) + " s");
    }
    ServeOutcome outcome = done.get();
    if (outcome.status != 200) return text_reply(outcome.status, outcome.message);
    ServiceReply ok;
    ok.content_type = "image/png";
    ok.body = encode_png(outcome.output);
    ok.inference_ms = outcome.inference_ms;
    ok.macs = outcome.macs;
    ok.height = outcome.output.size(2);
    ok.width = outcome.output.size(3);
    return ok;
  }();
  if (reply.status == 200) metrics_.observe_latency(model, std::chrono::duration<double>(ServeClock::now() - arrival).count());
  return reply;
}

}  // namespace ganlite::serve
