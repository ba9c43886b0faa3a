// Host check of the backward's dQ accumulator layout helpers (src/bwd/bwd_params.h):
//  * group mode: for many batches of lengths (0, 1, primes, multiples of the tile), each batch's
//    ⌈sq_b / block_m⌉ tiles start at or after the previous batch's last tile ends, and every tile
//    lies inside bwd_acc_group_rows(total_q, batch, block_m) rows;
//  * inside a tile: (chunk c, pair j, thread t, element e) -> bwd_acc_pair_offset(...) + e visits
//    every float of the tile exactly once, and a warp's pair j covers 64 contiguous floats.
// Prints "ok <case>" / "FAIL <case>: ..." per case and "<n> failed" last.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bwd/bwd_params.h"

namespace {

int failures = 0;

void report(const std::string& name, const std::string& why) {
    if (why.empty()) {
        std::printf("ok %s\n", name.c_str());
    } else {
        std::printf("FAIL %s: %s\n", name.c_str(), why.c_str());
        ++failures;
    }
}

std::string check_group(const std::vector<int>& lens, int block_m) {
    int64_t start = 0, prev_end = 0;
    const int batch = int(lens.size());
    int64_t total = 0;
    for (int l : lens) total += l;
    const int64_t rows = aiter::bwd::bwd_acc_group_rows(total, batch, block_m);
    for (int b = 0; b < batch; ++b) {
        const int64_t row0 = aiter::bwd::bwd_acc_group_row0(start, b, block_m);
        const int64_t end  = row0 + (int64_t(lens[b]) + block_m - 1) / block_m * block_m;
        if (row0 % block_m != 0) return "batch " + std::to_string(b) + " does not start on a tile";
        if (row0 < prev_end) return "batch " + std::to_string(b) + " overlaps the previous batch's tiles";
        if (end > rows) return "batch " + std::to_string(b) + " ends at row " + std::to_string(end) + " > " + std::to_string(rows);
        prev_end = end;
        start += lens[b];
    }
    return "";
}

std::string check_tile(int block_m, int hdim, int chunk, int threads) {
    const int floats = block_m * hdim, chunk_floats = block_m * chunk;
    const int pairs = chunk_floats / threads / 2;
    std::vector<int> seen(floats, 0);
    for (int c = 0; c < hdim / chunk; ++c)
        for (int j = 0; j < pairs; ++j)
            for (int t = 0; t < threads; ++t) {
                const int64_t o = aiter::bwd::bwd_acc_pair_offset(c, j, t, chunk_floats, threads);
                if (o < 0 || o + 1 >= floats) return "offset out of the tile";
                if (o % 2 != 0) return "pair not 8-byte aligned";
                if (t % 32 != 0 && o != aiter::bwd::bwd_acc_pair_offset(c, j, t - 1, chunk_floats, threads) + 2)
                    return "a warp's pair is not contiguous";
                ++seen[o];
                ++seen[o + 1];
            }
    for (int i = 0; i < floats; ++i)
        if (seen[i] != 1) return "float " + std::to_string(i) + " visited " + std::to_string(seen[i]) + " times";
    return "";
}

}  // namespace

int main() {
    std::mt19937 rng(7);
    const std::vector<std::vector<int>> fixed = {{0}, {1}, {64}, {65}, {0, 0, 0}, {1, 1, 1, 1}, {127, 129, 63, 300},
                                                 {1, 64, 65, 130, 7, 200}, {128, 0, 128, 1}, {4097, 3, 0, 255}};
    for (int bm : {64, 128}) {
        for (size_t i = 0; i < fixed.size(); ++i)
            report("group bm=" + std::to_string(bm) + " fixed " + std::to_string(i), check_group(fixed[i], bm));
        for (int r = 0; r < 20; ++r) {
            std::vector<int> lens(1 + rng() % 12);
            for (int& l : lens) l = rng() % 3 == 0 ? int(rng() % 3) : int(rng() % 1000);
            report("group bm=" + std::to_string(bm) + " random " + std::to_string(r), check_group(lens, bm));
        }
    }
    // (block_m, hdim bucket, dQ chunk, threads) of the v2 backward tiles (kernels/bwd_v2/tile.h)
    const int tiles[][4] = {{128, 32, 32, 256}, {128, 64, 64, 256}, {64, 128, 128, 256}, {64, 256, 128, 256}};
    for (auto& t : tiles)
        report("tile " + std::to_string(t[0]) + "x" + std::to_string(t[1]), check_tile(t[0], t[1], t[2], t[3]));
    std::printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
