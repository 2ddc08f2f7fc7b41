use serde::{Deserialize, Serialize};

/// How to pick each next token. Field names and neutral values follow the OpenAI API (plus the
/// llama.cpp extensions top_k, min_p, repetition_penalty), so a request body deserializes straight
/// into it and any field left out is off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Softmax temperature; 0 means greedy argmax.
    pub temperature: f32,
    /// Nucleus sampling: keep the most likely tokens until their mass reaches top_p. 1 = off.
    pub top_p: f32,
    /// Keep only the k most likely tokens. 0 = off.
    pub top_k: u32,
    /// Drop tokens less likely than min_p times the most likely one. 0 = off.
    pub min_p: f32,
    /// CTRL-style penalty for tokens in the recent window: positive logits are divided by it,
    /// negative ones multiplied. 1 = off.
    pub repetition_penalty: f32,
    /// Subtracted once from the logit of every token present in the recent window.
    pub presence_penalty: f32,
    /// Subtracted from a token's logit once per occurrence in the recent window.
    pub frequency_penalty: f32,
    /// How many of the most recent tokens (prompt included) the penalties look at. 0 = penalties off.
    pub penalty_last_n: u32,
    /// Seed for the draw; when absent the engine supplies one.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_last_n: 64,
            seed: None,
        }
    }
}

/// A sampling parameter outside the range where it means something, a bad `logit_bias` or
/// `top_logprobs`, or a constraint on the picks (a schema, grammar or regex) that cannot be
/// compiled or followed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SampleError {
    #[error("{name} must be {expected}, got {value}")]
    OutOfRange { name: &'static str, value: f32, expected: &'static str },
    #[error("logit_bias names token {token}, outside the vocabulary of {vocab} tokens")]
    BiasToken { token: u32, vocab: usize },
    #[error("logit_bias for token {token} must be finite and in [-100, 100], got {value}")]
    BiasValue { token: u32, value: f32 },
    #[error("logit_bias names token {token} twice")]
    BiasTwice { token: u32 },
    #[error("top_logprobs must be at most {max}, got {requested}")]
    TooManyLogprobs { requested: usize, max: usize },
    #[error(transparent)]
    Constraint(#[from] crate::constraint::ConstraintError),
}

impl SamplingParams {
    /// Checks every field. NaN fails every check because all comparisons with it are false.
    pub fn validate(&self) -> Result<(), SampleError> {
        let check = |name, value: f32, ok: bool, expected| {
            if ok {
                Ok(())
            } else {
                Err(SampleError::OutOfRange { name, value, expected })
            }
        };
        let t = self.temperature;
        check("temperature", t, t >= 0.0 && t.is_finite(), "finite and >= 0")?;
        let p = self.top_p;
        check("top_p", p, p > 0.0 && p <= 1.0, "in (0, 1]")?;
        let m = self.min_p;
        check("min_p", m, (0.0..=1.0).contains(&m), "in [0, 1]")?;
        let r = self.repetition_penalty;
        check("repetition_penalty", r, r > 0.0 && r.is_finite(), "finite and > 0")?;
        // OpenAI's documented range; beyond it the penalty swamps the model.
        let pp = self.presence_penalty;
        check("presence_penalty", pp, (-2.0..=2.0).contains(&pp), "in [-2, 2]")?;
        let fp = self.frequency_penalty;
        check("frequency_penalty", fp, (-2.0..=2.0).contains(&fp), "in [-2, 2]")
    }

    /// Whether any penalty would change a logit.
    pub(super) fn has_penalties(&self) -> bool {
        self.penalty_last_n > 0
            && (self.repetition_penalty != 1.0
                || self.presence_penalty != 0.0
                || self.frequency_penalty != 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_name(params: SamplingParams) -> &'static str {
        match params.validate() {
            Err(SampleError::OutOfRange { name, .. }) => name,
            Err(e) => panic!("{params:?}: {e}"),
            Ok(()) => panic!("{params:?} validated"),
        }
    }

    #[test]
    fn defaults_are_valid_and_neutral() {
        let p = SamplingParams::default();
        assert_eq!(p.validate(), Ok(()));
        assert!(!p.has_penalties());
    }

    #[test]
    fn missing_json_fields_take_defaults() {
        let p: SamplingParams = serde_json::from_str(r#"{"temperature": 0.5, "seed": 7}"#).unwrap();
        assert_eq!(
            p,
            SamplingParams { temperature: 0.5, seed: Some(7), ..SamplingParams::default() }
        );
    }

    #[test]
    fn validate_rejects_out_of_range_values() {
        let d = SamplingParams::default;
        assert_eq!(error_name(SamplingParams { temperature: -0.1, ..d() }), "temperature");
        assert_eq!(error_name(SamplingParams { temperature: f32::NAN, ..d() }), "temperature");
        assert_eq!(error_name(SamplingParams { temperature: f32::INFINITY, ..d() }), "temperature");
        assert_eq!(error_name(SamplingParams { top_p: 0.0, ..d() }), "top_p");
        assert_eq!(error_name(SamplingParams { top_p: 1.01, ..d() }), "top_p");
        assert_eq!(error_name(SamplingParams { top_p: f32::NAN, ..d() }), "top_p");
        assert_eq!(error_name(SamplingParams { min_p: -0.01, ..d() }), "min_p");
        assert_eq!(error_name(SamplingParams { min_p: f32::NAN, ..d() }), "min_p");
        assert_eq!(
            error_name(SamplingParams { repetition_penalty: 0.0, ..d() }),
            "repetition_penalty"
        );
        assert_eq!(error_name(SamplingParams { presence_penalty: 2.5, ..d() }), "presence_penalty");
        assert_eq!(
            error_name(SamplingParams { frequency_penalty: -3.0, ..d() }),
            "frequency_penalty"
        );
        assert_eq!(
            error_name(SamplingParams { frequency_penalty: f32::NAN, ..d() }),
            "frequency_penalty"
        );
        let e = SamplingParams { top_p: 2.0, ..d() }.validate().unwrap_err();
        assert_eq!(e.to_string(), "top_p must be in (0, 1], got 2");
    }

    #[test]
    fn edge_values_are_valid() {
        let d = SamplingParams::default;
        for p in [
            SamplingParams { temperature: 0.0, ..d() },
            SamplingParams { top_p: 1e-6, ..d() },
            SamplingParams { min_p: 1.0, ..d() },
            SamplingParams { presence_penalty: -2.0, frequency_penalty: 2.0, ..d() },
        ] {
            assert_eq!(p.validate(), Ok(()), "{p:?}");
        }
    }
}
