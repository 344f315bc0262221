"""Planning a study: the planner (:mod:`.planner`) and which runs train together (:mod:`.packs`), from run keys
(:mod:`widthvsprune.keys`) and statuses (:mod:`widthvsprune.status`).

Pure: no framework, no I/O.
"""
