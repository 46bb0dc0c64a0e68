// The HTTP layer of `ganlite serve` on cpp-httplib (Debian's libcpp-httplib-dev), kept to
// http_server.cpp so nothing else includes httplib.h:
//   POST /v1/translate?model=student|teacher   image body in, PNG out (TranslationService)
//   GET  /healthz                              JSON: status, models, bounds
//   GET  /metrics                              Prometheus text (ServeMetrics)
//   GET  /                                     the comparison page (serve/web_page.h)
// Other methods on these paths get 405 with an Allow header, other paths 404, each with a message.
// Servers and clients of this file set SIGPIPE to be ignored (a peer closing early must not end
// the process).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "ganlite/serve/service.h"

namespace ganlite::serve {

struct HttpOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0: an ephemeral port (bind() returns it)
};

class HttpServer {
 public:
  HttpServer(TranslationService& service, HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the port (the one chosen for port 0). Throws Error naming
  // host and port when it cannot.
  int bind();
  // Accepts and answers requests until stop(); returns once every request in flight is answered.
  void serve();
  // Closes the listening socket; serve() then drains and returns. Any thread (not a signal
  // handler); also before serve() has started, which then returns at once.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A minimal blocking client for tests and bench/: one request, one connection.
struct HttpReply {
  int status = 0;
  std::string body;
  std::multimap<std::string, std::string> headers;
  std::string header(const std::string& name) const;  // "" when absent; any letter case
};
// Throws Error naming the URL when no answer comes (connection refused, timeout).
HttpReply http_request(const std::string& host, int port, const std::string& method, const std::string& target,
                       const std::string& body = "", const std::string& content_type = "application/octet-stream",
                       double timeout_s = 60);

}  // namespace ganlite::serve
