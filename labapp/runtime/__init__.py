"""The notebooks' side: the lab registry (labs), a lab's setup cell and the guard
that holds its other cells until it ran (lab), its workspace (workspace; starter/
is what a workspace starts from), self-checks, diagrams, and the labs' notebooks
wherever the kit is installed (notebooks)."""
