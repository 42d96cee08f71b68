"""What every benchmark that drives the emulator starts with: its random source (--seed), moto's opt-in
speedups (--fast-moto), and the functions' output (their JSON logs and EMF metrics) sent to --log."""

from __future__ import annotations

import argparse
import contextlib
import random
from collections.abc import Iterator

from bench import moto_speedups


@contextlib.contextmanager
def benchmark_run(args: argparse.Namespace) -> Iterator[random.Random]:
    """The run's random source; until the block ends, stdout and stderr go to `args.log`."""
    rng = random.Random(args.seed)
    if args.fast_moto:
        moto_speedups.apply()
    with (
        open(args.log, "a", encoding="utf-8") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        yield rng
