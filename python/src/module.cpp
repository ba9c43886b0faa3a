// aiter_mha._C: a torch-free pybind11 bridge from DLPack tensors to the C++ API
// (aiter::mha_fwd, aiter::mha_fwd_splitkv and, when built with libmha_bwd.so, aiter::mha_bwd).
//
// Every tensor argument is a DLPack capsule (the result of `x.__dlpack__(stream=...)`), or None.
// The capsule is consumed for the duration of the call only: the producer's deleter runs before
// the function returns (the Python caller keeps the tensor itself alive). Nothing is copied.
// Shapes (the Python layer, python/aiter_mha/ops.py, builds them; strides are free, but the
// last dimension must be contiguous):
//   batch mode : q [b, sq, hq, d]  k [b, sk, hk, d]  v [b, sk, hk, dv]  o [b, sq, hq, dv]
//                lse [b, hq, sq] fp32
//   varlen mode: q [total_q, hq, d] ... o [total_q, hq, dv], lse [hq, total_q] fp32, and
//                int32 prefix sums seqstart_q/k [b+1] (physical), optional logical
//                cu_seqlen_q/k [b+1] and seqlen_k [b]
//   backward   : dout as o, dq as q, dk as k, dv as v (dk/dv at nhead_k: GQA sums over the
//                group), optional softmax_d fp32 with the shape and strides of lse
// Errors: std::invalid_argument -> ValueError (names the argument), unsupported configuration
// -> NotImplementedError with the library's reason, CUDA errors -> RuntimeError. Every check
// here runs before the device is touched.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <initializer_list>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dlpack_abi.h"
#include "mha_fwd.h"
#ifdef AITER_MHA_WITH_BWD
#include "mha_bwd.h"
#endif

namespace py = pybind11;

namespace {

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument(msg); }

std::string shape_str(const std::vector<int64_t>& s) {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    os << "]";
    return os.str();
}

// A borrowed DLPack tensor: its description plus the deleter to run when the call ends.
struct View {
    std::string name;
    DLManagedTensor* managed = nullptr;
    char* data = nullptr;
    int device_type = 0, device_id = 0;
    DLDataType dtype{};
    std::vector<int64_t> shape, strides;

    View() = default;
    View(const View&) = delete;
    View& operator=(const View&) = delete;
    ~View() {
        if (managed && managed->deleter) managed->deleter(managed);
    }

    std::string dtype_name() const {
        if (dtype.code == kDLFloat && dtype.bits == 16) return "float16";
        if (dtype.code == kDLBfloat && dtype.bits == 16) return "bfloat16";
        if (dtype.code == kDLFloat && dtype.bits == 32) return "float32";
        if (dtype.code == kDLInt && dtype.bits == 32) return "int32";
        std::ostringstream os;
        os << "code " << int(dtype.code) << " bits " << int(dtype.bits);
        return os.str();
    }
};

using ViewPtr = std::unique_ptr<View>;

ViewPtr borrow(py::handle obj, const char* name) {
    if (obj.is_none()) return nullptr;
    if (!PyCapsule_IsValid(obj.ptr(), "dltensor"))
        bad(std::string(name) + ": expected a DLPack capsule (from __dlpack__()), got " +
            std::string(py::str(py::type::of(obj))));
    auto* mt = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(obj.ptr(), "dltensor"));
    PyCapsule_SetName(obj.ptr(), "used_dltensor");  // consumed: the deleter is now ours to call
    auto v = std::make_unique<View>();
    v->name = name;
    v->managed = mt;
    const DLTensor& t = mt->dl_tensor;
    v->data = static_cast<char*>(t.data) + t.byte_offset;
    v->device_type = t.device.device_type;
    v->device_id = t.device.device_id;
    v->dtype = t.dtype;
    v->shape.assign(t.shape, t.shape + t.ndim);
    v->strides.resize(t.ndim);
    int64_t running = 1;
    for (int i = t.ndim - 1; i >= 0; --i) {
        v->strides[i] = t.strides ? t.strides[i] : running;
        running *= t.shape[i];
    }
    if (t.dtype.lanes != 1) bad(std::string(name) + ": expected a scalar dtype (lanes 1), got lanes " + std::to_string(t.dtype.lanes));
    return v;
}

void require_cuda(const View& v, int device_id) {
    if (v.device_type != kDLCUDA && v.device_type != kDLCUDAManaged)
        bad(v.name + ": expected a CUDA tensor, got DLPack device type " + std::to_string(v.device_type));
    if (v.device_id != device_id)
        bad(v.name + ": expected a tensor on cuda:" + std::to_string(device_id) + " (where q is), got cuda:" +
            std::to_string(v.device_id));
}

void require_rank(const View& v, size_t rank, const char* layout) {
    if (v.shape.size() != rank)
        bad(v.name + ": expected " + std::to_string(rank) + " dimensions " + layout + ", got shape " +
            shape_str(v.shape));
}

void require_shape(const View& v, const std::vector<int64_t>& want, const char* layout) {
    if (v.shape != want) bad(v.name + ": expected shape " + shape_str(want) + " " + layout + ", got " + shape_str(v.shape));
}

void require_last_contiguous(const View& v) {
    if (!v.shape.empty() && v.shape.back() > 1 && v.strides.back() != 1)
        bad(v.name + ": expected the last dimension to be contiguous (stride 1), got strides " + shape_str(v.strides));
}

void require_int32_vector(const View* v, int64_t n, int device_id) {
    if (!v) return;
    require_cuda(*v, device_id);
    if (!(v->dtype.code == kDLInt && v->dtype.bits == 32)) bad(v->name + ": expected dtype int32, got " + v->dtype_name());
    if (v->shape.size() != 1 || v->shape[0] != n)
        bad(v->name + ": expected shape [" + std::to_string(n) + "], got " + shape_str(v->shape));
    if (n > 1 && v->strides[0] != 1) bad(v->name + ": expected a contiguous vector, got stride " + std::to_string(v->strides[0]));
}

int to_int(int64_t x, const std::string& what) {
    if (x < 0 || x > 0x7fffffff) bad(what + ": expected a value in [0, 2^31), got " + std::to_string(x));
    return static_cast<int>(x);
}

// The fp16/bf16 tensors of a call: same CUDA device as q, last dimension contiguous, q's dtype.
// Returns the library's data_type ("fp16" / "bf16").
std::string check_tensors(const View& q, std::initializer_list<const View*> rest) {
    const std::string dt = q.dtype_name();
    if (dt != "float16" && dt != "bfloat16") bad("q: expected dtype float16 or bfloat16, got " + dt);
    require_cuda(q, q.device_id);
    require_last_contiguous(q);
    for (const View* t : rest) {
        if (!t) continue;
        require_cuda(*t, q.device_id);
        require_last_contiguous(*t);
        if (t->dtype_name() != dt) bad(t->name + ": expected dtype " + dt + " (as q), got " + t->dtype_name());
    }
    return dt == "float16" ? "fp16" : "bf16";
}

constexpr const char* kBatchLayout  = "(batch, seqlen, heads, head_dim)";
constexpr const char* kVarlenLayout = "(total_tokens, heads, head_dim)";

// Problem sizes read off q, k, v (varlen: sq / sk are the total token counts, b from seqstart_q).
struct Dims {
    bool varlen = false;
    int64_t b = 0, sq = 0, sk = 0, hq = 0, hk = 0, d = 0, dv = 0;

    const char* layout() const { return varlen ? kVarlenLayout : kBatchLayout; }
    std::vector<int64_t> rows(int64_t s, int64_t h, int64_t w) const {
        return varlen ? std::vector<int64_t>{s, h, w} : std::vector<int64_t>{b, s, h, w};
    }
    std::vector<int64_t> q() const { return rows(sq, hq, d); }
    std::vector<int64_t> k() const { return rows(sk, hk, d); }
    std::vector<int64_t> v() const { return rows(sk, hk, dv); }
    std::vector<int64_t> o() const { return rows(sq, hq, dv); }
    std::vector<int64_t> lse() const { return varlen ? std::vector<int64_t>{hq, sq} : std::vector<int64_t>{b, hq, sq}; }
    const char* lse_layout() const { return varlen ? "(heads, total_q)" : "(batch, heads, seqlen_q)"; }
};

// Ranks and shapes of q, k, v and out; varlen mode when seqstart_q is given.
Dims check_shapes(const View& q, const View& k, const View& v, const View& o, const View* seqstart_q) {
    Dims m;
    m.varlen = seqstart_q != nullptr;
    const size_t rank = m.varlen ? 3 : 4, s = m.varlen ? 0 : 1;
    for (const View* t : {&q, &k, &v}) require_rank(*t, rank, m.layout());
    if (m.varlen) {
        // The rank first: the batch is read off the one dimension.
        if (seqstart_q->shape.size() != 1)
            bad("cu_seqlens_q: expected a 1-D int32 tensor [batch + 1], got shape " + shape_str(seqstart_q->shape));
        m.b = seqstart_q->shape[0] - 1;
        if (m.b < 0) bad("cu_seqlens_q: expected shape [batch + 1]");
    } else {
        m.b = q.shape[0];
    }
    m.sq = q.shape[s], m.hq = q.shape[s + 1], m.d = q.shape[s + 2];
    m.sk = k.shape[s], m.hk = k.shape[s + 1], m.dv = v.shape[s + 2];
    require_shape(k, m.k(), m.layout());
    require_shape(v, m.v(), m.layout());
    require_shape(o, m.o(), m.layout());
    return m;
}

// The sizes every args struct shares (aiter::mha_fwd_args, aiter::mha_bwd_args).
template <class Args>
void set_sizes(Args& a, const Dims& m) {
    const bool vl = m.varlen;
    a.batch = to_int(m.b, vl ? "cu_seqlens_q.shape[0] - 1" : "q.shape[0]");
    a.seqlen_q = to_int(m.sq, vl ? "q.shape[0]" : "q.shape[1]");
    a.seqlen_k = to_int(m.sk, vl ? "k.shape[0]" : "k.shape[1]");
    a.nhead_q = to_int(m.hq, vl ? "q.shape[1]" : "q.shape[2]");
    a.nhead_k = to_int(m.hk, vl ? "k.shape[1]" : "k.shape[2]");
    a.hdim_q = to_int(m.d, vl ? "q.shape[2]" : "q.shape[3]");
    a.hdim_v = to_int(m.dv, vl ? "v.shape[2]" : "v.shape[3]");
}

// Row, head and batch strides of a [b, s, h, d] (batch mode) or [t, h, d] (varlen) view.
void put_strides(const View& t, bool varlen, int64_t& row, int64_t& head, int64_t& batch) {
    row = varlen ? t.strides[0] : t.strides[1];
    head = varlen ? t.strides[1] : t.strides[2];
    batch = varlen ? 0 : t.strides[0];
}

// An fp32 LSE-shaped tensor (softmax_lse, softmax_d): [b, hq, sq] or [hq, total_q], rows contiguous.
void check_lse_like(const View& t, const Dims& m, int dev) {
    require_cuda(t, dev);
    if (t.dtype_name() != "float32") bad(t.name + ": expected dtype float32, got " + t.dtype_name());
    require_shape(t, m.lse(), m.lse_layout());
    if (m.sq > 1 && t.strides.back() != 1) bad(t.name + ": expected the last dimension contiguous");
}

// Head and batch strides of an LSE-shaped tensor.
void lse_strides(const View& t, const Dims& m, int64_t& head, int64_t& batch) {
    head = m.varlen ? t.strides[0] : t.strides[1];
    batch = m.varlen ? 0 : t.strides[0];
}

// Optional LSE of the forward (and of split-KV, which is batch mode).
void set_fwd_lse(aiter::mha_fwd_args& a, const View* lse, const Dims& m, int dev) {
    if (!lse) return;
    check_lse_like(*lse, m, dev);
    a.has_lse = true, a.lse_ptr = lse->data;
    lse_strides(*lse, m, a.nhead_stride_lse, a.batch_stride_lse);
}

// Group-mode prefix sums (physical, required) and the optional logical lengths of either mode.
void check_seqlen_vectors(const Dims& m, const View* ssq, const View* ssk, const View* cuq, const View* cuk,
                          const View* slk, int dev) {
    if (m.varlen) require_int32_vector(ssq, m.b + 1, dev), require_int32_vector(ssk, m.b + 1, dev);
    require_int32_vector(cuq, m.b + 1, dev), require_int32_vector(cuk, m.b + 1, dev);
    require_int32_vector(slk, m.b, dev);
}

// Makes the tensors' device current for the call and restores the caller's on exit (also on throw).
struct DeviceGuard {
    int previous = -1;
    explicit DeviceGuard(int dev) {
        if (cudaGetDevice(&previous) != cudaSuccess) {
            cudaGetLastError();
            previous = -1;
            return;
        }
        if (previous != dev && cudaSetDevice(dev) != cudaSuccess) {
            previous = -1;
            bad("q: cannot make cuda:" + std::to_string(dev) + " current");
        }
    }
    ~DeviceGuard() {
        int now = -1;
        if (previous >= 0 && cudaGetDevice(&now) == cudaSuccess && now != previous) cudaSetDevice(previous);
    }
};

[[noreturn]] void raise_unsupported(const std::string& why) {
    PyErr_SetString(PyExc_NotImplementedError,
                    ("aiter_mha: no compiled kernel supports this configuration: " + why).c_str());
    throw py::error_already_set();
}

// The tail every entry point shares: with check_only, only select (the kernel name or the
// reason goes to *reason; returns 0 or -1); otherwise run on `stream` with the GIL released,
// turning a -1 into NotImplementedError with the check's reason.
template <class Args, class CheckFn, class RunFn>
float check_or_run(const Args& a, CheckFn check, RunFn run, int dev, uintptr_t stream, bool check_only,
                   std::string* reason) {
    if (check_only) {
        const aiter::mha_check_result r = check(a);
        if (reason) *reason = r.supported ? r.kernel_name : r.reason;
        return r.supported ? 0.f : -1.f;
    }
    const DeviceGuard on_device(dev);
    aiter::stream_config s;
    s.stream_id_ = reinterpret_cast<cudaStream_t>(stream);
    float r = 0.f;
    {
        py::gil_scoped_release release;
        r = run(a, s);
    }
    if (r < 0.f) raise_unsupported(check(a).reason);
    return r;
}

// Builds aiter::mha_fwd_args from the views and runs (or, with check_only, only selects).
float run_fwd(py::handle q_c, py::handle k_c, py::handle v_c, py::handle o_c, py::handle lse_c,
              py::handle seqstart_q_c, py::handle seqstart_k_c, py::handle cu_q_c, py::handle cu_k_c,
              py::handle seqlen_k_c, int max_seqlen_q, float scale, float softcap, int mask_type, int left,
              int right, bool use_v3, uintptr_t stream, bool check_only, std::string* reason) {
    ViewPtr q = borrow(q_c, "q"), k = borrow(k_c, "k"), v = borrow(v_c, "v"), o = borrow(o_c, "out"),
            lse = borrow(lse_c, "softmax_lse"), ssq = borrow(seqstart_q_c, "cu_seqlens_q"),
            ssk = borrow(seqstart_k_c, "cu_seqlens_k"), cuq = borrow(cu_q_c, "cu_seqlens_q (logical)"),
            cuk = borrow(cu_k_c, "cu_seqlens_k (logical)"), slk = borrow(seqlen_k_c, "seqlen_k");
    if (!q || !k || !v || !o) bad("q, k, v and out are required");
    if ((ssq != nullptr) != (ssk != nullptr)) bad("cu_seqlens_k: expected together with cu_seqlens_q (varlen mode)");
    const int dev = q->device_id;
    aiter::mha_fwd_args a;
    a.data_type = check_tensors(*q, {k.get(), v.get(), o.get()});
    const Dims m = check_shapes(*q, *k, *v, *o, ssq.get());
    check_seqlen_vectors(m, ssq.get(), ssk.get(), cuq.get(), cuk.get(), slk.get(), dev);
    a.use_asm_v3 = use_v3;
    a.is_group_mode = m.varlen;
    a.q_ptr = q->data, a.k_ptr = k->data, a.v_ptr = v->data, a.o_ptr = o->data;
    a.scale_s = scale;
    a.logits_soft_cap = softcap;
    a.mask_type = mask_type, a.window_size_left = left, a.window_size_right = right;
    set_sizes(a, m);
    if (m.varlen && max_seqlen_q <= 0)
        bad("max_seqlen_q: expected the longest query sequence (> 0), got " + std::to_string(max_seqlen_q));
    a.max_seqlen_q = m.varlen ? max_seqlen_q : a.seqlen_q;
    put_strides(*q, m.varlen, a.stride_q, a.nhead_stride_q, a.batch_stride_q);
    put_strides(*k, m.varlen, a.stride_k, a.nhead_stride_k, a.batch_stride_k);
    put_strides(*v, m.varlen, a.stride_v, a.nhead_stride_v, a.batch_stride_v);
    put_strides(*o, m.varlen, a.stride_o, a.nhead_stride_o, a.batch_stride_o);
    set_fwd_lse(a, lse.get(), m, dev);
    a.seqstart_q_ptr = ssq ? ssq->data : nullptr, a.seqstart_k_ptr = ssk ? ssk->data : nullptr;
    a.cu_seqlen_q_ptr = cuq ? cuq->data : nullptr;
    a.cu_seqlen_k_ptr = cuk ? cuk->data : nullptr;
    a.seqlen_k_ptr = slk ? slk->data : nullptr;

    return check_or_run(
        a, [](const aiter::mha_fwd_args& x) { return aiter::mha_fwd_check(x); },
        [](const aiter::mha_fwd_args& x, const aiter::stream_config& s) { return aiter::mha_fwd(x, s); }, dev, stream,
        check_only, reason);
}

// Split-KV / KV-cache forward (batch mode): q [b, sq, hq, d]; k/v caches [b_cache, s_cap, hk, d]
// (not paged) or [num_pages, page_size, hk, d] with block_table int32 [b, max_blocks] (paged);
// cache_seqlens int32 [b] (logical key lengths), cache_batch_idx int32 [b]. The fp32 split
// workspaces are allocated stream-ordered (cudaMallocAsync / cudaFreeAsync) when > 1 split runs.
float run_fwd_splitkv(py::handle q_c, py::handle k_c, py::handle v_c, py::handle o_c, py::handle lse_c,
                      py::handle block_table_c, py::handle seqlens_c, py::handle batch_idx_c, int num_splits,
                      float scale, float softcap, int mask_type, int left, int right, uintptr_t stream) {
    ViewPtr q = borrow(q_c, "q"), k = borrow(k_c, "k_cache"), v = borrow(v_c, "v_cache"), o = borrow(o_c, "out"),
            lse = borrow(lse_c, "softmax_lse"), bt = borrow(block_table_c, "block_table"),
            sl = borrow(seqlens_c, "cache_seqlens"), bi = borrow(batch_idx_c, "cache_batch_idx");
    if (!q || !k || !v || !o) bad("q, k_cache, v_cache and out are required");
    const int dev = q->device_id;
    const std::string dt = check_tensors(*q, {k.get(), v.get(), o.get()});
    const char* L = kBatchLayout;
    require_rank(*q, 4, L), require_rank(*k, 4, "(cache batch or page, rows, heads, head_dim)");
    require_rank(*v, 4, "(cache batch or page, rows, heads, head_dim)");
    const int64_t b = q->shape[0], sq = q->shape[1], hq = q->shape[2], d = q->shape[3];
    const int64_t hk = k->shape[2], dv = v->shape[3];
    require_shape(*k, {k->shape[0], k->shape[1], hk, d}, "(cache batch or page, rows, heads, head_dim)");
    require_shape(*v, {k->shape[0], k->shape[1], hk, dv}, "(as k_cache, with v's head_dim)");
    require_shape(*o, {b, sq, hq, dv}, L);

    aiter::mha_fwd_splitkv_args a;
    a.data_type = dt;
    a.q_ptr = q->data, a.k_ptr = k->data, a.v_ptr = v->data, a.o_ptr = o->data;
    a.scale_s = scale, a.logits_soft_cap = softcap;
    a.mask_type = mask_type, a.window_size_left = left, a.window_size_right = right;
    a.batch = to_int(b, "q.shape[0]"), a.seqlen_q = to_int(sq, "q.shape[1]"), a.max_seqlen_q = a.seqlen_q;
    a.nhead_q = to_int(hq, "q.shape[2]"), a.nhead_k = to_int(hk, "k_cache.shape[2]");
    a.hdim_q = to_int(d, "q.shape[3]"), a.hdim_v = to_int(dv, "v_cache.shape[3]");
    put_strides(*q, false, a.stride_q, a.nhead_stride_q, a.batch_stride_q);
    put_strides(*k, false, a.stride_k, a.nhead_stride_k, a.batch_stride_k);
    put_strides(*v, false, a.stride_v, a.nhead_stride_v, a.batch_stride_v);
    put_strides(*o, false, a.stride_o, a.nhead_stride_o, a.batch_stride_o);
    if (bt) {
        require_cuda(*bt, dev);
        if (!(bt->dtype.code == kDLInt && bt->dtype.bits == 32)) bad("block_table: expected dtype int32, got " + bt->dtype_name());
        if (bt->shape.size() != 2 || bt->shape[0] != b)
            bad("block_table: expected shape [" + std::to_string(b) + ", max_blocks], got " + shape_str(bt->shape));
        if (bt->shape[1] > 1 && bt->strides[1] != 1) bad("block_table: expected contiguous rows");
        a.block_table_ptr = bt->data;
        a.batch_stride_block_table = bt->strides[0];
        a.page_block_size = to_int(k->shape[1], "k_cache.shape[1] (page size)");
        a.seqlen_k = to_int(bt->shape[1] * k->shape[1], "block_table.shape[1] * page size");
        a.num_pages = to_int(k->shape[0], "k_cache.shape[0] (pages)");
    } else {
        if (!bi && k->shape[0] != b)
            bad("k_cache: expected shape[0] == batch (" + std::to_string(b) + ") without cache_batch_idx, got " +
                std::to_string(k->shape[0]));
        a.seqlen_k = to_int(k->shape[1], "k_cache.shape[1]");
    }
    require_int32_vector(sl.get(), b, dev);
    require_int32_vector(bi.get(), b, dev);
    a.seqlen_k_ptr = sl ? sl->data : nullptr;
    a.cache_batch_idx = bi ? bi->data : nullptr;
    // Entries of cache_batch_idx index block_table's rows (paged) or k_cache's batches.
    if (bi) a.num_cache_batches = to_int(bt ? bt->shape[0] : k->shape[0], bt ? "block_table.shape[0]" : "k_cache.shape[0]");
    Dims m;
    m.b = b, m.sq = sq, m.hq = hq;
    set_fwd_lse(a, lse.get(), m, dev);
    a.num_splits = num_splits;

    const DeviceGuard on_device(dev);
    const int splits = aiter::mha_fwd_splitkv_num_splits(a);  // validates first
    auto* st = reinterpret_cast<cudaStream_t>(stream);
    void* ws = nullptr;
    if (splits > 1) {
        const int64_t lse_n = int64_t(splits) * b * hq * sq;
        const int64_t o_n = lse_n * dv;
        const size_t o_bytes = ((size_t(o_n) * 4 + 255) / 256) * 256;
        const cudaError_t e = cudaMallocAsync(&ws, o_bytes + size_t(lse_n) * 4, st);
        if (e != cudaSuccess) throw std::runtime_error(std::string("mha_fwd_splitkv: workspace: ") + cudaGetErrorString(e));
        a.o_acc_ptr = ws;
        a.lse_acc_ptr = static_cast<char*>(ws) + o_bytes;
        a.num_splits = splits;
        a.stride_o_acc = dv, a.nhead_stride_o_acc = sq * dv, a.batch_stride_o_acc = hq * sq * dv;
        a.split_stride_o_acc = b * hq * sq * dv;
        a.nhead_stride_lse_acc = sq, a.batch_stride_lse_acc = hq * sq, a.split_stride_lse_acc = b * hq * sq;
    }
    aiter::stream_config s;
    s.stream_id_ = st;
    float r = 0.f;
    try {
        py::gil_scoped_release release;
        r = aiter::mha_fwd_splitkv(a, s);
    } catch (...) {
        if (ws) cudaFreeAsync(ws, st);
        throw;
    }
    if (ws) cudaFreeAsync(ws, st);
    if (r < 0.f) raise_unsupported(aiter::mha_fwd_splitkv_check(a).reason);
    return r;
}

#ifdef AITER_MHA_WITH_BWD
// Whether two views of one shape address their elements alike (strides of extent-1 dims are free).
bool same_addressing(const View& a, const View& b) {
    for (size_t i = 0; i < a.shape.size(); ++i)
        if (a.shape[i] > 1 && a.strides[i] != b.strides[i]) return false;
    return true;
}

// Builds aiter::mha_bwd_args from the views and runs (or, with check_only, only validates and
// selects: the Python layer calls that before it allocates anything, with dq/dk/dv None when it
// is to allocate them). dq, dk, dv are outputs (dk/dv at nhead_k). softmax_d is
// optional: D = rowsum(dout * out) is written there (with softmax_lse's strides), else it lives
// in the library's workspace. The workspace comes from `workspace` (a Python callable: the
// caller's allocator) when given, else from the library's default: cudaMallocAsync /
// cudaFreeAsync on `stream`. Nothing synchronizes.
float run_bwd(py::handle do_c, py::handle q_c, py::handle k_c, py::handle v_c, py::handle o_c, py::handle lse_c,
              py::handle dq_c, py::handle dk_c, py::handle dv_c, py::handle d_c, py::handle seqstart_q_c,
              py::handle seqstart_k_c, py::handle cu_q_c, py::handle cu_k_c, int max_seqlen_q, int max_seqlen_k,
              float scale, int mask_type, int left, int right, bool deterministic, bool use_v3, uintptr_t stream,
              bool check_only, std::string* reason, py::object workspace = py::none()) {
    ViewPtr dout = borrow(do_c, "dout"), q = borrow(q_c, "q"), k = borrow(k_c, "k"), v = borrow(v_c, "v"),
            o = borrow(o_c, "out"), lse = borrow(lse_c, "softmax_lse"), dq = borrow(dq_c, "dq"),
            dk = borrow(dk_c, "dk"), dv = borrow(dv_c, "dv"), d = borrow(d_c, "softmax_d"),
            ssq = borrow(seqstart_q_c, "cu_seqlens_q"), ssk = borrow(seqstart_k_c, "cu_seqlens_k"),
            cuq = borrow(cu_q_c, "cu_seqlens_q (logical)"), cuk = borrow(cu_k_c, "cu_seqlens_k (logical)");
    if (!dout || !q || !k || !v || !o || !lse) bad("dout, q, k, v, out and softmax_lse are required");
    if (!check_only && (!dq || !dk || !dv)) bad("dq, dk and dv (the gradients written) are required");
    if ((ssq != nullptr) != (ssk != nullptr)) bad("cu_seqlens_k: expected together with cu_seqlens_q (varlen mode)");
    const int dev = q->device_id;
    aiter::mha_bwd_args a;
    a.data_type = check_tensors(*q, {k.get(), v.get(), o.get(), dout.get(), dq.get(), dk.get(), dv.get()});
    const Dims m = check_shapes(*q, *k, *v, *o, ssq.get());
    require_shape(*dout, m.o(), m.layout());
    if (dq) require_shape(*dq, m.q(), m.layout());
    if (dk) require_shape(*dk, m.k(), m.layout());
    if (dv) require_shape(*dv, m.v(), m.layout());
    // check_only before the gradients are allocated: q, k, v stand in for them (same shapes).
    const View& gq = dq ? *dq : *q;
    const View& gk = dk ? *dk : *k;
    const View& gv = dv ? *dv : *v;
    check_seqlen_vectors(m, ssq.get(), ssk.get(), cuq.get(), cuk.get(), nullptr, dev);
    check_lse_like(*lse, m, dev);
    if (d) {
        check_lse_like(*d, m, dev);
        if (!same_addressing(*d, *lse))
            bad("softmax_d: expected the strides of softmax_lse " + shape_str(lse->strides) +
                " (the library addresses both alike), got " + shape_str(d->strides));
    }
    set_sizes(a, m);
    if (m.varlen) {
        if (max_seqlen_q <= 0)
            bad("max_seqlen_q: expected the longest query sequence (> 0), got " + std::to_string(max_seqlen_q));
        if (max_seqlen_k < 0)
            bad("max_seqlen_k: expected the longest key sequence (>= 0), got " + std::to_string(max_seqlen_k));
        a.max_seqlen_q = max_seqlen_q, a.max_seqlen_k = max_seqlen_k;
    }
    a.is_group_mode = m.varlen;
    a.is_deterministic = deterministic;
    a.use_asm_v3 = use_v3;
    a.scale = scale;
    a.mask_type = mask_type, a.window_size_left = left, a.window_size_right = right;
    a.q_ptr = q->data, a.k_ptr = k->data, a.v_ptr = v->data, a.o_ptr = o->data, a.do_ptr = dout->data;
    a.lse_ptr = lse->data, a.d_ptr = d ? d->data : nullptr;
    a.dq_ptr = gq.data, a.dk_ptr = gk.data, a.dv_ptr = gv.data;
    put_strides(*q, m.varlen, a.stride_q, a.nhead_stride_q, a.batch_stride_q);
    put_strides(*k, m.varlen, a.stride_k, a.nhead_stride_k, a.batch_stride_k);
    put_strides(*v, m.varlen, a.stride_v, a.nhead_stride_v, a.batch_stride_v);
    put_strides(*o, m.varlen, a.stride_o, a.nhead_stride_o, a.batch_stride_o);
    put_strides(*dout, m.varlen, a.stride_do, a.nhead_stride_do, a.batch_stride_do);
    put_strides(gq, m.varlen, a.stride_dq, a.nhead_stride_dq, a.batch_stride_dq);
    put_strides(gk, m.varlen, a.stride_dk, a.nhead_stride_dk, a.batch_stride_dk);
    put_strides(gv, m.varlen, a.stride_dv, a.nhead_stride_dv, a.batch_stride_dv);
    lse_strides(*lse, m, a.nhead_stride_lsed, a.batch_stride_lsed);
    a.seqstart_q_ptr = ssq ? ssq->data : nullptr, a.seqstart_k_ptr = ssk ? ssk->data : nullptr;
    a.cu_seqlen_q_ptr = cuq ? cuq->data : nullptr;
    a.cu_seqlen_k_ptr = cuk ? cuk->data : nullptr;
    if (!workspace.is_none()) {
        // The caller's allocator (called without the GIL held by the launch): returns the address
        // of `bytes` of device memory that the caller keeps until the work on `stream` is done.
        a.workspace_alloc = [workspace](size_t bytes) {
            py::gil_scoped_acquire gil;
            return reinterpret_cast<void*>(workspace(bytes).cast<uintptr_t>());
        };
    }

    return check_or_run(
        a, [](const aiter::mha_bwd_args& x) { return aiter::mha_bwd_check(x); },
        [](const aiter::mha_bwd_args& x, const aiter::stream_config& s) { return aiter::mha_bwd(x, s); }, dev, stream,
        check_only, reason);
}
#endif  // AITER_MHA_WITH_BWD

}  // namespace

PYBIND11_MODULE(_C, m) {
    m.doc() = "aiter-mha for CUDA: DLPack bridge to aiter::mha_fwd / mha_fwd_splitkv / mha_bwd (see python/aiter_mha)";
    m.def("fwd",
          [](py::handle q, py::handle k, py::handle v, py::handle out, py::handle lse, py::handle seqstart_q,
             py::handle seqstart_k, py::handle cu_seqlen_q, py::handle cu_seqlen_k, py::handle seqlen_k,
             int max_seqlen_q, float scale, float softcap, int mask_type, int left, int right, bool use_v3,
             uintptr_t stream) {
              return run_fwd(q, k, v, out, lse, seqstart_q, seqstart_k, cu_seqlen_q, cu_seqlen_k, seqlen_k,
                             max_seqlen_q, scale, softcap, mask_type, left, right, use_v3, stream, false, nullptr);
          },
          py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("seqstart_q"),
          py::arg("seqstart_k"), py::arg("cu_seqlen_q"), py::arg("cu_seqlen_k"), py::arg("seqlen_k"),
          py::arg("max_seqlen_q"), py::arg("scale"), py::arg("softcap"), py::arg("mask_type"), py::arg("left"),
          py::arg("right"), py::arg("use_v3"), py::arg("stream"),
          "Runs aiter::mha_fwd on DLPack capsules (consumed). Returns 0.");
    m.def("fwd_check",
          [](py::handle q, py::handle k, py::handle v, py::handle out, py::handle lse, py::handle seqstart_q,
             py::handle seqstart_k, py::handle cu_seqlen_q, py::handle cu_seqlen_k, py::handle seqlen_k,
             int max_seqlen_q, float scale, float softcap, int mask_type, int left, int right, bool use_v3) {
              std::string why;
              const float r = run_fwd(q, k, v, out, lse, seqstart_q, seqstart_k, cu_seqlen_q, cu_seqlen_k, seqlen_k,
                                      max_seqlen_q, scale, softcap, mask_type, left, right, use_v3, 0, true, &why);
              return py::make_tuple(r == 0.f, why);
          },
          "Validates like fwd and answers (supported, kernel name or reason) without launching.");
    m.def("fwd_splitkv", &run_fwd_splitkv, py::arg("q"), py::arg("k_cache"), py::arg("v_cache"), py::arg("out"),
          py::arg("lse"), py::arg("block_table"), py::arg("cache_seqlens"), py::arg("cache_batch_idx"),
          py::arg("num_splits"), py::arg("scale"), py::arg("softcap"), py::arg("mask_type"), py::arg("left"),
          py::arg("right"), py::arg("stream"),
          "Runs aiter::mha_fwd_splitkv on DLPack capsules (consumed); allocates the split workspaces.");
    m.def("fwd_instances", &aiter::mha_fwd_instances, "Names of the compiled forward instances.");
#ifdef AITER_MHA_WITH_BWD
    m.attr("has_bwd") = true;
    m.def("bwd",
          [](py::handle dout, py::handle q, py::handle k, py::handle v, py::handle out, py::handle lse, py::handle dq,
             py::handle dk, py::handle dv, py::handle softmax_d, py::handle seqstart_q, py::handle seqstart_k,
             py::handle cu_seqlen_q, py::handle cu_seqlen_k, int max_seqlen_q, int max_seqlen_k, float scale,
             int mask_type, int left, int right, bool deterministic, bool use_v3, uintptr_t stream,
             py::object workspace) {
              return run_bwd(dout, q, k, v, out, lse, dq, dk, dv, softmax_d, seqstart_q, seqstart_k, cu_seqlen_q,
                             cu_seqlen_k, max_seqlen_q, max_seqlen_k, scale, mask_type, left, right, deterministic,
                             use_v3, stream, false, nullptr, workspace);
          },
          py::arg("dout"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("dq"),
          py::arg("dk"), py::arg("dv"), py::arg("softmax_d"), py::arg("seqstart_q"), py::arg("seqstart_k"),
          py::arg("cu_seqlen_q"), py::arg("cu_seqlen_k"), py::arg("max_seqlen_q"), py::arg("max_seqlen_k"),
          py::arg("scale"), py::arg("mask_type"), py::arg("left"), py::arg("right"), py::arg("deterministic"),
          py::arg("use_v3"), py::arg("stream"), py::arg("workspace") = py::none(),
          "Runs aiter::mha_bwd on DLPack capsules (consumed); use_v3: the v3 (Hopper) kernels where they "
          "take the call (use_asm_v3); workspace: None (cudaMallocAsync on the stream) or a callable "
          "bytes -> device address that stays valid until the stream's work is done. Returns 0.");
    m.def("bwd_check",
          [](py::handle dout, py::handle q, py::handle k, py::handle v, py::handle out, py::handle lse, py::handle dq,
             py::handle dk, py::handle dv, py::handle softmax_d, py::handle seqstart_q, py::handle seqstart_k,
             py::handle cu_seqlen_q, py::handle cu_seqlen_k, int max_seqlen_q, int max_seqlen_k, float scale,
             int mask_type, int left, int right, bool deterministic, bool use_v3) {
              std::string why;
              const float r = run_bwd(dout, q, k, v, out, lse, dq, dk, dv, softmax_d, seqstart_q, seqstart_k,
                                      cu_seqlen_q, cu_seqlen_k, max_seqlen_q, max_seqlen_k, scale, mask_type, left,
                                      right, deterministic, use_v3, 0, true, &why);
              return py::make_tuple(r == 0.f, why);
          },
          "Validates like bwd and answers (supported, kernel name or reason) without launching; "
          "dq, dk, dv may be None (not allocated yet).");
    m.def("bwd_instances", &aiter::mha_bwd_instances, "Names of the compiled backward instances.");
#else
    m.attr("has_bwd") = false;
#endif
}
