"""Training strategies: how a method shapes the loss, the gradients and the learning rates.

The loop in `trainer.loop` is the same for every method; a strategy plugs in
through the hooks of `Strategy`. The catalogue of methods (names,
hyperparameters) is `trainer.methods`.
"""
