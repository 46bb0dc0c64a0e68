// Small, portable random numbers for data pipelines: the same seed gives the same stream on every
// platform and standard library (std:: distributions are implementation-defined), and a sample's
// stream is derived only from (seed, index), so results do not depend on thread scheduling.
#pragma once
#include <cstdint>

namespace ganlite::data {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Order-sensitive hash of two values: hash_combine(seed, index).
inline uint64_t hash_combine(uint64_t a, uint64_t b) { return splitmix64(a ^ splitmix64(b + 0x632BE59BD9B4E019ULL)); }

class SampleRng {
 public:
  explicit SampleRng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return splitmix64(state_);
  }
  // Uniform integer in [0, n); n > 0. The modulo bias is negligible for image-sized ranges.
  uint64_t below(uint64_t n) { return next() % n; }
  // Uniform integer in [lo, hi].
  int range(int lo, int hi) { return lo + static_cast<int>(below(static_cast<uint64_t>(hi - lo + 1))); }
  // Uniform double in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

 private:
  uint64_t state_;
};

}  // namespace ganlite::data
