"""CPU-bound work behind a pool: the kernels every implementation runs, and the Python pools.

``kernels`` is the work, ``pools`` the Python pools (also timed in process, without a network).
The Python service is ``service`` (command line, HTTP front, start-up and shutdown), ``request``
(a /work request's fields, validated), ``admission`` (the bounded queue and the three ways a
task runs) and ``metrics``; the contract is in ``README.md`` next to this file.
"""
