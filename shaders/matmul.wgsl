// y[t][r] = sum_k W[r][k] * x[t][k] with W in a packed GGUF format (quant.wgsl), x and y f32.
// A workgroup computes ROWS rows for TOKENS tokens: each weight group is dequantized once and
// used for every token of the tile, which is what makes the batched (prefill) form pay.
// Decoding uses TOKENS = 1. Rows may be a slice of the whole matrix (a weight split at the
// storage binding limit): `out_col0` places them in y.

struct Params {
    rows: u32,        // rows of W in this buffer
    k: u32,           // row length in elements (multiple of 4)
    n: u32,           // tokens
    row_bytes: u32,
    x_row0: u32,      // first row of x to read
    x_width: u32,     // elements per row of x
    y_width: u32,     // elements per row of y
    out_col0: u32,    // where row 0 of this W lands in a row of y
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const WG: u32 = 64u;
const OUTS: u32 = ROWS * TOKENS;
var<workgroup> partial: array<f32, WG * OUTS>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row0 = (wid.x + wid.y * nwg.x) * ROWS;
    let t0 = wid.z * TOKENS;
    let groups = p.k / 4u;
    var acc: array<f32, OUTS>;
    for (var g = lid; g < groups; g += WG) {
        var xs: array<vec4<f32>, TOKENS>;
        for (var t = 0u; t < TOKENS; t++) {
            let tok = min(t0 + t, p.n - 1u);
            xs[t] = x[((p.x_row0 + tok) * p.x_width) / 4u + g];
        }
        for (var r = 0u; r < ROWS; r++) {
            let row = min(row0 + r, p.rows - 1u);
            let wv = load4(row * p.row_bytes, g);
            for (var t = 0u; t < TOKENS; t++) {
                acc[r * TOKENS + t] += dot(wv, xs[t]);
            }
        }
    }
    for (var i = 0u; i < OUTS; i++) {
        partial[i * WG + lid] = acc[i];
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            for (var i = 0u; i < OUTS; i++) {
                partial[i * WG + lid] += partial[i * WG + lid + s];
            }
        }
        workgroupBarrier();
    }
    for (var i = lid; i < OUTS; i += WG) {
        let row = row0 + i / TOKENS;
        let tok = t0 + i % TOKENS;
        if (row < p.rows && tok < p.n) {
            y[tok * p.y_width + p.out_col0 + row] = partial[i * WG];
        }
    }
}
