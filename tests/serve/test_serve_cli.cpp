// `ganlite serve` as users run it: --help and bad flags, SIGTERM draining a request in flight,
// and the comparison page driven in headless Chromium (skipped where Chromium is absent).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "serve_test_support.h"

namespace ganlite {
namespace {

namespace fs = std::filesystem;
using serve_testing::RunningServer;
using testing::contains;

std::string file_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

TEST(ServeCli, HelpAndBadFlagsNameTheInput) {
  const auto help = testing::run_cli("serve --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  for (const char* flag : {"--model", "--teacher", "--host", "--port", "--threads", "--precision", "--queue"}) {
    EXPECT_TRUE(contains(help.output, flag)) << flag;
  }
  testing::TempDir dir;
  const auto missing = testing::run_cli("serve --model " + quoted(dir / "nope.safetensors"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(contains(missing.output, "nope.safetensors")) << missing.output;
  const auto student = serve_testing::write_tiny_generator(dir / "s.safetensors", "resnet", 4, "instance", 1, 3);
  const auto precision = testing::run_cli("serve --model " + quoted(student) + " --precision fp16");
  EXPECT_EQ(precision.exit_code, 2) << precision.output;
  EXPECT_TRUE(contains(precision.output, "fp16")) << precision.output;
  const auto queue = testing::run_cli("serve --model " + quoted(student) + " --port 0 --queue 0");
  EXPECT_EQ(queue.exit_code, 2) << queue.output;
  EXPECT_TRUE(contains(queue.output, "--queue")) << queue.output;
}

// The port the child prints ("listening on http://127.0.0.1:PORT/"), waiting up to ~60 s.
int wait_for_port(int pid, const fs::path& log) {
  const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)/");
  for (int i = 0; i < 6000; ++i) {
    std::smatch m;
    const std::string text = file_text(log);
    if (std::regex_search(text, m, listening)) return std::stoi(m[1]);
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

// A request is held on the worker (GANLITE_TEST_SERVE_DELAY_MS) when SIGTERM arrives: it is
// answered 200, then the process exits 0.
TEST(ServeCli, SigtermDrainsTheRequestInFlightThenExitsZero) {
  testing::TempDir dir;
  const auto student = serve_testing::write_tiny_generator(dir / "s.safetensors", "resnet", 4, "instance", 1, 3);
  ::setenv("GANLITE_TEST_SERVE_DELAY_MS", "1500", 1);
  const int pid = testing::spawn_cli("serve --model " + quoted(student) + " --port 0 --threads 1", dir / "log.txt");
  ::unsetenv("GANLITE_TEST_SERVE_DELAY_MS");
  const int port = wait_for_port(pid, dir / "log.txt");
  ASSERT_GT(port, 0) << file_text(dir / "log.txt");
  int in_flight_status = 0;
  std::string in_flight_type;
  std::thread request([&] {
    const auto reply = serve::http_request("127.0.0.1", port, "POST", "/v1/translate",
                                           serve_testing::encode_rgb(serve_testing::pattern_rgb(16, 16), ".png"));
    in_flight_status = reply.status;
    in_flight_type = reply.header("Content-Type");
  });
  bool running = false;
  for (int i = 0; i < 3000 && !running; ++i) {
    running = contains(serve::http_request("127.0.0.1", port, "GET", "/metrics").body, "ganlite_serve_requests_running 1\n");
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(running) << "the request never started";
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  request.join();
  EXPECT_EQ(in_flight_status, 200);
  EXPECT_EQ(in_flight_type, "image/png");
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << file_text(dir / "log.txt");
  EXPECT_EQ(WEXITSTATUS(status), 0) << file_text(dir / "log.txt");
  EXPECT_TRUE(contains(file_text(dir / "log.txt"), "SIGTERM: finishing the requests in flight")) << file_text(dir / "log.txt");
  EXPECT_THROW(serve::http_request("127.0.0.1", port, "GET", "/healthz", "", "", 2), Error);
}

// Headless Chromium, in the page's self-test mode (a canvas image submitted through the path a
// dropped file takes).
testing::CommandResult run_chromium(const std::string& action, const std::string& url, const fs::path& profile) {
  return testing::run_command("timeout 180 /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                              "--disable-background-networking --disable-component-update --disable-sync --hide-scrollbars "
                              "--user-data-dir=" + quoted(profile) + " --window-size=1000,700 --virtual-time-budget=60000 " +
                              action + " '" + url + "' 2>/dev/null");
}

// The part of `rect` inside the img border that differs from the page's white image background.
double share_not_white(const cv::Mat& shot, const nlohmann::json& rect) {
  const int inset = 6;
  const cv::Rect area(rect.at("x").get<int>() + inset, rect.at("y").get<int>() + inset,
                      rect.at("width").get<int>() - 2 * inset, rect.at("height").get<int>() - 2 * inset);
  if ((area & cv::Rect(0, 0, shot.cols, shot.rows)) != area) return -1;
  int64_t not_white = 0;
  for (int y = area.y; y < area.y + area.height; ++y) {
    for (int x = area.x; x < area.x + area.width; ++x) {
      const auto p = shot.at<cv::Vec3b>(y, x);
      if (p[0] < 250 || p[1] < 250 || p[2] < 250) ++not_white;
    }
  }
  return static_cast<double>(not_white) / area.area();
}

TEST(ServeCli, PageShowsBothOutputsInHeadlessChromium) {
  if (!fs::exists("/usr/bin/chromium")) GTEST_SKIP() << "chromium not installed (apt-get install chromium)";
  testing::TempDir dir;
  serve::ServiceOptions options;
  options.student = serve_testing::write_tiny_generator(dir / "s.safetensors", "resnet", 4, "batch", 1, 4);
  options.teacher = serve_testing::write_tiny_generator(dir / "t.safetensors", "resnet", 8, "instance", 2, 5);
  options.threads = 1;
  RunningServer server(options);
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/?selftest=1";

  const auto dom = run_chromium("--dump-dom", url, dir / "profile1");
  ASSERT_EQ(dom.exit_code, 0) << dom.output.substr(0, 2000);
  ASSERT_TRUE(contains(dom.output, "data-state=\"done\"")) << dom.output.substr(0, 4000);
  const auto begin = dom.output.find("<pre id=\"result\">");
  const auto end = dom.output.find("</pre>", begin);
  ASSERT_NE(begin, std::string::npos);
  const auto result = nlohmann::json::parse(dom.output.substr(begin + 17, end - begin - 17));
  ASSERT_EQ(result.at("outputs").size(), 2u) << result.dump();
  for (const auto& output : result.at("outputs")) {
    SCOPED_TRACE(output.dump());
    EXPECT_EQ(output.at("status"), 200);
    EXPECT_GT(output.at("latency_ms").get<double>(), 0.0);
    EXPECT_GT(output.at("macs").get<int64_t>(), 0);
    EXPECT_EQ(output.at("width"), 128);
  }
  // Each caption shows its latency and MACs.
  EXPECT_TRUE(std::regex_search(dom.output, std::regex("teacher: [0-9.]+ ms, [0-9.]+[kMGT]? MACs"))) << dom.output.substr(0, 4000);
  EXPECT_TRUE(std::regex_search(dom.output, std::regex("student: [0-9.]+ ms, [0-9.]+[kMGT]? MACs"))) << dom.output.substr(0, 4000);

  // The screenshot (same window, so the same layout) holds pixels in the input and both output panels.
  const auto png = dir / "page.png";
  const auto shot_run = run_chromium("--screenshot=" + quoted(png), url, dir / "profile2");
  const cv::Mat shot = cv::imread(png.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(shot.empty()) << shot_run.output;
  EXPECT_GT(share_not_white(shot, result.at("input")), 0.9);
  for (const auto& output : result.at("outputs")) EXPECT_GT(share_not_white(shot, output.at("rect")), 0.9) << output.dump();
}

}  // namespace
}  // namespace ganlite
