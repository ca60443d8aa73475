"""The documents name files that exist: a restructuring cannot leave the architecture page
pointing at modules that moved."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("doc", ["docs/architecture.md", "docs/developers.md", "README.md"])
def test_every_file_a_document_names_exists(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:elastiq|ecm|tests|benchmarks|slave_files|\.ci|tools|etc|systemd)"
                           r"/[\w./-]+?)(?::[\w.]+)?[` ]", text))
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert named and missing == []


def test_the_architecture_page_names_every_runtime_and_core_module():
    text = (ROOT / "docs/architecture.md").read_text(encoding="utf-8")
    modules = [p for folder in ("elastiq/runtime", "elastiq/core")
               for p in sorted((ROOT / folder).glob("*.py")) if p.name != "__init__.py"]
    unnamed = [str(p.relative_to(ROOT)) for p in modules if p.name not in text]
    assert unnamed == []
