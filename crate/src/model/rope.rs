use super::ModelConfig;

/// How one rotary table turns: pair i at position pos by `pos * scale * base^(-2i/rope_dim) /
/// factors[i]`, its result multiplied by `mscale`.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    pub rope_dim: usize,
    pub base: f32,
    /// Linear position scaling.
    pub scale: f32,
    /// Per-frequency divisors (Llama 3's `rope_freqs`, Phi-3's LongRoPE factors).
    pub factors: Option<&'a [f32]>,
    /// Phi-3's LongRoPE attention factor, applied to the rotated dimensions.
    pub mscale: f32,
}

/// (mscale cos, mscale sin) of every rotary angle for positions 0..context, entry
/// `pos * rope_dim/2 + i` for pair i. Computed in f64 once at load, so no backend depends on
/// its own sin/cos accuracy for large angles.
pub fn rope_table(context: usize, r: Rotation) -> Vec<[f32; 2]> {
    let half = r.rope_dim / 2;
    let inv_freq: Vec<f64> = (0..half)
        .map(|i| {
            let factor = r.factors.and_then(|f| f.get(i)).map_or(1.0, |&f| f as f64);
            r.scale as f64 * (r.base as f64).powf(-2.0 * i as f64 / r.rope_dim as f64) / factor
        })
        .collect();
    let m = r.mscale as f64;
    let mut table = Vec::with_capacity(context * half);
    for pos in 0..context {
        for f in &inv_freq {
            let (s, c) = (pos as f64 * f).sin_cos();
            table.push([(m * c) as f32, (m * s) as f32]);
        }
    }
    table
}

/// The model's rotary tables for a cache of `context` positions, indexed by
/// `LayerAttention::table`: the global layers' (the file's base, scaling and frequency
/// factors: LongRoPE's long ones when the context passes the original one, as llama.cpp
/// chooses), then, for a model with sliding layers, theirs (their own base, unscaled).
pub fn rope_tables(config: &ModelConfig, context: usize) -> Vec<Vec<[f32; 2]>> {
    let long = config.rope_factors_long.as_deref().filter(|_| context > config.rope_original_context);
    let global = Rotation {
        rope_dim: config.rope_dim,
        base: config.rope_base,
        scale: config.rope_scale,
        factors: long.or(config.rope_factors.as_deref()),
        mscale: config.rope_mscale,
    };
    let mut tables = vec![rope_table(context, global)];
    if let Some(sliding) = config.arch.sliding {
        tables.push(rope_table(context, Rotation { base: sliding.rope_base, scale: 1.0, factors: None, mscale: 1.0, ..global }));
    }
    tables
}
