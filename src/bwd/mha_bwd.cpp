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
#include "common/attn_args.h"
#include "common/host_util.h"
#include "mha_bwd.h"

namespace aiter {
namespace bwd {
namespace {

constexpr const char* kApi = "mha_bwd";

BwdV2Key key_of(const mha_bwd_args& a) {
    return BwdV2Key{host::dtype_of(a),
                    host::hdim_bucket(a.hdim_q, a.hdim_v, {{32, 32}, {64, 64}, {128, 128}, {256, 256}}).first,
                    host::mask_of(a), a.is_deterministic};
}

std::string key_str(const BwdV2Key& k) {
    return std::string(k.dtype == DType::bf16 ? "bf16" : "fp16") + " hdim<=" + std::to_string(k.hdim) +
           (k.mask == MaskKind::window ? " masked" : " unmasked") + (k.deterministic ? " deterministic" : "");
}

// The v2 instance that runs `a`, or null with *why.
const BwdV2Instance* select(const mha_bwd_args& a, std::string* why) {
    if ((*why = unsupported_feature(a)) != "") return nullptr;
    const BwdV2Key key = key_of(a);
    return host::select_instance(bwd_v2_table(), key, "v2 backward", key_str(key),
                                 "rebuild with an instance set that includes it, e.g. compile.py --api bwd --preset default",
                                 /*query_device=*/true, why);
}

// The v3 instance that runs `a`, or null with *why ("v3: ...").
const BwdV3Instance* select_v3(const mha_bwd_args& a, std::string* why) {
    auto fail = [&](const std::string& reason) -> const BwdV3Instance* {
        *why = "v3: " + reason;
        return nullptr;
    };
    if (std::string r = unsupported_feature(a); !r.empty()) return fail(r);
    if (a.is_deterministic) return fail("is_deterministic: the v3 backward accumulates dQ with atomics only");
    if (a.hdim_q % 8 != 0 || a.hdim_v % 8 != 0)
        return fail("hdim_q and hdim_v must be multiples of 8 (got " + std::to_string(a.hdim_q) + ", " +
                    std::to_string(a.hdim_v) + ")");
    const int bucket = host::hdim_bucket(a.hdim_q, a.hdim_v, {{64, 64}, {128, 128}}).first;
    if (bucket == 0)
        return fail("no v3 backward head-dim bucket holds (hdim_q, hdim_v) = (" + std::to_string(a.hdim_q) + ", " +
                    std::to_string(a.hdim_v) + "); buckets: 64, 128");
    if (!alignment_problem(a).empty())
        return fail("TMA needs 16-byte aligned base pointers and strides that are multiples of 8 elements");
    // TMA reads whole tiles: rows past a batch's logical lengths must be finite (the kernel
    // selects them away), which only holds where the physical rows are the logical ones.
    if (a.seqlen_q_ptr || a.cu_seqlen_q_ptr || a.seqlen_k_ptr || a.cu_seqlen_k_ptr)
        return fail("logical-length arrays (seqlen_q_ptr, seqlen_k_ptr, cu_seqlen_q_ptr, cu_seqlen_k_ptr) are not supported yet");
    if (std::string r = host::tma_stride_problem({a.stride_q, a.stride_k, a.stride_v, a.stride_do, a.nhead_stride_q,
                                                  a.nhead_stride_k, a.nhead_stride_v, a.nhead_stride_do, a.batch_stride_q,
                                                  a.batch_stride_k, a.batch_stride_v, a.batch_stride_do},
                                                 "Q/K/V/dO");
        !r.empty())
        return fail(r);
    const BwdV3Key key{host::dtype_of(a), bucket, host::mask_of(a)};
    const host::Table<BwdV3Instance> table = bwd_v3_table();
    const BwdV3Instance* found = table.find(key);
    if (found == nullptr)
        return fail(std::string("no compiled v3 backward instance for ") + a.data_type + " hdim<=" + std::to_string(bucket) +
                    (a.mask_type ? " masked" : " unmasked") +
                    (table.count == 0 ? " (this library was built without the bwd_v3 api: compile.py --api bwd_v3)" : ""));
    if (std::string r = host::sm90a_device_problem(); !r.empty()) return fail(r);
    if (std::string r = host::smem_shortfall(found->name, found->info().smem_bytes); !r.empty()) return fail(r);
    return found;
}

BwdParams make_params(const mha_bwd_args& a) {
    BwdParams p;
    host::set_attn_params(p, a);
    p.o = const_cast<void*>(a.o_ptr);                            // read only
    p.lse = static_cast<float*>(const_cast<void*>(a.lse_ptr));  // read only
    p.lse_head_stride = a.nhead_stride_lsed;
    p.lse_batch_stride = a.batch_stride_lsed;
    p.dout = a.do_ptr;
    p.d = static_cast<float*>(a.d_ptr);  // the caller's D (LSE's strides); without d_ptr the library's, set in mha_bwd
    p.d_head_stride = a.nhead_stride_lsed;
    p.d_batch_stride = a.batch_stride_lsed;
    p.dq = a.dq_ptr;
    p.dk = a.dk_ptr;
    p.dv = a.dv_ptr;
    p.do_row_stride = a.stride_do, p.dq_row_stride = a.stride_dq;
    p.dk_row_stride = a.stride_dk, p.dv_row_stride = a.stride_dv;
    p.do_head_stride = a.nhead_stride_do, p.dq_head_stride = a.nhead_stride_dq;
    p.dk_head_stride = a.nhead_stride_dk, p.dv_head_stride = a.nhead_stride_dv;
    p.do_batch_stride = a.batch_stride_do, p.dq_batch_stride = a.batch_stride_dq;
    p.dk_batch_stride = a.batch_stride_dk, p.dv_batch_stride = a.batch_stride_dv;
    p.max_seqlen_k = a.is_group_mode && a.max_seqlen_k > 0 ? a.max_seqlen_k : a.seqlen_k;
    p.seqlen_q_ptr = static_cast<const int*>(a.seqlen_q_ptr);
    p.scale_s = a.scale;
    p.scale_log2 = a.scale * 1.4426950408889634f;
    return p;
}

// Per-call device workspace: D (when the caller gave no d_ptr) and the fp32 dQ accumulator.
// Rows: every physical row (batch mode: batch * seqlen_q; group mode: seqlen_q = total).
struct Workspace {
    size_t d_bytes = 0, acc_bytes = 0, pack_bytes = 0;
    void* base = nullptr;
    bool owned = false;
    cudaStream_t stream = nullptr;

    // acc_rows_per_head: rows of the dQ accumulator per (batch, q head) in batch mode, per q head
    // in group mode; acc_width: its fp32 columns (0: no accumulator); pack_bytes: room for the
    // packed copies of unaligned tensors (PackPlan).
    Workspace(const mha_bwd_args& a, int64_t acc_rows_per_head, int acc_width, size_t pack_bytes_,
              cudaStream_t s)
        : stream(s) {
        const size_t nb   = a.is_group_mode ? 1 : size_t(a.batch);
        const size_t rows = nb * size_t(a.nhead_q) * size_t(a.seqlen_q);
        if (a.d_ptr == nullptr) d_bytes = (rows * sizeof(float) + 255) / 256 * 256;  // D: [nb, hq, seqlen_q]
        acc_bytes  = (nb * size_t(a.nhead_q) * size_t(acc_rows_per_head) * size_t(acc_width) * sizeof(float) + 255) /
                    256 * 256;
        pack_bytes = pack_bytes_;
        const size_t total = d_bytes + acc_bytes + pack_bytes;
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
    char* pack() const { return pack_bytes ? static_cast<char*>(base) + d_bytes + acc_bytes : nullptr; }
};

// Unaligned inputs (alignment_problem): the kernels run on packed copies, one contiguous
// [nb, heads, rows, d8] tensor each (d8 = the head dim rounded up to 8, zero columns past it),
// and dQ/dK/dV are copied back. The extra traffic is O(tensor size); the kernels are O(s²).
struct PackPlan {
    struct Tensor {
        size_t offset = 0;  // bytes into the pack region
        int64_t row = 0, head = 0, batch = 0;
    };
    Tensor q, k, v, o, dout, dq, dk, dv;
    size_t bytes = 0;
    int dq8 = 0, dv8 = 0;

    explicit PackPlan(const mha_bwd_args& a) {
        dq8 = (a.hdim_q + 7) / 8 * 8;
        dv8 = (a.hdim_v + 7) / 8 * 8;
        const int64_t nb = a.is_group_mode ? 1 : a.batch;
        auto place = [&](Tensor& t, int heads, int64_t rows, int d) {
            t.row = d, t.head = rows * d, t.batch = heads * rows * d;
            t.offset = bytes;
            bytes += (size_t(nb * t.batch) * 2 + 255) / 256 * 256;
        };
        place(q, a.nhead_q, a.seqlen_q, dq8), place(dq, a.nhead_q, a.seqlen_q, dq8);
        place(o, a.nhead_q, a.seqlen_q, dv8), place(dout, a.nhead_q, a.seqlen_q, dv8);
        place(k, a.nhead_k, a.seqlen_k, dq8), place(dk, a.nhead_k, a.seqlen_k, dq8);
        place(v, a.nhead_k, a.seqlen_k, dv8), place(dv, a.nhead_k, a.seqlen_k, dv8);
    }
    // The arguments the kernels see: packed pointers and strides, head dims rounded up to 8.
    mha_bwd_args packed_args(const mha_bwd_args& a, char* base) const {
        mha_bwd_args r = a;
        r.hdim_q = dq8, r.hdim_v = dv8;
        r.q_ptr = base + q.offset, r.k_ptr = base + k.offset, r.v_ptr = base + v.offset;
        r.o_ptr = base + o.offset, r.do_ptr = base + dout.offset;
        r.dq_ptr = base + dq.offset, r.dk_ptr = base + dk.offset, r.dv_ptr = base + dv.offset;
        r.stride_q = q.row, r.nhead_stride_q = q.head, r.batch_stride_q = q.batch;
        r.stride_k = k.row, r.nhead_stride_k = k.head, r.batch_stride_k = k.batch;
        r.stride_v = v.row, r.nhead_stride_v = v.head, r.batch_stride_v = v.batch;
        r.stride_o = o.row, r.nhead_stride_o = o.head, r.batch_stride_o = o.batch;
        r.stride_do = dout.row, r.nhead_stride_do = dout.head, r.batch_stride_do = dout.batch;
        r.stride_dq = dq.row, r.nhead_stride_dq = dq.head, r.batch_stride_dq = dq.batch;
        r.stride_dk = dk.row, r.nhead_stride_dk = dk.head, r.batch_stride_dk = dk.batch;
        r.stride_dv = dv.row, r.nhead_stride_dv = dv.head, r.batch_stride_dv = dv.batch;
        return r;
    }
};

// Copy of one tensor between the caller's layout (user pointer + strides) and its packed copy.
RowCopy row_copy(bool pack, const void* user, int64_t u_row, int64_t u_head, int64_t u_batch, char* base,
                 const PackPlan::Tensor& t, int d, int d8, bool keys) {
    RowCopy c;
    c.keys = keys;
    if (pack) {
        c.src = user, c.src_row = u_row, c.src_head = u_head, c.src_batch = u_batch;
        c.dst = base + t.offset, c.dst_row = t.row, c.dst_head = t.head, c.dst_batch = t.batch;
        c.d_copy = d, c.d_fill = d8;
    } else {
        c.src = base + t.offset, c.src_row = t.row, c.src_head = t.head, c.src_batch = t.batch;
        c.dst = const_cast<void*>(user), c.dst_row = u_row, c.dst_head = u_head, c.dst_batch = u_batch;
        c.d_copy = d, c.d_fill = d;
    }
    return c;
}

}  // namespace
}  // namespace bwd

mha_check_result mha_bwd_check(const mha_bwd_args& args) {
    bwd::validate_bwd_args(args);
    std::string why;
    if (args.use_asm_v3 || args.v3_api_check) {
        const bwd::BwdV3Instance* v3 = bwd::select_v3(args, &why);
        if (v3 != nullptr || args.v3_api_check) return host::check_result(bwd::bwd_v3_table(), v3, why);
    }
    const bwd::BwdV2Instance* inst = bwd::select(args, &why);
    return host::check_result(bwd::bwd_v2_table(), inst, why);
}

std::vector<std::string> mha_bwd_instances() {
    std::vector<std::string> v = bwd::bwd_v2_table().names();
    for (const std::string& n : bwd::bwd_v3_table().names()) v.push_back(n);
    return v;
}

float mha_bwd(mha_bwd_args args, const stream_config& s) {
    bwd::validate_bwd_args(args);
    std::string why;
    // v3 where asked for and supported (v3_atomic_fp32: both families accumulate dQ in fp32).
    const bwd::BwdV3Instance* v3 = nullptr;
    if (args.use_asm_v3 || args.v3_api_check) {
        v3 = bwd::select_v3(args, &why);
        if (args.v3_api_check) return v3 != nullptr ? 1.f : -1.f;  // answer only, no launch
        if (v3 == nullptr && s.log_level_ > 0) fprintf(stderr, "mha_bwd: %s; falling back to v2\n", why.c_str());
    }
    const bwd::BwdV2Instance* inst = v3 ? nullptr : bwd::select(args, &why);
    if (v3 == nullptr && inst == nullptr) {
        if (s.log_level_ > 0) fprintf(stderr, "mha_bwd: not supported: %s\n", why.c_str());
        return -1.f;
    }
    const char* name = v3 ? v3->name : inst->name;
    if (s.log_level_ > 0) fprintf(stderr, "mha_bwd: running %s\n", name);

    const bool atomic_dq = !args.is_deterministic;
    // dQ accumulator (BwdParams::dq_acc): tiles of block_m rows x the head-dim bucket; each
    // batch's rows rounded up to whole tiles, and in group mode one spare tile per batch plus one
    // (batch b starts at floor((seqstart_q[b] + block_m*b) / block_m) tiles).
    const int acc_width = atomic_dq ? (v3 ? v3->key.hdim : inst->key.hdim) : 0;
    const int64_t bm = v3 ? v3->info().block_m : inst->info().block_m;
    const int64_t acc_rows = args.is_group_mode ? bwd::bwd_acc_group_rows(args.seqlen_q, args.batch, int(bm))
                                                : (int64_t(args.seqlen_q) + bm - 1) / bm * bm;
    const std::string unaligned = bwd::alignment_problem(args);  // empty: the kernels read the inputs in place
    const bool packed = !unaligned.empty();  // never with v3 (select_v3)
    const bwd::PackPlan plan(args);
    bwd::Workspace ws(args, acc_rows, acc_width, packed ? plan.bytes : 0, s.stream_id_);
    const mha_bwd_args& ka = packed ? plan.packed_args(args, ws.pack()) : args;  // what the kernels see
    if (packed && s.log_level_ > 0)
        fprintf(stderr, "mha_bwd: %s: running on packed copies\n", unaligned.c_str());
    bwd::BwdParams p = bwd::make_params(ka);
    if (p.d == nullptr) {  // the library's D: contiguous [nb, hq, seqlen_q]
        p.d = ws.d();
        p.d_head_stride = args.seqlen_q;
        p.d_batch_stride = args.is_group_mode ? 0 : int64_t(args.nhead_q) * args.seqlen_q;
    }
    p.dq_acc = atomic_dq ? ws.acc() : nullptr;
    p.acc_head_stride  = acc_rows * acc_width;
    p.acc_batch_stride = args.is_group_mode ? 0 : int64_t(args.nhead_q) * acc_rows * acc_width;
    const DType dt = host::dtype_of(args);

    auto launch = [&] {
        if (ws.acc_bytes)
            host::check_cuda(cudaMemsetAsync(ws.acc(), 0, ws.acc_bytes, s.stream_id_), bwd::kApi,
                             "zeroing the dQ accumulator");
        auto copy = [&](bool pack, const void* user, int64_t ur, int64_t uh, int64_t ub, const bwd::PackPlan::Tensor& t,
                        int d, int d8, bool keys, const char* what) {
            const bwd::RowCopy c = bwd::row_copy(pack, user, ur, uh, ub, ws.pack(), t, d, d8, keys);
            host::check_cuda(bwd::launch_bwd_copy_rows(p, c, s.stream_id_), bwd::kApi, what);
        };
        const mha_bwd_args& a = args;
        if (packed) {
            copy(true, a.q_ptr, a.stride_q, a.nhead_stride_q, a.batch_stride_q, plan.q, a.hdim_q, plan.dq8, false, "packing q");
            copy(true, a.k_ptr, a.stride_k, a.nhead_stride_k, a.batch_stride_k, plan.k, a.hdim_q, plan.dq8, true, "packing k");
            copy(true, a.v_ptr, a.stride_v, a.nhead_stride_v, a.batch_stride_v, plan.v, a.hdim_v, plan.dv8, true, "packing v");
            copy(true, a.o_ptr, a.stride_o, a.nhead_stride_o, a.batch_stride_o, plan.o, a.hdim_v, plan.dv8, false, "packing o");
            copy(true, a.do_ptr, a.stride_do, a.nhead_stride_do, a.batch_stride_do, plan.dout, a.hdim_v, plan.dv8, false,
                 "packing do");
        }
        host::check_cuda(bwd::launch_bwd_pre(p, dt, s.stream_id_), bwd::kApi, "pre-kernel (D = rowsum(dO*O))");
        host::check_cuda(v3 ? v3->launch(p, s.stream_id_) : inst->launch(p, s.stream_id_), bwd::kApi, name);
        if (packed) {
            copy(false, a.dq_ptr, a.stride_dq, a.nhead_stride_dq, a.batch_stride_dq, plan.dq, a.hdim_q, plan.dq8, false,
                 "unpacking dq");
            copy(false, a.dk_ptr, a.stride_dk, a.nhead_stride_dk, a.batch_stride_dk, plan.dk, a.hdim_q, plan.dq8, true,
                 "unpacking dk");
            copy(false, a.dv_ptr, a.stride_dv, a.nhead_stride_dv, a.batch_stride_dv, plan.dv, a.hdim_v, plan.dv8, true,
                 "unpacking dv");
        }
    };
    return host::run_timed(s, bwd::kApi, launch);
}

}  // namespace aiter
