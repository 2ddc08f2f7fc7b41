// Rotary position embedding, in place, on heads laid out [token][head][head_dim]. The angles come
// from a table computed once on the CPU in double precision (cos, sin per position and pair), so
// every GPU gives the same rotation however rough its own sin/cos are for large angles.
// NEOX pairs element i with i + rot_dim/2; the normal (GPT-J) ordering pairs 2i with 2i+1.

struct Params {
    n: u32,
    pos0: u32,
    heads: u32,
    head_dim: u32,
    rot_dim: u32,
    width: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<vec2<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let half = p.rot_dim / 2u;
    let i = gid.x % half;
    let head = gid.x / half;
    let t = gid.y;
    if (head >= p.heads || t >= p.n) {
        return;
    }
    let base = t * p.width + head * p.head_dim;
    var a = base + 2u * i;
    var b = a + 1u;
    if (NEOX != 0u) {
        a = base + i;
        b = a + half;
    }
    let cs = table[(p.pos0 + t) * half + i];
    let x0 = x[a];
    let x1 = x[b];
    x[a] = x0 * cs.x - x1 * cs.y;
    x[b] = x0 * cs.y + x1 * cs.x;
}
