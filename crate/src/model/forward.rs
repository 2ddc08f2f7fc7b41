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
    /// A block's output on its way through a post-norm (Gemma 3).
    post: B::Buffer,
    pub logits: B::Buffer,
    logit_rows: usize,
}

impl<B: Backend> Activations<B> {
    /// `all_logits` sizes the logits buffer for `Logits::All`; otherwise it holds one row.
    pub fn new(b: &mut B, weights: &Weights<B>, max_tokens: usize, all_logits: bool) -> Result<Self, ModelError> {
        let logit_rows = if all_logits { max_tokens } else { 1 };
        let [x, xb, q, k, v, attn, gate, up, post, logits] =
            Self::shapes(&weights.config, max_tokens, logit_rows).map(|(rows, width)| b.buffer(rows, width));
        Ok(Self {
            max_tokens,
            x: x?,
            xb: xb?,
            q: q?,
            k: k?,
            v: v?,
            attn: attn?,
            gate: gate?,
            up: up?,
            post: post?,
            logits: logits?,
            logit_rows,
        })
    }

    /// `(rows, width)` of x, xb, q, k, v, attn, gate, up, post and logits, in that order. A
    /// model without post-norms leaves `post` unused; it is one row of width per token.
    fn shapes(c: &ModelConfig, max_tokens: usize, logit_rows: usize) -> [(usize, usize); 10] {
        [
            (max_tokens, c.width),
            (max_tokens, c.width),
            (max_tokens, c.q_width()),
            (max_tokens, c.kv_width()),
            (max_tokens, c.kv_width()),
            (max_tokens, c.q_width()),
            (max_tokens, c.ffn_width),
            (max_tokens, c.ffn_width),
            (max_tokens, c.width),
            (logit_rows, c.vocab_size),
        ]
    }
}

/// Bytes of each f32 activation buffer `Activations::new` allocates for steps of up to
/// `max_tokens` tokens with one row of logits; `None` when one would pass 2^64 bytes.
pub fn activation_buffers(config: &ModelConfig, max_tokens: usize) -> Option<[u64; 10]> {
    let mut bytes = [0; 10];
    for (b, (rows, width)) in bytes.iter_mut().zip(Activations::<super::ReferenceBackend>::shapes(config, max_tokens, 1)) {
        *b = (rows as u64).checked_mul(width as u64)?.checked_mul(4)?;
    }
    Some(bytes)
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

    b.embed(&m.token_embd, tokens, &act.x, c.embed_scale);
    for (i, l) in m.layers.iter().enumerate() {
        let layer = c.layer_attention(i);
        // Attention block.
        b.rms_norm(&act.x, &l.attn_norm, &act.xb, n, 1, eps);
        project(b, act, &l.wq, l.bq.as_ref(), l.q_norm.as_ref().map(|w| (w, c.n_heads)), &act.q, n, eps);
        project(b, act, &l.wk, l.bk.as_ref(), l.k_norm.as_ref().map(|w| (w, c.n_kv_heads)), &act.k, n, eps);
        project(b, act, &l.wv, l.bv.as_ref(), None, &act.v, n, eps);
        b.rope(&act.q, cache, layer, c.n_heads, n, pos0);
        b.rope(&act.k, cache, layer, c.n_kv_heads, n, pos0);
        b.store_kv(cache, i, &act.k, &act.v, n, pos0);
        b.attention(&act.q, cache, layer, &act.attn, n, pos0);
        residual(b, act, &l.wo, &act.attn, l.post_attn_norm.as_ref(), n, eps);

        // Feed-forward block.
        b.rms_norm(&act.x, &l.ffn_norm, &act.xb, n, 1, eps);
        b.matmul(&l.ffn_gate, &act.xb, 0, &act.gate, n);
        b.matmul(&l.ffn_up, &act.xb, 0, &act.up, n);
        b.glu(&act.gate, &act.up, n, c.arch.activation);
        residual(b, act, &l.ffn_down, &act.gate, l.post_ffn_norm.as_ref(), n, eps);
    }
    b.rms_norm(&act.x, &m.output_norm, &act.xb, n, 1, eps);
    match logits {
        Logits::Last => b.matmul(m.output(), &act.xb, n - 1, &act.logits, 1),
        Logits::All => b.matmul(m.output(), &act.xb, 0, &act.logits, n),
    }
}

/// `out = w · xb (+ bias)`, then, given `(gains, heads)`, an RMSNorm of each head. The norm
/// reads the projection from `act.attn`, free until attention writes it, since a norm's
/// output is never its input.
#[allow(clippy::too_many_arguments)]
fn project<B: Backend>(
    b: &mut B,
    act: &Activations<B>,
    w: &B::Matrix,
    bias: Option<&B::Vector>,
    head_norm: Option<(&B::Vector, usize)>,
    out: &B::Buffer,
    n: usize,
    eps: f32,
) {
    let product = if head_norm.is_some() { &act.attn } else { out };
    b.matmul(w, &act.xb, 0, product, n);
    if let Some(bias) = bias {
        b.add_bias(product, bias, n);
    }
    if let Some((gains, heads)) = head_norm {
        b.rms_norm(product, gains, out, n, heads, eps);
    }
}

/// `x += w · input`, through the block's post-norm where the model has one.
fn residual<B: Backend>(
    b: &mut B,
    act: &Activations<B>,
    w: &B::Matrix,
    input: &B::Buffer,
    post_norm: Option<&B::Vector>,
    n: usize,
    eps: f32,
) {
    match post_norm {
        Some(gains) => {
            b.matmul(w, input, 0, &act.post, n);
            b.rms_norm(&act.post, gains, &act.xb, n, 1, eps);
        }
        None => b.matmul(w, input, 0, &act.xb, n),
    }
    b.add(&act.x, &act.xb, n);
}
