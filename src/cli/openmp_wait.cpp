// A bounded OpenMP spin for the `ganlite` executable (issue 19, "speed on a shared machine").
//
// LibTorch 1.13 and oneDNN run their parallel regions on libgomp. With OMP_WAIT_POLICY unset a
// thread that reaches a barrier, or waits for the next region, spins GOMP_SPINCOUNT = 300000
// `pause` iterations (~5 ms on this Zen 4) before it sleeps, and libgomp shortens the spin only
// when it manages more threads than the CPUs it saw at start-up. When another process takes one of
// two cores, the scheduler can leave both of a team's threads on the other: each spins, once per
// region, waiting for the one that cannot run, and a frame of the pruned CAT student (a few hundred
// regions) went from 44 ms to 1534 ms, every frame of the run (docs/results.md, "Latency-true
// students"). 1000 iterations keep the quiet-machine speed (back-to-back regions come sooner) and
// bound the loss to about the one-core time; OMP_WAIT_POLICY=PASSIVE bounds it too but cost ~25%
// on a quiet machine (a futex wake per region).
//
// libgomp reads the variables once, in its own constructor, and glibc resets `environ` to the
// process's original block after the executable's .preinit_array has run (a setenv there is lost).
// So the executable re-executes itself with the variable added, from .preinit_array: after the
// libraries are mapped but before any library constructor (LibTorch's operator registration, most
// of its start-up time) has run. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone.
#include <unistd.h>

#include <cstring>

namespace {

bool starts_with(const char* s, const char* prefix) { return std::strncmp(s, prefix, std::strlen(prefix)) == 0; }

void bound_openmp_spin(int, char** argv, char** envp) {
  if (envp == nullptr || argv == nullptr) return;
  constexpr int kMaxEntries = 4096;
  static char* env[kMaxEntries + 3];
  int n = 0;
  for (char** e = envp; *e != nullptr; ++e) {
    if (starts_with(*e, "OMP_WAIT_POLICY=") || starts_with(*e, "GOMP_SPINCOUNT=")) return;
    if (n == kMaxEntries) return;
    env[n++] = *e;
  }
  env[n++] = const_cast<char*>("GOMP_SPINCOUNT=1000");
  // So that `bench` can say who chose it, and comparisons started from ganlite can drop it.
  env[n++] = const_cast<char*>("GANLITE_SET_GOMP_SPINCOUNT=1");
  env[n] = nullptr;
  execve("/proc/self/exe", argv, env);  // returns only when it fails: run on with libgomp's default
}

}  // namespace

__attribute__((section(".preinit_array"), used)) static void (*const ganlite_preinit_openmp)(int, char**, char**) =
    &bound_openmp_spin;
