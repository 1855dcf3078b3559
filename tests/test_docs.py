"""The API reference: every public name on exactly one page, under its public path."""

import html
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from test_public_names import _is_public, public_homes

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api"


def directives():
    """(page, identifier, options) for every ``::: identifier`` in docs/api/."""
    found = []
    for page in sorted(API.glob("*.md")):
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("::: "):
                options = []
                for more in lines[i + 1:]:
                    if not more.startswith("    "):
                        break
                    options.append(more.strip())
                found.append((page.name, line[4:].strip(), options))
    return found


def test_every_public_name_has_exactly_one_directive_under_its_public_path():
    homes = public_homes()
    names = [ident for _, ident, options in directives() if "members: false" not in options]
    counts = Counter(names)
    assert not [n for n, c in counts.items() if c > 1], "documented twice"
    assert not [n for n in names if not _is_public(n)], "private paths"
    missing = sorted(set(homes) - set(names))
    assert not missing, f"public names with no page: {missing}"
    extra = sorted(n for n in set(names) - set(homes) if not n.startswith("atomics.views"))
    assert not extra, f"documented, but not a public name's home: {extra}"


def test_module_sections_are_public_modules_once_each():
    modules = [ident for _, ident, options in directives() if "members: false" in options]
    assert len(modules) == len(set(modules)) and all(_is_public(m) for m in modules)


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in API.glob("*.md"):
        assert f"api/{page.name}" in nav, page.name


def test_site_builds_strict_and_shows_public_paths_only(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is in the test extra")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is in the test extra")
    if "atomics.views" not in _importable():
        pytest.skip("the reference is built on a GIL build with cffi (atomics.views has a page)")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ids = Counter()
    for page in sorted((tmp_path / "api").glob("*/index.html")):
        text = page.read_text()
        ids.update(re.findall(r'<h[1-6] id="([^"]+)"', text))
        plain = html.unescape(re.sub(r"<[^>]+>", "", text))
        assert "annotations = " not in plain and "_Feature" not in plain, page
        # signatures and headings: no object shown under a private module path
        for code in re.findall(r'<code class="doc-symbol[^"]*"[^>]*>.*?</code>|<h[1-6][^>]*>.*?</h[1-6]>', text, re.S):
            shown = html.unescape(re.sub(r"<[^>]+>", "", code))
            assert not re.search(r"\b(atomics|patterns)(\.\w+)*\._\w", shown), (page, shown)
    assert not [i for i, c in ids.items() if c > 1], "an object rendered on several pages"
    assert not [i for i in ids if "." in i and not _is_public(i)], [i for i in ids if not _is_public(i)]
    for home in public_homes():
        assert ids[home] == 1, home


def _importable():
    try:
        import atomics.views  # noqa: F401
    except ImportError:
        return set()
    return {"atomics.views"}
