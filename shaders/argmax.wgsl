// The index of the largest logit (the lowest index among equals), so greedy decoding reads back
// one u32 instead of the whole vocabulary. With `masked`, only indices whose bit is set in
// `allowed` (bit i % 32 of word i / 32) may win: a grammar's mask, uploaded as bits rather than
// the logits read back. One workgroup.

struct Params {
    len: u32,
    offset: u32,
    masked: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> allowed: array<u32>;
@group(0) @binding(3) var<storage, read_write> result: array<u32>;

fn may_win(i: u32) -> bool {
    return p.masked == 0u || ((allowed[i >> 5u] >> (i & 31u)) & 1u) != 0u;
}

const WG: u32 = 256u;
var<workgroup> best_val: array<f32, WG>;
var<workgroup> best_idx: array<u32, WG>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var i = lid; i < p.len; i += WG) {
        let v = logits[p.offset + i];
        if (v > bv && may_win(i)) {
            bv = v;
            bi = i;
        }
    }
    best_val[lid] = bv;
    best_idx[lid] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            let ov = best_val[lid + s];
            let oi = best_idx[lid + s];
            if (ov > best_val[lid] || (ov == best_val[lid] && oi < best_idx[lid])) {
                best_val[lid] = ov;
                best_idx[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        result[0] = best_idx[0];
    }
}
