// out[t] = row ids[t] of a packed embedding table, dequantized, times `scale` (Gemma's
// sqrt(width), else 1). The table may be split at the
// storage binding limit; a dispatch covers the rows [row_base, row_base + rows) in this buffer
// and leaves tokens outside it to the dispatch for their own slice.

struct Params {
    rows: u32,
    row_base: u32,
    width: u32,
    n: u32,
    row_bytes: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let g = gid.x;
    let t = gid.y;
    if (g >= p.width / 4u || t >= p.n) {
        return;
    }
    let id = ids[t];
    if (id < p.row_base || id >= p.row_base + p.rows) {
        return;
    }
    out[t * (p.width / 4u) + g] = load4((id - p.row_base) * p.row_bytes, g) * p.scale;
}
