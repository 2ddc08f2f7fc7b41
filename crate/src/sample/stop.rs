/// Incremental stop-string matching over streamed text.
///
/// Text that might be the start of a stop string is held back until the next deltas settle it, so
/// no emitted text ever has to be taken back, and the output ends exactly where the first stop
/// string begins.
#[derive(Debug, Clone)]
pub struct StopStrings {
    stops: Vec<String>,
    /// Received but not yet emitted: the longest tail that is a proper prefix of some stop string.
    held: String,
    stopped: bool,
}

/// What one [`StopStrings::push`] lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopStep {
    /// Text now safe to show.
    pub emit: String,
    /// A stop string was reached: generation should end, and `emit` is the last of the text.
    pub stopped: bool,
}

impl StopStrings {
    /// Empty stop strings are dropped: they would stop generation before it began.
    pub fn new<S: Into<String>>(stops: impl IntoIterator<Item = S>) -> Self {
        let stops: Vec<String> =
            stops.into_iter().map(Into::into).filter(|s| !s.is_empty()).collect();
        Self { stops, held: String::new(), stopped: false }
    }

    /// Takes the next piece of generated text. Once stopped, further text is ignored.
    pub fn push(&mut self, delta: &str) -> StopStep {
        if self.stopped {
            return StopStep { emit: String::new(), stopped: true };
        }
        self.held.push_str(delta);
        // The earliest start wins: whichever stop string it belongs to, nothing after it may be shown.
        if let Some(at) = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min() {
            self.held.truncate(at);
            self.stopped = true;
            return StopStep { emit: std::mem::take(&mut self.held), stopped: true };
        }
        let tail = self.held.split_off(partial_start(&self.held, &self.stops));
        StopStep { emit: std::mem::replace(&mut self.held, tail), stopped: false }
    }

    /// Generation ended for another reason: releases whatever was held back.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Where the longest tail of `text` that could still grow into one of `needles` starts
/// (`text.len()` when none could): text from there on must wait for what comes next.
pub(crate) fn partial_start<S: AsRef<str>>(text: &str, needles: &[S]) -> usize {
    // A tail as long as a whole needle would already have matched, so only shorter ones count.
    let longest = needles.iter().map(|n| n.as_ref().len()).max().unwrap_or(0);
    let earliest = text.len().saturating_sub(longest.saturating_sub(1));
    (earliest..text.len())
        .filter(|&i| text.is_char_boundary(i))
        .find(|&i| needles.iter().any(|n| n.as_ref().starts_with(&text[i..])))
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes every delta and returns each step's emitted text, the stop flag, and what finish flushed.
    fn run(stops: &[&str], deltas: &[&str]) -> (Vec<String>, bool, String) {
        let mut s = StopStrings::new(stops.iter().copied());
        let mut emitted = Vec::new();
        let mut stopped = false;
        for d in deltas {
            let step = s.push(d);
            assert!(!stopped || step.emit.is_empty(), "emitted after stopping");
            emitted.push(step.emit);
            stopped |= step.stopped;
        }
        (emitted, stopped, s.finish())
    }

    #[test]
    fn no_stop_strings_pass_everything_through() {
        assert_eq!(
            run(&[], &["ab", "", "c"]),
            (vec!["ab".into(), "".into(), "c".into()], false, "".into())
        );
        // Empty stop strings are ignored.
        assert_eq!(run(&[""], &["ab"]), (vec!["ab".into()], false, "".into()));
    }

    #[test]
    fn stops_inside_one_delta() {
        let (emitted, stopped, rest) = run(&["STOP"], &["Hello STOP world"]);
        assert_eq!((emitted, stopped, rest), (vec!["Hello ".into()], true, "".into()));
    }

    #[test]
    fn holds_back_possible_starts_until_sure() {
        let (emitted, stopped, rest) = run(&["<|end|>"], &["a <|en", "d of>", "x"]);
        assert_eq!(emitted, ["a ", "<|end of>", "x"]);
        assert!(!stopped);
        assert_eq!(rest, "");
        // A held-back prefix is flushed by finish.
        let (emitted, stopped, rest) = run(&["<|end|>"], &["abc<|"]);
        assert_eq!((emitted, stopped, rest), (vec!["abc".into()], false, "<|".into()));
    }

    #[test]
    fn stop_split_across_many_deltas() {
        let text = "abc<|end|>def";
        let deltas: Vec<String> = text.chars().map(String::from).collect();
        let deltas: Vec<&str> = deltas.iter().map(String::as_str).collect();
        let (emitted, stopped, rest) = run(&["<|end|>"], &deltas);
        assert_eq!(emitted.concat(), "abc");
        assert!(stopped);
        assert_eq!(rest, "");
        // Nothing was emitted after the 'c'.
        assert!(emitted[3..].iter().all(String::is_empty));
    }

    #[test]
    fn overlapping_candidates_cut_at_the_earliest() {
        let chars = ["a", "b", "c", "e", "f"];
        let (emitted, stopped, _) = run(&["abcd", "bce"], &chars);
        assert_eq!((emitted.concat(), stopped), ("a".into(), true));
        assert_eq!(run(&["xyz", "y"], &["axyz"]).0, ["a"]);
        // A stop string that overlaps itself.
        let (emitted, stopped, _) = run(&["aab"], &["a", "a", "a", "b"]);
        assert_eq!((emitted.concat(), stopped), ("a".into(), true));
    }

    #[test]
    fn multibyte_text_and_stops() {
        let (emitted, stopped, _) = run(&["é!"], &["café", "!"]);
        assert_eq!((emitted, stopped), (vec!["caf".into(), "".into()], true));
        let (emitted, stopped, _) = run(&["日本"], &["今日は日", "本語"]);
        assert_eq!((emitted, stopped), (vec!["今日は".into(), "".into()], true));
        // Sharing leading bytes with a stop string's last character is not a partial match.
        let (emitted, stopped, _) = run(&["abé"], &["xabè"]);
        assert_eq!((emitted, stopped), (vec!["xabè".into()], false));
    }

    #[test]
    fn ignores_text_after_stopping() {
        let mut s = StopStrings::new(["\n\n"]);
        assert_eq!(s.push("one\n\ntwo"), StopStep { emit: "one".into(), stopped: true });
        assert_eq!(s.push("three"), StopStep { emit: "".into(), stopped: true });
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn any_chunking_gives_the_same_output() {
        let text = "tôt <|im_end> ou <|im_end|> tard";
        let chars: Vec<char> = text.chars().collect();
        for size in 1..=chars.len() {
            let deltas: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
            let deltas: Vec<&str> = deltas.iter().map(String::as_str).collect();
            let (emitted, stopped, rest) = run(&["<|im_end|>", "</s>"], &deltas);
            assert_eq!(emitted.concat() + &rest, "tôt <|im_end> ou ", "chunks of {size}");
            assert!(stopped);
        }
    }
}
