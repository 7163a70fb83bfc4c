#pragma once
#include <cuda_runtime_api.h>

cudaError_t launchSaxpy(float a, const float* x, float* y, int n, cudaStream_t stream);
