"""Insight routes: compact, downsampled plot data for the dashboard (and any client)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from server.auth import require

router = APIRouter(prefix="/studies", tags=["insights"], dependencies=[Depends(require("user"))])
