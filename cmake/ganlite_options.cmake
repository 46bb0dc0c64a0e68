# Compile settings shared by every project target.
function(ganlite_project_target target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(GANLITE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# One precompiled header shared by all targets: LibTorch's headers dominate build time.
# Targets reuse the library's PCH so it is compiled once.
function(ganlite_reuse_pch target)
  target_precompile_headers(${target} REUSE_FROM ganlite)
endfunction()

# Unity build: a few sources per compile unit. Every unit pays ~4 s to load LibTorch's precompiled
# header, which with ~180 sources was a third of a fresh `make test`; developers who rebuild one
# file at a time may turn it off (-DGANLITE_UNITY_BUILD=OFF).
option(GANLITE_UNITY_BUILD "Compile sources in batches (unity build)" ON)
function(ganlite_unity target batch)
  if(GANLITE_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${batch})
  endif()
endfunction()
