// Y[t][r] = sum_k W[r][k] * X[t][k] for many tokens (prefill): the same parameters as
// matvec.wgsl, computed as a tiled matrix product. A workgroup owns a tile of 32 rows x 32 tokens;
// for each step of 32 along k it dequantizes the weight tile once into workgroup memory, stages
// the activation tile beside it, and every thread accumulates a 4 x 4 block of outputs from
// them. Each weight is dequantized once per 32 tokens instead of once per token.

struct Params {
    rows: u32,
    k: u32,
    n: u32,
    row_bytes: u32,
    x_row0: u32,
    x_width: u32,
    y_width: u32,
    out_col0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const TILE: u32 = 32u;
// Tiles are stored as rows of 8 vec4 (32 values) padded to 9, so threads reading the same
// column of different rows do not all land in one memory bank.
const STRIDE: u32 = 9u;
var<workgroup> w_tile: array<vec4<f32>, TILE * STRIDE>;
var<workgroup> x_tile: array<vec4<f32>, TILE * STRIDE>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row0 = (wid.x + wid.y * nwg.x) * TILE;
    let t0 = wid.z * TILE;
    // This thread's outputs: rows row0 + tr + 8i and tokens t0 + tt + 8j, i, j < 4.
    let tr = lid % 8u;
    let tt = lid / 8u;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 += TILE) {
        // 32 rows x 8 groups of 4 for each tile: 4 loads per thread per tile.
        for (var i = 0u; i < 4u; i++) {
            let slot = lid + i * 64u;
            let r = slot / 8u;
            let g = slot % 8u;
            let row = min(row0 + r, p.rows - 1u);
            w_tile[r * STRIDE + g] = load4(row * p.row_bytes, k0 / 4u + g);
            let tok = min(t0 + r, p.n - 1u);
            x_tile[r * STRIDE + g] = x[((p.x_row0 + tok) * p.x_width + k0) / 4u + g];
        }
        workgroupBarrier();
        for (var g = 0u; g < 8u; g++) {
            let x0 = x_tile[tt * STRIDE + g];
            let x1 = x_tile[(tt + 8u) * STRIDE + g];
            let x2 = x_tile[(tt + 16u) * STRIDE + g];
            let x3 = x_tile[(tt + 24u) * STRIDE + g];
            for (var i = 0u; i < 4u; i++) {
                let wv = w_tile[(tr + 8u * i) * STRIDE + g];
                acc[i] += vec4<f32>(dot(wv, x0), dot(wv, x1), dot(wv, x2), dot(wv, x3));
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + tr + 8u * i;
        for (var j = 0u; j < 4u; j++) {
            let tok = t0 + tt + 8u * j;
            if (row < p.rows && tok < p.n) {
                y[tok * p.y_width + p.out_col0 + row] = acc[i][j];
            }
        }
    }
}
