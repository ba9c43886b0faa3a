// Host-only checks of aiter::mha_fwd_splitkv (no GPU needed):
//   * invalid arguments throw std::invalid_argument naming the field (mha_fwd_splitkv,
//     mha_fwd_splitkv_check and mha_fwd_splitkv_num_splits alike);
//   * unsupported-but-valid arguments return -1 / a reason;
//   * the num_splits heuristic (src/fwd/splitkv_heuristic.cpp, compiled in) and the API's
//     answer: never 0, not always 1, 1 when the GPU is already full, <= 128.
// Prints "ok <case>: ..." or "FAIL <case>: ..." per case and "<n> failed" last.
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "fwd/splitkv_heuristic.h"
#include "mha_fwd.h"

namespace {

int failures = 0;

void report(bool ok, const std::string& name, const std::string& msg) {
    std::printf("%s %s: %s\n", ok ? "ok" : "FAIL", name.c_str(), msg.c_str());
    if (!ok) ++failures;
}

aiter::mha_fwd_splitkv_args valid_args() {
    static char dummy[256] __attribute__((aligned(16)));
    static int table[64];
    aiter::mha_fwd_splitkv_args a;
    a.data_type = "bf16";
    a.batch = 2; a.nhead_q = 32; a.nhead_k = 8; a.hdim_q = 128; a.hdim_v = 128;
    a.seqlen_q = 1; a.seqlen_k = 4096; a.max_seqlen_q = 1; a.scale_s = 0.088f;
    a.q_ptr = a.k_ptr = a.v_ptr = a.o_ptr = a.lse_ptr = dummy;
    a.stride_q = a.stride_o = 128; a.nhead_stride_q = a.nhead_stride_o = 128;
    a.batch_stride_q = a.batch_stride_o = 32 * 128;
    // paged: [pages, 16, hk, d]
    a.block_table_ptr = table; a.page_block_size = 16; a.batch_stride_block_table = 256; a.num_pages = 512;
    a.stride_k = a.stride_v = 8 * 128; a.nhead_stride_k = a.nhead_stride_v = 128;
    a.batch_stride_k = a.batch_stride_v = 16 * 8 * 128;
    a.num_splits = 4;
    a.o_acc_ptr = a.lse_acc_ptr = dummy;
    a.stride_o_acc = 128; a.nhead_stride_o_acc = 128; a.batch_stride_o_acc = 32 * 128;
    a.split_stride_o_acc = 2 * 32 * 128; a.nhead_stride_lse_acc = 1; a.batch_stride_lse_acc = 32;
    a.split_stride_lse_acc = 64;
    return a;
}

void expect_invalid(const char* name, const char* field, const std::function<void(aiter::mha_fwd_splitkv_args&)>& mutate) {
    aiter::mha_fwd_splitkv_args a = valid_args();
    mutate(a);
    const std::function<void()> calls[] = {
        [&] { aiter::mha_fwd_splitkv(a, aiter::stream_config{}); },
        [&] { aiter::mha_fwd_splitkv_check(a); },
    };
    for (int k = 0; k < 2; ++k) {
        const std::string label = std::string(name) + (k == 0 ? " [mha_fwd_splitkv]" : " [mha_fwd_splitkv_check]");
        try {
            calls[k]();
            // the workspace check runs in mha_fwd_splitkv only
            if (k == 1 && std::string(field).find("_acc") != std::string::npos) continue;
            report(false, label, "no exception");
        } catch (const std::invalid_argument& e) {
            const std::string msg = e.what();
            report(msg.find(field) != std::string::npos && msg.find("mha_fwd_splitkv") == 0, label, msg);
        } catch (const std::exception& e) {
            report(false, label, std::string("wrong exception type: ") + e.what());
        }
    }
}

}  // namespace

int main() {
    expect_invalid("num_splits 129", "num_splits", [](auto& a) { a.num_splits = 129; });
    expect_invalid("num_splits -1", "num_splits", [](auto& a) { a.num_splits = -1; });
    expect_invalid("page 24", "page_block_size", [](auto& a) { a.page_block_size = 24; });
    expect_invalid("page 8", "page_block_size", [](auto& a) { a.page_block_size = 8; });
    expect_invalid("page without table", "page_block_size", [](auto& a) { a.block_table_ptr = nullptr; });
    expect_invalid("block table stride 0", "batch_stride_block_table", [](auto& a) { a.batch_stride_block_table = 0; });
    expect_invalid("null o_acc", "o_acc_ptr", [](auto& a) { a.o_acc_ptr = nullptr; });
    expect_invalid("null lse_acc", "lse_acc_ptr", [](auto& a) { a.lse_acc_ptr = nullptr; });
    expect_invalid("negative stride_o_acc", "stride_o_acc", [](auto& a) { a.stride_o_acc = -1; });
    expect_invalid("nhead_k 5", "nhead_k", [](auto& a) { a.nhead_k = 5; });
    expect_invalid("null k", "k_ptr", [](auto& a) { a.k_ptr = nullptr; });

    // Valid but unsupported: -1 and a reason (no launch happens before the selection).
    {
        aiter::mha_fwd_splitkv_args a = valid_args();
        a.hdim_q = a.hdim_v = 60;
        a.stride_q = a.stride_o = 64;
        const auto r = aiter::mha_fwd_splitkv_check(a);
        report(!r.supported && r.reason.find("multiples of 8") != std::string::npos, "hdim 60 unsupported", r.reason);
        const float ms = aiter::mha_fwd_splitkv(a, aiter::stream_config{});
        report(ms == -1.f, "hdim 60 returns -1", std::to_string(ms));
        a = valid_args();
        a.is_group_mode = true;
        static int seq[3];
        a.seqstart_q_ptr = a.seqstart_k_ptr = seq;
        const auto g = aiter::mha_fwd_splitkv_check(a);
        report(!g.supported && g.reason.find("group mode") != std::string::npos, "group mode unsupported", g.reason);
    }

    // The heuristic.
    using aiter::fwd::SplitkvWork;
    auto h = [](int64_t b, int64_t hk, int64_t mblk, int64_t tiles) {
        SplitkvWork w;
        w.batch = b, w.nhead_k = hk, w.m_blocks = mblk, w.key_tiles = tiles, w.num_sms = 132, w.ctas_per_sm = 2;
        return aiter::fwd::splitkv_heuristic(w);
    };
    const int b1_32k = h(1, 8, 1, 32768 / 64), b8_4k = h(8, 8, 1, 4096 / 64), b64 = h(64, 8, 1, 2048);
    report(b1_32k > 16 && b1_32k <= 128, "b=1 hk=8 sk=32k splits a lot", std::to_string(b1_32k));
    report(b8_4k > 1, "b=8 hk=8 sk=4k splits", std::to_string(b8_4k));
    report(b64 == 1, "b=64 hk=8 fills the GPU without splits", std::to_string(b64));
    report(h(1, 8, 1, 1) == 1, "one key tile never splits", std::to_string(h(1, 8, 1, 1)));
    report(h(1, 1, 1, 100000) <= 128, "at most 128 splits", std::to_string(h(1, 1, 1, 100000)));
    report(h(0, 8, 1, 100) == 1, "empty problem gives 1", std::to_string(h(0, 8, 1, 100)));
    // Whole-tile splits: 64 tiles over 8 kv heads on 264 slots -> 32 splits of 2 tiles (31 would
    // leave 9 splits without a tile and give the rest 3), and no answer ever launches a split
    // without a tile.
    report(h(1, 8, 1, 64) == 32, "b=1 hk=8 sk=4k: 32 splits of 2 tiles", std::to_string(h(1, 8, 1, 64)));
    {
        int bad = 0;
        std::string first;
        for (int64_t b : {1, 2, 3, 5, 8, 16, 33})
            for (int64_t hk : {1, 2, 8})
                for (int64_t tiles : {2, 3, 7, 16, 63, 64, 65, 100, 511, 512, 2048, 5000}) {
                    const int64_t n = h(b, hk, 1, tiles), per = (tiles + n - 1) / n;
                    if (n < 1 || n > 128 || (tiles + per - 1) / per != n) {
                        if (!bad++) first = std::to_string(b) + "," + std::to_string(hk) + "," + std::to_string(tiles) +
                                            " -> " + std::to_string(n);
                    }
                }
        report(bad == 0, "every split gets a key tile (b, hk, tiles)", bad ? first : "all");
    }
    // The deep tile (d128: 3 stages, 2 CTAs per SM) instead of the default one (2 stages, 3 per
    // SM on 132 SMs): only for unsplit work that overfills a wave of the default tile.
    {
        auto deep = [](int64_t b, int64_t tiles, int* splits) {
            SplitkvWork w;
            w.batch = b, w.nhead_k = 8, w.m_blocks = 1, w.key_tiles = tiles, w.num_sms = 132, w.ctas_per_sm = 3;
            *splits = aiter::fwd::splitkv_heuristic(w);
            return aiter::fwd::splitkv_prefer_deep(w, *splits);
        };
        int n = 0;
        report(deep(64, 16, &n) && n == 1, "b=64 sk=1k: unsplit, 512 CTAs > 396 slots -> deep tile", std::to_string(n));
        report(!deep(64, 64, &n) && n == 3, "b=64 sk=4k: 3 splits on the default tile", std::to_string(n));
        report(!deep(64, 2048, &n) && n > 1, "b=64 sk=128k: splits on the default tile", std::to_string(n));
        report(!deep(8, 16, &n) && n > 1, "b=8 sk=1k: splits on the default tile", std::to_string(n));
        report(!deep(1, 2048, &n), "b=1 sk=128k: default tile", std::to_string(n));
        report(!deep(32, 16, &n), "b=32 sk=1k (256 CTAs fit one wave): default tile", std::to_string(n));
        SplitkvWork w;
        w.batch = 64, w.nhead_k = 8, w.m_blocks = 1, w.key_tiles = 16, w.num_sms = 132, w.ctas_per_sm = 3;
        report(!aiter::fwd::splitkv_prefer_deep(w, 2), "an explicit split count > 1 keeps the default tile", "2");
    }
    // Work below one CTA per SM is split onto at most two CTAs per SM even when three fit.
    {
        auto h3 = [](int64_t b, int64_t tiles) {
            SplitkvWork w;
            w.batch = b, w.nhead_k = 8, w.m_blocks = 1, w.key_tiles = tiles, w.num_sms = 132, w.ctas_per_sm = 3;
            return aiter::fwd::splitkv_heuristic(w);
        };
        report(h3(1, 512) == 32, "b=1 sk=32k, 3 CTAs/SM fit: 32 splits (256 CTAs, not 47 / 376)", std::to_string(h3(1, 512)));
        report(h3(1, 2048) == 32, "b=1 sk=128k: 32 splits", std::to_string(h3(1, 2048)));
        report(h3(8, 512) == 4, "b=8 sk=32k: 4 splits (256 CTAs)", std::to_string(h3(8, 512)));
        report(h3(16, 64) == 2, "b=16 sk=4k: 2 splits", std::to_string(h3(16, 64)));
        report(h3(64, 64) == 3, "b=64 sk=4k (512 units > 132 SMs): 3 splits on 396 slots as before", std::to_string(h3(64, 64)));
    }
    {
        aiter::mha_fwd_splitkv_args a = valid_args();
        a.num_splits = 0;
        a.batch = 1;
        a.seqlen_k = 32768;
        const int n = aiter::mha_fwd_splitkv_num_splits(a);
        report(n > 1 && n <= 128, "API heuristic, b=1 sk=32k", std::to_string(n));
        a.num_splits = 7;
        report(aiter::mha_fwd_splitkv_num_splits(a) == 7, "API returns an explicit num_splits", "7");
    }
    std::printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
