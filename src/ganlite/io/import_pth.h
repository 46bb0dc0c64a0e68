// Importing generators trained with the public PyTorch code: pytorch-CycleGAN-and-pix2pix
// (ResnetGenerator, UnetGenerator), gan-compression (ResnetGenerator with its always-present
// Dropout, MobileResnetGenerator, SubMobileResnetGenerator students) and CAT (inception teachers
// and pruned students). The architecture family is given; widths, block count, norm type, input
// and output channels are inferred from the tensors' shapes, and layer indices that differ from
// ours (a Dropout that shifts a block's keys, pruned-away inception branches) are remapped.
//
// Limits (documented in the errors): reflect and replicate padding have the same keys, so
// --padding picks between them (default reflect); dropout has no weights (eval is unaffected);
// a SubMobileResnetGenerator whose block norms carry weights over the middle width (which
// PyTorch itself cannot run) is rejected. gan-compression's generators clamp their input to
// [-1, 1]; ours do not, so outputs agree for inputs in that range (the images they are fed).
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "ganlite/io/pth.h"
#include "ganlite/nn/generator.h"
#include "ganlite/nn/import_keys.h"

namespace ganlite::io {

// arch (a registered family, required), ngf, n_blocks, num_downs, norm, padding, dropout: see
// nn/import_keys.h. The family's import hook reads the file's layout (nn/generator_family.h).
using ImportOptions = nn::ImportOptions;

struct ImportResult {
  nn::Generator generator;
  std::string layout;              // which public code's key layout the file follows
  size_t tensors = 0;              // tensors read from the file
  std::vector<std::string> notes;  // what was inferred or remapped, for the user
};

// Builds the generator described by a public state dict and loads its weights (CPU). A
// "module." prefix (DataParallel) is stripped. Missing or unexpected keys and shape mismatches
// throw Error naming the file's key; `source` names the file in messages.
ImportResult import_generator_state_dict(const NamedTensors& tensors, const ImportOptions& options,
                                         const std::string& source);
// Reads the .pth file (zip format; a legacy file throws the reader's error) and imports it.
ImportResult import_pth_generator(const std::filesystem::path& path, const ImportOptions& options);

}  // namespace ganlite::io
