// aiter::mha_bwd: validation -> configuration key -> dispatcher table lookup + can_run ->
// workspace -> dQ_acc = 0, pre-kernel (D) -> dQ/dK/dV kernel(s) + dQ conversion (optionally
// timed). See include/mha_bwd.h for the contract.
#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bwd/bwd_key.h"
#include "bwd/validate.h"
#include "common/host_util.h"
#include "mha_bwd.h"

namespace aiter {
namespace bwd {
namespace {

constexpr const char* kApi = "mha_bwd";

BwdV2Key key_of(const mha_bwd_args& a) {
    return BwdV2Key{a.data_type == "bf16" ? DType::bf16 : DType::fp16, host::hdim_bucket(a.hdim_q, a.hdim_v),
                    a.mask_type == 0 ? MaskKind::none : MaskKind::window, a.is_deterministic};
}

std::string key_str(const BwdV2Key& k) {
    return std::string(k.dtype == DType::bf16 ? "bf16" : "fp16") + " hdim<=" + std::to_string(k.hdim) +
           (k.mask == MaskKind::window ? " masked" : " unmasked") + (k.deterministic ? " deterministic" : "");
}

const BwdV2Instance* find_instance(const BwdV2Key& key) {
    for (int i = 0; i < kNumBwdV2Instances; ++i)
        if (kBwdV2Instances[i].key == key) return &kBwdV2Instances[i];
    return nullptr;
}

std::vector<std::string> instance_names() {
    std::vector<std::string> v;
    for (int i = 0; i < kNumBwdV2Instances; ++i) v.emplace_back(kBwdV2Instances[i].name);
    return v;
}

mha_check_result select(const mha_bwd_args& a, const BwdV2Instance** inst) {
    mha_check_result r;
    r.candidates = instance_names();
    *inst = nullptr;
    if (std::string why = unsupported_feature(a); !why.empty()) {
        r.reason = why;
        return r;
    }
    const BwdV2Key key = key_of(a);
    const BwdV2Instance* found = find_instance(key);
    if (found == nullptr) {
        r.reason = "no compiled v2 backward instance for " + key_str(key) +
                   " (rebuild with an instance set that includes it, e.g. compile.py --api bwd --preset default)";
        return r;
    }
    const int optin = host::device_smem_optin();
    if (optin >= 0 && found->smem_bytes() > optin) {
        r.reason = std::string(found->name) + " needs " + std::to_string(found->smem_bytes()) +
                   " bytes of shared memory per block; this device allows " + std::to_string(optin);
        return r;
    }
    r.supported   = true;
    r.kernel_name = found->name;
    *inst         = found;
    return r;
}

BwdParams make_params(const mha_bwd_args& a) {
    BwdParams p;
    p.q = a.q_ptr;
    p.k = a.k_ptr;
    p.v = a.v_ptr;
    p.o = a.o_ptr;
    p.dout = a.do_ptr;
    p.lse = static_cast<const float*>(a.lse_ptr);
    p.d = static_cast<float*>(a.d_ptr);
    p.dq = a.dq_ptr;
    p.dk = a.dk_ptr;
    p.dv = a.dv_ptr;
    p.q_row_stride = a.stride_q, p.k_row_stride = a.stride_k, p.v_row_stride = a.stride_v;
    p.o_row_stride = a.stride_o, p.do_row_stride = a.stride_do, p.dq_row_stride = a.stride_dq;
    p.dk_row_stride = a.stride_dk, p.dv_row_stride = a.stride_dv;
    p.q_head_stride = a.nhead_stride_q, p.k_head_stride = a.nhead_stride_k, p.v_head_stride = a.nhead_stride_v;
    p.o_head_stride = a.nhead_stride_o, p.do_head_stride = a.nhead_stride_do, p.dq_head_stride = a.nhead_stride_dq;
    p.dk_head_stride = a.nhead_stride_dk, p.dv_head_stride = a.nhead_stride_dv;
    p.lse_head_stride = a.nhead_stride_lsed;
    p.q_batch_stride = a.batch_stride_q, p.k_batch_stride = a.batch_stride_k, p.v_batch_stride = a.batch_stride_v;
    p.o_batch_stride = a.batch_stride_o, p.do_batch_stride = a.batch_stride_do;
    p.dq_batch_stride = a.batch_stride_dq, p.dk_batch_stride = a.batch_stride_dk;
    p.dv_batch_stride = a.batch_stride_dv, p.lse_batch_stride = a.batch_stride_lsed;
    p.batch = a.batch;
    p.nhead_q = a.nhead_q;
    p.nhead_k = a.nhead_k;
    p.h_ratio = a.nhead_q / a.nhead_k;
    p.hdim_q = a.hdim_q;
    p.hdim_v = a.hdim_v;
    p.seqlen_q = a.seqlen_q;
    p.seqlen_k = a.seqlen_k;
    p.max_seqlen_q = a.is_group_mode && a.max_seqlen_q > 0 ? a.max_seqlen_q : a.seqlen_q;
    p.max_seqlen_k = a.is_group_mode && a.max_seqlen_k > 0 ? a.max_seqlen_k : a.seqlen_k;
    p.is_group_mode = a.is_group_mode;
    p.seqstart_q = static_cast<const int*>(a.seqstart_q_ptr);
    p.seqstart_k = static_cast<const int*>(a.seqstart_k_ptr);
    p.seqlen_q_ptr = static_cast<const int*>(a.seqlen_q_ptr);
    p.seqlen_k_ptr = static_cast<const int*>(a.seqlen_k_ptr);
    p.cu_seqlen_q = static_cast<const int*>(a.cu_seqlen_q_ptr);
    p.cu_seqlen_k = static_cast<const int*>(a.cu_seqlen_k_ptr);
    p.scale = a.scale;
    p.scale_log2 = a.scale * 1.4426950408889634f;
    p.mask = MaskSpec{a.mask_type, a.mask_type == 0 ? -1 : a.window_size_left,
                      a.mask_type == 0 ? -1 : a.window_size_right};
    return p;
}

// Per-call device workspace: D (when the caller gave no d_ptr) and the fp32 dQ accumulator.
// Rows: every physical row (batch mode: batch * seqlen_q; group mode: seqlen_q = total).
struct Workspace {
    size_t d_bytes = 0, acc_bytes = 0;
    void* base = nullptr;
    bool owned = false;
    cudaStream_t stream = nullptr;

    // acc_rows_per_head: rows of the dQ accumulator per (batch, q head) in batch mode, per q head
    // in group mode; acc_width: its fp32 columns (0: no accumulator).
    Workspace(const mha_bwd_args& a, int64_t acc_rows_per_head, int acc_width, cudaStream_t s) : stream(s) {
        const size_t nb   = a.is_group_mode ? 1 : size_t(a.batch);
        const size_t rows = nb * size_t(a.nhead_q) * size_t(a.seqlen_q);
        if (a.d_ptr == nullptr) {
            // D shares LSE's strides, so it must cover the highest index they address.
            const size_t span = a.is_group_mode
                                    ? size_t(a.nhead_q - 1) * a.nhead_stride_lsed + a.seqlen_q
                                    : size_t(a.batch - 1) * a.batch_stride_lsed +
                                          size_t(a.nhead_q - 1) * a.nhead_stride_lsed + a.seqlen_q;
            d_bytes = ((std::max(span, rows) * sizeof(float)) + 255) / 256 * 256;
        }
        acc_bytes = nb * size_t(a.nhead_q) * size_t(acc_rows_per_head) * size_t(acc_width) * sizeof(float);
        const size_t total = d_bytes + acc_bytes;
        if (total == 0) return;
        if (a.workspace_alloc) {
            base = a.workspace_alloc(total);
            if (base == nullptr)
                throw std::runtime_error("mha_bwd: workspace_alloc returned nullptr for " + std::to_string(total) +
                                         " bytes");
        } else {
            host::check_cuda(cudaMallocAsync(&base, total, stream), kApi,
                             "cudaMallocAsync of " + std::to_string(total) + " bytes of workspace");
            owned = true;
        }
    }
    ~Workspace() {
        if (owned && base) cudaFreeAsync(base, stream);
    }
    float* d() const { return d_bytes ? static_cast<float*>(base) : nullptr; }
    float* acc() const { return acc_bytes ? reinterpret_cast<float*>(static_cast<char*>(base) + d_bytes) : nullptr; }
};

}  // namespace
}  // namespace bwd

mha_check_result mha_bwd_check(const mha_bwd_args& args) {
    bwd::validate_bwd_args(args);
    const bwd::BwdV2Instance* inst = nullptr;
    return bwd::select(args, &inst);
}

std::vector<std::string> mha_bwd_instances() { return bwd::instance_names(); }

float mha_bwd(mha_bwd_args args, const stream_config& s) {
    bwd::validate_bwd_args(args);
    if (args.v3_api_check) return -1.f;  // no v3 (Hopper-native) backward kernels are built yet
    // use_asm_v3 / v3_atomic_fp32: the v3 family does not exist yet, so every call runs v2.
    const bwd::BwdV2Instance* inst = nullptr;
    const mha_check_result sel = bwd::select(args, &inst);
    if (!sel.supported) {
        if (s.log_level_ > 0) fprintf(stderr, "mha_bwd: not supported: %s\n", sel.reason.c_str());
        return -1.f;
    }
    if (s.log_level_ > 0) fprintf(stderr, "mha_bwd: running %s\n", inst->name);

    const bool atomic_dq = !args.is_deterministic;
    // dQ accumulator (BwdParams::dq_acc): tiles of block_m rows x the head-dim bucket; each
    // batch's rows rounded up to whole tiles, and in group mode one spare tile per batch plus one
    // (batch b starts at floor((seqstart_q[b] + block_m*b) / block_m) tiles).
    const int acc_width = atomic_dq ? inst->key.hdim : 0;
    const int64_t bm = inst->block_m();
    const int64_t acc_rows = args.is_group_mode ? bwd::bwd_acc_group_rows(args.seqlen_q, args.batch, int(bm))
                                                : (int64_t(args.seqlen_q) + bm - 1) / bm * bm;
    bwd::Workspace ws(args, acc_rows, acc_width, s.stream_id_);
    bwd::BwdParams p = bwd::make_params(args);
    if (p.d == nullptr) p.d = ws.d();
    p.dq_acc = atomic_dq ? ws.acc() : nullptr;
    p.acc_head_stride  = acc_rows * acc_width;
    p.acc_batch_stride = args.is_group_mode ? 0 : int64_t(args.nhead_q) * acc_rows * acc_width;
    const bwd::DType dt = args.data_type == "bf16" ? bwd::DType::bf16 : bwd::DType::fp16;

    auto launch = [&] {
        if (ws.acc_bytes)
            host::check_cuda(cudaMemsetAsync(ws.acc(), 0, ws.acc_bytes, s.stream_id_), bwd::kApi,
                             "zeroing the dQ accumulator");
        host::check_cuda(bwd::launch_bwd_pre(p, dt, s.stream_id_), bwd::kApi, "pre-kernel (D = rowsum(dO*O))");
        host::check_cuda(inst->launch(p, s.stream_id_), bwd::kApi, inst->name);
    };
    return host::run_timed(s, bwd::kApi, launch);
}

}  // namespace aiter
