"""A documented synthetic generator of service metrics before failures (and in healthy times).

Each *episode* is one service's window of ``n_points`` samples, one every ``step_minutes`` minutes,
of the seven core metrics (see ``models.risk_features.METRICS``), ending at the moment the model
is asked. Every service has its own baseline (drawn per episode), a daily cycle and noise.

Scenario types (``SCENARIOS``) and what they do to the metrics as the failure approaches
(``stress`` rises from 0 to 1 at the failure time):

- ``memory_leak``: memory climbs linearly towards 97-100 %; near the end garbage collection pauses
  raise CPU and response time.
- ``cpu_saturation``: CPU rises towards 95-100 %; response time and then errors rise with the queue.
- ``disk_filling``: disk usage grows steadily to 96-100 %; writes fail near the end (errors).
- ``latency_cascade``: a dependency slows down: network latency grows exponentially, response
  time follows, connections pile up, then timeouts (errors).
- ``connection_exhaustion``: connections rise to the pool limit, requests queue (response time),
  then are refused (errors); CPU stays moderate.
- ``normal``: healthy service, including hard negatives: busy hours (high but stable CPU),
  short benign spikes (a deploy, a cron job), a large but stable disk, noisy error counts.

Labels: 1 when the failure comes within ``horizon_minutes`` (default 60) after the window's end;
0 for healthy episodes and for failure episodes still more than three horizons away (early drift,
not yet dangerous). Lead times between one and three horizons are not generated, so labels are
not ambiguous by construction. A few imminent failures (4 %) show no sign in these metrics at all
(a bad deploy, a dependency), as in real life. Each episode also carries a time stamp (``at``, minutes since the
start of the simulation) so models can be validated on a time-ordered split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.risk_features import METRICS

__all__ = ["SCENARIOS", "FAILURES", "Episode", "generate", "generate_episode"]

FAILURES: tuple[str, ...] = ("memory_leak", "cpu_saturation", "disk_filling", "latency_cascade",
                             "connection_exhaustion")
SCENARIOS: tuple[str, ...] = ("normal",) + FAILURES
NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)


@dataclass(frozen=True)
class Episode:
    """One generated window: metric name -> samples (oldest first), its label and scenario."""

    scenario: str
    label: int
    lead_minutes: float  # time from the window's end to the failure (inf for healthy episodes)
    at: float  # minutes since the start of the simulation (for time-ordered splits)
    minutes: NDArray[np.float64]
    series: dict[str, NDArray[np.float64]]

    def snapshot(self) -> dict[str, float]:
        """The last sample of every metric."""
        return {k: float(v[-1]) for k, v in self.series.items()}


def _baseline(rng: np.random.Generator) -> dict[str, float]:
    return {"cpu_usage": rng.uniform(10, 55), "memory_usage": rng.uniform(25, 65),
            "disk_usage": rng.uniform(15, 70), "network_latency_ms": rng.lognormal(np.log(15), 0.6),
            "error_count": rng.uniform(0, 3), "response_time_ms": rng.lognormal(np.log(120), 0.5),
            "active_connections": rng.lognormal(np.log(150), 0.8), "pool": rng.choice([256, 512, 1000, 2000])}


def _ramp(stress: NDArray[np.float64], start: float, end: float, power: float = 1.0) -> NDArray[np.float64]:
    return start + (end - start) * np.clip(stress, 0, 1) ** power


def generate_episode(rng: np.random.Generator, scenario: str, *, lead_minutes: float, n_points: int = 36,
                     step_minutes: float = 5.0, at: float = 0.0, horizon_minutes: float = 60.0) -> Episode:
    """One episode of ``scenario`` whose window ends ``lead_minutes`` before the failure."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    b = _baseline(rng)
    minutes = np.arange(n_points, dtype=float) * step_minutes
    clock = (at + minutes) / 1440.0 * 2 * np.pi
    daily = np.sin(clock + rng.uniform(0, 2 * np.pi))
    noise = lambda scale: rng.normal(0, scale, n_points)  # noqa: E731 - a local shorthand
    cpu = b["cpu_usage"] * (1 + 0.25 * daily) + noise(3)
    mem = b["memory_usage"] + 2 * daily + noise(1.5)
    disk = b["disk_usage"] + minutes * rng.uniform(0, 0.002) + noise(0.3)
    lat = b["network_latency_ms"] * np.exp(noise(0.15))
    resp = b["response_time_ms"] * (1 + 0.2 * daily) * np.exp(noise(0.12))
    conns = b["active_connections"] * (1 + 0.3 * daily) * np.exp(noise(0.1))
    err = rng.poisson(b["error_count"], n_points).astype(float)
    label = 0
    if scenario == "normal":
        kind = rng.choice(["plain", "busy", "spike", "bigdisk", "noisy", "bigheap"])
        if kind == "busy":
            cpu = rng.uniform(65, 90) + noise(3)
            resp = resp * 1.4
        elif kind == "spike":
            i = rng.integers(0, n_points)
            w = slice(i, min(i + int(rng.integers(1, 4)), n_points))
            cpu[w] += rng.uniform(20, 40)
            resp[w] *= rng.uniform(1.5, 3)
        elif kind == "bigdisk":
            disk = rng.uniform(75, 88) + noise(0.2)
        elif kind == "bigheap":  # a JVM or a cache that holds a large, stable heap
            mem = rng.uniform(75, 92) + noise(1.0)
        elif kind == "noisy":
            err = rng.poisson(rng.uniform(3, 20), n_points).astype(float)
        lead = float("inf")
    else:
        lead = lead_minutes
        label = int(lead_minutes <= horizon_minutes)
        if label and rng.random() < 0.04:
            # Some failures come without warning in these metrics (a bad deploy, a dependency):
            # the episode looks healthy but fails. Keeps the labels honest about what metrics can say.
            return Episode(scenario=scenario, label=1, lead_minutes=lead_minutes, at=at, minutes=minutes,
                           series=_clip({"cpu_usage": cpu, "memory_usage": mem, "disk_usage": disk,
                                         "network_latency_ms": lat, "error_count": err,
                                         "response_time_ms": resp, "active_connections": conns}))
        # The failure develops over ``span`` minutes; stress is 1 at the failure time.
        span = rng.uniform(3, 10) * horizon_minutes
        stress = np.clip(1 - (lead_minutes + minutes[-1] - minutes) / span, 0, 1)
        s = stress
        if scenario == "memory_leak":
            mem = _ramp(s, b["memory_usage"], rng.uniform(97, 100)) + noise(0.7)
            cpu = cpu + _ramp(s, 0, 25, 4)
            resp = resp * _ramp(s, 1, rng.uniform(3, 8), 4)
        elif scenario == "cpu_saturation":
            cpu = _ramp(s, b["cpu_usage"], rng.uniform(96, 100), 0.8) + noise(1.5)
            resp = resp * _ramp(s, 1, rng.uniform(4, 12), 3)
            err = err + rng.poisson(_ramp(s, 0, 40, 4))
        elif scenario == "disk_filling":
            disk = _ramp(s, b["disk_usage"], rng.uniform(97, 100)) + noise(0.3)
            err = err + rng.poisson(_ramp(s, 0, 60, 8))
            resp = resp * _ramp(s, 1, 1.5, 6)
        elif scenario == "latency_cascade":
            lat = lat * np.exp(_ramp(s, 0, np.log(rng.uniform(15, 60)), 1.5))
            resp = resp * np.exp(_ramp(s, 0, np.log(rng.uniform(6, 25)), 1.5))
            conns = conns * _ramp(s, 1, rng.uniform(2, 4), 2)
            err = err + rng.poisson(_ramp(s, 0, 50, 3))
        elif scenario == "connection_exhaustion":
            conns = _ramp(s, b["active_connections"], b["pool"] * rng.uniform(0.97, 1.0), 1.2) \
                * np.exp(noise(0.02))
            resp = resp * _ramp(s, 1, rng.uniform(3, 10), 3)
            err = err + rng.poisson(_ramp(s, 0, 80, 4))
            cpu = cpu + _ramp(s, 0, 10, 2)
    series = {"cpu_usage": cpu, "memory_usage": mem, "disk_usage": disk, "network_latency_ms": lat,
              "error_count": err, "response_time_ms": resp, "active_connections": conns}
    return Episode(scenario=scenario, label=label, lead_minutes=lead, at=at, minutes=minutes, series=_clip(series))


def _clip(series: dict[str, NDArray[np.float64]]) -> dict[str, NDArray[np.float64]]:
    return {m.name: np.clip(series[m.name], m.low, m.high) for m in METRICS}


def generate(n: int, *, seed: int = 0, scenarios: tuple[str, ...] = SCENARIOS, normal_share: float = 0.5,
             n_points: int = 36, horizon_minutes: float = 60.0) -> list[Episode]:
    """``n`` episodes in time order: ``normal_share`` healthy, the rest spread over the failure types
    in ``scenarios``; failure episodes are half imminent (positive) and half early drift (negative)."""
    rng = np.random.default_rng(seed)
    failures = [s for s in scenarios if s != "normal"]
    out: list[Episode] = []
    at = 0.0
    for _ in range(n):
        at += float(rng.exponential(30.0))
        if not failures or ("normal" in scenarios and rng.random() < normal_share):
            scen = "normal"
        else:
            scen = str(rng.choice(failures))
        if rng.random() < 0.5:
            lead = float(rng.uniform(0, horizon_minutes))
        else:
            lead = float(rng.uniform(3 * horizon_minutes, 10 * horizon_minutes))
        out.append(generate_episode(rng, scen, lead_minutes=lead, n_points=n_points, at=at,
                                    horizon_minutes=horizon_minutes))
    return out
