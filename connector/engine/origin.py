"""Where a part of an engine statement comes from in the rule file, so a problem found on the statement (by
`rules check --engine spark`) points at the rule text that produced it, as file:line:col.

The compiler tags every node of a compiled condition with the key path of its text in the file and the character
offset of the source node it was made from; the passes tag what they build from one rule element (a feature's
aggregates, a template's placeholders). Tags live in sqlglot's `meta`, which copies travel with, so a tag
survives `copy()`, `retarget` and the Spark rewrite; SQL text never shows them. A node without a tag belongs to
its nearest tagged ancestor, and a statement with no tag on the way up is the engine's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

TAG = "tl_origin"
SOURCE_OFFSET = "tl_source_offset"  # set by the condition compiler: where in the condition a node was written

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Origin:
    """A rule file's key path (as `connector.ruleset.loader` keeps positions) and, within a condition or a
    template, the character offset of the part that made the node."""

    loc: Loc
    offset: int | None = None

    def __copy__(self) -> Origin:
        return self

    def __deepcopy__(self, memo: object) -> Origin:
        """Itself: an origin never changes, and every copy of a tagged tree deep-copies each node's tags, which
        for a statement built of many tagged parts was most of the engine's time in Python."""
        return self


def tag(tree: exp.Expr, loc: Loc, offset: int | None = None) -> exp.Expr:
    """Tag `tree` (in place, and returned) as made from `loc`; nodes already tagged keep their tag. A node's
    offset is the nearest one recorded at it or above it by the condition compiler, else `offset`."""
    stack: list[tuple[exp.Expr, int | None]] = [(tree, offset)]
    while stack:
        node, inherited = stack.pop()
        here = node.meta.get(SOURCE_OFFSET, inherited)
        if TAG not in node.meta:
            node.meta[TAG] = Origin(loc, here)
        stack.extend((child, here) for child in node.iter_expressions())
    return tree


def find(node: exp.Expr | None) -> Origin | None:
    """The origin of `node`: its own tag or its nearest tagged ancestor's; None for the engine's own parts."""
    while node is not None:
        found = node.meta.get(TAG)
        if isinstance(found, Origin):
            return found
        node = node.parent
    return None
