// `ganlite recipes`: the published settings `ganlite reproduce` runs (recipes/*.json).
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/report/recipe.h"
#include "recipes_dir.h"

namespace ganlite::cli {
namespace {

struct RecipesOptions {
  std::string recipes_dir;
  CommonOptions common;
};

void print_recipes(const std::vector<report::Recipe>& recipes) {
  for (const auto& r : recipes) {
    std::cout << r.name << "\n  " << r.paper << "\n  --method " << r.method << ", --task " << r.task << ", "
              << r.dataset << (r.direction.empty() ? "" : " " + r.direction) << "\n";
    for (const auto& p : r.published) {
      std::cout << "  published " << p.metric << ": ";
      if (p.value) {
        std::cout << *p.value;
      } else {
        std::cout << "unknown here (" << p.note << ")";
      }
      std::cout << "  [" << p.source << "]\n";
    }
  }
}

void setup_recipes(CLI::App& app) {
  auto* cmd = app.add_subcommand("recipes", "List the published settings `ganlite reproduce` runs (recipes/*.json)");
  auto o = std::make_shared<RecipesOptions>();
  cmd->add_option("--recipes-dir", o->recipes_dir,
                  "Folder of recipe files (default: $GANLITE_RECIPES_DIR, else the one installed with ganlite)");
  add_output_options(*cmd, o->common);
  cmd->callback([o] {
    const auto recipes = report::load_recipes(recipes_dir(o->recipes_dir));
    if (o->common.json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& r : recipes) j.push_back(report::recipe_summary_json(r));
      print_json({{"recipes", j}});
    } else {
      print_recipes(recipes);
    }
  });
}

}  // namespace

GANLITE_COMMAND("recipes", 90, setup_recipes);

}  // namespace ganlite::cli
