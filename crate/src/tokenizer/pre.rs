//! The pre-tokenizers of byte-level BPE vocabularies: how `tokenizer.ggml.pre` splits text into
//! words before merges run. The regexes are llama.cpp's (llama-vocab.cpp), adapted only where
//! its matching differs from a Unicode regex engine's (see `DEEPSEEK_CJK`), and applied in
//! sequence the way its `unicode_regex_split` does: each regex splits every piece the previous
//! one left, and the text between two matches stays a piece of its own. The per-family flags
//! are llama.cpp's too, so a file tokenizes here as it does there.

use super::TokenizerError;

/// GPT-2's word regex. llama.cpp runs a hand-written equivalent of it; it matches what a regex
/// engine does for every assigned code point.
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

/// Llama 3's regex with the case-insensitive group spelled out, as llama.cpp adapted it.
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's: Llama 3's with single digits.
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen3.5's: Qwen2's with combining marks kept inside words.
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Mistral's Tekken: upper-then-lower letter runs, with `[^a-z]` / `[^A-Z]` inside lookaheads
/// standing for "not lowercase" / "not uppercase" as llama.cpp rewrote it.
const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// CJK ideographs, the blocks from Samaritan up to them, and Hangul, kept as runs by DeepSeek.
///
/// llama.cpp matches regexes without `\p{..}` classes on text whose non-ASCII whitespace has
/// been replaced by U+000B, so whitespace never falls inside a literal range such as
/// `ࠀ-一` there. `&&\S` takes it out of the ranges here to match.
const DEEPSEEK_CJK: &str = "[一-龥ࠀ-一가-퟿&&\\S]+";

/// How one family of vocabularies is pre-tokenized and framed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PreTokenizer {
    /// Applied in order; each splits the pieces the previous one produced.
    pub regexes: &'static [&'static str],
    /// A word that is itself a token is emitted whole, without running merges (Llama 3).
    pub ignore_merges: bool,
    /// Whether BOS is added when the file does not say (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    /// llama.cpp's `clean_spaces`: detokenization removes the space before `?!.,` and in
    /// front of English contractions, undoing what old GPT-2-style tokenizers did to text.
    pub clean_spaces: bool,
}

const fn family(regexes: &'static [&'static str], clean_spaces: bool) -> PreTokenizer {
    PreTokenizer { regexes, ignore_merges: false, add_bos: false, clean_spaces }
}

/// llama.cpp's choice for a file without `tokenizer.ggml.pre` (it warns that quality suffers).
const DEFAULT: PreTokenizer = family(&[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"], true);

const LLAMA3_FAMILY: PreTokenizer =
    PreTokenizer { regexes: &[LLAMA3], ignore_merges: true, add_bos: true, clean_spaces: true };

const TEKKEN_FAMILY: PreTokenizer =
    PreTokenizer { regexes: &[TEKKEN], ignore_merges: true, add_bos: true, clean_spaces: false };

/// Every `tokenizer.ggml.pre` name Torchlight reads, with what it means.
const KNOWN: &[(&[&str], PreTokenizer)] = &[
    (&["default"], DEFAULT),
    (
        &["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"],
        LLAMA3_FAMILY,
    ),
    (&["dbrx", "smaug-bpe"], family(&[LLAMA3], true)),
    (&["tekken"], TEKKEN_FAMILY),
    (&["qwen2", "deepseek-r1-qwen"], family(&[QWEN2], false)),
    (&["stablelm2", "megrez"], family(&[QWEN2], true)),
    (&["qwen35"], family(&[QWEN35], false)),
    (&["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"], family(&[r"\p{N}", GPT2], true)),
    (&["smollm", "command-r"], family(&[r"\p{N}", GPT2], false)),
    (&["gpt-2", "phi-2", "mpt", "olmo", "jais", "exaone4", "gigachat", "a.x-4.0", "mellum"], family(&[GPT2], true)),
    (&["trillion", "granite-docling"], family(&[GPT2], false)),
    (&["falcon"], family(&[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"], true)),
    (
        &["deepseek-llm"],
        family(
            &[
                "[\r\n]",
                // Six code points here change under Unicode normalization (U+212A KELVIN SIGN
                // becomes "K", ...), so they are escaped: an editor cannot alter them unseen.
                "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u{1F7D}ᾀ-ᾴᾶ-ᾼ\u{1FBE}ῂ-ῄῆ-ῌῐ-\u{1FD3}ῖ-\u{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u{2126}ℨ\u{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
                // See `DEEPSEEK_CJK` for the `&&\S`: U+3000 is in the last range.
                "\\s?[!-/:-~！-／：-～‘-‟　-。&&\\S]+",
                "\\s+$",
                DEEPSEEK_CJK,
                "\\p{N}+",
            ],
            false,
        ),
    ),
    (
        &["deepseek-coder"],
        family(&["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", DEEPSEEK_CJK, r"\p{N}"], false),
    ),
    (&["poro-chat"], family(&[" ?[^(\\s|.,!?…。，、।۔،)]+"], false)),
    (&["bloom", "gpt3-finnish"], family(&[" ?[^(\\s|.,!?…。，、।۔،)]+"], true)),
];

/// The pre-tokenizer `tokenizer.ggml.pre` names; a file without one gets llama.cpp's default.
/// A name outside this table is an error, as an unknown name is in llama.cpp: falling back to
/// some other regex would tokenize text unlike the model was trained on, silently.
pub(crate) fn named(name: Option<&str>) -> Result<PreTokenizer, TokenizerError> {
    let Some(name) = name else { return Ok(DEFAULT) };
    KNOWN
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|&(_, pre)| pre)
        .ok_or_else(|| TokenizerError::UnknownPreTokenizer(name.to_string()))
}

/// The names [`named`] accepts, for the error message that lists them.
pub(crate) fn supported_names() -> impl Iterator<Item = &'static str> {
    KNOWN.iter().flat_map(|(names, _)| names.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_regex_compiles() {
        for (names, pre) in KNOWN {
            for regex in pre.regexes {
                fancy_regex_compiles(regex).unwrap_or_else(|e| panic!("{names:?}: {regex}: {e}"));
            }
        }
    }

    fn fancy_regex_compiles(regex: &str) -> Result<(), tokenizers::Error> {
        tokenizers::pre_tokenizers::split::Split::new(
            tokenizers::pre_tokenizers::split::SplitPattern::Regex(regex.to_string()),
            tokenizers::SplitDelimiterBehavior::Isolated,
            false,
        )
        .map(drop)
    }

    #[test]
    fn missing_name_is_llama_cpp_default_and_unknown_name_is_an_error() {
        assert_eq!(named(None).unwrap(), DEFAULT);
        assert_eq!(named(Some("smollm")).unwrap().regexes, &[r"\p{N}", GPT2]);
        let err = named(Some("no-such-pre")).unwrap_err();
        assert!(err.to_string().contains("\"no-such-pre\""), "{err}");
    }

    #[test]
    fn llama3_family_adds_bos_and_ignores_merges() {
        let pre = named(Some("llama-bpe")).unwrap();
        assert!(pre.add_bos && pre.ignore_merges);
    }
}
