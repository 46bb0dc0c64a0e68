// The scalars of a run folder's TensorBoard event files (util/tensorboard.h), for the training
// tests that compare them with metrics.jsonl or with another run's.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ganlite/util/tensorboard.h"

namespace ganlite::testing {

// By tag, each a list of (step, value) in the order TensorBoard reads them (files by name, then
// events in order); a gtest failure for a file with a torn or corrupt record.
inline std::map<std::string, std::vector<std::pair<int64_t, float>>> event_scalars(const std::filesystem::path& run) {
  std::map<std::string, std::vector<std::pair<int64_t, float>>> series;
  for (const auto& file : event_files_in(run)) {
    const auto contents = read_event_file(file);
    EXPECT_TRUE(contents.complete) << file;
    for (const auto& event : contents.events) {
      for (const auto& s : event.scalars) series[s.tag].emplace_back(event.step, static_cast<float>(s.value));
    }
  }
  return series;
}

}  // namespace ganlite::testing
