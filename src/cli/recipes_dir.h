// Where `ganlite recipes` and `ganlite reproduce` find the recipe files: --recipes-dir, else
// $GANLITE_RECIPES_DIR, else next to the executable (recipes/, ../share/ganlite/recipes for an
// installed copy), else the source tree the executable was built from.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

#include "ganlite/util/error.h"

#ifndef GANLITE_RECIPES_SOURCE_DIR
#define GANLITE_RECIPES_SOURCE_DIR ""
#endif

namespace ganlite::cli {

inline std::filesystem::path recipes_dir(const std::string& flag) {
  namespace fs = std::filesystem;
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("GANLITE_RECIPES_DIR"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  const fs::path exe_dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (const fs::path& dir : {exe_dir / "recipes", exe_dir / ".." / "share" / "ganlite" / "recipes",
                              fs::path(GANLITE_RECIPES_SOURCE_DIR)}) {
    if (!dir.empty() && fs::is_directory(dir, ec)) return dir;
  }
  throw UsageError("no recipes folder found (next to the executable, in ../share/ganlite/recipes or at '" +
                   std::string(GANLITE_RECIPES_SOURCE_DIR) + "'): give --recipes-dir DIR");
}

}  // namespace ganlite::cli
