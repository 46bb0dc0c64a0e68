// Precompiled header for every project target: the heavy, stable third-party headers.
#pragma once
#include <torch/torch.h>
#include <opencv2/core.hpp>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>
