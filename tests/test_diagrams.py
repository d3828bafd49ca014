"""labapp.runtime.diagrams: Mermaid drawn from a real migrations folder and a real database."""
import sqlalchemy as sa

from labapp.runtime import diagrams, labs, workspace


def _revision(versions, rev, parents, doc):
    down = repr(parents[0]) if len(parents) == 1 else repr(tuple(parents)) if parents else "None"
    (versions / f"{rev}_x.py").write_text(
        f'"""{doc}\n\nRevision ID: {rev}\n"""\n'
        f"revision = {rev!r}\ndown_revision = {down}\nbranch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
    )


def test_revision_graph_shows_branches_heads_and_the_merge(tmp_path):
    migrations = workspace.build(tmp_path / "ws", labs.get("lab02")[0]) / "migrations"
    versions = migrations / "versions"
    _revision(versions, "0002b", ["0001"], "add deal closed_at")
    _revision(versions, "0002a", ["0001"], "add contact phone")

    two_heads = diagrams.revision_mermaid(migrations)
    assert two_heads.splitlines() == [
        "flowchart TB",
        '    r_0001["0001: create crm tables (branch point)"]',
        '    r_0002a["0002a: add contact phone (head)"]',
        '    r_0002b["0002b: add deal closed_at (head)"]',
        "    r_0001 --> r_0002a",
        "    r_0001 --> r_0002b",
        "    classDef head stroke-width:3px",
        "    class r_0002a,r_0002b head",
    ]

    _revision(versions, "0003", ["0002a", "0002b"], 'merge "heads"')
    merged = diagrams.revision_mermaid(migrations)
    assert '    r_0003{{"0003: merge #quot;heads#quot; (head, merge)"}}' in merged
    assert "    r_0002a --> r_0003" in merged and "    r_0002b --> r_0003" in merged
    assert merged.endswith("    class r_0003 head")
    assert diagrams.revision_mermaid(migrations) == merged  # deterministic

    markdown = diagrams.revision_graph(migrations)
    assert markdown.data == f"```mermaid\n{merged}\n```"


def test_er_diagram_reflects_the_live_schema(schema, db_url):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TYPE dealstage AS ENUM ('LEAD', 'WON', 'LOST')"))
        conn.execute(sa.text("ALTER TABLE deals ADD COLUMN stage dealstage"))
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)"))
    engine.dispose()

    text = diagrams.er_mermaid(db_url)
    lines = text.splitlines()
    assert lines[0] == "erDiagram"
    assert "alembic_version" not in text
    deals = lines[lines.index("    deals {") + 1:]
    assert deals[:7] == [
        "        integer id PK",
        '        integer contact_id FK "not null"',
        '        varchar(200) title "not null"',
        '        numeric(12_2) amount "not null"',
        '        dealcurrency currency "not null"',
        "        dealstage stage",
        "    }",
    ]
    assert '        varchar(200) email UK "not null"' in lines
    enum = lines.index('    dealstage["enum dealstage"] {')
    assert lines[enum + 1:enum + 5] == ["        label LEAD", "        label WON", "        label LOST", "    }"]
    assert lines[-5:] == [  # relationships, sorted
        '    contacteventstatus ||--o{ contact_events : "status"',
        '    contacts ||--o{ contact_events : "contact_id"',
        '    contacts ||--o{ deals : "contact_id"',
        '    dealcurrency ||--o{ deals : "currency"',
        '    dealstage ||--o{ deals : "stage"',
    ]
    assert diagrams.er_mermaid(db_url) == text
    assert diagrams.er_diagram(db_url).data == f"```mermaid\n{text}\n```"
