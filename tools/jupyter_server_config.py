# JupyterLab for the labs (`make lab` passes this file with --config).
# The file browser shows the labs, solutions/ and the instructor guide. Each lab's
# workspace (notebooks/workspaces/<lab>/) is out of the listing but not locked:
# a link to it, or File > Open from Path..., opens its files.
c = get_config()  # noqa: F821 (Jupyter's config loader provides it)
c.ContentsManager.hide_globs = ["workspaces", "__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~"]
