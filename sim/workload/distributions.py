"""Sampling the scenario's ``Distribution`` forms with an explicit ``numpy.random.Generator``; their means,
CDFs and the probabilities of the rounded token counts that the fluid fidelity of inference uses."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from sim.workload import cache
from sim.workload.errors import MissingDataFile, TraceError
from sim.workload.files import display, open_data_file, quote, text_lines

BUILTIN_EMPIRICAL = {"philly-runtime": ("philly-runtime", "philly_runtime.csv")}
MAX_EMPIRICAL_VALUE = 1e15


def sample(dist, size: int, rng: np.random.Generator, base_dir: Path | None = None) -> np.ndarray:
    """Draw ``size`` values from a scenario ``Distribution`` (fixed, lognormal, exponential, uniform, empirical)."""
    if dist.fixed is not None:
        return np.full(size, float(dist.fixed))
    if dist.lognormal is not None:
        return dist.lognormal.median * np.exp(dist.lognormal.sigma * rng.standard_normal(size))
    if dist.exponential is not None:
        return rng.exponential(dist.exponential.mean, size)
    if dist.uniform is not None:
        return rng.uniform(dist.uniform.low, dist.uniform.high, size)
    values = empirical_values(dist.empirical, str(base_dir or ""))
    return values[rng.integers(0, len(values), size)]


def empirical_values(name: str, base_dir: str = "") -> np.ndarray:
    """Values of an empirical distribution: a built-in name or a one-column CSV with a header.

    ``philly-runtime`` is Microsoft Philly's job runtimes in seconds (83,154 values, CC-BY-4.0; see
    ``sim/workload/traces/philly-runtime/SOURCE.md``). Zero runtimes are kept: they are real jobs that
    ended at once (typically failed launches). A file's values (its first column, after the header
    line) are numbers from 0 to ``MAX_EMPIRICAL_VALUE``. The array is read-only and comes from the
    process's trace cache (``sim.workload.cache``): parsed once while the file is unchanged.
    """
    return _empirical_values(name, base_dir, cached=True)


def _empirical_values(name: str, base_dir: str = "", cached: bool = False) -> np.ndarray:
    """``empirical_values``, from the cache or (``cached=False``) parsed from the file every time."""
    path, label = _empirical_path(name, base_dir)

    def parse(handle, _label):
        values = [_empirical_value(line, label, row) for row, line in text_lines(handle, label) if row > 1]
        if not values:
            raise TraceError(f"{label}: no values")
        return np.asarray(values)

    try:
        if cached:
            return cache.load(path, ("empirical",), parse)
        with open_data_file(path) as handle:
            values = parse(handle, label)
    except MissingDataFile:
        raise MissingDataFile(f"found {quote(name)}: no such file in {display(base_dir or '.')}; accepted: "
                              f"{', '.join(BUILTIN_EMPIRICAL)} or the path of a one-column CSV file") from None
    values.setflags(write=False)
    return values


def _empirical_path(name: str, base_dir: str) -> tuple[Path, str]:
    """The file of an empirical distribution and how errors name it."""
    if name in BUILTIN_EMPIRICAL:
        folder, file = BUILTIN_EMPIRICAL[name]
        return Path(str(resources.files("sim.workload").joinpath("traces", folder, file))), f"{folder}/{file}"
    path = Path(base_dir) / name
    return path, display(path)


def empirical_stamp(dist, base_dir: Path | str | None = None) -> tuple | None:
    """The identity (path, inode, size, modification time) of a distribution's empirical file, ``None`` for
    the other forms: a cache of values derived from the file keys on it, so a changed file is read again."""
    if dist is None or dist.empirical is None:
        return None
    return cache.file_identity(_empirical_path(dist.empirical, str(base_dir or ""))[0])


empirical_values.__wrapped__ = _empirical_values  # uncached, as tests of the parser call it


def _empirical_value(line: str, label: str, row: int) -> float:
    text = line.rstrip("\r\n")
    try:
        value = float(text.split(",")[0])
    except ValueError:
        raise TraceError(f"{label}:{row}: expected a number, found {quote(text)}") from None
    if not 0 <= value <= MAX_EMPIRICAL_VALUE:  # also refuses NaN and infinities
        raise TraceError(f"{label}:{row}: expected a number from 0 to {MAX_EMPIRICAL_VALUE:g} "
                         f"(beyond any job's run time in seconds or work in samples), found {quote(text)}")
    return value


def mean(dist, base_dir: Path | None = None) -> float:
    """Mean of a scenario ``Distribution``, in closed form (the empirical form: the mean of its values).

    Log-normal: ``median · exp(sigma² / 2)``; uniform: ``(low + high) / 2``."""
    if dist.fixed is not None:
        return float(dist.fixed)
    if dist.lognormal is not None:
        return float(dist.lognormal.median * np.exp(dist.lognormal.sigma ** 2 / 2.0))
    if dist.exponential is not None:
        return float(dist.exponential.mean)
    if dist.uniform is not None:
        return (dist.uniform.low + dist.uniform.high) / 2.0
    return float(empirical_values(dist.empirical, str(base_dir or "")).mean())


def cdf(dist, x: np.ndarray, base_dir: Path | None = None) -> np.ndarray:
    """P(X <= x) of a scenario ``Distribution``, vectorised over ``x``."""
    x = np.asarray(x, dtype=np.float64)
    if dist.fixed is not None:
        return (x >= dist.fixed).astype(np.float64)
    if dist.lognormal is not None:
        median, sigma = dist.lognormal.median, dist.lognormal.sigma
        if sigma == 0:
            return (x >= median).astype(np.float64)
        z = np.log(np.maximum(x, 1e-300) / median) / (sigma * np.sqrt(2.0))
        return np.where(x > 0, 0.5 * _erfc(-z), 0.0)
    if dist.exponential is not None:
        return np.where(x > 0, -np.expm1(-np.maximum(x, 0.0) / dist.exponential.mean), 0.0)
    if dist.uniform is not None:
        low, high = dist.uniform.low, dist.uniform.high
        if high == low:
            return (x >= low).astype(np.float64)
        return np.clip((x - low) / (high - low), 0.0, 1.0)
    values = np.sort(empirical_values(dist.empirical, str(base_dir or "")))
    return np.searchsorted(values, x, side="right") / len(values)


def token_pmf(dist, base_dir: Path | None = None, tail: float = 1e-9) -> np.ndarray:
    """Probabilities of the token count ``max(1, ceil(X))`` that the request generator draws.

    Element ``k`` is P(count = k) for k = 0, 1, …, K (element 0 is always 0). K is the first power of
    two with P(X > K) < ``tail``; that last sliver of mass is put on K, so the pmf sums to 1."""
    top = 1
    while cdf(dist, np.array([float(top)]), base_dir)[0] < 1.0 - tail and top < 1 << 26:
        top *= 2
    upto = cdf(dist, np.arange(top + 1, dtype=np.float64), base_dir)
    upto[-1] = 1.0
    pmf = np.diff(upto, prepend=0.0)
    pmf[1] += pmf[0]  # counts below 1 are rounded up to 1
    pmf[0] = 0.0
    return np.maximum(pmf, 0.0)


def _erfc(z: np.ndarray) -> np.ndarray:
    """The complementary error function, vectorised, with fractional error below 1.2e-7 everywhere
    (Chebyshev fit of Numerical Recipes, 2nd ed., §6.2); numpy has none and scipy is not a dependency."""
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.5 * a)
    poly = -a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    upper = t * np.exp(poly)
    return np.where(z >= 0, upper, 2.0 - upper)
