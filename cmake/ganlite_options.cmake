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
