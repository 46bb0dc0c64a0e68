// The tiny edges2shapes set (32x32, 6 training pairs, 2 test pairs) that the training tests of
// this binary share: made once by the CLI, in a folder removed when the binary exits.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>

#include "test_support.h"

namespace ganlite::testing {

inline const std::filesystem::path& tiny_edges2shapes() {
  static TempDir dir;
  static const std::filesystem::path root = dir / "e2s";
  static bool made = false;
  if (!made) {
    const auto r = run_cli("make-dataset --kind edges2shapes --count 6 --test-count 2 --size 32 --seed 1 -q --out '" +
                           root.string() + "'");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    made = true;
  }
  return root;
}

}  // namespace ganlite::testing
