"""The docs site: mkdocs builds it with warnings as errors, the coffee notebook runs in the build, every
internal link and anchor of the built pages resolves, and the API page covers every public name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import lmmformula as lf

ROOT = Path(__file__).resolve().parent.parent


def test_api_page_lists_every_public_name():
    page = (ROOT / "docs" / "api.md").read_text()
    listed = set(re.findall(r"^::: lmmformula\.(\w+)$", page, re.MULTILINE))
    assert {name for name in lf.__all__ if name != "__version__"} <= listed


def test_families_page_lists_every_family_with_its_links():
    from lmmformula.families import FAMILIES

    page = (ROOT / "docs" / "formulas.md").read_text()
    rows = {
        m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| [^|]* \| ([^|]*) \|", page, re.MULTILINE)
    }
    assert set(rows) == set(FAMILIES)
    for name, family in FAMILIES.items():
        assert rows[name].strip() == ", ".join(family.links), name


class _Links(HTMLParser):
    """Every href/src and every id of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)
            if name == "id" and value:
                self.ids.add(value)


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(errors="replace"))
    return parser


def broken_links(site: Path) -> list[str]:
    """Internal links of the built site whose file or anchor does not exist."""
    pages = {page: _parse(page) for page in site.rglob("*.html")}
    broken = []
    for page, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue  # external: not ours to check offline
            base = site if parts.path.startswith("/") else page.parent  # root-relative (404.html) or relative
            target = page if not parts.path else (base / unquote(parts.path).lstrip("/")).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link}")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {link} (no such anchor)")
    return broken


def test_link_checker_finds_a_broken_link_and_anchor(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "index.html").write_text('<a href="a/">ok</a><a href="b/">gone</a><a href="a/#x">anchor</a>')
    (tmp_path / "a" / "index.html").write_text('<h2 id="y">y</h2><a href="../index.html#top">up</a>')
    assert broken_links(tmp_path) == [
        "index.html: b/",
        "index.html: a/#x (no such anchor)",
        "a/index.html: ../index.html#top (no such anchor)",
    ]


def _pandoc_stand_in(folder: Path) -> Path:
    """A ``pandoc`` that answers ``--version`` (nbconvert asks) and records any other call in ``calls``,
    failing it (Debian's pandoc 2.17 spins for minutes on mkdocstrings' ``:::`` lines, so the build must
    never hand it a page)."""
    folder.mkdir()
    calls = folder / "calls"
    script = folder / "pandoc"
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "pandoc 2.17.1.1"; exit 0; fi\n'
        f'echo "$@" >> "{calls}"\nexit 1\n'
    )
    script.chmod(0o755)
    return calls


def test_notebook_plugin_reads_only_the_notebook_with_or_without_pandoc(tmp_path, monkeypatch):
    """Which pages the notebook plugin takes, with a pandoc on PATH and with none: the notebook only,
    and pandoc is never called (mkdocs-jupyter reads every .md page through jupytext, which calls
    pandoc when it finds one, unless the page is ignored)."""
    pytest.importorskip("mkdocs_jupyter", reason='the docs need the docs extra: pip install -e ".[docs]"')
    from mkdocs.config import load_config
    from mkdocs.structure.files import get_files

    config = load_config(str(ROOT / "mkdocs.yml"))
    plugin = config.plugins["mkdocs-jupyter"]
    calls = _pandoc_stand_in(tmp_path / "bin")
    for path in (f"{calls.parent}:{os.environ['PATH']}", str(tmp_path / "empty")):
        monkeypatch.setenv("PATH", path)
        taken = [f.src_uri for f in get_files(config) if plugin.should_include(f)]
        assert taken == ["coffee.ipynb"]
    assert not calls.exists()


@pytest.mark.slow
def test_docs_build_strictly_runs_the_notebook_and_links_resolve(tmp_path):
    pytest.importorskip("mkdocs", reason='the docs need the docs extra: pip install -e ".[docs]"')
    site = tmp_path / "site"
    calls = _pandoc_stand_in(tmp_path / "bin")  # a pandoc on PATH must not be called
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PATH": f"{calls.parent}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert not calls.exists(), calls.read_text()
    assert not re.search(r"^WARNING\s+-", done.stderr, re.MULTILINE), done.stderr[-3000:]  # mkdocs's own
    walkthrough = (site / "coffee" / "index.html").read_text()
    # outputs of the run, not pasted: the summary, the program and the figure
    assert "Multilevel Hyperparameters" in walkthrough and "parameters {" in walkthrough
    assert "<img" in walkthrough
    api = _parse(site / "api" / "index.html").ids
    assert {f"lmmformula.{name}" for name in lf.__all__ if name != "__version__"} <= api
    assert "lmmformula.Model.fit" in api and "lmmformula.Fit.save" in api
    assert "fit_many.py" in (site / "performance" / "index.html").read_text()  # a results file, included
    assert broken_links(site) == []
