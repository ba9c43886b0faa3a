// The DLPack C ABI (https://dmlc.github.io/dlpack/latest/c_api.html), declared here from the
// published specification so the extension needs no framework headers. Only the legacy
// "dltensor" capsule (DLManagedTensor) is consumed.
#pragma once

#include <cstdint>

extern "C" {

enum DLDeviceType : int32_t {
    kDLCPU = 1,
    kDLCUDA = 2,
    kDLCUDAHost = 3,
    kDLCUDAManaged = 13,
};

struct DLDevice {
    int32_t device_type;  // DLDeviceType
    int32_t device_id;
};

enum DLDataTypeCode : uint8_t {
    kDLInt = 0,
    kDLUInt = 1,
    kDLFloat = 2,
    kDLBfloat = 4,
};

struct DLDataType {
    uint8_t code;
    uint8_t bits;
    uint16_t lanes;
};

struct DLTensor {
    void* data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t* shape;
    int64_t* strides;  // in elements; null means compact row-major
    uint64_t byte_offset;
};

struct DLManagedTensor {
    DLTensor dl_tensor;
    void* manager_ctx;
    void (*deleter)(DLManagedTensor* self);
};

}  // extern "C"
