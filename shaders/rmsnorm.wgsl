// RMSNorm: out = x / sqrt(mean(x^2) + eps) * weight over each of the `groups` runs of `width`
// values that begin each row (one run: the whole row; one per head: a per-head norm). One
// workgroup per run, the runs of all rows numbered across a grid folded as `grid` folds it.

struct Params {
    runs: u32,
    width: u32,
    groups: u32,
    x_stride: u32,
    out_stride: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;
var<workgroup> sums: array<f32, WG>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let run = wid.x + wid.y * nwg.x;
    if (run >= p.runs) {
        return;
    }
    let t = run / p.groups;
    let g = run % p.groups;
    let base = t * p.x_stride + g * p.width;
    let out_base = t * p.out_stride + g * p.width;
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
        out[out_base + i] = x[base + i] * scale * weight[i];
    }
}
