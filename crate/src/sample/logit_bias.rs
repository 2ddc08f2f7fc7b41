use super::SampleError;

/// OpenAI's range for a bias: at -100 a token is effectively banned, at +100 effectively forced.
pub const MAX_LOGIT_BIAS: f32 = 100.0;

/// Checks `bias` (token id, value) for a model with `vocab` logits: every id in the vocabulary
/// and named once, every value finite and within ±[`MAX_LOGIT_BIAS`].
pub fn check_logit_bias(bias: &[(u32, f32)], vocab: usize) -> Result<(), SampleError> {
    for &(token, value) in bias {
        if token as usize >= vocab {
            return Err(SampleError::BiasToken { token, vocab });
        }
        // NaN fails the range check too.
        if !(-MAX_LOGIT_BIAS..=MAX_LOGIT_BIAS).contains(&value) {
            return Err(SampleError::BiasValue { token, value });
        }
    }
    let mut ids: Vec<u32> = bias.iter().map(|b| b.0).collect();
    ids.sort_unstable();
    match ids.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(SampleError::BiasTwice { token: w[0] }),
        None => Ok(()),
    }
}

/// Adds each bias to its token's raw logit. Ids past `logits` (unchecked input) are skipped.
pub fn apply_logit_bias(logits: &mut [f32], bias: &[(u32, f32)]) {
    for &(token, value) in bias {
        if let Some(logit) = logits.get_mut(token as usize) {
            *logit += value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_adds_to_the_named_logits_only() {
        let mut logits = [1.0, 2.0, 3.0, f32::NEG_INFINITY];
        apply_logit_bias(&mut logits, &[(0, 100.0), (2, -0.5), (3, 100.0), (9, 1.0)]);
        // A masked token stays masked: the grammar's -inf wins over any bias.
        assert_eq!(logits, [101.0, 2.0, 2.5, f32::NEG_INFINITY]);
    }

    #[test]
    fn check_accepts_the_whole_range() {
        assert_eq!(check_logit_bias(&[], 0), Ok(()));
        assert_eq!(check_logit_bias(&[(0, -100.0), (4, 100.0), (2, 0.0)], 5), Ok(()));
    }

    #[test]
    fn check_names_the_offending_token() {
        assert_eq!(check_logit_bias(&[(1, 1.0), (5, 1.0)], 5), Err(SampleError::BiasToken { token: 5, vocab: 5 }));
        for value in [100.5, -101.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            match check_logit_bias(&[(0, 1.0), (3, value)], 5) {
                Err(SampleError::BiasValue { token: 3, value: v }) => assert!(v.total_cmp(&value).is_eq()),
                other => panic!("bias {value}: {other:?}"),
            }
        }
        assert_eq!(check_logit_bias(&[(2, 1.0), (0, 1.0), (2, -1.0)], 5), Err(SampleError::BiasTwice { token: 2 }));
        let e = check_logit_bias(&[(7, 150.0)], 49_152).unwrap_err();
        assert_eq!(e.to_string(), "logit_bias for token 7 must be finite and in [-100, 100], got 150");
        let e = check_logit_bias(&[(49_152, 1.0)], 49_152).unwrap_err();
        assert_eq!(e.to_string(), "logit_bias names token 49152, outside the vocabulary of 49152 tokens");
    }
}
