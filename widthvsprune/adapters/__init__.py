"""The one place for each library's private names.

The project drives its dependencies through their public APIs. Where a
public API does not reach far enough, the private name it needs lives in the
adapter module of its library, and nowhere else:

- :mod:`widthvsprune.adapters.keras_tuner`: an oracle's folder, trial
  files, retry queue, random state and Bayesian optimization's parts;
- :mod:`widthvsprune.adapters.sklearn`: a fitted Gaussian process's target
  normalization;
- :mod:`widthvsprune.adapters.keras`: Keras 3's deferred variable
  initialization and global seed (the ``jax`` engine), and its lazy
  TensorFlow module (a config serialized without importing TensorFlow).

Each adapter lists its private names, and ``missing()`` says which of them
the installed release lacks; a test fails naming the library's version when
one disappears.
"""
