"""Mermaid diagrams drawn from the real thing, for the labs' Markdown output.

    from labapp import diagrams
    diagrams.revision_graph("migrations")   # the revisions in migrations/versions/
    diagrams.er_diagram(lab06.url)          # the live schema of the lab's database

JupyterLab renders a ```mermaid block in Markdown output as a diagram. Both
diagrams come out sorted, so the same repository and schema always give the
same text (and nbval can compare it).
"""
import re

import sqlalchemy as sa
from alembic.script import ScriptDirectory

FENCE = "```"


def _markdown(mermaid):
    from IPython.display import Markdown  # IPython: only when a notebook shows it

    return Markdown(f"{FENCE}mermaid\n{mermaid}\n{FENCE}")


def _label(text):
    """Text for a quoted Mermaid label (no quotes, no line breaks)."""
    return " ".join(str(text).split()).replace('"', "#quot;")


def _node(revision):
    return "r_" + re.sub(r"\W", "_", revision)


def revision_mermaid(migrations="migrations"):
    """Mermaid flowchart of the revisions in `migrations/`: base at the top,
    an arrow from each revision to the one that builds on it; branch points,
    merge points and heads are marked."""
    scripts = ScriptDirectory(str(migrations))
    revisions = sorted(scripts.walk_revisions(), key=lambda s: s.revision)
    heads = set(scripts.get_heads())
    lines = ["flowchart TB"]
    for script in revisions:
        text = f"{script.revision}: {script.doc}"
        marks = [m for m, on in (("head", script.revision in heads),
                                 ("merge", script.is_merge_point),
                                 ("branch point", script.is_branch_point)) if on]
        if marks:
            text += f" ({', '.join(marks)})"
        shape = ('{{"%s"}}' if script.is_merge_point else '["%s"]') % _label(text)
        lines.append(f"    {_node(script.revision)}{shape}")
    for script in revisions:
        for parent in sorted(script._all_down_revisions):
            lines.append(f"    {_node(parent)} --> {_node(script.revision)}")
    if heads:
        lines.append("    classDef head stroke-width:3px")
        lines.append(f"    class {','.join(_node(h) for h in sorted(heads))} head")
    return "\n".join(lines)


def revision_graph(migrations="migrations"):
    """The revision graph of `migrations/`, as Markdown JupyterLab draws."""
    return _markdown(revision_mermaid(migrations))


def _type(column_type, dialect):
    """A column's type as one Mermaid word: varchar(120), numeric(12_2), dealcurrency."""
    if isinstance(column_type, sa.Enum) and column_type.name:
        return column_type.name
    text = column_type.compile(dialect=dialect).lower()
    text = text.replace("character varying", "varchar").replace("without time zone", "")
    return re.sub(r"[^\w()\[\]-]+", "_", text.strip()).strip("_")


def er_mermaid(url, skip=("alembic_version",)):
    """Mermaid ER diagram of the live schema at `url`: tables with their
    columns and types (PK, FK, UK marked), foreign keys, and PostgreSQL enum
    types with their labels in order."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            tables = sorted(t for t in inspector.get_table_names() if t not in skip)
            lines = ["erDiagram"]
            links = []
            enum_uses = set()
            for table in tables:
                pk = set(inspector.get_pk_constraint(table)["constrained_columns"])
                fks = inspector.get_foreign_keys(table)
                fk_cols = {c for fk in fks for c in fk["constrained_columns"]}
                unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
                unique_cols = {cols[0] for cols in unique if len(cols) == 1}
                lines.append(f"    {table} {{")
                for col in inspector.get_columns(table):
                    keys = [k for k, on in (("PK", col["name"] in pk), ("FK", col["name"] in fk_cols),
                                            ("UK", col["name"] in unique_cols)) if on]
                    null = "" if col["nullable"] or col["name"] in pk else ' "not null"'
                    key_text = f" {','.join(keys)}" if keys else ""
                    lines.append(f"        {_type(col['type'], engine.dialect)} {col['name']}"
                                 f"{key_text}{null}")
                    if isinstance(col["type"], sa.Enum) and col["type"].name:
                        enum_uses.add((table, col["name"], col["type"].name))
                lines.append("    }")
                for fk in fks:
                    cols = ", ".join(fk["constrained_columns"])
                    links.append(f'    {fk["referred_table"]} ||--o{{ {table} : "{_label(cols)}"')
            enums = []
            if engine.dialect.name == "postgresql":
                enums = sorted(inspector.get_enums(), key=lambda e: e["name"])
            for enum in enums:
                lines.append(f'    {enum["name"]}["enum {enum["name"]}"] {{')
                lines.extend(f"        label {_word(label)}" for label in enum["labels"])
                lines.append("    }")
            for table, column, enum_name in sorted(enum_uses):
                links.append(f'    {enum_name} ||--o{{ {table} : "{_label(column)}"')
    finally:
        engine.dispose()
    return "\n".join(lines + sorted(links))


def _word(text):
    return re.sub(r"\W", "_", text)


def er_diagram(url):
    """The ER diagram of the live schema at `url`, as Markdown JupyterLab draws."""
    return _markdown(er_mermaid(url))
