"""The database server: which one the app talks to (config), the kit's embedded
PostgreSQL (pgserver), creating and dropping databases and readable driver errors
(database), a named learner's databases (learners), and the background processes
started from a workspace, found again by their pidfiles (processes)."""
