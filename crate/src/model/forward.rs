use super::{Backend, ModelConfig, ModelError, Weights};

/// Which positions get logits: decoding and prefill need only the last; scoring needs all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    Last,
    All,
}

/// Scratch buffers for one forward pass of up to `max_tokens` tokens, allocated once.
pub struct Activations<B: Backend> {
    pub max_tokens: usize,
    x: B::Buffer,
    xb: B::Buffer,
    q: B::Buffer,
    k: B::Buffer,
    v: B::Buffer,
    attn: B::Buffer,
    gate: B::Buffer,
    up: B::Buffer,
    pub logits: B::Buffer,
    logit_rows: usize,
}

impl<B: Backend> Activations<B> {
    /// `all_logits` sizes the logits buffer for `Logits::All`; otherwise it holds one row.
    pub fn new(b: &mut B, weights: &Weights<B>, max_tokens: usize, all_logits: bool) -> Result<Self, ModelError> {
        let logit_rows = if all_logits { max_tokens } else { 1 };
        let [x, xb, q, k, v, attn, gate, up, logits] =
            Self::shapes(&weights.config, max_tokens, logit_rows).map(|(rows, width)| b.buffer(rows, width));
        Ok(Self { max_tokens, x: x?, xb: xb?, q: q?, k: k?, v: v?, attn: attn?, gate: gate?, up: up?, logits: logits?, logit_rows })
    }

    /// `(rows, width)` of x, xb, q, k, v, attn, gate, up and logits, in that order.
    fn shapes(c: &ModelConfig, max_tokens: usize, logit_rows: usize) -> [(usize, usize); 9] {
        [
            (max_tokens, c.width),
            (max_tokens, c.width),
            (max_tokens, c.q_width()),
            (max_tokens, c.kv_width()),
            (max_tokens, c.kv_width()),
            (max_tokens, c.q_width()),
            (max_tokens, c.ffn_width),
            (max_tokens, c.ffn_width),
            (logit_rows, c.vocab_size),
        ]
    }
}

/// Bytes of each f32 activation buffer `Activations::new` allocates for steps of up to
/// `max_tokens` tokens with one row of logits.
pub fn activation_buffers(config: &ModelConfig, max_tokens: usize) -> [u64; 9] {
    Activations::<super::ReferenceBackend>::shapes(config, max_tokens, 1).map(|(rows, width)| (rows * width * 4) as u64)
}

/// Runs `tokens` (at positions `pos0..`) through the model, leaving logits in `act.logits`:
/// row 0 for the last token, or row t for token t. The caller keeps `pos0 + tokens.len()`
/// within the cache and `tokens.len()` within `act.max_tokens`.
pub fn forward<B: Backend>(
    b: &mut B,
    m: &Weights<B>,
    cache: &B::Cache,
    act: &Activations<B>,
    tokens: &[u32],
    pos0: usize,
    logits: Logits,
) {
    let n = tokens.len();
    assert!(n > 0 && n <= act.max_tokens, "forward of {n} tokens with room for {}", act.max_tokens);
    assert!(logits == Logits::Last || n <= act.logit_rows, "logits buffer too small for {n} rows");
    let c = &m.config;
    let eps = c.norm_eps;

    b.embed(&m.token_embd, tokens, &act.x);
    for (i, l) in m.layers.iter().enumerate() {
        // Attention block.
        b.rms_norm(&act.x, &l.attn_norm, &act.xb, n, eps);
        b.matmul(&l.wq, &act.xb, 0, &act.q, n);
        b.matmul(&l.wk, &act.xb, 0, &act.k, n);
        b.matmul(&l.wv, &act.xb, 0, &act.v, n);
        b.rope(&act.q, cache, c.n_heads, n, pos0);
        b.rope(&act.k, cache, c.n_kv_heads, n, pos0);
        b.store_kv(cache, i, &act.k, &act.v, n, pos0);
        b.attention(&act.q, cache, i, &act.attn, n, pos0);
        b.matmul(&l.wo, &act.attn, 0, &act.xb, n);
        b.add(&act.x, &act.xb, n);

        // Feed-forward block.
        b.rms_norm(&act.x, &l.ffn_norm, &act.xb, n, eps);
        b.matmul(&l.ffn_gate, &act.xb, 0, &act.gate, n);
        b.matmul(&l.ffn_up, &act.xb, 0, &act.up, n);
        b.swiglu(&act.gate, &act.up, n);
        b.matmul(&l.ffn_down, &act.gate, 0, &act.xb, n);
        b.add(&act.x, &act.xb, n);
    }
    b.rms_norm(&act.x, &m.output_norm, &act.xb, n, eps);
    match logits {
        Logits::Last => b.matmul(m.output(), &act.xb, n - 1, &act.logits, 1),
        Logits::All => b.matmul(m.output(), &act.xb, 0, &act.logits, n),
    }
}
