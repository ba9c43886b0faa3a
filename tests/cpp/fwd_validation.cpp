// Host-only checks of aiter::mha_fwd argument validation: every case must throw
// std::invalid_argument whose message names the field. Runs without a GPU (validation comes
// before any CUDA call). Prints one line per case: "ok <case>: <message>" or "FAIL <case>: ...".
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "mha_fwd.h"

namespace {

aiter::mha_fwd_args valid_args() {
    alignas(16) static char dummy[256];  // never dereferenced: validation fails before any launch
    aiter::mha_fwd_args a;
    a.data_type = "fp16";
    a.batch = 2; a.nhead_q = 8; a.nhead_k = 2; a.hdim_q = 128; a.hdim_v = 128;
    a.seqlen_q = 64; a.seqlen_k = 64; a.max_seqlen_q = 64; a.scale_s = 0.125f;
    a.q_ptr = a.k_ptr = a.v_ptr = dummy; a.o_ptr = dummy; a.lse_ptr = dummy;
    a.stride_q = a.stride_k = a.stride_v = a.stride_o = 128;
    a.nhead_stride_q = a.nhead_stride_o = 64 * 128; a.nhead_stride_k = a.nhead_stride_v = 64 * 128;
    a.batch_stride_q = a.batch_stride_o = 8 * 64 * 128; a.batch_stride_k = a.batch_stride_v = 2 * 64 * 128;
    return a;
}

struct Case {
    const char* name;
    const char* field;  // must appear in the message
    std::function<void(aiter::mha_fwd_args&)> mutate;
};

}  // namespace

int main() {
    const std::vector<Case> cases = {
        {"null q", "q_ptr", [](auto& a) { a.q_ptr = nullptr; }},
        {"null k", "k_ptr", [](auto& a) { a.k_ptr = nullptr; }},
        {"null v", "v_ptr", [](auto& a) { a.v_ptr = nullptr; }},
        {"null o", "o_ptr", [](auto& a) { a.o_ptr = nullptr; }},
        {"null lse with has_lse", "lse_ptr", [](auto& a) { a.has_lse = true; a.lse_ptr = nullptr; }},
        {"group mode without seqstart_q", "seqstart_q_ptr", [](auto& a) { a.is_group_mode = true; }},
        {"nhead_q % nhead_k", "nhead_k", [](auto& a) { a.nhead_k = 3; }},
        {"nhead_k zero", "nhead_k", [](auto& a) { a.nhead_k = 0; }},
        {"hdim_q zero", "hdim_q", [](auto& a) { a.hdim_q = 0; }},
        {"hdim_q 257", "hdim_q", [](auto& a) { a.hdim_q = 257; }},
        {"hdim_v 300", "hdim_v", [](auto& a) { a.hdim_v = 300; }},
        {"negative seqlen_q", "seqlen_q", [](auto& a) { a.seqlen_q = -1; }},
        {"negative seqlen_k", "seqlen_k", [](auto& a) { a.seqlen_k = -5; }},
        {"negative batch", "batch", [](auto& a) { a.batch = -2; }},
        {"unknown data_type", "data_type", [](auto& a) { a.data_type = "fp32"; }},
        {"scale_s zero", "scale_s", [](auto& a) { a.scale_s = 0.f; }},
        {"scale_s nan", "scale_s", [](auto& a) { a.scale_s = 0.f / 0.f; }},
        {"negative soft cap", "logits_soft_cap", [](auto& a) { a.logits_soft_cap = -1.f; }},
        {"mask_type 7", "mask_type", [](auto& a) { a.mask_type = 7; }},
        {"bias_type 5", "bias_type", [](auto& a) { a.bias_type = 5; }},
        {"p_drop 1", "p_drop", [](auto& a) { a.p_drop = 1.f; }},
        {"row stride too small", "stride_q", [](auto& a) { a.stride_q = 64; }},
        {"negative head stride", "nhead_stride_k", [](auto& a) { a.nhead_stride_k = -1; }},
    };
    int failed = 0;
    for (const auto& c : cases) {
        for (int api = 0; api < 2; ++api) {  // mha_fwd and mha_fwd_check agree
            aiter::mha_fwd_args a = valid_args();
            c.mutate(a);
            const char* which = api == 0 ? "mha_fwd" : "mha_fwd_check";
            try {
                if (api == 0) aiter::mha_fwd(a, aiter::stream_config{});
                else aiter::mha_fwd_check(a);
                std::printf("FAIL %s [%s]: no exception\n", c.name, which);
                ++failed;
            } catch (const std::invalid_argument& e) {
                const std::string msg = e.what();
                if (msg.find(c.field) == std::string::npos || msg.find("expected") == std::string::npos) {
                    std::printf("FAIL %s [%s]: message does not name '%s': %s\n", c.name, which, c.field, e.what());
                    ++failed;
                } else {
                    std::printf("ok %s [%s]: %s\n", c.name, which, e.what());
                }
            } catch (const std::exception& e) {
                std::printf("FAIL %s [%s]: wrong exception type: %s\n", c.name, which, e.what());
                ++failed;
            }
        }
    }
    // Valid but unsupported configurations answer with a reason, not an exception.
    {
        aiter::mha_fwd_args a = valid_args();
        a.bias_type = 2;
        const auto r = aiter::mha_fwd_check(a);
        if (r.supported || r.reason.find("bias") == std::string::npos) {
            std::printf("FAIL alibi reason: supported=%d reason=%s\n", int(r.supported), r.reason.c_str());
            ++failed;
        } else {
            std::printf("ok unsupported alibi: %s\n", r.reason.c_str());
        }
        if (aiter::mha_fwd(a, aiter::stream_config{}) != -1.f) {
            std::printf("FAIL alibi: mha_fwd did not return -1\n");
            ++failed;
        }
    }
    // v3 selection, host only (v3_api_check never launches). The ci build has
    // fmha_fwd_v3_fp16_d64_mask when it was built for sm_90a.
    {
        bool have_v3 = false;
        for (const auto& n : aiter::mha_fwd_instances()) have_v3 = have_v3 || n == "fmha_fwd_v3_fp16_d64_mask";
        int ndev0 = 0;
        const bool no_gpu = cudaGetDeviceCount(&ndev0) != cudaSuccess || ndev0 == 0;
        cudaGetLastError();
        auto v3_args = [] {
            aiter::mha_fwd_args a = valid_args();
            a.hdim_q = a.hdim_v = 64;
            a.mask_type = 2; a.window_size_left = -1; a.window_size_right = 0;
            a.v3_api_check = true;
            return a;
        };
        struct V3Case {
            const char* name;
            std::function<void(aiter::mha_fwd_args&)> mutate;
            const char* reason;  // nullptr: a v3 kernel exists
        };
        const std::vector<V3Case> v3_cases = {
            // s = 64 prefers d64's short-sequence tile, which the ci build lacks: the default runs.
            {"compiled bucket", [](auto&) {}, have_v3 ? nullptr : "without the fwd_v3 api"},
            {"long sequence, default tile",
             [](auto& a) {
                 a.seqlen_q = a.seqlen_k = a.max_seqlen_q = 768;
                 a.nhead_stride_q = a.nhead_stride_o = a.nhead_stride_k = a.nhead_stride_v = 768 * 128;
                 a.batch_stride_q = a.batch_stride_o = 8 * 768 * 128;
                 a.batch_stride_k = a.batch_stride_v = 2 * 768 * 128;
             },
             have_v3 ? nullptr : "without the fwd_v3 api"},
            {"2^31 tiles or more (masked)",
             [](auto& a) {
                 a.seqlen_q = a.seqlen_k = a.max_seqlen_q = 1 << 20;  // 5462 row blocks of 192
                 a.batch = 50000;                                     // x 8 heads x 50000 > 2^31
                 a.nhead_stride_q = a.nhead_stride_o = a.nhead_stride_k = a.nhead_stride_v = int64_t(1 << 20) * 128;
                 a.batch_stride_q = a.batch_stride_o = 8 * int64_t(1 << 20) * 128;
                 a.batch_stride_k = a.batch_stride_v = 2 * int64_t(1 << 20) * 128;
             },
             have_v3 ? "at most 2^31 - 1" : "without the fwd_v3 api"},
            {"hdim not a multiple of 8", [](auto& a) { a.hdim_q = 60; }, "multiples of 8"},
            {"bucket not compiled", [](auto& a) { a.data_type = "bf16"; }, "no compiled v3 forward instance"},
            {"stride not TMA-aligned", [](auto& a) { a.stride_k = 100; }, "TMA"},
            {"bf16 rounding other than RTNE", [](auto& a) { a.data_type = "bf16"; a.how_v3_bf16_cvt = 2; },
             "how_v3_bf16_cvt 2"},
        };
        for (const auto& c : v3_cases) {
            aiter::mha_fwd_args a = v3_args();
            c.mutate(a);
            const auto r = aiter::mha_fwd_check(a);
            const float ans = aiter::mha_fwd(a, aiter::stream_config{});
            const bool want = c.reason == nullptr;
            if (!no_gpu && want) {
                std::printf("skip v3 %s: a GPU is present (the answer depends on it)\n", c.name);
            } else if (r.supported != want || (ans == 1.f) != want ||
                       (!want && r.reason.find(c.reason) == std::string::npos)) {
                std::printf("FAIL v3 %s: supported=%d answer=%g reason=%s\n", c.name, int(r.supported), ans,
                            r.reason.c_str());
                ++failed;
            } else {
                std::printf("ok v3 %s: answer %g %s\n", c.name, ans, r.supported ? r.kernel_name.c_str() : r.reason.c_str());
            }
        }
    }
    // Device-side sequence arrays (needs a GPU): mha_fwd_check_seqlens names the array and index.
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        cudaGetLastError();
        std::printf("skip-gpu seqlen array checks: no CUDA device\n");
    } else {
        struct SeqCase {
            const char* name;
            const char* field;
            std::vector<int> seqstart_q, seqstart_k, seqlen_k;
        };
        const std::vector<SeqCase> seq_cases = {
            {"seqstart_q not monotonic", "seqstart_q_ptr[2]", {0, 50, 40}, {0, 10, 20}, {}},
            {"seqstart_k negative", "seqstart_k_ptr[0]", {0, 5, 10}, {-1, 10, 20}, {}},
            {"seqlen_k beyond physical", "seqlen_k_ptr[1]", {0, 5, 10}, {0, 10, 20}, {3, 11}},
            {"seqstart_q past seqlen_q", "seqstart_q_ptr[2]", {0, 5, 100}, {0, 10, 20}, {}},
        };
        for (const auto& c : seq_cases) {
            aiter::mha_fwd_args a = valid_args();
            a.is_group_mode = true;
            a.batch = 2;
            a.seqlen_q = 64;
            a.seqlen_k = 64;
            int* d = nullptr;
            cudaMalloc(reinterpret_cast<void**>(&d), 16 * sizeof(int));
            cudaMemcpy(d, c.seqstart_q.data(), 3 * sizeof(int), cudaMemcpyHostToDevice);
            cudaMemcpy(d + 4, c.seqstart_k.data(), 3 * sizeof(int), cudaMemcpyHostToDevice);
            a.seqstart_q_ptr = d;
            a.seqstart_k_ptr = d + 4;
            if (!c.seqlen_k.empty()) {
                cudaMemcpy(d + 8, c.seqlen_k.data(), 2 * sizeof(int), cudaMemcpyHostToDevice);
                a.seqlen_k_ptr = d + 8;
            }
            try {
                aiter::mha_fwd_check_seqlens(a);
                std::printf("FAIL %s: no exception\n", c.name);
                ++failed;
            } catch (const std::invalid_argument& e) {
                if (std::string(e.what()).find(c.field) == std::string::npos) {
                    std::printf("FAIL %s: message does not name '%s': %s\n", c.name, c.field, e.what());
                    ++failed;
                } else {
                    std::printf("ok-gpu %s: %s\n", c.name, e.what());
                }
            }
            cudaFree(d);
        }
    }
    std::printf("%d failed\n", failed);
    return failed == 0 ? 0 : 1;
}
