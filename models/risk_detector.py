"""Per-series anomaly detector with dynamic, seasonality-aware thresholds.

``SeriesDetector`` learns what is normal for ONE metric series from that series' own history:
a robust level (median and MAD) per time-of-day slot (and per weekday x hour when the history is
long enough), the usual size of its changes, and the distribution of its values. On new points it
gives a dynamic threshold band (the seasonal median +- ``k`` robust deviations), a per-point
anomaly score, anomaly flags (outside the band) and early warnings (inside the band but drifting
towards it: a sustained trend or a rise in volatility).

The per-point ``features`` (scale-free) feed the NAB evaluation (``models.risk_eval``); on the short
windows of the risk card (no seasonality) the band's width is the sample-to-sample noise. The risk
model's own window features (``models.risk_features.window_vector``) use the same median +- 3.5
robust deviations, vectorised over metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

__all__ = ["SeriesDetector", "DetectorOutput", "DETECTOR_FEATURES", "rolling_zscore"]

F = NDArray[np.float64]
_EPS = 1e-9

DETECTOR_FEATURES: tuple[str, ...] = (
    "seasonal_z", "local_z", "level_extremity", "change_z", "volatility_ratio", "trend_z",
    "max_z_1h", "max_z_6h", "max_z_24h", "mean_z_6h", "frac_out_24h", "drift_24h", "vol_ratio_6h",
)


@dataclass(frozen=True)
class DetectorOutput:
    """Per-point results for a scored window."""

    lower: F
    upper: F
    score: F
    anomaly: NDArray[np.bool_]
    warning: NDArray[np.bool_]
    features: F  # (n, len(DETECTOR_FEATURES))


def _as_times(timestamps: object, n: int) -> pd.DatetimeIndex:
    if timestamps is None:
        return pd.date_range("2000-01-01", periods=n, freq="5min")
    return pd.DatetimeIndex(pd.to_datetime(timestamps))  # type: ignore[arg-type]


def _mad(x: F) -> float:
    med = float(np.median(x))
    return float(np.median(np.abs(x - med))) * 1.4826


class SeriesDetector(BaseEstimator):  # type: ignore[misc]
    """Dynamic thresholds learned from one series' history.

    Args:
        k: width of the threshold band in robust standard deviations.
        step_minutes: sampling step used to size the rolling windows (guessed from the data if 0).
    """

    def __init__(self, k: float = 3.5, step_minutes: float = 0.0) -> None:
        self.k = k
        self.step_minutes = step_minutes

    def fit(self, values: object, timestamps: object = None) -> SeriesDetector:
        """Learn the seasonal profile and scales from the series' history (at least 2 points)."""
        x = np.asarray(values, dtype=float)
        if x.ndim != 1 or x.size < 2:
            raise ValueError("a series needs at least 2 points to learn its normal range")
        if not np.all(np.isfinite(x)):
            raise ValueError("the series has NaN or infinite values")
        t = _as_times(timestamps, x.size)
        step = self.step_minutes or max(float(np.median(np.diff(t.asi8)) / 6e10), 1.0) if x.size > 1 else 5.0
        self.step_minutes_ = float(step)
        self.median_ = float(np.median(x))
        self.scale_ = max(_mad(x), float(np.std(x)) * 0.1, abs(self.median_) * 1e-3, _EPS)
        self.sorted_ = np.sort(x)
        dx = np.diff(x)
        self.change_scale_ = max(_mad(dx), float(np.std(dx)) * 0.1, self.scale_ * 1e-3, _EPS)
        span_days = (t[-1] - t[0]).total_seconds() / 86400.0
        # Seasonality: weekday x hour with two or more weeks of history, hour of day with two or
        # more days, none otherwise (a flat profile).
        self.season_ = "week" if span_days >= 14 else ("day" if span_days >= 2 else "none")
        slots = self._slots(t)
        self.slot_median_ = np.full(self._n_slots(), self.median_)
        # Without seasonality (short windows) the band's width is the sample-to-sample noise, so a
        # steady climb (a leak, a filling disk) leaves its own band instead of widening it.
        noise = _mad(dx) / np.sqrt(2.0) if dx.size >= 2 else self.scale_
        flat_scale = max(noise, abs(self.median_) * 1e-2, 1e-6) if self.season_ == "none" else self.scale_
        self.slot_scale_ = np.full(self._n_slots(), flat_scale)
        df = pd.DataFrame({"s": slots, "x": x})
        for s, grp in df.groupby("s"):
            v = grp["x"].to_numpy()
            if v.size >= 3 and self.season_ != "none":
                self.slot_median_[int(s)] = float(np.median(v))
                self.slot_scale_[int(s)] = max(_mad(v), self.scale_ * 0.25)
        self.win_ = {name: max(int(round(minutes / self.step_minutes_)), 2)
                     for name, minutes in (("1h", 60), ("6h", 360), ("24h", 1440))}
        self.history_ = x[-self.win_["24h"]:].copy()
        self.history_times_ = t[-self.win_["24h"]:].copy()
        return self

    def _n_slots(self) -> int:
        return {"week": 168, "day": 24, "none": 1}[self.season_]

    def _slots(self, t: pd.DatetimeIndex) -> NDArray[np.int64]:
        if self.season_ == "week":
            return np.asarray(t.dayofweek * 24 + t.hour, dtype=np.int64)
        if self.season_ == "day":
            return np.asarray(t.hour, dtype=np.int64)
        return np.zeros(len(t), dtype=np.int64)

    def band(self, timestamps: object, n: int) -> tuple[F, F, F]:
        """Seasonal median and the (lower, upper) dynamic threshold for each point."""
        check_is_fitted(self, "slot_median_")
        s = self._slots(_as_times(timestamps, n))
        med, sc = self.slot_median_[s], self.slot_scale_[s]
        return med, med - self.k * sc, med + self.k * sc

    def score(self, values: object, timestamps: object = None, warm_start: bool = True) -> DetectorOutput:
        """Score new points (in time order). With ``warm_start`` the rolling statistics continue
        from the end of the fitted history, so the first new points are scored in context."""
        check_is_fitted(self, "slot_median_")
        x = np.asarray(values, dtype=float)
        if x.ndim != 1 or x.size < 1 or not np.all(np.isfinite(x)):
            raise ValueError("values must be a non-empty 1-D series of finite numbers")
        n = x.size
        med, lower, upper = self.band(timestamps, n)
        slot_scale = (upper - med) / self.k
        seasonal_z = (x - med) / slot_scale
        prefix = self.history_ if warm_start else np.empty(0)
        full = np.concatenate([prefix, x])
        off = prefix.size
        s = pd.Series(full)
        w1, w6, w24 = self.win_["1h"], self.win_["6h"], self.win_["24h"]
        # Local level: the median of the previous 6 hours (excluding the point itself).
        roll_med = s.shift(1).rolling(w6, min_periods=2).median().to_numpy()[off:]
        roll_med = np.where(np.isnan(roll_med), self.median_, roll_med)
        local_z = (x - roll_med) / self.scale_
        q = np.searchsorted(self.sorted_, x, side="right") / max(self.sorted_.size, 1)
        level_extremity = np.abs(2.0 * q - 1.0)
        dfull = np.diff(full, prepend=full[0])
        change_z = np.abs(dfull[off:]) / self.change_scale_
        vol = s.diff().rolling(w1, min_periods=2).std().to_numpy()[off:]
        vol_ratio = np.nan_to_num(vol / self.change_scale_, nan=1.0)
        vol6 = s.diff().rolling(w6, min_periods=2).std().to_numpy()[off:]
        vol_ratio_6h = np.nan_to_num(vol6 / self.change_scale_, nan=1.0)
        mean_1h = s.rolling(w1, min_periods=1).mean().to_numpy()
        prev = pd.Series(mean_1h).shift(w6).to_numpy()
        trend_z = np.nan_to_num((mean_1h - prev) / self.scale_, nan=0.0)[off:]
        zfull = np.abs(np.concatenate([np.zeros(off), seasonal_z]))
        if off:
            hmed, _, hup = self.band(self.history_times_, off)
            zfull[:off] = np.abs((prefix - hmed) / ((hup - hmed) / self.k))
        zs = pd.Series(np.minimum(zfull, 50.0))
        max_z_1h = zs.rolling(w1, min_periods=1).max().to_numpy()[off:]
        max_z_6h = zs.rolling(w6, min_periods=1).max().to_numpy()[off:]
        max_z_24h = zs.rolling(w24, min_periods=1).max().to_numpy()[off:]
        mean_z_6h = zs.rolling(w6, min_periods=1).mean().to_numpy()[off:]
        frac_out = (zs > self.k).astype(float).rolling(w24, min_periods=1).mean().to_numpy()[off:]
        level24 = s.rolling(w24, min_periods=1).mean().to_numpy()[off:]
        drift_24h = (level24 - self.median_) / self.scale_
        feats = np.column_stack([
            np.clip(seasonal_z, -50, 50), np.clip(local_z, -50, 50), level_extremity, np.minimum(change_z, 50),
            np.minimum(vol_ratio, 50), np.clip(trend_z, -50, 50), max_z_1h, max_z_6h, max_z_24h, mean_z_6h,
            frac_out, np.clip(drift_24h, -50, 50), np.minimum(vol_ratio_6h, 50),
        ])
        anomaly = (x > upper) | (x < lower)
        score = np.abs(seasonal_z) / self.k
        warning = ~anomaly & ((np.abs(trend_z) > self.k * 0.5) | (vol_ratio > 3.0) | (score > 0.75))
        return DetectorOutput(lower=lower, upper=upper, score=score, anomaly=anomaly, warning=warning,
                              features=feats)


def rolling_zscore(values: object, window: int = 48) -> F:
    """The baseline: |x - rolling mean| / rolling std over the previous ``window`` points."""
    s = pd.Series(np.asarray(values, dtype=float))
    mu = s.shift(1).rolling(window, min_periods=2).mean()
    sd = s.shift(1).rolling(window, min_periods=2).std()
    return np.nan_to_num(((s - mu).abs() / (sd + _EPS)).to_numpy(), nan=0.0)

