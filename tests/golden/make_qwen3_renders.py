#!/usr/bin/env python3
"""Write crate/tests/data/qwen3_renders.json: Qwen3's chat template rendered by jinja2.

The template, crate/tests/data/qwen3_chat_template.jinja, is Qwen3-0.6B's `chat_template` (as
llama.cpp keeps it in models/templates/Qwen-Qwen3-0.6B.jinja). It is rendered here the way
Hugging Face's `apply_chat_template` renders it: a sandboxed environment with `trim_blocks`,
`lstrip_blocks` and the loop controls, `tools=None`, and `enable_thinking` passed as a keyword.
crate/tests/chat_template.rs checks that Torchlight renders every case the same. Only this
script needs Python (pip install jinja2).

Usage: python3 tests/golden/make_qwen3_renders.py   (from the workspace root)
"""

import json
from pathlib import Path

import jinja2
import jinja2.ext
import jinja2.sandbox

DATA = Path(__file__).resolve().parents[2] / "crate/tests/data"
TEMPLATE = DATA / "qwen3_chat_template.jinja"
OUT = DATA / "qwen3_renders.json"


def m(role, content):
    return {"role": role, "content": content}


# (name, messages, add_generation_prompt): each rendered with thinking on and off.
CONVERSATIONS = [
    ("one question", [m("user", "What is 2 + 2?")], True),
    ("system and user", [m("system", "You are terse."), m("user", "Name a prime.")], True),
    (
        "past reasoning is dropped from history",
        [
            m("user", "Hi"),
            m("assistant", "<think>\nThe user greets me.\n</think>\n\nHello! How can I help?"),
            m("user", "What is the capital of France?"),
        ],
        True,
    ),
    (
        "the last answer keeps its reasoning",
        [m("user", "2 + 2?"), m("assistant", "<think>\nAdd them.\n</think>\n\n4")],
        False,
    ),
    ("the last answer gets an empty think block", [m("user", "2 + 2?"), m("assistant", "4")], False),
    (
        "a system message later on",
        [
            m("system", "Be kind."),
            m("user", "Hello."),
            m("assistant", "Hi there."),
            m("system", "Now be formal."),
            m("user", "Goodbye."),
        ],
        True,
    ),
    (
        "tool results",
        [
            m("user", "Weather in Paris?"),
            m("assistant", "Let me check."),
            m("tool", '{"temp": 21}'),
            m("tool", '{"sky": "clear"}'),
        ],
        True,
    ),
    (
        "reasoning between tool steps of the current query is kept",
        [
            m("user", "Weather in Paris?"),
            m("assistant", "<think>\nI should call the weather tool.\n</think>\n\nChecking."),
            m("tool", '{"temp": 21}'),
        ],
        True,
    ),
    (
        "a tool response from the user is not a query",
        [m("user", "Q"), m("assistant", "A"), m("user", "<tool_response>\nok\n</tool_response>")],
        True,
    ),
]


def main():
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    cases = []
    for name, messages, add_generation_prompt in CONVERSATIONS:
        for enable_thinking in (True, False):
            prompt = template.render(
                messages=messages,
                tools=None,
                add_generation_prompt=add_generation_prompt,
                enable_thinking=enable_thinking,
                bos_token="",
                eos_token="<|im_end|>",
            )
            cases.append(
                {
                    "name": name,
                    "messages": messages,
                    "add_generation_prompt": add_generation_prompt,
                    "enable_thinking": enable_thinking,
                    "prompt": prompt,
                }
            )
    out = {
        "generator": "tests/golden/make_qwen3_renders.py",
        "template": TEMPLATE.name,
        "jinja2": jinja2.__version__,
        "cases": cases,
    }
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
