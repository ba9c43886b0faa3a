// Smallest user of libmha_fwd.so through CMake's aiter::mha_fwd target. Runs without a GPU:
// argument validation happens before any CUDA call, and listing instances touches no device.
#include <cstdio>
#include <stdexcept>

#include "mha_fwd.h"
#if defined(CONSUMER_WITH_BWD)
#include "mha_bwd.h"
#endif

int main() {
    std::printf("compiled forward instances:\n");
    for (const std::string& name : aiter::mha_fwd_instances()) std::printf("  %s\n", name.c_str());
#if defined(CONSUMER_WITH_BWD)
    std::printf("compiled backward instances:\n");
    for (const std::string& name : aiter::mha_bwd_instances()) std::printf("  %s\n", name.c_str());
#endif

    aiter::mha_fwd_args args;   // q_ptr etc. stay null: invalid on purpose
    args.data_type = "fp16";
    args.batch     = 1;
    args.seqlen_q  = 128;
    args.seqlen_k  = 128;
    args.hdim_q    = 64;
    args.hdim_v    = 64;
    args.nhead_q   = 3;
    args.nhead_k   = 2;         // invalid: nhead_q % nhead_k != 0
    args.scale_s   = 0.125f;

    int caught = 0;
    try {
        aiter::mha_fwd_check(args);
        std::printf("mha_fwd_check: accepted (unexpected)\n");
    } catch (const std::invalid_argument& e) {
        std::printf("mha_fwd_check: invalid_argument: %s\n", e.what());
        ++caught;
    }
    try {
        aiter::mha_fwd(args, aiter::stream_config{});
        std::printf("mha_fwd: accepted (unexpected)\n");
    } catch (const std::invalid_argument& e) {
        std::printf("mha_fwd: invalid_argument: %s\n", e.what());
        ++caught;
    }
    return caught == 2 ? 0 : 1;
}
