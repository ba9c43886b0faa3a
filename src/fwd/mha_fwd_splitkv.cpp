// aiter::mha_fwd_splitkv: validation -> plan (num_splits from the argument or the heuristic,
// and whether the d128 deep tile suits it) -> key -> table lookup + can_run -> launch of the
// split kernel (+ the combine kernel when splits > 1).
// See include/mha_fwd_splitkv.h for the contract.
#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/attn_args.h"
#include "common/tensor_check.h"
#include "fwd/host_common.h"
#include "fwd/splitkv_heuristic.h"
#include "fwd/splitkv_key.h"
#include "fwd/validate.h"
#include "kernels/fwd_splitkv/tile.h"
#include "mha_fwd.h"

namespace aiter {
namespace fwd {
namespace {

constexpr const char* kApi = "mha_fwd_splitkv";

int splitkv_bucket(const mha_fwd_splitkv_args& a) {
    return host::hdim_bucket(a.hdim_q, a.hdim_v, {{64, 64}, {128, 128}, {256, 256}}).first;
}

SplitkvKey key_of(const mha_fwd_splitkv_args& a) {
    return SplitkvKey{host::dtype_of(a), splitkv_bucket(a), host::mask_of(a)};
}

std::string key_str(const SplitkvKey& k) {
    return std::string(k.dtype == DType::bf16 ? "bf16" : "fp16") + " hdim<=" + std::to_string(k.hdim) +
           (k.mask == MaskKind::window ? " masked" : " unmasked");
}

bool is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

// Split-KV specific argument checks (the mha_fwd ones run first).
void validate_splitkv(const mha_fwd_splitkv_args& a) {
    // The cache's extents first: the K/V address ranges are checked against them.
    const bool paged = a.block_table_ptr != nullptr;
    if (paged && a.num_pages <= 0)
        fail_arg(kApi, "num_pages", "the page count of the paged K/V cache (>= 1) when block_table_ptr is set",
                 arg_str(a.num_pages));
    if (a.cache_batch_idx && a.num_cache_batches <= 0)
        fail_arg(kApi, "num_cache_batches",
                 std::string("the batch count of the K/V cache (>= 1) when cache_batch_idx is set") +
                     (paged ? " (paged: the rows of block_table)" : ""),
                 arg_str(a.num_cache_batches));
    KvExtents kv{a.cache_batch_idx ? a.num_cache_batches : a.batch, a.seqlen_k};
    if (paged) kv = {a.num_pages, a.page_block_size};
    validate_fwd_args(a, kApi, paged || a.cache_batch_idx ? &kv : nullptr);
    if (a.num_splits < 0 || a.num_splits > kMaxSplits)
        fail_arg(kApi, "num_splits", "0 (heuristic) or 1.." + std::to_string(kMaxSplits), arg_str(a.num_splits));
    if (a.block_table_ptr != nullptr) {
        if (!is_pow2(a.page_block_size) || a.page_block_size < 16)
            fail_arg(kApi, "page_block_size", "a power of two >= 16 when block_table_ptr is set (16, 32, 64, ...)",
                     arg_str(a.page_block_size));
        require_nonneg(kApi, a.batch_stride_block_table, "batch_stride_block_table");
        if (a.batch > 1 && a.batch_stride_block_table == 0)
            fail_arg(kApi, "batch_stride_block_table", "> 0 (elements between block_table rows)", "0");
        host::require_int32_array(kApi, a.block_table_ptr, "block_table_ptr");
        // Its rows: one per cache batch (or per sequence), ⌈seqlen_k / page⌉ entries each.
        host::check_tensor(kApi, {"block_table", "block_table_ptr", a.block_table_ptr, 4, false,
                                  {{"batch_stride_block_table", a.cache_batch_idx ? a.num_cache_batches : a.batch,
                                    a.batch_stride_block_table},
                                   {"seqlen_k / page_block_size", (int64_t(a.seqlen_k) + a.page_block_size - 1) / a.page_block_size, 1}}});
    } else if (a.page_block_size != 0) {
        fail_arg(kApi, "page_block_size", "0 when block_table_ptr is null (K/V not paged)",
                 arg_str(a.page_block_size));
    }
    const struct { const char* name; int64_t v; } strides[] = {
        {"split_stride_lse_acc", a.split_stride_lse_acc}, {"split_stride_o_acc", a.split_stride_o_acc},
        {"nhead_stride_lse_acc", a.nhead_stride_lse_acc}, {"nhead_stride_o_acc", a.nhead_stride_o_acc},
        {"batch_stride_lse_acc", a.batch_stride_lse_acc}, {"batch_stride_o_acc", a.batch_stride_o_acc},
        {"stride_o_acc", a.stride_o_acc},
    };
    for (const auto& s : strides) require_nonneg(kApi, s.v, s.name);
    host::require_int32_array(kApi, a.cache_batch_idx, "cache_batch_idx");
}

// The split count's consequences: the kernel packs seqlen_q x (nhead_q / nhead_k) rows per kv
// head in 32 bits and its grid has (row blocks x splits) CTAs along x; the workspaces are
// needed when splits > 1.
void validate_workspaces(const mha_fwd_splitkv_args& a, int splits) {
    const int64_t rows = int64_t(a.seqlen_q) * (a.nhead_q / a.nhead_k);
    if (rows > 0x7fffffff)
        fail_arg(kApi, "seqlen_q", "at most 2^31 - 1 packed rows (seqlen_q x nhead_q / nhead_k = " + std::to_string(rows) + ")",
                 arg_str(a.seqlen_q));
    const int64_t ctas = (rows + 15) / 16 * splits;
    if (ctas > 0x7fffffff)
        fail_arg(kApi, "num_splits", "a split count whose grid (row blocks x splits = " + std::to_string(ctas) +
                                         ") stays within 2^31 - 1 CTAs", arg_str(splits));
    if (splits <= 1 || a.batch == 0 || a.seqlen_q == 0) return;
    const std::string why = " (num_splits resolves to " + std::to_string(splits) +
                            " for these arguments; size it with mha_fwd_splitkv_num_splits)";
    require_ptr(kApi, a.lse_acc_ptr, "lse_acc_ptr", "fp32 workspace [num_splits, batch, nhead_q, seqlen_q]" + why);
    require_ptr(kApi, a.o_acc_ptr, "o_acc_ptr", "fp32 workspace [num_splits, batch, nhead_q, seqlen_q, hdim_v]" + why);
    if (a.split_stride_o_acc == 0) fail_arg(kApi, "split_stride_o_acc", "> 0 when num_splits > 1", "0");
    if (a.split_stride_lse_acc == 0) fail_arg(kApi, "split_stride_lse_acc", "> 0 when num_splits > 1", "0");
    if (a.seqlen_q > 1 && a.stride_o_acc < a.hdim_v)
        fail_arg(kApi, "stride_o_acc", "a row stride >= hdim_v (" + std::to_string(a.hdim_v) + ")",
                 arg_str(a.stride_o_acc));
    host::check_tensor(kApi, {"o_acc", "o_acc_ptr", a.o_acc_ptr, 4, true,
                              {{"split_stride_o_acc", splits, a.split_stride_o_acc},
                               {"batch_stride_o_acc", a.batch, a.batch_stride_o_acc},
                               {"nhead_stride_o_acc", a.nhead_q, a.nhead_stride_o_acc},
                               {"stride_o_acc", a.seqlen_q, a.stride_o_acc},
                               {"hdim_v", a.hdim_v, 1}}});
    host::check_tensor(kApi, {"lse_acc", "lse_acc_ptr", a.lse_acc_ptr, 4, true,
                              {{"split_stride_lse_acc", splits, a.split_stride_lse_acc},
                               {"batch_stride_lse_acc", a.batch, a.batch_stride_lse_acc},
                               {"nhead_stride_lse_acc", a.nhead_q, a.nhead_stride_lse_acc},
                               {"seqlen_q", a.seqlen_q, 1}}});
}

int num_sms() {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
        cudaGetLastError();
        return 132;  // no device: answer as for an H100/H200
    }
    return v;
}

int smem_per_sm() {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev) != cudaSuccess) {
        cudaGetLastError();
        return 228 * 1024;
    }
    return v;
}

// The work of a call measured in the bucket's default tile (the heuristic's input).
SplitkvWork work_of(const mha_fwd_splitkv_args& a) {
    const int hdim = splitkv_bucket(a);
    const SplitkvTile t = splitkv_tile(hdim);
    SplitkvWork w;
    w.batch = a.batch;
    w.nhead_k = a.nhead_k;
    w.m_blocks = (int64_t(a.seqlen_q) * (a.nhead_q / a.nhead_k) + t.block_m - 1) / t.block_m;
    w.key_tiles = (int64_t(a.seqlen_k) + t.block_n - 1) / t.block_n;
    w.num_sms = num_sms();
    w.ctas_per_sm = std::max(1, smem_per_sm() / (splitkv_smem_bytes(hdim) + 1024));
    return w;
}

// How a call runs: its split count (num_splits, or the heuristic's for 0) and whether a deep
// tile suits it (explicit num_splits too; used where the bucket has one compiled).
struct SplitkvPlan {
    int splits;
    bool deep;
};

SplitkvPlan plan_of(const mha_fwd_splitkv_args& a) {
    const SplitkvWork w = work_of(a);
    const int splits = a.num_splits > 0 ? a.num_splits : splitkv_heuristic(w);
    return {splits, splitkv_prefer_deep(w, splits)};
}

std::vector<std::string> instance_names() {
    std::vector<std::string> v = splitkv_table().names();
    for (const std::string& n : splitkv_combine_table().names()) v.push_back(n);
    return v;
}

std::string unsupported_splitkv(const mha_fwd_splitkv_args& a, int splits) {
    if (std::string why = unsupported_feature(a); !why.empty()) return why;
    if (a.is_group_mode) return "group mode is not supported by mha_fwd_splitkv yet (batch mode with seqlen_k_ptr is)";
    if (a.seqstart_q_ptr || a.seqstart_k_ptr) return "seqstart_q_ptr / seqstart_k_ptr (group mode) are not supported by mha_fwd_splitkv";
    if (a.hdim_q % 8 != 0 || a.hdim_v % 8 != 0)
        return "hdim_q " + std::to_string(a.hdim_q) + " / hdim_v " + std::to_string(a.hdim_v) +
               ": split-KV kernels need head dims that are multiples of 8";
    // The kernels use 16-byte loads and stores (the fp32 workspace: 4-element strides).
    std::string why = host::alignment_problem(
        {{"q_ptr", a.q_ptr}, {"k_ptr", a.k_ptr}, {"v_ptr", a.v_ptr}, {"o_ptr", a.o_ptr},
         {"o_acc_ptr", splits > 1 ? a.o_acc_ptr : nullptr}},
        {{"stride_q", a.stride_q}, {"stride_k", a.stride_k}, {"stride_v", a.stride_v}, {"stride_o", a.stride_o},
         {"nhead_stride_q", a.nhead_stride_q}, {"nhead_stride_k", a.nhead_stride_k},
         {"nhead_stride_v", a.nhead_stride_v}, {"nhead_stride_o", a.nhead_stride_o},
         {"batch_stride_q", a.batch_stride_q}, {"batch_stride_k", a.batch_stride_k},
         {"batch_stride_v", a.batch_stride_v}, {"batch_stride_o", a.batch_stride_o}});
    if (why.empty() && splits > 1)
        why = host::alignment_problem({}, {{"split_stride_o_acc", a.split_stride_o_acc},
                                           {"batch_stride_o_acc", a.batch_stride_o_acc},
                                           {"nhead_stride_o_acc", a.nhead_stride_o_acc},
                                           {"stride_o_acc", a.stride_o_acc}}, 4);
    if (!why.empty()) return why + " (split-KV kernels use 16-byte loads and stores)";
    if (a.nhead_k > 65535) return "nhead_k " + std::to_string(a.nhead_k) + " exceeds the grid limit 65535";
    return {};
}

// The split kernel (and the combine kernel when splits > 1) that run `a`, or *why there are
// none: the deep tile where it is compiled, suits the call and fits the device, else the
// bucket's default tile.
bool select(const mha_fwd_splitkv_args& a, const SplitkvPlan& plan, const SplitkvInstance** inst,
            const SplitkvCombineInstance** combine, std::string* why) {
    *inst = nullptr;
    *combine = nullptr;
    if ((*why = unsupported_splitkv(a, plan.splits)) != "") return false;
    const host::Table<SplitkvInstance> table = splitkv_table();
    SplitkvKey key = key_of(a);
    if (plan.deep) {
        key.deep = true;
        const SplitkvInstance* deep = table.find(key);
        if (deep && host::smem_shortfall(deep->name, deep->info().smem_bytes).empty()) *inst = deep;
        key.deep = *inst != nullptr;
    }
    if (*inst == nullptr)
        *inst = host::select_instance(table, key, "split-KV", key_str(key),
                                      "build with compile.py --api fwd_splitkv and an instance set that includes it",
                                      /*query_device=*/true, why);
    if (*inst == nullptr) return false;
    if (plan.splits > 1) {
        *combine = splitkv_combine_table().find(key.dtype);
        if (*combine == nullptr) {
            *inst = nullptr;
            *why = std::string("no compiled split-KV combine instance for ") + a.data_type + " (needed for num_splits > 1)";
            return false;
        }
    }
    return true;
}

mha_check_result check_result(const SplitkvInstance* inst, const SplitkvCombineInstance* combine,
                              const std::string& why) {
    mha_check_result r;
    r.candidates = instance_names();
    r.supported = inst != nullptr;
    if (inst) r.kernel_name = std::string(inst->name) + (combine ? std::string("+") + combine->name : "");
    else r.reason = why;
    return r;
}

int log2i(int v) {
    int l = 0;
    while ((1 << l) < v) ++l;
    return l;
}

SplitkvParams make_params(const mha_fwd_splitkv_args& a, int splits) {
    SplitkvParams p;
    static_cast<FwdParams&>(p) = make_fwd_params(a);
    p.num_splits = splits;
    p.block_table = static_cast<const int*>(a.block_table_ptr);
    p.block_table_batch_stride = a.batch_stride_block_table;
    p.page_log2 = a.block_table_ptr ? log2i(a.page_block_size) : 0;
    p.cache_batch_idx = static_cast<const int*>(a.cache_batch_idx);
    p.num_cache_batches = a.num_cache_batches;
    p.num_pages = a.num_pages;
    p.o_acc = static_cast<float*>(a.o_acc_ptr);
    p.lse_acc = static_cast<float*>(a.lse_acc_ptr);
    p.o_acc_split_stride = a.split_stride_o_acc;
    p.o_acc_batch_stride = a.batch_stride_o_acc;
    p.o_acc_head_stride = a.nhead_stride_o_acc;
    p.o_acc_row_stride = a.stride_o_acc;
    p.lse_acc_split_stride = a.split_stride_lse_acc;
    p.lse_acc_batch_stride = a.batch_stride_lse_acc;
    p.lse_acc_head_stride = a.nhead_stride_lse_acc;
    p.overlap_combine = splits > 1 && host::device_cc() >= 90;
    return p;
}

}  // namespace
}  // namespace fwd

int mha_fwd_splitkv_num_splits(const mha_fwd_splitkv_args& args) {
    fwd::validate_splitkv(args);
    return fwd::plan_of(args).splits;
}

mha_check_result mha_fwd_splitkv_check(const mha_fwd_splitkv_args& args) {
    fwd::validate_splitkv(args);
    const fwd::SplitkvInstance* inst = nullptr;
    const fwd::SplitkvCombineInstance* combine = nullptr;
    std::string why;
    const fwd::SplitkvPlan plan = fwd::plan_of(args);
    fwd::validate_workspaces(args, plan.splits);
    fwd::select(args, plan, &inst, &combine, &why);
    return fwd::check_result(inst, combine, why);
}

std::vector<std::string> mha_fwd_splitkv_instances() { return fwd::instance_names(); }

mha_check_result mha_fwd_splitkv_check_tables(const mha_fwd_splitkv_args& a, const stream_config& s) {
    fwd::validate_splitkv(a);  // everything the call validates, before any device read
    fwd::validate_workspaces(a, fwd::plan_of(a).splits);
    auto read = [&](const void* src, int64_t n, const char* what) {
        std::vector<int32_t> h(size_t(std::max<int64_t>(n, 0)));
        if (h.empty() || src == nullptr) return h;
        cudaError_t e = cudaMemcpyAsync(h.data(), src, h.size() * sizeof(int32_t), cudaMemcpyDeviceToHost, s.stream_id_);
        if (e == cudaSuccess) e = cudaStreamSynchronize(s.stream_id_);
        if (e != cudaSuccess)
            throw std::runtime_error(std::string("mha_fwd_splitkv_check_tables: reading ") + what +
                                     " failed: " + cudaGetErrorString(e));
        return h;
    };
    const bool paged = a.block_table_ptr != nullptr;
    const int64_t rows = a.cache_batch_idx ? a.num_cache_batches : a.batch;  // cache batches / table rows
    const int64_t max_blocks = paged ? (int64_t(a.seqlen_k) + a.page_block_size - 1) / a.page_block_size : 0;
    const std::vector<int32_t> idx = read(a.cache_batch_idx, a.batch, "cache_batch_idx");
    const std::vector<int32_t> lens = read(a.seqlen_k_ptr, a.batch, "seqlen_k_ptr");
    const std::vector<int32_t> cu = a.seqlen_k_ptr ? std::vector<int32_t>{} : read(a.cu_seqlen_k_ptr, a.batch + 1, "cu_seqlen_k_ptr");
    const std::vector<int32_t> table =
        paged && a.batch > 0 && max_blocks > 0 ? read(a.block_table_ptr, (rows - 1) * a.batch_stride_block_table + max_blocks, "block_table")
                                               : std::vector<int32_t>{};
    int64_t bad = 0;
    std::string list;
    auto report = [&](const std::string& entry, int64_t v, int64_t hi) {
        if (++bad <= 8)
            list += (list.empty() ? "" : "; ") + entry + " = " + std::to_string(v) + ", outside [0, " + std::to_string(hi) + ")";
    };
    for (int b = 0; b < a.batch; ++b) {
        int64_t kb = b;
        if (!idx.empty()) {
            kb = idx[b];
            if (kb < 0 || kb >= rows) report("cache_batch_idx[" + std::to_string(b) + "]", kb, rows);
            kb = std::clamp<int64_t>(kb, 0, rows - 1);  // as the kernel does
        }
        if (table.empty()) continue;
        // The keys the kernel reads: the logical length, clamped to seqlen_k as in the kernel.
        const int64_t len = !lens.empty() ? lens[b] : !cu.empty() ? int64_t(cu[b + 1]) - cu[b] : a.seqlen_k;
        const int64_t used = (std::clamp<int64_t>(len, 0, a.seqlen_k) + a.page_block_size - 1) / a.page_block_size;
        for (int64_t j = 0; j < used; ++j) {
            const int32_t page = table[size_t(kb * a.batch_stride_block_table + j)];
            if (page < 0 || page >= a.num_pages)
                report("block_table[" + std::to_string(kb) + "][" + std::to_string(j) + "]", page, a.num_pages);
        }
    }
    mha_check_result r;
    r.supported = bad == 0;
    if (bad) r.reason = std::to_string(bad) + " entr" + (bad == 1 ? "y" : "ies") + " outside the cache (the kernel clamps them): " + list +
                        (bad > 8 ? "; ..." : "");
    return r;
}

float mha_fwd_splitkv(mha_fwd_splitkv_args args, const stream_config& s) {
    fwd::validate_splitkv(args);
    const fwd::SplitkvPlan plan = fwd::plan_of(args);
    const int splits = plan.splits;
    fwd::validate_workspaces(args, splits);
    const fwd::SplitkvInstance* inst = nullptr;
    const fwd::SplitkvCombineInstance* combine = nullptr;
    std::string why;
    if (!fwd::select(args, plan, &inst, &combine, &why)) {
        if (s.log_level_ > 0) fprintf(stderr, "mha_fwd_splitkv: not supported: %s\n", why.c_str());
        return -1.f;
    }
    const fwd::SplitkvParams p = fwd::make_params(args, splits);
    if (s.log_level_ > 0)
        fprintf(stderr, "mha_fwd_splitkv: running %s%s%s, %d split(s)\n", inst->name, combine ? "+" : "",
                combine ? combine->name : "", splits);
    return host::run_timed(s, "mha_fwd_splitkv", [&] {
        fwd::check_cuda(inst->launch(p, s.stream_id_), inst->name);
        if (combine) fwd::check_cuda(combine->launch(p, s.stream_id_), combine->name);
    });
}

}  // namespace aiter
