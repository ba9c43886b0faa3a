// Host-only check that every *_check answers what its call does (issue 30), over an enumeration
// of the flags that steer selection: for mha_fwd dtype x mask x v3 x v3_api_check x soft-cap x
// head dims x bias / dropout / LSE; for mha_bwd dtype x mask x v3 x v3_api_check x
// deterministic x head dims x dropout; for mha_fwd_splitkv dtype x mask x paged x splits x head
// dims. On a machine without a GPU a call that selected a kernel fails at its launch
// (std::runtime_error), one that did not returns -1 (v3_api_check: 1 / -1): so
//   check.supported  <=>  call threw a launch error or returned >= 0 (v3_api_check: 1).
// A GPU machine skips this (the calls would run). Prints "N passed, M failed" last.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>

#include "mha_bwd.h"
#include "mha_fwd.h"
#include "mha_fwd_splitkv.h"

#include "host_fixtures.h"

namespace {

alignas(256) char g_mem[1 << 16];  // never dereferenced: no GPU, nothing launches
char* const kPtr = g_mem;
int passed = 0, failed = 0;

// 1: the call selected a kernel (launch attempted or answered 1), 0: it did not (-1).
template <class F>
int call_outcome(F&& f) {
    try {
        return f() >= 0.f ? 1 : 0;
    } catch (const std::runtime_error&) {
        return 1;  // the launch of a selected kernel failed: there is no device
    }
}

void compare(const std::string& name, const aiter::mha_check_result& r, int called) {
    const bool ok = r.supported == (called == 1);
    ++(ok ? passed : failed);
    if (!ok)
        std::printf("FAIL %s: check says %s (%s), call %s\n", name.c_str(), r.supported ? "supported" : "unsupported",
                    r.supported ? r.kernel_name.c_str() : r.reason.c_str(), called ? "selected a kernel" : "returned -1");
}

void fwd_cases() {
    for (const char* dt : {"fp16", "bf16"})
        for (int mask : {0, 2})
            for (int v3 : {0, 1})
                for (int api_check : {0, 1})
                    for (float cap : {0.f, 30.f})
                        for (int d : {64, 72, 128, 59})
                            for (int feature : {0, 1, 2, 3}) {  // none, no LSE, alibi, dropout
                                aiter::mha_fwd_args a;
                                a.data_type = dt;
                                a.batch = 2, a.nhead_q = 4, a.nhead_k = 2, a.hdim_q = a.hdim_v = d;
                                a.seqlen_q = a.seqlen_k = a.max_seqlen_q = 64, a.scale_s = 0.125f;
                                a.q_ptr = a.k_ptr = a.v_ptr = a.o_ptr = a.lse_ptr = kPtr;
                                a.stride_q = a.stride_k = a.stride_v = a.stride_o = d;
                                a.nhead_stride_q = a.nhead_stride_o = a.nhead_stride_k = a.nhead_stride_v = 64 * d;
                                a.batch_stride_q = a.batch_stride_o = 4 * 64 * d;
                                a.batch_stride_k = a.batch_stride_v = 2 * 64 * d;
                                a.has_lse = feature != 1, a.nhead_stride_lse = 64, a.batch_stride_lse = 4 * 64;
                                a.mask_type = mask, a.window_size_left = -1, a.window_size_right = mask ? 0 : -1;
                                a.logits_soft_cap = cap, a.use_asm_v3 = v3, a.v3_api_check = api_check;
                                if (feature == 2) a.bias_type = 2;
                                if (feature == 3) a.p_drop = 0.1f;
                                const std::string n = std::string("fwd ") + dt + " mask" + std::to_string(mask) +
                                                      " v3=" + std::to_string(v3) + " api_check=" +
                                                      std::to_string(api_check) + " cap=" + std::to_string(int(cap)) +
                                                      " d" + std::to_string(d) + " feature" + std::to_string(feature);
                                const int called = call_outcome([&] { return aiter::mha_fwd(a, {}); });
                                compare(n, aiter::mha_fwd_check(a), called);
                            }
}

void bwd_cases() {
    for (const char* dt : {"fp16", "bf16"})
        for (int mask : {0, 2})
            for (int v3 : {0, 1})
                for (int api_check : {0, 1})
                    for (int det : {0, 1})
                        for (int d : {64, 96, 128, 59})
                            for (int drop : {0, 1}) {
                                aiter::mha_bwd_args a = bwd_fixture(kPtr, d);
                                a.data_type = dt;
                                a.mask_type = mask, a.window_size_left = -1, a.window_size_right = mask ? 0 : -1;
                                a.use_asm_v3 = v3, a.v3_api_check = api_check, a.is_deterministic = det;
                                if (drop) a.p_drop = 0.1f, a.has_dropout = true, a.p_undrop = 0.9f;
                                const std::string n = std::string("bwd ") + dt + " mask" + std::to_string(mask) +
                                                      " v3=" + std::to_string(v3) + " api_check=" +
                                                      std::to_string(api_check) + " det=" + std::to_string(det) +
                                                      " d" + std::to_string(d) + " drop" + std::to_string(drop);
                                const int called = call_outcome([&] { return aiter::mha_bwd(a, {}); });
                                compare(n, aiter::mha_bwd_check(a), called);
                            }
}

void splitkv_cases() {
    for (const char* dt : {"fp16", "bf16"})
        for (int mask : {0, 2})
            for (int paged : {0, 1})
                for (int splits : {1, 3})
                    for (int d : {64, 128, 96}) {
                        aiter::mha_fwd_splitkv_args a;
                        a.data_type = dt;
                        a.batch = 2, a.nhead_q = 8, a.nhead_k = 2, a.hdim_q = a.hdim_v = d;
                        a.seqlen_q = a.max_seqlen_q = 1, a.seqlen_k = 256, a.scale_s = 0.1f;
                        a.q_ptr = a.k_ptr = a.v_ptr = a.o_ptr = kPtr;
                        a.stride_q = a.stride_o = d, a.nhead_stride_q = a.nhead_stride_o = d;
                        a.batch_stride_q = a.batch_stride_o = 8 * d;
                        a.stride_k = a.stride_v = d, a.nhead_stride_k = a.nhead_stride_v = 256 * d;
                        a.batch_stride_k = a.batch_stride_v = 2 * 256 * d;
                        if (paged) {  // [pages, 16, hk, d]
                            a.block_table_ptr = kPtr, a.page_block_size = 16, a.batch_stride_block_table = 16;
                            a.num_pages = 32, a.stride_k = a.stride_v = 2 * d, a.nhead_stride_k = a.nhead_stride_v = d;
                            a.batch_stride_k = a.batch_stride_v = 16 * 2 * d;
                        }
                        a.mask_type = mask, a.window_size_left = -1, a.window_size_right = mask ? 0 : -1;
                        a.num_splits = splits;
                        a.o_acc_ptr = a.lse_acc_ptr = kPtr;
                        a.stride_o_acc = d, a.nhead_stride_o_acc = d, a.batch_stride_o_acc = 8 * d;
                        a.split_stride_o_acc = 2 * 8 * d, a.nhead_stride_lse_acc = 1, a.batch_stride_lse_acc = 8;
                        a.split_stride_lse_acc = 16;
                        const std::string n = std::string("splitkv ") + dt + " mask" + std::to_string(mask) +
                                              " paged" + std::to_string(paged) + " splits" + std::to_string(splits) +
                                              " d" + std::to_string(d);
                        const int called = call_outcome([&] { return aiter::mha_fwd_splitkv(a, {}); });
                        compare(n, aiter::mha_fwd_splitkv_check(a), called);
                    }
}

}  // namespace

int main() {
    int n = 0;
    if (cudaGetDeviceCount(&n) == cudaSuccess && n > 0) {
        std::printf("a CUDA device is present: skipped (the calls would run)\n");
        return 0;
    }
    fwd_cases();
    bwd_cases();
    splitkv_cases();
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
