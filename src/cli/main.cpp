// ganlite: compress image-to-image GANs into small, fast students.
// Exit codes: 0 success, 1 runtime failure, 2 usage error.
#include <algorithm>
#include <exception>
#include <iostream>

#include "command.h"
#include "ganlite/util/error.h"

int main(int argc, char** argv) {
  CLI::App app{"ganlite: compress image-to-image GANs (pix2pix, CycleGAN) into small, fast students"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Help for every command");

  auto& registry = ganlite::cli::command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const auto& a, const auto& b) { return a.order != b.order ? a.order < b.order : a.name < b.name; });
  for (auto& command : registry) command.setup(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const ganlite::UsageError& e) {
    std::cerr << "ganlite: error: " << ganlite::cli::user_message(e) << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "ganlite: error: " << ganlite::cli::user_message(e) << "\n";
    return 1;
  } catch (...) {
    std::cerr << "ganlite: error: unexpected failure (an exception of unknown type)\n";
    return 1;
  }
  return 0;
}
