"""Hyperparameter sweeps: a search over a run's config, one Optuna study per method, driven by the server.

- `spec`: what a user asks for (`SweepCreate`) and the validated plan stored with the sweep.
- `space`: which config fields can be searched, and over what.
- `objective`: the validation number a trial is judged by.
- `study`: Optuna's side (storage on the project's database, samplers, pruners, importance).
- `driver`: the server's background thread that asks for trials as slots free up, tells the
  studies how the trials' runs ended, prunes, and reruns each method's best configuration.

Trials are ordinary runs, queued to the workers like any other; `server.store.sweeps` holds
the queries.
"""
