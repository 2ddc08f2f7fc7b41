// The residual connection and the bias add, in place: x += y over `len` values taken `width`
// per row of x (rows `stride` apart). y is as long (BROADCAST == 0), or one row of `width`
// values added to every row (BROADCAST == 1).

struct Params {
    len: u32,
    width: u32,
    stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.len) {
        return;
    }
    let c = i % p.width;
    var j = i;
    if (BROADCAST != 0u) {
        j = c;
    }
    x[(i / p.width) * p.stride + c] += y[j];
}
