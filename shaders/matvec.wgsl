// y[t][r] = sum_k W[r][k] * x[t][k] for few tokens (decoding): W in a packed GGUF format
// (quant.wgsl), x and y f32. A workgroup computes ROWS rows of one token (workgroup_id.z): its
// threads split the row's length and sum their parts. Rows may be a slice of the whole matrix (a
// weight split at the storage binding limit): `out_col0` places them in y.

struct Params {
    rows: u32,        // rows of W in this buffer
    k: u32,           // row length in elements (a multiple of 32)
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
var<workgroup> partial: array<f32, WG * ROWS>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row0 = (wid.x + wid.y * nwg.x) * ROWS;
    let tok = wid.z;
    let groups = p.k / 4u;
    let x_base = ((p.x_row0 + tok) * p.x_width) / 4u;
    var acc: array<f32, ROWS>;
    for (var g = lid; g < groups; g += WG) {
        let xv = x[x_base + g];
        for (var r = 0u; r < ROWS; r++) {
            let row = min(row0 + r, p.rows - 1u);
            acc[r] += dot(load4(row * p.row_bytes, g), xv);
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        partial[r * WG + lid] = acc[r];
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            for (var r = 0u; r < ROWS; r++) {
                partial[r * WG + lid] += partial[r * WG + lid + s];
            }
        }
        workgroupBarrier();
    }
    if (lid < ROWS && row0 + lid < p.rows) {
        y[tok * p.y_width + p.out_col0 + row0 + lid] = partial[lid * WG];
    }
}
