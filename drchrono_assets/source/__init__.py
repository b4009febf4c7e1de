"""What drchrono returns and what changed: fetching a resource with the fewest requests, and
the pure functions of change sets (which days a change dirties, how it merges into a day).

Below both ``assets`` and ``sync``, which build on it; it uses no Dagster API itself.
"""
