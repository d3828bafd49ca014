"""A workshop on one server: a role of their own for each learner (roles), and the
instructor's live view of who passed which exercise (progress)."""
