"""The docs stay a front door and rooms: a short README, and no relative link that leads nowhere.

Links are checked the way GitHub renders them: a relative target is a path from the linking file's
folder, and `#anchor` names a heading of the target Markdown file by its GitHub slug.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulator.sam import read_template

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CONFIGURATION = REPO / "docs" / "configuration.md"
README_MAX_LINES = 250

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
# [text](target) and ![alt](target); the target ends at whitespace (a title may follow) or ")".
_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def markdown_files() -> list[Path]:
    return [README, *sorted((REPO / "docs").glob("*.md"))]


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, where Markdown links and headings live."""
    lines, in_fence = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append((number, line))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lower case, punctuation dropped, spaces as '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file; repeated headings get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of each relative link; a link's text may wrap onto the next line."""
    source = path.read_text(encoding="utf-8")
    prose = [""] * len(source.splitlines())
    for number, line in _prose_lines(source):
        prose[number - 1] = line
    # Code spans are blanked, not removed, so offsets still give line numbers.
    text = _CODE_SPAN.sub(lambda span: re.sub(r"[^\n]", " ", span.group()), "\n".join(prose))
    links = []
    for match in _LINK.finditer(text):
        target = match.group(1)
        if not _EXTERNAL.match(target):
            links.append((text.count("\n", 0, match.start()) + 1, target))
    return links


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    """`file:line: target (why)` for each relative link of `path` that GitHub could not follow."""
    problems = []
    for number, target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not linked.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{where} (no heading with anchor #{anchor})")
    return problems


def test_the_readme_is_a_front_door_of_at_most_250_lines():
    # Given the README
    lines = README.read_text(encoding="utf-8").splitlines()

    # Then it stays short: every other topic lives in docs/
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


def test_the_docs_folder_holds_the_topics_the_readme_links_to():
    # Given the README's relative links
    linked = {target.partition("#")[0] for _, target in relative_links(README)}

    # Then each docs page is linked from the front door
    pages = {f"docs/{page.name}" for page in (REPO / "docs").glob("*.md")}
    assert pages, "docs/ has no pages"
    assert pages <= linked, f"docs pages not linked from README.md: {sorted(pages - linked)}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(path: Path):
    # Given a Markdown page of the project
    # When its relative links are followed as GitHub follows them
    problems = broken_links(path)

    # Then each reaches an existing file, and each #anchor an existing heading
    assert not problems, "broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Throttling, 5xx and the time budget", "throttling-5xx-and-the-time-budget"),
        ("Troubleshooting: jobs stuck in RUNNABLE", "troubleshooting-jobs-stuck-in-runnable"),
        ("Fargate vCPU and memory", "fargate-vcpu-and-memory"),
        ("`python -m emulator invoke`", "python--m-emulator-invoke"),
        ("Uploads go S3 → SQS → Lambda, not S3 → Lambda", "uploads-go-s3--sqs--lambda-not-s3--lambda"),
        ("Built with a `makefile` build method", "built-with-a-makefile-build-method"),
        ("SUBMIT_MODE and [array mode](intake.md)", "submit_mode-and-array-mode"),
    ],
)
def test_headings_get_the_anchor_github_gives_them(heading: str, slug: str):
    assert github_slug(heading) == slug


def test_a_broken_link_or_anchor_is_reported(tmp_path: Path):
    # Given a page linking to missing files, a missing heading and a heading that exists
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "real.md").write_text("# Real page\n\n## A section\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/real.md#a-section) [gone](docs/missing.md) [bad](docs/real.md#no-such-section)\n"
        "```\n[in a code block](docs/ignored.md)\n```\n"
        "`[in a code span](docs/ignored.md)` [web](https://example.com/x.md) [a link\n"
        "wrapped onto the next line](docs/wrapped.md)\n",
        encoding="utf-8",
    )

    # When its links are checked
    problems = broken_links(page, root=tmp_path)

    # Then exactly the three broken ones are reported, each at the line where it starts
    assert problems == [
        "README.md:1: docs/missing.md (no such file)",
        "README.md:1: docs/real.md#no-such-section (no heading with anchor #no-such-section)",
        "README.md:5: docs/wrapped.md (no such file)",
    ]


def test_the_readme_layout_names_every_module_of_the_shared_package():
    text = README.read_text(encoding="utf-8")
    layout = text[text.index("## Project layout") :]
    package = REPO / "layers" / "common" / "python" / "batch_dispatch"

    def named_as(path: Path) -> str:
        """A module of the package or of a subpackage by its name; anything deeper by its folder."""
        return path.stem if len(path.relative_to(package).parts) <= 2 else f"{path.parent.name}/"

    missing = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if path.name != "__init__.py" and not re.search(rf"\b{re.escape(named_as(path))}", layout)
    ]
    assert missing == [], f"README's project layout does not name {missing}"


def test_the_operator_commands_example_outputs_are_the_ones_the_script_regenerates():
    from scripts.operator_command_examples import DOC, EXAMPLES, MARKER

    text = DOC.read_text(encoding="utf-8")

    # Every example the script makes has one marked block, and every marked block is one of them
    assert sorted(match.group(2) for match in MARKER.finditer(text)) == sorted(EXAMPLES)
    # And every block showing the command's output is one of those: none is written by hand
    output_blocks = re.findall(r"(<!-- example: [a-z-]+ -->\n)?```\n\$ batch-dispatch", text)
    assert output_blocks
    assert all(output_blocks), "a block of command output in operator-command.md is not marked"


def parameter_rows(page: Path) -> list[str]:
    """The parameter each row of the page's "## Parameters" table names (first cell, in backticks)."""
    text = page.read_text(encoding="utf-8")
    section = text[text.index("## Parameters") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)


def test_the_configuration_page_has_one_row_for_every_template_parameter():
    # Given the template's parameters and the rows of docs/configuration.md's table
    parameters = list(read_template(REPO / "template.yaml")["Parameters"])
    rows = parameter_rows(CONFIGURATION)

    # Then each parameter is described exactly once, and no row names a parameter that does not exist
    assert sorted(set(parameters) - set(rows)) == [], "parameters without a row in docs/configuration.md"
    assert sorted(set(rows) - set(parameters)) == [], "rows for parameters template.yaml does not have"
    assert len(rows) == len(set(rows)), "a parameter has two rows"
