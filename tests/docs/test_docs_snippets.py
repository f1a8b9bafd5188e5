"""Every code block in README.md and docs/*.md is run, or marked, so the documentation cannot rot.

How blocks are run and what the ``<!-- snippet: … -->`` directives mean: markdown.py and runner.py
in this folder. Each document runs as one story, in order, against a real server on free ports
(docs/quickstart.md starts its own, as its reader does).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.docs.markdown import RUN_LANGUAGES, Block, parse_blocks
from tests.docs.runner import REPO, DocRun, SnippetFailed, new_workdir
from tests.support.mosquitto import require_mosquitto
from tests.support.tpm import require_swtpm

DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])

# Blocks that are not run at all (`skip`), across every document: each costs a reason, and the
# budget keeps them the exception. Raise it only with a reason a reviewer accepts.
SKIP_BUDGET = 4
NOT_RUN = ("install", "skip", "figure")


def _blocks(doc: Path) -> list[Block]:
    return parse_blocks(doc)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_block_of_the_document_runs_as_written(doc: Path) -> None:
    """The document's blocks, run in order in one working directory, all do what they show."""
    blocks = _blocks(doc)
    runnable = [b for b in blocks if b.kind not in NOT_RUN]
    if not runnable:
        return
    if any("swtpm" in b.text for b in runnable):
        require_swtpm()  # docs/tpm.md drives a software TPM: skipped locally without one, never in CI
    if any("mosquitto -c" in b.text for b in runnable):
        require_mosquitto(clients=True)  # docs/hubs.md runs a broker: likewise
    workdir = new_workdir()
    run = DocRun.create(workdir)
    try:
        if not any(b.kind == "background" for b in blocks):
            run.start_server()
        for block in blocks:
            run.run(block)
    finally:
        run.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_block_is_run_or_marked(doc: Path) -> None:
    """A block in a language the runner does not run carries a directive saying what it is."""
    unmarked = [b.where for b in _blocks(doc) if b.directive is None and b.language not in RUN_LANGUAGES]
    assert not unmarked, f"blocks that are neither run nor marked with <!-- snippet: … -->: {unmarked}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_saved_files_are_run_by_a_later_block(doc: Path) -> None:
    """A ``file`` block is used: a later block that runs names it (else it would never be executed)."""
    blocks = _blocks(doc)
    for i, block in enumerate(blocks):
        if block.kind == "file":
            name = block.directive.args[0] if block.directive else ""
            later = [b for b in blocks[i + 1 :] if b.kind in ("sh", "console") and name in b.text]
            assert later, f"{block.where}: {name} is saved but no later sh/console block runs it"


def test_output_blocks_follow_a_block_that_prints() -> None:
    """An ``output`` block is checked against the block before it, so it must follow one that runs."""
    for doc in DOCS:
        blocks = [b for b in _blocks(doc) if b.kind not in NOT_RUN]
        for before, block in zip([None, *blocks], blocks, strict=False):
            if block.kind == "output":
                assert before is not None and before.kind in (
                    "sh",
                    "console",
                    "python",
                    "js",
                    "http",
                    "sets",
                ), f"{block.where}: an output block must follow a block that runs"


def test_figures_are_text() -> None:
    """``figure`` marks a drawing or a summary in a ``text`` block, never code that could be run."""
    misused = [b.where for doc in DOCS for b in _blocks(doc) if b.kind == "figure" and b.language != "text"]
    assert not misused, f"`snippet: figure` on a block that is not ```text: {misused}"


def test_skipped_blocks_are_few_and_give_a_reason() -> None:
    """``skip`` is the exception: within the budget, every one with a reason (the parser demands one)."""
    skipped = [
        (b.where, b.directive.reason)
        for doc in DOCS
        for b in _blocks(doc)
        if b.kind == "skip" and b.directive
    ]
    assert len(skipped) <= SKIP_BUDGET, f"{len(skipped)} skipped blocks (budget {SKIP_BUDGET}): {skipped}"


def _requirement_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _installed(block: Block, tool: str) -> list[str]:
    """The package names after ``<tool> install`` in a block (options and paths left out)."""
    names: list[str] = []
    for command in block.text.replace("\\\n", " ").splitlines():
        words = shlex.split(command, comments=True)
        for i, word in enumerate(words[:-1]):
            if word.endswith(tool) and words[i + 1] == "install":
                names += [w for w in words[i + 2 :] if not w.startswith("-") and w != "."]
    return names


def test_install_lines_name_the_packages_the_harness_substitutes() -> None:
    """What a reader is told to install is what the tests run the docs with (pinned there)."""
    pinned_pip = _requirement_names((REPO / "tests/compat/requirements.txt").read_text())
    pinned_npm = set(json.loads((REPO / "tests/compat/node/package.json").read_text())["dependencies"])
    seen = 0
    for doc in DOCS:
        for block in _blocks(doc):
            if block.kind != "install":
                continue
            pip = {n.lower().replace("_", "-") for n in _installed(block, "pip")}
            npm = set(_installed(block, "npm"))
            assert pip <= pinned_pip, (
                f"{block.where}: {sorted(pip - pinned_pip)} not in tests/compat/requirements.txt"
            )
            assert npm <= pinned_npm, (
                f"{block.where}: {sorted(npm - pinned_npm)} not in tests/compat/node/package.json"
            )
            seen += len(pip) + len(npm)
    assert seen, "no install block names a package: the check would be vacuous"


def test_the_runner_fails_a_block_that_does_not_do_what_the_doc_shows(tmp_path: Path) -> None:
    """The harness itself: a failing command, a wrong output and an unmarked fence are each caught."""
    doc = tmp_path / "story.md"
    doc.write_text(
        '```sh\nexport GREETING=hello\n```\n\n```sh\necho "$GREETING world"\n```\n\n'
        "<!-- snippet: output -->\n```text\nhello moon\n```\n\n```sh\nfalse\n```\n\n```\nunmarked\n```\n"
    )
    blocks = parse_blocks(doc)
    assert [b.kind for b in blocks] == ["sh", "sh", "output", "sh", ""]
    (tmp_path / "work").mkdir()
    run = DocRun.create(tmp_path / "work")
    try:
        run.run(blocks[0])
        run.run(blocks[1])
        assert run.last_output == "hello world\n"  # the variable exported by the block before
        with pytest.raises(SnippetFailed, match="'hello moon' was not printed"):
            run.run(blocks[2])
        with pytest.raises(SnippetFailed, match="exited 1"):
            run.run(blocks[3])
    finally:
        run.close()
    assert blocks[4].directive is None and blocks[4].language not in RUN_LANGUAGES
