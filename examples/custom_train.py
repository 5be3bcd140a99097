"""Your own training code as an HPO trial: a small torch MLP on scikit-learn's digits.

The study spec names this function as ``train.entrypoint: examples.custom_train:train``
(see ``examples/custom-trainable.yaml`` and the README section "Bring your own training
code"). A worker imports this module and calls ``train(params, reporter)`` once per trial:

* ``params`` holds the trial's parameters (searched ones merged over ``train.params``);
* ``reporter.report(epoch, **metrics)`` sends one epoch's metrics to the server and
  answers True when the trial must stop (pruned by ASHA / the median rule, study
  stopped, worker shutting down): then return;
* ``reporter.checkpoint_dir`` is this trial's folder in the artifact store: save there
  *before* reporting the epoch, and resume from it when ``reporter.resume_step`` is set
  (a retried trial, or a configuration ASHA promoted to a bigger budget).

Runs on CPU in well under a second per epoch; no downloads (digits ships inside
scikit-learn).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

CHECKPOINT = "model.pt"


def _data(device: torch.device) -> tuple[torch.Tensor, ...]:
    """Digits scaled to [0, 1], split 80/20 the same way for every trial."""
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x / 16.0, y, test_size=0.2, random_state=0, stratify=y
    )
    floats, labels = torch.float32, torch.long
    return (
        torch.tensor(x_train, dtype=floats, device=device),
        torch.tensor(y_train, dtype=labels, device=device),
        torch.tensor(x_val, dtype=floats, device=device),
        torch.tensor(y_val, dtype=labels, device=device),
    )


def _save(path: Path, state: dict[str, Any]) -> None:
    # Write then rename: a worker killed mid-write never leaves a torn checkpoint.
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(params: dict[str, Any], reporter: Any) -> dict[str, float] | None:
    """Train for ``reporter.epochs`` epochs, reporting ``val_accuracy``, ``val_loss`` and
    ``train_loss`` after each; returns the final metrics when there was nothing left to
    train (a retry that starts after the last epoch), else None (the last report counts).

    Parameters read (all optional): ``lr``, ``hidden``, ``dropout``, ``batch_size``,
    ``weight_decay``.
    """
    device = torch.device(reporter.device)
    lr = float(params.get("lr", 1e-2))
    hidden = int(params.get("hidden", 64))
    dropout = float(params.get("dropout", 0.0))
    batch_size = int(params.get("batch_size", 64))
    weight_decay = float(params.get("weight_decay", 0.0))

    x_train, y_train, x_val, y_val = _data(device)
    model = nn.Sequential(
        nn.Linear(x_train.shape[1], hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, 10),
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()

    path = reporter.checkpoint_dir / CHECKPOINT
    start, last = 1, None
    if reporter.resume_step is not None and path.exists():
        state = torch.load(path, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, last = state["epoch"] + 1, state["metrics"]
    if start > reporter.epochs:
        return last  # already trained to this trial's budget: the stored result counts

    for epoch in range(start, reporter.epochs + 1):
        model.train()
        # Seeded per epoch: a resumed trial shuffles exactly as an uninterrupted one.
        order = torch.randperm(
            len(x_train), generator=torch.Generator().manual_seed(reporter.seed + epoch)
        ).to(device)
        total = 0.0
        for i in range(0, len(order), batch_size):
            batch = order[i : i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            metrics = {
                "train_loss": total / len(x_train),
                "val_loss": loss_fn(logits, y_val).item(),
                "val_accuracy": (logits.argmax(1) == y_val).float().mean().item(),
            }
        # Save before reporting: the report tells the server a checkpoint exists for
        # this epoch, so a retry resumes after it.
        _save(
            path,
            {
                "epoch": epoch,
                "metrics": metrics,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
            },
        )
        if reporter.report(epoch, **metrics):
            break  # pruned or stopped: the last report is the trial's value
    return None
