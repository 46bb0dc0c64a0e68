// `--nproc N` on train and distill: this process becomes a local launcher that starts N workers
// (itself again, without --nproc) the way torchrun starts them (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT on a free local port), waits for all of them, and
// stops the rest when one fails. Workers then train data-parallel (train/distributed.h).
#pragma once
#include <CLI/CLI.hpp>

namespace ganlite::cli {

// Adds `--nproc N` to `cmd`.
void add_nproc_flag(CLI::App* cmd, int& nproc);

// With nproc > 1 and no torchrun environment (a worker started by torchrun just joins its
// world): runs the N workers to their end and returns true; throws Error (exit 1) or
// UsageError (exit 2, when a worker exited 2) naming the worker that failed. Otherwise false.
bool run_as_launcher(int nproc);

}  // namespace ganlite::cli
