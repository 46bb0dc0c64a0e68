#include "ganlite/train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <iostream>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ganlite/data/dataset.h"
#include "ganlite/data/loader.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/torch_compat.h"
#include "ganlite/train/distributed.h"
#include "ganlite/train/jsonl_log.h"
#include "ganlite/train/mixed_precision.h"
#include "ganlite/train/run_folder.h"
#include "ganlite/train/sample_grid.h"
#include "ganlite/train/schedule.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/train/validation.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"
#include "ganlite/util/tensorboard.h"

namespace ganlite::train {

namespace fs = std::filesystem;

namespace {

std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int signal) { g_stop_signal.store(signal); }

// Routes SIGINT / SIGTERM to a flag for the lifetime of the loop, then restores the old handlers.
class StopSignalGuard {
 public:
  StopSignalGuard() {
    g_stop_signal.store(0);
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignalGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignalGuard(const StopSignalGuard&) = delete;
  StopSignalGuard& operator=(const StopSignalGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

std::string format_loss(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g", v);
  return buf;
}

std::string epoch_tag(int64_t epoch) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "epoch_%03lld", static_cast<long long>(epoch));
  return buf;
}

// TensorBoard's scalars of a metrics.jsonl line: the losses and the learning rate.
std::vector<EventScalar> training_event_scalars(const Losses& losses, double lr) {
  std::vector<EventScalar> scalars;
  for (const auto& [name, value] : losses) scalars.push_back({"loss/" + name, value});
  scalars.push_back({"lr", lr});
  return scalars;
}

// TensorBoard's scalars of a val.jsonl line: every figure (psnr, ssim, tracked generators').
std::vector<EventScalar> validation_event_scalars(const nlohmann::json& line) {
  std::vector<EventScalar> scalars;
  for (const auto& [key, value] : line.items()) {
    const bool counter = key == "epoch" || key == "step" || key == "count" || key == "wall_seconds";
    if (!counter && value.is_number()) scalars.push_back({"val/" + key, value.get<double>()});
  }
  return scalars;
}

std::shared_ptr<data::Dataset> open_train_set(const TrainConfig& c) {
  data::DatasetOptions options;
  options.transform.preprocess = c.preprocess;
  options.transform.load_size = c.load_size;
  options.transform.crop_size = c.crop_size;
  options.transform.flip = !c.no_flip;
  options.direction = c.direction;
  options.serial_batches = c.serial_batches;
  return task_kind(c.task).open_train_set(c, options);
}

}  // namespace

std::unique_ptr<TrainTask> make_task(const TrainConfig& config, const torch::Device& device) {
  torch::manual_seed(config.seed);  // network init is part of the run's seed
  return task_kind(config.task).make_task(config, device);  // names the valid tasks for an unknown one
}

fs::path latest_checkpoint_path(const fs::path& run_dir) {
  return run_dir / "checkpoints" / "latest.ckpt.safetensors";
}

Trainer::Trainer(TrainConfig config, TrainerOptions options, std::unique_ptr<TrainTask> task)
    : config_(std::move(config)), options_(std::move(options)), task_(std::move(task)) {
  require(task_ != nullptr, "Trainer needs a task");
}

TrainResult Trainer::run() {
  const TrainConfig& c = config_;
  // Data-parallel (train/distributed.h): every rank trains; rank 0 alone writes the run folder.
  Distributed* const dist = Distributed::current();
  const bool main_rank = dist == nullptr || dist->is_main();
  const torch::Device device = dist ? dist->device() : parse_device(c.device);
  const fs::path run_dir = options_.run_dir;
  const fs::path ckpt_dir = run_dir / "checkpoints";
  const fs::path samples_dir = run_dir / "samples";
  const fs::path metrics_path = run_dir / "metrics.jsonl";
  const fs::path val_path = run_dir / "val.jsonl";
  const fs::path latest = latest_checkpoint_path(run_dir);
  fs::create_directories(ckpt_dir);
  const std::string config_json = config_file_text(options_.config_json ? options_.config_json(c) : c.to_json());

  TrainingProgress progress;
  if (options_.resume) {
    progress = load_training_checkpoint(latest, *task_, device);
  }
  if (options_.resume && main_rank) {
    // The logs and samples may run past the checkpoint (or end in a torn line): cut them back to
    // it; the resumed run writes them again, as the uninterrupted run did.
    filter_jsonl(metrics_path, [&](const nlohmann::json& j) {
      const int64_t step = jsonl_counter(j, "step");
      return step >= 0 && step <= progress.global_step;
    });
    filter_jsonl(val_path, [&](const nlohmann::json& j) {
      const int64_t epoch = jsonl_counter(j, "epoch");
      return epoch >= 0 && epoch < progress.epoch;
    });
    remove_samples_after(run_dir, progress.global_step);
    cut_event_files_after(run_dir, progress.global_step);  // TensorBoard's events, as the logs
  } else if (!options_.resume && main_rank && fs::exists(latest)) {
    throw UsageError("run folder '" + run_dir.string() + "' already holds a run (" + latest.string() +
                     "); continue it with --resume or choose another --out");
  }
  if (main_rank) write_file_atomic(run_dir / "config.json", config_json);
  std::optional<EventFileWriter> events;  // TensorBoard: a new file per session, made at its first event
  if (main_rank && c.tensorboard) events.emplace(run_dir);

  auto train_set = open_train_set(c);
  if (train_set->size() == 0) throw Error("no training images in '" + c.dataroot + "'");
  data::LoaderOptions loader_options;
  loader_options.batch_size = c.batch_size;
  loader_options.shuffle = !c.serial_batches;
  loader_options.seed = c.seed;
  loader_options.workers = c.workers;
  std::unique_ptr<GradientAverager> gradient_averager;
  std::optional<SyncBatchNormScope> sync_batch_norm;
  if (dist) {
    loader_options.rank = dist->rank();
    loader_options.world_size = dist->size();
    broadcast_modules(*dist, task_->modules());
    gradient_averager = std::make_unique<GradientAverager>(*dist, task_->modules());
    sync_batch_norm.emplace(*dist);
  }
  data::DataLoader loader(train_set, loader_options);
  const int64_t batches_per_epoch = loader.batches_per_epoch();

  std::optional<ValidationSet> val_set;
  if (c.validate) {
    std::string why;
    val_set = open_validation_set(c, &why);
    if (!val_set && ProgressBar::enabled()) std::cerr << "validation off: " << why << "\n";
  }

  const int64_t total_epochs = c.total_epochs();
  int64_t total_iters = total_epochs * batches_per_epoch;
  if (c.max_iters > 0) total_iters = std::min(total_iters, c.max_iters);

  auto save_tracked = [&](const std::string& name, nn::GeneratorImpl& generator, const std::string& tag) {
    io::save_generator(ckpt_dir / (tag + "_net_" + name + ".safetensors"), generator,
                       {{"task", task_->name()}, {"tag", tag}});
  };
  auto export_nets = [&](const std::string& tag) {
    std::vector<fs::path> files;
    for (const auto& [name, generator] : task_->export_generators()) {
      const fs::path path = ckpt_dir / (tag + "_net_" + name + ".safetensors");
      if (main_rank) io::save_generator(path, *generator, {{"task", task_->name()}, {"tag", tag}});
      files.push_back(path);
    }
    for (const auto& [name, generator] : task_->tracked_generators()) {
      if (main_rank && tag != "best") save_tracked(name, *generator, tag);
    }
    for (const auto& [name, module] : task_->export_discriminators()) {
      if (!main_rank) break;
      auto meta = task_->discriminator_metadata();
      meta[io::kMetaFormat] = "ganlite";
      meta["task"] = task_->name();
      meta["tag"] = tag;
      io::save_module(ckpt_dir / (tag + "_net_" + name + ".safetensors"), *module, meta);
    }
    return files;
  };
  const auto session_start = std::chrono::steady_clock::now();
  const double wall_before = progress.wall_seconds;
  auto wall_now = [&] {
    return wall_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - session_start).count();
  };
  TrainResult result;
  bool saved = options_.resume;  // a checkpoint exists (checked without the file system: ranks race it)
  auto save_latest = [&] {
    if (dist) check_modules_agree(*dist, task_->modules());
    progress.wall_seconds = wall_now();
    if (main_rank) save_training_checkpoint(latest, *task_, progress, config_json);
    result.generator_files = export_nets("latest");
    saved = true;
  };

  StopSignalGuard signal_guard;
  ProgressBar bar(total_iters, task_->name());
  bar.update(std::min(progress.global_step, total_iters));
  Losses losses;
  NonFiniteLossGuard non_finite(parse_train_precision(c.precision));  // fp16: skipped steps go on
  bool stop = c.max_iters > 0 && progress.global_step >= c.max_iters;

  for (int64_t epoch = progress.epoch; epoch < total_epochs && !stop; ++epoch) {
    const double lr = c.lr * linear_lr_factor(epoch, c.n_epochs, c.n_epochs_decay);
    for (auto& [name, optimizer] : task_->optimizers()) set_learning_rate(*optimizer, lr * task_->lr_factor(name));
    const int64_t skip = epoch == progress.epoch ? progress.epoch_iter : 0;
    progress.epoch = epoch;
    progress.epoch_iter = skip;
    loader.start_epoch(epoch, skip);

    while (progress.epoch_iter < batches_per_epoch) {
      auto batch = loader.next();
      if (!batch) break;
      if (dist) dist->set_step_weight(static_cast<double>(batch->a.size(0)) / static_cast<double>(batch->global_size));
      losses = task_->train_step(*batch);
      ++result.iterations;
      if (options_.after_step_hook) options_.after_step_hook(progress.global_step + 1, losses);
      int signal = g_stop_signal.load();
      if (dist) signal = reduce_step_report(*dist, losses, signal);  // global-batch means; stop together
      const auto bad = std::find_if(losses.begin(), losses.end(), [](const auto& l) { return !std::isfinite(l.second); });
      if (non_finite.stop(bad == losses.end())) {
        throw Error("loss '" + bad->first + "' is " + std::to_string(bad->second) + " at step " +
                    std::to_string(progress.global_step + 1) + " (epoch " + std::to_string(epoch) +
                    "); training stopped. The last good checkpoint is kept" +
                    (fs::exists(latest) ? ": " + latest.string() : " (none was saved yet)") +
                    ". Try a lower --lr.");
      }
      ++progress.global_step;
      ++progress.epoch_iter;

      std::string status = "ep " + std::to_string(epoch + 1) + "/" + std::to_string(total_epochs);
      for (const auto& [name, value] : losses) status += " " + name + " " + format_loss(value);
      bar.update(std::min(progress.global_step, total_iters), status);

      // Every log_freq steps, and always the last step of the session (the end, max_iters, a
      // signal), so the log reaches the final checkpoint whatever log_freq is.
      const bool last_step = progress.global_step >= total_iters || signal != 0;
      if (main_rank && c.log_freq > 0 && (progress.global_step % c.log_freq == 0 || last_step)) {
        nlohmann::json line{{"step", progress.global_step}, {"epoch", epoch}, {"epoch_iter", progress.epoch_iter}};
        for (const auto& [name, value] : losses) line[name] = value;
        line["lr"] = lr;
        line["wall_seconds"] = wall_now();
        append_jsonl(metrics_path, line);
        if (events) events->add_scalars(progress.global_step, training_event_scalars(losses, lr));
      }
      if (main_rank && c.sample_freq > 0 && progress.global_step % c.sample_freq == 0) {
        auto generator = task_->sample_generator();
        const bool was_training = generator->is_training();
        generator->eval();
        torch::Tensor output;
        {
          torch::NoGradGuard no_grad;
          output = generator->forward(batch->a.to(device));
        }
        generator->train(was_training);
        char name[48];
        std::snprintf(name, sizeof(name), "step_%06lld.png", static_cast<long long>(progress.global_step));
        fs::create_directories(samples_dir);
        const auto grid = write_sample_grid(samples_dir / name, {preview_input(c, batch->a), output, batch->b});
        if (events) events->add_image(progress.global_step, {"samples", grid.rows, grid.cols, 3, grid.png});
      }
      if (c.max_iters > 0 && progress.global_step >= c.max_iters) stop = true;
      if (signal != 0) {
        save_latest();
        bar.finish(status);
        throw Error(std::string("stopped by ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + " at step " +
                    std::to_string(progress.global_step) + "; checkpoint saved to " + latest.string() +
                    " (continue with --resume " + run_dir.string() + ")");
      }
      if (c.save_latest_freq > 0 && progress.global_step % c.save_latest_freq == 0) save_latest();
      if (stop) break;
    }
    if (progress.epoch_iter < batches_per_epoch) break;  // stopped inside the epoch

    // End of epoch: validation, best and periodic exports, then the position moves to the next epoch.
    if (val_set) {
      // Every rank scores its shard; the means are all-reduced, so every rank takes the same decision.
      const auto v = evaluate_generator(*task_->sample_generator(), *val_set, c.val_max_images, device, dist);
      nlohmann::json line{{"epoch", epoch},   {"step", progress.global_step}, {"psnr", v.psnr},
                          {"ssim", v.ssim},   {"count", v.count}};
      for (const auto& [name, generator] : task_->tracked_generators()) {
        const auto tv = evaluate_generator(*generator, *val_set, c.val_max_images, device, dist);
        line[name + "_psnr"] = tv.psnr;
        line[name + "_ssim"] = tv.ssim;
        if (task_->record_validation(name, tv.psnr) && main_rank) save_tracked(name, *generator, "best");
      }
      line["wall_seconds"] = wall_now();
      if (main_rank) append_jsonl(val_path, line);
      if (events) events->add_scalars(progress.global_step, validation_event_scalars(line));
      if (v.psnr > progress.best_psnr) {
        progress.best_psnr = v.psnr;
        progress.best_epoch = epoch;
        export_nets("best");
      }
    }
    if (main_rank && c.save_epoch_freq > 0 && (epoch + 1) % c.save_epoch_freq == 0) export_nets(epoch_tag(epoch + 1));
    progress.epoch = epoch + 1;
    progress.epoch_iter = 0;
    save_latest();
  }
  if (result.iterations > 0 || !saved) save_latest();
  bar.finish();

  result.progress = progress;
  result.final_losses = losses;
  result.finished = progress.epoch >= total_epochs;
  result.latest_checkpoint = latest;
  if (progress.best_epoch >= 0) {
    result.best_generator = ckpt_dir / ("best_net_" + task_->export_generators().front().first + ".safetensors");
  }
  return result;
}

TrainResult train(const TrainConfig& config, const TrainerOptions& options) {
  const TrainConfig resolved = config.resolved();
  resolved.validate_config();
  torch::Device device = parse_device(resolved.device);
  TrainerOptions session = options;
  // Started as torchrun starts workers: join the others; rank 0 alone prepares the run folder
  // and decides whether the run continues, then every rank reads the same checkpoint.
  Distributed* dist = join_environment_world(device);
  set_threads(dist ? threads_per_rank(resolved.threads, dist->world().local_world_size) : resolved.threads);
  if (dist && !dist->is_main()) ProgressBar::set_enabled(false);
  if (dist == nullptr || dist->is_main()) session.resume = prepare_run_folder(options.run_dir, options.resume);
  if (dist) session.resume = main_rank_decides(*dist, session.resume);
  auto task = options.task_factory ? options.task_factory(resolved, device, !session.resume)
                                   : make_task(resolved, device);
  Trainer trainer(resolved, session, std::move(task));
  return trainer.run();
}

}  // namespace ganlite::train
