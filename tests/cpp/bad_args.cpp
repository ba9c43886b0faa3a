// Host-only, table-driven check of the arguments that could corrupt memory or give a silent
// wrong answer (overlapping outputs, misaligned pointers, offsets past 64 bits or the address
// space, lengths and grids past 32 bits), through mha_fwd, mha_fwd_splitkv and mha_bwd: every
// case must throw std::invalid_argument whose message names the field and says "expected", from
// the call and from its *_check companion alike (check and call agree). Also: valid edge cases
// (broadcast zero strides of inputs, extents of 1 with any stride, a workspace that is not used)
// must not throw. Runs without a GPU: validation comes before any CUDA call. Prints
// "ok <case>" / "FAIL <case>: ..." per case and "N passed, M failed" last.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "mha_bwd.h"
#include "mha_fwd.h"

#include "host_fixtures.h"

namespace {

alignas(16) char g_dummy[256];  // never dereferenced: validation fails (or is answered) before any launch
char* const kPtr = g_dummy;

int passed = 0, failed = 0;

void report(bool ok, const std::string& name, const std::string& why) {
    ++(ok ? passed : failed);
    std::printf("%s %s%s%s\n", ok ? "ok" : "FAIL", name.c_str(), why.empty() ? "" : ": ", why.c_str());
}

// Runs f; expects std::invalid_argument naming `field` (empty field: expects no exception).
void expect(const std::string& name, const char* field, const std::function<void()>& f) {
    try {
        f();
        report(field == nullptr, name, field ? std::string("no exception (expected one naming ") + field + ")" : "");
    } catch (const std::invalid_argument& e) {
        const std::string msg = e.what();
        if (field == nullptr) report(false, name, "unexpected invalid_argument: " + msg);
        else if (msg.find(field) == std::string::npos || msg.find("expected") == std::string::npos)
            report(false, name, "message does not name '" + std::string(field) + "': " + msg);
        else report(true, name, msg);
    } catch (const std::exception& e) {
        report(false, name, std::string("wrong exception type: ") + e.what());
    }
}

// fwd: b=2, hq=8, hk=2, s=64, d=128, BHSD, LSE stored.
aiter::mha_fwd_args fwd_args() {
    aiter::mha_fwd_args a;
    a.data_type = "bf16";
    a.batch = 2, a.nhead_q = 8, a.nhead_k = 2, a.hdim_q = 128, a.hdim_v = 128;
    a.seqlen_q = 64, a.seqlen_k = 64, a.max_seqlen_q = 64, a.scale_s = 0.125f;
    a.has_lse = true;
    a.q_ptr = a.k_ptr = a.v_ptr = a.o_ptr = a.lse_ptr = kPtr;
    a.stride_q = a.stride_k = a.stride_v = a.stride_o = 128;
    a.nhead_stride_q = a.nhead_stride_o = a.nhead_stride_k = a.nhead_stride_v = 64 * 128;
    a.batch_stride_q = a.batch_stride_o = 8 * 64 * 128;
    a.batch_stride_k = a.batch_stride_v = 2 * 64 * 128;
    a.nhead_stride_lse = 64, a.batch_stride_lse = 8 * 64;
    return a;
}

aiter::mha_fwd_splitkv_args splitkv_args() {
    aiter::mha_fwd_splitkv_args a;
    static_cast<aiter::mha_fwd_args&>(a) = fwd_args();
    a.seqlen_q = a.max_seqlen_q = 1;
    a.nhead_stride_q = a.nhead_stride_o = 128, a.batch_stride_q = a.batch_stride_o = 8 * 128;
    a.nhead_stride_lse = 1, a.batch_stride_lse = 8;
    a.num_splits = 4;
    a.o_acc_ptr = a.lse_acc_ptr = kPtr;
    a.stride_o_acc = 128, a.nhead_stride_o_acc = 128, a.batch_stride_o_acc = 8 * 128, a.split_stride_o_acc = 2 * 8 * 128;
    a.nhead_stride_lse_acc = 1, a.batch_stride_lse_acc = 8, a.split_stride_lse_acc = 16;
    return a;
}

aiter::mha_bwd_args bwd_args() { return bwd_fixture(kPtr); }

template <class Args>
using Mutate = std::function<void(Args&)>;

void fwd_case(const std::string& name, const char* field, const Mutate<aiter::mha_fwd_args>& m) {
    for (int v3 = 0; v3 < 2; ++v3) {
        aiter::mha_fwd_args a = fwd_args();
        m(a);
        a.use_asm_v3 = v3 == 1;
        const std::string n = "fwd" + std::string(v3 ? " v3" : "") + ": " + name;
        expect(n + " [mha_fwd]", field, [&] { aiter::mha_fwd(a, aiter::stream_config{}); });
        expect(n + " [mha_fwd_check]", field, [&] { aiter::mha_fwd_check(a); });
    }
}

void splitkv_case(const std::string& name, const char* field, const Mutate<aiter::mha_fwd_splitkv_args>& m) {
    aiter::mha_fwd_splitkv_args a = splitkv_args();
    m(a);
    const std::string n = "splitkv: " + name;
    expect(n + " [mha_fwd_splitkv]", field, [&] { aiter::mha_fwd_splitkv(a, aiter::stream_config{}); });
    expect(n + " [mha_fwd_splitkv_check]", field, [&] { aiter::mha_fwd_splitkv_check(a); });
    // The tables' check validates first (a valid call would read device memory: not here).
    if (field) expect(n + " [mha_fwd_splitkv_check_tables]", field, [&] { aiter::mha_fwd_splitkv_check_tables(a, {}); });
}

void bwd_case(const std::string& name, const char* field, const Mutate<aiter::mha_bwd_args>& m) {
    aiter::mha_bwd_args a = bwd_args();
    m(a);
    const std::string n = "bwd: " + name;
    expect(n + " [mha_bwd]", field, [&] { aiter::mha_bwd(a, aiter::stream_config{}); });
    expect(n + " [mha_bwd_check]", field, [&] { aiter::mha_bwd_check(a); });
}

constexpr int64_t kHuge = int64_t(1) << 60;

}  // namespace

int main() {
    // ---- forward: outputs that overlap, strides past 64 bits, misaligned pointers, lengths ---
    struct Stride {
        const char* field;
        int64_t aiter::mha_fwd_args::*member;
        bool output;
    };
    const Stride fwd_strides[] = {
        {"stride_q", &aiter::mha_fwd_args::stride_q, false}, {"stride_k", &aiter::mha_fwd_args::stride_k, false},
        {"stride_v", &aiter::mha_fwd_args::stride_v, false}, {"stride_o", &aiter::mha_fwd_args::stride_o, true},
        {"nhead_stride_q", &aiter::mha_fwd_args::nhead_stride_q, false},
        {"nhead_stride_k", &aiter::mha_fwd_args::nhead_stride_k, false},
        {"nhead_stride_v", &aiter::mha_fwd_args::nhead_stride_v, false},
        {"nhead_stride_o", &aiter::mha_fwd_args::nhead_stride_o, true},
        {"nhead_stride_lse", &aiter::mha_fwd_args::nhead_stride_lse, true},
        {"batch_stride_q", &aiter::mha_fwd_args::batch_stride_q, false},
        {"batch_stride_k", &aiter::mha_fwd_args::batch_stride_k, false},
        {"batch_stride_v", &aiter::mha_fwd_args::batch_stride_v, false},
        {"batch_stride_o", &aiter::mha_fwd_args::batch_stride_o, true},
        {"batch_stride_lse", &aiter::mha_fwd_args::batch_stride_lse, true},
    };
    for (const Stride& s : fwd_strides) {
        fwd_case(std::string(s.field) + " = 2^60", s.field, [&](auto& a) { a.*s.member = kHuge; });
        fwd_case(std::string(s.field) + " negative", s.field, [&](auto& a) { a.*s.member = -8; });
        if (s.output && std::string(s.field).rfind("stride_", 0) != 0)  // head / batch strides of O and LSE
            fwd_case(std::string(s.field) + " = 0 (outputs overlap)", s.field, [&](auto& a) { a.*s.member = 0; });
    }
    fwd_case("nhead_stride_o inside a row block", "nhead_stride_o", [](auto& a) { a.nhead_stride_o = 32 * 128; });
    fwd_case("batch_stride_o smaller than the heads", "batch_stride_o", [](auto& a) { a.batch_stride_o = 4 * 64 * 128; });
    fwd_case("nhead_stride_lse smaller than the rows", "nhead_stride_lse", [](auto& a) { a.nhead_stride_lse = 32; });
    fwd_case("batch_stride_lse = nhead_stride_lse", "batch_stride_lse", [](auto& a) { a.batch_stride_lse = 64; });
    fwd_case("o row stride 100 (rows overlap)", "stride_o", [](auto& a) { a.stride_o = 100; });
    fwd_case("odd o_ptr (bf16)", "o_ptr", [](auto& a) { a.o_ptr = kPtr + 1; });
    fwd_case("odd q_ptr (bf16)", "q_ptr", [](auto& a) { a.q_ptr = kPtr + 1; });
    fwd_case("odd k_ptr (bf16)", "k_ptr", [](auto& a) { a.k_ptr = kPtr + 3; });
    fwd_case("odd v_ptr (bf16)", "v_ptr", [](auto& a) { a.v_ptr = kPtr + 5; });
    fwd_case("lse_ptr not 4-byte aligned", "lse_ptr", [](auto& a) { a.lse_ptr = kPtr + 2; });
    fwd_case("seqlen_k_ptr not 4-byte aligned", "seqlen_k_ptr", [](auto& a) { a.seqlen_k_ptr = kPtr + 2; });
    fwd_case("cu_seqlen_q_ptr not 4-byte aligned", "cu_seqlen_q_ptr", [](auto& a) { a.cu_seqlen_q_ptr = kPtr + 1; });
    fwd_case("cu_seqlen_k_ptr not 4-byte aligned", "cu_seqlen_k_ptr", [](auto& a) { a.cu_seqlen_k_ptr = kPtr + 3; });
    fwd_case("seqstart_q_ptr not 4-byte aligned", "seqstart_q_ptr", [](auto& a) {
        a.is_group_mode = true, a.seqstart_q_ptr = kPtr + 2, a.seqstart_k_ptr = kPtr;
    });
    fwd_case("seqstart_k_ptr not 4-byte aligned", "seqstart_k_ptr", [](auto& a) {
        a.is_group_mode = true, a.seqstart_q_ptr = kPtr, a.seqstart_k_ptr = kPtr + 1;
    });
    fwd_case("seqlen_q near 2^31", "seqlen_q", [](auto& a) { a.seqlen_q = 0x7fffffff - 10; });
    fwd_case("seqlen_k near 2^31", "seqlen_k", [](auto& a) { a.seqlen_k = 0x7fffffff; });
    fwd_case("max_seqlen_q near 2^31", "max_seqlen_q", [](auto& a) { a.max_seqlen_q = 0x7fffffff - 100; });
    fwd_case("span past 2^48 bytes", "batch_stride_q", [](auto& a) { a.batch_stride_q = int64_t(1) << 47; });
    fwd_case("negative min_seqlen_q", "min_seqlen_q", [](auto& a) { a.min_seqlen_q = -1; });
    fwd_case("negative qscale_type", "qscale_type", [](auto& a) { a.qscale_type = -1; });
    fwd_case("how_v3_bf16_cvt 3", "how_v3_bf16_cvt", [](auto& a) { a.how_v3_bf16_cvt = 3; });
    // Valid edge cases: broadcast inputs (zero strides), one head with any head stride, no LSE.
    fwd_case("valid: K/V broadcast over heads and batches", nullptr, [](auto& a) {
        a.nhead_stride_k = a.nhead_stride_v = a.batch_stride_k = a.batch_stride_v = 0;
    });
    fwd_case("valid: one head, o head stride 0", nullptr, [](auto& a) {
        a.nhead_q = a.nhead_k = 1, a.nhead_stride_o = a.nhead_stride_lse = 0;
        a.batch_stride_o = a.batch_stride_q = 64 * 128, a.batch_stride_lse = 64;
    });
    fwd_case("valid: BSHD", nullptr, [](auto& a) {
        a.stride_q = a.stride_o = 8 * 128, a.nhead_stride_q = a.nhead_stride_o = 128;
    });
    fwd_case("valid: no LSE, its strides ignored", nullptr, [](auto& a) {
        a.has_lse = false, a.nhead_stride_lse = a.batch_stride_lse = 0;
    });
    fwd_case("valid: group mode ignores batch strides", nullptr, [](auto& a) {
        a.is_group_mode = true, a.seqstart_q_ptr = a.seqstart_k_ptr = kPtr;
        a.batch_stride_o = a.batch_stride_lse = 0, a.nhead_stride_lse = 2 * 64;
    });

    // ---- split-KV: the fwd fields plus the workspaces, tables, grid ------------------------
    splitkv_case("o_acc split stride 0", "split_stride_o_acc", [](auto& a) { a.split_stride_o_acc = 0; });
    splitkv_case("o_acc head stride 0", "nhead_stride_o_acc", [](auto& a) { a.nhead_stride_o_acc = 0; });
    splitkv_case("o_acc batch stride inside the heads", "batch_stride_o_acc", [](auto& a) { a.batch_stride_o_acc = 128; });
    splitkv_case("lse_acc batch stride 0", "batch_stride_lse_acc", [](auto& a) { a.batch_stride_lse_acc = 0; });
    splitkv_case("lse_acc head stride 0", "nhead_stride_lse_acc", [](auto& a) { a.nhead_stride_lse_acc = 0; });
    splitkv_case("lse_acc split stride = batch stride", "split_stride_lse_acc", [](auto& a) { a.split_stride_lse_acc = 8; });
    splitkv_case("o head stride 0", "nhead_stride_o", [](auto& a) { a.nhead_stride_o = 0; });
    splitkv_case("o batch stride 0", "batch_stride_o", [](auto& a) { a.batch_stride_o = 0; });
    splitkv_case("null lse_acc with 4 splits", "lse_acc_ptr", [](auto& a) { a.lse_acc_ptr = nullptr; });
    splitkv_case("null o_acc with 4 splits", "o_acc_ptr", [](auto& a) { a.o_acc_ptr = nullptr; });
    splitkv_case("o_acc_ptr not 4-byte aligned", "o_acc_ptr", [](auto& a) { a.o_acc_ptr = kPtr + 2; });
    splitkv_case("lse_acc_ptr not 4-byte aligned", "lse_acc_ptr", [](auto& a) { a.lse_acc_ptr = kPtr + 1; });
    splitkv_case("cache_batch_idx not 4-byte aligned", "cache_batch_idx", [](auto& a) { a.cache_batch_idx = kPtr + 2; });
    splitkv_case("block_table_ptr not 4-byte aligned", "block_table_ptr", [](auto& a) {
        a.block_table_ptr = kPtr + 1, a.page_block_size = 16, a.batch_stride_block_table = 4, a.num_pages = 8;
    });
    // Cache extents: required with a table / index; the K/V and table spans are taken over them.
    auto paged = [](aiter::mha_fwd_splitkv_args& a) {
        a.block_table_ptr = kPtr, a.page_block_size = 16, a.batch_stride_block_table = 4, a.num_pages = 8;
        a.batch_stride_k = a.batch_stride_v = 16 * 2 * 128, a.stride_k = a.stride_v = 2 * 128;
        a.nhead_stride_k = a.nhead_stride_v = 128;
    };
    splitkv_case("paged without num_pages", "num_pages", [&](auto& a) { paged(a), a.num_pages = 0; });
    splitkv_case("negative num_pages", "num_pages", [&](auto& a) { paged(a), a.num_pages = -3; });
    splitkv_case("cache_batch_idx without num_cache_batches", "num_cache_batches", [](auto& a) { a.cache_batch_idx = kPtr; });
    splitkv_case("paged cache_batch_idx without num_cache_batches", "num_cache_batches",
                 [&](auto& a) { paged(a), a.cache_batch_idx = kPtr; });
    splitkv_case("paged k span over num_pages past 2^48 bytes", "batch_stride_k",
                 [&](auto& a) { paged(a), a.num_pages = 1 << 20, a.batch_stride_k = int64_t(1) << 28; });
    splitkv_case("cache k span over num_cache_batches past 2^48 bytes", "batch_stride_k", [](auto& a) {
        a.cache_batch_idx = kPtr, a.num_cache_batches = 1 << 20, a.batch_stride_k = int64_t(1) << 28;
    });
    splitkv_case("block_table span past 2^48 bytes", "batch_stride_block_table",
                 [&](auto& a) { paged(a), a.batch_stride_block_table = int64_t(1) << 47; });
    splitkv_case("block_table rows over num_cache_batches past 2^48 bytes", "batch_stride_block_table", [&](auto& a) {
        paged(a), a.cache_batch_idx = kPtr, a.num_cache_batches = 1 << 20, a.batch_stride_block_table = int64_t(1) << 27;
    });
    splitkv_case("valid: cache of 1000 batches indexed by cache_batch_idx", nullptr,
                 [](auto& a) { a.cache_batch_idx = kPtr, a.num_cache_batches = 1000; });
    splitkv_case("num_splits 129", "num_splits", [](auto& a) { a.num_splits = 129; });
    splitkv_case("packed rows past 2^31", "seqlen_q", [](auto& a) {
        a.seqlen_q = a.max_seqlen_q = 1 << 28, a.num_splits = 1, a.nhead_k = 1;  // 2^28 x 8 rows
        a.stride_q = a.stride_o = 8 * 128, a.nhead_stride_q = a.nhead_stride_o = 128;
        a.batch_stride_q = a.batch_stride_o = int64_t(1 << 28) * 8 * 128, a.has_lse = false;
    });
    splitkv_case("k span past 2^48 bytes", "batch_stride_k", [](auto& a) { a.batch_stride_k = int64_t(1) << 47; });
    splitkv_case("odd q_ptr", "q_ptr", [](auto& a) { a.q_ptr = kPtr + 1; });
    splitkv_case("valid: one split, misaligned workspaces unused", nullptr, [](auto& a) {
        a.num_splits = 1, a.o_acc_ptr = kPtr + 2, a.lse_acc_ptr = nullptr, a.split_stride_o_acc = 3;
    });
    splitkv_case("valid: paged K/V", nullptr, [&](auto& a) { paged(a); });

    // ---- backward: every output's strides, D's layout, pointers, lengths --------------------
    struct BStride {
        const char* field;
        int64_t aiter::mha_bwd_args::*member;
    };
    const BStride bwd_out[] = {
        {"nhead_stride_dq", &aiter::mha_bwd_args::nhead_stride_dq}, {"batch_stride_dq", &aiter::mha_bwd_args::batch_stride_dq},
        {"nhead_stride_dk", &aiter::mha_bwd_args::nhead_stride_dk}, {"batch_stride_dk", &aiter::mha_bwd_args::batch_stride_dk},
        {"nhead_stride_dv", &aiter::mha_bwd_args::nhead_stride_dv}, {"batch_stride_dv", &aiter::mha_bwd_args::batch_stride_dv},
    };
    for (const BStride& s : bwd_out) {
        bwd_case(std::string(s.field) + " = 0 (outputs overlap)", s.field, [&](auto& a) { a.*s.member = 0; });
        bwd_case(std::string(s.field) + " = 2^60", s.field, [&](auto& a) { a.*s.member = kHuge; });
        bwd_case(std::string(s.field) + " inside the rows", s.field, [&](auto& a) { a.*s.member = 128; });
    }
    const BStride bwd_in[] = {
        {"stride_q", &aiter::mha_bwd_args::stride_q}, {"stride_k", &aiter::mha_bwd_args::stride_k},
        {"stride_v", &aiter::mha_bwd_args::stride_v}, {"stride_o", &aiter::mha_bwd_args::stride_o},
        {"stride_do", &aiter::mha_bwd_args::stride_do}, {"batch_stride_q", &aiter::mha_bwd_args::batch_stride_q},
        {"batch_stride_k", &aiter::mha_bwd_args::batch_stride_k}, {"batch_stride_v", &aiter::mha_bwd_args::batch_stride_v},
        {"batch_stride_o", &aiter::mha_bwd_args::batch_stride_o}, {"batch_stride_do", &aiter::mha_bwd_args::batch_stride_do},
        {"nhead_stride_q", &aiter::mha_bwd_args::nhead_stride_q}, {"nhead_stride_do", &aiter::mha_bwd_args::nhead_stride_do},
    };
    for (const BStride& s : bwd_in) bwd_case(std::string(s.field) + " = 2^60", s.field, [&](auto& a) { a.*s.member = kHuge; });
    bwd_case("valid: LSE head stride 0 (an input broadcast; D is the library's own layout)", nullptr,
             [](auto& a) { a.nhead_stride_lsed = 0; });
    bwd_case("LSE head stride 0 given d_ptr (D would overlap)", "nhead_stride_lsed",
             [](auto& a) { a.d_ptr = kPtr, a.nhead_stride_lsed = 0; });
    bwd_case("LSE batch stride inside the heads, given d_ptr", "batch_stride_lsed",
             [](auto& a) { a.d_ptr = kPtr, a.batch_stride_lsed = 64; });
    bwd_case("batch 0 with a batch_stride_lsed (workspace size)", nullptr, [](auto& a) { a.batch = 0; });
    bwd_case("odd dq_ptr", "dq_ptr", [](auto& a) { a.dq_ptr = kPtr + 1; });
    bwd_case("odd dk_ptr", "dk_ptr", [](auto& a) { a.dk_ptr = kPtr + 1; });
    bwd_case("odd dv_ptr", "dv_ptr", [](auto& a) { a.dv_ptr = kPtr + 3; });
    bwd_case("odd do_ptr", "do_ptr", [](auto& a) { a.do_ptr = kPtr + 1; });
    bwd_case("odd q_ptr", "q_ptr", [](auto& a) { a.q_ptr = kPtr + 1; });
    bwd_case("lse_ptr not 4-byte aligned", "lse_ptr", [](auto& a) { a.lse_ptr = kPtr + 2; });
    bwd_case("d_ptr not 4-byte aligned", "d_ptr", [](auto& a) { a.d_ptr = kPtr + 2; });
    bwd_case("seqlen_q_ptr not 4-byte aligned", "seqlen_q_ptr", [](auto& a) { a.seqlen_q_ptr = kPtr + 2; });
    bwd_case("seqlen_k_ptr not 4-byte aligned", "seqlen_k_ptr", [](auto& a) { a.seqlen_k_ptr = kPtr + 1; });
    bwd_case("cu_seqlen_k_ptr not 4-byte aligned", "cu_seqlen_k_ptr", [](auto& a) { a.cu_seqlen_k_ptr = kPtr + 1; });
    bwd_case("seqlen_q near 2^31", "seqlen_q", [](auto& a) { a.seqlen_q = 0x7fffffff; });
    bwd_case("max_seqlen_k near 2^31", "max_seqlen_k", [](auto& a) { a.max_seqlen_k = 0x7fffffff - 1; });
    bwd_case("p_undrop 0", "p_undrop", [](auto& a) { a.p_undrop = 0.f; });
    bwd_case("valid: K/V broadcast over batches", nullptr, [](auto& a) { a.batch_stride_k = a.batch_stride_v = 0; });
    bwd_case("valid: fp16 with v3_bf16_cvt 1 (bf16 only)", nullptr, [](auto& a) { a.v3_bf16_cvt = 1; });

    // check and call agree on the v3 answer of the backward.
    {
        aiter::mha_bwd_args a = bwd_args();
        a.v3_api_check = true;
        const bool call = aiter::mha_bwd(a, aiter::stream_config{}) == -1.f;
        const aiter::mha_check_result r = aiter::mha_bwd_check(a);
        report(call && !r.supported && r.reason.find("v3") != std::string::npos, "bwd: v3_api_check [check = call]",
               r.reason);
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
