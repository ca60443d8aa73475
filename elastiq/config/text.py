"""Reading configuration text for ``config.py``: UTF-8 text only, YAML that refuses a key set
twice (the INI and ecm.conf readers do too), and every problem with the line it is on."""
from __future__ import annotations

from typing import Any, Dict, Optional

import yaml


class InvalidConfig(Exception):
    """A configuration problem: the message names the source (file), the key and the problem
    (never a secret's value).  Defined here, in a module importing nothing of elastiq, so that
    the adapter factory raises it too (re-exported by :mod:`elastiq.config`)."""

    def __init__(self, source: Optional[str], key: Optional[str], problem: str):
        self.source, self.key, self.problem = source, key, problem
        where = ": ".join(p for p in (source or "<config>", key) if p)
        super().__init__(f"{where}: {problem}")


class TextError(Exception):
    def __init__(self, line: Optional[int], problem: str):
        super().__init__(problem)
        self.line, self.problem = line, problem


def read_text(path: str) -> str:
    """The text of ``path``.  OSError when it cannot be read; TextError when it is not text."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TextError(data[:err.start].count(b"\n") + 1, "not a UTF-8 text file") from None
    if "\x00" in text:
        raise TextError(text[:text.index("\x00")].count("\n") + 1, "not a text file (NUL byte)")
    return text


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key set twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen: Dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: SafeLoader says so below
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} set twice (first on line {first})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str) -> Any:
    """The YAML document in ``text``; TextError (with its line when known) if it is not one."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(err, "problem", None) or "syntax error"
        if isinstance(err, yaml.reader.ReaderError):  # a character YAML does not accept
            line = text[:err.position].count("\n") + 1
            problem = f"character #x{err.character:04x} is not allowed"
        raise TextError(line, f"not valid YAML{f' at line {line}' if line else ''}: "
                        f"{problem}") from None
    except (ValueError, OverflowError, RecursionError) as err:  # e.g. a timestamp out of range
        raise TextError(None, f"not valid YAML: {err}") from None
