// Load on `ganlite serve` over loopback (issue 17): N concurrent clients send M translation
// requests in all; prints p50 / p99 latency as the clients see it, throughput and errors.
//   bench_serve_load                                     an in-process server, fresh demo-sized
//                                                        generators (student ResNet ngf 8, teacher ngf 32)
//   bench_serve_load --model S.safetensors [--teacher T.safetensors] [--threads N]   those files
//   bench_serve_load --port 8080 [--host 127.0.0.1]      a running `ganlite serve`
// Options: --clients 8 --requests 500 --size 64 --model-name student|teacher|both (default both
// when a teacher is served).
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <thread>
#include <vector>
#include <unistd.h>

#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/generator.h"
#include "ganlite/serve/http_server.h"
#include "ganlite/serve/service.h"
#include "ganlite/util/error.h"

namespace {

namespace fs = std::filesystem;

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: start a server in this process
  std::string student, teacher;
  int threads = 0;
  int clients = 8;
  int requests = 500;
  int size = 64;
  std::string model_name;  // "" : both when a teacher is served, else student
};

LoadOptions parse(int argc, char** argv) {
  LoadOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw ganlite::UsageError("missing value after " + flag);
    const std::string value = argv[++i];
    if (flag == "--host") o.host = value;
    else if (flag == "--port") o.port = std::stoi(value);
    else if (flag == "--model") o.student = value;
    else if (flag == "--teacher") o.teacher = value;
    else if (flag == "--threads") o.threads = std::stoi(value);
    else if (flag == "--clients") o.clients = std::stoi(value);
    else if (flag == "--requests") o.requests = std::stoi(value);
    else if (flag == "--size") o.size = std::stoi(value);
    else if (flag == "--model-name") o.model_name = value;
    else throw ganlite::UsageError("unknown flag " + flag);
  }
  ganlite::require(o.clients >= 1 && o.requests >= 1 && o.size >= 4, "--clients, --requests >= 1 and --size >= 4");
  return o;
}

std::string fresh_generator(const fs::path& path, int ngf, int blocks) {
  ganlite::nn::ArchConfig c;
  c.arch = "resnet";
  c.ngf = ngf;
  c.norm = "instance";
  c.n_blocks = blocks;
  ganlite::io::save_generator(path, *ganlite::nn::make_generator(c));
  return path.string();
}

std::string test_png(int size) {
  cv::Mat bgr(size, size, CV_8UC3);
  cv::randu(bgr, cv::Scalar::all(0), cv::Scalar::all(255));
  std::vector<unsigned char> bytes;
  cv::imencode(".png", bgr, bytes);
  return std::string(bytes.begin(), bytes.end());
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

void run_load(const LoadOptions& o, int port, bool teacher_served) {
  const std::string body = test_png(o.size);
  std::vector<std::string> models;
  if (!o.model_name.empty() && o.model_name != "both") models = {o.model_name};
  else models = teacher_served ? std::vector<std::string>{"student", "teacher"} : std::vector<std::string>{"student"};
  std::atomic<int> next{0};
  std::mutex mutex;
  std::vector<double> latencies;
  std::vector<std::string> errors;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < o.clients; ++c) {
    clients.emplace_back([&] {
      for (int i = next++; i < o.requests; i = next++) {
        const std::string& model = models[static_cast<size_t>(i) % models.size()];
        const auto t0 = std::chrono::steady_clock::now();
        std::string error;
        try {
          const auto reply = ganlite::serve::http_request(o.host, port, "POST", "/v1/translate?model=" + model, body, "image/png");
          if (reply.status != 200) error = "HTTP " + std::to_string(reply.status) + ": " + reply.body;
        } catch (const std::exception& e) {
          error = e.what();
        }
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(mutex);
        if (error.empty()) latencies.push_back(ms);
        else errors.push_back(error);
      }
    });
  }
  for (auto& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("serve load: %d clients, %d requests (%s), %dx%d PNG, http://%s:%d\n", o.clients, o.requests,
              models.size() == 2 ? "student and teacher alternating" : models[0].c_str(), o.size, o.size, o.host.c_str(), port);
  if (!latencies.empty()) {
    std::printf("  latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", percentile(latencies, 0.5),
                percentile(latencies, 0.9), percentile(latencies, 0.99), percentile(latencies, 1.0));
  }
  std::printf("  throughput: %.1f requests/s over %.1f s\n", static_cast<double>(latencies.size()) / seconds, seconds);
  std::printf("  errors: %zu%s%s\n", errors.size(), errors.empty() ? "" : " (first: ", errors.empty() ? "" : (errors[0] + ")").c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // As the ganlite executable does (README, "Threads"): libgomp's default 300000-iteration spin
  // stalls OpenMP teams on a shared machine. It reads the variable when it loads, so re-execute.
  if (std::getenv("GOMP_SPINCOUNT") == nullptr && std::getenv("OMP_WAIT_POLICY") == nullptr) {
    ::setenv("GOMP_SPINCOUNT", "1000", 1);
    ::execv("/proc/self/exe", argv);  // only returns on failure: run on with the default spin
  }
  try {
    LoadOptions o = parse(argc, argv);
    if (o.port > 0) {
      run_load(o, o.port, true);
      return 0;
    }
    const fs::path dir = fs::temp_directory_path() / ("ganlite_serve_load_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    if (o.student.empty()) {
      o.student = fresh_generator(dir / "student.safetensors", 8, 9);
      if (o.teacher.empty()) o.teacher = fresh_generator(dir / "teacher.safetensors", 32, 9);
    }
    ganlite::serve::ServiceOptions so;
    so.student = o.student;
    so.teacher = o.teacher;
    so.threads = o.threads;
    so.queue_capacity = static_cast<size_t>(o.clients) * 2;
    {
      ganlite::serve::TranslationService service(so);
      ganlite::serve::HttpServer http(service, ganlite::serve::HttpOptions{o.host, 0});
      const int port = http.bind();
      std::thread server([&] { http.serve(); });
      run_load(o, port, !o.teacher.empty());
      http.stop();
      server.join();
    }
    fs::remove_all(dir);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_serve_load: %s\n", e.what());
    return 1;
  }
}
