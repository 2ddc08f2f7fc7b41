#!/usr/bin/env python3
"""Write crate/tests/data/<family>_renders.json: real chat templates rendered by jinja2.

Each family's template is stored as crate/tests/data/<family>_chat_template.jinja, byte for byte
as its GGUF files carry it in `tokenizer.chat_template` (= the Hugging Face tokenizer_config.json
`chat_template` of the model named in FAMILIES). It is rendered here the way Hugging Face's
`apply_chat_template` renders it (transformers' `_compile_jinja_template`): an immutable
sandboxed environment with `trim_blocks`, `lstrip_blocks` and the loop controls,
`raise_exception`, a `tojson` filter that is `json.dumps(ensure_ascii=False)` (no HTML escaping),
`strftime_now`, and `messages`, `tools=None`, `documents=None`, `add_generation_prompt`, the BOS
and EOS texts as keywords (`enable_thinking` too, for Qwen3). The `{% generation %}` tag that
transformers adds is left out: none of these templates uses it.

`strftime_now` reads a fixed clock, 26 Jul 2024, so that the expectations do not change from day
to day; crate/tests/chat_template.rs gives Torchlight's `strftime_now` the same day
(`ChatTemplate::with_clock`). Only Llama 3.2's template calls it, for its "Today Date:" line.
The day is also the template's own fallback, and main() checks that every render is the same
without `strftime_now` at all.

crate/tests/chat_template.rs checks that Torchlight renders every case the same, and that each of
a family's `known_differences` (a case jinja2 renders one way and MiniJinja, as Torchlight sets it
up, another, with the reason) still differs. Only this script needs Python (pip install jinja2).

Usage: python3 tests/golden/make_template_renders.py   (from the workspace root)
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.exceptions
import jinja2.ext
import jinja2.sandbox

DATA = Path(__file__).resolve().parents[2] / "crate/tests/data"
GENERATOR = "tests/golden/make_template_renders.py"
CLOCK = datetime(2024, 7, 26, 12, 0, 0)


def m(role, content):
    return {"role": role, "content": content}


def system(content):
    return m("system", content)


def user(content):
    return m("user", content)


def assistant(content):
    return m("assistant", content)


def tool(content):
    return m("tool", content)


# (name, messages, add_generation_prompt), rendered for every family but Qwen3.
COMMON = [
    ("one question", [user("What is 2 + 2?")], True),
    ("system and user", [system("You are terse."), user("Name a prime.")], True),
    (
        "multi-turn",
        [
            system("You are a helpful assistant."),
            user("Hi!"),
            assistant("Hello! How can I help?"),
            user("What is the capital of France?"),
        ],
        True,
    ),
    ("a transcript without a generation prompt", [user("2 + 2?"), assistant("4")], False),
    (
        "whitespace and unicode",
        [
            system("  Be brief.\n"),
            user("\n  Ünïcödé 🦙 and\ttabs\u00a0"),
            assistant(" Sure.\u3000\n"),
            user("Line one\nline two\n\n"),
        ],
        False,
    ),
    ("only a system message", [system("Be brief.")], True),
]

# Qwen3's own conversations: each rendered with thinking on and off.
QWEN3 = [
    ("one question", [user("What is 2 + 2?")], True),
    ("system and user", [system("You are terse."), user("Name a prime.")], True),
    (
        "past reasoning is dropped from history",
        [
            user("Hi"),
            assistant("<think>\nThe user greets me.\n</think>\n\nHello! How can I help?"),
            user("What is the capital of France?"),
        ],
        True,
    ),
    (
        "the last answer keeps its reasoning",
        [user("2 + 2?"), assistant("<think>\nAdd them.\n</think>\n\n4")],
        False,
    ),
    ("the last answer gets an empty think block", [user("2 + 2?"), assistant("4")], False),
    (
        "a system message later on",
        [
            system("Be kind."),
            user("Hello."),
            assistant("Hi there."),
            system("Now be formal."),
            user("Goodbye."),
        ],
        True,
    ),
    (
        "tool results",
        [
            user("Weather in Paris?"),
            assistant("Let me check."),
            tool('{"temp": 21}'),
            tool('{"sky": "clear"}'),
        ],
        True,
    ),
    (
        "reasoning between tool steps of the current query is kept",
        [
            user("Weather in Paris?"),
            assistant("<think>\nI should call the weather tool.\n</think>\n\nChecking."),
            tool('{"temp": 21}'),
        ],
        True,
    ),
    (
        "a tool response from the user is not a query",
        [user("Q"), assistant("A"), user("<tool_response>\nok\n</tool_response>")],
        True,
    ),
]


@dataclass
class Family:
    name: str
    model: str
    source: str
    bos_token: str
    eos_token: str
    conversations: list
    thinks: bool = False
    # (name, messages, add_generation_prompt, why): jinja2's render is recorded, and the Rust
    # test checks that Torchlight's still differs.
    known_differences: list = field(default_factory=list)


# MiniJinja's `trim` filter is Rust's str::trim (Unicode White_Space); jinja2's is Python's
# str.strip(), whose whitespace also takes the separators U+001C..U+001F.
TRIM_SEPARATORS = (
    "MiniJinja's trim filter is Rust's str::trim (Unicode White_Space), jinja2's is Python's "
    "str.strip(), which also strips U+001C..U+001F (file, group, record and unit separators)"
)

FAMILIES = [
    Family(
        name="qwen3",
        model="Qwen/Qwen3-0.6B",
        source="llama.cpp's models/templates/Qwen-Qwen3-0.6B.jinja",
        bos_token="",
        eos_token="<|im_end|>",
        conversations=QWEN3,
        thinks=True,
    ),
    Family(
        name="llama3.2",
        model="meta-llama/Llama-3.2-1B-Instruct",
        source="llama.cpp's models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja "
        "(Llama 3.2's 1B and 3B instruct models share this template)",
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        conversations=COMMON
        + [
            (
                "tool results",
                [user("Weather in Paris?"), assistant("Let me check."), tool('{"temp": 21, "sky": "clear"}')],
                True,
            ),
            ("an ipython turn", [user("Run it."), m("ipython", "42")], True),
            # Through tojson: Torchlight's is json.dumps(ensure_ascii=False), as Hugging Face's.
            (
                "a tool result with HTML characters and an apostrophe",
                [user("Weather?"), tool('{"note": "it\'s <b>sunny</b> & 21°C"}')],
                True,
            ),
        ],
        known_differences=[
            (
                "trim and the separator characters",
                [user("Hi\x1f"), assistant("\x1cHello")],
                False,
                TRIM_SEPARATORS,
            ),
        ],
    ),
    Family(
        name="qwen2.5",
        model="Qwen/Qwen2.5-0.5B-Instruct",
        source="the tokenizer.chat_template of Qwen/Qwen2.5-0.5B-Instruct-GGUF's "
        "qwen2.5-0.5b-instruct-q8_0.gguf, as llama-cpp-python prints it",
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        conversations=COMMON
        + [
            (
                "a system message later on",
                [system("Be kind."), user("Hello."), assistant("Hi there."), system("Now be formal."), user("Bye.")],
                True,
            ),
            (
                "tool results",
                [user("Weather in Paris?"), assistant("Let me check."), tool('{"temp": 21}'), tool('{"sky": "clear"}')],
                True,
            ),
        ],
    ),
    Family(
        name="phi3.5",
        model="microsoft/Phi-3.5-mini-instruct",
        source="llama.cpp's models/templates/microsoft-Phi-3.5-mini-instruct.jinja",
        bos_token="<s>",
        eos_token="<|endoftext|>",
        conversations=COMMON
        + [
            ("an empty system message is dropped", [system(""), user("Hi")], True),
            ("other roles are dropped", [user("Weather?"), tool('{"temp": 21}'), assistant("21 degrees.")], False),
        ],
    ),
    Family(
        name="phi4-mini",
        model="microsoft/Phi-4-mini-instruct",
        source="microsoft/Phi-4-mini-instruct's tokenizer_config.json",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        conversations=COMMON
        + [("a tool turn", [user("Weather?"), assistant("Checking."), tool('{"temp": 21}')], True)],
    ),
    Family(
        name="gemma3",
        model="google/gemma-3-1b-it",
        source="the gguf.chat_template of ggml-org/gemma-3-1b-it-GGUF, as the Hub's model API "
        "reports it (transformers' Gemma 3 converter writes the same)",
        bos_token="<bos>",
        eos_token="<eos>",
        conversations=COMMON
        + [
            ("roles must alternate", [user("a"), user("b")], True),
            ("the conversation must start with the user", [system("Be brief."), assistant("Hi.")], True),
        ],
        known_differences=[
            (
                "trim and the separator characters",
                [user("Hi\x1f"), assistant("\x1cHello")],
                False,
                TRIM_SEPARATORS,
            ),
        ],
    ),
]


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def environment(with_clock):
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    if with_clock:
        env.globals["strftime_now"] = CLOCK.strftime
    return env


def render(template, family, messages, add_generation_prompt, enable_thinking):
    """jinja2's prompt, or the message the template raised."""
    kwargs = {}
    if enable_thinking is not None:
        kwargs["enable_thinking"] = enable_thinking
    try:
        return "prompt", template.render(
            messages=messages,
            tools=None,
            documents=None,
            add_generation_prompt=add_generation_prompt,
            bos_token=family.bos_token,
            eos_token=family.eos_token,
            **kwargs,
        )
    except jinja2.exceptions.TemplateError as e:
        if type(e) is not jinja2.exceptions.TemplateError:
            raise  # a syntax or undefined error is a bug here, not a case
        return "raises", e.message


def main():
    for family in FAMILIES:
        path = DATA / f"{family.name}_chat_template.jinja"
        source = path.read_text(encoding="utf-8")
        assert ("<think>" in source) == family.thinks, family.name
        assert family.thinks or "enable_thinking" not in source, family.name
        with_clock = environment(True).from_string(source)
        without_clock = environment(False).from_string(source)
        thinking = (True, False) if family.thinks else (None,)

        def case(name, messages, add_generation_prompt, enable_thinking):
            outcome, text = render(with_clock, family, messages, add_generation_prompt, enable_thinking)
            # What Torchlight's context gives the template: no strftime_now.
            assert render(without_clock, family, messages, add_generation_prompt, enable_thinking) == (
                outcome,
                text,
            ), (family.name, name)
            out = {"name": name, "messages": messages, "add_generation_prompt": add_generation_prompt}
            if enable_thinking is not None:
                out["enable_thinking"] = enable_thinking
            out[outcome] = text
            return out

        cases = [
            case(name, messages, gen, thinks)
            for name, messages, gen in family.conversations
            for thinks in thinking
        ]
        known = []
        for name, messages, gen, why in family.known_differences:
            entry = case(name, messages, gen, None)
            entry["why"] = why
            known.append(entry)
        out = {
            "generator": GENERATOR,
            "model": family.model,
            "template": path.name,
            "template_source": family.source,
            "bos_token": family.bos_token,
            "eos_token": family.eos_token,
            "thinks": family.thinks,
            "strftime_now": CLOCK.strftime("%Y-%m-%d"),
            "jinja2": jinja2.__version__,
            "cases": cases,
            "known_differences": known,
        }
        target = DATA / f"{family.name}_renders.json"
        target.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {len(cases)} cases and {len(known)} known differences to {target}")


if __name__ == "__main__":
    main()
