# Every IPython kernel of the kit's venv (`make venv` copies this file to
# .venv/etc/ipython/, IPython's config folder for its environment): in a folder
# of labs, a lab's cells wait for its setup cell (labapp.runtime.lab's guard).
c = get_config()  # noqa: F821 (IPython's config loader provides it)
c.InteractiveShellApp.extensions = ["labapp.runtime.lab"]
