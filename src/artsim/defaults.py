"""Defaults that command options show in their help, kept where importing them is free.

``artsim COMMAND --help`` prints these defaults, so the command modules read them at import time;
their homes (:mod:`artsim.index.calibrate`, :mod:`artsim.serve.limits`) load torch, faiss or
FastAPI. They are defined here, with nothing imported, and re-exported from those modules, where
the code that uses them imports them.
"""

from __future__ import annotations

# Groups drawn by default to calibrate an index (:mod:`artsim.index.calibrate`): each gives a
# match and a distractor query, so 300 distractor queries and the 1% threshold lets about three of
# them through. Measured: 7 s for 80 groups of the demo, 86 s for 290 groups of art4apps (2 shared
# cores, other jobs running).
DEFAULT_SAMPLE = 300

# The service (:mod:`artsim.serve.limits`). Texts are cut to this many characters before any model
# work. MiniLM reads only its first 256 tokens anyway; e5-small reads all of a text in 510-token
# windows, and its time grows with the length (about 1 s per KB on 2 CPU cores), so without a cut
# one request could hold a model slot for minutes. 2,000 characters is about 400-500 tokens of
# English: one e5 window.
MAX_TEXT_CHARS = 2_000
# A request that waits longer than this for the pixel budget is answered 503 (try again later).
ADMISSION_TIMEOUT = 60.0
# The largest upload the service accepts by default (``artsim serve --max-upload-mb``).
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
