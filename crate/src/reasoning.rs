//! Reasoning: a thinking model (Qwen3, DeepSeek-R1 and their kin) writes its chain of thought
//! between `<think>` and `</think>`, then its answer. As llama.cpp's server does by default,
//! the first part is reported apart, as `reasoning_content`, and only the rest as `content`.
//! [`ReasoningSplitter`] does that to text as it streams, one token's piece at a time, so a tag
//! may arrive cut anywhere.
//!
//! The rules are llama.cpp's:
//! - A think block opens at the start of the answer (whitespace before `<think>` stays content),
//!   or in the prompt itself, when the template ends it with `<think>` (DeepSeek-R1's does).
//!   A `<think>` anywhere else is content.
//! - Each block's reasoning is trimmed of whitespace, and so is the whitespace between
//!   `</think>` and what follows; a `<think>` right there opens another block.
//! - A block that the generation leaves open is reasoning to its end. Unlike llama.cpp, the start
//!   of a `</think>` cut off by the end is kept as reasoning text: the model did write it.

use crate::sample::partial_start;

/// What opens and closes a think block.
pub(crate) const OPEN_TAG: &str = "<think>";
const CLOSE_TAG: &str = "</think>";

/// How a prompt leaves the answer to it, as far as reasoning goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasoning {
    /// The template does not think: the whole answer is content, tags and all.
    None,
    /// The answer may open a think block (Qwen3: its prompt ends with `<|im_start|>assistant\n`
    /// and the model writes `<think>`).
    MayOpen,
    /// The prompt ends inside a think block the template opened: the answer starts as reasoning.
    Open,
}

impl Reasoning {
    /// For `prompt`, rendered by a template that thinks: whether it leaves a think block open.
    pub fn after(prompt: &str) -> Self {
        if prompt.trim_end_matches(is_space).ends_with(OPEN_TAG) {
            Self::Open
        } else {
            Self::MayOpen
        }
    }
}

/// A piece of an answer, split in two; either part may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    pub content: String,
    pub reasoning: String,
}

impl Split {
    pub fn is_empty(&self) -> bool {
        self.content.is_empty() && self.reasoning.is_empty()
    }

    /// Appends `piece`'s parts to this one's.
    pub fn extend(&mut self, piece: &Split) {
        self.content.push_str(&piece.content);
        self.reasoning.push_str(&piece.reasoning);
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Where a think block may open. `keep_whitespace`: whitespace here is content (only at the
    /// very start of the answer). `in_block`: text that is not `<think>` is reasoning already
    /// (the prompt opened the block).
    Opening { keep_whitespace: bool, in_block: bool },
    /// In a think block; `started` once some of its reasoning went out, so leading whitespace
    /// is behind.
    Thinking { started: bool },
    /// The rest of the answer is content.
    Content,
}

/// Splits streamed answer text into content and reasoning (see the module's rules).
#[derive(Debug, Clone)]
pub struct ReasoningSplitter {
    state: State,
    /// Text not given out yet: what may be the start of a tag, and in a think block the
    /// whitespace that may turn out to end it (and so be trimmed).
    held: String,
}

impl ReasoningSplitter {
    pub fn new(start: Reasoning) -> Self {
        let state = match start {
            Reasoning::None => State::Content,
            Reasoning::MayOpen => State::Opening { keep_whitespace: true, in_block: false },
            Reasoning::Open => State::Opening { keep_whitespace: false, in_block: true },
        };
        Self { state, held: String::new() }
    }

    /// Takes the next piece of the answer; gives what of it (and of earlier pieces held back)
    /// is now known to be content or reasoning.
    pub fn push(&mut self, piece: &str) -> Split {
        let mut out = Split::default();
        self.held.push_str(piece);
        loop {
            match self.state {
                State::Content => {
                    out.content.push_str(&std::mem::take(&mut self.held));
                    return out;
                }
                State::Opening { keep_whitespace, in_block } => {
                    let whitespace = take_leading_space(&mut self.held);
                    if keep_whitespace {
                        out.content.push_str(&whitespace);
                    }
                    if self.held.starts_with(OPEN_TAG) {
                        self.held.drain(..OPEN_TAG.len());
                        self.state = State::Thinking { started: false };
                    } else if OPEN_TAG.starts_with(self.held.as_str()) {
                        // Nothing yet, or a `<think>` may be arriving.
                        return out;
                    } else {
                        self.state = if in_block { State::Thinking { started: false } } else { State::Content };
                    }
                }
                State::Thinking { started } => {
                    if !started {
                        take_leading_space(&mut self.held);
                    }
                    if let Some(end) = self.held.find(CLOSE_TAG) {
                        out.reasoning.push_str(self.held[..end].trim_end_matches(is_space));
                        self.held.drain(..end + CLOSE_TAG.len());
                        self.state = State::Opening { keep_whitespace: false, in_block: false };
                        continue;
                    }
                    // Hold back what may be the start of `</think>`, and the whitespace before it.
                    let tag = partial_start(&self.held, &[CLOSE_TAG]);
                    let sure = self.held[..tag].trim_end_matches(is_space).len();
                    out.reasoning.extend(self.held.drain(..sure));
                    self.state = State::Thinking { started: started || sure > 0 };
                    return out;
                }
            }
        }
    }

    /// The generation ended: gives what was held back. Whitespace that ends a think block left
    /// open is trimmed, as a closed block's is.
    pub fn finish(self) -> Split {
        let mut out = Split::default();
        match self.state {
            State::Content | State::Opening { in_block: false, .. } => out.content = self.held,
            State::Opening { in_block: true, .. } | State::Thinking { .. } => {
                out.reasoning = self.held.trim_end_matches(is_space).to_string();
            }
        }
        out
    }
}

/// Takes the whitespace `text` starts with off it.
fn take_leading_space(text: &mut String) -> String {
    let end = text.len() - text.trim_start_matches(is_space).len();
    text.drain(..end).collect()
}

/// C's `isspace`, the whitespace llama.cpp trims around reasoning.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(content: &str, reasoning: &str) -> Split {
        Split { content: content.into(), reasoning: reasoning.into() }
    }

    /// Each piece's split, then what `finish` gave.
    fn stream(start: Reasoning, pieces: &[&str]) -> (Vec<Split>, Split) {
        let mut splitter = ReasoningSplitter::new(start);
        let steps = pieces.iter().map(|p| splitter.push(p)).collect();
        (steps, splitter.finish())
    }

    /// The whole answer's split, from `text` in one piece.
    fn whole(start: Reasoning, text: &str) -> Split {
        let (steps, last) = stream(start, &[text]);
        let mut all = steps[0].clone();
        all.extend(&last);
        all
    }

    #[test]
    fn qwen3_thinking_answer_token_by_token() {
        // As Qwen3 writes it after a prompt ending in `<|im_start|>assistant\n`.
        let pieces = ["<think>", "\n", "Paris", " is", " it", ".\n", "</think>", "\n\n", "Paris", "."];
        let (steps, last) = stream(Reasoning::MayOpen, &pieces);
        let expected = [
            split("", ""),
            split("", ""),
            split("", "Paris"),
            split("", " is"),
            split("", " it"),
            // The newline could be the whitespace that ends the block: it waits.
            split("", "."),
            split("", ""),
            split("", ""),
            split("Paris", ""),
            split(".", ""),
        ];
        assert_eq!(steps, expected);
        assert_eq!(last, split("", ""));
    }

    #[test]
    fn whitespace_inside_reasoning_goes_out_once_text_follows_it() {
        let (steps, _) = stream(Reasoning::MayOpen, &["<think>a", "\n\n", "b", "</think>c"]);
        assert_eq!(steps, [split("", "a"), split("", ""), split("", "\n\nb"), split("c", "")]);
    }

    #[test]
    fn any_cut_gives_the_same_split() {
        let cases = [
            (Reasoning::MayOpen, "<think>\nÉtape 1 : 日本.\n</think>\n\nRéponse <think>ici</think>"),
            (Reasoning::MayOpen, "\n <think>a</think> \n<think> b </think>c"),
            (Reasoning::MayOpen, "<thinking> is content"),
            (Reasoning::Open, "Hmm </thinker> </think>\n\nDone"),
            (Reasoning::Open, "\n<think>\nagain</think>x"),
            (Reasoning::MayOpen, "<think>unfinished </thi"),
            (Reasoning::None, "<think>a</think>b"),
        ];
        for (start, text) in cases {
            let expected = whole(start, text);
            let chars: Vec<char> = text.chars().collect();
            for size in 1..=chars.len() {
                let pieces: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
                let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
                let (steps, last) = stream(start, &pieces);
                let mut joined = Split::default();
                steps.iter().chain([&last]).for_each(|s| joined.extend(s));
                assert_eq!(joined, expected, "{text:?} in pieces of {size} chars");
            }
        }
    }

    #[test]
    fn llama_cpp_rules() {
        use Reasoning::*;
        let cases = [
            // No think block.
            (MayOpen, "Paris.", split("Paris.", "")),
            (MayOpen, "  Paris", split("  Paris", "")),
            (MayOpen, "<thinking>", split("<thinking>", "")),
            (MayOpen, "<th", split("<th", "")),
            // An empty block, as Qwen3 writes one when told not to think in the message.
            (MayOpen, "<think>\n\n</think>\n\nHi", split("Hi", "")),
            // Whitespace before the block stays content.
            (MayOpen, "\n<think>a</think>b", split("\nb", "a")),
            // Only at the start: later, `<think>` is content.
            (MayOpen, "Answer <think>x</think>", split("Answer <think>x</think>", "")),
            // Blocks one after another.
            (MayOpen, "<think>a</think>\n<think> b </think>c", split("c", "ab")),
            // Left open by the prompt; a repeated `<think>` is taken as the same opening.
            (Open, "\nLet me see.\n</think>\n\nParis.", split("Paris.", "Let me see.")),
            (Open, "<think>\nLet me see.</think>Paris.", split("Paris.", "Let me see.")),
            (Open, "", split("", "")),
            // Unterminated at the end.
            (MayOpen, "<think>\nStill going \n", split("", "Still going")),
            (MayOpen, "<think>\nStill going\n</thi", split("", "Still going\n</thi")),
            (Open, "<thi", split("", "<thi")),
            // A template that does not think.
            (None, "<think>a</think>b", split("<think>a</think>b", "")),
        ];
        for (start, text, expected) in cases {
            assert_eq!(whole(start, text), expected, "{start:?} {text:?}");
        }
    }

    #[test]
    fn where_a_prompt_leaves_the_answer() {
        // Qwen3, thinking on and off.
        assert_eq!(Reasoning::after("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"), Reasoning::MayOpen);
        assert_eq!(Reasoning::after("<|im_start|>assistant\n<think>\n\n</think>\n\n"), Reasoning::MayOpen);
        // DeepSeek-R1's distills open the block in the prompt.
        assert_eq!(Reasoning::after("<｜User｜>hi<｜Assistant｜><think>\n"), Reasoning::Open);
    }
}
