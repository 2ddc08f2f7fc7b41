//! A grammar of Jinja: templates the fuzzer builds from constructs rather than from characters,
//! so nearly every input parses and its time goes into rendering. The constructs are those a
//! hostile chat template would reach for: big numbers, repetition and concatenation of strings
//! and lists, every MiniJinja filter and test, Python's string methods (as
//! `minijinja_contrib::pycompat` provides them), ranges, namespaces, loops nested and
//! recursive, macros and call blocks, and the template including or extending itself.

use std::fmt::{self, Display, Formatter};

use arbitrary::Arbitrary;

/// A template: a namespace to set attributes on, then statements.
#[derive(Arbitrary)]
pub struct Template(Vec<Stmt>);

impl Display for Template {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        f.write_str("{% set ns = namespace(a='', b=0, c=[]) %}")?;
        Block { stmts: &self.0, in_loop: false }.fmt(f)
    }
}

/// An entry of a table of names or literals, chosen by a byte: the tables below keep the
/// generated identifiers to ones that exist (or nearly so), where random ones would all be
/// undefined.
#[derive(Arbitrary, Clone, Copy)]
struct Pick(u8);

impl Pick {
    fn of(self, table: &[&'static str]) -> &'static str {
        table[self.0 as usize % table.len()]
    }
}

/// Names a template assigns: loop variables, macro parameters, locals.
const LOCALS: &[&str] = &["x", "y", "message", "messages", "content"];
/// Names a template reads: the locals, the render's context, and what MiniJinja defines.
const VARS: &[&str] = &[
    "x", "y", "message", "messages", "content", "ns", "loop", "bos_token", "eos_token",
    "add_generation_prompt", "enable_thinking", "tools", "caller", "varargs", "kwargs",
];
const ATTRS: &[&str] = &[
    "role", "content", "a", "b", "c", "index", "index0", "length", "first", "last", "revindex",
    "depth", "previtem", "nextitem", "tool_calls", "name",
];
const MACROS: &[&str] = &["m0", "m1"];
/// Callables: MiniJinja's global functions, Torchlight's, the macros, and the loop and caller.
const FUNCTIONS: &[&str] = &[
    "range", "namespace", "dict", "debug", "raise_exception", "strftime_now", "m0", "m1",
    "loop", "caller", "loop.cycle", "loop.changed",
];
/// MiniJinja's built-in filters (minijinja/src/defaults.rs) and Torchlight's `tojson`.
const FILTERS: &[&str] = &[
    "safe", "escape", "lower", "upper", "title", "capitalize", "replace", "length", "count",
    "dictsort", "items", "reverse", "trim", "join", "split", "lines", "default", "round", "abs",
    "int", "float", "attr", "first", "last", "min", "max", "sort", "list", "string", "bool",
    "batch", "slice", "sum", "indent", "select", "reject", "selectattr", "rejectattr", "map",
    "groupby", "unique", "chain", "zip", "pprint", "format", "tojson", "urlencode",
];
/// Python's methods as pycompat answers them, and a few it does not know.
const METHODS: &[&str] = &[
    "upper", "lower", "islower", "isupper", "isspace", "isdigit", "isnumeric", "isalnum",
    "isalpha", "isascii", "strip", "lstrip", "rstrip", "replace", "title", "split",
    "splitlines", "capitalize", "count", "find", "format", "rfind", "startswith", "endswith",
    "join", "keys", "values", "items", "get", "center", "ljust", "zfill", "append", "index",
];
const TESTS: &[&str] = &[
    "defined", "undefined", "none", "string", "number", "integer", "float", "mapping",
    "sequence", "iterable", "odd", "even", "divisibleby", "startingwith", "endingwith", "eq",
    "ne", "lt", "gt", "in", "true", "false", "boolean", "sameas", "lower", "upper", "filter",
    "test", "safe", "escaped",
];
const KEYWORDS: &[&str] = &[
    "indent", "width", "first", "blank", "attribute", "by", "reverse", "case_sensitive",
    "default", "fill_with",
];
const OPERATORS: &[&str] = &[
    "+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", "<=", ">", ">=", "in", "not in",
    "and", "or",
];
/// Numbers at the edges: powers that overflow, the largest integers, huge repeat counts.
const NUMBERS: &[&str] = &[
    "2**62", "2**63", "2**64", "10**10", "10**9", "9223372036854775807", "-9223372036854775808",
    "100000", "99999", "1e308", "1e-300", "0.5", "-1", "(-2)**63",
];
/// String literals, as Jinja source: empty, blank, format specifiers, template-looking text.
const STRINGS: &[&str] = &[
    "''", "'a'", "'abc'", "' '", "'\\n'", "'x,y'", "'{}'", "'{0}{1}'", "'{:>999999999}'", "'%s'",
    "'%d'", "'%999999999d'", "'%.999999999f'", "'<|im_start|>'", "'<think>'", "'\u{fc}'",
    "'\u{10ffff}'", "'{{ x }}'", "'user'", "'assistant'", "'system'", "'role'", "'content'",
];
/// Text between statements.
const TEXTS: &[&str] = &["hello", "\n", " ", "<|im_start|>user\n", "<|im_end|>\n"];
/// Templates the statements below name: the render's own (there is no loader for any other).
const TEMPLATE_NAMES: &[&str] = &["'chat_template'", "'other'"];

#[derive(Arbitrary)]
enum Stmt {
    Text(Pick),
    Print(Expr),
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    For(Box<For>),
    Set(Pick, Expr),
    /// `{% set ns.a = ... %}`: how templates accumulate state across loop iterations.
    SetAttr(Pick, Expr),
    SetBlock(Pick, Vec<Stmt>),
    Macro(Pick, Vec<Pick>, Vec<Stmt>),
    CallBlock(Pick, Args, Vec<Stmt>),
    FilterBlock(Pick, Args, Vec<Stmt>),
    With(Pick, Expr, Vec<Stmt>),
    /// `{% do %}` takes a call only.
    Do(Pick, Args),
    Break,
    Continue,
    Include(Pick),
    Import(Pick),
    Extends(Pick),
}

#[derive(Arbitrary)]
struct For {
    target: Vec<Pick>,
    iter: Expr,
    condition: Option<Expr>,
    recursive: bool,
    body: Vec<Stmt>,
    otherwise: Vec<Stmt>,
}

#[derive(Arbitrary)]
enum Expr {
    Var(Pick),
    Int(i8),
    Number(Pick),
    Str(Pick),
    List(Vec<Expr>),
    Dict(Vec<(Pick, Expr)>),
    Attr(Box<Expr>, Pick),
    Index(Box<Expr>, Box<Expr>),
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>, Option<Box<Expr>>),
    Binary(Box<Expr>, Pick, Box<Expr>),
    Not(Box<Expr>),
    Negative(Box<Expr>),
    Filter(Box<Expr>, Pick, Args),
    Method(Box<Expr>, Pick, Args),
    Call(Pick, Args),
    Test(Box<Expr>, bool, Pick, Option<Box<Expr>>),
    IfElse(Box<Expr>, Box<Expr>, Box<Expr>),
}

#[derive(Arbitrary)]
struct Args {
    positional: Vec<Expr>,
    keyword: Vec<(Pick, Expr)>,
}

/// Statements one after the other; `break` and `continue` only where a loop encloses them, as
/// anywhere else they would not parse.
struct Block<'a> {
    stmts: &'a [Stmt],
    in_loop: bool,
}

impl Display for Block<'_> {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        self.stmts.iter().try_for_each(|s| s.write(f, self.in_loop))
    }
}

impl Stmt {
    fn write(&self, f: &mut Formatter, in_loop: bool) -> fmt::Result {
        let block = |stmts| Block { stmts, in_loop };
        // A macro's body runs wherever it is called, so it is not inside the loop it is
        // defined in.
        let outside = |stmts| Block { stmts, in_loop: false };
        match self {
            Stmt::Text(t) => f.write_str(t.of(TEXTS)),
            Stmt::Print(e) => write!(f, "{{{{ {e} }}}}"),
            Stmt::If(c, then, otherwise) => {
                write!(f, "{{% if {c} %}}{}{{% else %}}{}{{% endif %}}", block(then), block(otherwise))
            }
            Stmt::For(l) => l.fmt(f),
            Stmt::Set(v, e) => write!(f, "{{% set {} = {e} %}}", v.of(LOCALS)),
            Stmt::SetAttr(a, e) => write!(f, "{{% set ns.{} = {e} %}}", a.of(ATTRS)),
            Stmt::SetBlock(v, body) => write!(f, "{{% set {} %}}{}{{% endset %}}", v.of(LOCALS), block(body)),
            Stmt::Macro(name, params, body) => {
                let params: Vec<_> = params.iter().map(|p| p.of(LOCALS)).collect();
                write!(f, "{{% macro {}({}) %}}{}{{% endmacro %}}", name.of(MACROS), params.join(", "), outside(body))
            }
            Stmt::CallBlock(name, args, body) => {
                write!(f, "{{% call {}({args}) %}}{}{{% endcall %}}", name.of(MACROS), outside(body))
            }
            Stmt::FilterBlock(name, args, body) => {
                write!(f, "{{% filter {}({args}) %}}{}{{% endfilter %}}", name.of(FILTERS), block(body))
            }
            Stmt::With(v, e, body) => write!(f, "{{% with {} = {e} %}}{}{{% endwith %}}", v.of(LOCALS), block(body)),
            Stmt::Do(name, args) => write!(f, "{{% do {}({args}) %}}", name.of(FUNCTIONS)),
            Stmt::Break if in_loop => f.write_str("{% break %}"),
            Stmt::Continue if in_loop => f.write_str("{% continue %}"),
            Stmt::Break | Stmt::Continue => Ok(()),
            Stmt::Include(t) => write!(f, "{{% include {} ignore missing %}}", t.of(TEMPLATE_NAMES)),
            Stmt::Import(t) => write!(f, "{{% import {} as x %}}", t.of(TEMPLATE_NAMES)),
            Stmt::Extends(t) => write!(f, "{{% extends {} %}}", t.of(TEMPLATE_NAMES)),
        }
    }
}

impl Display for For {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        let target: Vec<_> = self.target.iter().map(|p| p.of(LOCALS)).collect();
        let target = if target.is_empty() { "x".to_string() } else { target.join(", ") };
        write!(f, "{{% for {target} in {}", self.iter)?;
        if let Some(c) = &self.condition {
            write!(f, " if {c}")?;
        }
        if self.recursive {
            f.write_str(" recursive")?;
        }
        write!(f, " %}}{}", Block { stmts: &self.body, in_loop: true })?;
        if !self.otherwise.is_empty() {
            write!(f, "{{% else %}}{}", Block { stmts: &self.otherwise, in_loop: false })?;
        }
        f.write_str("{% endfor %}")
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        match self {
            Expr::Var(v) => f.write_str(v.of(VARS)),
            Expr::Int(n) => write!(f, "{n}"),
            Expr::Number(n) => f.write_str(n.of(NUMBERS)),
            Expr::Str(s) => f.write_str(s.of(STRINGS)),
            Expr::List(items) => write!(f, "[{}]", Commas(items)),
            Expr::Dict(items) => {
                f.write_str("{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}'{}': {v}", k.of(ATTRS))?;
                }
                f.write_str("}")
            }
            Expr::Attr(e, a) => write!(f, "({e}).{}", a.of(ATTRS)),
            Expr::Index(e, i) => write!(f, "({e})[{i}]"),
            Expr::Slice(e, start, stop, step) => {
                let part = |p: &Option<Box<Expr>>| p.as_ref().map(|p| p.to_string()).unwrap_or_default();
                write!(f, "({e})[{}:{}:{}]", part(start), part(stop), part(step))
            }
            Expr::Binary(a, op, b) => write!(f, "({a} {} {b})", op.of(OPERATORS)),
            Expr::Not(e) => write!(f, "(not {e})"),
            Expr::Negative(e) => write!(f, "(-{e})"),
            Expr::Filter(e, name, args) => write!(f, "(({e})|{}({args}))", name.of(FILTERS)),
            Expr::Method(e, name, args) => write!(f, "({e}).{}({args})", name.of(METHODS)),
            Expr::Call(name, args) => write!(f, "{}({args})", name.of(FUNCTIONS)),
            Expr::Test(e, negated, name, arg) => {
                let not = if *negated { "not " } else { "" };
                write!(f, "(({e}) is {not}{}", name.of(TESTS))?;
                match arg {
                    Some(arg) => write!(f, "({arg}))"),
                    None => f.write_str(")"),
                }
            }
            Expr::IfElse(then, c, otherwise) => write!(f, "({then} if {c} else {otherwise})"),
        }
    }
}

impl Display for Args {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        Commas(&self.positional).fmt(f)?;
        for (i, (k, v)) in self.keyword.iter().enumerate() {
            let sep = if i == 0 && self.positional.is_empty() { "" } else { ", " };
            write!(f, "{sep}{}={v}", k.of(KEYWORDS))?;
        }
        Ok(())
    }
}

/// Expressions separated by commas.
struct Commas<'a>(&'a [Expr]);

impl Display for Commas<'_> {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{e}")?;
        }
        Ok(())
    }
}
