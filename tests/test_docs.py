"""The reference docs cover the code: every hookspec in docs/hooks.md, every contract member in
docs/contracts.md.

What counts as "documented" is deliberately concrete, so that a mention in passing does not pass:

* a hookspec (a function of :mod:`mlpcore.hookspecs` carrying pluggy's ``mlpcore_spec`` marker)
  needs a heading of docs/hooks.md whose code span starts with its name, e.g.
  ``### `mlpcore_backends() -> list[BackendEntry]` ``, and every field of the dataclasses the
  hooks return (``BackendEntry``, ...) must appear as code in docs/hooks.md;
* a contract member (an attribute or method a Protocol of the contract modules declares) must
  appear as code (an inline code span or a fenced block) in a section of docs/contracts.md that
  names the Protocol in code; a section runs from one heading to the next.

The checkers are tested on text with a member removed, so the test is known to fail when a doc
falls behind.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Protocol

import pytest

from mlpcore import activations, backend, dropout, hookspecs, losses, regularisers

DOCS = Path(__file__).resolve().parent.parent / "docs"
CONTRACT_MODULES = (backend, activations, losses, regularisers, dropout)

_CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.DOTALL)
_HEADING = re.compile(r"^#{1,6} ", re.MULTILINE)


def hookspec_names() -> list[str]:
    """The functions of ``mlpcore.hookspecs`` marked with its ``hookspec`` marker."""
    marker = f"{hookspecs.PROJECT}_spec"
    return sorted(name for name, value in vars(hookspecs).items()
                  if inspect.isfunction(value) and hasattr(value, marker))


def hook_dataclasses() -> list[type]:
    """The dataclasses ``mlpcore.hookspecs`` defines (what the hooks return)."""
    return [value for value in vars(hookspecs).values()
            if inspect.isclass(value) and dataclasses.is_dataclass(value)
            and value.__module__ == hookspecs.__name__]


def contract_protocols() -> list[type]:
    """Every Protocol class defined in the contract modules."""
    found = []
    for module in CONTRACT_MODULES:
        for value in vars(module).values():
            if inspect.isclass(value) and value.__module__ == module.__name__ \
                    and Protocol in value.__mro__[1:] and getattr(value, "_is_protocol", False):
                found.append(value)
    return found


def protocol_members(protocol: type) -> list[str]:
    """The public attributes (annotations) and methods a Protocol declares itself."""
    names = list(inspect.get_annotations(protocol))
    names += [name for name, value in protocol.__dict__.items()
              if inspect.isfunction(value) or isinstance(value, property)]
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


def code_of(text: str) -> list[str]:
    """The inline code spans and fenced code blocks of Markdown ``text``."""
    return [block or span for block, span in _CODE.findall(text)]


def sections(text: str) -> list[str]:
    """``text`` cut at every heading; each piece starts with its heading line."""
    starts = [m.start() for m in _HEADING.finditer(text)]
    return [text[a:b] for a, b in zip([0, *starts], [*starts, len(text)], strict=True)]


def _mentions(code: list[str], name: str) -> bool:
    word = re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])")
    return any(word.search(piece) for piece in code)


def undocumented_members(text: str, protocol: type, members: list[str]) -> list[str]:
    """The ``members`` of ``protocol`` that no section naming it in code shows as code."""
    relevant = [code_of(s) for s in sections(text) if _mentions(code_of(s), protocol.__name__)]
    return [m for m in members if not any(_mentions(code, m) for code in relevant)]


def undocumented_hooks(text: str, names: list[str]) -> list[str]:
    """The hook ``names`` that no heading of ``text`` documents as its first code span."""
    headings = [line for line in text.splitlines() if _HEADING.match(line + " ")]
    documented = set()
    for line in headings:
        code = code_of(line)
        if code:
            documented.add(re.split(r"[(\s]", code[0].strip(), maxsplit=1)[0])
    return [n for n in names if n not in documented]


def test_every_hookspec_has_a_section_in_hooks_md() -> None:
    names = hookspec_names()
    assert "mlpcore_backends" in names  # the discovery above finds the real ones
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    missing = undocumented_hooks(text, names)
    assert not missing, f"docs/hooks.md has no section for the hookspec(s) {missing}"


def test_every_field_the_hooks_return_is_in_hooks_md() -> None:
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    code = code_of(text)
    classes = hook_dataclasses()
    assert hookspecs.BackendEntry in classes
    missing = [f"{cls.__name__}.{field.name}" for cls in classes
               for field in dataclasses.fields(cls) if not _mentions(code, field.name)]
    missing += [cls.__name__ for cls in classes if not _mentions(code, cls.__name__)]
    assert not missing, f"docs/hooks.md does not document {missing}"


@pytest.mark.parametrize("protocol", contract_protocols(), ids=lambda p: p.__name__)
def test_every_contract_member_is_in_contracts_md(protocol: type) -> None:
    members = protocol_members(protocol)
    assert members, f"{protocol.__name__} declares nothing?"
    text = (DOCS / "contracts.md").read_text(encoding="utf-8")
    missing = undocumented_members(text, protocol, members)
    assert not missing, (f"docs/contracts.md does not document {protocol.__name__}."
                         f"{', '.join(missing)} (as code, in a section naming "
                         f"`{protocol.__name__}`)")


def test_the_contract_protocols_are_all_found() -> None:
    names = {p.__name__ for p in contract_protocols()}
    assert names == {"Backend", "BackendModel", "Trainer", "ActivationOps", "LossOps",
                     "RegulariserOps", "DropoutOps"}
    assert protocol_members(backend.Trainer) == ["run", "bind"]
    assert {"spec", "dtype", "read_variables", "start_training"} <= \
        set(protocol_members(backend.BackendModel))


def test_the_checkers_fail_when_a_doc_falls_behind() -> None:
    """Remove a member, or a hook's heading, from the real docs: the checker must notice."""
    contracts = (DOCS / "contracts.md").read_text(encoding="utf-8")
    members = protocol_members(backend.Trainer)
    assert undocumented_members(contracts, backend.Trainer, members) == []
    without_run = re.sub(r"(?<![\w])run(?![\w])", "walk", contracts)
    assert undocumented_members(without_run, backend.Trainer, members) == ["run"]
    # a mention outside any section that names the Protocol does not count
    elsewhere = "## `Trainer`\n\nno code here\n\n## Other\n\n`run()`, of the Trainer\n"
    assert undocumented_members(elsewhere, backend.Trainer, ["run"]) == ["run"]

    hooks = (DOCS / "hooks.md").read_text(encoding="utf-8")
    assert undocumented_hooks(hooks, ["mlpcore_backends"]) == []
    mentioned_only = "# Hooks\n\nSee `mlpcore_backends()` somewhere.\n"
    assert undocumented_hooks(mentioned_only, ["mlpcore_backends"]) == ["mlpcore_backends"]
