"""Command-line helpers shared by the entry points."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


def expand_ranges(argv: Sequence[str]) -> list[str]:
    """Expand ``key=a..b`` (inclusive integer ranges, also inside comma lists) into ``key=a,...,b``.

    Hydra's own ``range(1,8)`` and everything else pass through unchanged.
    """
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key.startswith("-") or not any(_RANGE.match(v.strip()) for v in value.split(",")):
            out.append(arg)
            continue
        items = []
        for part in value.split(","):
            match = _RANGE.match(part.strip())
            if not match:
                items.append(part)
                continue
            low, high = int(match.group(1)), int(match.group(2))
            if high < low:
                sys.exit(f"error: empty range {part!r} in {arg!r}: write low..high, e.g. num_desc=1..7")
            items.extend(str(i) for i in range(low, high + 1))
        out.append(f"{key}={','.join(items)}")
    return out


def prepare_argv() -> None:
    """Rewrite ``sys.argv`` in place before Hydra parses it (child DDP processes inherit the result)."""
    sys.argv[1:] = expand_ranges(sys.argv[1:])
