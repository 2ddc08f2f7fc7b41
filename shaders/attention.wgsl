// Causal attention of new queries over the KV cache, grouped-query: query head h reads KV head
// h / (heads / kv_heads). One workgroup per (head, token). Keys are taken 64 at a time: each
// thread scores one key, then every thread folds the tile into its slice of the output with an
// online softmax, so the context length is bounded by the cache, not by workgroup memory.
// A sliding layer (window > 0) sees only the last `window` keys, its own included.

struct Params {
    n: u32,
    pos0: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    q_width: u32,
    kv_width: u32,
    scale: f32,
    window: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<f32>;
@group(0) @binding(3) var<storage, read> v_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;
var<workgroup> q_row: array<f32, MAX_HEAD_DIM>;
var<workgroup> weights: array<f32, WG>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    let t = wid.y;
    let kvh = h / (p.heads / p.kv_heads);
    let q_base = t * p.q_width + h * p.head_dim;
    let kv_off = kvh * p.head_dim;
    for (var d = lid; d < p.head_dim; d += WG) {
        q_row[d] = q[q_base + d] * p.scale;
    }
    workgroupBarrier();

    let n_keys = p.pos0 + t + 1u;
    var first = 0u;
    if (p.window > 0u && n_keys > p.window) {
        first = n_keys - p.window;
    }
    var m = -3.0e38;
    var l = 0.0;
    var acc: array<f32, MAX_HEAD_DIM / WG>;
    for (var j0 = first; j0 < n_keys; j0 += WG) {
        let j = j0 + lid;
        var s = -3.0e38;
        if (j < n_keys) {
            s = 0.0;
            let kb = j * p.kv_width + kv_off;
            for (var d = 0u; d < p.head_dim; d++) {
                s += q_row[d] * k_cache[kb + d];
            }
        }
        weights[lid] = s;
        workgroupBarrier();
        var tile_max = -3.0e38;
        let count = min(WG, n_keys - j0);
        for (var i = 0u; i < count; i++) {
            tile_max = max(tile_max, weights[i]);
        }
        let new_m = max(m, tile_max);
        let correction = exp(m - new_m);
        workgroupBarrier();
        weights[lid] = select(0.0, exp(s - new_m), j < n_keys);
        workgroupBarrier();
        var tile_sum = 0.0;
        for (var i = 0u; i < count; i++) {
            tile_sum += weights[i];
        }
        l = l * correction + tile_sum;
        for (var c = 0u; c * WG < p.head_dim; c++) {
            let d = c * WG + lid;
            if (d < p.head_dim) {
                var a = acc[c] * correction;
                for (var i = 0u; i < count; i++) {
                    a += weights[i] * v_cache[(j0 + i) * p.kv_width + kv_off + d];
                }
                acc[c] = a;
            }
        }
        m = new_m;
        workgroupBarrier();
    }
    for (var c = 0u; c * WG < p.head_dim; c++) {
        let d = c * WG + lid;
        if (d < p.head_dim) {
            out[q_base + d] = acc[c] / l;
        }
    }
}
