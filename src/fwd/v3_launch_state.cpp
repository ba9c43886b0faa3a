#include "fwd/v3_launch_state.h"

#include <atomic>
#include <map>
#include <mutex>
#include <utility>

namespace aiter::fwd {
namespace {

std::atomic<int> g_max_ctas{0};

}  // namespace

unsigned long long* v3_tile_counter(cudaStream_t stream, cudaError_t* err) {
    *err = cudaSuccess;
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    if ((*err = cudaStreamIsCapturing(stream, &capture)) != cudaSuccess) return nullptr;
    if (capture != cudaStreamCaptureStatusNone) return nullptr;
    int dev = 0;
    if ((*err = cudaGetDevice(&dev)) != cudaSuccess) return nullptr;
    static std::mutex mu;
    static std::map<std::pair<int, cudaStream_t>, unsigned long long*> counters;  // never freed: 8 bytes each
    std::lock_guard<std::mutex> lock(mu);
    unsigned long long*& c = counters[{dev, stream}];
    if (c == nullptr) {
        void* p = nullptr;
        if ((*err = cudaMalloc(&p, sizeof(unsigned long long))) != cudaSuccess) return nullptr;
        // Zeroed in stream order, before the first kernel that uses it (only `stream` does).
        if ((*err = cudaMemsetAsync(p, 0, sizeof(unsigned long long), stream)) != cudaSuccess) {
            cudaFree(p);
            return nullptr;
        }
        c = static_cast<unsigned long long*>(p);
    }
    return c;
}

void set_v3_max_ctas(int n) { g_max_ctas.store(n > 0 ? n : 0); }
int v3_max_ctas() { return g_max_ctas.load(); }

}  // namespace aiter::fwd
