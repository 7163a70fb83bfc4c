# The CUDA kernel benchmark (not a test): include() this from bench/engine/CMakeLists.txt.
if(MOESCOPE_HAVE_CUDA AND TARGET moescope_engine_cuda)
  add_executable(cuda_kernels_bench ${CMAKE_CURRENT_LIST_DIR}/cuda_kernels_bench.cu)
  moescope_target_defaults(cuda_kernels_bench)
  target_link_libraries(cuda_kernels_bench PRIVATE moescope_engine_cuda moescope_engine_cpu)
endif()
