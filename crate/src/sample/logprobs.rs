use super::SampleError;

/// Most alternatives a [`TokenLogprob`] may list: OpenAI's `top_logprobs` limit.
pub const MAX_TOP_LOGPROBS: usize = 20;

/// Refuses a `top_logprobs` above [`MAX_TOP_LOGPROBS`].
pub fn check_top_logprobs(top: usize) -> Result<(), SampleError> {
    if top > MAX_TOP_LOGPROBS {
        return Err(SampleError::TooManyLogprobs { requested: top, max: MAX_TOP_LOGPROBS });
    }
    Ok(())
}

/// One answer token's log-probability, and the most likely tokens of the same step.
///
/// The distribution is a log-softmax at temperature 1 of the logits the sampler was given: the
/// raw logits plus `logit_bias`, with the grammar's mask (-inf for refused tokens), before the
/// repetition penalties, top-k, top-p, min-p and the temperature. Tokens whose logit is not
/// finite (masked, or a broken model) have probability 0 and are never listed in `top`. A token
/// the grammar forced, which the model was never asked for, has logprob 0 (probability 1 under
/// the constraint) and `top` holding only itself.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token: u32,
    /// Natural log of the token's probability.
    pub logprob: f32,
    /// Up to the requested number of (token, logprob), most likely first, lower id first among
    /// equals; the chosen token appears here too when it is among them.
    pub top: Vec<(u32, f32)>,
}

impl TokenLogprob {
    /// `token`'s logprob under `logits`, with the `top_n` most likely tokens. Two passes over the
    /// logits and no sort: the vocabulary is 49k-262k and this runs once per token.
    pub fn new(logits: &[f32], token: u32, top_n: usize) -> Self {
        let (max, top) = max_and_top(logits, top_n);
        // Subtracting the max keeps every exp in (0, 1]; summing in f64 loses nothing over 262k
        // terms. The exp itself, most of the cost, stays f32 (1e-7 relative error a term).
        let total: f64 =
            logits.iter().filter(|l| l.is_finite()).map(|&l| f64::from((l - max).exp())).sum();
        let log_total = total.ln();
        let logprob = |l: f32| {
            if l.is_finite() {
                (f64::from(l) - f64::from(max) - log_total) as f32
            } else {
                f32::NEG_INFINITY
            }
        };
        let logit = logits.get(token as usize).copied().unwrap_or(f32::NEG_INFINITY);
        Self { token, logprob: logprob(logit), top: top.into_iter().map(|(id, l)| (id, logprob(l))).collect() }
    }

    /// A token the grammar forced: probability 1 under the constraint.
    pub fn forced(token: u32) -> Self {
        Self { token, logprob: 0.0, top: vec![(token, 0.0)] }
    }
}

/// The `n` best finite (id, logit), best first, lower id first among equals, and the largest
/// finite logit (-inf when there is none).
fn max_and_top(logits: &[f32], n: usize) -> (f32, Vec<(u32, f32)>) {
    // At least one kept, the max. Kept sorted: once full, almost every logit fails the one
    // comparison with the floor, and the rest shift at most MAX_TOP_LOGPROBS entries, so this
    // stays one linear pass.
    let keep = n.max(1);
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(keep + 1);
    // What a logit must beat to be kept: NaN and -inf never do, and ids come in increasing
    // order, so a tie with the last kept never displaces it.
    let mut floor = f32::NEG_INFINITY;
    for (id, &l) in logits.iter().enumerate() {
        if l > floor && l.is_finite() {
            let at = top.partition_point(|kept| kept.1 >= l);
            top.insert(at, (id as u32, l));
            top.truncate(keep);
            if top.len() == keep {
                floor = top[keep - 1].1;
            }
        }
    }
    let max = top.first().map_or(f32::NEG_INFINITY, |t| t.1);
    top.truncate(n);
    (max, top)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha12Rng;

    use super::*;

    /// Log-softmax the slow way: sort everything, sum in f64 without subtracting the max.
    fn reference(logits: &[f32]) -> Vec<f64> {
        let total: f64 = logits.iter().filter(|l| l.is_finite()).map(|&l| f64::from(l).exp()).sum();
        logits.iter().map(|&l| if l.is_finite() { f64::from(l) - total.ln() } else { f64::NEG_INFINITY }).collect()
    }

    fn reference_top(logits: &[f32], n: usize) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..logits.len() as u32).filter(|&i| logits[i as usize].is_finite()).collect();
        ids.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b)));
        ids.truncate(n);
        ids
    }

    fn random_logits(rng: &mut ChaCha12Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-15.0..15.0)).collect()
    }

    #[test]
    fn matches_a_naive_log_softmax_on_awkward_sizes() {
        let mut rng = ChaCha12Rng::seed_from_u64(3);
        for size in [1, 2, 7, 21, 333, 1000, 49_153] {
            let mut logits = random_logits(&mut rng, size);
            // A few masked tokens, as a grammar leaves them.
            for _ in 0..size / 10 {
                let i = rng.random_range(0..size);
                logits[i] = f32::NEG_INFINITY;
            }
            let want = reference(&logits);
            for n in [0, 1, 5, MAX_TOP_LOGPROBS] {
                let token = rng.random_range(0..size as u32);
                let got = TokenLogprob::new(&logits, token, n);
                let w = want[token as usize];
                assert!(got.logprob == w as f32 || (f64::from(got.logprob) - w).abs() < 1e-5, "{size}: {got:?} vs {w}");
                let top: Vec<u32> = got.top.iter().map(|t| t.0).collect();
                assert_eq!(top, reference_top(&logits, n), "size {size}, n {n}");
                for &(id, lp) in &got.top {
                    assert!((f64::from(lp) - want[id as usize]).abs() < 1e-5);
                }
            }
            let mass: f64 = want.iter().map(|l| l.exp()).sum();
            assert!((mass - 1.0).abs() < 1e-9, "the reference itself is off: {mass}");
        }
    }

    #[test]
    fn large_logits_do_not_overflow() {
        // exp(1000) overflows even f64: only the max subtraction makes these finite.
        let logits = [1000.0, 999.0, 998.0];
        let got = TokenLogprob::new(&logits, 1, 3);
        let shifted = reference(&[2.0, 1.0, 0.0]);
        assert!((f64::from(got.logprob) - shifted[1]).abs() < 1e-6, "{got:?}");
        assert_eq!(got.top.iter().map(|t| t.0).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(got.top.iter().all(|t| t.1.is_finite() && t.1 <= 0.0));
    }

    #[test]
    fn top_is_best_first_with_ties_to_the_lower_id() {
        let logits = [1.0, 3.0, 2.0, 3.0, f32::NEG_INFINITY, 3.0, 0.5];
        let got = TokenLogprob::new(&logits, 5, 4);
        assert_eq!(got.top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 3, 5, 2]);
        assert_eq!(got.top[0].1, got.top[1].1);
        assert_eq!(got.top[0].1, got.logprob);
        assert!(got.top.windows(2).all(|w| w[0].1 >= w[1].1));
        // Ascending input moves every new best to the front.
        let rising: Vec<f32> = (0..100).map(|i| i as f32 / 10.0).collect();
        let got = TokenLogprob::new(&rising, 0, 3);
        assert_eq!(got.top.iter().map(|t| t.0).collect::<Vec<_>>(), [99, 98, 97]);
    }

    #[test]
    fn masked_tokens_have_no_probability_and_are_never_listed() {
        let ninf = f32::NEG_INFINITY;
        let logits = [ninf, 0.0, f32::NAN, ninf, f32::INFINITY];
        // One finite logit: a sure thing.
        let got = TokenLogprob::new(&logits, 1, 20);
        assert_eq!(got, TokenLogprob { token: 1, logprob: 0.0, top: vec![(1, 0.0)] });
        assert_eq!(TokenLogprob::new(&logits, 0, 20).logprob, ninf);
        // Nothing allowed at all: no probability anywhere, and no NaN.
        let got = TokenLogprob::new(&[ninf, ninf], 0, 2);
        assert_eq!(got, TokenLogprob { token: 0, logprob: ninf, top: Vec::new() });
    }

    #[test]
    fn uniform_logits_give_log_one_over_n() {
        let logits = vec![0.25f32; 262_144];
        let got = TokenLogprob::new(&logits, 1000, 3);
        let want = -(262_144f64.ln()) as f32;
        assert_eq!(got.logprob, want);
        assert_eq!(got.top, [(0, want), (1, want), (2, want)]);
    }

    #[test]
    fn forced_tokens_are_sure() {
        assert_eq!(TokenLogprob::forced(9), TokenLogprob { token: 9, logprob: 0.0, top: vec![(9, 0.0)] });
    }

    #[test]
    fn top_logprobs_is_capped() {
        assert_eq!(check_top_logprobs(0), Ok(()));
        assert_eq!(check_top_logprobs(20), Ok(()));
        let e = check_top_logprobs(21).unwrap_err();
        assert_eq!(e, SampleError::TooManyLogprobs { requested: 21, max: 20 });
        assert_eq!(e.to_string(), "top_logprobs must be at most 20, got 21");
    }
}
