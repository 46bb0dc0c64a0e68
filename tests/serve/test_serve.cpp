// `ganlite serve`'s library module in process: translations equal `ganlite translate`'s, every bad
// input gets its 4xx and the server keeps answering, a full queue answers 503, concurrent load.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>

#include "ganlite/nn/profiler.h"
#include "serve_test_support.h"
#include "tolerance.h"

namespace ganlite {
namespace {

namespace fs = std::filesystem;
using serve_testing::RunningServer;
using testing::contains;

struct ServeModels {
  testing::TempDir dir;
  fs::path student = serve_testing::write_tiny_generator(dir / "student.safetensors", "resnet", 4, "batch", 1, 1);
  fs::path teacher = serve_testing::write_tiny_generator(dir / "teacher.safetensors", "resnet", 8, "instance", 2, 2);

  serve::ServiceOptions options() const {
    serve::ServiceOptions o;
    o.student = student;
    o.teacher = teacher;
    o.threads = 1;
    return o;
  }
};

const ServeModels& models() {
  static const ServeModels m;
  return m;
}

TEST(Serve, HealthzNamesBothModels) {
  RunningServer server(models().options());
  const auto reply = server.get("/healthz");
  ASSERT_EQ(reply.status, 200) << reply.body;
  const auto health = nlohmann::json::parse(reply.body);
  EXPECT_EQ(health.at("status"), "ok");
  EXPECT_TRUE(health.at("models").contains("student"));
  EXPECT_TRUE(health.at("models").contains("teacher"));
  EXPECT_EQ(health.at("precision"), "fp32");
}

// The answer is what `ganlite translate` writes for the same file: same decode, same fast path,
// same padding (37x50 is no multiple of 4); one 8-bit level for the fp32 rounding of two runs.
TEST(Serve, TranslatesPngAndJpegAsTranslateDoes) {
  RunningServer server(models().options());
  testing::TempDir dir;
  const cv::Mat input = serve_testing::pattern_rgb(37, 50);
  for (const std::string ext : {".png", ".jpg"}) {
    const std::string bytes = serve_testing::encode_rgb(input, ext);
    for (const std::string model : {"student", "teacher"}) {
      SCOPED_TRACE(model + " " + ext);
      const auto reply = server.post("/v1/translate?model=" + model, bytes);
      ASSERT_EQ(reply.status, 200) << reply.body;
      EXPECT_EQ(reply.header("Content-Type"), "image/png");
      EXPECT_EQ(reply.header("X-Ganlite-Model"), model);
      EXPECT_GT(std::stod(reply.header("X-Ganlite-Latency-Ms")), 0.0);
      const fs::path file = model == "student" ? models().student : models().teacher;
      auto generator = io::load_generator(file);
      generator->eval();
      EXPECT_EQ(std::stoll(reply.header("X-Ganlite-MACs")), nn::profile_generator(*generator, 40, 52).macs);
      const cv::Mat answer = serve_testing::decode_png_rgb(reply.body);
      const cv::Mat expected = serve_testing::translate_like_cli(file, bytes, dir.path(), ext);
      ASSERT_EQ(answer.rows, 37);
      ASSERT_EQ(answer.cols, 50);
      cv::Scalar mean, spread;
      cv::meanStdDev(answer, mean, spread);
      EXPECT_GT(spread[0] + spread[1] + spread[2], 3.0) << "a uniform answer would make the comparison vacuous";
      EXPECT_TRUE(testing::within_one_level(serve_testing::as_tensor(answer), serve_testing::as_tensor(expected)));
    }
  }
  // Without ?model= the student answers.
  EXPECT_EQ(server.post("/v1/translate", serve_testing::encode_rgb(input, ".png")).header("X-Ganlite-Model"), "student");
}

// A PNG whose IHDR claims width x height (the CRC is not checked before the size is refused).
std::string png_claiming(int64_t width, int64_t height) {
  std::string bytes = serve_testing::encode_rgb(serve_testing::pattern_rgb(8, 8), ".png");
  for (int i = 0; i < 4; ++i) {
    bytes[16 + i] = static_cast<char>((width >> (24 - 8 * i)) & 0xFF);
    bytes[20 + i] = static_cast<char>((height >> (24 - 8 * i)) & 0xFF);
  }
  return bytes;
}

TEST(Serve, RefusesBadInputsWithTheir4xxAndKeepsServing) {
  serve::ServiceOptions options = models().options();
  options.max_body_bytes = 100000;
  options.max_pixels = 100 * 100;
  RunningServer server(options);
  const std::string good = serve_testing::encode_rgb(serve_testing::pattern_rgb(16, 16), ".png");
  struct Case {
    std::string name, method, target, body;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"not an image", "POST", "/v1/translate", "hello, this is text", 415, "not a PNG, JPEG"},
      {"empty body", "POST", "/v1/translate", "", 400, "empty request body"},
      {"truncated PNG", "POST", "/v1/translate", good.substr(0, good.size() / 2), 400, "truncated"},
      {"truncated JPEG", "POST", "/v1/translate", serve_testing::encode_rgb(serve_testing::pattern_rgb(16, 16), ".jpg").substr(0, 200),
       400, "truncated"},
      {"20000x20000 PNG", "POST", "/v1/translate", png_claiming(20000, 20000), 413, "20000x20000"},
      {"over --max-pixels", "POST", "/v1/translate", serve_testing::encode_rgb(serve_testing::pattern_rgb(120, 120), ".png"), 413,
       "120x120"},
      {"oversize body", "POST", "/v1/translate", std::string(100001, 'x'), 413, "over the limit of 100000 bytes"},
      {"unknown model", "POST", "/v1/translate?model=giant", good, 400, "unknown model 'giant'"},
      {"GET translate", "GET", "/v1/translate", "", 405, "allowed: POST"},
      {"PUT translate", "PUT", "/v1/translate", good, 405, "allowed: POST"},
      {"POST healthz", "POST", "/healthz", "x", 405, "allowed: GET"},
      {"DELETE page", "DELETE", "/", "", 405, "allowed: GET"},
      {"unknown path", "GET", "/v2/nothing", "", 404, "no such endpoint"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto reply = serve::http_request("127.0.0.1", server.port(), c.method, c.target, c.body);
    EXPECT_EQ(reply.status, c.status) << reply.body;
    EXPECT_TRUE(contains(reply.body, c.message)) << reply.body;
    // Still serving after each refusal.
    EXPECT_EQ(server.get("/healthz").status, 200);
  }
  EXPECT_EQ(server.get("/v1/translate").header("Allow"), "POST");
  EXPECT_EQ(server.post("/v1/translate?model=teacher", good).status, 200);
  const auto metrics = server.get("/metrics").body;
  EXPECT_TRUE(contains(metrics, "ganlite_serve_errors_total{endpoint=\"/v1/translate\",code=\"413\"} 3")) << metrics;
  EXPECT_TRUE(contains(metrics, "ganlite_serve_errors_total{endpoint=\"other\",code=\"404\"} 1")) << metrics;
}

TEST(Serve, AnswersNotLoadedWithoutATeacher) {
  serve::ServiceOptions options = models().options();
  options.teacher.clear();
  RunningServer server(options);
  const auto reply = server.post("/v1/translate?model=teacher", serve_testing::encode_rgb(serve_testing::pattern_rgb(8, 8), ".png"));
  EXPECT_EQ(reply.status, 404);
  EXPECT_TRUE(contains(reply.body, "--teacher")) << reply.body;
}

// Queue bound 1: the worker is held inside request A, B waits in the queue, C finds it full.
TEST(Serve, AnswersBusyWhenTheQueueIsFull) {
  std::mutex mutex;
  std::condition_variable changed;
  int started = 0;
  bool release = false;
  serve::ServiceOptions options = models().options();
  options.queue_capacity = 1;
  options.before_run = [&] {
    std::unique_lock<std::mutex> lock(mutex);
    ++started;
    changed.notify_all();
    changed.wait(lock, [&] { return release; });
  };
  RunningServer server(options);
  const std::string image = serve_testing::encode_rgb(serve_testing::pattern_rgb(16, 16), ".png");
  int status_a = 0, status_b = 0;
  std::thread a([&] { status_a = server.post("/v1/translate", image).status; });
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return started == 1; });
  }
  std::thread b([&] { status_b = server.post("/v1/translate", image).status; });
  while (server.service().queue_depth() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const auto c = server.post("/v1/translate", image);
  EXPECT_EQ(c.status, 503) << c.body;
  EXPECT_TRUE(contains(c.body, "queue bound 1")) << c.body;
  EXPECT_EQ(c.header("Retry-After"), "1");
  const auto metrics = server.get("/metrics").body;
  EXPECT_TRUE(contains(metrics, "ganlite_serve_queue_depth 1\n")) << metrics;
  EXPECT_TRUE(contains(metrics, "ganlite_serve_requests_running 1\n")) << metrics;
  {
    std::lock_guard<std::mutex> lock(mutex);
    release = true;
  }
  changed.notify_all();
  a.join();
  b.join();
  EXPECT_EQ(status_a, 200);
  EXPECT_EQ(status_b, 200);
}

// The worker is held until the client has its answer: past --timeout that answer is 504, and
// the server keeps answering (a later translation is not timed: that would test the machine).
TEST(Serve, AnswersGatewayTimeoutPastTheTimeBound) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  serve::ServiceOptions options = models().options();
  options.timeout_s = 0.2;
  options.before_run = [released] { released.wait(); };
  RunningServer server(options);
  const std::string image = serve_testing::encode_rgb(serve_testing::pattern_rgb(16, 16), ".png");
  const auto late = server.post("/v1/translate", image);
  EXPECT_EQ(late.status, 504) << late.body;
  EXPECT_TRUE(contains(late.body, "no answer within")) << late.body;
  release.set_value();
  EXPECT_EQ(server.get("/healthz").status, 200);
}

// 8 client threads on loopback, 4 requests each over both models, 2 workers (each with its own
// runners): every answer 200, every one counted in the latency histogram.
TEST(Serve, ConcurrentClientsGetNoErrors) {
  serve::ServiceOptions options = models().options();
  options.workers = 2;
  RunningServer server(options);
  const std::string image = serve_testing::encode_rgb(serve_testing::pattern_rgb(24, 24), ".png");
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 4; ++i) {
        const std::string model = (t + i) % 2 ? "teacher" : "student";
        (server.post("/v1/translate?model=" + model, image).status == 200 ? ok : failed)++;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 32);
  EXPECT_EQ(failed.load(), 0);
  const auto metrics = server.get("/metrics").body;
  EXPECT_TRUE(contains(metrics, "ganlite_serve_request_duration_seconds_count{model=\"student\"} 16")) << metrics;
  EXPECT_TRUE(contains(metrics, "ganlite_serve_request_duration_seconds_count{model=\"teacher\"} 16")) << metrics;
  EXPECT_TRUE(contains(metrics, "ganlite_serve_requests_total{endpoint=\"/v1/translate\",code=\"200\"} 32")) << metrics;
  EXPECT_TRUE(contains(metrics, "le=\"+Inf\"} 16")) << metrics;
}

TEST(Serve, RefusesBadOptionsNamingThem) {
  serve::ServiceOptions options = models().options();
  options.student = models().dir / "missing.safetensors";
  try {
    serve::TranslationService service(options);
    FAIL() << "a missing student was accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "missing.safetensors")) << e.what();
  }
  options = models().options();
  options.queue_capacity = 0;
  EXPECT_THROW(serve::TranslationService{options}, UsageError);
}

}  // namespace
}  // namespace ganlite
