"""Buffer reuse by liveness for the C printer: intermediate values share scratch blocks.

Owns: :func:`plan`, which gives every scratch value of a kernel function a block of the
caller's scratch memory such that two values share a block only when the first is dead (read
for the last time by an earlier statement) before the second is written, and
:func:`describe`, the comment that reports the peak scratch memory with and without reuse.
A block is reused only by a value of the same element count expression and C type, so a plan
holds for every binding of the symbolic dims.

May import: the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

_SIZEOF = {"double": 8, "float": 4, "int64_t": 8, "_Bool": 1}
FOREVER = 1 << 62


@dataclass
class Plan:
    blocks: list[tuple[str, str]]  # (element count expression, C type) of each block
    block_of: dict[str, int]  # value -> its block
    values: list[tuple[str, str, str]]  # every scratch value (name, count, C type), in order


def plan(
    scratch: list[tuple[str, str, str]],
    born: dict[str, int],
    last: dict[str, int],
    aliases: list[tuple[str, str]],
    reuse: bool = True,
) -> Plan:
    """Blocks for ``scratch`` (name, count, C type): ``born[name]`` is the position of the
    statement writing it, ``last[name]`` that of the last statement reading it (``FOREVER``
    when results or the end of the function read it); ``aliases`` are (alias, value) pairs of
    names that read a value's buffer under another name (in order of creation)."""
    end = dict(last)
    for alias, src in reversed(aliases):  # an alias keeps its value alive
        end[src] = max(end.get(src, 0), end.get(alias, born.get(alias, 0)))
    free: dict[tuple[str, str], list[int]] = {}
    dying: list[tuple[int, int, tuple[str, str]]] = []  # (last use, block, key)
    blocks: list[tuple[str, str]] = []
    block_of: dict[str, int] = {}
    for name, count, ct in sorted(scratch, key=lambda v: born.get(v[0], 0)):
        at = born.get(name, 0)
        for item in [d for d in dying if d[0] < at]:
            dying.remove(item)
            free.setdefault(item[2], []).append(item[1])
        key = (count, ct)
        pool = free.get(key)
        if reuse and pool:
            b = pool.pop()
        else:
            b = len(blocks)
            blocks.append(key)
        block_of[name] = b
        dying.append((end.get(name, at), b, key))
    return Plan(blocks, block_of, scratch)


def _bytes(count: str, ct: str) -> int | None:
    if not count.isdigit():
        return None
    return (int(count) * _SIZEOF.get(ct, 8) + 63) // 64 * 64


def describe(p: Plan) -> str:
    """``scratch memory: 3 blocks for 7 values, 1,280 bytes (2,816 without reuse)`` (bytes
    only when every size is static)."""
    head = f"scratch memory: {len(p.blocks)} blocks for {len(p.values)} values"
    used = [_bytes(c, t) for c, t in p.blocks]
    every = [_bytes(c, t) for _, c, t in p.values]
    if any(b is None for b in used + every):
        return head + " (sizes depend on the symbolic dims)"
    with_reuse, without = sum(b or 0 for b in used), sum(b or 0 for b in every)
    return f"{head}, {with_reuse:,} bytes ({without:,} without reuse)"
