# The CUDA kernel benchmark (not a test): include() this from bench/engine/CMakeLists.txt.
if(MOESCOPE_HAVE_CUDA AND TARGET moescope_engine_cuda)
  add_executable(cuda_kernels_bench ${CMAKE_CURRENT_LIST_DIR}/cuda_kernels_bench.cu
                                    ${CMAKE_CURRENT_LIST_DIR}/cuda_fused_bench.cu)
  moescope_target_defaults(cuda_kernels_bench)
  target_link_libraries(cuda_kernels_bench PRIVATE moescope_engine_cuda moescope_engine_cpu)
endif()
# Standalone NCCL all-reduce, beside the engine's own (bench/engine/run_h200.sh).
if(MOESCOPE_HAVE_CUDA AND TARGET moescope_engine_cuda)
  add_executable(nccl_allreduce_bench ${CMAKE_CURRENT_LIST_DIR}/nccl_allreduce_bench.cpp)
  moescope_target_defaults(nccl_allreduce_bench)
  target_include_directories(nccl_allreduce_bench PRIVATE ${MOESCOPE_NCCL_INCLUDE})
  target_link_libraries(nccl_allreduce_bench PRIVATE CUDA::cudart ${MOESCOPE_NCCL_LIBRARY})
endif()
