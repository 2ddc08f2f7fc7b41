//! Chat templates written to hurt: each one must end in an error that names the chat template,
//! within `TIME` and without allocating more than `MEMORY`, never by hanging, panicking or
//! aborting on a failed allocation. The templates are the ones issue 13 found, and their
//! neighbours: filters and methods doing unbounded work, values built to gigabytes, and
//! operators that double a value in a loop.
//!
//! Two operators are not bounded, and are not here: MiniJinja 3.1 writes a list out for `~`
//! (`'' ~ ([1] * 10**8)`) and materializes a chain of more than 32 lazy `+` of lists without
//! charging fuel, and an environment cannot replace its operators. README "Security" says so.
//!
//! This binary counts its allocations (`Counting`), so the memory a render takes is measured,
//! not guessed; it refuses any allocation past `CEILING`, which aborts the test run loudly
//! instead of paging the machine to death.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use torchlight::chat::{ChatTemplate, Message, RenderOptions};

/// The live bytes of the process and their high-water mark since the last `reset_peak`.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Past this, an allocation fails (and the process aborts): a render that gets here would have
/// taken the machine's memory.
const CEILING: usize = 4 << 30;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        if live > CEILING {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        PEAK.fetch_max(live, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grown = new_size.saturating_sub(layout.size());
        let live = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
        if live > CEILING {
            LIVE.fetch_sub(grown, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        PEAK.fetch_max(live, Ordering::Relaxed);
        let out = System.realloc(ptr, layout, new_size);
        LIVE.fetch_sub(layout.size().saturating_sub(new_size), Ordering::Relaxed);
        out
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The bound on a whole failed request, wall clock.
const TIME: Duration = Duration::from_secs(5);
/// What one render may allocate beyond what was live before it: well inside the 512 MiB of
/// address space a whole hostile request is allowed.
const MEMORY: usize = 128 << 20;

const GENERATE: RenderOptions = RenderOptions { add_generation_prompt: true, enable_thinking: true };

/// A hostile template and what it must come to: an error naming the chat template, or, where
/// Python's Jinja gives a small answer in no time (the bug was ours: a loop, a panic), that
/// answer.
const HOSTILE: &[(&str, Option<&str>)] = &[
    // Methods and filters that loop or allocate by an argument.
    ("{{ 'abc'.count('') }}", Some("4")),
    ("{{ ('ab' * 1000).count('') }}", Some("2001")),
    ("{{ messages|batch(2**62)|length }}", Some("1")),
    ("{{ messages|slice(2**62)|length }}", None),
    ("{{ messages|batch(0) }}", None),
    ("{{ messages|slice(0) }}", None),
    ("{{ '%999999999d'|format(1) }}", None),
    ("{{ 'x'|indent(10**9) }}", None),
    ("{{ 'x'|center(10**9) }}", None),
    ("{{ 'x'.center(10**9) }}", None),
    ("{{ 'x'.ljust(10**9) }}", None),
    ("{{ 'x'|truncate(10**18) }}", None),
    ("{{ ('ab'.replace('', 'x' * 1000) * 1000)|length }}", Some("3002000")),
    ("{{ ('ab'.replace('', 'x' * 10**6) * 1000)|length }}", None),
    ("{{ 'a b'.split(' ', 10**18) }}", Some("['a', 'b']")),
    ("{{ messages|tojson(indent=10**9) }}", None),
    // Filters that work through large sequences.
    ("{% for i in range(100000) %}{{ range(100000)|sum }}{% endfor %}", None),
    ("{{ ([1,2]*500000000)|unique|list|length }}", None),
    ("{{ ([1,2]*50000000)|unique|list|length }}", None),
    ("{{ ([1]*10**10)|list|length }}", None),
    ("{{ ([1]*10**8)|list|length }}", None),
    ("{{ (['x'*10**7]*10**5)|join|length }}", None),
    ("{{ ([[1]*10**7]*10**5)|join|length }}", None),
    ("{{ ('x' * 10**9)|length }}", None),
    ("{{ ([1] * 10**8)|sort|length }}", None),
    ("{{ (range(100000)|map('string')|join * 1000)|length }}", None),
    ("{% for i in range(100000) %}{{ ([1] * 100000)|reverse|first }}{% endfor %}", None),
    ("{% for i in range(100000) %}{% if 'x' in 'y' * 100000 %}{% endif %}{% endfor %}", None),
    // Sequences written out as text: each item is one value, charged once.
    ("{{ [1] * 10**8 }}", None),
    ("{{ ([1] * 10**8)|string|length }}", None),
    ("{{ ('%s'|format([1] * 10**8))|length }}", None),
    ("{{ ([1] * 10**8)|tojson|length }}", None),
    // Values doubled in a loop: each step is one instruction but twice the bytes.
    ("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}", None),
    ("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}", None),
    ("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s * 2 %}{% endfor %}{{ ns.s|length }}", None),
    ("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = '%s%s'|format(ns.s, ns.s) %}{% endfor %}{{ ns.s|length }}", None),
    ("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = [ns.s, ns.s]|join %}{% endfor %}{{ ns.s|length }}", None),
    ("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s.replace('x', 'xx') %}{% endfor %}{{ ns.s|length }}", None),
    ("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s|tojson %}{% endfor %}{{ ns.s|length }}", None),
    ("{% set ns = namespace(d={}) %}{% for i in range(100000) %}{% set _ = ns.d.update({i: 'x' * 10000}) %}{% endfor %}", None),
    // Values nested deeper than any stack: written out, or walked to be paid for.
    ("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}", None),
    ("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l|string|length }}", None),
    ("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l|tojson|length }}", None),
    ("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ns.l]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]] %}{% endfor %}{{ ns.l|length }}", None),
    ("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ns.l]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]] %}{% endfor %}{{ ns.l|length }}", None),
    // Recursion and macros.
    ("{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('x') }}", None),
    ("{% macro f(n) %}{% for i in range(100) %}{{ f(n) }}{% endfor %}{% endmacro %}{{ f(0) }}", None),
    // MiniJinja 3.1 panics on it (division by zero), natively caught as the template's error.
    ("{% for x in messages %}{{ loop.cycle() }}{% endfor %}", None),
    ("{% for x in messages %}{% with y = 1 %}{% break %}{% endwith %}{% endfor %}", None),
    // Not a template.
    ("{% for m in messages %}", None),
];

/// Renders `source` on another thread; its result, how long it took and the bytes it added to
/// the peak, or None if it did not end within `TIME`.
fn render(source: &'static str) -> Option<(Result<String, String>, Duration, usize)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let start = Instant::now();
        let messages = [Message::new("user", "hi")];
        let result = ChatTemplate::new(source, "<s>", "</s>")
            .and_then(|t| t.render(&messages, GENERATE))
            .map_err(|e| e.to_string());
        let _ = tx.send((result, start.elapsed(), PEAK.load(Ordering::Relaxed).saturating_sub(before)));
    });
    rx.recv_timeout(TIME).ok()
}

#[test]
fn hostile_templates_end_in_a_clear_error_quickly_and_small() {
    let mut failures = Vec::new();
    // One at a time, so that the peak is each one's own.
    for &(source, answer) in HOSTILE {
        match render(source) {
            None => {
                failures.push(format!("{source}\n    still running after {TIME:?}"));
                // The thread keeps running; what it allocates would blur every later peak.
                break;
            }
            Some((result, took, peak)) => {
                let shown: String = format!("{result:?}").chars().take(200).collect();
                println!("{took:>10.3?} {:>8} KiB  {source}\n    {shown}", peak >> 10);
                match (result, answer) {
                    (Ok(out), Some(answer)) if out == answer => {}
                    (Ok(out), _) => failures.push(format!("{source}\n    rendered {} bytes", out.len())),
                    (Err(e), _) if !e.contains("chat template") => failures.push(format!("{source}\n    {e}")),
                    (Err(e), Some(answer)) => failures.push(format!("{source}\n    {e}, not {answer:?}")),
                    (Err(_), None) => {}
                }
                if peak > MEMORY {
                    failures.push(format!("{source}\n    allocated {} MiB", peak >> 20));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} hostile templates got through:\n{}", failures.len(), failures.join("\n"));
}
