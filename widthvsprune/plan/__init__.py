"""Planning a study: run keys (:mod:`.keys`), statuses (:mod:`.status`) and the planner (:mod:`.planner`).

Pure: no framework, no I/O.
"""
