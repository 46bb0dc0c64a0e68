// Discriminator kinds as registered entries (`--netD`, DiscriminatorConfig::arch). Each kind
// is defined beside its module (discriminator.cpp: basic, n_layers, pixel) as a function
// returning a DiscriminatorKind, listed once in GANLITE_DISCRIMINATOR_KINDS
// (discriminator_registry.cpp). Nothing outside a kind's unit branches on its name.
//
// A new kind (e.g. SPADE's multi-scale D): its module (a DiscriminatorImpl whose forward returns
// one DiscriminatorScale per scale), `DiscriminatorKind <name>_discriminator_kind()` and one
// X(<name>) in the list. docs/architecture.md, "Extending ganlite".
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ganlite/nn/discriminator.h"

namespace ganlite::nn {

struct DiscriminatorKind {
  std::string name;         // --netD value and DiscriminatorConfig::arch
  std::string description;  // one line for --help
  // The "arch" a discriminator file's metadata records and `--restore-d` reads back: basic is
  // stored as the n_layers D it is, as before the registry.
  std::string file_arch;
  int fixed_n_layers = 0;   // > 0: the kind's layer count whatever n_layers says (basic: 3)
  // Builds the module from a resolved, validated config (initialised by make_discriminator).
  std::function<Discriminator(const DiscriminatorConfig&)> build;
  // The 4-d weights build() would allocate, without building (resolved config).
  std::function<int64_t(const DiscriminatorConfig&)> conv_weight_count;
};

// Every registered kind, in GANLITE_DISCRIMINATOR_KINDS order.
const std::vector<DiscriminatorKind>& discriminator_kinds();
const std::vector<std::string>& discriminator_kind_names();
// nullptr when no kind has this name.
const DiscriminatorKind* find_discriminator_kind(const std::string& name);
// UsageError "unknown discriminator 'x' (valid: basic, n_layers, pixel)" for an unknown name.
const DiscriminatorKind& discriminator_kind(const std::string& name);
// The kind that reads a discriminator file whose metadata says `file_arch` with `n_layers`:
// `preferred` when it can (basic and n_layers read the same 3-layer files), else the first
// registered kind that can. UsageError naming `file` when none can.
const DiscriminatorKind& discriminator_kind_for_file(const std::string& file_arch, int n_layers,
                                                     const std::string& preferred, const std::string& file);

}  // namespace ganlite::nn
