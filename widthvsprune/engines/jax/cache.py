"""Where the jax engine keeps compiled programs between processes and runs: JAX's persistent compilation cache."""

import os

from widthvsprune import data

#: Set to ``0`` to keep compiled programs in memory only (no persistent compilation cache).
CACHE_SWITCH = "WIDTHVSPRUNE_COMPILATION_CACHE"

#: A folder of the user's own for the compilation cache.
CACHE_FOLDER = "WIDTHVSPRUNE_JAX_CACHE"

#: The compilation cache's size: beyond it, the least recently used programs are removed.
CACHE_BYTES = 1 << 30


def compilation_cache_dir(environ=None):
    """Where this engine keeps compiled programs between processes and runs, or ``None`` for nowhere.

    JAX's persistent compilation cache, in ``$WIDTHVSPRUNE_JAX_CACHE`` if set,
    else ``$XDG_CACHE_HOME/widthvsprune/jax`` (``~/.cache/widthvsprune/jax``):
    a study's processes, its resumes and later studies of the same shapes
    load a program instead of compiling it again (the seed CNN workload: 12.7
    s of compiling, 2.8 s with the programs cached). ``None`` where the user
    set ``WIDTHVSPRUNE_COMPILATION_CACHE=0``, or chose JAX's own
    ``JAX_COMPILATION_CACHE_DIR`` (JAX then uses it).
    """
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_SWITCH, "1") == "0":
        return None
    if environ.get(CACHE_FOLDER):
        return environ[CACHE_FOLDER]
    if environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    return str(data.cache_home(environ) / "jax")


def use_compilation_cache(path):
    """Makes JAX keep this process's compiled programs in ``path`` (at most :data:`CACHE_BYTES`, its files locked
    while a process reads or writes them, so several processes share it). Returns whether it could."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:  # a read-only home: programs are compiled in every process, as without a cache
        return False
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # these programs compile in ~1 s
    try:
        import filelock  # noqa: F401 - with a size limit, JAX locks the cache's files (several processes share it)
    except ImportError:  # pragma: no cover - the jax extra installs it
        return True
    if "JAX_COMPILATION_CACHE_MAX_SIZE" not in os.environ:
        jax.config.update("jax_compilation_cache_max_size", CACHE_BYTES)
    return True


def use_default_cache():
    """Uses the cache :func:`compilation_cache_dir` names, if any (the jax engine's package does, when imported)."""
    path = compilation_cache_dir()
    if path is not None:
        use_compilation_cache(path)
