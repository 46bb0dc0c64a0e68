// `ganlite distill`: distillation of a teacher generator into a (pruned) student, with KA, feature
// MSE, WKD or DCD terms or none (methods.md 3.2-3.5), a student D that may be narrower or pruned,
// on the shared training loop: checkpoints, exact resume (`--resume RUN_DIR`), logs with each
// loss term named, samples, validation.
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/compress/distill_config.h"
#include "ganlite/compress/distill_task.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/nn/generator.h"
#include "ganlite/nn/init.h"
#include "ganlite/util/device.h"
#include "ganlite/train/run_folder.h"
#include "ganlite/train/trainer.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"
#include "train_flags.h"

namespace ganlite::cli {
namespace {

namespace fs = std::filesystem;

struct DistillCliState {
  std::string resume_dir;
  std::string out;
  std::string score;
  bool json = false;
  bool quiet = false;
  std::string method;
  std::string student_arch;  // a fresh student instead of --student FILE
  int student_ngf = 16;
  compress::DistillConfig distill;
  struct WeightFlag {
    std::string method;
    CLI::Option* option;
    std::shared_ptr<double> value;
  };
  std::vector<WeightFlag> weight_flags;  // --lambda-ka / --lambda-mse / --wkd-weight / --lambda-dcd
  CLI::Option* teacher_ndf_option = nullptr;
  std::vector<CLI::Option*> distill_options;  // refused on resume
  TrainFlags flags;
};

// D settings follow a --restore-d file's metadata unless given on the command line.
void adopt_discriminator_settings(const DistillCliState& s, train::TrainConfig& config) {
  const auto meta = io::read_safetensors_header(s.distill.restore_d).metadata;
  auto take = [&](const char* key, const char* flag, auto&& set) {
    const auto it = meta.find(key);
    if (it != meta.end() && !train_flag_given(s.flags, flag)) set(it->second);
  };
  const fs::path file = s.distill.restore_d;
  take("ndf", "--ndf", [&](const std::string&) {
    config.ndf = static_cast<int>(io::metadata_integer(meta, "ndf", file, 1, train::kMaxNdf));
  });
  take("norm", "--norm-D", [&](const std::string& v) { config.norm_D = v; });
  take("n_layers", "--n-layers-D", [&](const std::string&) {
    config.n_layers_D = static_cast<int>(io::metadata_integer(meta, "n_layers", file, 1, train::kMaxLayersD));
    if (config.n_layers_D != 3 && config.netD == "basic") config.netD = "n_layers";
  });
  take("arch", "--netD", [&](const std::string& v) {
    if (v == "pixel") config.netD = "pixel";
  });
}

// The teacher D's width follows a --dcd-restore-teacher-d file unless --teacher-ndf is given.
void adopt_teacher_discriminator_width(DistillCliState& s) {
  if (s.distill.dcd_restore_teacher_d.empty() || s.teacher_ndf_option->count() > 0) return;
  const auto meta = io::read_safetensors_header(s.distill.dcd_restore_teacher_d).metadata;
  const auto it = meta.find("ndf");
  if (it != meta.end()) {
    s.distill.teacher_ndf =
        static_cast<int>(io::metadata_integer(meta, "ndf", s.distill.dcd_restore_teacher_d, 1, train::kMaxNdf));
  }
}

// --student-arch: GAN Compression's students are built from an architecture, not pruned. The
// freshly initialised student is written into the run folder, so the run's config points at a
// file that stays there for --resume. A run that never saved a checkpoint may start again in the
// folder: the same seed writes the same file.
fs::path write_fresh_student(const DistillCliState& s, const train::TrainConfig& config, const fs::path& run_dir) {
  require(s.distill.student.empty(), "--student FILE and --student-arch exclude each other");
  const fs::path path = run_dir / "student_init.safetensors";
  if (train::run_folder_has_saved_state(run_dir)) {
    throw UsageError("run folder '" + run_dir.string() + "' already holds a run; use --resume or a new --out");
  }
  nn::ArchConfig arch;
  arch.arch = s.student_arch;
  arch.ngf = s.student_ngf;
  arch.validate();
  torch::manual_seed(config.seed);
  auto student = nn::make_generator(arch);
  nn::init_weights(*student, config.init_type, config.init_gain);
  fs::create_directories(run_dir);
  io::save_generator(path, *student);
  return path;
}

nlohmann::json scores_json(const train::ValidationResult& r) {
  return {{"psnr", r.psnr}, {"ssim", r.ssim}, {"count", r.count}};
}

// --score STUDENT: no training; the student against the truth and against the teacher.
void run_score(DistillCliState& s) {
  require(!s.distill.teacher.empty(), "--score needs --teacher FILE");
  train::TrainConfig config;
  apply_train_flags(s.flags, config, false);
  config = config.resolved();
  require(!config.dataroot.empty(), "--score needs --data DIR");
  const torch::Device device = parse_device(config.device);
  set_threads(config.threads);
  std::string why;
  const auto set = train::open_validation_set(config, &why);
  if (!set) throw Error("cannot score: " + why);
  auto student = io::load_generator(s.score, device);
  auto teacher = io::load_generator(s.distill.teacher, device);
  const auto scores = compress::score_student(*student, *teacher, *set, config.val_max_images, device);
  const nlohmann::json j{{"student", s.score},
                         {"teacher", s.distill.teacher},
                         {"vs_truth", scores_json(scores.vs_truth)},
                         {"vs_teacher", scores_json(scores.vs_teacher)},
                         {"teacher_vs_truth", scores_json(scores.teacher_vs_truth)}};
  if (s.json) {
    print_json(j);
    return;
  }
  std::cout << "student vs truth:   PSNR " << scores.vs_truth.psnr << " dB, SSIM " << scores.vs_truth.ssim << "\n"
            << "student vs teacher: PSNR " << scores.vs_teacher.psnr << " dB, SSIM " << scores.vs_teacher.ssim << "\n"
            << "teacher vs truth:   PSNR " << scores.teacher_vs_truth.psnr << " dB, SSIM "
            << scores.teacher_vs_truth.ssim << " (" << scores.vs_truth.count << " images)\n";
}

void run_distill(DistillCliState& s) {
  if (s.json || s.quiet) ProgressBar::set_enabled(false);
  if (!s.score.empty()) {
    run_score(s);
    return;
  }
  const bool resume = !s.resume_dir.empty();
  train::TrainConfig config;
  fs::path run_dir;
  if (resume) {
    require(s.out.empty() || fs::path(s.out) == fs::path(s.resume_dir), "--resume RUN_DIR writes into RUN_DIR; drop --out");
    for (const auto* o : s.distill_options) {
      if (o->count() > 0) throw UsageError(o->get_name() + " cannot change when resuming (the run keeps its config)");
    }
    run_dir = s.resume_dir;
    const fs::path stored = run_dir / "config.json";
    if (!fs::exists(stored)) throw Error("cannot resume: '" + stored.string() + "' does not exist");
    config = train::TrainConfig::load(stored.string());
    if (config.distill.empty()) {
      throw UsageError("'" + stored.string() + "' is not a distillation run; resume it with `ganlite train --resume`");
    }
    compress::DistillConfig::from_json_string(config.distill, stored.string());  // a bad section names the file
    apply_train_flags(s.flags, config, true);
    config = config.resolved();
    config.validate_config();
  } else {
    require(!s.out.empty(), "--out RUN_DIR is required (or --resume RUN_DIR)");
    require(!s.method.empty(),
            "--method is required (ka, mse, wkd, dcd, a combination such as dcd+wkd, or none)");
    run_dir = s.out;
    apply_train_flags(s.flags, config, false);
    s.distill.methods = compress::parse_distill_methods(s.method);
    for (const auto& w : s.weight_flags) {
      if (w.option->count() > 0) s.distill.weights[w.method] = *w.value;
    }
    if (!s.distill.restore_d.empty()) adopt_discriminator_settings(s, config);
    adopt_teacher_discriminator_width(s);
    if (!s.student_arch.empty()) s.distill.student = write_fresh_student(s, config, run_dir).string();
    config = compress::make_distill_train_config(config, s.distill);
  }

  train::TrainerOptions options;
  options.run_dir = run_dir;
  options.resume = resume;
  options.task_factory = compress::distill_task_factory();
  const auto result = train::train(config, options);

  nlohmann::json summary = train_summary(result, config, run_dir);
  const auto d = compress::DistillConfig::from_json_string(config.distill);
  summary["method"] = d.method_spec();
  summary["teacher"] = d.teacher;
  summary["student"] = d.student;
  if (s.json) {
    print_json(summary);
    return;
  }
  std::cout << "distilled '" << d.teacher << "' into '" << d.student << "' with " << d.method_spec() << "\n";
  print_train_summary(result);
  std::cout << "checkpoint " << result.latest_checkpoint.string() << "\n";
}

void setup_distill(CLI::App& app) {
  auto s = std::make_shared<DistillCliState>();
  auto* cmd = app.add_subcommand("distill", "Distil a teacher generator into a student (CAT KA, MSE, WKD, DCD, or none; resumable)");
  cmd->add_option("--resume", s->resume_dir, "Continue the run in RUN_DIR from its latest checkpoint");
  cmd->add_option("--out", s->out, "Run folder (config, logs, samples, checkpoints)");
  cmd->add_flag("--json", s->json, "Print the summary as JSON on stdout (progress bars off)");
  cmd->add_flag("-q,--quiet", s->quiet, "No progress bars");
  cmd->add_option("--score", s->score,
                  "Do not train: score this student generator file on the test split against the truth and "
                  "against --teacher (PSNR / SSIM)");

  auto& d = s->distill;
  auto& opts = s->distill_options;
  opts.push_back(cmd->add_option("--method", s->method, "ka | mse | wkd | dcd, a sum such as dcd+wkd or ka+wkd, or none (GAN + recon only)"));
  opts.push_back(cmd->add_option("--teacher", d.teacher, "Teacher generator file (frozen)"));
  opts.push_back(cmd->add_option("--student", d.student, "Student generator file, e.g. the output of `ganlite prune`"));
  opts.push_back(cmd->add_option("--student-arch", s->student_arch,
                                 "Instead of --student FILE: a freshly initialised student of this architecture "
                                 "(mobile_resnet | resnet | inception | unet; GAN Compression's students), written "
                                 "to RUN_DIR/student_init.safetensors")
                     ->check(one_of({"resnet", "unet", "mobile_resnet", "inception"})));
  opts.push_back(cmd->add_option("--student-ngf", s->student_ngf, "Base width of the --student-arch student")
                     ->capture_default_str()
                     ->check(CLI::PositiveNumber));
  opts.push_back(cmd->add_option("--restore-d", d.restore_d,
                                 "Start D from this discriminator file (e.g. TEACHER_RUN/checkpoints/latest_net_D.safetensors); "
                                 "its ndf / norm / layers are adopted unless given; it must match the student's D "
                                 "width (--student-ndf) unless --prune-d-ratio narrows it"));
  opts.push_back(cmd->add_option("--student-ndf", d.student_ndf,
                                 "Width of the student's D (discriminator compression; default: --ndf, i.e. the "
                                 "teacher run's width or the --restore-d file's)"));
  opts.push_back(cmd->add_option("--prune-d-ratio", d.prune_d_ratio,
                                 "Start the student's D from --restore-d with this fraction of every layer's "
                                 "channels removed (kept: largest |gamma| of the norm after each conv, or largest "
                                 "filter L1 norm where there is no affine norm)"));
  opts.push_back(cmd->add_option("--lambda-recon", d.lambda_recon,
                                 "Reconstruction L1 weight (default: pix2pix 100; cyclegan 5, 10 for mse alone)"));
  opts.push_back(cmd->add_option("--lambda-gan", d.lambda_gan, "GAN weight (default 1)"));
  opts.push_back(cmd->add_option("--lambda-distill", d.lambda_distill,
                                 "Weight of ka / mse / dcd without their own (default 1; cyclegan mse 0.01)"));
  auto add_weight = [&](const std::string& method, const std::string& flags, const std::string& help) {
    auto value = std::make_shared<double>();
    auto* o = cmd->add_option(flags, *value, help);
    s->weight_flags.push_back({method, o, value});
    opts.push_back(o);
  };
  add_weight("ka", "--lambda-ka", "Weight of the ka term (default --lambda-distill)");
  add_weight("mse", "--lambda-mse", "Weight of the mse term (default --lambda-distill)");
  add_weight("wkd", "--wkd-weight,--lambda-wkd", "Weight of the wkd term (default 0.4)");
  add_weight("dcd", "--lambda-dcd", "Weight of the dcd feature term (default --lambda-distill, else 1)");
  opts.push_back(cmd->add_option("--lambda-dcd-gan", d.lambda_dcd_gan,
                                 "dcd: weight of the student's GAN term against the teacher D (default --lambda-gan)"));
  s->teacher_ndf_option = cmd->add_option("--teacher-ndf", d.teacher_ndf,
                                          "dcd: width of the teacher D trained online (default: the "
                                          "--dcd-restore-teacher-d file's, else --ndf)");
  opts.push_back(s->teacher_ndf_option);
  opts.push_back(cmd->add_option("--dcd-restore-teacher-d", d.dcd_restore_teacher_d,
                                 "dcd: start the teacher D from this trained discriminator file instead of from scratch"));
  opts.push_back(cmd->add_option("--vgg-weights", d.vgg_weights,
                                 "dcd: torchvision vgg16 state dict (.pth or .safetensors; only features.0/2/5/7 are "
                                 "read) enabling the released code's perceptual terms; off without it"));
  opts.push_back(cmd->add_option("--lambda-vgg", d.lambda_vgg_feature, "dcd: weight of the VGG relu2_2 feature L1 (default 1)"));
  opts.push_back(cmd->add_option("--lambda-style", d.lambda_vgg_style, "dcd: weight of the VGG Gram style MSE (default 1)"));
  opts.push_back(cmd->add_option("--wkd-levels", d.wkd_levels, "Haar levels for wkd (default 4)"));
  opts.push_back(cmd->add_option("--wkd-distance", d.wkd_distance, "wkd distance: l1 (paper, default) | mse (released code)")
                     ->check(one_of({"l1", "mse"})));

  TrainFlagGroups groups;
  groups.generator = false;
  groups.task_losses = false;
  add_train_flags(cmd, s->flags, groups);
  cmd->footer(
      "Methods: ka (CAT), mse (GAN Compression), wkd (wavelet detail bands), dcd (teacher D cut before its last "
      "conv on adapted taps, plus a teacher D trained online and its GAN term on the student), none.\n"
      "CycleGAN students are distilled one direction at a time: --direction AtoB with the teacher run's G_A, "
      "--direction BtoA with its G_B (inputs are then the B images, the recon target T(B)).\n");
  cmd->callback([s] { run_distill(*s); });
}

}  // namespace

GANLITE_COMMAND("distill", 55, setup_distill);

}  // namespace ganlite::cli
