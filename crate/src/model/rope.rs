use super::ModelConfig;

/// (cos, sin) of every rotary angle for positions 0..context: entry `pos * rope_dim/2 + i`
/// rotates pair i by `pos * scale * base^(-2i/rope_dim) / factors[i]`. Computed in f64 once
/// at load, so no backend depends on its own sin/cos accuracy for large angles.
pub fn rope_table(context: usize, rope_dim: usize, base: f32, scale: f32, factors: Option<&[f32]>) -> Vec<[f32; 2]> {
    let half = rope_dim / 2;
    let inv_freq: Vec<f64> = (0..half)
        .map(|i| {
            let factor = factors.and_then(|f| f.get(i)).map_or(1.0, |&f| f as f64);
            scale as f64 * (base as f64).powf(-2.0 * i as f64 / rope_dim as f64) / factor
        })
        .collect();
    let mut table = Vec::with_capacity(context * half);
    for pos in 0..context {
        for f in &inv_freq {
            let (s, c) = (pos as f64 * f).sin_cos();
            table.push([c as f32, s as f32]);
        }
    }
    table
}

/// The model's rotary tables, indexed by `LayerAttention::table`: the global layers' (the
/// file's base, scaling and frequency factors), then, for a model with sliding layers, theirs
/// (their own base, unscaled, as llama.cpp runs them).
pub fn rope_tables(config: &ModelConfig, context: usize) -> Vec<Vec<[f32; 2]>> {
    let mut tables =
        vec![rope_table(context, config.rope_dim, config.rope_base, config.rope_scale, config.rope_factors.as_deref())];
    if let Some(sliding) = config.arch.sliding {
        tables.push(rope_table(context, config.rope_dim, sliding.rope_base, 1.0, None));
    }
    tables
}
