"""Writes one script's marked section of docs/BENCHMARKS.md, in place.

A section is the text between its `begin` and `end` markers. It replaces that section when
the file has it; otherwise it goes before the image section (or at the end). compare.py,
which rewrites the rest of the file, keeps every marked section as it finds it.
"""

from pathlib import Path


def write_section(doc, begin, end, title, intro, text):
    """Puts `title`, `intro` and `text` between `begin` and `end` in the file `doc`."""
    section = "\n".join([begin, title, "", intro, "", text.rstrip(), end])
    path = Path(doc)
    old = path.read_text()
    if begin in old and end in old.split(begin, 1)[1]:
        head, rest = old.split(begin, 1)
        new = head + section + rest.split(end, 1)[1]
    elif "<!-- images.py: begin" in old:
        head, rest = old.split("<!-- images.py: begin", 1)
        new = head + section + "\n\n<!-- images.py: begin" + rest
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(new)
