"""The docs hold together: every docs page README.md names exists (and every anchor it links to),
and every page under docs/ is in mkdocs.yml's nav, so none can be orphaned. The strict MkDocs
build (`make lint`, `make test`) checks the links between the pages themselves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from markdown.extensions.toc import slugify

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()
# A markdown link into docs/ (`[text](docs/gate.md#anchor)`), and any mention of a docs page.
DOC_LINK = re.compile(r"\]\((docs/[^)#\s]+\.md)(?:#([^)\s]+))?\)")
DOC_MENTION = re.compile(r"\bdocs/[\w./-]+\.md\b")


def nav_pages(node: object) -> list[str]:
    """Every page a MkDocs nav names, however deep its sections go."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in nav_pages(value)]
    if isinstance(node, list):
        return [page for item in node for page in nav_pages(item)]
    return []


def anchors(page: Path) -> set[str]:
    """The ids MkDocs gives a page's headings (its toc slugs), code blocks left out."""
    found: set[str] = set()
    fenced = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"#{1,6} (.+)", line)
        if heading and not fenced:
            text = re.sub(r"[`*]", "", heading.group(1)).strip()
            found.add(slugify(text, "-"))
    return found


NAV = nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
LINKS = DOC_LINK.findall(README)


def test_readme_links_into_the_docs() -> None:
    assert LINKS, "README.md links to no docs page"
    linked = {path for path, _ in LINKS}
    assert "docs/index.md" in linked


@pytest.mark.parametrize(("path", "anchor"), sorted(set(LINKS)))
def test_readme_doc_link_points_at_a_page(path: str, anchor: str) -> None:
    page = ROOT / path
    assert page.is_file(), f"README.md links to {path}, which does not exist"
    if anchor:
        assert anchor in anchors(page), f"README.md links to {path}#{anchor}: no such heading"


def test_every_docs_page_the_readme_names_exists() -> None:
    missing = sorted({m for m in DOC_MENTION.findall(README) if not (ROOT / m).is_file()})
    assert not missing, f"README.md names docs pages that do not exist: {missing}"


def test_every_docs_page_is_in_the_nav() -> None:
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    orphans = [p for p in pages if p not in NAV]
    assert not orphans, f"pages under docs/ missing from mkdocs.yml's nav: {orphans}"


def test_every_nav_entry_is_a_page() -> None:
    absent = [p for p in NAV if not (DOCS / p).is_file()]
    assert not absent, f"mkdocs.yml's nav names pages that do not exist: {absent}"
    assert len(NAV) == len(set(NAV)), "a page appears twice in the nav"


def test_the_build_is_strict_about_links() -> None:
    """The settings that turn a broken link, a missing anchor or an orphan page into an error."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["strict"] is True
    links = config["validation"]["links"]
    assert {links[k] for k in ("not_found", "anchors", "unrecognized_links")} == {"warn"}
    assert config["validation"]["nav"]["omitted_files"] == "warn"
