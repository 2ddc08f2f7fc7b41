/// (cos, sin) of every rotary angle for positions 0..context: entry `pos * rope_dim/2 + i` rotates
/// pair i by `pos * base^(-2i/rope_dim)`. Computed in f64 once at load, so no backend depends on
/// its own sin/cos accuracy for large angles.
pub fn rope_table(context: usize, rope_dim: usize, base: f32) -> Vec<[f32; 2]> {
    let half = rope_dim / 2;
    let inv_freq: Vec<f64> =
        (0..half).map(|i| (base as f64).powf(-2.0 * i as f64 / rope_dim as f64)).collect();
    let mut table = Vec::with_capacity(context * half);
    for pos in 0..context {
        for f in &inv_freq {
            let (s, c) = (pos as f64 * f).sin_cos();
            table.push([c as f32, s as f32]);
        }
    }
    table
}
