// Host state shared by the v3 forward launches (kernels/fwd_v3/launch.cuh): the dynamic-tile
// counters and the test aid that caps persistent grids. Defined in v3_launch_state.cpp.
#pragma once

#include <cuda_runtime_api.h>

namespace aiter::fwd {

// The dynamic-tile counter of launches on `stream` (current device), zero at rest: allocated
// on first use of the (device, stream) pair and left at zero by every kernel that draws from it
// (the CTA that draws the launch's last index resets it). Calls on one stream run in order,
// calls on different streams never share a counter. Returns null when `stream` is capturing a
// CUDA graph (the launch then allocates a counter owned by the graph) or when the allocation
// fails (*err says why; cudaSuccess otherwise).
unsigned long long* v3_tile_counter(cudaStream_t stream, cudaError_t* err);

// Test aid (benchmark_mha_fwd -v3_max_ctas): persistent v3 grids get at most n CTAs, so that
// each CTA walks several tiles even on small problems (n <= 0: no cap). Not for production use.
void set_v3_max_ctas(int n);
int v3_max_ctas();

}  // namespace aiter::fwd
