"""Inference benchmark: batched Bi-LSTM forecasts for 1 to 10,000 workloads in one call, on both engines.

Prints, in one run, for the NumPy engine (what aihpa serves with: no JAX runtime in the controller) and for the
jitted flax module: compile time per batch bucket (JAX only), steady-state latency per batch size (median of
repeats, host preprocessing included), the model's achieved GFLOP/s (matmul FLOPs counted from the model's shape),
and the machine's dense float32 matmul GFLOP/s measured now, for scale. Target: 10,000 workloads in <= 250 ms on 2
CPU cores with the default model.

    .venv/bin/python benchmarks/bench_inference.py [--model DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from aihpa.forecast.forecaster import BiLSTMForecaster, bucket_size, load_default_forecaster
from aihpa.forecast.input_pipeline import N_FEATURES


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), dtype=jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def model_flops(fc: BiLSTMForecaster, batch: int) -> float:
    """Multiply-adds x 2 of the model's matmuls for `batch` rows (gates' elementwise work not counted).

    Counted by hand because XLA's cost analysis counts a scanned loop body once, not once per time step.
    """
    cfg = fc.config
    h = cfg.hidden
    per_row = 0
    in_features = N_FEATURES
    for _ in range(cfg.layers):
        per_row += 2 * cfg.window * 2 * (in_features + h) * 4 * h  # two directions, input and recurrent kernels
        in_features = 2 * h
    head_in = 4 * h + cfg.context_features
    per_row += 2 * head_in * cfg.head_hidden + 2 * cfg.head_hidden * cfg.horizon * cfg.n_quantiles
    return float(per_row * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint dir (default: the shipped model)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    fc = load_default_forecaster() if args.model is None else BiLSTMForecaster.from_checkpoint(args.model)
    cfg = fc.config
    print(f"model {fc.version}: window {cfg.window}, hidden {cfg.hidden} x2 dirs x {cfg.layers} layers, "
          f"horizon {cfg.horizon}, {len(cfg.quantiles)} quantiles")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
          f"on {jax.devices()[0].platform}")
    peak = matmul_gflops()
    print(f"dense f32 matmul (2048^3): {peak:.1f} GFLOP/s")
    rng = np.random.default_rng(0)
    # a day of 60 s history per workload: the context the model reads, with the seasonal part
    history = rng.uniform(0.5, 2.0, size=(10_000, cfg.context)).astype(np.float32)
    end = np.full(10_000, 1.7e9)
    jitted = BiLSTMForecaster(fc.model, version=fc.version, metadata=fc.metadata, engine="jax")
    print(f"{'engine':>6} {'batch':>7} {'bucket':>7} {'compile s':>10} {'latency ms':>11} {'per workload us':>16} "
          f"{'GFLOP/s':>8} {'of matmul':>9}")
    for engine in (fc, jitted):
        for batch in (1, 100, 1_000, 10_000):
            before = engine.compilations
            t_compile = _timed(lambda b=batch, e=engine: e.predict(history[:b], end_times=end[:b], step_s=60.0))
            compiled = engine.compilations > before
            times = [
                _timed(lambda b=batch, e=engine: e.predict(history[:b], end_times=end[:b], step_s=60.0))
                for _ in range(args.repeats)
            ]
            lat = statistics.median(times)
            rows = bucket_size(batch) if engine.engine == "jax" else batch  # the JAX engine pads to its bucket
            gf = model_flops(fc, rows) / lat / 1e9
            print(f"{engine.engine:>6} {batch:>7} {rows:>7} {t_compile if compiled else 0.0:>10.2f} "
                  f"{lat * 1e3:>11.1f} {lat / batch * 1e6:>16.1f} {gf:>8.1f} {gf / peak:>8.0%}")
    print("target: 10,000 workloads <= 250 ms on 2 CPU cores")


if __name__ == "__main__":
    main()
