// Host-side fp16 / bf16 <-> fp32 conversions, without CUDA headers (plain C++20).
//
//   fp16 (IEEE binary16): 1 sign, 5 exponent (bias 15), 10 mantissa bits
//   bf16               : the upper 16 bits of an fp32 (1 sign, 8 exponent, 7 mantissa)
//
// float -> 16 bit rounds to nearest, ties to even (what __float2half_rn / __float2bfloat16_rn
// do on the device), overflows to ±inf, keeps NaN a (quiet) NaN. 16 bit -> float is exact.
// Values are carried as raw uint16_t bits, the host image of __half / __nv_bfloat16.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace bench {

enum class ElemType { fp16, bf16 };

inline uint16_t float_to_fp16_bits(float f) {
    const uint32_t x    = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t a    = x & 0x7fffffffu;  // |f| bits
    if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN -> quiet NaN
    // 65520 = 0x477ff000 is halfway between 65504 (max fp16, odd mantissa) and 2^16: ties
    // round to even, i.e. to infinity.
    if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
    const int e = static_cast<int>(a >> 23) - 127;  // unbiased exponent
    const uint32_t mant = a & 0x7fffffu;
    if (e >= -14) {  // normal fp16
        uint32_t h   = (static_cast<uint32_t>(e + 15) << 10) | (mant >> 13);
        uint32_t rem = mant & 0x1fffu;  // the 13 dropped bits
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // carry may bump the exponent
        return static_cast<uint16_t>(sign | h);
    }
    // fp16 subnormal (unit 2^-24) or zero: q = |f| / 2^-24 = m * 2^(e + 1), m the 24-bit
    // significand, so shift right by -(e + 1) >= 14.
    const int shift = -(e + 1);
    if (shift > 25) return static_cast<uint16_t>(sign);  // < 2^-25 (incl. fp32 denormals): 0
    const uint32_t m    = mant | 0x800000u;
    uint32_t q          = m >> shift;
    const uint32_t rem  = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;  // q == 0x400 is the smallest normal
    return static_cast<uint16_t>(sign | q);
}

inline float fp16_bits_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t e    = (h >> 10) & 0x1fu;
    const uint32_t m    = h & 0x3ffu;
    if (e == 31) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));  // inf / NaN
    if (e == 0) {                                                               // zero / subnormal
        const float v = std::ldexp(static_cast<float>(m), -24);
        return sign ? -v : v;
    }
    return std::bit_cast<float>(sign | ((e - 15 + 127) << 23) | (m << 13));
}

inline uint16_t float_to_bf16_bits(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // NaN
    const uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);  // ties to even
    return static_cast<uint16_t>((x + rounding) >> 16);
}

inline float bf16_bits_to_float(uint16_t b) {
    return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

inline uint16_t float_to_bits(ElemType t, float f) {
    return t == ElemType::fp16 ? float_to_fp16_bits(f) : float_to_bf16_bits(f);
}

inline float bits_to_float(ElemType t, uint16_t b) {
    return t == ElemType::fp16 ? fp16_bits_to_float(b) : bf16_bits_to_float(b);
}

// f rounded to the precision of t (RNE), back in fp32.
inline float round_to(ElemType t, float f) { return bits_to_float(t, float_to_bits(t, f)); }

}  // namespace bench
