// `ganlite select-checkpoint`: the best checkpoint of a run by the paper's metric, as the releases
// keep it (report/checkpoint_select.h). Scores every epoch file and the final checkpoint by the
// protocol of the recipe's evaluation stage: paired data (--teacher, --data) as `ganlite eval`
// does (report/evaluate.h: same test split, size, real side of FID); unpaired (--input,
// --real-stats) as `ganlite translate` + `ganlite fid` do (fp32 outputs written as PNG, FID of the
// folder against the statistics). Picks by the releases' rule and writes
// OUT/best_net_G.safetensors (a copy of the chosen file) and OUT/selection.json, each atomically.
// Without Inception weights nothing is scored: the final checkpoint is kept and the selection says so.
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/data/image_io.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/metrics/fid.h"
#include "ganlite/metrics/inception.h"
#include "ganlite/nn/inference.h"
#include "ganlite/nn/translate.h"
#include "ganlite/report/checkpoint_select.h"
#include "ganlite/report/evaluate.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"

namespace ganlite::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct SelectOptions {
  std::string run;
  std::string teacher;
  std::string out;
  std::string input;  // unpaired: the images to translate (the fid stage's inputs)
  report::EvalOptions eval;
  CommonOptions common;
};

// FID of each candidate, by `ganlite eval`'s protocol (the teacher's side is recomputed alongside
// and ignored; latency is timed once, not used).
void score_by_fid(std::vector<report::CheckpointCandidate>& candidates, const SelectOptions& o,
                  const torch::Device& device) {
  report::EvalOptions eval = o.eval;
  eval.latency.runs = 1;
  eval.latency.warmup = 0;
  eval.kid_subsets = 1;  // KID is not the selection metric
  eval.grid_images = 0;
  for (auto& c : candidates) {
    if (!o.common.quiet && !o.common.json) std::cerr << "scoring " << report::checkpoint_label(c) << ": " << c.file.string() << "\n";
    c.fid = report::evaluate_teacher_student(o.teacher, c.file, eval, device).student.fid;
  }
}

// `ganlite translate`'s outputs of one generator (fp32, batch 1, padded to its size multiple).
void translate_folder(const fs::path& model, const std::vector<fs::path>& inputs, const fs::path& out,
                      const torch::Device& device) {
  const auto generator = io::load_generator(model, device);
  const nn::InferenceRunner runner(*generator, nn::InferenceOptions{nn::parse_precision("fp32"), true});
  const auto forward = [&](const torch::Tensor& x) { return runner.forward(x); };
  const int64_t multiple = nn::size_multiple(generator->config());
  fs::create_directories(out);
  torch::NoGradGuard no_grad;
  for (const auto& path : inputs) {
    const auto image = data::image_to_tensor(data::read_image_rgb(path)).unsqueeze(0).to(device);
    const auto output = nn::translate_padded(forward, image, multiple).cpu()[0];
    fs::path target = out / path.filename();
    target.replace_extension(".png");
    data::write_image_rgb(target, data::tensor_to_image(output));
  }
}

// FID of each candidate's translations of --input against --real-stats (the fid stage's protocol).
void score_unpaired(std::vector<report::CheckpointCandidate>& candidates, const SelectOptions& o,
                    const torch::Device& device) {
  require(!o.eval.real_stats.empty(), "--input needs --real-stats (the target domain's statistics) to score FID");
  const auto real = metrics::load_statistics(o.eval.real_stats);
  const auto inputs = data::list_images(o.input);
  if (inputs.empty()) throw Error("no images in --input '" + o.input + "'");
  auto net = metrics::load_fid_inception(o.eval.inception, device);
  for (auto& c : candidates) {
    const fs::path fakes = fs::path(o.out) / "fakes" / (c.epoch ? "epoch_" + std::to_string(*c.epoch) : "final");
    fs::remove_all(fakes);
    translate_folder(c.file, inputs, fakes, device);
    const auto features = metrics::inception_features_of_folder(net, fakes, 50, "FID");
    c.fid = metrics::frechet_distance(real, metrics::compute_statistics(features));
  }
}

json select(const SelectOptions& o, const torch::Device& device) {
  auto candidates = report::checkpoint_candidates(o.run);
  std::string reason;
  if (o.eval.inception.empty()) {
    reason = "no --inception: FID needs the user's Inception weights, so no checkpoint was scored (never a made-up "
             "figure); the final checkpoint is used";
  } else if (!o.input.empty()) {
    score_unpaired(candidates, o, device);
  } else {
    require(!o.teacher.empty() && !o.eval.data.empty(), "give --teacher and --data (paired, `ganlite eval`'s protocol) "
                                                        "or --input and --real-stats (unpaired, translate + fid)");
    score_by_fid(candidates, o, device);
  }
  const size_t best = report::select_best_checkpoint(candidates);
  if (reason.empty()) {
    reason = "lowest FID of " + std::to_string(candidates.size()) + " checkpoint(s) (" +
             std::to_string(candidates.size() - 1) + " epoch file(s) and the final one), the releases' rule";
  }
  json list = json::array();
  for (const auto& c : candidates) list.push_back(report::checkpoint_json(c));
  const fs::path out(o.out), best_file = out / "best_net_G.safetensors";
  fs::create_directories(out);
  write_file_atomic(best_file, [&](const fs::path& tmp) {
    fs::copy_file(candidates[best].file, tmp, fs::copy_options::overwrite_existing);
  });
  json j{{"format", "ganlite-checkpoint-selection"},
         {"version", 1},
         {"run", o.run},
         {"metric", o.eval.inception.empty() ? json(nullptr) : json("fid")},
         {"rule", "a checkpoint is the best when its FID is below every earlier one (CAT, GAN Compression: "
                  "evaluate_model); epoch files in order, then the final checkpoint"},
         {"selected", report::checkpoint_json(candidates[best])},
         {"best_file", best_file.string()},
         {"reason", reason},
         {"candidates", list}};
  write_file_atomic(out / "selection.json", j.dump(2) + "\n");
  return j;
}

void setup_select_checkpoint(CLI::App& app) {
  auto o = std::make_shared<SelectOptions>();
  auto* cmd = app.add_subcommand("select-checkpoint",
                                 "Pick a run's best checkpoint by FID (every epoch file and the final one), as the releases do");
  cmd->add_option("--run", o->run, "Run folder of `ganlite train` / `ganlite distill` (its checkpoints/)")->required();
  cmd->add_option("--teacher", o->teacher, "Paired: the teacher generator, for `ganlite eval`'s protocol");
  cmd->add_option("--data", o->eval.data, "Paired: the dataset root, as for `ganlite eval`");
  cmd->add_option("--input", o->input, "Unpaired: folder of test inputs, translated and scored against --real-stats as `ganlite fid` does");
  cmd->add_option("--out", o->out, "Folder for best_net_G.safetensors and selection.json")->required();
  cmd->add_option("--inception", o->eval.inception,
                  "FID Inception weights (pt_inception-2015-12-05-6726825d.pth); without them the final checkpoint is kept");
  cmd->add_option("--real-stats", o->eval.real_stats, "Real statistics (.npz with mu, sigma): FID's real side (unpaired: required)");
  cmd->add_option("--task", o->eval.task, "Dataset layout")->capture_default_str()->check(one_of(train::task_names()));
  cmd->add_option("--direction", o->eval.direction, "Translation direction")
      ->capture_default_str()
      ->check(one_of({"AtoB", "BtoA"}));
  cmd->add_option("--max-images", o->eval.max_images, "Score on at most N test images (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--size", o->eval.size, "Evaluation size (0: the test images' height)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  add_device_options(*cmd, o->common);
  add_output_options(*cmd, o->common);
  cmd->callback([o] {
    apply_common(o->common);
    const json j = select(*o, parse_device(o->common.device));
    if (o->common.json) {
      print_json(j);
      return;
    }
    std::cout << "selected " << j.at("selected").at("label").get<std::string>() << " ("
              << j.at("reason").get<std::string>() << "): " << j.at("best_file").get<std::string>() << "\n";
  });
}

}  // namespace

GANLITE_COMMAND("select-checkpoint", 66, setup_select_checkpoint);

}  // namespace ganlite::cli
