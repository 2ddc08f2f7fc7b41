// The gated feed-forward activation, in place: gate = act(gate) * up, with act SiLU (GELU == 0)
// or GELU's tanh approximation (GELU == 1). Both are x * sigmoid(a): a = x for SiLU,
// a = 2 sqrt(2/pi) (x + 0.044715 x^3) for GELU, a form whose exp cannot overflow into NaN.

struct Params {
    len: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.len) {
        return;
    }
    let g = gate[i];
    var a = g;
    if (GELU != 0u) {
        a = 1.5957691 * (g + 0.044715 * g * g * g);
    }
    gate[i] = g / (1.0 + exp(-a)) * up[i];
}
