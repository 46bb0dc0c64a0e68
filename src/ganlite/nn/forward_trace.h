// LibTorch has no forward hooks. Every model in ganlite runs its Sequentials through these
// helpers, which report each leaf layer's output to a thread-local observer when one is
// installed (the profiler's). With no observer they cost one pointer check per layer.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include <cstddef>
#include <limits>

namespace ganlite::nn {

class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  // Called after a leaf layer (a module without children) produced `output`.
  virtual void on_leaf_output(const torch::nn::Module& layer, const torch::Tensor& output) = 0;
};

// Installs `observer` for the current thread for the lifetime of this object (nests).
class ScopedForwardObserver {
 public:
  explicit ScopedForwardObserver(ForwardObserver* observer);
  ~ScopedForwardObserver();
  ScopedForwardObserver(const ScopedForwardObserver&) = delete;
  ScopedForwardObserver& operator=(const ScopedForwardObserver&) = delete;

 private:
  ForwardObserver* previous_;
};

// The observer installed on this thread, or nullptr.
ForwardObserver* current_forward_observer();

// Replaces leaf layers' forward process-wide while installed: data-parallel training's
// SyncBatchNorm (train/distributed.h). forward() returns an undefined tensor for a layer it
// leaves alone.
class LayerOverride {
 public:
  virtual ~LayerOverride() = default;
  virtual torch::Tensor forward(torch::nn::Module& layer, const torch::Tensor& x) = 0;
};
// Installs `override_layers` (nullptr removes it); returns the previous one.
LayerOverride* set_layer_override(LayerOverride* override_layers);

// Runs one layer of a Sequential (or any AnyModule), reporting it when it is a leaf.
torch::Tensor run_layer(torch::nn::AnyModule& layer, const torch::Tensor& x);

// Runs layers [begin, end) of `seq` in order (end is clipped to the size), reporting leaves.
torch::Tensor run_sequential(torch::nn::SequentialImpl& seq, torch::Tensor x, size_t begin = 0,
                             size_t end = std::numeric_limits<size_t>::max());

// For a leaf layer called directly rather than through a Sequential: reports it, returns output.
torch::Tensor report_layer(const torch::nn::Module& layer, torch::Tensor output);

}  // namespace ganlite::nn
