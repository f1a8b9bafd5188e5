"""Every file a document links to or names exists in the repository.

Relative Markdown links must resolve from the document's folder. A path written in the prose
(``services/device_auth.py``, ``tests/compat/node/package.json``, ``.ci/wheel_smoke.py``) must be
the end of some file's path in the repository, so a path given relative to the package or to a
folder named nearby still counts, but a file that was renamed, moved away or never committed does
not. Placeholders (``<data-dir>/settings.json``, ``tls/*.key``) and absolute paths are not files
of the repository and are left out, and so are the files a document has its reader write
(``<!-- snippet: file NAME -->``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from tests.docs.markdown import parse_blocks
from tests.docs.runner import REPO

DOCUMENTS = sorted(
    [
        REPO / "README.md",
        *(REPO / "docs").glob("*.md"),
        REPO / "examples" / "README.md",
        REPO / "tests" / "README.md",
    ]
)
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
_SOURCE_EXTENSIONS = "py|js|md|toml|txt|json|cfg|ini|yml|yaml|sh|lock"
# A path in prose: either with a folder (any of the extensions) or a bare Python / JS file name.
_PATH = re.compile(
    rf"(?<![\w/<>.*…-])(?P<path>(?:[\w.-]+/)+[\w.-]+\.(?:{_SOURCE_EXTENSIONS})|[\w-]+\.(?:py|js))(?![\w/*>…-])"
)
_SKIPPED_DIRS = {".git", ".venv", ".venv-compat", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}


@cache
def _repository_files() -> tuple[str, ...]:
    files = []
    for path in REPO.rglob("*"):
        parts = path.relative_to(REPO).parts
        if path.is_file() and not _SKIPPED_DIRS.intersection(parts):
            files.append("/" + "/".join(parts))
    return tuple(files)


def _in_repository(cited: str) -> bool:
    suffix = "/" + cited.lstrip("./") if cited.startswith("./") else "/" + cited
    return any(f.endswith(suffix) for f in _repository_files())


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc: Path) -> None:
    """A relative link ``[text](path#anchor)`` names a file or folder that exists."""
    missing = []
    for match in _LINK.finditer(doc.read_text(encoding="utf-8")):
        target = match.group("target").split("#", 1)[0]
        if target and not re.match(r"^[a-z]+:", target) and not (doc.parent / target).exists():
            missing.append(target)
    assert not missing, f"{doc.name} links to what does not exist: {missing}"


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_cited_files_exist(doc: Path) -> None:
    """A file path named in the text is a file of the repository."""
    text = _LINK.sub("]", doc.read_text(encoding="utf-8"))  # link targets: test_relative_links_resolve
    written = {b.directive.args[0] for b in parse_blocks(doc) if b.directive and b.directive.kind == "file"}
    cited = {m.group("path") for m in _PATH.finditer(text) if not m.group("path").startswith("/")}
    missing = sorted(path for path in cited - written if not _in_repository(path))
    assert not missing, f"{doc.name} names files that are not in the repository: {missing}"


def test_the_check_sees_a_missing_file() -> None:
    """The check itself: a path that is not in the repository is reported, one that is is not."""
    assert _in_repository("services/device_auth.py")
    assert _in_repository("tests/compat/node/package.json")
    assert not _in_repository("services/no_such_module.py")
    assert {m.group("path") for m in _PATH.finditer("see `api/<dialect>/errors.py` and tls/*.key")} == set()
