"""Top functions of a py-spy raw (collapsed-stack) profile.

``python -m bench.profile_summary profile.txt [--top 25]`` prints the
functions with the most samples on top of the stack (self) and anywhere in the
stack (inclusive), as a share of all samples. Frames look like
``function (path/file.py:line)``; lines are folded so one function is one row.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def _function(frame: str) -> str:
    frame = _LINE.sub(")", frame.strip())
    # shorten site-packages and repository paths
    frame = re.sub(r"\(.*/site-packages/", "(", frame)
    frame = re.sub(r"\(.*/lib/python3\.\d+/", "(stdlib/", frame)
    return re.sub(r"\(/work/[^/]+/", "(", frame)


_THREAD = re.compile(r"^thread \(\w+\): ?(.*)$")


def load(path: Path, only_thread: str | None = None) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        raw = [f for f in stack.split(";") if f]
        thread = "all"
        if raw and raw[0].startswith("process "):
            raw = raw[1:]
        if raw:
            match = _THREAD.match(raw[0])
            if match:
                # "asyncio_3" and "asyncio_0" are one pool
                thread = re.sub(r"_\d+$", "_N", match.group(1) or "?")
                raw = raw[1:]
        frames = [_function(f) for f in raw]
        if not frames or (only_thread is not None and thread != only_thread):
            continue
        total += samples
        threads[thread] += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    return own, inclusive, threads, total


def summarize(path: Path, top: int = 25, thread: str | None = None) -> str:
    own, inclusive, threads, total = load(path, thread)
    if not total:
        return f"{path}: no samples"
    out = [f"py-spy profile {path}: {total} samples (active threads only)", "", "by thread:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in threads.most_common()]
    out += ["", f"top {top} by self time:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    out += ["", f"top {top} by inclusive time:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_summary", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", help="only this thread (a name from the 'by thread' list)")
    args = parser.parse_args(argv)
    print(summarize(args.path, args.top, args.thread))
    return 0


if __name__ == "__main__":
    sys.exit(main())
