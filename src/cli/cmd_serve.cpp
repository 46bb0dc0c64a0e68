// `ganlite serve`: a teacher and a student behind HTTP (issue 17; the library's serve/ module).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <thread>

#include "command.h"
#include "ganlite/nn/inference.h"
#include "ganlite/serve/http_server.h"
#include "ganlite/serve/service.h"
#include "ganlite/util/error.h"

namespace ganlite::cli {
namespace {

struct ServeCommandOptions {
  CommonOptions common;
  serve::ServiceOptions service;
  serve::HttpOptions http;
  std::string student;
  std::string teacher;
  double max_body_mb = 16;
};

// SIGTERM / SIGINT write their number into a pipe (the only async-signal-safe way to wake a
// thread); a watcher thread then drains the server.
int g_serve_signal_pipe[2] = {-1, -1};
extern "C" void serve_on_stop_signal(int signal_number) {
  const unsigned char byte = static_cast<unsigned char>(signal_number);
  [[maybe_unused]] const ssize_t n = ::write(g_serve_signal_pipe[1], &byte, 1);
}

// Tests only: GANLITE_TEST_SERVE_DELAY_MS=N makes each request wait N ms on its worker before it
// runs, so a test can signal the server while a request is in flight.
std::function<void()> test_delay_hook() {
  const char* value = std::getenv("GANLITE_TEST_SERVE_DELAY_MS");
  if (value == nullptr || *value == '\0') return {};
  const int ms = std::atoi(value);
  return [ms] { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
}

void run_serve(ServeCommandOptions o) {
  apply_common(o.common);
  require(o.http.port >= 0 && o.http.port <= 65535, "--port must be in [0, 65535], got " + std::to_string(o.http.port));
  require(o.max_body_mb > 0 && o.max_body_mb <= 1024, "--max-body-mb must be in (0, 1024], got " + std::to_string(o.max_body_mb));
  o.service.student = o.student;
  o.service.teacher = o.teacher;
  o.service.device = o.common.device;
  o.service.threads = o.common.threads;
  o.service.max_body_bytes = static_cast<size_t>(o.max_body_mb * 1024 * 1024);
  o.service.before_run = test_delay_hook();
  serve::TranslationService service(o.service);
  serve::HttpServer http(service, o.http);
  const int port = http.bind();

  if (::pipe(g_serve_signal_pipe) != 0) throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
  struct sigaction action {};
  action.sa_handler = serve_on_stop_signal;
  sigemptyset(&action.sa_mask);
  struct sigaction old_term {}, old_int {};
  sigaction(SIGTERM, &action, &old_term);
  sigaction(SIGINT, &action, &old_int);
  std::thread watcher([&] {
    unsigned char byte = 0;
    while (::read(g_serve_signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    if (byte == 0) return;  // the server stopped by itself
    std::cerr << "ganlite serve: " << (byte == SIGTERM ? "SIGTERM" : "SIGINT")
              << ": finishing the requests in flight, then exiting" << std::endl;
    service.begin_drain();
    http.stop();
  });
  std::cout << "ganlite serve: listening on http://" << o.http.host << ":" << port << "/ (student "
            << o.student << (o.teacher.empty() ? "" : ", teacher " + o.teacher) << ", " << o.service.precision << ")"
            << std::endl;
  http.serve();
  const unsigned char done = 0;
  [[maybe_unused]] const ssize_t n = ::write(g_serve_signal_pipe[1], &done, 1);
  watcher.join();
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGINT, &old_int, nullptr);
  ::close(g_serve_signal_pipe[0]);
  ::close(g_serve_signal_pipe[1]);
  std::cerr << "ganlite serve: stopped" << std::endl;
}

void setup_serve(CLI::App& app) {
  auto o = std::make_shared<ServeCommandOptions>();
  auto* cmd = app.add_subcommand(
      "serve", "Serve a student (and its teacher) over HTTP: POST /v1/translate, /healthz, /metrics, a comparison page at /");
  cmd->add_option("--model", o->student, "Student generator file (.safetensors), served as model=student")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--teacher", o->teacher, "Teacher generator file, served as model=teacher (the page compares both)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--host", o->http.host, "Address to listen on (loopback by default; 0.0.0.0 for every interface)")
      ->capture_default_str();
  cmd->add_option("--port", o->http.port, "TCP port; 0 picks a free one (printed on start)")->capture_default_str();
  cmd->add_option("--precision", o->service.precision, "Compute precision of the fast path (bf16: oneDNN/AMX)")
      ->check(one_of(nn::valid_precisions()))
      ->capture_default_str();
  cmd->add_option("--workers", o->service.workers, "Requests computed at once, each with --threads LibTorch threads")
      ->capture_default_str();
  cmd->add_option("--queue", o->service.queue_capacity, "Requests that may wait for a worker; more are answered 503")
      ->capture_default_str();
  cmd->add_option("--max-body-mb", o->max_body_mb, "Largest upload in MiB (413 above)")->capture_default_str();
  cmd->add_option("--max-pixels", o->service.max_pixels, "Most pixels an upload's header may declare (413 above)")
      ->capture_default_str();
  cmd->add_option("--timeout", o->service.timeout_s, "Seconds from a request's arrival to its answer (504 after)")
      ->capture_default_str();
  add_device_options(*cmd, o->common, ThreadsDefault::idle_cores);
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace

GANLITE_COMMAND("serve", 47, setup_serve);

}  // namespace ganlite::cli
