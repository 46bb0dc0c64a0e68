#include "ganlite/nn/forward_trace.h"

#include <algorithm>
#include <atomic>

namespace ganlite::nn {

namespace {
thread_local ForwardObserver* g_observer = nullptr;
std::atomic<LayerOverride*> g_layer_override{nullptr};
}  // namespace

LayerOverride* set_layer_override(LayerOverride* override_layers) { return g_layer_override.exchange(override_layers); }

ScopedForwardObserver::ScopedForwardObserver(ForwardObserver* observer) : previous_(g_observer) {
  g_observer = observer;
}

ScopedForwardObserver::~ScopedForwardObserver() { g_observer = previous_; }

ForwardObserver* current_forward_observer() { return g_observer; }

torch::Tensor run_layer(torch::nn::AnyModule& layer, const torch::Tensor& x) {
  if (LayerOverride* override_layers = g_layer_override.load(std::memory_order_relaxed)) {
    torch::Tensor y = override_layers->forward(*layer.ptr(), x);
    if (y.defined()) return report_layer(*layer.ptr(), y);
  }
  if (g_observer == nullptr) return layer.forward(x);
  const auto module = layer.ptr();
  // A nested Sequential's own forward would bypass the observer: walk it here instead.
  if (auto* seq = dynamic_cast<torch::nn::SequentialImpl*>(module.get())) return run_sequential(*seq, x);
  torch::Tensor y = layer.forward(x);
  // Composite children (blocks, separable convs) report their own leaves from their forward.
  if (module->children().empty()) g_observer->on_leaf_output(*module, y);
  return y;
}

torch::Tensor run_sequential(torch::nn::SequentialImpl& seq, torch::Tensor x, size_t begin, size_t end) {
  end = std::min(end, seq.size());
  for (size_t i = begin; i < end; ++i) x = run_layer(*(seq.begin() + static_cast<std::ptrdiff_t>(i)), x);
  return x;
}

torch::Tensor report_layer(const torch::nn::Module& layer, torch::Tensor output) {
  if (g_observer != nullptr) g_observer->on_leaf_output(layer, output);
  return output;
}

}  // namespace ganlite::nn
