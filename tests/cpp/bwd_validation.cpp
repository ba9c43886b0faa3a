// Host-only checks of aiter::mha_bwd argument validation: every case must throw
// std::invalid_argument whose message names the field; unsupported-but-valid configurations
// return -1 with a reason from mha_bwd_check. Runs without a GPU (validation and selection come
// before any launch). Prints "ok <case>: <message>" or "FAIL <case>: ..." and "<n> failed".
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "mha_bwd.h"

#include "host_fixtures.h"

namespace {

aiter::mha_bwd_args valid_args() {
    alignas(16) static char dummy[256];  // never dereferenced: validation fails before any launch
    return bwd_fixture(dummy);
}

struct Case {
    const char* name;
    const char* field;  // must appear in the message
    std::function<void(aiter::mha_bwd_args&)> mutate;
};

}  // namespace

int main() {
    const std::vector<Case> invalid = {
        {"null q", "q_ptr", [](auto& a) { a.q_ptr = nullptr; }},
        {"null do", "do_ptr", [](auto& a) { a.do_ptr = nullptr; }},
        {"null lse", "lse_ptr", [](auto& a) { a.lse_ptr = nullptr; }},
        {"null dq", "dq_ptr", [](auto& a) { a.dq_ptr = nullptr; }},
        {"null dk", "dk_ptr", [](auto& a) { a.dk_ptr = nullptr; }},
        {"null dv", "dv_ptr", [](auto& a) { a.dv_ptr = nullptr; }},
        {"group mode without seqstart_k", "seqstart_k_ptr",
         [](auto& a) { a.is_group_mode = true; a.seqstart_q_ptr = a.q_ptr; }},
        {"nhead_q % nhead_k", "nhead_k", [](auto& a) { a.nhead_k = 3; }},
        {"hdim_q 257", "hdim_q", [](auto& a) { a.hdim_q = 257; }},
        {"hdim_v 0", "hdim_v", [](auto& a) { a.hdim_v = 0; }},
        {"negative seqlen_k", "seqlen_k", [](auto& a) { a.seqlen_k = -5; }},
        {"unknown data_type", "data_type", [](auto& a) { a.data_type = "fp8bf16"; }},
        {"scale zero", "scale", [](auto& a) { a.scale = 0.f; }},
        {"mask_type 9", "mask_type", [](auto& a) { a.mask_type = 9; }},
        {"dbias without elementwise bias", "has_dbias", [](auto& a) { a.has_dbias = true; }},
        {"p_drop 1", "p_drop", [](auto& a) { a.p_drop = 1.f; }},
        {"row stride too small", "stride_dk", [](auto& a) { a.stride_dk = 64; }},
        {"negative nhead_stride_lsed", "nhead_stride_lsed", [](auto& a) { a.nhead_stride_lsed = -1; }},
    };
    const std::vector<Case> unsupported = {
        {"dropout", "dropout", [](auto& a) { a.has_dropout = true; a.p_drop = 0.1f; }},
        {"alibi", "bias_type", [](auto& a) { a.bias_type = 2; }},
        {"elementwise bias with dbias", "bias_type 1", [](auto& a) { a.bias_type = 1; a.has_dbias = true; }},
    };
    int failed = 0;
    for (const Case& c : invalid) {
        for (int api = 0; api < 2; ++api) {
            aiter::mha_bwd_args a = valid_args();
            c.mutate(a);
            try {
                if (api == 0) aiter::mha_bwd(a, aiter::stream_config{});
                else aiter::mha_bwd_check(a);
                printf("FAIL %s (%s): no exception\n", c.name, api ? "check" : "mha_bwd");
                ++failed;
            } catch (const std::invalid_argument& e) {
                const std::string msg = e.what();
                if (msg.find(c.field) == std::string::npos || msg.find("mha_bwd: ") != 0) {
                    printf("FAIL %s: message does not name %s: %s\n", c.name, c.field, msg.c_str());
                    ++failed;
                } else {
                    printf("ok %s: %s\n", c.name, msg.c_str());
                }
            } catch (const std::exception& e) {
                printf("FAIL %s: wrong exception: %s\n", c.name, e.what());
                ++failed;
            }
        }
    }
    for (const Case& c : unsupported) {
        aiter::mha_bwd_args a = valid_args();
        c.mutate(a);
        try {
            const float r = aiter::mha_bwd(a, aiter::stream_config{});
            const aiter::mha_check_result chk = aiter::mha_bwd_check(a);
            if (r != -1.f || chk.supported || chk.reason.find(c.field) == std::string::npos) {
                printf("FAIL %s: returned %g, reason '%s'\n", c.name, r, chk.reason.c_str());
                ++failed;
            } else {
                printf("ok %s: -1, %s\n", c.name, chk.reason.c_str());
            }
        } catch (const std::exception& e) {
            printf("FAIL %s: exception %s\n", c.name, e.what());
            ++failed;
        }
    }
    // Unaligned head dims / strides are supported (mha_bwd packs them): with the ci preset's
    // fp16 d64 masked instance present, the check accepts them and names that kernel.
    if (aiter::mha_bwd_check(valid_args()).candidates.size() > 0) {
        const struct {
            const char* name;
            std::function<void(aiter::mha_bwd_args&)> mutate;
        } packed[] = {
            {"hdim 59", [](auto& a) { a.hdim_q = a.hdim_v = 59; }},
            {"odd strides", [](auto& a) { a.hdim_q = a.hdim_v = 64; a.stride_v = a.stride_dv = 129; a.stride_q = 67; }},
        };
        for (const auto& c : packed) {
            aiter::mha_bwd_args a = valid_args();
            a.mask_type = 1, a.window_size_left = -1, a.window_size_right = 0;
            c.mutate(a);
            const aiter::mha_check_result chk = aiter::mha_bwd_check(a);
            bool has_d64_mask = false;
            for (const auto& n : chk.candidates) has_d64_mask |= n == "fmha_bwd_v2_fp16_d64_mask";
            if (!has_d64_mask) {
                printf("ok %s: skipped (no fp16 d64 masked instance)\n", c.name);
            } else if (!chk.supported || chk.kernel_name != "fmha_bwd_v2_fp16_d64_mask") {
                printf("FAIL %s: not supported: %s\n", c.name, chk.reason.c_str());
                ++failed;
            } else {
                printf("ok %s: supported (%s on packed copies)\n", c.name, chk.kernel_name.c_str());
            }
        }
    }
    printf("%d failed\n", failed);
    return failed ? 1 : 0;
}
