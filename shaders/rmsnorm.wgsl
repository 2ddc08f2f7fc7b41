// out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, one workgroup per row.

struct Params {
    width: u32,
    n: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;
var<workgroup> sums: array<f32, WG>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wid.x * p.width;
    var s = 0.0;
    for (var i = lid; i < p.width; i += WG) {
        let v = x[base + i];
        s += v * v;
    }
    sums[lid] = s;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            sums[lid] += sums[lid + k];
        }
        workgroupBarrier();
    }
    let scale = inverseSqrt(sums[0] / f32(p.width) + p.eps);
    for (var i = lid; i < p.width; i += WG) {
        out[base + i] = x[base + i] * scale * weight[i];
    }
}
