"""Soak test of the compile cache: many processes compiling and calling against one cache
directory while some are killed with SIGKILL and ``symgrad cache clear`` / ``prune`` run beside
them. Not a timed test: it reports what went wrong, and exits with 1 when anything did.

    .venv/bin/python benchmarks/soak.py                      # short: 8 x 12 compiles (< 2 min)
    .venv/bin/python benchmarks/soak.py --compiles 500       # the full run: 8 x 500
    .venv/bin/python benchmarks/soak.py --backend numpy --kill-every 0.5 --pool 32

Each worker compiles functions drawn from a pool (so processes share, race for and rebuild the
same entries), calls each a few times and checks every result and gradient against NumPy. A
killer sends SIGKILL to a random worker every ``--kill-every`` seconds (on average) and starts
a replacement with the rest of its quota; a janitor runs ``symgrad cache clear`` and
``symgrad cache prune --max-size`` in turn. Reported: compiles, calls, wrong results, failed
compiles, entries refused while running (a ``CacheWarning``) and corrupt at the end, lock files
left and locks still held once every process is gone (after the final sweep), and the peak
cache size. Wrong results, corrupt entries and stale locks must all be 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


# -- the worker --------------------------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    import numpy as np

    import symgrad as sg
    from symgrad.runtime import cache

    rng = random.Random(args.seed)
    log = open(args.log, "a", buffering=1)  # noqa: SIM115  (one line per compile, flushed)
    for _ in range(args.compiles):
        k = rng.randrange(args.pool)
        c = 0.25 + k / 8.0
        row: dict[str, Any] = {"k": k, "calls": 0, "wrong": 0, "refused": 0, "error": ""}
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                f = sg.compile(
                    lambda x, w, c=c: ((x * c).tanh() * w).sum(),
                    sg.Spec(("n", 3)),
                    sg.Spec((3,)),
                    backend=args.backend,
                    wrt=[0, 1],
                )
                for _call in range(args.calls):
                    n = rng.randrange(1, 6)
                    x = np.array([[rng.uniform(-2, 2) for _ in range(3)] for _ in range(n)])
                    w = np.array([rng.uniform(-1, 1) for _ in range(3)])
                    out, (gx, gw) = f(x, w)
                    t = np.tanh(x * c)
                    ok = (
                        np.isclose(out, (t * w).sum(), rtol=1e-12, atol=1e-12)
                        and np.allclose(gx, (1 - t * t) * c * w, rtol=1e-12, atol=1e-12)
                        and np.allclose(gw, t.sum(0), rtol=1e-12, atol=1e-12)
                    )
                    row["calls"] += 1
                    row["wrong"] += int(not ok)
                row["backend"] = f.backend
            except Exception as e:  # a failed compile is counted, never hidden
                row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        row["refused"] = sum(
            1
            for w_ in seen
            if issubclass(w_.category, cache.CacheWarning) and "refused" in str(w_.message)
        )
        log.write(json.dumps(row) + "\n")


# -- the controller -----------------------------------------------------------------------------
def _cache_bytes(root: Path) -> int:
    total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _corrupt_entries(root: Path) -> tuple[int, int]:
    """(entries, entries failing the cache's checks) of the cache at ``root``."""
    from symgrad.runtime.cache.layout import _KEY_RE
    from symgrad.runtime.cache.trust import _Refused, _verify

    entries = bad = 0
    for shard in root.iterdir():
        if len(shard.name) != 2 or not shard.is_dir():
            continue
        for path in shard.iterdir():
            if not _KEY_RE.fullmatch(path.name):
                continue
            entries += 1
            try:
                _verify(path, path.name, [])
            except _Refused as r:
                bad += int(r.loud)
    return entries, bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--procs", type=int, default=8, help="concurrent worker processes (8)")
    ap.add_argument("--compiles", type=int, default=12, help="compiles per process (12)")
    ap.add_argument("--calls", type=int, default=3, help="calls per compiled function (3)")
    ap.add_argument("--pool", type=int, default=16, help="distinct functions (16)")
    ap.add_argument("--backend", default=None, help="numpy or c (default: symgrad's choice)")
    ap.add_argument("--kill-every", type=float, default=2.0, help="mean seconds between kills")
    ap.add_argument("--janitor-every", type=float, default=3.0, help="seconds between clear/prune")
    ap.add_argument("--max-size", default="200K", help="prune's bound (200K)")
    ap.add_argument("--time-limit", type=float, default=110.0, help="stop after this (110 s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=None, help="default: a fresh temp dir")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--log", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return 0

    own_dir = args.cache_dir is None
    root = args.cache_dir or Path(tempfile.mkdtemp(prefix="symgrad-soak-")) / "cache"
    logs = Path(tempfile.mkdtemp(prefix="symgrad-soak-logs-"))
    env = {**os.environ, "SYMGRAD_CACHE_DIR": str(root), "PYTHONPATH": str(REPO)}
    env.pop("SYMGRAD_CACHE_MAX_SIZE", None)
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    lock = threading.Lock()
    live: dict[int, tuple[subprocess.Popen[bytes], Path, int]] = {}  # slot -> proc, log, quota
    stats = {"kills": 0, "clears": 0, "prunes": 0, "peak": 0, "janitor_errors": 0}
    done = threading.Event()
    seq = iter(range(10**9))

    def start(slot: int, quota: int) -> None:
        log = logs / f"w{slot}-{next(seq)}.jsonl"
        cmd = [sys.executable, __file__, "--worker", "--log", str(log)]
        cmd += ["--compiles", str(quota), "--calls", str(args.calls), "--pool", str(args.pool)]
        cmd += ["--seed", str(rng.randrange(2**31))]
        if args.backend:
            cmd += ["--backend", args.backend]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        live[slot] = (proc, log, quota)

    def finished(log: Path) -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    def killer() -> None:
        while not done.wait(rng.expovariate(1.0 / args.kill_every) if args.kill_every else 1e9):
            with lock:
                running = [s for s, (p, _, _) in live.items() if p.poll() is None]
                if not running:
                    continue
                slot = rng.choice(running)
                proc, log, quota = live[slot]
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                stats["kills"] += 1
                left = quota - finished(log)
                if left > 0:
                    start(slot, left)

    def janitor() -> None:
        turn = 0
        while not done.wait(args.janitor_every):
            action = ["clear"] if turn % 2 == 0 else ["prune", "--max-size", args.max_size]
            turn += 1
            r = subprocess.run(
                [sys.executable, "-m", "symgrad.cli", "cache", *action],
                env=env,
                capture_output=True,
                timeout=120,
            )
            stats["clears" if action[0] == "clear" else "prunes"] += 1
            stats["janitor_errors"] += int(r.returncode != 0)

    def sampler() -> None:
        while not done.wait(0.25):
            if root.is_dir():
                stats["peak"] = max(stats["peak"], _cache_bytes(root))

    with lock:
        for slot in range(args.procs):
            start(slot, args.compiles)
    threads = [threading.Thread(target=t, daemon=True) for t in (killer, janitor, sampler)]
    for t in threads:
        t.start()
    timed_out = False
    while True:
        with lock:
            if all(p.poll() is not None for p, _, _ in live.values()):
                break
            if time.monotonic() - t0 > args.time_limit:
                timed_out = True
                for p, _, _ in live.values():
                    if p.poll() is None:
                        p.send_signal(signal.SIGKILL)
                break
        time.sleep(0.1)
    done.set()
    for t in threads:
        t.join(timeout=150)
    for p, _, _ in live.values():
        p.wait()
    elapsed = time.monotonic() - t0

    rows = [
        json.loads(line) for log in logs.glob("*.jsonl") for line in log.read_text().splitlines()
    ]
    sys.path.insert(0, str(REPO))
    os.environ["SYMGRAD_CACHE_DIR"] = str(root)
    from symgrad.runtime import cache
    from symgrad.runtime.cache import lock as cache_lock

    entries, corrupt = _corrupt_entries(root) if root.is_dir() else (0, 0)
    files_before, held = cache_lock.held(root / "locks")
    cache.clear()  # what a user runs: it sweeps the lock files of killed holders
    files_after, held_after = cache_lock.held(root / "locks")
    errors = [r["error"] for r in rows if r["error"]]
    backends = sorted({r.get("backend", "?") for r in rows if not r["error"]})
    report = [
        ("processes x compiles", f"{args.procs} x {args.compiles} (pool {args.pool})"),
        ("backend(s)", ", ".join(backends) or "-"),
        ("elapsed", f"{elapsed:.1f} s" + (" (time limit reached)" if timed_out else "")),
        ("compiles finished", len(rows)),
        ("calls", sum(r["calls"] for r in rows)),
        ("kill -9", stats["kills"]),
        ("cache clear / prune runs", f"{stats['clears']} / {stats['prunes']}"),
        ("**wrong results**", sum(r["wrong"] for r in rows)),
        ("failed compiles (lost entries)", len(errors)),
        ("**entries refused while running**", sum(r["refused"] for r in rows)),
        ("**corrupt entries at the end**", f"{corrupt} of {entries}"),
        ("lock files left by killed holders", files_before),
        ("**stale locks** (held with no process left)", held),
        ("lock files after `cache clear`", f"{files_after} ({held_after} held)"),
        ("peak cache size", f"{stats['peak'] / 1024:.0f} KiB"),
    ]
    print("| measure | value |\n|---|---|")
    for name, value in report:
        print(f"| {name} | {value} |")
    for e in sorted(set(errors))[:5]:
        print(f"\nfailed compile: {e}", file=sys.stderr)
    if own_dir:
        shutil.rmtree(root.parent, ignore_errors=True)
    shutil.rmtree(logs, ignore_errors=True)
    bad = (
        sum(r["wrong"] for r in rows)
        + corrupt
        + held
        + files_after
        + sum(r["refused"] for r in rows)
        + len(errors)
    )
    return 1 if bad or timed_out else 0


if __name__ == "__main__":
    sys.exit(main())
