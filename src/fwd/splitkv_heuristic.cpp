#include "fwd/splitkv_heuristic.h"

#include <algorithm>

namespace aiter::fwd {

int splitkv_heuristic(const SplitkvWork& w) {
    const int64_t units = w.batch * w.nhead_k * w.m_blocks;
    const int64_t slots = int64_t(std::max(1, w.num_sms)) * std::max(1, w.ctas_per_sm);
    if (units <= 0 || units >= slots) return 1;
    const int64_t max_n = std::min<int64_t>(kMaxSplits, w.key_tiles / kMinTilesPerSplit);
    if (max_n <= 1) return 1;
    auto eff = [&](int64_t n) {
        const int64_t ctas  = units * n;
        const int64_t waves = (ctas + slots - 1) / slots;
        return double(ctas) / double(waves * slots);
    };
    double best = 0;
    for (int64_t n = 1; n <= max_n; ++n) best = std::max(best, eff(n));
    for (int64_t n = 1; n <= max_n; ++n)
        if (eff(n) >= 0.95 * best) return int(n);
    return 1;
}

}  // namespace aiter::fwd
