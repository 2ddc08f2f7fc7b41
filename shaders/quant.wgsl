// Reading GGUF quantized blocks in place. The including kernel declares the packed weights as
// `w: array<u32>` and the constant FORMAT; `load4(row, g)` returns elements 4g..4g+3 of the row
// that starts at byte `row`. Blocks keep GGUF's byte layout (no repacking), so every field starts
// on an even byte but not always on a 4-byte boundary: `ld_u32` stitches two words when needed.

const F32: u32 = 0u;
const F16: u32 = 1u;
const Q8_0: u32 = 2u;
const Q4_0: u32 = 3u;
const Q4_1: u32 = 4u;
const Q5_0: u32 = 5u;
const Q5_1: u32 = 6u;
const Q4_K: u32 = 7u;
const Q5_K: u32 = 8u;
const Q6_K: u32 = 9u;
const Q2_K: u32 = 10u;
const Q3_K: u32 = 11u;

fn ld_u32(b: u32) -> u32 {
    let i = b >> 2u;
    if ((b & 2u) == 0u) {
        return w[i];
    }
    return (w[i] >> 16u) | (w[i + 1u] << 16u);
}

fn ld_u8(b: u32) -> u32 {
    return (w[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
}

fn ld_f16(b: u32) -> f32 {
    return unpack2x16float((w[b >> 2u] >> ((b & 2u) * 8u)) & 0xffffu).x;
}

// Four 4-bit fields, one from each byte of q, starting at bit `shift` of each byte.
fn nibbles(q: u32, shift: u32) -> vec4<f32> {
    let v = (q >> shift) & 0x0f0f0f0fu;
    return vec4<f32>(f32(v & 0xffu), f32((v >> 8u) & 0xffu), f32((v >> 16u) & 0xffu), f32(v >> 24u));
}

// Bit `bit` of each of the four bytes of q.
fn bits(q: u32, bit: u32) -> vec4<f32> {
    let v = (q >> bit) & 0x01010101u;
    return vec4<f32>(f32(v & 0xffu), f32((v >> 8u) & 0xffu), f32((v >> 16u) & 0xffu), f32(v >> 24u));
}

// Bits e..e+3 of qh.
fn bit_run(qh: u32, e: u32) -> vec4<f32> {
    let v = qh >> e;
    return vec4<f32>(f32(v & 1u), f32((v >> 1u) & 1u), f32((v >> 2u) & 1u), f32((v >> 3u) & 1u));
}

fn signed_bytes(q: u32) -> vec4<f32> {
    let v = vec4<i32>(i32(q << 24u), i32(q << 16u), i32(q << 8u), i32(q)) >> vec4<u32>(24u);
    return vec4<f32>(v);
}

// The 6-bit scale and min of sub-block j (0..7) in a Q4_K/Q5_K block whose 12 scale bytes start at s.
fn scale_min_k4(s: u32, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(ld_u8(s + j) & 63u), f32(ld_u8(s + j + 4u) & 63u));
    }
    let sc = (ld_u8(s + j + 4u) & 0xfu) | ((ld_u8(s + j - 4u) >> 6u) << 4u);
    let m = (ld_u8(s + j + 4u) >> 4u) | ((ld_u8(s + j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}

// Four 2-bit fields, one from each byte of q, starting at bit `shift` of each byte.
fn crumbs(q: u32, shift: u32) -> vec4<f32> {
    let v = (q >> shift) & 0x03030303u;
    return vec4<f32>(f32(v & 0xffu), f32((v >> 8u) & 0xffu), f32((v >> 16u) & 0xffu), f32(v >> 24u));
}

// The signed scale of sub-block j (0..15) in a Q3_K block whose 12 scale bytes start at s: low 4
// bits from a nibble of byte j % 8, top 2 from byte 8 + j % 4, biased by 32.
fn scale_k3(s: u32, j: u32) -> f32 {
    let low = (ld_u8(s + j % 8u) >> (4u * (j / 8u))) & 0xfu;
    let high = (ld_u8(s + 8u + j % 4u) >> (2u * (j / 4u))) & 3u;
    return f32(i32(low | (high << 4u)) - 32);
}

fn load4(row: u32, g: u32) -> vec4<f32> {
    switch FORMAT {
        case F32: {
            let b = row + g * 16u;
            return vec4<f32>(bitcast<f32>(ld_u32(b)), bitcast<f32>(ld_u32(b + 4u)),
                             bitcast<f32>(ld_u32(b + 8u)), bitcast<f32>(ld_u32(b + 12u)));
        }
        case F16: {
            let b = row + g * 8u;
            return vec4<f32>(unpack2x16float(ld_u32(b)), unpack2x16float(ld_u32(b + 4u)));
        }
        case Q8_0: { // d, 32 x i8
            let b = row + (g / 8u) * 34u;
            return ld_f16(b) * signed_bytes(ld_u32(b + 2u + (g % 8u) * 4u));
        }
        case Q4_0: { // d, 16 bytes; element j < 16 is the low nibble of byte j, j >= 16 the high one of j - 16
            let b = row + (g / 8u) * 18u;
            let j = g % 8u;
            let q = nibbles(ld_u32(b + 2u + (j % 4u) * 4u), (j / 4u) * 4u);
            return ld_f16(b) * (q - 8.0);
        }
        case Q4_1: { // d, m, 16 bytes
            let b = row + (g / 8u) * 20u;
            let j = g % 8u;
            let q = nibbles(ld_u32(b + 4u + (j % 4u) * 4u), (j / 4u) * 4u);
            return ld_f16(b) * q + ld_f16(b + 2u);
        }
        case Q5_0: { // d, 32 high bits, 16 bytes of low nibbles
            let b = row + (g / 8u) * 22u;
            let j = g % 8u;
            let e = (j / 4u) * 16u + (j % 4u) * 4u;
            let q = nibbles(ld_u32(b + 6u + (j % 4u) * 4u), (j / 4u) * 4u) + 16.0 * bit_run(ld_u32(b + 2u), e);
            return ld_f16(b) * (q - 16.0);
        }
        case Q5_1: { // d, m, 32 high bits, 16 bytes of low nibbles
            let b = row + (g / 8u) * 24u;
            let j = g % 8u;
            let e = (j / 4u) * 16u + (j % 4u) * 4u;
            let q = nibbles(ld_u32(b + 8u + (j % 4u) * 4u), (j / 4u) * 4u) + 16.0 * bit_run(ld_u32(b + 4u), e);
            return ld_f16(b) * q + ld_f16(b + 2u);
        }
        case Q4_K: { // d, dmin, 12 scale bytes, 128 bytes; 64-element chunks use low then high nibbles
            let b = row + (g / 64u) * 144u;
            let e = (g % 64u) * 4u;
            let chunk = e / 64u;
            let half = (e % 64u) / 32u;
            let sm = scale_min_k4(b + 4u, chunk * 2u + half);
            let q = nibbles(ld_u32(b + 16u + chunk * 32u + e % 32u), half * 4u);
            return ld_f16(b) * sm.x * q - ld_f16(b + 2u) * sm.y;
        }
        case Q5_K: { // as Q4_K, plus a fifth bit per element from 32 qh bytes
            let b = row + (g / 64u) * 176u;
            let e = (g % 64u) * 4u;
            let chunk = e / 64u;
            let half = (e % 64u) / 32u;
            let lane = e % 32u;
            let sm = scale_min_k4(b + 4u, chunk * 2u + half);
            let q = nibbles(ld_u32(b + 48u + chunk * 32u + lane), half * 4u)
                  + 16.0 * bits(ld_u32(b + 16u + lane), chunk * 2u + half);
            return ld_f16(b) * sm.x * q - ld_f16(b + 2u) * sm.y;
        }
        case Q2_K: { // 16 scale/min bytes, 64 bytes of 2-bit fields, d, dmin
            let b = row + (g / 64u) * 84u;
            let e = (g % 64u) * 4u;
            let h = e / 128u;
            let k = (e % 128u) / 32u;
            let sm = ld_u8(b + e / 16u);
            let q = crumbs(ld_u32(b + 16u + h * 32u + e % 32u), 2u * k);
            return ld_f16(b + 80u) * f32(sm & 0xfu) * q - ld_f16(b + 82u) * f32(sm >> 4u);
        }
        case Q3_K: { // 32 hmask bytes, 64 bytes of 2-bit fields, 12 scale bytes, d
            let b = row + (g / 64u) * 110u;
            let e = (g % 64u) * 4u;
            let h = e / 128u;
            let k = (e % 128u) / 32u;
            let l = e % 32u;
            let q = crumbs(ld_u32(b + 32u + h * 32u + l), 2u * k) + 4.0 * bits(ld_u32(b + l), 4u * h + k);
            return ld_f16(b + 108u) * scale_k3(b + 96u, e / 16u) * (q - 4.0);
        }
        default: { // Q6_K: 128 low-nibble bytes, 64 high-2-bit bytes, 16 i8 scales, d
            let b = row + (g / 64u) * 210u;
            let e = (g % 64u) * 4u;
            let n = e / 128u;
            let quarter = (e % 128u) / 32u;
            let l = e % 32u;
            let lo = nibbles(ld_u32(b + n * 64u + l + (quarter & 1u) * 32u), (quarter >> 1u) * 4u);
            let qh = (ld_u32(b + 128u + n * 32u + l) >> (quarter * 2u)) & 0x03030303u;
            let hi = vec4<f32>(f32(qh & 0xffu), f32((qh >> 8u) & 0xffu), f32((qh >> 16u) & 0xffu), f32(qh >> 24u));
            let sc = f32((i32(ld_u8(b + 192u + n * 8u + l / 16u + quarter * 2u)) << 24u) >> 24u);
            return ld_f16(b + 208u) * sc * (lo + 16.0 * hi - 32.0);
        }
    }
}
