#include "fwd/splitkv_heuristic.h"

#include <algorithm>

namespace aiter::fwd {
namespace {

int64_t units_of(const SplitkvWork& w) { return w.batch * w.nhead_k * w.m_blocks; }  // CTAs unsplit
int64_t slots_of(const SplitkvWork& w) { return int64_t(std::max(1, w.num_sms)) * std::max(1, w.ctas_per_sm); }

}  // namespace

int splitkv_heuristic(const SplitkvWork& w) {
    const int64_t units = units_of(w);
    if (units <= 0) return 1;
    const int64_t sms   = std::max(1, w.num_sms);
    const int64_t slots = units <= sms ? sms * std::min(std::max(1, w.ctas_per_sm), kMaxSplitCtasPerSm) : slots_of(w);
    const int64_t tiles = w.key_tiles;
    const int64_t max_n = std::min<int64_t>(kMaxSplits, tiles / kMinTilesPerSplit);
    if (max_n <= 1) return 1;
    auto waves = [&](int64_t ctas) { return (ctas + slots - 1) / slots; };
    int64_t best_n = 1, best_cost = waves(units) * (tiles + kSplitOverheadTiles);
    for (int64_t n = 2; n <= max_n; ++n) {
        const int64_t per   = (tiles + n - 1) / n;    // tiles of the longest split
        if (units >= slots && per < kMinTilesPerSplitFull) break;  // per only shrinks as n grows
        const int64_t n_eff = (tiles + per - 1) / per;  // splits that get a tile
        const int64_t cost  = waves(units * n_eff) * (per + kSplitOverheadTiles);
        if (100 * cost < 97 * best_cost) best_cost = cost, best_n = n_eff;  // > 3% better
    }
    return int(best_n);
}

bool splitkv_prefer_deep(const SplitkvWork& w, int splits) { return splits == 1 && units_of(w) > slots_of(w); }

}  // namespace aiter::fwd
