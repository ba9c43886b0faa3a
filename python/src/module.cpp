// aiter_mha._C: a torch-free pybind11 bridge from DLPack tensors to the C++ API
// (aiter::mha_fwd and aiter::mha_fwd_splitkv).
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
// Errors: std::invalid_argument -> ValueError (names the argument), unsupported configuration
// -> NotImplementedError with the library's reason, CUDA errors -> RuntimeError.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dlpack_abi.h"
#include "mha_fwd.h"

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

// q, k, v, out: same CUDA device, fp16/bf16 alike, last dimension contiguous. Returns the dtype.
std::string check_qkvo(const View& q, const View& k, const View& v, const View& o) {
    for (const View* t : {&q, &k, &v, &o}) {
        require_cuda(*t, q.device_id);
        require_last_contiguous(*t);
    }
    const std::string dt = q.dtype_name();
    if (dt != "float16" && dt != "bfloat16") bad("q: expected dtype float16 or bfloat16, got " + dt);
    for (const View* t : {&k, &v, &o})
        if (t->dtype_name() != dt) bad(t->name + ": expected dtype " + dt + " (as q), got " + t->dtype_name());
    return dt;
}

// Batch-mode 4-d views [b, s, h, d]: batch, row and head strides of q, k, v, out.
void set_4d_strides(aiter::mha_fwd_args& a, const View& q, const View& k, const View& v, const View& o) {
    a.batch_stride_q = q.strides[0], a.stride_q = q.strides[1], a.nhead_stride_q = q.strides[2];
    a.batch_stride_k = k.strides[0], a.stride_k = k.strides[1], a.nhead_stride_k = k.strides[2];
    a.batch_stride_v = v.strides[0], a.stride_v = v.strides[1], a.nhead_stride_v = v.strides[2];
    a.batch_stride_o = o.strides[0], a.stride_o = o.strides[1], a.nhead_stride_o = o.strides[2];
}

// Optional batch-mode LSE [b, hq, sq] fp32.
void set_batch_lse(aiter::mha_fwd_args& a, const View* lse, int64_t b, int64_t hq, int64_t sq, int dev) {
    if (!lse) return;
    require_cuda(*lse, dev);
    if (lse->dtype_name() != "float32") bad("softmax_lse: expected dtype float32, got " + lse->dtype_name());
    require_shape(*lse, {b, hq, sq}, "(batch, heads, seqlen_q)");
    if (sq > 1 && lse->strides[2] != 1) bad("softmax_lse: expected the last dimension contiguous");
    a.has_lse = true, a.lse_ptr = lse->data;
    a.batch_stride_lse = lse->strides[0], a.nhead_stride_lse = lse->strides[1];
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
    const bool varlen = ssq != nullptr;
    if (varlen != (ssk != nullptr)) bad("cu_seqlens_k: expected together with cu_seqlens_q (varlen mode)");
    const int dev = q->device_id;
    const std::string dt = check_qkvo(*q, *k, *v, *o);

    aiter::mha_fwd_args a;
    a.use_asm_v3 = use_v3;
    a.data_type = dt == "float16" ? "fp16" : "bf16";
    a.is_group_mode = varlen;
    a.q_ptr = q->data, a.k_ptr = k->data, a.v_ptr = v->data, a.o_ptr = o->data;
    a.scale_s = scale;
    a.logits_soft_cap = softcap;
    a.mask_type = mask_type, a.window_size_left = left, a.window_size_right = right;
    if (!varlen) {
        const char* L = "(batch, seqlen, heads, head_dim)";
        require_rank(*q, 4, L), require_rank(*k, 4, L), require_rank(*v, 4, L);
        const int64_t b = q->shape[0], sq = q->shape[1], hq = q->shape[2], d = q->shape[3];
        const int64_t sk = k->shape[1], hk = k->shape[2], dv = v->shape[3];
        require_shape(*k, {b, sk, hk, d}, L);
        require_shape(*v, {b, sk, hk, dv}, L);
        require_shape(*o, {b, sq, hq, dv}, L);
        a.batch = to_int(b, "q.shape[0]"), a.seqlen_q = to_int(sq, "q.shape[1]"), a.seqlen_k = to_int(sk, "k.shape[1]");
        a.max_seqlen_q = a.seqlen_q;
        a.nhead_q = to_int(hq, "q.shape[2]"), a.nhead_k = to_int(hk, "k.shape[2]");
        a.hdim_q = to_int(d, "q.shape[3]"), a.hdim_v = to_int(dv, "v.shape[3]");
        set_4d_strides(a, *q, *k, *v, *o);
        set_batch_lse(a, lse.get(), b, hq, sq, dev);
        if (cuq || cuk || slk) {
            require_int32_vector(cuq.get(), b + 1, dev), require_int32_vector(cuk.get(), b + 1, dev);
            require_int32_vector(slk.get(), b, dev);
            a.cu_seqlen_q_ptr = cuq ? cuq->data : nullptr;
            a.cu_seqlen_k_ptr = cuk ? cuk->data : nullptr;
            a.seqlen_k_ptr = slk ? slk->data : nullptr;
        }
    } else {
        const char* L = "(total_tokens, heads, head_dim)";
        require_rank(*q, 3, L), require_rank(*k, 3, L), require_rank(*v, 3, L);
        const int64_t tq = q->shape[0], hq = q->shape[1], d = q->shape[2];
        const int64_t tk = k->shape[0], hk = k->shape[1], dv = v->shape[2];
        require_shape(*k, {tk, hk, d}, L);
        require_shape(*v, {tk, hk, dv}, L);
        require_shape(*o, {tq, hq, dv}, L);
        const int64_t b = ssq->shape.empty() ? 0 : ssq->shape[0] - 1;
        if (b < 0) bad("cu_seqlens_q: expected shape [batch + 1]");
        require_int32_vector(ssq.get(), b + 1, dev), require_int32_vector(ssk.get(), b + 1, dev);
        require_int32_vector(cuq.get(), b + 1, dev), require_int32_vector(cuk.get(), b + 1, dev);
        require_int32_vector(slk.get(), b, dev);
        a.batch = to_int(b, "cu_seqlens_q.shape[0] - 1");
        a.seqlen_q = to_int(tq, "q.shape[0]"), a.seqlen_k = to_int(tk, "k.shape[0]");
        if (max_seqlen_q <= 0) bad("max_seqlen_q: expected the longest query sequence (> 0), got " + std::to_string(max_seqlen_q));
        a.max_seqlen_q = max_seqlen_q;
        a.nhead_q = to_int(hq, "q.shape[1]"), a.nhead_k = to_int(hk, "k.shape[1]");
        a.hdim_q = to_int(d, "q.shape[2]"), a.hdim_v = to_int(dv, "v.shape[2]");
        a.stride_q = q->strides[0], a.nhead_stride_q = q->strides[1];
        a.stride_k = k->strides[0], a.nhead_stride_k = k->strides[1];
        a.stride_v = v->strides[0], a.nhead_stride_v = v->strides[1];
        a.stride_o = o->strides[0], a.nhead_stride_o = o->strides[1];
        a.seqstart_q_ptr = ssq->data, a.seqstart_k_ptr = ssk->data;
        a.cu_seqlen_q_ptr = cuq ? cuq->data : nullptr;
        a.cu_seqlen_k_ptr = cuk ? cuk->data : nullptr;
        a.seqlen_k_ptr = slk ? slk->data : nullptr;
        if (lse) {
            require_cuda(*lse, dev);
            if (lse->dtype_name() != "float32") bad("softmax_lse: expected dtype float32, got " + lse->dtype_name());
            require_shape(*lse, {hq, tq}, "(heads, total_q)");
            if (tq > 1 && lse->strides[1] != 1) bad("softmax_lse: expected the last dimension contiguous");
            a.has_lse = true, a.lse_ptr = lse->data, a.nhead_stride_lse = lse->strides[0];
        }
    }

    if (check_only) {
        const aiter::mha_check_result r = aiter::mha_fwd_check(a);
        if (reason) *reason = r.supported ? r.kernel_name : r.reason;
        return r.supported ? 0.f : -1.f;
    }
    const DeviceGuard on_device(dev);
    aiter::stream_config s;
    s.stream_id_ = reinterpret_cast<cudaStream_t>(stream);
    float r = 0.f;
    {
        py::gil_scoped_release release;
        r = aiter::mha_fwd(a, s);
    }
    if (r < 0.f) raise_unsupported(aiter::mha_fwd_check(a).reason);
    return r;
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
    const std::string dt = check_qkvo(*q, *k, *v, *o);
    const char* L = "(batch, seqlen, heads, head_dim)";
    require_rank(*q, 4, L), require_rank(*k, 4, "(cache batch or page, rows, heads, head_dim)");
    require_rank(*v, 4, "(cache batch or page, rows, heads, head_dim)");
    const int64_t b = q->shape[0], sq = q->shape[1], hq = q->shape[2], d = q->shape[3];
    const int64_t hk = k->shape[2], dv = v->shape[3];
    require_shape(*k, {k->shape[0], k->shape[1], hk, d}, "(cache batch or page, rows, heads, head_dim)");
    require_shape(*v, {k->shape[0], k->shape[1], hk, dv}, "(as k_cache, with v's head_dim)");
    require_shape(*o, {b, sq, hq, dv}, L);

    aiter::mha_fwd_splitkv_args a;
    a.data_type = dt == "float16" ? "fp16" : "bf16";
    a.q_ptr = q->data, a.k_ptr = k->data, a.v_ptr = v->data, a.o_ptr = o->data;
    a.scale_s = scale, a.logits_soft_cap = softcap;
    a.mask_type = mask_type, a.window_size_left = left, a.window_size_right = right;
    a.batch = to_int(b, "q.shape[0]"), a.seqlen_q = to_int(sq, "q.shape[1]"), a.max_seqlen_q = a.seqlen_q;
    a.nhead_q = to_int(hq, "q.shape[2]"), a.nhead_k = to_int(hk, "k_cache.shape[2]");
    a.hdim_q = to_int(d, "q.shape[3]"), a.hdim_v = to_int(dv, "v_cache.shape[3]");
    set_4d_strides(a, *q, *k, *v, *o);
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
    set_batch_lse(a, lse.get(), b, hq, sq, dev);
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

}  // namespace

PYBIND11_MODULE(_C, m) {
    m.doc() = "aiter-mha for CUDA: DLPack bridge to aiter::mha_fwd (see python/aiter_mha)";
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
}
