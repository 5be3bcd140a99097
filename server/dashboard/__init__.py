"""The web dashboard: server-rendered pages (Jinja2) plus a little JavaScript.

Pages: ``/`` (studies, and a form to create one), ``/studies/{name}`` (header, controls,
plots, trials table), ``/studies/{name}/trials/{number}``, ``/workers`` and ``/login``.
Fragments under ``/ui/...`` are the same templates' parts, re-fetched by the pages when
the compact JSON they poll (``GET /api/v1/studies/{name}``, ``/api/v1/studies``,
``/api/v1/workers``) says something changed. Plots draw from the public insight
endpoints (``/history``, ``/curves``, ``/importance``) with plotly.js served from the
``plotly`` package's bundled copy: nothing is loaded from a CDN.

With a token configured on the server, every page but ``/login`` redirects there; a
login stores the token in an HttpOnly, SameSite=Strict cookie that the API accepts.
"""

from __future__ import annotations

from server.dashboard.pages import install

__all__ = ["install"]
