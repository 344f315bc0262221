"""Planning a study: run keys (:mod:`.keys`), statuses (:mod:`.status`), the planner (:mod:`.planner`) and which
runs train together (:mod:`.packs`).

Pure: no framework, no I/O.
"""
