// `ganlite distill`: distillation of a teacher generator into a (pruned) student, with any sum of
// the registered methods' terms (compress/method_registry.h: KA, feature MSE, WKD, DCD, AT) or
// none (methods.md 3.2-3.5), a student D that may be narrower or pruned, on the shared training
// loop: checkpoints, exact resume (`--resume RUN_DIR`), logs with each loss term named, samples,
// validation.
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>
#include <variant>

#include "command.h"
#include "launch.h"
#include "ganlite/compress/distill_config.h"
#include "ganlite/compress/distill_task.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/nn/generator.h"
#include "ganlite/nn/discriminator_registry.h"
#include "ganlite/nn/generator_family.h"
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
  compress::DistillConfig distill;  // every distillation flag writes its field here
  std::vector<CLI::Option*> distill_options;  // refused on resume
  TrainFlags flags;
  int nproc = 1;
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
  });
  take("arch", "--netD", [&](const std::string& v) {
    config.netD = nn::discriminator_kind_for_file(v, config.n_layers_D, config.netD, file.string()).name;
  });
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
  if (!s.distill.teacher.empty()) {  // the student reads what the teacher reads (label maps: label_nc + 1)
    const nn::ArchConfig teacher = io::read_generator_arch(s.distill.teacher);
    arch.input_nc = teacher.input_nc;
    arch.label_nc = teacher.label_nc;
    arch.input_height = teacher.input_height;
    arch.input_width = teacher.input_width;
  }
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
  if (run_as_launcher(s.nproc)) return;  // --nproc N: the workers did the run
  const bool resume = !s.resume_dir.empty();
  compress::DistillRunConfig config;
  fs::path run_dir;
  if (resume) {
    require(s.out.empty() || fs::path(s.out) == fs::path(s.resume_dir), "--resume RUN_DIR writes into RUN_DIR; drop --out");
    for (const auto* o : s.distill_options) {
      if (o->count() > 0) throw UsageError(o->get_name() + " cannot change when resuming (the run keeps its config)");
    }
    run_dir = s.resume_dir;
    const fs::path stored = run_dir / "config.json";
    if (!fs::exists(stored)) throw Error("cannot resume: '" + stored.string() + "' does not exist");
    config = compress::DistillRunConfig::load(stored.string());  // a bad field names the file
    apply_train_flags(s.flags, config.train, true);
    config.train = config.train.resolved();
    config.train.validate_config();
  } else {
    require(!s.out.empty(), "--out RUN_DIR is required (or --resume RUN_DIR)");
    require(!s.method.empty(), "--method is required (" + join_names(compress::valid_distill_methods(), ", ") +
                                   ", a sum such as " + join_names(compress::valid_distill_methods(), "+") + ", or none)");
    run_dir = s.out;
    train::TrainConfig base;
    apply_train_flags(s.flags, base, false);
    s.distill.methods = compress::parse_distill_methods(s.method);
    if (!s.distill.restore_d.empty()) adopt_discriminator_settings(s, base);
    if (!s.student_arch.empty()) s.distill.student = write_fresh_student(s, base, run_dir).string();
    config = compress::make_distill_run_config(base, s.distill);
  }

  train::TrainerOptions options;
  options.run_dir = run_dir;
  options.resume = resume;
  const auto result = compress::train_distill(config, options);

  nlohmann::json summary = train_summary(result, config.train, run_dir);
  const auto& d = config.distill;
  summary["method"] = d.method_spec();
  const std::string teacher = d.online() ? "online " + d.online_teacher : d.teacher;
  summary["teacher"] = teacher;
  summary["student"] = d.student;
  if (s.json) {
    print_json(summary);
    return;
  }
  std::cout << "distilled '" << teacher << "' into '" << d.student << "' with " << d.method_spec() << "\n";
  print_train_summary(result);
  std::cout << "checkpoint " << result.latest_checkpoint.string() << "\n";
}

std::string option_default_text(const compress::OptionValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return x.empty() ? "none" : x;
        } else {
          std::ostringstream out;
          out << x;
          return out.str();
        }
      },
      v);
}

// A method's weight flag and one flag per field of its option table, each writing into the
// method's weight or values when given (bounds and choices are checked by DistillConfig::validate).
void add_method_flags(CLI::App& cmd, DistillCliState& s, const compress::DistillMethod& m) {
  auto* state = &s;
  const std::string method = m.name;
  s.distill_options.push_back(cmd.add_option_function<double>(
      m.weight_flags, [state, method](const double& w) { state->distill.weights[method] = w; }, m.weight_help));
  for (const auto& f : m.options) {
    const std::string help = f.help + " (default " + option_default_text(f.default_value) + ")";
    const std::string key = f.key;
    CLI::Option* o = nullptr;
    if (f.type == compress::OptionType::Integer) {
      o = cmd.add_option_function<int64_t>(
          f.flag, [state, method, key](const int64_t& v) { state->distill.options(method).set_integer(key, v); }, help);
    } else if (f.type == compress::OptionType::Number) {
      o = cmd.add_option_function<double>(
          f.flag, [state, method, key](const double& v) { state->distill.options(method).set_number(key, v); }, help);
    } else {
      o = cmd.add_option_function<std::string>(
          f.flag, [state, method, key](const std::string& v) { state->distill.options(method).set_text(key, v); },
          help);
      if (!f.choices.empty()) o->check(one_of(f.choices));
    }
    s.distill_options.push_back(o);
  }
}

void setup_distill(CLI::App& app) {
  auto s = std::make_shared<DistillCliState>();
  auto* cmd = app.add_subcommand(
      "distill", "Distil a teacher generator into a student (registered methods, e.g. CAT KA, or none; resumable)");
  cmd->add_option("--resume", s->resume_dir, "Continue the run in RUN_DIR from its latest checkpoint");
  cmd->add_option("--out", s->out, "Run folder (config, logs, samples, checkpoints)");
  cmd->add_flag("--json", s->json, "Print the summary as JSON on stdout (progress bars off)");
  cmd->add_flag("-q,--quiet", s->quiet, "No progress bars");
  cmd->add_option("--score", s->score,
                  "Do not train: score this student generator file on the test split against the truth and "
                  "against --teacher (PSNR / SSIM)");

  auto& d = s->distill;
  auto& opts = s->distill_options;
  const auto& names = compress::valid_distill_methods();
  opts.push_back(cmd->add_option("--method", s->method,
                                 join_names(names, " | ") + ", a sum such as " + names.front() + "+" + names.back() +
                                     ", or none (GAN + recon only)"));
  opts.push_back(cmd->add_option("--teacher", d.teacher, "Teacher generator file (frozen)"));
  opts.push_back(cmd->add_option("--student", d.student, "Student generator file, e.g. the output of `ganlite prune`"));
  opts.push_back(cmd->add_option("--online-teacher", d.online_teacher,
                                 "Instead of --teacher FILE: train a teacher ARCH:NGF (e.g. mobile_resnet:64) and its D "
                                 "from scratch alongside the student, which learns from its output at each step "
                                 "(OMGD / DCD-official); the student then has no D of its own. Needs --vgg-weights "
                                 "or --allow-no-vgg"));
  opts.push_back(cmd->add_option("--n-dis", d.n_dis,
                                 "--online-teacher: the teacher trains on every N-th step, the student on every step "
                                 "(default: the release's 4 for cyclegan, 1 for pix2pix)"));
  opts.push_back(cmd->add_flag("--allow-no-vgg", d.allow_no_vgg,
                               "--online-teacher without --vgg-weights: train the student without the VGG16 terms (its "
                               "image terms are then SSIM / TV at most, which can settle on a colour channel "
                               "negated: docs/results.md, issue 15)"));
  opts.push_back(cmd->add_option("--lambda-ssim", d.lambda_ssim,
                                 "--online-teacher: weight of the student's 1 - SSIM(S(A), T(A)) (default 0 as "
                                 "DCD-official, which never computes it; OMGD 10)"));
  opts.push_back(cmd->add_option("--lambda-tv", d.lambda_tv,
                                 "--online-teacher: weight of the student's total variation (default 0 as "
                                 "DCD-official; OMGD 1e-5)"));
  opts.push_back(cmd->add_option("--student-arch", s->student_arch,
                                 "Instead of --student FILE: a freshly initialised student of this architecture "
                                 "(" + join_names(nn::generator_family_names(), " | ") +
                                 "; GAN Compression's students), written to RUN_DIR/student_init.safetensors")
                     ->check(one_of(nn::generator_family_names())));
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
  std::string recon_help = "Reconstruction L1 weight (default: pix2pix 100; cyclegan 5";
  for (const auto& m : compress::distill_methods()) {
    if (m.cyclegan_recon_weight_alone > 0) {
      recon_help += ", " + option_default_text(m.cyclegan_recon_weight_alone) + " for " + m.name + " alone";
    }
  }
  opts.push_back(cmd->add_option("--lambda-recon", d.lambda_recon, recon_help + ")"));
  opts.push_back(cmd->add_option("--lambda-gan", d.lambda_gan, "GAN weight (default 1)"));
  std::vector<std::string> following;  // methods whose weight --lambda-distill sets
  for (const auto& m : compress::distill_methods()) {
    if (m.follows_lambda_distill) following.push_back(m.name);
  }
  opts.push_back(cmd->add_option("--lambda-distill", d.lambda_distill,
                                 "Weight of " + join_names(following, " / ") + " without their own weight flag "
                                 "(default: each method's)"));
  for (const auto& m : compress::distill_methods()) add_method_flags(*cmd, *s, m);

  TrainFlagGroups groups;
  groups.generator = false;
  groups.task_losses = false;
  add_train_flags(cmd, s->flags, groups);
  add_nproc_flag(cmd, s->nproc);
  std::string methods = "Methods:\n";
  for (const auto& m : compress::distill_methods()) methods += "  " + m.name + ": " + m.description + "\n";
  cmd->footer(methods +
      "  none: GAN + recon only.\n"
      "CycleGAN students are distilled one direction at a time: --direction AtoB with the teacher run's G_A, "
      "--direction BtoA with its G_B (inputs are then the B images, the recon target T(B)).\n");
  cmd->callback([s] { run_distill(*s); });
}

}  // namespace

GANLITE_COMMAND("distill", 55, setup_distill);

}  // namespace ganlite::cli
