"""The kit's `flask` commands (cli): createdb, loaddata, the embedded server, the
room; `flask db` whose failure line says what was committed (outcome); lab 03's
production replay (replay, with gitrepo); and `flask trace` (trace), which the
`flask.commands` entry point gives every Flask app in the environment."""
