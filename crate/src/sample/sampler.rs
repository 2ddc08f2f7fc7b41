use std::cmp::Ordering;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;

use super::SamplingParams;

/// Top-p first sorts this many of the best candidates, then 4x more each time the nucleus goes on:
/// nuclei are usually small, so this is far cheaper than sorting the whole vocabulary.
const NUCLEUS_HEAD: usize = 64;

/// Picks tokens from logits for one generation stream.
pub struct Sampler {
    params: SamplingParams,
    /// ChaCha rather than SmallRng or StdRng: its output is fixed by specification, so a seed gives
    /// the same stream natively and in wasm, and across rand releases.
    rng: ChaCha12Rng,
    /// (token, logit) pairs still in the running; kept between calls so the hot path never allocates.
    cands: Vec<(u32, f32)>,
    /// Sorted copy of the penalty window, to count occurrences without a map.
    window: Vec<u32>,
}

impl Sampler {
    /// `seed_fallback` seeds the draw when the request gave no seed. `params` should have passed
    /// [`SamplingParams::validate`]: out-of-range values give meaningless picks, though never a panic.
    pub fn new(params: SamplingParams, seed_fallback: u64) -> Self {
        let rng = ChaCha12Rng::seed_from_u64(params.seed.unwrap_or(seed_fallback));
        Self { params, rng, cands: Vec::new(), window: Vec::new() }
    }

    /// True when every pick is the argmax of the raw logits (lowest id on ties), so the engine can
    /// take the argmax on the GPU and skip reading the logits back and calling [`Self::sample`].
    pub fn is_greedy(&self) -> bool {
        let p = &self.params;
        (p.temperature == 0.0 || p.top_k == 1) && !p.has_penalties()
    }

    /// Picks the next token. `history` is every token so far, prompt included, for the penalties;
    /// they are applied to `logits` in place. Panics if `logits` is empty.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        assert!(!logits.is_empty(), "no logits to sample from");
        self.apply_penalties(logits, history);
        if self.params.temperature == 0.0 {
            return argmax(logits);
        }
        self.filter(logits);
        match self.cands.len() {
            // Every logit is -inf or NaN: nothing has any probability, so answer deterministically.
            0 => argmax(logits),
            // A sure thing consumes no randomness, just as the greedy path does not.
            1 => self.cands[0].0,
            _ => self.draw(),
        }
    }

    /// Repetition penalty as in CTRL and llama.cpp, then OpenAI's presence and frequency penalties,
    /// over the last `penalty_last_n` tokens of `history`.
    fn apply_penalties(&mut self, logits: &mut [f32], history: &[u32]) {
        let p = &self.params;
        if !p.has_penalties() {
            return;
        }
        let start = history.len().saturating_sub(p.penalty_last_n as usize);
        self.window.clear();
        self.window.extend_from_slice(&history[start..]);
        self.window.sort_unstable();
        for run in self.window.chunk_by(|a, b| a == b) {
            // Ids past the logits (a prompt with tokens the head cannot produce) have nothing to penalize.
            let Some(logit) = logits.get_mut(run[0] as usize) else { continue };
            let r = p.repetition_penalty;
            *logit = if *logit > 0.0 { *logit / r } else { *logit * r };
            *logit -= run.len() as f32 * p.frequency_penalty + p.presence_penalty;
        }
    }

    /// Leaves in `cands` the tokens that survive top-k, top-p and min-p, either in id order or best
    /// first, so the draw never depends on how an unstable selection happened to permute them.
    fn filter(&mut self, logits: &[f32]) {
        let p = &self.params;
        let cands = &mut self.cands;
        cands.clear();
        // -inf is how a token gets masked out and NaN or +inf mean a broken model: neither is drawn.
        let finite = logits.iter().enumerate().filter(|(_, l)| l.is_finite());
        cands.extend(finite.map(|(id, &l)| (id as u32, l)));
        if cands.is_empty() {
            return;
        }

        let k = p.top_k as usize;
        if k > 0 && k < cands.len() {
            cands.select_nth_unstable_by(k - 1, best_first);
            cands.truncate(k);
            cands.sort_unstable_by(best_first);
        }
        let max = cands.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);

        // Top-p measures mass against everything top-k left, so total it before min-p shrinks the set.
        let total =
            (p.top_p < 1.0).then(|| cands.iter().map(|&(_, l)| weight(l, max)).sum::<f64>());
        if p.min_p > 0.0 {
            // p_i >= min_p * p_max is logit_i >= max + ln(min_p): a cut that ignores normalization and
            // keeps a best-first prefix, so doing it before top-p keeps the same set as doing it after
            // (llama.cpp's order) while leaving top-p less to sort.
            let floor = max + p.min_p.ln();
            cands.retain(|&(_, l)| l >= floor);
        }
        if let Some(total) = total {
            let keep = sort_nucleus(cands, max, f64::from(p.top_p) * total);
            cands.truncate(keep);
        }
    }

    /// Draws one of `cands` with probability softmax(logit / temperature).
    fn draw(&mut self) -> u32 {
        let t = self.params.temperature;
        let max = self.cands.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for c in &mut self.cands {
            c.1 = ((c.1 - max) / t).exp();
            total += f64::from(c.1);
        }
        // 53 random bits scaled to [0, 1): exact in f64 and independent of rand's float conversions.
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let target = u * total;
        let mut cum = 0.0;
        for &(id, w) in &self.cands {
            cum += f64::from(w);
            if cum > target {
                return id;
            }
        }
        // Only reached if u * total rounded up to total: the last token with any weight. (With
        // unvalidated params, e.g. a NaN temperature, no token has weight: answer rather than panic.)
        self.cands.iter().rev().find(|c| c.1 > 0.0).unwrap_or(&self.cands[0]).0
    }
}

/// Unnormalized probability of a logit, relative to the largest.
fn weight(logit: f32, max: f32) -> f64 {
    f64::from(logit - max).exp()
}

/// "More likely first": higher logit, then lower id, so ties break as in greedy argmax. Candidates
/// are finite, so the comparison is total.
fn best_first(a: &(u32, f32), b: &(u32, f32)) -> Ordering {
    b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal).then(a.0.cmp(&b.0))
}

/// Index of the largest logit, lowest on ties; NaN never wins.
fn argmax(logits: &[f32]) -> u32 {
    let mut best = (0, f32::NEG_INFINITY);
    for (id, &l) in logits.iter().enumerate() {
        if l > best.1 {
            best = (id, l);
        }
    }
    best.0 as u32
}

/// Sorts best first as much of `cands` as holds the top-p nucleus (the shortest best-first prefix
/// whose weight reaches `target`) and returns its length.
fn sort_nucleus(cands: &mut [(u32, f32)], max: f32, target: f64) -> usize {
    let (mut sorted, mut chunk, mut cum) = (0, NUCLEUS_HEAD, 0.0);
    loop {
        // Bring the next `chunk` best to the front of the unsorted rest and sort just those.
        let end = (sorted + chunk).min(cands.len());
        if end < cands.len() {
            cands[sorted..].select_nth_unstable_by(end - sorted - 1, best_first);
        }
        cands[sorted..end].sort_unstable_by(best_first);
        for (i, &(_, l)) in cands.iter().enumerate().take(end).skip(sorted) {
            cum += weight(l, max);
            if cum >= target {
                return i + 1;
            }
        }
        if end == cands.len() {
            // Rounding left the whole set a hair short of the target: keep it all.
            return end;
        }
        sorted = end;
        chunk *= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(params: SamplingParams) -> Sampler {
        Sampler::new(params, 0)
    }

    fn random_logits(seed: u64, n: usize) -> Vec<f32> {
        let mut rng = ChaCha12Rng::seed_from_u64(seed);
        (0..n).map(|_| (rng.next_u32() as f32 / u32::MAX as f32) * 20.0 - 10.0).collect()
    }

    fn draws(params: SamplingParams, logits: &[f32], n: usize) -> Vec<u32> {
        let mut s = sampler(params);
        (0..n).map(|_| s.sample(&mut logits.to_vec(), &[])).collect()
    }

    /// How often each id came up, as fractions of all draws.
    fn frequencies(tokens: &[u32], vocab: usize) -> Vec<f64> {
        let mut counts = vec![0.0; vocab];
        for &t in tokens {
            counts[t as usize] += 1.0;
        }
        counts.iter().map(|c| c / tokens.len() as f64).collect()
    }

    fn greedy() -> SamplingParams {
        SamplingParams { temperature: 0.0, ..SamplingParams::default() }
    }

    #[test]
    fn greedy_picks_argmax_lowest_id_on_ties() {
        let mut s = sampler(greedy());
        assert_eq!(s.sample(&mut [0.5, -1.0, 2.5, 1.0], &[]), 2);
        assert_eq!(s.sample(&mut [1.0, 3.0, 3.0, 2.0], &[]), 1);
        assert_eq!(s.sample(&mut [f32::NAN, 0.0, f32::NEG_INFINITY], &[]), 1);
        assert!(s.is_greedy());
    }

    #[test]
    fn same_seed_same_tokens_different_seed_different_tokens() {
        let logits = random_logits(1, 1000);
        let seeded = |seed| SamplingParams { seed: Some(seed), ..SamplingParams::default() };
        let a = draws(seeded(42), &logits, 200);
        assert_eq!(a, draws(seeded(42), &logits, 200));
        assert_ne!(a, draws(seeded(43), &logits, 200));
        // Without a seed in the params the fallback seeds the stream.
        let mut fallback = Sampler::new(SamplingParams::default(), 42);
        let b: Vec<u32> = (0..200).map(|_| fallback.sample(&mut logits.clone(), &[])).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn top_k_one_and_tiny_top_p_are_greedy() {
        for seed in 0..20 {
            let logits = random_logits(seed, 500);
            let want = argmax(&logits);
            let top_k = SamplingParams { top_k: 1, ..SamplingParams::default() };
            assert!(sampler(top_k.clone()).is_greedy());
            assert_eq!(draws(top_k, &logits, 5), [want; 5]);
            let top_p = SamplingParams { top_p: 1e-6, ..SamplingParams::default() };
            assert_eq!(draws(top_p, &logits, 5), [want; 5]);
        }
        // Ties go to the lowest id, as in greedy.
        let top_k = SamplingParams { top_k: 1, ..SamplingParams::default() };
        assert_eq!(draws(top_k, &[1.0, 3.0, 3.0], 5), [1; 5]);
    }

    #[test]
    fn is_greedy_only_without_penalties() {
        let p = SamplingParams { temperature: 0.0, repetition_penalty: 1.1, ..greedy() };
        assert!(!sampler(p.clone()).is_greedy());
        assert!(sampler(SamplingParams { penalty_last_n: 0, ..p }).is_greedy());
        assert!(!sampler(SamplingParams::default()).is_greedy());
    }

    #[test]
    fn filters_keep_only_allowed_tokens() {
        // Probabilities 0.5, 0.3, 0.15, 0.05.
        let logits = [0.5f32, 0.3, 0.15, 0.05].map(f32::ln);
        let seen = |params| {
            let f = frequencies(&draws(params, &logits, 2000), 4);
            f.iter().map(|&x| x > 0.0).collect::<Vec<_>>()
        };
        let d = SamplingParams::default;
        assert_eq!(seen(d()), [true; 4]);
        assert_eq!(seen(SamplingParams { top_k: 2, ..d() }), [true, true, false, false]);
        // 0.5 falls short of 0.7, 0.5 + 0.3 reaches it.
        assert_eq!(seen(SamplingParams { top_p: 0.7, ..d() }), [true, true, false, false]);
        // 0.15 / 0.5 = 0.3 passes 0.2, 0.05 / 0.5 = 0.1 does not.
        assert_eq!(seen(SamplingParams { min_p: 0.2, ..d() }), [true, true, true, false]);
        let masked = [f32::NEG_INFINITY, 0.0, f32::NAN, 0.0];
        let f = frequencies(&draws(d(), &masked, 1000), 4);
        assert_eq!(f.iter().map(|&x| x > 0.0).collect::<Vec<_>>(), [false, true, false, true]);
    }

    #[test]
    fn filters_match_llama_cpp_order() {
        // Reference: sort everything, then top-k, top-p, min-p exactly in llama.cpp's order.
        fn reference(logits: &[f32], p: &SamplingParams) -> Vec<u32> {
            let mut c: Vec<(u32, f32)> =
                logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
            c.sort_by(best_first);
            if p.top_k > 0 {
                c.truncate(p.top_k as usize);
            }
            let max = c[0].1;
            let total: f64 = c.iter().map(|&(_, l)| weight(l, max)).sum();
            let mut cum = 0.0;
            let reached = c.iter().position(|&(_, l)| {
                cum += weight(l, max);
                cum >= f64::from(p.top_p) * total
            });
            c.truncate(reached.map_or(c.len(), |i| i + 1));
            c.retain(|&(_, l)| weight(l, max) >= f64::from(p.min_p));
            let mut ids: Vec<u32> = c.iter().map(|c| c.0).collect();
            ids.sort();
            ids
        }
        let d = SamplingParams::default;
        let cases = [
            SamplingParams { top_p: 0.9, ..d() },
            SamplingParams { top_p: 0.99, ..d() },
            SamplingParams { top_p: 0.5, min_p: 0.05, ..d() },
            SamplingParams { top_p: 0.95, top_k: 100, ..d() },
            SamplingParams { top_p: 0.8, top_k: 2000, min_p: 0.01, ..d() },
            SamplingParams { min_p: 0.1, ..d() },
            SamplingParams { top_k: 40, ..d() },
        ];
        for (seed, p) in cases.iter().enumerate() {
            let logits = random_logits(seed as u64, 5000);
            let mut s = sampler(p.clone());
            s.filter(&logits);
            let mut got: Vec<u32> = s.cands.iter().map(|c| c.0).collect();
            got.sort();
            let want = reference(&logits, p);
            assert!(want.len() > 1, "{p:?} keeps too little to test anything");
            assert_eq!(got, want, "{p:?}");
        }
    }

    #[test]
    fn penalties_change_logits_exactly() {
        let params = SamplingParams {
            repetition_penalty: 2.0,
            presence_penalty: 0.5,
            frequency_penalty: 0.25,
            ..greedy()
        };
        // Token 0 once, 1 twice, 3 three times, 2 never; 99 is past the vocabulary.
        let history = [0, 1, 99, 1, 3, 3, 3];
        let mut logits = [2.0, -1.0, 0.5, 3.0];
        let token = sampler(params.clone()).sample(&mut logits, &history);
        // 2/2 - (0.25 + 0.5), -1*2 - (0.5 + 0.5), untouched, 3/2 - (0.75 + 0.5).
        assert_eq!(logits, [0.25, -3.0, 0.5, 0.25]);
        assert_eq!(token, 2);

        // Only the last three tokens count.
        let mut logits = [2.0, -1.0, 0.5, 3.0];
        sampler(SamplingParams { penalty_last_n: 3, ..params.clone() })
            .sample(&mut logits, &history);
        assert_eq!(logits, [2.0, -1.0, 0.5, 0.25]);

        let mut logits = [2.0, -1.0, 0.5, 3.0];
        sampler(SamplingParams { penalty_last_n: 0, ..params }).sample(&mut logits, &history);
        assert_eq!(logits, [2.0, -1.0, 0.5, 3.0]);
    }

    #[test]
    fn temperature_sampling_matches_softmax() {
        let logits = [1.0f32, 2.0, 0.0, 3.0];
        let t = 0.7;
        let exp: Vec<f64> = logits.iter().map(|&l| f64::from(l / t).exp()).collect();
        let sum: f64 = exp.iter().sum();
        let params = SamplingParams { temperature: t, seed: Some(7), ..SamplingParams::default() };
        let want: Vec<f64> = exp.iter().map(|e| e / sum).collect();
        let got = frequencies(&draws(params, &logits, 20_000), 4);
        // One standard deviation here is at most 0.0036.
        assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 0.01), "{got:?} vs {want:?}");
    }
}
