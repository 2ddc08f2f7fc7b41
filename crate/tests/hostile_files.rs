//! The `torchlight` binary on hostile model files (issue 13): the corpus that
//! tests/hostile/make_hostile.py writes, the test model's header with one lie or one hostile
//! chat template in it. Every file must end in a clear one-line error naming the problem within
//! 5 seconds and 512 MiB of address space: never a signal, a panic (exit 101), an abort (134)
//! or a kill (137). `generate` runs a chat request, so the template runs; `info` reads the
//! header alone. What each must do is the manifest's (see make_hostile.py).

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

const TIME_LIMIT: Duration = Duration::from_secs(5);
const ADDRESS_SPACE_LIMIT: u64 = 512 << 20;

#[derive(Deserialize)]
struct Entry {
    file: String,
    class: String,
    what: String,
    /// A word the error must contain; `None` for the control file.
    expect: Option<String>,
    /// What `info` must do: "error", "problem", "clean" or "runs".
    info: String,
    /// What a chat `generate` must do: "error", "clean" or "error or runs".
    generate: String,
}

impl Entry {
    fn want(&self, what: &str) -> Want<'_> {
        match (what, self.expect.as_deref()) {
            ("error", Some(expect)) => Want::Error(expect),
            ("problem", Some(expect)) => Want::Problem(expect),
            ("error or runs", Some(expect)) => Want::ErrorOrRuns(expect),
            ("clean", _) => Want::Clean,
            ("runs", _) => Want::Runs,
            (what, expect) => panic!("{}: {what:?} with expect {expect:?} is not a case", self.file),
        }
    }
}

/// How a run must end.
#[derive(Clone, Copy)]
enum Want<'a> {
    /// Fails, with one line "error: ..." containing the word.
    Error(&'a str),
    /// Succeeds, listing a "cannot run" line containing the word.
    Problem(&'a str),
    /// Succeeds with no "cannot run" line.
    Clean,
    /// Succeeds.
    Runs,
    /// Fails as `Error` says, or succeeds.
    ErrorOrRuns(&'a str),
}

/// The corpus: target/hostile, or the folder `TORCHLIGHT_HOSTILE` names. Missing is a failure.
fn corpus() -> (PathBuf, Vec<Entry>) {
    let dir = std::env::var_os("TORCHLIGHT_HOSTILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo_root().join("target/hostile"));
    let manifest = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: make the hostile corpus first: \"$(bash pkg-scripts/setup-llama-server.sh)\" \
             tests/hostile/make_hostile.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf --out target/hostile",
            manifest.display()
        )
    });
    let entries: Vec<Entry> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    (dir, entries)
}

struct Run {
    /// `None` when a signal ended it.
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
    timed_out: bool,
}

/// Runs the binary under the limits: `prlimit` caps its address space, and it is killed once
/// past the time limit.
fn torchlight(args: &[&str]) -> Run {
    let mut child = Command::new("prlimit")
        .arg(format!("--as={ADDRESS_SPACE_LIMIT}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_torchlight"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run prlimit (util-linux), which these tests need: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIME_LIMIT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = start.elapsed();
    Run { code: status.code(), stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap(), took, timed_out }
}

/// What is wrong with `run`, which must have stayed within the limits and ended as `want`
/// says; `None` when nothing is.
fn check(run: &Run, want: Want) -> Option<String> {
    let tail = |s: &str| s.chars().rev().take(600).collect::<Vec<_>>().into_iter().rev().collect::<String>();
    let what = if run.timed_out {
        format!("still running after {TIME_LIMIT:?}: killed")
    } else {
        match (run.code, want) {
            (None, _) => "ended by a signal (an abort or a crash)".to_string(),
            (Some(code @ (101 | 134 | 137)), _) => format!("exit {code}: a panic, an abort or a kill"),
            (Some(0), Want::Error(_)) => "succeeded".to_string(),
            (Some(0), Want::Runs | Want::ErrorOrRuns(_)) => return None,
            (Some(0), Want::Problem(expect)) => {
                if run.stdout.lines().any(|l| l.starts_with("cannot run") && l.contains(expect)) {
                    return None;
                }
                format!("no \"cannot run\" line mentions {expect:?}")
            }
            (Some(0), Want::Clean) => {
                if !run.stdout.lines().any(|l| l.starts_with("cannot run")) {
                    return None;
                }
                "it lists problems".to_string()
            }
            (Some(code), Want::Error(expect) | Want::ErrorOrRuns(expect)) => {
                let lines: Vec<&str> = run.stderr.lines().collect();
                match lines[..] {
                    [line] if line.starts_with("error: ") && line.contains(expect) => return None,
                    [line] if line.starts_with("error: ") => format!("exit {code}: the error does not mention {expect:?}"),
                    _ => format!("exit {code}: stderr is not one line \"error: ...\""),
                }
            }
            (Some(code), _) => format!("exit {code}: failed, where it should have run"),
        }
    };
    Some(format!("{what} after {:.2?}\n    stderr: {}\n    stdout: {}", run.took, tail(&run.stderr), tail(&run.stdout)))
}

/// Runs `info` and a chat `generate` on the template entries (or on all the others), and fails
/// listing every run that broke its contract.
fn run_corpus(templates: bool) {
    let (dir, entries) = corpus();
    let entries: Vec<&Entry> = entries.iter().filter(|e| (e.class == "template") == templates).collect();
    let mut failures = Vec::new();
    for entry in &entries {
        let path = dir.join(&entry.file);
        let path = path.to_str().expect("corpus paths are UTF-8");
        // A short cache, one thread and one token: the control run stays far inside the limits.
        let generate = [
            "generate", "--model", path, "--prompt", "Hello!", "--chat", "--backend", "cpu", "--threads", "1", "--context",
            "256", "--max-tokens", "1",
        ];
        let (info_want, generate_want) = (entry.want(&entry.info), entry.want(&entry.generate));
        for (args, want) in [(&["info", path][..], info_want), (&generate[..], generate_want)] {
            let run = torchlight(args);
            if let Some(why) = check(&run, want) {
                failures.push(format!("{} ({}: {}), {}: {why}", entry.file, entry.class, entry.what, args[0]));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} runs failed:\n{}", failures.len(), 2 * entries.len(), failures.join("\n"));
}

/// The manifest holds the files the issue names, so a corpus cut short cannot pass.
#[test]
fn the_corpus_has_every_input_class_of_the_issue() {
    let (dir, entries) = corpus();
    let has = |file: &str| entries.iter().any(|e| e.file == file);
    for file in ["control.gguf", "huge-array.gguf", "block-count.gguf", "head-count.gguf", "template-unparsed.gguf"] {
        assert!(has(file), "the manifest lists no {file}");
    }
    assert!(entries.iter().filter(|e| e.class == "template").count() >= 11, "fewer than 11 template cases");
    assert!(entries.len() >= 15, "only {} files", entries.len());
    for entry in &entries {
        assert!(dir.join(&entry.file).exists(), "{} is missing", entry.file);
    }
}

#[test]
fn hostile_headers_end_in_one_clear_error_within_the_limits() {
    run_corpus(false);
}

#[test]
fn hostile_chat_templates_end_in_one_clear_error_within_the_limits() {
    run_corpus(true);
}
