// `ganlite select-checkpoint`: the best checkpoint of a run by the paper's metrics, as the releases
// keep it (report/checkpoint_select.h). Scores every epoch file and the final checkpoint by the
// protocol of the recipe's evaluation stages. FID (--inception): paired data (--teacher, --data) as
// `ganlite eval` does (report/evaluate.h: same test split, size, real side of FID); unpaired
// (--input, --real-stats) as `ganlite translate` + `ganlite fid` do (fp32 outputs written as PNG,
// FID of the folder against the statistics). mIoU (--segmenter, --miou-labels): the test inputs
// translated as `ganlite translate` does (paired: the input half of each A|B test image; label
// maps: the test split at the generator's training resolution, as CAT's evaluation) and segmented
// as `ganlite miou` does. Picks by the releases' rule over the metrics given and writes
// OUT/best_net_G.safetensors (a copy of the chosen file) and OUT/selection.json, each atomically.
// Without Inception weights or a segmenter nothing is scored: the final checkpoint is kept and the
// selection says so.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/data/image_io.h"
#include "ganlite/data/label_maps.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/metrics/fid.h"
#include "ganlite/metrics/inception.h"
#include "ganlite/metrics/miou.h"
#include "ganlite/nn/generator_family.h"
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
  // mIoU (cityscapes: CAT keeps the checkpoint of a new highest mIoU too; GauGAN by mIoU alone)
  std::string segmenter;    // TorchScript segmenter, as `ganlite miou --segmenter`
  std::string miou_labels;  // class-id label maps named as the generated images
  int miou_classes = 19;
  std::vector<double> miou_mean{0, 0, 0};
  std::vector<double> miou_std{1, 1, 1};
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

// The test inputs `ganlite translate` would read for mIoU, each with the name of its output.
// Label-map generators: the test split at the generator's training resolution (CAT evaluates
// GauGAN on label maps resized as in training, 512x256 for cityscapes); paired data: the input
// half of each A|B test image (--direction); unpaired: the --input images.
void generate_miou_images(const fs::path& model, const SelectOptions& o, const fs::path& out,
                          const torch::Device& device) {
  const auto generator = io::load_generator(model, device);
  const nn::InferenceRunner runner(*generator, nn::InferenceOptions{nn::parse_precision("fp32"), true});
  const auto forward = [&](const torch::Tensor& x) { return runner.forward(x); };
  const nn::ArchConfig& config = generator->config();
  const int64_t multiple = nn::size_multiple(config);
  fs::create_directories(out);
  torch::NoGradGuard no_grad;
  auto write = [&](const torch::Tensor& input, const fs::path& source) {
    const auto output = nn::translate_padded(forward, input.unsqueeze(0).to(device), multiple).cpu()[0];
    fs::path target = out / source.filename();
    target.replace_extension(".png");
    data::write_image_rgb(target, data::tensor_to_image(output));
  };
  const size_t limit = o.eval.max_images > 0 ? static_cast<size_t>(o.eval.max_images) : SIZE_MAX;
  if (train::task_kind(o.eval.task).label_maps) {
    const auto& family = nn::generator_family(config.arch);
    require(config.label_nc > 0, "'" + model.string() + "' is not a label-map generator (no label_nc) for --task " + o.eval.task);
    const auto [height, width] = family.default_profile_size ? family.default_profile_size(config)
                                                             : std::pair<int64_t, int64_t>{256, 512};
    data::LabelMapOptions maps;
    maps.label_nc = config.label_nc;
    maps.preprocess = "fixed";
    maps.crop_size = static_cast<int>(width);
    maps.load_size = static_cast<int>(width);
    maps.aspect_ratio = static_cast<double>(width) / static_cast<double>(height);
    maps.flip = false;
    const auto test = data::open_label_maps(o.eval.data, "test", maps);
    for (size_t i = 0; i < std::min(test->size(), limit); ++i) {
      const auto sample = test->get(i, 0);
      write(sample.a, sample.a_path);
    }
    return;
  }
  const bool paired = o.input.empty();
  const auto inputs = data::list_images(paired ? fs::path(o.eval.data) / "test" : fs::path(o.input));
  if (inputs.empty()) throw Error("no test images to segment in '" + (paired ? o.eval.data + "/test" : o.input) + "'");
  for (size_t i = 0; i < std::min(inputs.size(), limit); ++i) {
    auto image = data::image_to_tensor(data::read_image_rgb(inputs[i]));
    if (paired) {  // A left, B right (pytorch-CycleGAN-and-pix2pix's aligned layout)
      const int64_t half = image.size(2) / 2;
      image = image.narrow(2, o.eval.direction == "AtoB" ? 0 : half, half).contiguous();
    }
    write(image, inputs[i]);
  }
}

// mIoU of each candidate's test images with the user's segmenter (`ganlite miou`'s protocol);
// the images are removed once scored (a full cityscapes run has hundreds per candidate).
void score_by_miou(std::vector<report::CheckpointCandidate>& candidates, const SelectOptions& o,
                   const torch::Device& device) {
  require(!o.miou_labels.empty(), "--segmenter needs --miou-labels DIR (class-id label maps named as the generated images)");
  require(!o.eval.data.empty() || !o.input.empty(), "--segmenter needs --data (paired or label maps) or --input (unpaired)");
  require(o.miou_mean.size() == 3 && o.miou_std.size() == 3, "--miou-mean and --miou-std take 3 values (R,G,B)");
  metrics::MiouOptions options;
  options.classes = o.miou_classes;
  for (int c = 0; c < 3; ++c) {
    require(o.miou_std[static_cast<size_t>(c)] > 0, "--miou-std values must be > 0");
    options.mean[static_cast<size_t>(c)] = o.miou_mean[static_cast<size_t>(c)];
    options.std[static_cast<size_t>(c)] = o.miou_std[static_cast<size_t>(c)];
  }
  for (auto& c : candidates) {
    if (!o.common.quiet && !o.common.json) std::cerr << "segmenting " << report::checkpoint_label(c) << ": " << c.file.string() << "\n";
    const fs::path images = fs::path(o.out) / "miou_images" / (c.epoch ? "epoch_" + std::to_string(*c.epoch) : "final");
    fs::remove_all(images);
    generate_miou_images(c.file, o, images, device);
    const auto result = metrics::evaluate_segmentation(o.segmenter, images, o.miou_labels, options, device, true);
    if (!std::isnan(result.miou)) c.miou = result.miou;
    fs::remove_all(images);
  }
  fs::remove(fs::path(o.out) / "miou_images");
}

// What the selection was made on, for selection.json and the report.
std::string selection_reason(const std::vector<report::CheckpointCandidate>& candidates, bool fid, bool miou) {
  const std::string count = std::to_string(candidates.size()) + " checkpoint(s) (" +
                            std::to_string(candidates.size() - 1) + " epoch file(s) and the final one)";
  if (fid && miou) {
    return "the releases' rule over " + count + ": the last to set a new lowest FID or a new highest mIoU";
  }
  return (fid ? "lowest FID of " : "highest mIoU of ") + count + ", the releases' rule";
}

json select(const SelectOptions& o, const torch::Device& device) {
  auto candidates = report::checkpoint_candidates(o.run);
  const bool by_fid = !o.eval.inception.empty(), by_miou = !o.segmenter.empty();
  require(o.miou_labels.empty() || by_miou, "--miou-labels goes with --segmenter");
  if (by_fid && !o.input.empty()) {
    score_unpaired(candidates, o, device);
  } else if (by_fid) {
    require(!o.teacher.empty() && !o.eval.data.empty(), "give --teacher and --data (paired, `ganlite eval`'s protocol) "
                                                        "or --input and --real-stats (unpaired, translate + fid)");
    score_by_fid(candidates, o, device);
  }
  if (by_miou) score_by_miou(candidates, o, device);
  const size_t best = report::select_best_checkpoint(candidates);
  const std::string reason =
      by_fid || by_miou ? selection_reason(candidates, by_fid, by_miou)
                        : "no --inception or --segmenter: FID needs the user's Inception weights and mIoU their "
                          "segmenter, so no checkpoint was scored (never a made-up figure); the final checkpoint is used";
  const json metric = by_fid && by_miou ? json("fid+miou") : by_fid ? json("fid") : by_miou ? json("miou") : json(nullptr);
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
         {"metric", metric},
         {"rule", "a checkpoint is the best when its FID is below every earlier one or its mIoU above every "
                  "earlier one (CAT, GAN Compression: evaluate_model), over the metrics scored; epoch files in "
                  "order, then the final checkpoint"},
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
                                 "Pick a run's best checkpoint by FID and / or mIoU (every epoch file and the final one), as the releases do");
  cmd->add_option("--run", o->run, "Run folder of `ganlite train` / `ganlite distill` (its checkpoints/)")->required();
  cmd->add_option("--teacher", o->teacher, "Paired: the teacher generator, for `ganlite eval`'s protocol");
  cmd->add_option("--data", o->eval.data, "Paired or label maps (--task spade): the dataset root, as for `ganlite eval`");
  cmd->add_option("--input", o->input, "Unpaired: folder of test inputs, translated and scored against --real-stats as `ganlite fid` does");
  cmd->add_option("--out", o->out, "Folder for best_net_G.safetensors and selection.json")->required();
  cmd->add_option("--inception", o->eval.inception,
                  "FID Inception weights (pt_inception-2015-12-05-6726825d.pth); without them the final checkpoint is kept");
  cmd->add_option("--real-stats", o->eval.real_stats, "Real statistics (.npz with mu, sigma): FID's real side (unpaired: required)");
  cmd->add_option("--segmenter", o->segmenter,
                  "TorchScript segmenter (as `ganlite miou`): also score each checkpoint's mIoU on the test inputs "
                  "(cityscapes: CAT keeps a new highest mIoU too; GauGAN by mIoU alone)");
  cmd->add_option("--miou-labels", o->miou_labels, "With --segmenter: class-id label maps named as the generated images");
  cmd->add_option("--miou-classes", o->miou_classes, "With --segmenter: number of classes")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--miou-mean", o->miou_mean, "With --segmenter: input normalisation mean R,G,B on [0, 1] images")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--miou-std", o->miou_std, "With --segmenter: input normalisation std R,G,B")
      ->delimiter(',')
      ->capture_default_str();
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
