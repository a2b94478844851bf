"""Deploy gate for LLM serving stacks: bring the stack up, load it, break it, judge it."""

import os

__version__ = "0.1.0"

# numpy's OpenBLAS starts one thread per core when it loads, and they spin: on 2 cores that was
# a fifth of a `harness load` run's CPU (2.3 s -> 1.8 s), taken from the stack being measured.
# The harness's statistics are small and gain nothing from BLAS threads. Only when the user has
# not set it, and only for the harness's own processes: the services it starts get the
# environment without it (`SERVICE_ENV_DROP`), so a model server keeps its own threading.
SERVICE_ENV_DROP: tuple[str, ...] = ()
if "OPENBLAS_NUM_THREADS" not in os.environ:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    SERVICE_ENV_DROP = ("OPENBLAS_NUM_THREADS",)
