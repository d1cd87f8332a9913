"""Every relative link in README.md, docs/*.md, experiments/README.md and benchmarks/README.md
resolves: the file or folder exists, and an anchor (``page.md#section``) names a heading of that
page, slugged as GitHub does."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PAGES += [ROOT / "experiments" / "README.md", ROOT / "benchmarks" / "README.md"]
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(path: pathlib.Path) -> str:
    """The page without its code blocks and inline code, where brackets are not links."""
    text = FENCE.sub("", path.read_text())
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(path: pathlib.Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", FENCE.sub("", path.read_text()), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def _links() -> list[tuple[str, str]]:
    links = []
    for page in PAGES:
        for target in LINK.findall(_prose(page)):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked
                links.append((str(page.relative_to(ROOT)), target))
    return links


LINKS = _links()


def test_the_pages_have_links():
    assert len(LINKS) > 50


@pytest.mark.parametrize("page,target", LINKS, ids=[f"{p}->{t}" for p, t in LINKS])
def test_link_resolves(page, target):
    path, _, anchor = target.partition("#")
    resolved = (ROOT / page).parent / path if path else ROOT / page
    assert resolved.exists(), f"{page}: {target}: no such file or folder"
    if anchor:
        assert resolved.suffix == ".md", f"{page}: {target}: an anchor into a file that is not Markdown"
        assert anchor in _anchors(resolved), f"{page}: {target}: {resolved.name} has no heading #{anchor}"
