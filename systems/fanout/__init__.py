"""Fan-out (scatter/gather with deadlines, cancellation and hedging): the Python reference system.

``service`` is the HTTP front and command line, ``gather`` the backend calls and the merged
answer, ``metrics`` the Prometheus series; the contract is in ``README.md`` next to this file.
"""
