"""Every query of the dashboard: the API, the worker and the command line read and write through here.

Functions take keyword arguments only (``runs.get(session=..., run_id=...)``),
never commit (the caller owns the transaction) and raise `errors.StoreError`
subclasses that say, in words, what was wrong.
"""
