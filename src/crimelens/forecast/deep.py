"""``deep``: a small LSTM over each cell's recent history (PyTorch on CPU, ``[deep]`` extra).

Each cell's last ``seq_periods`` period counts, with the counts of its ring of 8 neighbours,
are read by a one-layer LSTM (Hochreiter & Schmidhuber 1997, *Neural Computation* 9); its last
hidden state, with the cell's long-run log rate, gives the log of the expected count in the
next window, trained with the Poisson log-likelihood on rolling origins inside the training
data (each origin sees only the periods before it). The design follows the recurrent crime
forecasters of Wang et al. (2017, "Deep learning for real-time crime forecasting", NOLTA) and
Stec & Klabjan (2018, "Forecasting crime with deep learning", arXiv:1806.01486), cut down to
run on a laptop CPU. Install with ``pip install 'crimelens[deep]'``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from crimelens.exceptions import require_extra
from crimelens.forecast.base import Forecaster
from crimelens.forecast.gbm import candidate_cells, fallback_rate
from crimelens.forecast.gbm_features import _ring_stack
from crimelens.forecast.history import FloatArray, History, parse_horizon
from crimelens.geo.grid import SquareGrid

F32 = npt.NDArray[np.float32]


class DeepForecaster(Forecaster):
    """LSTM on per-cell sequences of period counts (cell and neighbour ring).

    Parameters
    ----------
    horizon : str or float
        Window the model is trained for (``"7d"``); other horizons are scaled.
    seq_periods : int
        Length of the input sequence in periods (default 26).
    hidden : int
        LSTM hidden units (default 16).
    train_days : float
        Span of training origins (default 364 days).
    max_origins : int
        Training origins, evenly spaced (default 8).
    zero_sample : float
        Share of zero-target sequences kept (reweighted).
    epochs : int
        Passes over the training sequences.
    batch_size : int
    learning_rate : float
    long_days : float
        Window of the long-run rate input (default 730 days).
    n_jobs : int
        Torch CPU threads.
    random_state : int
        Seed of initialisation, sampling and shuffling.
    cell_size : float
    grid : SquareGrid, optional
    """

    name = "deep"

    def __init__(self, *, horizon: str | float = "7d", seq_periods: int = 26, hidden: int = 16,
                 train_days: float = 364.0, max_origins: int = 8, zero_sample: float = 0.25, epochs: int = 3,
                 batch_size: int = 1024, learning_rate: float = 0.01, long_days: float = 730.0, n_jobs: int = 1,
                 random_state: int = 0, cell_size: float = 200.0, grid: SquareGrid | None = None) -> None:
        self.horizon = horizon
        self.seq_periods = seq_periods
        self.hidden = hidden
        self.train_days = train_days
        self.max_origins = max_origins
        self.zero_sample = zero_sample
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.long_days = long_days
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.cell_size = cell_size
        self.grid = grid

    def _inputs(self, counts: F32, rings: F32, long_cum: npt.NDArray[np.float64], cells: Any, j: int,
                long_p: int) -> tuple[F32, F32]:
        """Sequences ``(cells, seq, 2)`` (oldest first, log1p) and the long-run log rate for origin ``j``."""
        s = int(self.seq_periods)
        seq = np.stack([counts[cells, j: j + s], rings[cells, j: j + s]], axis=2)[:, ::-1, :]
        end = min(j + long_p, counts.shape[1])
        rate = (long_cum[cells, end] - long_cum[cells, j]) / max(end - j, 1)
        return np.log1p(seq).astype(np.float32), np.log(rate + 0.01).astype(np.float32)[:, None]

    def _fit(self, history: History) -> None:
        require_extra("torch", "deep")
        import torch

        period = parse_horizon(self.horizon)
        torch.manual_seed(int(self.random_state))
        torch.set_num_threads(max(1, int(self.n_jobs)))
        rng = np.random.default_rng(self.random_state)
        long_p = max(1, round(self.long_days / period))
        n_max = max(1, int(min(self.train_days, history.span_days - period) // period))
        origins = sorted({round(v) for v in np.linspace(1, n_max, max(1, min(self.max_origins, n_max)))})
        n_periods = max(origins) + max(int(self.seq_periods), long_p) + 1
        counts = history.periods(period, n_periods)
        rings = _ring_stack(counts, history.grid, 1).astype(np.float32)
        long_cum = np.concatenate([np.zeros((counts.shape[0], 1)), np.cumsum(counts, axis=1, dtype=np.float64)], 1)
        self.cells_ = candidate_cells(history, max_age=self.long_days, neighbours=False)
        xs, rs, ys = [], [], []
        for j in origins:
            x, r = self._inputs(counts, rings, long_cum, self.cells_, j, long_p)
            xs.append(x)
            rs.append(r)
            ys.append(counts[self.cells_, j - 1])
        x_all, r_all, y_all = np.concatenate(xs), np.concatenate(rs), np.concatenate(ys)
        frac = float(np.clip(self.zero_sample, 1e-3, 1.0))
        keep = (y_all > 0) | (rng.random(len(y_all)) < frac)
        w_all = np.where(y_all[keep] > 0, 1.0, 1.0 / frac).astype(np.float32)
        self.period_days_ = period
        self.n_train_rows_ = int(keep.sum())
        if self.n_train_rows_ < int(self.batch_size) // 4 or not (y_all[keep] > 0).any():
            self.state_dict_ = None  # too little history to train on: the last year's rate
            self.rate_ = fallback_rate(history, period)
            return
        net = _Net(int(self.hidden))
        opt = torch.optim.Adam(net.parameters(), lr=float(self.learning_rate))
        tx, tr = torch.from_numpy(x_all[keep].copy()), torch.from_numpy(r_all[keep])
        ty, tw = torch.from_numpy(y_all[keep].astype(np.float32)), torch.from_numpy(w_all)
        gen = torch.Generator().manual_seed(int(self.random_state))
        net.train()
        for _ in range(int(self.epochs)):
            order = torch.randperm(len(ty), generator=gen)
            for start in range(0, len(ty), int(self.batch_size)):
                b = order[start: start + int(self.batch_size)]
                log_mu = net(tx[b], tr[b])
                loss = (tw[b] * (torch.exp(log_mu) - ty[b] * log_mu)).sum() / tw[b].sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        x0, r0 = self._inputs(counts, rings, long_cum, self.cells_, 0, long_p)
        with torch.no_grad():
            pred = torch.exp(net(torch.from_numpy(x0.copy()), torch.from_numpy(r0))).numpy()
        rate = np.zeros(history.grid.n_cells)
        rate[self.cells_] = pred
        self.rate_ = rate
        self.state_dict_ = {k: v.detach().clone() for k, v in net.state_dict().items()}

    def _score(self, history: History, horizon_days: float) -> FloatArray:
        return np.asarray(self.rate_ * (horizon_days / self.period_days_), dtype=np.float64)


def _Net(hidden: int) -> Any:
    """The LSTM regressor (built here so importing this module does not import torch)."""
    import torch
    from torch import nn

    class Net(nn.Module):  # type: ignore[misc]  # torch is untyped under ignore_missing_imports
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(input_size=2, hidden_size=hidden, batch_first=True)
            self.head = nn.Linear(hidden + 1, 1)
            nn.init.zeros_(self.head.weight)
            with torch.no_grad():
                self.head.weight[0, hidden] = 1.0

        def forward(self, seq: Any, long_rate: Any) -> Any:
            _, (h, _) = self.lstm(seq)
            return self.head(torch.cat([h[-1], long_rate], dim=1)).squeeze(1)

    return Net()
