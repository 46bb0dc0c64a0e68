// Compiled on its own, without the precompiled LibTorch header (src/CMakeLists.txt), with the
// CPPHTTPLIB_* definitions Debian's libcpp-httplib was built with (its pkg-config Cflags): the
// header's class layouts depend on them.
#include "ganlite/serve/http_server.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <csignal>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <thread>

#include "ganlite/serve/web_page.h"
#include "ganlite/util/error.h"

namespace ganlite::serve {

namespace {

constexpr const char* kPlainText = "text/plain; charset=utf-8";
constexpr const char* kTranslatePath = "/v1/translate";
const char* const kKnownPaths[] = {"/", "/healthz", "/metrics", kTranslatePath};

// Metrics label of a request path: the known endpoints, else "other" (bounded label values).
std::string endpoint_label(const std::string& path) {
  for (const char* known : kKnownPaths) {
    if (path == known) return known;
  }
  return "other";
}

std::string format_ms(double ms) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << ms;
  return out.str();
}

void answer_text(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(message + "\n", kPlainText);
}

// A peer that closes its socket early makes the next write raise SIGPIPE, whose default action
// ends the process: a server (and a client) must ignore it and see the write's EPIPE instead.
void ignore_sigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

// Handler threads: enough for every queued and running translation plus a few for /healthz and
// /metrics, which must answer while translations wait; bounded.
size_t handler_threads(const ServiceOptions& o) {
  const size_t wanted = o.queue_capacity + static_cast<size_t>(o.workers) + 4;
  return std::clamp<size_t>(wanted, 8, 64);
}

}  // namespace

struct HttpServer::Impl {
  TranslationService& service;
  HttpOptions options;
  httplib::Server server;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> serving_done{false};

  Impl(TranslationService& s, HttpOptions o) : service(s), options(std::move(o)) {}
  void add_routes();
  void add_method_refusals();
  void translate(const httplib::Request& req, httplib::Response& res);
};

void HttpServer::Impl::translate(const httplib::Request& req, httplib::Response& res) {
  const std::string model = req.has_param("model") ? req.get_param_value("model") : kStudent;
  const ServiceReply reply = service.translate(req.body, model);
  res.status = reply.status;
  res.set_header("Cache-Control", "no-store");
  if (reply.status == 503) res.set_header("Retry-After", "1");
  if (reply.status == 200) {
    res.set_header("X-Ganlite-Model", model);
    res.set_header("X-Ganlite-Latency-Ms", format_ms(reply.inference_ms));
    res.set_header("X-Ganlite-MACs", std::to_string(reply.macs));
    res.set_header("X-Ganlite-Size", std::to_string(reply.width) + "x" + std::to_string(reply.height));
  }
  res.set_content(reply.body, reply.content_type.c_str());
}

void HttpServer::Impl::add_routes() {
  server.Post(kTranslatePath, [this](const httplib::Request& req, httplib::Response& res) { translate(req, res); });
  server.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(service.health_json() + "\n", "application/json");
  });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(service.metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(comparison_page_html(), "text/html; charset=utf-8");
  });
  add_method_refusals();
  // Unknown paths (404), and statuses cpp-httplib sets itself (413 over the body limit, 400
  // malformed requests) without a body: a message says what went wrong.
  server.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404) {
      answer_text(res, 404, "no such endpoint '" + req.path + "' (endpoints: GET /, GET /healthz, GET /metrics, POST /v1/translate)");
    } else if (res.status == 413) {
      answer_text(res, 413, "request body over the limit of " + std::to_string(service.options().max_body_bytes) + " bytes");
    } else {
      answer_text(res, res.status, "request refused (HTTP " + std::to_string(res.status) + ")");
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    answer_text(res, 500, "internal error: " + what);
  });
  // Counted before the response is written (the logger runs after), so a client that has its
  // answer finds it counted in /metrics.
  server.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    service.metrics().count_request(endpoint_label(req.path), res.status);
  });
}

// cpp-httplib answers an unrouted method with 404; a known path with the wrong method gets 405.
void HttpServer::Impl::add_method_refusals() {
  const auto refuse = [](const std::string& allowed) {
    return [allowed](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", allowed);
      answer_text(res, 405, "method " + req.method + " not allowed on " + req.path + " (allowed: " + allowed + ")");
    };
  };
  for (const char* path : {"/", "/healthz", "/metrics"}) {
    server.Post(path, refuse("GET"));
    server.Put(path, refuse("GET"));
    server.Patch(path, refuse("GET"));
    server.Delete(path, refuse("GET"));
  }
  server.Get(kTranslatePath, refuse("POST"));
  server.Put(kTranslatePath, refuse("POST"));
  server.Patch(kTranslatePath, refuse("POST"));
  server.Delete(kTranslatePath, refuse("POST"));
}

HttpServer::HttpServer(TranslationService& service, HttpOptions options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {
  ignore_sigpipe();
  require(impl_->options.port >= 0 && impl_->options.port <= 65535,
          "--port must be in [0, 65535], got " + std::to_string(impl_->options.port));
  const size_t threads = handler_threads(service.options());
  impl_->server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl_->server.set_payload_max_length(service.options().max_body_bytes);
  impl_->add_routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  const auto& o = impl_->options;
  const int port = o.port == 0 ? impl_->server.bind_to_any_port(o.host) : (impl_->server.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port < 0) {
    throw Error("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                " (address in use, not an address of this machine, or a privileged port)");
  }
  return port;
}

void HttpServer::serve() {
  if (!impl_->stop_requested) impl_->server.listen_after_bind();
  impl_->serving_done = true;
}

void HttpServer::stop() {
  impl_->stop_requested = true;
  // cpp-httplib's stop() does nothing before listen has started: wait for it (or its end).
  while (!impl_->serving_done) {
    if (impl_->server.is_running()) {
      impl_->server.stop();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string HttpReply::header(const std::string& name) const {
  const auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  for (const auto& [key, value] : headers) {
    if (lower(key) == lower(name)) return value;  // HTTP header names are case-insensitive
  }
  return "";
}

HttpReply http_request(const std::string& host, int port, const std::string& method, const std::string& target,
                       const std::string& body, const std::string& content_type, double timeout_s) {
  ignore_sigpipe();
  httplib::Client client(host, port);
  const auto timeout = std::chrono::duration<double>(timeout_s);
  client.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  client.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  client.set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  httplib::Request req;
  req.method = method;
  req.path = target;
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.body = body;
    req.set_header("Content-Type", content_type);
  }
  const httplib::Result result = client.send(req);
  if (!result) {
    throw Error("HTTP " + method + " http://" + host + ":" + std::to_string(port) + target + ": no answer (" +
                httplib::to_string(result.error()) + ")");
  }
  HttpReply reply;
  reply.status = result->status;
  reply.body = result->body;
  for (const auto& [name, value] : result->headers) reply.headers.emplace(name, value);
  return reply;
}

}  // namespace ganlite::serve
