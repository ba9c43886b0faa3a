// The one host dispatch of every kernel family (fwd v2, fwd v3, split-KV, bwd v2):
//   key (from the validated arguments) -> the generated table's instance of that key ->
//   can_run (shared memory on the current device) -> launch,
// each step giving a reason when it refuses. Order in a table never matters.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "common/host_util.h"
#include "mha_common.h"

namespace aiter {

// What the host needs to know of a compiled kernel besides its key.
struct KernelInfo {
    int smem_bytes = 0;  // dynamic shared memory of its largest kernel
    int block_m    = 0;  // query rows per tile (the backward sizes its dQ accumulator with it)
};

// One entry of a generated dispatcher table (codegen/templates/table.cu.j2).
template <class Key, class Params>
struct KernelInstance {
    const char* name;
    Key key;
    cudaError_t (*launch)(const Params&, cudaStream_t);
    KernelInfo (*info)();
};

namespace host {

// A generated table: `count` entries (a null sentinel keeps empty arrays legal).
template <class Entry>
struct Table {
    const Entry* entries;
    int count;

    const Entry* begin() const { return entries; }
    const Entry* end() const { return entries + count; }

    template <class Key>
    const Entry* find(const Key& key) const {
        for (const Entry& e : *this)
            if (e.key == key) return &e;
        return nullptr;
    }
    std::vector<std::string> names() const {
        std::vector<std::string> v;
        for (const Entry& e : *this) v.emplace_back(e.name);
        return v;
    }
};

// Why kernel `name` (needing `bytes` of dynamic shared memory) cannot run on the current
// device, or "" when it can (or when no device can be queried).
inline std::string smem_shortfall(const char* name, int bytes) {
    const int optin = device_smem_optin();
    if (optin < 0 || bytes <= optin) return {};
    return std::string(name) + " needs " + std::to_string(bytes) +
           " bytes of shared memory per block; this device allows " + std::to_string(optin);
}

// The answer of a *_check function: the instance that would run, or why none can, with the
// family's compiled instances as candidates.
template <class Entry>
mha_check_result check_result(const Table<Entry>& table, const Entry* chosen, const std::string& why) {
    mha_check_result r;
    r.candidates = table.names();
    r.supported  = chosen != nullptr;
    if (chosen) r.kernel_name = chosen->name;
    else r.reason = why;
    return r;
}

// The instance of `key` if it is compiled and (query_device) fits the current device; else
// null with *why = "no compiled <what> instance for <key_desc> (<hint>)" or the shortfall.
template <class Entry, class Key>
const Entry* select_instance(const Table<Entry>& table, const Key& key, const std::string& what,
                             const std::string& key_desc, const std::string& hint, bool query_device,
                             std::string* why) {
    const Entry* e = table.find(key);
    if (e == nullptr) {
        *why = "no compiled " + what + " instance for " + key_desc + " (" + hint + ")";
        return nullptr;
    }
    if (query_device) {
        if (std::string s = smem_shortfall(e->name, e->info().smem_bytes); !s.empty()) {
            *why = s;
            return nullptr;
        }
    }
    return e;
}

// Pointers and strides (elements) of the tensors a 16-byte-row kernel reads or writes.
struct PtrField {
    const char* name;
    const void* ptr;
};
struct StrideField {
    const char* name;
    int64_t value;
};

// The first field that keeps rows from being 16-byte aligned (a pointer not 16-byte aligned, a
// stride not a multiple of `stride_multiple` elements), as "<field> ...", or "" when none does.
inline std::string alignment_problem(std::initializer_list<PtrField> ptrs, std::initializer_list<StrideField> strides,
                                     int stride_multiple = 8) {
    for (const PtrField& p : ptrs)
        if (reinterpret_cast<uintptr_t>(p.ptr) % 16 != 0) return std::string(p.name) + " is not 16-byte aligned";
    for (const StrideField& s : strides)
        if (s.value % stride_multiple != 0)
            return std::string(s.name) + " = " + std::to_string(s.value) + " is not a multiple of " +
                   std::to_string(stride_multiple) + " elements";
    return {};
}

}  // namespace host
}  // namespace aiter
