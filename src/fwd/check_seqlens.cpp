// aiter::mha_fwd_check_seqlens: the optional, synchronizing check of the int32 sequence
// arrays of a group-mode or padded call (mha_fwd itself never reads device arrays on the host).
#include <stdexcept>
#include <string>
#include <vector>

#include "common/attn_args.h"
#include "fwd/validate.h"
#include "mha_fwd.h"

namespace aiter {
namespace {

std::vector<int> fetch(const void* dptr, int n, cudaStream_t stream, const char* name) {
    std::vector<int> h(static_cast<size_t>(n));
    if (dptr == nullptr || n == 0) return h;
    cudaError_t e = cudaMemcpyAsync(h.data(), dptr, sizeof(int) * size_t(n), cudaMemcpyDeviceToHost, stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess)
        throw std::invalid_argument(std::string("mha_fwd: ") + name + ": expected a readable device int32 array of " +
                                    std::to_string(n) + " elements, got a copy error: " + cudaGetErrorString(e));
    return h;
}

[[noreturn]] void bad(const char* name, int i, const std::string& expected, long long got) {
    throw std::invalid_argument(std::string("mha_fwd: ") + name + "[" + std::to_string(i) + "]: expected " +
                                expected + ", got " + std::to_string(got));
}

}  // namespace

void mha_fwd_check_seqlens(const mha_fwd_args& a, cudaStream_t stream) {
    fwd::validate_fwd_args(a);  // sizes first: the arrays' lengths come from them
    const int b = a.batch;
    std::vector<long long> phys_q(b, a.seqlen_q), phys_k(b, a.seqlen_k);
    if (a.is_group_mode) {
        const auto sq = fetch(a.seqstart_q_ptr, b + 1, stream, "seqstart_q_ptr");
        const auto sk = fetch(a.seqstart_k_ptr, b + 1, stream, "seqstart_k_ptr");
        for (int i = 0; i <= b; ++i) {
            if (sq[i] < 0) bad("seqstart_q_ptr", i, "a value >= 0", sq[i]);
            if (sk[i] < 0) bad("seqstart_k_ptr", i, "a value >= 0", sk[i]);
            if (i > 0 && sq[i] < sq[i - 1])
                bad("seqstart_q_ptr", i, "a non-decreasing prefix sum (>= " + std::to_string(sq[i - 1]) + ")", sq[i]);
            if (i > 0 && sk[i] < sk[i - 1])
                bad("seqstart_k_ptr", i, "a non-decreasing prefix sum (>= " + std::to_string(sk[i - 1]) + ")", sk[i]);
        }
        if (b > 0 && sq[b] > a.seqlen_q) bad("seqstart_q_ptr", b, "<= seqlen_q (" + std::to_string(a.seqlen_q) + ")", sq[b]);
        if (b > 0 && sk[b] > a.seqlen_k) bad("seqstart_k_ptr", b, "<= seqlen_k (" + std::to_string(a.seqlen_k) + ")", sk[b]);
        for (int i = 0; i < b; ++i) {
            phys_q[i] = sq[i + 1] - sq[i];
            phys_k[i] = sk[i + 1] - sk[i];
            const int max_q = host::longest_q(a);  // group mode
            if (phys_q[i] > max_q)
                bad("seqstart_q_ptr", i + 1, "a sequence no longer than max_seqlen_q (" + std::to_string(max_q) + ")",
                    phys_q[i]);
        }
    }
    auto check_logical = [&](const void* cu, const char* name, const std::vector<long long>& phys) {
        if (cu == nullptr) return;
        const auto c = fetch(cu, b + 1, stream, name);
        for (int i = 0; i < b; ++i) {
            const long long len = (long long)c[i + 1] - c[i];
            if (len < 0 || len > phys[i])
                bad(name, i + 1, "a prefix sum whose step is in [0, " + std::to_string(phys[i]) + "]", len);
        }
    };
    check_logical(a.cu_seqlen_q_ptr, "cu_seqlen_q_ptr", phys_q);
    check_logical(a.cu_seqlen_k_ptr, "cu_seqlen_k_ptr", phys_k);
    if (a.seqlen_k_ptr != nullptr) {
        const auto l = fetch(a.seqlen_k_ptr, b, stream, "seqlen_k_ptr");
        for (int i = 0; i < b; ++i)
            if (l[i] < 0 || l[i] > phys_k[i])
                bad("seqlen_k_ptr", i, "a length in [0, " + std::to_string(phys_k[i]) + "]", l[i]);
    }
}

}  // namespace aiter
